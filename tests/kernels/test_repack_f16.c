/* Packed (x16) F16 / BF16 matmuls (repack_f16.h): the packed words sit
 * where the layout says, and a matrix packed by cpu_x16_pack, multiplied at
 * every SIMD level this CPU has, gives what the same matrix unpacked gives
 * through cpu_matmul_rows at the scalar level, within the tolerance of the
 * AMX-BF16 split products (test_matmul's: 2e-5 of the sum of |w x|), over
 * odd M (below, at and past the AMX threshold, with leftover rows), K that
 * is and is not a multiple of 32, and column ranges cut at multiples of 16
 * as the thread pool cuts them; nothing written outside them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_f16.h"
#include "tests/t_util.h"

static const char *const levels[] = { "scalar", "avx2", "avx512", "amx" };
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

struct shape {
	size_t m, n, k;
};

static const struct shape shapes[] = {
	{ 1, 16, 32 },    { 1, 48, 100 },   { 2, 32, 64 },    { 3, 16, 160 },   { 5, 64, 256 },
	{ 7, 32, 2080 },  { 8, 80, 512 },   { 9, 16, 7 },     { 13, 48, 352 },  { 15, 32, 128 },
	{ 16, 64, 256 },  { 17, 48, 96 },   { 31, 32, 1056 }, { 32, 96, 512 },  { 33, 16, 64 },
	{ 47, 64, 2048 }, { 64, 32, 200 },  { 70, 112, 320 }, { 128, 32, 256 }, { 131, 48, 2048 },
	/* AVX-512 tiles of 8, 4 and 2 groups at M <= 4, and their leftovers */
	{ 1, 208, 224 },  { 2, 96, 96 },    { 3, 48, 160 },   { 4, 80, 352 },
	/* more K than one AMX chunk, rows past whole 16-row tiles */
	{ 40, 32, 4192 }, { 19, 16, 3000 },
};
#define NSHAPES ((int)(sizeof(shapes) / sizeof(shapes[0])))

static uint64_t rng_state;

static float frand(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float wval(enum gi_type t, const void *w, size_t i)
{
	const uint16_t h = ((const uint16_t *)w)[i];
	return t == GI_TYPE_F16 ? gi_f16_to_f32(h) : gi_bf16_to_f32(h);
}

static void check_type_shape(enum gi_type t, struct shape s)
{
	const size_t m = s.m, n = s.n, k = s.k, ldy = n + 5, wrow = gi_type_row_bytes(t, k);
	const size_t xrow = cpu_act_row_bytes(t, k), pb = cpu_x16_bytes(t, k, n);
	ck_assert_uint_eq(pb, n / 16 * act_f16w_kp(k) * 32);
	ck_assert_int_eq(cpu_x16_act_type(t), t);
	float *x = malloc(m * k * sizeof(float)), *wf = malloc(k * sizeof(float));
	uint8_t *w = malloc(n * wrow), *wp = aligned_alloc(64, pb), *xq = aligned_alloc(64, m * xrow + 64);
	float *ref = malloc(m * ldy * sizeof(float)), *y = malloc(m * ldy * sizeof(float));
	double *mag = malloc(m * n * sizeof(double));
	ck_assert(x && wf && w && wp && xq && ref && y && mag);

	for (size_t i = 0; i < m * k; i++)
		x[i] = frand() * (i % 89 == 3 ? 6.0f : 1.0f) * (float)(1 + (i / k) % 3);
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < k; i++)
			wf[i] = frand() * 0.1f * (float)(1 + j % 5);
		gi_quantize_row(t, wf, w + j * wrow, k);
	}
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			double a = 0;
			for (size_t e = 0; e < k; e++)
				a += fabs((double)wval(t, w + j * wrow, e) * x[i * k + e]);
			mag[i * n + j] = a;
		}
	/* two group ranges, as two threads pack them; the padding must come
	 * out zero */
	memset(wp, 0x7b, pb);
	cpu_x16_pack(t, w, k, n, 0, n / 32, wp);
	cpu_x16_pack(t, w, k, n, n / 32, n / 16, wp);

	cpu_simd_force("scalar");
	cpu_act_convert(t, x, k, 0, m, xq);
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
				cpu_matmul_x16_rows(t, wp, k, xq, m, y, ldy, 0, n);
			/* ranges of 16 and 48 columns in turn */
			for (size_t j = 0, c = 16; split && j < n; j += c, c = c == 16 ? 48 : 16)
				cpu_matmul_x16_rows(t, wp, k, xq, m, y, ldy, j, j + c < n ? j + c : n);
			for (size_t i = 0; i < m; i++) {
				for (size_t j = 0; j < n; j++) {
					const double r = ref[i * ldy + j], got = y[i * ldy + j];
					const double tol = mag[i * n + j] * 2e-5 + 1e-6;
					if (!(fabs(got - r) <= tol))
						ck_abort_msg("%s x16 %s m=%zu n=%zu k=%zu split=%d: y[%zu][%zu]=%.7g "
							     "unpacked %.7g tol %.3g",
							     levels[l], gi_type_name(t), m, n, k, split, i, j, got, r, tol);
				}
				for (size_t j = n; j < ldy; j++)
					ck_assert_msg(isnan(y[i * ldy + j]), "%s x16 %s wrote past column %zu",
						      levels[l], gi_type_name(t), n);
			}
		}
	}
	cpu_simd_force(NULL);
	free(x);
	free(wf);
	free(w);
	free(wp);
	free(xq);
	free(ref);
	free(y);
	free(mag);
}

START_TEST(test_xh_f16)
{
	rng_state = 0x1f16 + (uint64_t)_i;
	check_type_shape(GI_TYPE_F16, shapes[_i]);
}
END_TEST

START_TEST(test_xh_bf16)
{
	rng_state = 0xbf16 + (uint64_t)_i;
	check_type_shape(GI_TYPE_BF16, shapes[_i]);
}
END_TEST

/* Every word of a packed matrix, padding included, against the layout. */
START_TEST(test_xh_layout)
{
	const size_t n = 32, k = 70, kp = 96;
	uint16_t w[32 * 70], *wp = aligned_alloc(64, n * kp * 2);
	ck_assert(wp);
	for (size_t i = 0; i < n * k; i++)
		w[i] = (uint16_t)(i + 1);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_BF16, k, n), n * kp * 2);
	memset(wp, 0xee, n * kp * 2);
	cpu_x16_pack(GI_TYPE_BF16, w, k, n, 0, 2, wp);
	for (size_t g = 0; g < 2; g++)
		for (size_t r = 0; r < 16; r++)
			for (size_t e = 0; e < kp; e++) {
				const uint16_t want = e < k ? w[(16 * g + r) * k + e] : 0;
				ck_assert_uint_eq(wp[g * 16 * kp + xh_word(r, e)], want);
			}
	/* step 1 of block 1 of group 0: elements 34, 35 of each row in turn */
	ck_assert_uint_eq(wp[512 + 32 + 2 * 5], w[5 * k + 34]);
	ck_assert_uint_eq(wp[512 + 32 + 2 * 5 + 1], w[5 * k + 35]);
	free(wp);
}
END_TEST

START_TEST(test_xh_sizes)
{
	ck_assert_uint_eq(cpu_x16_block_bytes(GI_TYPE_F16), XH_BLOCK);
	ck_assert_uint_eq(cpu_x16_block_bytes(GI_TYPE_BF16), XH_BLOCK);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_F16, 2048, 5632), 5632 * 2048 * 2);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_F16, 1, 16), 16 * 32 * 2);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_F16, 2048, 24), 0); /* N not a multiple of 16 */
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_BF16, 0, 16), 0);
	ck_assert_uint_eq(cpu_x16_group_bytes(GI_TYPE_F16, SIZE_MAX / 2), 0);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_F16, 1 << 20, SIZE_MAX / 16 * 8), 0);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("repack_f16");
	TCase *tc = tcase_create("xh");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_xh_f16, 0, NSHAPES);
	tcase_add_loop_test(tc, test_xh_bf16, 0, NSHAPES);
	tcase_add_test(tc, test_xh_layout);
	tcase_add_test(tc, test_xh_sizes);
	suite_add_tcase(s, tc);
	return s;
}
