/* AVX2/FMA matmul kernels: the level for CPUs without AVX-512. Integer
 * products use vpmaddubsw (u8 x s8 -> s16 pairs) then vpmaddwd into s32;
 * tiles are NR = 2 weight rows x MR = 2 activation rows (16 ymm registers). */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/matmul_tile.h"

#define INLINE static inline __attribute__((always_inline))
#define NR_MAX 2
#define MR_MAX 2

INLINE float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

INLINE float f16_load(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, sizeof(h));
	return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* s32 lane sums of u8 x s8 products (pairs saturate only beyond 2 * 255 * 127). */
INLINE __m256i dot_u8s8(__m256i u, __m256i s)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

INLINE void setzero(__m256 acc[MR_MAX][NR_MAX], int mr, int nr)
{
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm256_setzero_ps();
}

INLINE void store(__m256 acc[MR_MAX][NR_MAX], int mr, int nr, float *y, size_t ldy)
{
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			y[(size_t)i * ldy + (size_t)r] = hsum8(acc[i][r]);
}

/* ---- Q4_0, Q8_0: one 32-block at a time ------------------------------------------ */

INLINE void pair_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs,
		      int q4, int mr, int nr, float *y, size_t ldy)
{
	const size_t bsz = q4 ? sizeof(struct block_q4_0) : sizeof(struct block_q8_0);
	__m256 acc[MR_MAX][NR_MAX];

	setzero(acc, mr, nr);
	for (size_t b = 0; b < k / 32; b++) {
		__m256i wq[NR_MAX];
		float wd[NR_MAX];
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++) {
			const uint8_t *blk = w + (size_t)r * wrow + b * bsz;
			wd[r] = f16_load(blk);
			if (q4) {
				const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
				wq[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
			} else {
				wq[r] = _mm256_loadu_si256((const __m256i *)(blk + 2));
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const uint8_t *xr = x + (size_t)i * xs;
			const float dx = act_d_of(xr, k)[b];
			const int32_t c8 = act_c8_of(xr, k)[b];
			__m256i xv;
			if (q4) {
				const uint8_t *p = xr + act_q4_pos(b, 0);
				xv = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(p + 32)),
						      _mm_loadu_si128((const __m128i *)p));
			} else {
				xv = _mm256_loadu_si256((const __m256i *)(xr + 32 * b));
			}
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				__m256i dot;
				if (q4) /* nibbles are stored +8: add the block's -8 * sum(x) */
					dot = _mm256_add_epi32(dot_u8s8(wq[r], xv), _mm256_set1_epi32(c8));
				else
					dot = dot_u8s8(_mm256_abs_epi8(wq[r]), _mm256_sign_epi8(xv, wq[r]));
				acc[i][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(wd[r] * dx),
							    acc[i][r]);
			}
		}
	}
	store(acc, mr, nr, y, ldy);
}

/* ---- float weights -------------------------------------------------------------- */

INLINE __m256 fw_load(enum gi_type t, const uint8_t *row, size_t off)
{
	switch (t) {
	case GI_TYPE_F16:
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * off)));
	case GI_TYPE_BF16:
		return _mm256_castsi256_ps(_mm256_slli_epi32(
			_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * off))), 16));
	default:
		return _mm256_loadu_ps((const float *)(row + 4 * off));
	}
}

static float fw_scalar(enum gi_type t, const uint8_t *row, size_t i)
{
	uint16_t h;
	float f;
	switch (t) {
	case GI_TYPE_F16:
		memcpy(&h, row + 2 * i, sizeof(h));
		return gi_f16_to_f32(h);
	case GI_TYPE_BF16:
		memcpy(&h, row + 2 * i, sizeof(h));
		return gi_bf16_to_f32(h);
	default:
		memcpy(&f, row + 4 * i, sizeof(f));
		return f;
	}
}

INLINE void float_tile(enum gi_type t, const uint8_t *w, size_t wrow, size_t k, const uint8_t *x,
		       size_t xs, int mr, int nr, float *y, size_t ldy)
{
	__m256 acc[MR_MAX][NR_MAX];
	size_t off = 0;

	setzero(acc, mr, nr);
	for (; off + 8 <= k; off += 8) {
		__m256 wv[NR_MAX];
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			wv[r] = fw_load(t, w + (size_t)r * wrow, off);
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const __m256 xv = _mm256_loadu_ps((const float *)(x + (size_t)i * xs) + off);
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				acc[i][r] = _mm256_fmadd_ps(wv[r], xv, acc[i][r]);
		}
	}
	store(acc, mr, nr, y, ldy);
	for (; off < k; off++)
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				y[(size_t)i * ldy + (size_t)r] += fw_scalar(t, w + (size_t)r * wrow, off) *
								  ((const float *)(x + (size_t)i * xs))[off];
}

/* ---- Q4_K, Q6_K ------------------------------------------------------------------ */

static void q4k_scale_min(const uint8_t *s, int *sc, int *m)
{
#pragma GCC unroll 8
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			sc[j] = s[j] & 63;
			m[j] = s[j + 4] & 63;
		} else {
			sc[j] = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
			m[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
		}
	}
}

INLINE void q4k_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs,
		     int mr, int nr, float *y, size_t ldy)
{
	__m256 acc[MR_MAX][NR_MAX];

	setzero(acc, mr, nr);
	for (size_t b = 0; b < k / QK_K; b++) {
		const struct block_q4_K *blk[NR_MAX];
		int sc[NR_MAX][8], mn[NR_MAX][8];
		__m256i isum[MR_MAX][NR_MAX];
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++) {
			blk[r] = (const struct block_q4_K *)(w + (size_t)r * wrow) + b;
			q4k_scale_min(blk[r]->scales, sc[r], mn[r]);
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				isum[i][r] = _mm256_setzero_si256();
#pragma GCC unroll 8
		for (int j = 0; j < 8; j++) {
			__m256i q[NR_MAX];
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				const __m256i v = _mm256_loadu_si256((const __m256i *)(blk[r]->qs + 32 * (j / 2)));
				q[r] = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
			}
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
				const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * act_q4k_slot(j)));
#pragma GCC unroll 8
				for (int r = 0; r < nr; r++)
					isum[i][r] = _mm256_add_epi32(isum[i][r],
						_mm256_madd_epi16(_mm256_maddubs_epi16(q[r], xv), _mm256_set1_epi16((short)sc[r][j])));
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				int msum = 0;
#pragma GCC unroll 8
				for (int j = 0; j < 8; j++)
					msum += mn[r][j] * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
				const float d = _cvtsh_ss(blk[r]->d) * xb->d;
				const float dm = _cvtsh_ss(blk[r]->dmin) * xb->d * (float)msum;
				acc[i][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][r]), _mm256_set1_ps(d), acc[i][r]);
				acc[i][r] = _mm256_sub_ps(acc[i][r], _mm256_set_ps(0, 0, 0, 0, 0, 0, 0, dm));
			}
		}
	}
	store(acc, mr, nr, y, ldy);
}

INLINE void q6k_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs,
		     int mr, int nr, float *y, size_t ldy)
{
	__m256 acc[MR_MAX][NR_MAX];

	setzero(acc, mr, nr);
	for (size_t b = 0; b < k / QK_K; b++) {
		const struct block_q6_K *blk[NR_MAX];
		__m256i isum[MR_MAX][NR_MAX];
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			blk[r] = (const struct block_q6_K *)(w + (size_t)r * wrow) + b;
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				int corr = 0;
				for (int s = 0; s < 16; s++)
					corr += blk[r]->scales[s] * xb->bsums[s];
				isum[i][r] = _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, -32 * corr);
			}
		}
#pragma GCC unroll 8
		for (int g = 0; g < 8; g++) {
			const int n = g / 4, sub = g % 4;
			__m256i q[NR_MAX], s[NR_MAX];
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				const uint8_t *ql = blk[r]->ql + 64 * n + 32 * (sub & 1);
				const __m256i l = _mm256_loadu_si256((const __m256i *)ql);
				const __m256i h = _mm256_loadu_si256((const __m256i *)(blk[r]->qh + 32 * n));
				const __m256i lo = _mm256_and_si256(sub & 2 ? _mm256_srli_epi16(l, 4) : l, _mm256_set1_epi8(0x0f));
				const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * sub)), _mm256_set1_epi8(3));
				q[r] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
				const int8_t *scp = blk[r]->scales + 2 * g;
				s[r] = _mm256_set_m128i(_mm_set1_epi16(scp[1]), _mm_set1_epi16(scp[0]));
			}
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
				const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * g));
#pragma GCC unroll 8
				for (int r = 0; r < nr; r++)
					isum[i][r] = _mm256_add_epi32(isum[i][r],
						_mm256_madd_epi16(_mm256_maddubs_epi16(q[r], xv), s[r]));
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				acc[i][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][r]),
							    _mm256_set1_ps(_cvtsh_ss(blk[r]->d) * xb->d), acc[i][r]);
		}
	}
	store(acc, mr, nr, y, ldy);
}

#define CALL_Q4(MR, NR) pair_tile(wj, wrow, k, xi, xs, 1, MR, NR, yi, ldy)
#define CALL_Q8(MR, NR) pair_tile(wj, wrow, k, xi, xs, 0, MR, NR, yi, ldy)
#define CALL_F32(MR, NR) float_tile(GI_TYPE_F32, wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_F16(MR, NR) float_tile(GI_TYPE_F16, wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_BF16(MR, NR) float_tile(GI_TYPE_BF16, wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_Q4K(MR, NR) q4k_tile(wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_Q6K(MR, NR) q6k_tile(wj, wrow, k, xi, xs, MR, NR, yi, ldy)
MM_TILE_DRIVER(mm_q4_0, GI_TYPE_Q4_0, NR_MAX, MR_MAX, CALL_Q4)
MM_TILE_DRIVER(mm_q8_0, GI_TYPE_Q8_0, NR_MAX, MR_MAX, CALL_Q8)
MM_TILE_DRIVER(mm_f32, GI_TYPE_F32, NR_MAX, MR_MAX, CALL_F32)
MM_TILE_DRIVER(mm_f16, GI_TYPE_F16, NR_MAX, MR_MAX, CALL_F16)
MM_TILE_DRIVER(mm_bf16, GI_TYPE_BF16, NR_MAX, MR_MAX, CALL_BF16)
MM_TILE_DRIVER(mm_q4_K, GI_TYPE_Q4_K, NR_MAX, MR_MAX, CALL_Q4K)
MM_TILE_DRIVER(mm_q6_K, GI_TYPE_Q6_K, NR_MAX, MR_MAX, CALL_Q6K)

const struct cpu_kernels cpu_kernels_avx2 = {
	.name = "avx2",
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
