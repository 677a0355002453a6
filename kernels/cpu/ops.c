/* CPU row kernels: the scalar reference versions, rotary embedding and the
 * run-time choice of SIMD table. */
#include "kernels/cpu/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float dot_f32(const float *a, const float *b, size_t n)
{
	float s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static void kq_f32(const float *q, const float *k, size_t stride, uint32_t nk, uint32_t hd,
		   float scale, float *sc)
{
	for (uint32_t i = 0; i < nk; i++) {
		float s = 0;
		for (uint32_t d = 0; d < hd; d++)
			s += q[d] * k[d * stride + i];
		sc[i] = s * scale;
	}
}

static void kq_f16(const float *q, const gi_f16 *k, size_t stride, uint32_t nk, uint32_t hd,
		   float scale, float *sc)
{
	for (uint32_t i = 0; i < nk; i++) {
		float s = 0;
		for (uint32_t d = 0; d < hd; d++)
			s += q[d] * gi_f16_to_f32(k[d * stride + i]);
		sc[i] = s * scale;
	}
}

static void pv_f32(float *out, const float *p, const float *v, size_t stride, uint32_t nk,
		   uint32_t hd)
{
	for (uint32_t i = 0; i < nk; i++)
		for (uint32_t d = 0; d < hd; d++)
			out[d] += p[i] * v[i * stride + d];
}

static void pv_f16(float *out, const float *p, const gi_f16 *v, size_t stride, uint32_t nk,
		   uint32_t hd)
{
	for (uint32_t i = 0; i < nk; i++)
		for (uint32_t d = 0; d < hd; d++)
			out[d] += p[i] * gi_f16_to_f32(v[i * stride + d]);
}

static void scale(float *y, float a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] *= a;
}

static void add(float *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

static void rmsnorm(const float *x, const float *w, float *y, size_t n, float eps)
{
	double ss = 0;
	for (size_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float r = 1.0f / sqrtf((float)(ss / (double)n) + eps);
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] * r * w[i];
}

static void silu_mul(const float *a, const float *b, float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

static float vmax(const float *x, size_t n)
{
	float m = x[0];
	for (size_t i = 1; i < n; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

static float exp_sum(const float *s, float *e, size_t n, float m)
{
	float sum = 0;
	for (size_t i = 0; i < n; i++) {
		e[i] = expf(s[i] - m);
		sum += e[i];
	}
	return sum;
}

static void to_f16(const float *x, gi_f16 *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = gi_f32_to_f16(x[i]);
}

static void round_f16(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = gi_f16_to_f32(gi_f32_to_f16(x[i]));
}

const struct cpu_ops cpu_ops_scalar = {
	.name = "scalar",
	.dot_f32 = dot_f32,
	.kq_f32 = kq_f32,
	.kq_f16 = kq_f16,
	.pv_f32 = pv_f32,
	.pv_f16 = pv_f16,
	.scale = scale,
	.add = add,
	.rmsnorm = rmsnorm,
	.silu_mul = silu_mul,
	.max = vmax,
	.exp_sum = exp_sum,
	.to_f16 = to_f16,
	.round_f16 = round_f16,
};

int cpu_ops_all(const struct cpu_ops **ret, int cap)
{
	int n = 0;
#ifndef GI_NO_SIMD
	__builtin_cpu_init();
	if (n < cap && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16"))
		ret[n++] = &cpu_ops_avx512;
	if (n < cap && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    __builtin_cpu_supports("f16c"))
		ret[n++] = &cpu_ops_avx2;
#endif
	if (n < cap)
		ret[n++] = &cpu_ops_scalar;
	return n;
}

const struct cpu_ops *cpu_ops_best(void)
{
	const struct cpu_ops *all[3];
	int n = cpu_ops_all(all, 3);
	const char *cap = getenv("GI_CPU_SIMD");
	if (cap && *cap)
		for (int i = 0; i < n; i++)
			if (!strcmp(all[i]->name, cap))
				return all[i];
	return all[0];
}

void cpu_rope_cache(float *cs, float *sn, uint32_t pos, uint32_t n_rot, float base,
		    float freq_scale)
{
	/* theta_i = pos * base^(-2i/n_rot), by repeated multiplication in
	 * float, the way ggml computes it (the golden outputs depend on it). */
	float theta_scale = powf(base, -2.0f / (float)n_rot);
	float theta = (float)pos;
	for (uint32_t i = 0; i < n_rot / 2; i++) {
		float t = theta * freq_scale;
		cs[i] = cosf(t);
		sn[i] = sinf(t);
		theta *= theta_scale;
	}
}

void cpu_rope_head(float *x, const float *cs, const float *sn, uint32_t n_rot, int neox)
{
	uint32_t half = n_rot / 2;
	for (uint32_t i = 0; i < half; i++) {
		uint32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
		float x0 = x[a], x1 = x[b];
		x[a] = x0 * cs[i] - x1 * sn[i];
		x[b] = x0 * sn[i] + x1 * cs[i];
	}
}
