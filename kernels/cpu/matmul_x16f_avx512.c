/* AVX-512 matmul over packed F32 weights (repack.h): a tile of up to 8
 * activation rows x 2 groups of 16 output columns keeps its 16 accumulators
 * in registers; each element step loads one 64-byte vector per group and
 * broadcasts one float per activation row, so nothing is summed across
 * lanes however short the rows (stories260K's are 64 and 172 floats, where
 * the GGUF-layout kernel spent as long reducing as multiplying). */
#include <immintrin.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"

#define INLINE static inline __attribute__((always_inline))
#define MR_MAX 8
#define NG_MAX 2

/* Rows [0, MR) x groups [0, NG) of a tile: W at the first group (groups GB
 * floats apart), X rows XS bytes apart, Y (the first group's first column)
 * rows LDY floats apart; MASK[g] picks the columns of group g to store (a
 * range that starts or ends inside a group). */
INLINE void tile(const float *w, size_t gb, size_t k, const uint8_t *x, size_t xs, int mr, int ng,
		 float *y, size_t ldy, const __mmask16 *mask)
{
	__m512 acc[MR_MAX][NG_MAX];

#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
		for (int g = 0; g < ng; g++)
			acc[i][g] = _mm512_setzero_ps();
	for (size_t e = 0; e < k; e++) {
		__m512 wv[NG_MAX];
#pragma GCC unroll 2
		for (int g = 0; g < ng; g++)
			wv[g] = _mm512_load_ps(w + g * gb + e * X16_ROWS);
#pragma GCC unroll 8
		for (int i = 0; i < mr; i++) {
			const __m512 xb = _mm512_set1_ps(((const float *)(x + (size_t)i * xs))[e]);
#pragma GCC unroll 2
			for (int g = 0; g < ng; g++)
				acc[i][g] = _mm512_fmadd_ps(wv[g], xb, acc[i][g]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
		for (int g = 0; g < ng; g++)
			_mm512_mask_storeu_ps(y + (size_t)i * ldy + g * X16_ROWS, mask[g], acc[i][g]);
}

#define ROWS_CASES(NG)                                                                   \
	switch (m - i >= MR_MAX ? MR_MAX : m - i) {                                        \
	case 1: tile(wj, gb, k, xi, xs, 1, NG, yi, ldy, mask); break;                      \
	case 2: tile(wj, gb, k, xi, xs, 2, NG, yi, ldy, mask); break;                      \
	case 3: tile(wj, gb, k, xi, xs, 3, NG, yi, ldy, mask); break;                      \
	case 4: tile(wj, gb, k, xi, xs, 4, NG, yi, ldy, mask); break;                      \
	case 5: tile(wj, gb, k, xi, xs, 5, NG, yi, ldy, mask); break;                      \
	case 6: tile(wj, gb, k, xi, xs, 6, NG, yi, ldy, mask); break;                      \
	case 7: tile(wj, gb, k, xi, xs, 7, NG, yi, ldy, mask); break;                      \
	default: tile(wj, gb, k, xi, xs, MR_MAX, NG, yi, ldy, mask); break;                \
	}

void cpu_mm_x16_f32_avx512(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
			   size_t ldy, size_t j0, size_t j1)
{
	const size_t gb = k * X16_ROWS; /* floats per group */

	/* whole groups from the one holding J0; the masks keep the stores
	 * inside [J0, J1) */
	for (size_t j = j0 / X16_ROWS * X16_ROWS; j < j1; j += NG_MAX * X16_ROWS) {
		const int ng = j1 - j > X16_ROWS ? 2 : 1;
		__mmask16 mask[NG_MAX];
		for (int g = 0; g < ng; g++) {
			size_t c0 = j + (size_t)g * X16_ROWS, lo = j0 > c0 ? j0 - c0 : 0;
			size_t hi = j1 - c0 < X16_ROWS ? j1 - c0 : X16_ROWS;
			mask[g] = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
		}
		const float *wj = (const float *)w + j / X16_ROWS * gb;
		for (size_t i = 0; i < m; i += MR_MAX) {
			const uint8_t *xi = (const uint8_t *)xq + i * xs;
			float *yi = y + i * ldy + j;
			if (ng == 2) {
				ROWS_CASES(2)
			} else {
				ROWS_CASES(1)
			}
		}
	}
}
