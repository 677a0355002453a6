/* AVX-512 VNNI kernels for the K-quants (Q4_K, Q6_K) against Q8_K
 * activations. Per 256-element super-block and tile entry, four vectors
 * of 64 products go through vpmaddubsw (u8 x s8 -> s16 pairs) and
 * vpdpwssd, which multiplies by the sub-block scales and sums into s32
 * in one step; the super-block scales are applied once in float. Tiles
 * are NR = 2 weight rows x MR = 4 activation rows (registers: 8 integer and
 * 8 float accumulators plus the unpacked weights). */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/matmul_tile.h"

#define INLINE static inline __attribute__((always_inline))
#define NR_MAX 2
#define MR_MAX 4
/* bytes ahead of each weight row to prefetch (see matmul_avx512.c) */
#define PREFETCH 8192

/* int16 lane -> scale index, per 64-element group, from [s0..s7, m0..m7]
 * (Q4_K, groups hold sub-blocks 0|2, 1|3, 4|6, 5|7) or [s0..s15] (Q6_K,
 * group g holds 16-element sub-blocks 4g..4g+3). Constant data: this
 * file's code runs only on AVX-512 CPUs. */
#define R8(v) v, v, v, v, v, v, v, v
#define R16(v) R8(v), R8(v)
static const int16_t idx_q4k[4][32] = {
	{ R16(0), R16(2) }, { R16(1), R16(3) }, { R16(4), R16(6) }, { R16(5), R16(7) },
};
static const int16_t idx_q6k[4][32] = {
	{ R8(0), R8(1), R8(2), R8(3) }, { R8(4), R8(5), R8(6), R8(7) },
	{ R8(8), R8(9), R8(10), R8(11) }, { R8(12), R8(13), R8(14), R8(15) },
};
static const int16_t idx_q4k_min[16] = { 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15 };

/* Prefetches the super-block PREFETCH bytes after BLK (BYTES long). */
INLINE void prefetch_block(const void *blk, size_t bytes)
{
#pragma GCC unroll 4
	for (size_t off = 0; off < bytes; off += 64)
		_mm_prefetch((const char *)blk + PREFETCH + off, _MM_HINT_T0);
}

/* [sc0..sc7, m0..m7] as 16 int16 from the 12 packed bytes at S (the
 * 16-byte load also reads the first 4 quant bytes, unused). Scales and
 * mins 0..3 are the low 6 bits of bytes 0..3 and 4..7; 4..7 take their
 * low 4 bits from the nibbles of bytes 8..11 and their top 2 bits from
 * the top of bytes 0..3 (scales) and 4..7 (mins). */
INLINE __m256i q4k_scales(const uint8_t *s)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)s);
	const __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
	const __m128i t = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
	const __m128i low = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
	const __m128i nib = _mm_and_si128(_mm_srli_epi16(a, 4), _mm_set1_epi8(15));
	const __m128i top = _mm_and_si128(_mm_srli_epi16(t, 2), _mm_set1_epi8(0x30));
	return _mm256_cvtepu8_epi16(_mm_or_si128(_mm_blend_epi32(low, nib, 0x8), top));
}

INLINE void q4k_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs,
		     int mr, int nr, float *y, size_t ldy)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	__m512 acc[MR_MAX][NR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm512_setzero_ps();
	for (size_t b = 0; b < k / QK_K; b++) {
		const struct block_q4_K *blk[NR_MAX];
		const struct block_q8_K *xb[MR_MAX];
		__m256i sm[NR_MAX];
		__m512i isum[MR_MAX][NR_MAX];

#pragma GCC unroll 8
		for (int r = 0; r < nr; r++) {
			blk[r] = (const struct block_q4_K *)(w + (size_t)r * wrow) + b;
			prefetch_block(blk[r], sizeof(struct block_q4_K));
			sm[r] = q4k_scales(blk[r]->scales);
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			xb[i] = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				isum[i][r] = _mm512_setzero_si512();
		}
#pragma GCC unroll 8
		for (int g = 0; g < 4; g++) {
			const __m512i idx = _mm512_loadu_si512(idx_q4k[g]);
			__m512i q[NR_MAX], s[NR_MAX];
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				const __m512i v = _mm512_loadu_si512(blk[r]->qs + 64 * (g >> 1));
				q[r] = _mm512_and_si512(g & 1 ? _mm512_srli_epi16(v, 4) : v, m4);
				s[r] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sm[r]));
			}
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const __m512i xv = _mm512_loadu_si512(xb[i]->qs + 64 * g);
#pragma GCC unroll 8
				for (int r = 0; r < nr; r++)
					isum[i][r] = _mm512_dpwssd_epi32(isum[i][r], _mm512_maddubs_epi16(q[r], xv), s[r]);
			}
		}
		/* per row: [d, dmin] repeated, then per entry the scale sums
		 * folded to 8 lanes beside the 8 lanes of min terms, so one
		 * conversion and one FMA take both */
		__m256i mexp[NR_MAX];
		__m512 dd[NR_MAX];
		const __m256i midx = _mm256_loadu_si256((const __m256i *)idx_q4k_min);
		const __m512i mix = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++) {
			int32_t ddm;
			memcpy(&ddm, &blk[r]->d, sizeof(ddm));
			mexp[r] = _mm256_permutexvar_epi16(midx, sm[r]);
			dd[r] = _mm512_cvtph_ps(_mm256_set1_epi32(ddm));
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const __m256i bs = _mm256_loadu_si256((const __m256i *)xb[i]->bsums);
			const __m512 dx = _mm512_mul_ps(_mm512_set1_ps(xb[i]->d),
							_mm512_castsi512_ps(_mm512_set1_epi64(0xbf8000003f800000ll)));
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(isum[i][r]),
								    _mm512_extracti64x4_epi64(isum[i][r], 1));
				const __m256i mins = _mm256_madd_epi16(bs, mexp[r]);
				const __m512i t = _mm512_permutex2var_epi32(_mm512_castsi256_si512(s8), mix,
									    _mm512_castsi256_si512(mins));
				acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dd[r], dx), acc[i][r]);
			}
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			y[(size_t)i * ldy + (size_t)r] = _mm512_reduce_add_ps(acc[i][r]);
}

/* 64 unsigned 6-bit quants of group G (elements 64g..64g+63) of a block. */
INLINE __m512i q6k_unpack(const struct block_q6_K *blk, int g)
{
	const int n = g >> 1;
	const __m512i l = _mm512_loadu_si512(blk->ql + 64 * n);
	const __m256i h = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * n));
	const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
	const __m512i m30 = _mm512_set1_epi8(0x30), m4 = _mm512_set1_epi8(0x0f);
	if (g & 1)
		return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(hh, m30));
	return _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_slli_epi16(hh, 4), m30));
}

INLINE void q6k_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs,
		     int mr, int nr, float *y, size_t ldy)
{
	__m512 acc[MR_MAX][NR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm512_setzero_ps();
	for (size_t b = 0; b < k / QK_K; b++) {
		const struct block_q6_K *blk[NR_MAX];
		const struct block_q8_K *xb[MR_MAX];
		__m256i sc[NR_MAX];
		__m512i isum[MR_MAX][NR_MAX];

#pragma GCC unroll 8
		for (int r = 0; r < nr; r++) {
			blk[r] = (const struct block_q6_K *)(w + (size_t)r * wrow) + b;
			prefetch_block(blk[r], sizeof(struct block_q6_K));
			sc[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk[r]->scales));
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			xb[i] = (const struct block_q8_K *)(x + (size_t)i * xs) + b;
			const __m256i bs = _mm256_loadu_si256((const __m256i *)xb[i]->bsums);
			/* the -32 of every quant: -32 * sum_s sc[s] * bsums[s] */
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				isum[i][r] = _mm512_zextsi256_si512(
					_mm256_slli_epi32(_mm256_sub_epi32(_mm256_setzero_si256(),
									   _mm256_madd_epi16(bs, sc[r])), 5));
		}
#pragma GCC unroll 8
		for (int g = 0; g < 4; g++) {
			const __m512i idx = _mm512_loadu_si512(idx_q6k[g]);
			__m512i q[NR_MAX], s[NR_MAX];
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				q[r] = q6k_unpack(blk[r], g);
				s[r] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc[r]));
			}
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const __m512i xv = _mm512_loadu_si512(xb[i]->qs + 64 * g);
#pragma GCC unroll 8
				for (int r = 0; r < nr; r++)
					isum[i][r] = _mm512_dpwssd_epi32(isum[i][r], _mm512_maddubs_epi16(q[r], xv), s[r]);
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][r]),
							    _mm512_set1_ps(_cvtsh_ss(blk[r]->d) * xb[i]->d),
							    acc[i][r]);
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			y[(size_t)i * ldy + (size_t)r] = _mm512_reduce_add_ps(acc[i][r]);
}

#define CALL_Q4K(MR, NR) q4k_tile(wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_Q6K(MR, NR) q6k_tile(wj, wrow, k, xi, xs, MR, NR, yi, ldy)
MM_TILE_DRIVER(mm_q4_K, GI_TYPE_Q4_K, NR_MAX, MR_MAX, CALL_Q4K)
MM_TILE_DRIVER(mm_q6_K, GI_TYPE_Q6_K, NR_MAX, MR_MAX, CALL_Q6K)

void cpu_mm_q4_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			float *y, size_t ldy, size_t j0, size_t j1)
{
	mm_q4_K(w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_q6_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			float *y, size_t ldy, size_t j0, size_t j1)
{
	mm_q6_K(w, k, xq, xstride, m, y, ldy, j0, j1);
}
