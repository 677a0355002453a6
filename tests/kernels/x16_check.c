/* The packed-against-unpacked matmul check of the x16 tests. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "tests/kernels/x16_check.h"
#include "tests/t_util.h"

static const char *const levels[] = { "scalar", "avx2", "avx512", "amx" };
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

void t_x16_check(enum gi_type t, const void *w, const float *x, size_t m, size_t n, size_t k,
		 size_t step0, size_t step1)
{
	const size_t ldy = n + 5, xrow = cpu_act_row_bytes(t, k), pb = cpu_x16_bytes(t, k, n);
	const enum gi_type at = cpu_x16_act_type(t);
	const size_t xprow = cpu_act_row_bytes(at, k);
	uint8_t *wp = aligned_alloc(64, pb);
	uint8_t *xq = aligned_alloc(64, m * xrow + 64), *xp = aligned_alloc(64, m * xprow + 64);
	float *ref = malloc(m * ldy * sizeof(float)), *y = malloc(m * ldy * sizeof(float));
	ck_assert(wp && xq && xp && ref && y);

	memset(wp, 0xa5, pb);
	cpu_x16_pack(t, w, k, n, 0, n / 32, wp);
	cpu_x16_pack(t, w, k, n, n / 32, n / 16, wp);
	cpu_simd_force("scalar");
	cpu_act_convert(t, x, k, 0, m, xq);
	cpu_act_convert(at, x, k, 0, m, xp);
	for (size_t i = 0; i < m * ldy; i++)
		ref[i] = NAN;
	cpu_matmul_rows(t, w, k, xq, m, ref, ldy, 0, n);

	for (int l = 0; l < NLEVELS; l++) {
		if (cpu_simd_force(levels[l]))
			continue;
		for (int split = 0; split < 2; split++) {
			for (size_t i = 0; i < m * ldy; i++)
				y[i] = NAN;
			if (!split)
				cpu_matmul_x16_rows(t, wp, k, xp, m, y, ldy, 0, n);
			for (size_t j = 0, c = step0; split && j < n; j += c, c = c == step0 ? step1 : step0)
				cpu_matmul_x16_rows(t, wp, k, xp, m, y, ldy, j, j + c < n ? j + c : n);
			for (size_t i = 0; i < m; i++) {
				for (size_t j = 0; j < n; j++) {
					double r = ref[i * ldy + j], got = y[i * ldy + j];
					if (!(fabs(got - r) <= 1e-4 * (fabs(r) + 1.0)))
						ck_abort_msg("%s x16 %s m=%zu n=%zu k=%zu split=%d: y[%zu][%zu]=%.7g "
							     "unpacked %.7g",
							     levels[l], gi_type_name(t), m, n, k, split, i, j, got, r);
				}
				for (size_t j = n; j < ldy; j++)
					ck_assert_msg(isnan(y[i * ldy + j]), "%s x16 %s wrote past column %zu",
						      levels[l], gi_type_name(t), n);
			}
		}
	}
	cpu_simd_force(NULL);
	free(wp);
	free(xq);
	free(xp);
	free(ref);
	free(y);
}
