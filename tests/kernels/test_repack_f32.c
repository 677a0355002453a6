/* Packed (x16) F32 matmul: a matrix packed by cpu_x16_pack, multiplied at
 * every SIMD level this CPU has, against the same matrix through
 * cpu_matmul_rows; any K (short rows are the point of it), N not a multiple
 * of 16 (the last group padded), column ranges cut anywhere, and nothing
 * written outside them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "tests/t_util.h"

static const char *const levels[] = { "scalar", "avx2", "avx512", "amx" };
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

struct shape {
	size_t m, n, k;
};

static const struct shape shapes[] = {
	{ 1, 16, 1 },   { 1, 512, 64 },  { 5, 64, 172 }, { 5, 172, 64 }, { 3, 17, 7 },
	{ 8, 33, 64 },  { 9, 48, 100 },  { 13, 5, 31 },  { 16, 128, 64 }, { 40, 200, 96 },
};
#define NSHAPES ((int)(sizeof(shapes) / sizeof(shapes[0])))

static uint64_t rng_state;

static float frand(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

START_TEST(test_x16_f32)
{
	const struct shape s = shapes[_i];
	const size_t m = s.m, n = s.n, k = s.k, ldy = n + 21, pb = cpu_x16_bytes(GI_TYPE_F32, k, n);
	const size_t xrow = cpu_act_row_bytes(GI_TYPE_F32, k);
	rng_state = 0x9abc + (uint64_t)_i;
	ck_assert_uint_eq(pb, (n + 15) / 16 * k * 64);
	float *x = malloc(m * k * sizeof(float)), *w = malloc(n * k * sizeof(float));
	uint8_t *wp = aligned_alloc(64, pb), *xq = aligned_alloc(64, m * xrow + 64);
	float *ref = malloc(m * ldy * sizeof(float)), *y = malloc(m * ldy * sizeof(float));
	ck_assert(x && w && wp && xq && ref && y);
	for (size_t i = 0; i < m * k; i++)
		x[i] = frand();
	for (size_t i = 0; i < n * k; i++)
		w[i] = frand() * 0.5f;
	memset(wp, 0x7f, pb); /* the padding rows must come out zero */
	size_t groups = (n + 15) / 16;
	cpu_x16_pack(GI_TYPE_F32, w, k, n, 0, groups / 2, wp);
	cpu_x16_pack(GI_TYPE_F32, w, k, n, groups / 2, groups, wp);

	cpu_simd_force("scalar");
	cpu_act_convert(GI_TYPE_F32, x, k, 0, m, xq);
	cpu_matmul_rows(GI_TYPE_F32, w, k, xq, m, ref, ldy, 0, n);
	for (int l = 0; l < NLEVELS; l++) {
		if (cpu_simd_force(levels[l]))
			continue;
		/* one range; ranges of 16; ranges of 7 (starting inside groups) */
		static const size_t steps[] = { 0, 16, 7 };
		for (int split = 0; split < 3; split++) {
			const size_t step = steps[split] ? steps[split] : n;
			for (size_t i = 0; i < m * ldy; i++)
				y[i] = NAN;
			for (size_t j = 0; j < n; j += step)
				cpu_matmul_x16_rows(GI_TYPE_F32, wp, k, xq, m, y, ldy, j, j + step < n ? j + step : n);
			for (size_t i = 0; i < m; i++) {
				for (size_t j = 0; j < n; j++) {
					double r = ref[i * ldy + j], got = y[i * ldy + j];
					ck_assert_msg(fabs(got - r) <= 1e-5 * (fabs(r) + (double)k),
						      "%s x16 f32 m=%zu n=%zu k=%zu split=%d: y[%zu][%zu]=%.8g "
						      "unpacked %.8g",
						      levels[l], m, n, k, split, i, j, got, r);
				}
				for (size_t j = n; j < ldy; j++)
					ck_assert_msg(isnan(y[i * ldy + j]), "%s x16 f32 wrote column %zu of %zu",
						      levels[l], j, n);
			}
		}
	}
	cpu_simd_force(NULL);
	free(x);
	free(w);
	free(wp);
	free(xq);
	free(ref);
	free(y);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("repack_f32");
	TCase *tc = tcase_create("x16_f32");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_x16_f32, 0, NSHAPES);
	suite_add_tcase(s, tc);
	return s;
}
