/* AVX-512 activation converters: the same bytes as the scalar ones in
 * matmul_scalar.c (same amax, d = amax / 127, 1 / d, round to nearest
 * even), sixteen floats at a time. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"

/* 16 floats times ID, rounded to nearest even, saturated to int8. */
static inline __m128i quant16(__m512 v, __m512 id)
{
	return _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v, id)));
}

static inline float amax_of(const float *x, size_t n)
{
	__m512 m = _mm512_setzero_ps();
	for (size_t i = 0; i < n; i += 16)
		m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
	return _mm512_reduce_max_ps(m);
}

/* int8 sum of 16 quants. */
static inline int sum16(__m128i q)
{
	return _mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q));
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
		const float amax = amax_of(x, 32);
		const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		const __m512 vid = _mm512_set1_ps(id);
		const __m128i lo = quant16(_mm512_loadu_ps(x), vid), hi = quant16(_mm512_loadu_ps(x + 16), vid);
		int8_t *dst_lo = qs + (q4 ? act_q4_pos(b, 0) : b * 32);
		int8_t *dst_hi = qs + (q4 ? act_q4_pos(b, 16) : b * 32 + 16);
		_mm_storeu_si128((__m128i *)dst_lo, lo);
		_mm_storeu_si128((__m128i *)dst_hi, hi);
		dv[b] = d;
		c8[b] = (q4 ? -1 : -16) * (sum16(lo) + sum16(hi));
	}
}

void cpu_act_q4_0_avx512(const float *x, size_t k, void *xq)
{
	act_pair(x, k, xq, 1);
}

void cpu_act_q8_0_avx512(const float *x, size_t k, void *xq)
{
	act_pair(x, k, xq, 0);
}

static void act_q8_K(const float *x, size_t k, void *xq, int q4k)
{
	struct block_q8_K *y = xq;

	for (size_t b = 0; b < k / QK_K; b++, x += QK_K) {
		const float amax = amax_of(x, QK_K);
		const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		const __m512 vid = _mm512_set1_ps(id);
		y[b].d = d;
		for (int j = 0; j < QK_K / 16; j++) {
			const __m128i q = quant16(_mm512_loadu_ps(x + 16 * j), vid);
			int8_t *dst = y[b].qs + 32 * (q4k ? act_q4k_slot(j / 2) : j / 2) + 16 * (j & 1);
			_mm_storeu_si128((__m128i *)dst, q);
			y[b].bsums[j] = (int16_t)sum16(q);
		}
	}
}

void cpu_act_q8_K_avx512(const float *x, size_t k, void *xq)
{
	act_q8_K(x, k, xq, 0);
}

void cpu_act_q4_K_avx512(const float *x, size_t k, void *xq)
{
	act_q8_K(x, k, xq, 1);
}

/* bf16 of 16 floats, rounded to nearest even, NaN kept quiet: the bits of
 * gi_f32_to_bf16 (the BF16 conversion instructions flush subnormals). */
static inline __m256i bf16_16(__m512 v)
{
	const __m512i u = _mm512_castps_si512(v);
	const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
	const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
	const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
	return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, q));
}

void cpu_act_f16w_avx512(const float *x, size_t k, void *xq)
{
	const size_t kp = act_f16w_kp(k);
	float *f = xq;
	uint16_t *xh = (uint16_t *)(f + kp), *xl = xh + kp;

	for (size_t i = 0; i < kp; i += 16) {
		const __mmask16 m = i + 16 <= k ? (__mmask16)0xffff : i < k ? (__mmask16)((1u << (k - i)) - 1) : 0;
		const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
		const __m256i h = bf16_16(v);
		const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
		_mm512_storeu_ps(f + i, v);
		_mm256_storeu_si256((__m256i *)(xh + i), h);
		_mm256_storeu_si256((__m256i *)(xl + i), bf16_16(_mm512_sub_ps(v, hf)));
	}
}
