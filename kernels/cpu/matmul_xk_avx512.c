/* AVX-512 VNNI matmuls over the packed x16 Q4_K / Q6_K layouts
 * (repack_k.h) against plain Q8_K activation rows.
 *
 * One vpdpbusd multiplies a step of 16 weight rows (4 unsigned quants per
 * lane) by 4 activation bytes broadcast to every lane, so the 16 lanes of
 * an accumulator are 16 output columns and nothing is summed across lanes.
 * Each sub-block runs its own int32 chain, which ends as a float by the
 * 1.5 * 2^23 bias (below) and is multiplied by the 16 rows' d x sub-block
 * scale in one FMA (no vpmulld or vcvtdq2ps: they share port 0 with
 * vpdpbusd) into the super-block's float sum, scaled by d_x into Y once
 * per super-block. A weight step, unpacked once, serves every activation
 * row of the tile (MR rows); at M = 1 the tile spans four groups instead,
 * so the loads of four weight streams overlap.
 *
 * Q4_K: per pair of sub-blocks, 8 vectors hold both sub-blocks' steps in
 * their nibbles (the high ones taken in place, as 16 x the quant, their
 * scale divided by 16); the mins term sum_s min_s * sum(x in s) is one
 * vpdpwssd per sub-block on the mins (widened to two equal int16 per
 * lane) and the activation's two bsums of the sub-block.
 * Q6_K: sub-block by sub-block (one chain per activation row at a time),
 * each step one AND, or one AND, one shift and one VPTERNLOG (repack_k.h);
 * the fourth sub-block of each quarter is taken as 4 x the quant (its
 * scale divided by 4). The -32 of every quant starts each sub-block chain
 * at -32 * bsum (-128 * bsum for the 4 x ones). */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_k.h"

#define INLINE static inline __attribute__((always_inline))
#define MR_MAX 8
#define NG_MAX 4
/* super-blocks of a group per pass over the activation rows */
#define KSPAN 8
/* bytes ahead in the weight stream to prefetch */
#define PREFETCH 8192
/* int32 -> float without vcvtdq2ps (which competes with vpdpbusd for port
 * 0): a sub-block chain starts at the bits of 1.5 * 2^23, so for its sum S
 * (|S| < 2^20 for both types) it ends as the float 1.5 * 2^23 + S exactly,
 * and one subtraction on either vector port leaves S. */
#define MAGIC_I 0x4b400000
#define MAGIC_F 12582912.0f

/* The 4 activation bytes at P broadcast to all 16 lanes (folds into the
 * {1to16} memory operand of vpdpbusd). */
INLINE __m512i bcast4(const void *p)
{
	int32_t v;
	memcpy(&v, p, sizeof(v));
	return _mm512_set1_epi32(v);
}

INLINE const struct block_q8_K *xblock(const uint8_t *x, size_t xs, int i, size_t b)
{
	return (const struct block_q8_K *)(x + (size_t)i * xs) + b;
}

/* Q4_K super-block BLK of one group x super-block B of activation rows
 * 0 .. MR - 1 (X, XS bytes apart), added to Y (row i at Y + i * LDY);
 * prefetches the weights PF bytes ahead. */
INLINE void q4k_block(const uint8_t *blk, size_t pf, const uint8_t *x, size_t xs, size_t b, int mr,
		      float *y, size_t ldy)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8((char)0xf0);
	const __m512i magic_i = _mm512_set1_epi32(MAGIC_I);
	const __m512 magic = _mm512_set1_ps(MAGIC_F), d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
	/* bytes 4L + q of a 128-bit lane L to (b, 0, b, 0): a min as two int16 */
	const __m512i dup = _mm512_set_epi32(
		0x800f800f, 0x800e800e, 0x800d800d, 0x800c800c, 0x800b800b, 0x800a800a, 0x80098009, 0x80088008,
		0x80078007, 0x80068006, 0x80058005, 0x80048004, 0x80038003, 0x80028002, 0x80018001, 0x80008000);
	__m512 fs[MR_MAX];
	__m512i ms[MR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
		fs[i] = _mm512_setzero_ps();
#pragma GCC unroll 1
	for (int p = 0; p < 4; p++) {
		const uint8_t *q = blk + XK_Q4K_QS + 512 * p, *sc = blk + XK_Q4K_SCALE + 32 * p;
		__m512i ca[MR_MAX], cb[MR_MAX];
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			ca[i] = magic_i;
			cb[i] = magic_i;
		}
#pragma GCC unroll 8
		for (int j = 0; j < 8; j++) {
			_mm_prefetch((const char *)q + 64 * j + pf, _MM_HINT_T0);
			const __m512i v = _mm512_loadu_si512(q + 64 * j);
			/* the high nibbles in place: 16 x the quant, no shift on
			 * port 0 (their scale is divided by 16) */
			const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(v, mf0);
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const int8_t *xq = xblock(x, xs, i, b)->qs + 64 * p + 4 * j;
				ca[i] = _mm512_dpbusd_epi32(ca[i], lo, bcast4(xq));
				cb[i] = _mm512_dpbusd_epi32(cb[i], hi, bcast4(xq + 32));
			}
		}
		const __m512 sa = _mm512_mul_ps(
			d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)sc))));
		const __m512 sb = _mm512_mul_ps(
			_mm512_mul_ps(d, _mm512_set1_ps(1.0f / 16)),
			_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc + 16)))));
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			fs[i] = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_castsi512_ps(ca[i]), magic), sa, fs[i]);
			fs[i] = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_castsi512_ps(cb[i]), magic), sb, fs[i]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
		ms[i] = _mm512_setzero_si512();
#pragma GCC unroll 8
	for (int s = 0; s < 8; s++) {
		const __m512i mn = _mm512_shuffle_epi8(
			_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(blk + XK_Q4K_MIN + 16 * s))), dup);
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
			ms[i] = _mm512_dpwssd_epi32(ms[i], mn, bcast4(xblock(x, xs, i, b)->bsums + 2 * s));
	}
	const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		float *yi = y + (size_t)i * ldy;
		const __m512 t = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(ms[i]), fs[i]);
		const __m512 dx = _mm512_set1_ps(xblock(x, xs, i, b)->d);
		_mm512_storeu_ps(yi, _mm512_fmadd_ps(t, dx, _mm512_loadu_ps(yi)));
	}
}

/* Q6_K: as q4k_block. */
INLINE void q6k_block(const uint8_t *blk, size_t pf, const uint8_t *x, size_t xs, size_t b, int mr,
		      float *y, size_t ldy)
{
	const __m512i m3f = _mm512_set1_epi8(0x3f), m0f = _mm512_set1_epi8(0x0f);
	const __m512i mc0 = _mm512_set1_epi8((char)0xc0), mf0 = _mm512_set1_epi8((char)0xf0);
	/* 32 x bsum, 128 x for the sub-blocks taken as 4 x the quant */
	const __m512i shift = _mm512_set_epi32(7, 5, 5, 5, 7, 5, 5, 5, 7, 5, 5, 5, 7, 5, 5, 5);
	const __m512 magic = _mm512_set1_ps(MAGIC_F);
	/* the start of each sub-block chain, MAGIC_I - 32 (or 128) * bsum,
	 * computed 16 at a time and broadcast from here by the load ports
	 * (scalar arithmetic and vpbroadcastd from a GPR would take vector
	 * ports) */
	int32_t start[MR_MAX][16] __attribute__((aligned(64)));
	__m512 fs[MR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		const __m256i *bsums = (const __m256i *)xblock(x, xs, i, b)->bsums;
		const __m512i bs = _mm512_cvtepi16_epi32(_mm256_loadu_si256(bsums));
		_mm512_store_si512(start[i], _mm512_sub_epi32(_mm512_set1_epi32(MAGIC_I), _mm512_sllv_epi32(bs, shift)));
		fs[i] = _mm512_setzero_ps();
	}
#pragma GCC unroll 1
	for (int a = 0; a < 4; a++) {
		const uint8_t *q = blk + XK_Q6K_QS + XK_Q6K_QUARTER * a;
		/* sub-block 4a + j, step v from unit v; one chain per row */
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			const int sb = 4 * a + j;
			__m512i c[MR_MAX];
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++)
				c[i] = _mm512_set1_epi32(start[i][sb]);
#pragma GCC unroll 4
			for (int v = 0; v < 4; v++) {
				const uint8_t *u = q + 192 * v;
				if (!j)
					for (int l = 0; l < 3; l++)
						_mm_prefetch((const char *)u + 64 * l + pf, _MM_HINT_T0);
				__m512i w;
				if (j == 0) {
					w = _mm512_and_si512(_mm512_loadu_si512(u), m3f);
				} else if (j == 1) {
					/* (V2 & 15) | (V0 & 0xc0) >> 2 */
					const __m512i t = _mm512_srli_epi16(_mm512_and_si512(_mm512_loadu_si512(u), mc0), 2);
					w = _mm512_ternarylogic_epi32(_mm512_loadu_si512(u + 128), t, m0f, 0xec);
				} else if (j == 2) {
					w = _mm512_and_si512(_mm512_loadu_si512(u + 64), m3f);
				} else {
					/* 4 x the quant: (V2 & 0xf0) >> 2 | (V1 & 0xc0) */
					const __m512i t = _mm512_srli_epi16(_mm512_and_si512(_mm512_loadu_si512(u + 128), mf0), 2);
					w = _mm512_ternarylogic_epi32(t, _mm512_loadu_si512(u + 64), mc0, 0xf8);
				}
#pragma GCC unroll 8
				for (int i = 0; i < mr; i++)
					c[i] = _mm512_dpbusd_epi32(c[i], w,
								   bcast4(xblock(x, xs, i, b)->qs + 16 * sb + 4 * v));
			}
			__m512 sc = _mm512_mul_ps(_mm512_loadu_ps(blk),
						  _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
							  (const __m128i *)(blk + XK_Q6K_SCALE + 16 * sb)))));
			if (j == 3)
				sc = _mm512_mul_ps(sc, _mm512_set1_ps(0.25f));
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++)
				fs[i] = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_castsi512_ps(c[i]), magic), sc, fs[i]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		float *yi = y + (size_t)i * ldy;
		const __m512 dx = _mm512_set1_ps(xblock(x, xs, i, b)->d);
		_mm512_storeu_ps(yi, _mm512_fmadd_ps(fs[i], dx, _mm512_loadu_ps(yi)));
	}
}

/* Super-blocks [B0, B1) of groups G .. G + NG - 1 (GRP the first, GB bytes
 * each) x activation rows X .. X + MR - 1 (XS bytes apart), added to Y
 * (row i at Y + i * LDY, group g's 16 columns at 16 g; zeroed first when
 * B0 is 0). The float accumulators live in Y (one load and store per
 * super-block), leaving the registers to the int32 chains of 8 rows. */
INLINE void xk_tile(int q6, const uint8_t *grp, size_t gb, size_t b0, size_t b1, const uint8_t *x,
		    size_t xs, int mr, int ng, float *y, size_t ldy)
{
#pragma GCC unroll 8
	for (int i = 0; b0 == 0 && i < mr; i++)
#pragma GCC unroll 4
		for (int g = 0; g < ng; g++)
			_mm512_storeu_ps(y + (size_t)i * ldy + (size_t)g * X16_ROWS, _mm512_setzero_ps());
	const size_t qb = q6 ? XK_Q6K_BLOCK : XK_Q4K_BLOCK;
	for (size_t b = b0; b < b1; b++) {
		/* near its end, a group's stream prefetches the start of the
		 * group it reads in the next tile, NG groups on */
		const size_t pf = (b + 1) * qb + PREFETCH > gb ? PREFETCH + (size_t)(ng - 1) * gb : PREFETCH;
#pragma GCC unroll 4
		for (int g = 0; g < ng; g++) {
			float *yg = y + (size_t)g * X16_ROWS;
			if (q6)
				q6k_block(grp + (size_t)g * gb + b * qb, pf, x, xs, b, mr, yg, ldy);
			else
				q4k_block(grp + (size_t)g * gb + b * qb, pf, x, xs, b, mr, yg, ldy);
		}
	}
}

#define TILE(MR, NG, YI) xk_tile(q6, grp, gb, b0, b1, xi, xs, MR, NG, YI, ldy)

/* Groups outermost, so each group's weights stream from memory once; each
 * group in spans of KSPAN super-blocks (at most 27 KB of weights) that the
 * tiles of activation rows after the first find in L1. */
INLINE void mm_xk(int q6, const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
		  size_t ldy, size_t j0, size_t j1)
{
	const size_t gb = cpu_xk_group_bytes(q6 ? GI_TYPE_Q6_K : GI_TYPE_Q4_K, k), g1 = j1 / X16_ROWS;
	const size_t nb = k / QK_K;

	for (size_t g = j0 / X16_ROWS; g < g1;) {
		const uint8_t *grp = (const uint8_t *)w + g * gb, *xi = xq;
		if (m == 1 && g + NG_MAX <= g1) {
			const size_t b0 = 0, b1 = nb;
			TILE(1, NG_MAX, y + g * X16_ROWS);
			g += NG_MAX;
			continue;
		}
		if (m == 1 && g + 2 <= g1) {
			const size_t b0 = 0, b1 = nb;
			TILE(1, 2, y + g * X16_ROWS);
			g += 2;
			continue;
		}
		for (size_t b0 = 0, b1; b0 < nb; b0 = b1) {
			b1 = m <= MR_MAX || nb - b0 <= KSPAN ? nb : b0 + KSPAN;
			for (size_t i = 0; i < m; i += MR_MAX) {
				float *yi = y + i * ldy + g * X16_ROWS;
				xi = (const uint8_t *)xq + i * xs;
				switch (m - i >= MR_MAX ? MR_MAX : m - i) {
				case 1:
					TILE(1, 1, yi);
					break;
				case 2:
					TILE(2, 1, yi);
					break;
				case 3:
					TILE(3, 1, yi);
					break;
				case 4:
					TILE(4, 1, yi);
					break;
				case 5:
					TILE(5, 1, yi);
					break;
				case 6:
					TILE(6, 1, yi);
					break;
				case 7:
					TILE(7, 1, yi);
					break;
				default:
					TILE(MR_MAX, 1, yi);
					break;
				}
			}
		}
		g++;
	}
}

void cpu_mm_x16_q4_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			    size_t ldy, size_t j0, size_t j1)
{
	mm_xk(0, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q6_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			    size_t ldy, size_t j0, size_t j1)
{
	mm_xk(1, w, k, xq, xstride, m, y, ldy, j0, j1);
}
