/* AVX-512 matmuls over packed F16 / BF16 weights (repack_f16.h), any M.
 *
 * 64 bytes of a packed group are elements 2s, 2s + 1 of its 16 weight rows.
 * F16: two vcvtph2ps make rows 0..7 and 8..15, the two elements of a row
 * in adjacent lanes; each is multiplied by the activation pair (x[2s],
 * x[2s + 1]) broadcast as one 64-bit value, into two accumulators per
 * group and activation row, whose adjacent lanes are summed once at the
 * end. BF16: a shift and an AND make element 2s and element 2s + 1 of the
 * 16 rows as floats, multiplied by x[2s] and x[2s + 1] broadcast, into two
 * accumulators (two independent chains) that are added at the end. Each
 * converted weight vector serves every activation row of the tile; at
 * small M a tile spans several groups instead, so several weight streams
 * are in flight (M = 1 is bound by memory bandwidth). Products and sums
 * in f32 with FMA, on the float part of the activation rows. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_f16.h"

#define INLINE static inline __attribute__((always_inline))
/* activation rows x groups per tile: MR x NG <= 8, two accumulators each */
#define MR_MAX 8
#define NG_MAX 8
/* how far ahead each weight stream prefetches: tiles of several groups
 * (M <= 4) PREFETCH_MULTI bytes, the single stream of larger M
 * PREFETCH_ONE */
#define PREFETCH_MULTI 2048
#define PREFETCH_ONE 8192

/* Lane order of the summed F16 accumulator pair (see store_f16). */
static const int32_t f16_rows[16] = { 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15 };

/* Where to prefetch for offset OFF of group G of a tile of NG groups (GRP
 * the first, GB bytes each): the distance ahead in the group, and past
 * the group's end into the group this stream takes in the next tile
 * (G + NG), not G + 1, which the tile reads already. */
INLINE const uint8_t *prefetch_at(const uint8_t *grp, size_t gb, size_t off, int g, int ng)
{
	const size_t p = off + (ng > 1 ? PREFETCH_MULTI : PREFETCH_ONE);
	return grp + (size_t)g * gb + p + (p >= gb ? (size_t)(ng - 1) * gb : 0);
}

/* Y[0..15] from the F16 accumulators A0 (rows 0..7, lanes 2r and 2r + 1
 * the two halves of row r) and A1 (rows 8..15 the same way). */
INLINE void store_f16(__m512 a0, __m512 a1, __m512i order, float *y)
{
	/* per 128-bit lane L: rows 2L, 2L + 1, 8 + 2L, 9 + 2L */
	const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)),
				       _mm512_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1)));
	_mm512_storeu_ps(y, _mm512_permutexvar_ps(order, s));
}

/* Groups G .. G + NG - 1 (GRP the first, GB bytes each) x activation rows
 * X .. X + MR - 1 (XS bytes apart, floats first) into Y (row i at Y + i *
 * LDY, group g's 16 columns at 16 g); KP elements per packed row. */
INLINE void xh_tile(enum gi_type t, const uint8_t *grp, size_t gb, size_t kp, const uint8_t *x,
		    size_t xs, int mr, int ng, float *y, size_t ldy)
{
	const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);
	__m512 a0[NG_MAX][MR_MAX], a1[NG_MAX][MR_MAX];

#pragma GCC unroll 8
	for (int g = 0; g < ng; g++)
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			a0[g][i] = _mm512_setzero_ps();
			a1[g][i] = _mm512_setzero_ps();
		}
	for (size_t e = 0; e < kp; e += 32) {
		const size_t off = e * 32; /* byte offset of the block in a group */
#pragma GCC unroll 4
		for (int s = 0; s < 16; s++) {
#pragma GCC unroll 8
			for (int g = 0; g < ng; g++) {
				const uint8_t *q = grp + (size_t)g * gb + off + 64 * (size_t)s;
				_mm_prefetch((const char *)prefetch_at(grp, gb, off + 64 * (size_t)s, g, ng),
					     _MM_HINT_T0);
				if (t == GI_TYPE_F16) {
					const __m512 w0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)q));
					const __m512 w1 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(q + 32)));
#pragma GCC unroll 8
					for (int i = 0; i < mr; i++) {
						double pair;
						memcpy(&pair, x + (size_t)i * xs + 4 * (e + 2 * (size_t)s), sizeof(pair));
						const __m512 xp = _mm512_castpd_ps(_mm512_set1_pd(pair));
						a0[g][i] = _mm512_fmadd_ps(w0, xp, a0[g][i]);
						a1[g][i] = _mm512_fmadd_ps(w1, xp, a1[g][i]);
					}
				} else {
					const __m512i v = _mm512_load_si512(q);
					const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
					const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi16));
#pragma GCC unroll 8
					for (int i = 0; i < mr; i++) {
						const float *xf = (const float *)(x + (size_t)i * xs) + e + 2 * (size_t)s;
						a0[g][i] = _mm512_fmadd_ps(we, _mm512_set1_ps(xf[0]), a0[g][i]);
						a1[g][i] = _mm512_fmadd_ps(wo, _mm512_set1_ps(xf[1]), a1[g][i]);
					}
				}
			}
		}
	}
	const __m512i order = _mm512_loadu_si512(f16_rows);
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int g = 0; g < ng; g++) {
			float *yg = y + (size_t)i * ldy + (size_t)g * X16_ROWS;
			if (t == GI_TYPE_F16)
				store_f16(a0[g][i], a1[g][i], order, yg);
			else
				_mm512_storeu_ps(yg, _mm512_add_ps(a0[g][i], a1[g][i]));
		}
}

#define XH_TILE(MR, NG) xh_tile(t, grp, gb, kp, xi, xs, MR, NG, yi, ldy)

/* Groups outermost, so each group's weights stream from memory once and
 * further tiles of activation rows find them in L2. At M <= 4 a tile
 * takes 2 to 8 groups: more weight streams in flight and more independent
 * accumulator chains. */
INLINE void mm_xh(enum gi_type t, const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
		  size_t ldy, size_t j0, size_t j1)
{
	const size_t gb = cpu_x16_group_bytes(t, k), kp = act_f16w_kp(k), g1 = j1 / X16_ROWS;

	for (size_t g = j0 / X16_ROWS; g < g1;) {
		const uint8_t *grp = (const uint8_t *)w + g * gb;
		const size_t left = g1 - g;
		const size_t ng = m > 4 || left < 2 ? 1 : m == 1 && left >= 8 ? 8 : m <= 2 && left >= 4 ? 4 : 2;
		for (size_t i = 0; i < m; i += MR_MAX) {
			const uint8_t *xi = (const uint8_t *)xq + i * xs;
			float *yi = y + i * ldy + g * X16_ROWS;
			switch (ng * 16 + (m - i >= MR_MAX ? MR_MAX : m - i)) {
			case 8 * 16 + 1: XH_TILE(1, 8); break;
			case 4 * 16 + 1: XH_TILE(1, 4); break;
			case 4 * 16 + 2: XH_TILE(2, 4); break;
			case 2 * 16 + 1: XH_TILE(1, 2); break;
			case 2 * 16 + 2: XH_TILE(2, 2); break;
			case 2 * 16 + 3: XH_TILE(3, 2); break;
			case 2 * 16 + 4: XH_TILE(4, 2); break;
			case 16 + 1: XH_TILE(1, 1); break;
			case 16 + 2: XH_TILE(2, 1); break;
			case 16 + 3: XH_TILE(3, 1); break;
			case 16 + 4: XH_TILE(4, 1); break;
			case 16 + 5: XH_TILE(5, 1); break;
			case 16 + 6: XH_TILE(6, 1); break;
			case 16 + 7: XH_TILE(7, 1); break;
			default: XH_TILE(MR_MAX, 1); break;
			}
		}
		g += ng;
	}
}

void cpu_mm_x16_f16_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			   size_t ldy, size_t j0, size_t j1)
{
	mm_xh(GI_TYPE_F16, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_bf16_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			    size_t ldy, size_t j0, size_t j1)
{
	mm_xh(GI_TYPE_BF16, w, k, xq, xstride, m, y, ldy, j0, j1);
}
