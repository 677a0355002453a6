/* Template for the SIMD row kernels: included once by ops_avx2.c and once by
 * ops_avx512.c, each defining the vector primitives below for its ISA, so the
 * two tables are generated from one source.
 *
 *   VL               lanes (floats per vector)
 *   vf               the vector type
 *   VLOAD(p) VSTORE(p, v) VSET1(x) VZERO()
 *   VADD VSUB VMUL VDIV VMAX VMIN (a, b), VFMA(a, b, c) = a * b + c
 *   VHSUM(v)         sum of the lanes
 *   VLOADH(p)        VL halfs to floats;  VSTOREH(p, v) floats to VL halfs
 *   VROUND(v)        round to nearest integer (as float)
 *   VPOW2(v)         2^v for integral v in [-126, 127]
 *   OPS_TABLE        the name of the table to define
 *   OPS_NAME         its name string
 * Tails shorter than VL go through a zero-padded buffer. */
#include <string.h>

#include "kernels/cpu/ops.h"

static inline vf load_part(const float *p, size_t n)
{
	float b[VL] = { 0 };
	memcpy(b, p, n * sizeof(float));
	return VLOAD(b);
}

static inline vf load_part_h(const gi_f16 *p, size_t n)
{
	gi_f16 b[VL] = { 0 };
	memcpy(b, p, n * sizeof(gi_f16));
	return VLOADH(b);
}

static inline void store_part(float *p, vf v, size_t n)
{
	float b[VL];
	VSTORE(b, v);
	memcpy(p, b, n * sizeof(float));
}

/* exp(x) for x in about [-87, 88]: x = k ln2 + r, |r| <= ln2/2, then
 * 2^k times a degree-6 polynomial in r (error about 1 ulp). */
static inline vf vexp(vf x)
{
	x = VMIN(VMAX(x, VSET1(-87.0f)), VSET1(88.0f));
	vf k = VROUND(VMUL(x, VSET1(1.44269504088896341f)));
	vf r = VFMA(k, VSET1(-0.693359375f), x);
	r = VFMA(k, VSET1(2.12194440e-4f), r);
	vf p = VSET1(1.0f / 720);
	p = VFMA(p, r, VSET1(1.0f / 120));
	p = VFMA(p, r, VSET1(1.0f / 24));
	p = VFMA(p, r, VSET1(1.0f / 6));
	p = VFMA(p, r, VSET1(0.5f));
	p = VFMA(p, r, VSET1(1.0f));
	p = VFMA(p, r, VSET1(1.0f));
	return VMUL(p, VPOW2(k));
}

static float s_dot_f32(const float *a, const float *b, size_t n)
{
	vf acc0 = VZERO(), acc1 = VZERO();
	size_t i = 0;
	for (; i + 2 * VL <= n; i += 2 * VL) {
		acc0 = VFMA(VLOAD(a + i), VLOAD(b + i), acc0);
		acc1 = VFMA(VLOAD(a + i + VL), VLOAD(b + i + VL), acc1);
	}
	for (; i + VL <= n; i += VL)
		acc0 = VFMA(VLOAD(a + i), VLOAD(b + i), acc0);
	if (i < n)
		acc1 = VFMA(load_part(a + i, n - i), load_part(b + i, n - i), acc1);
	return VHSUM(VADD(acc0, acc1));
}

static float s_dot_f16(const float *a, const gi_f16 *b, size_t n)
{
	vf acc0 = VZERO(), acc1 = VZERO();
	size_t i = 0;
	for (; i + 2 * VL <= n; i += 2 * VL) {
		acc0 = VFMA(VLOAD(a + i), VLOADH(b + i), acc0);
		acc1 = VFMA(VLOAD(a + i + VL), VLOADH(b + i + VL), acc1);
	}
	for (; i + VL <= n; i += VL)
		acc0 = VFMA(VLOAD(a + i), VLOADH(b + i), acc0);
	if (i < n)
		acc1 = VFMA(load_part(a + i, n - i), load_part_h(b + i, n - i), acc1);
	return VHSUM(VADD(acc0, acc1));
}

static void s_axpy_f32(float *y, float a, const float *x, size_t n)
{
	vf va = VSET1(a);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VFMA(va, VLOAD(x + i), VLOAD(y + i)));
	if (i < n)
		store_part(y + i, VFMA(va, load_part(x + i, n - i), load_part(y + i, n - i)), n - i);
}

static void s_axpy_f16(float *y, float a, const gi_f16 *x, size_t n)
{
	vf va = VSET1(a);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VFMA(va, VLOADH(x + i), VLOAD(y + i)));
	if (i < n)
		store_part(y + i, VFMA(va, load_part_h(x + i, n - i), load_part(y + i, n - i)),
			   n - i);
}

static void s_scale(float *y, float a, size_t n)
{
	vf va = VSET1(a);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VMUL(va, VLOAD(y + i)));
	if (i < n)
		store_part(y + i, VMUL(va, load_part(y + i, n - i)), n - i);
}

static void s_add(float *y, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VADD(VLOAD(y + i), VLOAD(x + i)));
	if (i < n)
		store_part(y + i, VADD(load_part(y + i, n - i), load_part(x + i, n - i)), n - i);
}

static void s_rmsnorm(const float *x, const float *w, float *y, size_t n, float eps)
{
	float ss = s_dot_f32(x, x, n);
	vf r = VSET1(1.0f / sqrtf(ss / (float)n + eps));
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VMUL(VMUL(VLOAD(x + i), r), VLOAD(w + i)));
	if (i < n)
		store_part(y + i, VMUL(VMUL(load_part(x + i, n - i), r), load_part(w + i, n - i)),
			   n - i);
}

static inline vf silu_mul_v(vf a, vf b)
{
	vf one = VSET1(1.0f);
	return VMUL(VDIV(a, VADD(one, vexp(VSUB(VZERO(), a)))), b);
}

static void s_silu_mul(const float *a, const float *b, float *y, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, silu_mul_v(VLOAD(a + i), VLOAD(b + i)));
	if (i < n)
		store_part(y + i, silu_mul_v(load_part(a + i, n - i), load_part(b + i, n - i)),
			   n - i);
}

static float s_exp_sum(float *s, size_t n, float m)
{
	vf vm = VSET1(m), sum = VZERO();
	size_t i = 0;
	for (; i + VL <= n; i += VL) {
		vf e = vexp(VSUB(VLOAD(s + i), vm));
		VSTORE(s + i, e);
		sum = VADD(sum, e);
	}
	float tail = 0;
	for (; i < n; i++) {
		s[i] = expf(s[i] - m);
		tail += s[i];
	}
	return VHSUM(sum) + tail;
}

static void s_to_f16(const float *x, gi_f16 *y, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTOREH(y + i, VLOAD(x + i));
	for (; i < n; i++)
		y[i] = gi_f32_to_f16(x[i]);
}

const struct cpu_ops OPS_TABLE = {
	.name = OPS_NAME,
	.dot_f32 = s_dot_f32,
	.dot_f16 = s_dot_f16,
	.axpy_f32 = s_axpy_f32,
	.axpy_f16 = s_axpy_f16,
	.scale = s_scale,
	.add = s_add,
	.rmsnorm = s_rmsnorm,
	.silu_mul = s_silu_mul,
	.exp_sum = s_exp_sum,
	.to_f16 = s_to_f16,
};
