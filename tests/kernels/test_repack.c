/* Packed (x16) Q4_0 / Q8_0 matmuls: a matrix packed by cpu_x16_pack, multiplied
 * at every SIMD level this CPU has, gives what the same matrix unpacked
 * gives through cpu_matmul_rows (the same integer block sums, so only float
 * rounding differs), over odd M, K with odd block counts, and column ranges
 * cut at multiples of 16 as the thread pool cuts them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "tests/kernels/x16_check.h"
#include "tests/t_util.h"


struct shape {
	size_t m, n, k;
};

static const struct shape shapes[] = {
	{ 1, 16, 32 },   { 1, 48, 96 },    { 2, 32, 64 },    { 3, 16, 160 },  { 5, 64, 256 },
	{ 7, 32, 2080 }, { 8, 80, 512 },   { 9, 16, 32 },    { 13, 48, 352 }, { 15, 32, 128 },
	{ 16, 64, 256 }, { 17, 48, 96 },   { 31, 32, 1056 }, { 32, 96, 512 }, { 33, 16, 64 },
	{ 64, 64, 2048 }, { 71, 112, 320 }, { 128, 32, 256 },
	/* AMX: every tail of a K chunk's ring of 4 blocks (blocks % 4 = 1, 2,
	 * 3 after whole rings), more rows than one 128-row pass, three K
	 * chunks of 64 blocks */
	{ 16, 16, 192 },  { 20, 16, 224 },  { 48, 32, 416 },  { 150, 48, 672 },
	{ 33, 32, 4192 },
	/* AVX-512 tiles of 8, 4 and 2 groups at M <= 4, and their leftovers */
	{ 1, 208, 224 },  { 2, 96, 96 },    { 3, 48, 160 },   { 4, 80, 352 },
};
#define NSHAPES ((int)(sizeof(shapes) / sizeof(shapes[0])))

static uint64_t rng_state;

static float frand(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static void check_type_shape(enum gi_type t, struct shape s)
{
	const size_t m = s.m, n = s.n, k = s.k, wrow = gi_type_row_bytes(t, k);
	ck_assert_uint_gt(cpu_x16_bytes(t, k, n), 0);
	float *x = malloc(m * k * sizeof(float)), *wf = malloc(k * sizeof(float));
	uint8_t *w = malloc(n * wrow);
	ck_assert(x && wf && w);

	for (size_t i = 0; i < m * k; i++)
		x[i] = frand() * (i % 89 == 3 ? 6.0f : 1.0f) * (float)(1 + (i / k) % 3);
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < k; i++)
			wf[i] = frand() * 0.1f * (float)(1 + j % 5);
		gi_quantize_row(t, wf, w + j * wrow, k);
	}
	/* whole, then in ranges of 32 columns */
	t_x16_check(t, w, x, m, n, k, 32, 32);
	free(x);
	free(wf);
	free(w);
}

START_TEST(test_x16_q4_0)
{
	rng_state = 0x1234 + (uint64_t)_i;
	check_type_shape(GI_TYPE_Q4_0, shapes[_i]);
}
END_TEST

START_TEST(test_x16_q8_0)
{
	rng_state = 0x5678 + (uint64_t)_i;
	check_type_shape(GI_TYPE_Q8_0, shapes[_i]);
}
END_TEST

START_TEST(test_x16_sizes)
{
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q4_0, 2048, 256), 256 / 16 * (64 * 32 + 64 * 256));
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q8_0, 32, 16), 64 + 512);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q4_0, 2048, 24), 0);  /* N not a multiple of 16 */
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q4_0, 48, 16), 0);    /* K not a multiple of 32 */
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q8_K, 256, 16), 0);   /* no packed layout */
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q8_0, 32, SIZE_MAX - 15), 0);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("repack");
	TCase *tc = tcase_create("x16");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_x16_q4_0, 0, NSHAPES);
	tcase_add_loop_test(tc, test_x16_q8_0, 0, NSHAPES);
	tcase_add_test(tc, test_x16_sizes);
	suite_add_tcase(s, tc);
	return s;
}
