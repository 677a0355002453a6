/* CPU matmul kernels against a plain reference: weights dequantized with
 * gi_dequantize_row, products summed in double with the unquantized
 * activations. The tolerance per output is derived from the activation
 * format (8-bit blocks: each x is off by at most half a step of its block,
 * amax / 254) plus float rounding, so it is tight but never flaky. Every
 * SIMD level this CPU has runs the same table of shapes, including odd M,
 * odd N, odd block counts and row ranges as a thread pool splits them. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "tests/t_util.h"

static const char *const levels[] = { "scalar", "avx2", "avx512", "amx" };
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

static const enum gi_type types[] = {
	GI_TYPE_F32, GI_TYPE_F16, GI_TYPE_BF16, GI_TYPE_Q4_0, GI_TYPE_Q8_0, GI_TYPE_Q4_K, GI_TYPE_Q6_K,
};
#define NTYPES ((int)(sizeof(types) / sizeof(types[0])))

struct shape {
	size_t m, n, k;
};

static uint64_t rng_state;

static float frand(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* Activation block size of the format used for weights of type T (1: exact). */
static size_t act_block(enum gi_type t)
{
	switch (t) {
	case GI_TYPE_Q4_0:
	case GI_TYPE_Q8_0:
		return 32;
	case GI_TYPE_Q4_K:
	case GI_TYPE_Q6_K:
		return QK_K;
	default:
		return 1;
	}
}

/* Runs one shape for type T at the current level; fails on the first
 * output out of tolerance. */
/* Compares Y (M x N, row stride LDY) with the double reference from the
 * dequantized weights WD and the float activations X. */
static void check_out(enum gi_type t, struct shape s, const float *x, const float *wd, const float *y,
		      size_t ldy, int split)
{
	const size_t m = s.m, n = s.n, k = s.k, ab = act_block(t);
	for (size_t i = 0; i < m; i++) {
		const float *xi = x + i * k;
		for (size_t j = 0; j < n; j++) {
			const float *wj = wd + j * k;
			double ref = 0, mag = 0, qerr = 0;
			for (size_t b = 0; b < k; b += ab) {
				double amax = 0, wabs = 0;
				for (size_t e = b; e < b + ab; e++) {
					ref += (double)wj[e] * xi[e];
					mag += fabs((double)wj[e] * xi[e]);
					amax = fmax(amax, fabs(xi[e]));
					wabs += fabs(wj[e]);
				}
				if (ab > 1)
					qerr += wabs * amax / 254.0;
			}
			double tol = qerr * 1.02 + mag * 2e-5 + 1e-6;
			double got = y[i * ldy + j];
			if (!(fabs(got - ref) <= tol))
				ck_abort_msg("%s %s m=%zu n=%zu k=%zu split=%d: y[%zu][%zu]=%.7g ref=%.7g tol=%.3g",
					     cpu_simd_level(), gi_type_name(t), m, n, k, split, i, j, got, ref, tol);
		}
		for (size_t j = n; j < ldy; j++)
			ck_assert_msg(isnan(y[i * ldy + j]), "%s wrote past column %zu", gi_type_name(t), n);
	}
}

static void check_shape(enum gi_type t, struct shape s)
{
	const size_t m = s.m, n = s.n, k = s.k;
	const size_t wrow = gi_type_row_bytes(t, k), xrow = cpu_act_row_bytes(t, k);
	ck_assert_uint_gt(wrow, 0);
	ck_assert_uint_gt(xrow, 0);

	float *x = malloc(m * k * sizeof(float)), *wf = malloc(n * k * sizeof(float));
	float *wd = malloc(n * k * sizeof(float));
	uint8_t *w = malloc(n * wrow), *xq = aligned_alloc(64, m * xrow + 64);
	float *y = malloc(m * (n + 3) * sizeof(float));
	ck_assert(x && wf && wd && w && xq && y);

	/* rows with very different magnitudes and a few outliers */
	for (size_t i = 0; i < m * k; i++)
		x[i] = frand() * (i % 97 == 5 ? 8.0f : 1.0f) * (float)(1 + (i / k) % 3);
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < k; i++)
			wf[j * k + i] = frand() * 0.1f * (float)(1 + j % 4);
		gi_quantize_row(t, wf + j * k, w + j * wrow, k);
		gi_dequantize_row(t, w + j * wrow, wd + j * k, k);
	}

	/* convert in two row ranges; multiply the whole range at once, then
	 * in three ragged column ranges as an uneven thread split would */
	cpu_act_convert(t, x, k, 0, m / 2, xq);
	cpu_act_convert(t, x, k, m / 2, m, xq);
	const size_t ldy = n + 3;
	for (int split = 0; split < 2; split++) {
		for (size_t i = 0; i < m * ldy; i++)
			y[i] = NAN;
		if (!split) {
			cpu_matmul_rows(t, w, k, xq, m, y, ldy, 0, n);
		} else {
			size_t c1 = n / 3, c2 = n - n / 4;
			cpu_matmul_rows(t, w, k, xq, m, y, ldy, 0, c1);
			cpu_matmul_rows(t, w, k, xq, m, y, ldy, c1, c2);
			cpu_matmul_rows(t, w, k, xq, m, y, ldy, c2, n);
		}
		check_out(t, s, x, wd, y, ldy, split);
	}
	free(x);
	free(wf);
	free(wd);
	free(w);
	free(xq);
	free(y);
}

static const struct shape shapes[] = {
	{ 1, 1, 256 }, { 1, 7, 512 }, { 1, 33, 768 }, { 2, 5, 256 }, { 3, 9, 512 },
	{ 4, 8, 256 }, { 5, 11, 1024 }, { 7, 3, 256 }, { 8, 16, 512 }, { 9, 13, 256 },
	{ 16, 12, 768 }, { 17, 6, 512 }, { 33, 5, 256 }, { 16, 16, 256 }, { 35, 37, 512 },
	{ 18, 17, 4352 }, /* more pairs than one AMX packing chunk */
	{ 13, 33, 512 }, { 24, 20, 256 }, /* AMX tiles of 8 rows */
	{ 139, 18, 2304 }, /* AMX: two row blocks, the second of 8 rows + 3, two chunks */
};

static void run_level(int li)
{
	int rc = cpu_simd_force(levels[li]);
	if (rc == -ENOTSUP) {
		fprintf(stderr, "test_matmul: level %s not supported here, skipped\n", levels[li]);
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(cpu_simd_level(), levels[li]);
	rng_state = 12345 + (uint64_t)li;
	for (int ti = 0; ti < NTYPES; ti++)
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
			check_shape(types[ti], shapes[s]);
	/* block counts that are not a multiple of the pair or tile sizes */
	const enum gi_type small[] = { GI_TYPE_Q4_0, GI_TYPE_Q8_0, GI_TYPE_F32, GI_TYPE_F16, GI_TYPE_BF16 };
	const size_t ks[] = { 32, 96, 160, 288 };
	for (size_t ti = 0; ti < sizeof(small) / sizeof(small[0]); ti++)
		for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++)
			for (size_t m = 1; m <= 6; m++)
				check_shape(small[ti], (struct shape){ m == 6 ? 19 : m, m == 6 ? 35 : 2 * m + 1, ks[ki] });
	/* float weights take any K */
	const size_t fk[] = { 1, 15, 17, 100, 1001 };
	for (int t = 0; t < 3; t++)
		for (size_t ki = 0; ki < sizeof(fk) / sizeof(fk[0]); ki++)
			check_shape(types[t], (struct shape){ 5, 7, fk[ki] });
	cpu_simd_force(NULL);
}

START_TEST(test_level)
{
	run_level(_i);
}
END_TEST

/* Every level must agree with the scalar kernels on the same activation
 * bytes almost exactly (same integer math, other float summation order). */
START_TEST(test_levels_agree)
{
	const size_t m = 6, n = 10, k = 1536;
	float *x = malloc(m * k * sizeof(float)), *wf = malloc(k * sizeof(float));
	float *ys = malloc(m * n * sizeof(float)), *yl = malloc(m * n * sizeof(float));
	ck_assert(x && wf && ys && yl);
	rng_state = 99;
	for (size_t i = 0; i < m * k; i++)
		x[i] = frand();
	for (int ti = 0; ti < NTYPES; ti++) {
		enum gi_type t = types[ti];
		size_t wrow = gi_type_row_bytes(t, k), xrow = cpu_act_row_bytes(t, k);
		uint8_t *w = malloc(n * wrow), *xq = aligned_alloc(64, m * xrow);
		ck_assert(w && xq);
		for (size_t j = 0; j < n; j++) {
			for (size_t i = 0; i < k; i++)
				wf[i] = frand() * 0.05f;
			gi_quantize_row(t, wf, w + j * wrow, k);
		}
		ck_assert_int_eq(cpu_simd_force("scalar"), 0);
		cpu_act_convert(t, x, k, 0, m, xq);
		cpu_matmul_rows(t, w, k, xq, m, ys, n, 0, n);
		for (int li = 1; li < NLEVELS; li++) {
			if (cpu_simd_force(levels[li]) != 0)
				continue;
			cpu_matmul_rows(t, w, k, xq, m, yl, n, 0, n);
			for (size_t i = 0; i < m * n; i++)
				ck_assert_msg(fabsf(yl[i] - ys[i]) <= 1e-4f * (1.0f + fabsf(ys[i])),
					      "%s %s [%zu]: %.7g vs scalar %.7g", levels[li], gi_type_name(t), i,
					      yl[i], ys[i]);
		}
		free(w);
		free(xq);
	}
	cpu_simd_force(NULL);
	free(x);
	free(wf);
	free(ys);
	free(yl);
}
END_TEST

/* Every level's activation converter writes the scalar converter's bytes. */
START_TEST(test_act_convert_levels)
{
	const size_t m = 3, k = 2816; /* 88 blocks of 32: odd pair count; 11 of 256 */
	float *x = malloc(m * k * sizeof(float));
	ck_assert(x);
	rng_state = 5;
	for (size_t i = 0; i < m * k; i++)
		x[i] = frand() * (i % 300 < 32 ? 0.0f : 1.0f) * (i % 77 == 0 ? 50.0f : 1.0f);
	for (int ti = 0; ti < NTYPES; ti++) {
		enum gi_type t = types[ti];
		size_t xrow = cpu_act_row_bytes(t, k);
		uint8_t *ref = aligned_alloc(64, m * xrow), *got = aligned_alloc(64, m * xrow);
		ck_assert(ref && got);
		memset(ref, 0xa5, m * xrow);
		ck_assert_int_eq(cpu_simd_force("scalar"), 0);
		cpu_act_convert(t, x, k, 0, m, ref);
		for (int li = 1; li < NLEVELS; li++) {
			if (cpu_simd_force(levels[li]) != 0)
				continue;
			memset(got, 0xa5, m * xrow);
			cpu_act_convert(t, x, k, 0, m, got);
			ck_assert_msg(memcmp(ref, got, m * xrow) == 0, "%s %s activation bytes differ", levels[li],
				      gi_type_name(t));
		}
		free(ref);
		free(got);
	}
	cpu_simd_force(NULL);
	free(x);
}
END_TEST

START_TEST(test_force)
{
	ck_assert_int_eq(cpu_simd_force("nonsense"), -EINVAL);
	ck_assert_int_eq(cpu_simd_force("scalar"), 0);
	ck_assert_str_eq(cpu_simd_level(), "scalar");
	ck_assert_int_eq(cpu_simd_force(NULL), 0);
	const char *auto_level = cpu_simd_level();
	ck_assert(auto_level != NULL);
	ck_assert_uint_eq(cpu_act_row_bytes(GI_TYPE_Q4_0, 33), 0);
	ck_assert_uint_eq(cpu_act_row_bytes(GI_TYPE_Q4_K, 32), 0);
	ck_assert_uint_eq(cpu_act_row_bytes(GI_TYPE_Q8_K, 256), 0);
	ck_assert_uint_eq(cpu_act_row_bytes(GI_TYPE_F16, 3) % 64, 0);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("matmul");
	TCase *tc = tcase_create("levels");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_level, 0, NLEVELS);
	tcase_add_test(tc, test_levels_agree);
	tcase_add_test(tc, test_act_convert_levels);
	tcase_add_test(tc, test_force);
	suite_add_tcase(s, tc);
	return s;
}
