/* Template for the SIMD row kernels: included once by ops_avx2.c and once by
 * ops_avx512.c, each defining the vector primitives below for its ISA, so the
 * two tables are generated from one source.
 *
 *   VL               lanes (floats per vector)
 *   vf               the vector type
 *   VLOAD(p) VSTORE(p, v) VSET1(x) VZERO()
 *   VADD VSUB VMUL VDIV VMAX VMIN (a, b), VFMA(a, b, c) = a * b + c
 *   VHSUM(v) VHMAX(v)  sum and maximum of the lanes
 *   VLOADH(p)        VL halfs to floats;  VSTOREH(p, v) floats to VL halfs
 *   VLOADN(p, n) VLOADHN(p, n) VSTOREN(p, v, n)  the same for the first n < VL
 *                    lanes (loads give zeros in the others)
 *   VSET2(a, b)      a in the low half of the lanes, b in the high half
 *   VFOLD_ADD(p, v)  p[0, VL/2) += low half of v + high half of v
 *   VROUND(v)        round to nearest integer (as float)
 *   VPOW2(v)         2^v for integral v in [-126, 127]
 *   OPS_TABLE        the name of the table to define
 *   OPS_NAME         its name string
 */
#include <string.h>

#include "kernels/cpu/ops.h"

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
		acc1 = VFMA(VLOADN(a + i, n - i), VLOADN(b + i, n - i), acc1);
	return VHSUM(VADD(acc0, acc1));
}

/* Scores across keys: one vector holds VL keys' partial sums and each
 * dimension adds q[d] times that dimension's (contiguous) key elements. */
static void s_kq_f32(const float *q, const float *k, size_t stride, uint32_t nk, uint32_t hd,
		     float scale, float *sc)
{
	for (uint32_t i = 0; i < nk; i += VL) {
		uint32_t n = nk - i < VL ? nk - i : VL, d = 0;
		vf a0 = VZERO(), a1 = VZERO();
		for (; d + 2 <= hd; d += 2) {
			const float *r = k + d * stride + i;
			a0 = VFMA(VSET1(q[d]), n == VL ? VLOAD(r) : VLOADN(r, n), a0);
			r += stride;
			a1 = VFMA(VSET1(q[d + 1]), n == VL ? VLOAD(r) : VLOADN(r, n), a1);
		}
		if (d < hd) {
			const float *r = k + d * stride + i;
			a0 = VFMA(VSET1(q[d]), n == VL ? VLOAD(r) : VLOADN(r, n), a0);
		}
		vf r = VMUL(VADD(a0, a1), VSET1(scale));
		if (n == VL)
			VSTORE(sc + i, r);
		else
			VSTOREN(sc + i, r, n);
	}
}

static void s_kq_f16(const float *q, const gi_f16 *k, size_t stride, uint32_t nk, uint32_t hd,
		     float scale, float *sc)
{
	for (uint32_t i = 0; i < nk; i += VL) {
		uint32_t n = nk - i < VL ? nk - i : VL, d = 0;
		vf a0 = VZERO(), a1 = VZERO();
		for (; d + 2 <= hd; d += 2) {
			const gi_f16 *r = k + d * stride + i;
			a0 = VFMA(VSET1(q[d]), n == VL ? VLOADH(r) : VLOADHN(r, n), a0);
			r += stride;
			a1 = VFMA(VSET1(q[d + 1]), n == VL ? VLOADH(r) : VLOADHN(r, n), a1);
		}
		if (d < hd) {
			const gi_f16 *r = k + d * stride + i;
			a0 = VFMA(VSET1(q[d]), n == VL ? VLOADH(r) : VLOADHN(r, n), a0);
		}
		vf r = VMUL(VADD(a0, a1), VSET1(scale));
		if (n == VL)
			VSTORE(sc + i, r);
		else
			VSTOREN(sc + i, r, n);
	}
}

/* out += sum_i p[i] v_i: one register of out at a time over all keys, the
 * keys spread over four accumulators so the adds do not wait on each other. */
#define PV_BODY(LOADF)                                                                   \
	for (uint32_t d = 0; d < hd; d += VL) {                                          \
		uint32_t n = hd - d < VL ? hd - d : VL, i = 0;                             \
		vf a0 = n == VL ? VLOAD(out + d) : VLOADN(out + d, n);                    \
		vf a1 = VZERO(), a2 = VZERO(), a3 = VZERO();                              \
		for (; i + 4 <= nk; i += 4) {                                              \
			a0 = VFMA(VSET1(p[i]), LOADF(v + i * stride + d, n), a0);         \
			a1 = VFMA(VSET1(p[i + 1]), LOADF(v + (i + 1) * stride + d, n), a1); \
			a2 = VFMA(VSET1(p[i + 2]), LOADF(v + (i + 2) * stride + d, n), a2); \
			a3 = VFMA(VSET1(p[i + 3]), LOADF(v + (i + 3) * stride + d, n), a3); \
		}                                                                          \
		for (; i < nk; i++)                                                        \
			a0 = VFMA(VSET1(p[i]), LOADF(v + i * stride + d, n), a0);         \
		a0 = VADD(VADD(a0, a1), VADD(a2, a3));                                     \
		if (n == VL)                                                               \
			VSTORE(out + d, a0);                                               \
		else                                                                       \
			VSTOREN(out + d, a0, n);                                           \
	}

#define LOAD_F32(r, n) ((n) == VL ? VLOAD(r) : VLOADN(r, n))
#define LOAD_F16(r, n) ((n) == VL ? VLOADH(r) : VLOADHN(r, n))

/* Heads of half a vector with consecutive rows (stride == hd): two keys per
 * vector, lanes [0, VL/2) key i and [VL/2, VL) key i + 1, folded at the end. */
#define PV_PAIRS(LOADF)                                                                  \
	if (2 * hd == VL && stride == hd) {                                              \
		vf a0 = VZERO(), a1 = VZERO();                                             \
		uint32_t i = 0;                                                            \
		for (; i + 4 <= nk; i += 4) {                                              \
			a0 = VFMA(VSET2(p[i], p[i + 1]), LOADF(v + i * hd, VL), a0);      \
			a1 = VFMA(VSET2(p[i + 2], p[i + 3]), LOADF(v + (i + 2) * hd, VL), a1); \
		}                                                                          \
		for (; i + 2 <= nk; i += 2)                                                \
			a0 = VFMA(VSET2(p[i], p[i + 1]), LOADF(v + i * hd, VL), a0);      \
		if (i < nk)                                                                \
			a1 = VFMA(VSET2(p[i], 0.0f), LOADF(v + i * hd, VL / 2), a1);      \
		VFOLD_ADD(out, VADD(a0, a1));                                              \
		return;                                                                    \
	}

static void s_pv_f32(float *out, const float *p, const float *v, size_t stride, uint32_t nk,
		     uint32_t hd)
{
	PV_PAIRS(LOAD_F32)
	PV_BODY(LOAD_F32)
}

static void s_pv_f16(float *out, const float *p, const gi_f16 *v, size_t stride, uint32_t nk,
		     uint32_t hd)
{
	PV_PAIRS(LOAD_F16)
	PV_BODY(LOAD_F16)
}

static void s_scale(float *y, float a, size_t n)
{
	vf va = VSET1(a);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VMUL(va, VLOAD(y + i)));
	if (i < n)
		VSTOREN(y + i, VMUL(va, VLOADN(y + i, n - i)), n - i);
}

static void s_add(float *y, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VADD(VLOAD(y + i), VLOAD(x + i)));
	if (i < n)
		VSTOREN(y + i, VADD(VLOADN(y + i, n - i), VLOADN(x + i, n - i)), n - i);
}

static void s_rmsnorm(const float *x, const float *w, float *y, size_t n, float eps)
{
	float ss = s_dot_f32(x, x, n);
	vf r = VSET1(1.0f / sqrtf(ss / (float)n + eps));
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTORE(y + i, VMUL(VMUL(VLOAD(x + i), r), VLOAD(w + i)));
	if (i < n)
		VSTOREN(y + i, VMUL(VMUL(VLOADN(x + i, n - i), r), VLOADN(w + i, n - i)),
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
		VSTOREN(y + i, silu_mul_v(VLOADN(a + i, n - i), VLOADN(b + i, n - i)),
			   n - i);
}

static float s_max(const float *x, size_t n)
{
	vf m = VSET1(x[0]);
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		m = VMAX(m, VLOAD(x + i));
	float r = VHMAX(m);
	for (; i < n; i++)
		r = x[i] > r ? x[i] : r;
	return r;
}

static float s_exp_sum(const float *s, float *e, size_t n, float m)
{
	vf vm = VSET1(m), sum = VZERO();
	size_t i = 0;
	for (; i + VL <= n; i += VL) {
		vf x = vexp(VSUB(VLOAD(s + i), vm));
		VSTORE(e + i, x);
		sum = VADD(sum, x);
	}
	if (i < n) {
		/* the zero lanes of a partial load would add exp(-m): store the
		 * tail and sum it from memory */
		vf x = vexp(VSUB(VLOADN(s + i, n - i), vm));
		VSTOREN(e + i, x, n - i);
		sum = VADD(sum, VLOADN(e + i, n - i));
	}
	return VHSUM(sum);
}

static void s_to_f16(const float *x, gi_f16 *y, size_t n)
{
	size_t i = 0;
	for (; i + VL <= n; i += VL)
		VSTOREH(y + i, VLOAD(x + i));
	for (; i < n; i++)
		y[i] = gi_f32_to_f16(x[i]);
}

static void s_round_f16(float *x, size_t n)
{
	gi_f16 h[VL];
	size_t i = 0;
	for (; i + VL <= n; i += VL) {
		VSTOREH(h, VLOAD(x + i));
		VSTORE(x + i, VLOADH(h));
	}
	if (i < n) {
		VSTOREH(h, VLOADN(x + i, n - i));
		VSTOREN(x + i, VLOADH(h), n - i);
	}
}

const struct cpu_ops OPS_TABLE = {
	.name = OPS_NAME,
	.dot_f32 = s_dot_f32,
	.kq_f32 = s_kq_f32,
	.kq_f16 = s_kq_f16,
	.pv_f32 = s_pv_f32,
	.pv_f16 = s_pv_f16,
	.scale = s_scale,
	.add = s_add,
	.rmsnorm = s_rmsnorm,
	.silu_mul = s_silu_mul,
	.max = s_max,
	.exp_sum = s_exp_sum,
	.to_f16 = s_to_f16,
	.round_f16 = s_round_f16,
};
