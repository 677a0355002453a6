/* The loop every SIMD matmul kernel shares: rows [J0, J1) x [0, M) cut
 * into NRM x MRM tiles, edge tiles with constant sizes so each instance
 * of the always-inline tile function keeps its accumulators in registers.
 * MRM is at most 8. CALL(MR, NR) computes the tile at weight row pointer wj (row bytes wrow),
 * activation row pointer xi (stride xs) into yi (stride ldy). */
#pragma once

#define MM_TILE_MR(K, MRM) ((K) < (MRM) ? (K) : (MRM))
#define MM_TILE_CASES(CALL, NR, MRM)                         \
	switch (left >= (MRM) ? (MRM) : left) {              \
	case 1: CALL(1, NR); break;                          \
	case 2: CALL(MM_TILE_MR(2, MRM), NR); break;         \
	case 3: CALL(MM_TILE_MR(3, MRM), NR); break;         \
	case 4: CALL(MM_TILE_MR(4, MRM), NR); break;         \
	case 5: CALL(MM_TILE_MR(5, MRM), NR); break;         \
	case 6: CALL(MM_TILE_MR(6, MRM), NR); break;         \
	case 7: CALL(MM_TILE_MR(7, MRM), NR); break;         \
	default: CALL(MRM, NR); break;                       \
	}

#define MM_TILE_DRIVER(NAME, TYPE, NRM, MRM, CALL)                                           \
	static void NAME(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, \
			 size_t ldy, size_t j0, size_t j1)                                        \
	{                                                                                     \
		const size_t wrow = gi_type_row_bytes(TYPE, k);                                   \
		for (size_t j = j0; j < j1; j += (NRM)) {                                     \
			for (size_t i = 0; i < m; i += (MRM)) {                               \
				const uint8_t *xi = (const uint8_t *)xq + i * xs;             \
				const size_t left = m - i;                                    \
				if (j + (NRM) <= j1) {                                        \
					const uint8_t *wj = (const uint8_t *)w + j * wrow;    \
					float *yi = y + i * ldy + j;                          \
					MM_TILE_CASES(CALL, NRM, MRM)                         \
					continue;                                             \
				}                                                             \
				for (size_t r = j; r < j1; r++) {                             \
					const uint8_t *wj = (const uint8_t *)w + r * wrow;    \
					float *yi = y + i * ldy + r;                          \
					MM_TILE_CASES(CALL, 1, MRM)                           \
				}                                                             \
			}                                                                     \
		}                                                                             \
	}
