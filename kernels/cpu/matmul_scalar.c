/* Scalar activation converters (shared by every SIMD level, so all levels
 * agree on the bytes) and the scalar matmul kernels: the fallback on CPUs
 * without AVX2 and in GI_NO_SIMD builds. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"

/* ---- activation converters ---------------------------------------------------- */

void cpu_act_f32_scalar(const float *x, size_t k, void *xq)
{
	memcpy(xq, x, k * sizeof(float));
}

void cpu_act_f16w_scalar(const float *x, size_t k, void *xq)
{
	const size_t kp = act_f16w_kp(k);
	float *f = xq;
	gi_bf16 *xh = (gi_bf16 *)(f + kp), *xl = xh + kp;

	for (size_t i = 0; i < kp; i++) {
		f[i] = i < k ? x[i] : 0.0f;
		xh[i] = gi_f32_to_bf16(f[i]);
		xl[i] = gi_f32_to_bf16(f[i] - gi_bf16_to_f32(xh[i]));
	}
}

static int8_t q8_round(float v)
{
	int q = (int)lrintf(v);
	return (int8_t)(q < -127 ? -127 : q > 127 ? 127 : q);
}

static void act_pair(const float *x, size_t k, void *xq, int q4)
{
	size_t nb = k / 32, np = act_pairs(k), nm = act_meta_len(k);
	int8_t *qs = xq;
	float *dv = (float *)(qs + np * 64);
	int32_t *c8 = (int32_t *)(dv + nm);

	if (nb & 1)
		memset(qs + (np - 1) * 64, 0, 64);
	for (size_t b = nb; b < nm; b++) {
		dv[b] = 0.0f;
		c8[b] = 0;
	}
	for (size_t b = 0; b < nb; b++, x += 32) {
		float amax = 0.0f;
		for (int e = 0; e < 32; e++)
			amax = fmaxf(amax, fabsf(x[e]));
		float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		int32_t sum = 0;
		for (int e = 0; e < 32; e++) {
			int8_t q = q8_round(x[e] * id);
			sum += q;
			qs[q4 ? act_q4_pos(b, (size_t)e) : b * 32 + (size_t)e] = q;
		}
		dv[b] = d;
		c8[b] = (q4 ? -1 : -16) * sum;
	}
}

void cpu_act_q4_0_scalar(const float *x, size_t k, void *xq)
{
	act_pair(x, k, xq, 1);
}

void cpu_act_q8_0_scalar(const float *x, size_t k, void *xq)
{
	act_pair(x, k, xq, 0);
}

static void act_q8_K(const float *x, size_t k, void *xq, int q4k)
{
	struct block_q8_K *y = xq;

	for (size_t b = 0; b < k / QK_K; b++, x += QK_K) {
		float amax = 0.0f;
		for (int i = 0; i < QK_K; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = d;
		for (int j = 0; j < QK_K / 16; j++) {
			int sum = 0;
			int8_t *dst = y[b].qs + 32 * (q4k ? act_q4k_slot(j / 2) : j / 2) + 16 * (j & 1);
			for (int i = 0; i < 16; i++) {
				int8_t q = q8_round(x[16 * j + i] * id);
				dst[i] = q;
				sum += q;
			}
			y[b].bsums[j] = (int16_t)sum;
		}
	}
}

void cpu_act_q8_K_scalar(const float *x, size_t k, void *xq)
{
	act_q8_K(x, k, xq, 0);
}

void cpu_act_q4_K_scalar(const float *x, size_t k, void *xq)
{
	act_q8_K(x, k, xq, 1);
}

/* ---- dot products of one weight row with one activation row ------------------ */

static float dot_f32(const void *w, const void *x, size_t k)
{
	const float *a = w, *b = x;
	float s = 0.0f;
	for (size_t i = 0; i < k; i++)
		s += a[i] * b[i];
	return s;
}

static float dot_f16(const void *w, const void *x, size_t k)
{
	const gi_f16 *a = w;
	const float *b = x;
	float s = 0.0f;
	for (size_t i = 0; i < k; i++)
		s += gi_f16_to_f32(a[i]) * b[i];
	return s;
}

static float dot_bf16(const void *w, const void *x, size_t k)
{
	const gi_bf16 *a = w;
	const float *b = x;
	float s = 0.0f;
	for (size_t i = 0; i < k; i++)
		s += gi_bf16_to_f32(a[i]) * b[i];
	return s;
}

static float dot_q4_0(const void *w, const void *x, size_t k)
{
	const struct block_q4_0 *wb = w;
	const int8_t *qs = x;
	const float *dx = act_d_of(x, k);
	float s = 0.0f;
	for (size_t b = 0; b < k / QK4_0; b++) {
		int sum = 0;
		for (size_t e = 0; e < 16; e++) {
			sum += ((wb[b].qs[e] & 0xf) - 8) * qs[act_q4_pos(b, e)];
			sum += ((wb[b].qs[e] >> 4) - 8) * qs[act_q4_pos(b, e + 16)];
		}
		s += gi_f16_to_f32(wb[b].d) * dx[b] * (float)sum;
	}
	return s;
}

static float dot_q8_0(const void *w, const void *x, size_t k)
{
	const struct block_q8_0 *wb = w;
	const int8_t *qs = x;
	const float *dx = act_d_of(x, k);
	float s = 0.0f;
	for (size_t b = 0; b < k / QK8_0; b++) {
		int sum = 0;
		for (size_t e = 0; e < 32; e++)
			sum += wb[b].qs[e] * qs[b * 32 + e];
		s += gi_f16_to_f32(wb[b].d) * dx[b] * (float)sum;
	}
	return s;
}

static float dot_q4_K(const void *w, const void *x, size_t k)
{
	const struct block_q4_K *wb = w;
	const struct block_q8_K *xb = x;
	float s = 0.0f;
	for (size_t b = 0; b < k / QK_K; b++) {
		const uint8_t *sc = wb[b].scales;
		int sum = 0, msum = 0;
		for (int j = 0; j < 8; j++) {
			int scale, min;
			if (j < 4) {
				scale = sc[j] & 63;
				min = sc[j + 4] & 63;
			} else {
				scale = (sc[j + 4] & 0xf) | ((sc[j - 4] >> 6) << 4);
				min = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
			}
			const uint8_t *q = wb[b].qs + 32 * (j / 2);
			const int8_t *xq = xb[b].qs + 32 * act_q4k_slot(j);
			int dot = 0;
			for (int l = 0; l < 32; l++)
				dot += ((j & 1) ? q[l] >> 4 : q[l] & 0xf) * xq[l];
			sum += scale * dot;
			msum += min * (xb[b].bsums[2 * j] + xb[b].bsums[2 * j + 1]);
		}
		s += xb[b].d * (gi_f16_to_f32(wb[b].d) * (float)sum -
				gi_f16_to_f32(wb[b].dmin) * (float)msum);
	}
	return s;
}

static float dot_q6_K(const void *w, const void *x, size_t k)
{
	const struct block_q6_K *wb = w;
	const struct block_q8_K *xb = x;
	float s = 0.0f;
	for (size_t b = 0; b < k / QK_K; b++) {
		int sum = 0;
		for (int n = 0; n < 2; n++) {
			const uint8_t *ql = wb[b].ql + 64 * n, *qh = wb[b].qh + 32 * n;
			const int8_t *xq = xb[b].qs + 128 * n;
			for (int g = 0; g < 4; g++) {
				int dot0 = 0, dot1 = 0;
				for (int l = 0; l < 32; l++) {
					int lo = (g & 1) ? ql[l + 32] : ql[l];
					lo = (g & 2) ? lo >> 4 : lo & 0xf;
					int q = (lo | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
					if (l < 16)
						dot0 += q * xq[32 * g + l];
					else
						dot1 += q * xq[32 * g + l];
				}
				const int8_t *sc = wb[b].scales + 8 * n + 2 * g;
				sum += sc[0] * dot0 + sc[1] * dot1;
			}
		}
		s += xb[b].d * gi_f16_to_f32(wb[b].d) * (float)sum;
	}
	return s;
}

typedef float (*dot_fn)(const void *w, const void *x, size_t k);

static void mm_rows(dot_fn dot, enum gi_type t, const void *w, size_t k, const void *xq,
		    size_t xstride, size_t m, float *y, size_t ldy, size_t j0, size_t j1)
{
	size_t wrow = gi_type_row_bytes(t, k);
	for (size_t j = j0; j < j1; j++) {
		const uint8_t *wj = (const uint8_t *)w + j * wrow;
		for (size_t i = 0; i < m; i++)
			y[i * ldy + j] = dot(wj, (const uint8_t *)xq + i * xstride, k);
	}
}

#define SCALAR_MM(T, NAME)                                                                    \
	static void mm_##NAME(const void *w, size_t k, const void *xq, size_t xstride, size_t m, \
			      float *y, size_t ldy, size_t j0, size_t j1)                        \
	{                                                                                     \
		mm_rows(dot_##NAME, T, w, k, xq, xstride, m, y, ldy, j0, j1);                   \
	}
SCALAR_MM(GI_TYPE_F32, f32)
SCALAR_MM(GI_TYPE_F16, f16)
SCALAR_MM(GI_TYPE_BF16, bf16)
SCALAR_MM(GI_TYPE_Q4_0, q4_0)
SCALAR_MM(GI_TYPE_Q8_0, q8_0)
SCALAR_MM(GI_TYPE_Q4_K, q4_K)
SCALAR_MM(GI_TYPE_Q6_K, q6_K)

const struct cpu_kernels cpu_kernels_scalar = {
	.name = "scalar",
	.act = {
		[GI_TYPE_F32] = cpu_act_f32_scalar,
		[GI_TYPE_F16] = cpu_act_f16w_scalar,
		[GI_TYPE_BF16] = cpu_act_f16w_scalar,
		[GI_TYPE_Q4_0] = cpu_act_q4_0_scalar,
		[GI_TYPE_Q8_0] = cpu_act_q8_0_scalar,
		[GI_TYPE_Q4_K] = cpu_act_q4_K_scalar,
		[GI_TYPE_Q6_K] = cpu_act_q8_K_scalar,
	},
	.mm = {
		[GI_TYPE_F32] = mm_f32,
		[GI_TYPE_F16] = mm_f16,
		[GI_TYPE_BF16] = mm_bf16,
		[GI_TYPE_Q4_0] = mm_q4_0,
		[GI_TYPE_Q8_0] = mm_q8_0,
		[GI_TYPE_Q4_K] = mm_q4_K,
		[GI_TYPE_Q6_K] = mm_q6_K,
	},
	.mm_x16 = {
		[GI_TYPE_F32] = cpu_mm_x16_f32_scalar,
		[GI_TYPE_F16] = cpu_mm_x16_f16_scalar,
		[GI_TYPE_BF16] = cpu_mm_x16_bf16_scalar,
		[GI_TYPE_Q4_0] = cpu_mm_x16_q4_0_scalar,
		[GI_TYPE_Q8_0] = cpu_mm_x16_q8_0_scalar,
		[GI_TYPE_Q4_K] = cpu_mm_x16_q4_K_scalar,
		[GI_TYPE_Q6_K] = cpu_mm_x16_q6_K_scalar,
	},
};
