/* AVX-512 (F/BW/VL/DQ + VNNI) matmul kernels for Q4_0, Q8_0 and the float
 * weight types; the K-quants live in matmul_k_avx512.c.
 *
 * Every kernel computes tiles of NR weight rows x MR activation rows with
 * MR * NR accumulators in registers, so each weight vector unpacked from
 * memory is used MR times (batched decode, prefill) and each activation
 * vector NR times; four weight rows stream side by side. Q4_0 takes its
 * blocks four at a time (q4_0_tile), Q8_0 two at a time (pair_tile; its
 * own loop at M = 1). Integer products use vpdpbusd (u8 x s8 -> s32). */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/matmul_tile.h"

#define INLINE static inline __attribute__((always_inline))
#define NR_MAX 4 /* at most 4: store_sums */
#define MR_MAX 4
/* float weights: 6 activation rows x 4 weight rows = 24 accumulators */
#define FMR_MAX 6
/* bytes ahead of each weight row to prefetch (past its end: the next rows,
 * next in memory). Hardware prefetchers alone leave M = 1 latency-bound on
 * several interleaved rows; 8 KiB measured best from 512 to 12 KiB. */
#define PREFETCH 8192

/* Lane patterns of the pairs of a 16-block group: which block of the
 * group each 32-bit lane of pair p's products belongs to. Constant data,
 * not computed at start-up: this file's code runs only on AVX-512 CPUs. */
#define B4(v) v, v, v, v
#define PAT_Q8(p) { B4(2 * (p)), B4(2 * (p)), B4(2 * (p) + 1), B4(2 * (p) + 1) }
static const int32_t pat_q8[8][16] = { PAT_Q8(0), PAT_Q8(1), PAT_Q8(2), PAT_Q8(3),
				       PAT_Q8(4), PAT_Q8(5), PAT_Q8(6), PAT_Q8(7) };

/* Y[r] = the sum of the lanes of A[r], r < NR (at most 4): one transposing
 * reduction for the four (13 shuffles and adds) instead of one each. */
INLINE void store_sums(const __m512 *a, int nr, float *y)
{
	const __m512 z = _mm512_setzero_ps();
	const __m512 a0 = a[0], a1 = nr > 1 ? a[1] : z, a2 = nr > 2 ? a[2] : z, a3 = nr > 3 ? a[3] : z;
	/* per 128-bit lane: [a0 0+2, a1 0+2, a0 1+3, a1 1+3], the same of a2, a3 */
	const __m512 u = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
	const __m512 v = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
	/* per 128-bit lane: [a0, a1, a2, a3] partial sums */
	const __m512 t = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(u), _mm512_castps_pd(v))),
				       _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(u), _mm512_castps_pd(v))));
	const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
	const __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
	if (nr == 4)
		_mm_storeu_ps(y, s);
	else
		_mm_mask_storeu_ps(y, (__mmask8)((1u << nr) - 1), s);
}

/* Scales of up to 16 consecutive weight blocks (BSZ bytes apart, each
 * starting with its f16 scale) as floats; one gather. */
INLINE __m512 group_scales(const uint8_t *b0, size_t bsz, size_t nblk)
{
	const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
					       _mm512_set1_epi32((int)bsz));
	const __mmask16 mask = nblk >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nblk) - 1);
	const __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, idx, b0, 1);
	return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
}

/* Int8 quants of the pair biased by +128 (unsigned operand of vpdpbusd). */
INLINE __m512i q8_0_unpack(const uint8_t *b0, __mmask32 two)
{
	const __m256i a = _mm256_loadu_si256((const __m256i *)(b0 + 2));
	const __m256i b = _mm256_maskz_loadu_epi8(two, b0 + 2 + sizeof(struct block_q8_0));
	const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
	return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
}

/* An MR x NR tile of Q8_0, 16 blocks (8 pairs) per group:
 * one gather brings a group's weight scales, then per pair each weight
 * row is unpacked once and each activation row loaded once. */
INLINE void pair_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs,
		      int mr, int nr, float *y, size_t ldy)
{
	const size_t nb = k / 32, bsz = sizeof(struct block_q8_0);
	const float *dx[MR_MAX];
	const int32_t *c8[MR_MAX];
	__m512 acc[MR_MAX][NR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		dx[i] = act_d_of(x + (size_t)i * xs, k);
		c8[i] = act_c8_of(x + (size_t)i * xs, k);
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm512_setzero_ps();
	}
	for (size_t g = 0; g < nb; g += 16) {
		const size_t nblk = nb - g < 16 ? nb - g : 16;
		float wds[NR_MAX][16];
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			_mm512_storeu_ps(wds[r], group_scales(w + (size_t)r * wrow + g * bsz, bsz, nblk));
		for (size_t pp = 0; 2 * pp < nblk; pp++) {
			const size_t b = g + 2 * pp;
			const int two = 2 * pp + 1 < nblk;
			const __m512i pat = _mm512_loadu_si512(pat_q8[pp]);
			__m512i wq[NR_MAX];
			__m512 wd[NR_MAX];
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				const uint8_t *b0 = w + (size_t)r * wrow + b * bsz;
				_mm_prefetch((const char *)b0 + PREFETCH, _MM_HINT_T0);
				wq[r] = q8_0_unpack(b0, two ? 0xffffffffu : 0);
				wd[r] = _mm512_permutexvar_ps(pat, _mm512_loadu_ps(wds[r]));
			}
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const __m512 xd = _mm512_permutexvar_ps(pat, _mm512_loadu_ps(dx[i] + g));
				const __m512i c = _mm512_permutexvar_epi32(pat, _mm512_loadu_si512(c8[i] + g));
				const __m512i xv = _mm512_loadu_si512(x + (size_t)i * xs + 32 * b);
#pragma GCC unroll 8
				for (int r = 0; r < nr; r++) {
					const __m512i dot = _mm512_dpbusd_epi32(c, wq[r], xv);
					acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd[r], xd),
								    acc[i][r]);
				}
			}
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
		store_sums(acc[i], nr, y + (size_t)i * ldy);
}

/* ---- M = 1 (decode) for Q4_0 and Q8_0 ------------------------------------------ */

/* Q4_0 at M = 1 takes the blocks four at a time (a quad, 72 bytes): one
 * word permutation packs the 64 nibble bytes of the quad into a vector,
 * whose low and high nibbles then hold the low and high halves of all
 * four blocks, lanes 4q..4q+3 belonging to block q. Both halves go
 * through vpdpbusd into one accumulator against the activation halves
 * arranged to match, so a quad costs one int32 -> float conversion and
 * one FMA per weight row. Words of a quad: d_q at 9q, qs_q at 9q+1..9q+8. */
#define QW(q) 9 * (q) + 1, 9 * (q) + 2, 9 * (q) + 3, 9 * (q) + 4, 9 * (q) + 5, 9 * (q) + 6, 9 * (q) + 7, 9 * (q) + 8
static const int16_t quad_perm[32] = { QW(0), QW(1), QW(2), QW(3) };
/* lane -> block of a quad within its 16-block group */
#define PAT_QUAD(q) { B4(4 * (q)), B4(4 * (q) + 1), B4(4 * (q) + 2), B4(4 * (q) + 3) }
static const int32_t pat_quad[4][16] = { PAT_QUAD(0), PAT_QUAD(1), PAT_QUAD(2), PAT_QUAD(3) };

/* word I of a vector -> the scale d_(I mod 4) of a quad */
static const int16_t quad_didx[32] = { 0, 9, 18, 27, 0, 9, 18, 27, 0, 9, 18, 27, 0, 9, 18, 27,
				       0, 9, 18, 27, 0, 9, 18, 27, 0, 9, 18, 27, 0, 9, 18, 27 };

/* Bytes of a quad's first 64 to load when LEFT blocks remain in the row. */
INLINE __mmask64 quad_mask(size_t left)
{
	return left >= 4 ? ~(__mmask64)0 : ((__mmask64)1 << (18 * left)) - 1;
}

/* Activation rows a Q4_0 quad tile takes (M = 2..7 runs tiles of 2 over
 * the same weight rows, which the second pass finds in L1). */
#define QMR_MAX 2

/* One quad of NR weight rows x MR activation rows at block B: LM selects
 * the bytes of the 64-byte load (all but at a row's end), FULL says all
 * four blocks exist (the last 8 bytes then load too). */
INLINE void q4_0_quad(const uint8_t *w, size_t wrow, size_t b, __mmask64 lm, int full, __m512i perm,
		      const __m512i *xl, const __m512i *xh, __m512i pat, __m512 sc[QMR_MAX][NR_MAX],
		      __m512 acc[QMR_MAX][NR_MAX], int mr, int nr)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);

#pragma GCC unroll 8
	for (int r = 0; r < nr; r++) {
		const uint8_t *b0 = w + (size_t)r * wrow + b * sizeof(struct block_q4_0);
		_mm_prefetch((const char *)b0 + PREFETCH, _MM_HINT_T0);
		const __m512i va = full ? _mm512_loadu_si512(b0) : _mm512_maskz_loadu_epi8(lm, b0);
		const __m512i vb = full ? _mm512_zextsi128_si512(_mm_loadl_epi64((const __m128i *)(b0 + 64)))
					: _mm512_setzero_si512();
		const __m512i v = _mm512_permutex2var_epi16(va, perm, vb);
		const __m512i lo = _mm512_and_si512(v, m4);
		const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl[i]),
								hi, xh[i]);
			acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pat, sc[i][r]),
						    acc[i][r]);
		}
	}
}

/* NR weight rows x MR (at most QMR_MAX) activation rows XS bytes apart. */
INLINE void q4_0_tile(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, size_t xs, int mr, int nr,
		      float *y, size_t ldy)
{
	const size_t nb = k / 32, bsz = sizeof(struct block_q4_0);
	const __m512i perm = _mm512_loadu_si512(quad_perm), didx = _mm512_loadu_si512(quad_didx);
	/* activation halves: low halves of both pairs, then high halves */
	const __m512i lo_idx = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11);
	const __m512i hi_idx = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
	__m512 acc[QMR_MAX][NR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm512_setzero_ps();
	for (size_t g = 0; g < nb; g += 16) {
		const size_t nblk = nb - g < 16 ? nb - g : 16;
		__m512i dh[NR_MAX];
		__m512 sc[QMR_MAX][NR_MAX];
		/* the group's weight scales, picked from the quads' first loads
		 * (the loop below loads them again, from L1) */
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			dh[r] = _mm512_setzero_si512();
		for (size_t q = 0; 4 * q < nblk; q++) {
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++)
				dh[r] = _mm512_mask_permutexvar_epi16(dh[r], (__mmask32)(0xfu << (4 * q)), didx,
								      _mm512_maskz_loadu_epi8(quad_mask(nblk - 4 * q),
									w + (size_t)r * wrow + (g + 4 * q) * bsz));
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const uint8_t *xi = x + (size_t)i * xs;
			/* the lane terms of a block sum to 8 * c8 */
			const __m512 c = _mm512_cvtepi32_ps(_mm512_slli_epi32(_mm512_loadu_si512(act_c8_of(xi, k) + g), 3));
			const __m512 xd = _mm512_loadu_ps(act_d_of(xi, k) + g);
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				sc[i][r] = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dh[r])), xd);
				acc[i][r] = _mm512_fmadd_ps(c, sc[i][r], acc[i][r]);
			}
		}
		/* past the row's last block the weights load as zeros, so what
		 * the activation holds there does not matter */
		for (size_t q = 0; 4 * q < nblk; q++) {
			const size_t b = g + 4 * q;
			const __m512i pat = _mm512_loadu_si512(pat_quad[q]);
			__m512i xl[QMR_MAX], xh[QMR_MAX];
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const uint8_t *xb = x + (size_t)i * xs + 32 * b;
				const __m512i x0 = _mm512_loadu_si512(xb), x1 = _mm512_loadu_si512(xb + 64);
				xl[i] = _mm512_permutex2var_epi64(x0, lo_idx, x1);
				xh[i] = _mm512_permutex2var_epi64(x0, hi_idx, x1);
			}
			if (4 * q + 4 <= nblk)
				q4_0_quad(w, wrow, b, ~(__mmask64)0, 1, perm, xl, xh, pat, sc, acc, mr, nr);
			else
				q4_0_quad(w, wrow, b, quad_mask(nblk - 4 * q), 0, perm, xl, xh, pat, sc, acc, mr, nr);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
		store_sums(acc[i], nr, y + (size_t)i * ldy);
}

/* Q8_0 at M = 1: NR weight rows against one activation row; per 16-block
 * group each row's weight scales are multiplied by the activation scales
 * once, and per pair the activation vector and its lane terms are shared
 * by the rows. */
INLINE void q8_0_gemv(const uint8_t *w, size_t wrow, size_t k, const uint8_t *x, int nr, float *y)
{
	const size_t nb = k / 32, bsz = sizeof(struct block_q8_0);
	const float *dx = act_d_of(x, k);
	const int32_t *c8 = act_c8_of(x, k);
	__m512 acc[NR_MAX];

#pragma GCC unroll 8
	for (int r = 0; r < nr; r++)
		acc[r] = _mm512_setzero_ps();
	for (size_t g = 0; g < nb; g += 16) {
		const size_t nblk = nb - g < 16 ? nb - g : 16;
		const __m512 xd = _mm512_loadu_ps(dx + g);
		const __m512i c = _mm512_loadu_si512(c8 + g);
		__m512 sc[NR_MAX];
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			sc[r] = _mm512_mul_ps(group_scales(w + (size_t)r * wrow + g * bsz, bsz, nblk), xd);
		for (size_t pp = 0; 2 * pp < nblk; pp++) {
			const size_t b = g + 2 * pp;
			const __m512i pat = _mm512_loadu_si512(pat_q8[pp]);
			const __m512i cp = _mm512_permutexvar_epi32(pat, c);
			const __m512i xv = _mm512_loadu_si512(x + 32 * b);
			const __mmask32 two = b + 1 < nb ? 0xffffffffu : 0;
#pragma GCC unroll 8
			for (int r = 0; r < nr; r++) {
				const uint8_t *b0 = w + (size_t)r * wrow + b * bsz;
				_mm_prefetch((const char *)b0 + PREFETCH, _MM_HINT_T0);
				const __m512i dot = _mm512_dpbusd_epi32(cp, q8_0_unpack(b0, two), xv);
				acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pat, sc[r]),
							 acc[r]);
			}
		}
	}
	store_sums(acc, nr, y);
}

/* ---- float weights (activations stay f32) ------------------------------------ */

/* 16 weights from K-offset OFF of a row, as floats; MASK picks the lanes
 * to load (a tail), the others are zero. */
INLINE __m512 fw_load(enum gi_type t, const uint8_t *row, size_t off, __mmask16 mask)
{
	switch (t) {
	case GI_TYPE_F16:
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + 2 * off));
	case GI_TYPE_BF16:
		return _mm512_castsi512_ps(_mm512_slli_epi32(
			_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, row + 2 * off)), 16));
	default:
		return _mm512_maskz_loadu_ps(mask, row + 4 * off);
	}
}

/* One 16-element K step of an MR x NR float tile. */
INLINE void float_step(enum gi_type t, const uint8_t *w, size_t wrow, const uint8_t *x, size_t xs, size_t off,
		       __mmask16 mask, int mr, int nr, __m512 acc[FMR_MAX][NR_MAX])
{
	const size_t esz = t == GI_TYPE_F32 ? 4 : 2;
	__m512 wv[NR_MAX];

#pragma GCC unroll 8
	for (int r = 0; r < nr; r++) {
		if (off * esz % 64 == 0)
			_mm_prefetch((const char *)w + (size_t)r * wrow + off * esz + PREFETCH, _MM_HINT_T0);
		wv[r] = fw_load(t, w + (size_t)r * wrow, off, mask);
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		const __m512 xv = _mm512_maskz_loadu_ps(mask, (const float *)(x + (size_t)i * xs) + off);
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm512_fmadd_ps(wv[r], xv, acc[i][r]);
	}
}

INLINE void float_tile(enum gi_type t, const uint8_t *w, size_t wrow, size_t k, const uint8_t *x,
		       size_t xs, int mr, int nr, float *y, size_t ldy)
{
	__m512 acc[FMR_MAX][NR_MAX];
	size_t off = 0;

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int r = 0; r < nr; r++)
			acc[i][r] = _mm512_setzero_ps();
	for (; off + 16 <= k; off += 16)
		float_step(t, w, wrow, x, xs, off, (__mmask16)0xffff, mr, nr, acc);
	if (off < k)
		float_step(t, w, wrow, x, xs, off, (__mmask16)((1u << (k - off)) - 1), mr, nr, acc);
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
		store_sums(acc[i], nr, y + (size_t)i * ldy);
}

/* ---- tile drivers ------------------------------------------------------------- */

#define CALL_Q4(MR, NR) q4_0_tile(wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_Q8(MR, NR) \
	((MR) == 1 ? q8_0_gemv(wj, wrow, k, xi, NR, yi) : pair_tile(wj, wrow, k, xi, xs, MR, NR, yi, ldy))
#define CALL_F32(MR, NR) float_tile(GI_TYPE_F32, wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_F16(MR, NR) float_tile(GI_TYPE_F16, wj, wrow, k, xi, xs, MR, NR, yi, ldy)
#define CALL_BF16(MR, NR) float_tile(GI_TYPE_BF16, wj, wrow, k, xi, xs, MR, NR, yi, ldy)
MM_TILE_DRIVER(mm_q4_0, GI_TYPE_Q4_0, NR_MAX, QMR_MAX, CALL_Q4)
MM_TILE_DRIVER(mm_q8_0, GI_TYPE_Q8_0, NR_MAX, MR_MAX, CALL_Q8)
MM_TILE_DRIVER(mm_f32, GI_TYPE_F32, NR_MAX, FMR_MAX, CALL_F32)
MM_TILE_DRIVER(mm_f16, GI_TYPE_F16, NR_MAX, FMR_MAX, CALL_F16)
MM_TILE_DRIVER(mm_bf16, GI_TYPE_BF16, NR_MAX, FMR_MAX, CALL_BF16)

const struct cpu_kernels cpu_kernels_avx512 = {
	.name = "avx512",
	.act = {
		[GI_TYPE_F32] = cpu_act_f32_scalar,
		[GI_TYPE_F16] = cpu_act_f16w_avx512,
		[GI_TYPE_BF16] = cpu_act_f16w_avx512,
		[GI_TYPE_Q4_0] = cpu_act_q4_0_avx512,
		[GI_TYPE_Q8_0] = cpu_act_q8_0_avx512,
		[GI_TYPE_Q4_K] = cpu_act_q4_K_avx512,
		[GI_TYPE_Q6_K] = cpu_act_q8_K_avx512,
	},
	.mm = {
		[GI_TYPE_F32] = mm_f32,
		[GI_TYPE_F16] = mm_f16,
		[GI_TYPE_BF16] = mm_bf16,
		[GI_TYPE_Q4_0] = mm_q4_0,
		[GI_TYPE_Q8_0] = mm_q8_0,
		[GI_TYPE_Q4_K] = cpu_mm_q4_K_avx512,
		[GI_TYPE_Q6_K] = cpu_mm_q6_K_avx512,
	},
	.mm_x16 = {
		[GI_TYPE_F32] = cpu_mm_x16_f32_avx512,
		[GI_TYPE_F16] = cpu_mm_x16_f16_avx512,
		[GI_TYPE_BF16] = cpu_mm_x16_bf16_avx512,
		[GI_TYPE_Q4_0] = cpu_mm_x16_q4_0_avx512,
		[GI_TYPE_Q8_0] = cpu_mm_x16_q8_0_avx512,
		[GI_TYPE_Q4_K] = cpu_mm_x16_q4_K_avx512,
		[GI_TYPE_Q6_K] = cpu_mm_x16_q6_K_avx512,
	},
};
