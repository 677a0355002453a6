/* AVX-512 VNNI matmuls over the packed x16 Q4_0 / Q8_0 layout (repack.h).
 *
 * A packed block is 8 steps of 16 weight rows x 4 bytes, so one vpdpbusd
 * multiplies a step of 16 weight rows by 4 activation bytes broadcast to
 * every lane: the 16 lanes of the accumulator are 16 output columns, and
 * nothing is ever summed across lanes. Per block and activation row the
 * int32 accumulator starts at the block's bias term (c8 * BIAS / 16), takes
 * the 8 steps, and is scaled into a float accumulator by d_w (16 lanes) x
 * d_x. Each weight step, unpacked once, serves every activation row of the
 * tile (MR rows); at small M a tile spans several groups instead, so the
 * loads of several weight streams overlap. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"

#define INLINE static inline __attribute__((always_inline))
/* activation rows and groups per tile: MR x NG float and as many int32
 * accumulators (MR x NG <= 8), the weight step, scales and temporaries
 * within the 32 zmm registers */
#define MR_MAX 8
#define NG_MAX 8
/* how far ahead each weight stream prefetches, from memory: tiles of 2 to 8
 * groups (M <= 4) measured fastest 8 blocks ahead (Q4_0: 2 KiB, 5-15%
 * faster than 4 or 8 KiB; Q8_0: 4 KiB, 5% faster than 2 KiB), the single
 * stream of larger M 8 KiB ahead (7-10% faster than 2 KiB); none at all
 * is 20% slower */
#define PREFETCH_MULTI_BLOCKS 8
#define PREFETCH_ONE 8192

/* The 4 activation bytes at P broadcast to all 16 lanes (a broadcast load:
 * no vector ALU work). */
INLINE __m512i bcast4(const uint8_t *p)
{
	int32_t v;
	memcpy(&v, p, sizeof(v));
	return _mm512_set1_epi32(v);
}

/* Where to prefetch for offset OFF of group G of a tile of NG groups (GRP
 * the first, GB bytes each, blocks of QB quant bytes): the prefetch
 * distance ahead in the group, and past the group's end as far into the
 * group this stream takes in the next tile (G + NG), not into G + 1,
 * which the tile reads already. So the scales and first blocks of every
 * next group arrive in time (measured 8-10% more bandwidth at M = 1 than
 * the plain address ahead). */
INLINE const uint8_t *prefetch_at(const uint8_t *grp, size_t gb, size_t qb, size_t off, int g, int ng)
{
	const size_t p = off + (ng > 1 ? PREFETCH_MULTI_BLOCKS * qb : PREFETCH_ONE);
	return grp + (size_t)g * gb + p + (p >= gb ? (size_t)(ng - 1) * gb : 0);
}

/* Groups G .. G + NG - 1 (GRP the first, GB bytes each) x activation rows
 * X .. X + MR - 1 (XS bytes apart) into Y (row i at Y + i * LDY, group g's
 * 16 columns at 16 g). */
INLINE void x16_tile(enum gi_type t, const uint8_t *grp, size_t gb, size_t k, const uint8_t *x, size_t xs,
		     int mr, int ng, float *y, size_t ldy)
{
	const size_t nb = k / 32, sb = cpu_x16_scale_bytes(k), qb = t == GI_TYPE_Q4_0 ? 256 : 512;
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const float *dx[MR_MAX];
	const int32_t *c8[MR_MAX];
	__m512 acc[NG_MAX][MR_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++) {
		dx[i] = act_d_of(x + (size_t)i * xs, k);
		c8[i] = act_c8_of(x + (size_t)i * xs, k);
#pragma GCC unroll 8
		for (int g = 0; g < ng; g++)
			acc[g][i] = _mm512_setzero_ps();
	}
	/* the bias terms of 16 blocks per row, computed 16 at a time and
	 * broadcast from memory into the accumulators (a load, where scalar
	 * arithmetic and a broadcast from a GPR cost a vector port: 8% at M = 8) */
	int32_t bias[MR_MAX][16];
	for (size_t b = 0; b < nb; b++) {
		__m512i ia[NG_MAX][MR_MAX];
		if (b % 16 == 0) {
			/* c8 is -16 * sum(x), so the shift is exact; the c8 array
			 * is padded to a multiple of 16 (act_meta_len) */
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++) {
				const __m512i c = _mm512_loadu_si512(c8[i] + b);
				_mm512_storeu_si512(bias[i], t == GI_TYPE_Q4_0 ? _mm512_srai_epi32(c, 1)
									 : _mm512_slli_epi32(c, 3));
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
			for (int g = 0; g < ng; g++)
				ia[g][i] = _mm512_set1_epi32(bias[i][b % 16]);
#pragma GCC unroll 8
		for (int g = 0; g < ng; g++) {
			const uint8_t *q = grp + (size_t)g * gb + sb + b * qb;
			const uint8_t *pf = prefetch_at(grp, gb, qb, sb + b * qb, g, ng);
			if (t == GI_TYPE_Q4_0) {
#pragma GCC unroll 8
				for (int s = 0; s < 4; s++) {
					_mm_prefetch((const char *)pf + 64 * s, _MM_HINT_T0);
					const __m512i v = _mm512_loadu_si512(q + 64 * s);
					const __m512i lo = _mm512_and_si512(v, m4);
					const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#pragma GCC unroll 8
					for (int i = 0; i < mr; i++) {
						const uint8_t *xb = x + (size_t)i * xs + 32 * b;
						ia[g][i] = _mm512_dpbusd_epi32(ia[g][i], lo, bcast4(xb + 4 * s));
						ia[g][i] = _mm512_dpbusd_epi32(ia[g][i], hi, bcast4(xb + 16 + 4 * s));
					}
				}
			} else {
#pragma GCC unroll 8
				for (int s = 0; s < 8; s++) {
					_mm_prefetch((const char *)pf + 64 * s, _MM_HINT_T0);
					const __m512i v = _mm512_loadu_si512(q + 64 * s);
#pragma GCC unroll 8
					for (int i = 0; i < mr; i++) {
						const uint8_t *xb = x + (size_t)i * xs + 32 * b;
						ia[g][i] = _mm512_dpbusd_epi32(ia[g][i], v, bcast4(xb + 4 * s));
					}
				}
			}
			const gi_f16 *d = (const gi_f16 *)(grp + (size_t)g * gb) + b * X16_ROWS;
			const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d));
#pragma GCC unroll 8
			for (int i = 0; i < mr; i++)
				acc[g][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[g][i]),
							    _mm512_mul_ps(dw, _mm512_set1_ps(dx[i][b])), acc[g][i]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
		for (int g = 0; g < ng; g++)
			_mm512_storeu_ps(y + (size_t)i * ldy + (size_t)g * X16_ROWS, acc[g][i]);
}

#define X16_TILE(MR, NG) x16_tile(t, grp, gb, k, xi, xs, MR, NG, yi, ldy)

/* Groups outermost, so each group's weights stream from memory once and
 * further tiles of activation rows find them in L1/L2. At M <= 4 a tile
 * takes 2 to 8 groups: more weight streams in flight (M = 1 to 4 are
 * bound by memory, and one core reads 4-8 concurrent streams ~40% faster
 * than one; 8 groups at M = 1 measured up to 10% faster than 2) and more
 * independent accumulator chains. */
INLINE void mm_x16(enum gi_type t, const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
		   size_t ldy, size_t j0, size_t j1)
{
	const size_t gb = cpu_x16_group_bytes(t, k), g1 = j1 / X16_ROWS;

	for (size_t g = j0 / X16_ROWS; g < g1;) {
		const uint8_t *grp = (const uint8_t *)w + g * gb;
		const size_t left = g1 - g;
		const size_t ng = m > 4 || left < 2 ? 1 : m == 1 && left >= 8 ? 8 : m <= 2 && left >= 4 ? 4 : 2;
		for (size_t i = 0; i < m; i += MR_MAX) {
			const uint8_t *xi = (const uint8_t *)xq + i * xs;
			float *yi = y + i * ldy + g * X16_ROWS;
			switch (ng * 16 + (m - i >= MR_MAX ? MR_MAX : m - i)) {
			case 8 * 16 + 1: X16_TILE(1, 8); break;
			case 4 * 16 + 1: X16_TILE(1, 4); break;
			case 4 * 16 + 2: X16_TILE(2, 4); break;
			case 2 * 16 + 1: X16_TILE(1, 2); break;
			case 2 * 16 + 2: X16_TILE(2, 2); break;
			case 2 * 16 + 3: X16_TILE(3, 2); break;
			case 2 * 16 + 4: X16_TILE(4, 2); break;
			case 16 + 1: X16_TILE(1, 1); break;
			case 16 + 2: X16_TILE(2, 1); break;
			case 16 + 3: X16_TILE(3, 1); break;
			case 16 + 4: X16_TILE(4, 1); break;
			case 16 + 5: X16_TILE(5, 1); break;
			case 16 + 6: X16_TILE(6, 1); break;
			case 16 + 7: X16_TILE(7, 1); break;
			default: X16_TILE(MR_MAX, 1); break;
			}
		}
		g += ng;
	}
}

void cpu_mm_x16_q4_0_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			    size_t ldy, size_t j0, size_t j1)
{
	mm_x16(GI_TYPE_Q4_0, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q8_0_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			    size_t ldy, size_t j0, size_t j1)
{
	mm_x16(GI_TYPE_Q8_0, w, k, xq, xstride, m, y, ldy, j0, j1);
}
