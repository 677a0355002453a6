/* CPU backend: the row kernels the graph runner calls (everything but the
 * matmul, which lives in matmul.h), in a scalar reference version and SIMD
 * versions chosen at run time. Each function works on one row or one short
 * vector; threads are the caller's business. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

struct cpu_ops {
	const char *name; /* "scalar", "avx2", "avx512" */
	/* sum a[i] * b[i] */
	float (*dot_f32)(const float *a, const float *b, size_t n);
	/* Attention scores of one query against NK keys of HD elements stored
	 * transposed, element d of key i at k[d * STRIDE + i]:
	 * sc[i] = dot(q, key i) * scale. */
	void (*kq_f32)(const float *q, const float *k, size_t stride, uint32_t nk, uint32_t hd,
		       float scale, float *sc);
	void (*kq_f16)(const float *q, const gi_f16 *k, size_t stride, uint32_t nk, uint32_t hd,
		       float scale, float *sc);
	/* out[0..hd) += sum_i p[i] * value i, value i at v + i * STRIDE. */
	void (*pv_f32)(float *out, const float *p, const float *v, size_t stride, uint32_t nk,
		       uint32_t hd);
	void (*pv_f16)(float *out, const float *p, const gi_f16 *v, size_t stride, uint32_t nk,
		       uint32_t hd);
	/* y[i] *= a */
	void (*scale)(float *y, float a, size_t n);
	/* y[i] += x[i] */
	void (*add)(float *y, const float *x, size_t n);
	/* y = x / sqrt(mean(x^2) + eps) * w; y may be x */
	void (*rmsnorm)(const float *x, const float *w, float *y, size_t n, float eps);
	/* y = silu(a) * b; y may be a or b */
	void (*silu_mul)(const float *a, const float *b, float *y, size_t n);
	/* largest x[i] (n >= 1) */
	float (*max)(const float *x, size_t n);
	/* e[i] = exp(s[i] - m) (e may be s); returns the sum */
	float (*exp_sum)(const float *s, float *e, size_t n, float m);
	/* F32 to F16, round to nearest even */
	void (*to_f16)(const float *x, gi_f16 *y, size_t n);
	/* x[i] = the F32 value of x[i] rounded to F16 */
	void (*round_f16)(float *x, size_t n);
};

extern const struct cpu_ops cpu_ops_scalar;
extern const struct cpu_ops cpu_ops_avx2;
extern const struct cpu_ops cpu_ops_avx512;

/* The best table this CPU runs (GI_CPU_SIMD=scalar|avx2|avx512 in the
 * environment caps it, for tests and measurements). */
const struct cpu_ops *cpu_ops_best(void);
/* Every table this CPU can run, best first; returns how many (<= 3). */
int cpu_ops_all(const struct cpu_ops **ret, int cap);

/* Rotary embedding of one head of HEAD_DIM floats in place: the first N_ROT
 * dims rotated by angle pos * freq_i where COS/SIN hold n_rot/2 precomputed
 * cos and sin values (cpu_rope_cache). NEOX pairs (i, i + n_rot/2), else (2i, 2i+1). */
void cpu_rope_head(float *x, const float *cs, const float *sn, uint32_t n_rot, int neox);
/* cos/sin of pos * freq_scale * base^(-2i/n_rot), i < n_rot/2. */
void cpu_rope_cache(float *cs, float *sn, uint32_t pos, uint32_t n_rot, float base,
		    float freq_scale);
