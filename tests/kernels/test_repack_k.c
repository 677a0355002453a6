/* Packed (x16) Q4_K / Q6_K matmuls: a matrix packed by cpu_x16_pack and
 * multiplied at every SIMD level this CPU has gives what the same matrix
 * unpacked gives through cpu_matmul_rows (the same integer sums per
 * super-block, so only float rounding differs), over M = 1 .. 272, several
 * N and K, and column ranges cut at multiples of 16 as the thread pool
 * cuts them. Also: the layout sizes, and the packed bytes against the GGUF
 * values they came from. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_k.h"
#include "tests/kernels/x16_check.h"
#include "tests/t_util.h"


struct shape {
	size_t m, n, k;
};

static const struct shape shapes[] = {
	{ 1, 16, 256 },   { 1, 48, 512 },  { 1, 32, 2304 }, { 1, 112, 512 }, { 1, 64, 2560 },
	{ 2, 32, 256 },   { 2, 80, 512 },  { 3, 16, 768 },  { 6, 48, 256 },
	{ 4, 64, 512 },   { 5, 48, 256 },  { 7, 32, 1280 }, { 8, 80, 512 },  { 9, 16, 256 },
	{ 13, 48, 768 },  { 16, 64, 256 }, { 17, 32, 512 }, { 31, 16, 2304 }, { 33, 96, 256 },
	{ 64, 32, 1024 }, { 70, 48, 512 },
	/* AMX: a pair of row tiles and a single one, several K chunks, more
	 * than one block of activation rows, rows left over */
	{ 48, 32, 1280 }, { 150, 32, 2304 }, { 272, 16, 512 },
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
	ck_assert_int_eq(cpu_x16_act_type(t), GI_TYPE_Q6_K);
	ck_assert_uint_eq(cpu_x16_bytes(t, k, n), n / 16 * cpu_x16_group_bytes(t, k));
	float *x = malloc(m * k * sizeof(float)), *wf = malloc(k * sizeof(float));
	uint8_t *w = malloc(n * wrow);
	ck_assert(x && wf && w);

	/* activations with outliers (large d, small quants elsewhere), weights
	 * with rows of different magnitude and sub-blocks of mixed sign */
	for (size_t i = 0; i < m * k; i++)
		x[i] = frand() * (i % 89 == 3 ? 6.0f : 1.0f) * (float)(1 + (i / k) % 3);
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < k; i++)
			wf[i] = (frand() + (i / 32 % 3 == 1 ? 0.6f : 0.0f)) * 0.1f * (float)(1 + j % 5);
		gi_quantize_row(t, wf, w + j * wrow, k);
	}
	/* whole, then in ranges of 16, 32, 16, 32, ... columns */
	t_x16_check(t, w, x, m, n, k, 16, 32);
	free(x);
	free(wf);
	free(w);
}

START_TEST(test_xk_q4_K)
{
	rng_state = 0x9abc + (uint64_t)_i;
	check_type_shape(GI_TYPE_Q4_K, shapes[_i]);
}
END_TEST

START_TEST(test_xk_q6_K)
{
	rng_state = 0xdef0 + (uint64_t)_i;
	check_type_shape(GI_TYPE_Q6_K, shapes[_i]);
}
END_TEST

/* The packed Q6_K bytes decode, by the layout of repack_k.h, to the GGUF
 * quants + 32 and scales; Q4_K to the GGUF nibbles, scales and mins. */
START_TEST(test_xk_layout)
{
	const size_t k = 512, n = 16;
	float wf[512];
	struct block_q6_K w6[16 * 2];
	struct block_q4_K w4[16 * 2];
	uint8_t *p6 = aligned_alloc(64, cpu_x16_bytes(GI_TYPE_Q6_K, k, n));
	uint8_t *p4 = aligned_alloc(64, cpu_x16_bytes(GI_TYPE_Q4_K, k, n));
	float deq[512], row[512];
	ck_assert(p6 && p4);

	rng_state = 42;
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < k; i++)
			wf[i] = frand() * (float)(1 + j);
		gi_quantize_row(GI_TYPE_Q6_K, wf, w6 + 2 * j, k);
		gi_quantize_row(GI_TYPE_Q4_K, wf, w4 + 2 * j, k);
	}
	cpu_x16_pack(GI_TYPE_Q6_K, w6, k, n, 0, 1, p6);
	cpu_x16_pack(GI_TYPE_Q4_K, w4, k, n, 0, 1, p4);
	for (size_t r = 0; r < n; r++) {
		/* Q6_K: d * scale * (q - 32) from the packed bytes */
		gi_dequantize_row(GI_TYPE_Q6_K, w6 + 2 * r, deq, k);
		for (size_t e = 0; e < k; e++) {
			const uint8_t *blk = p6 + e / 256 * XK_Q6K_BLOCK;
			const size_t f = e % 256, j = f % 64 / 16, v = f % 16 / 4, t = f % 4;
			const uint8_t *u = blk + XK_Q6K_QS + XK_Q6K_QUARTER * (f / 64) + 192 * v + 4 * r + t;
			const int q = j == 0 ? u[0] & 63
				    : j == 1 ? (u[128] & 15) | (u[0] >> 6) << 4
				    : j == 2 ? u[64] & 63
					     : (u[128] >> 4) | (u[64] >> 6) << 4;
			float d;
			memcpy(&d, blk + 4 * r, sizeof(d));
			row[e] = d * (float)(int8_t)blk[XK_Q6K_SCALE + 16 * (f / 16) + r] * (float)(q - 32);
		}
		for (size_t e = 0; e < k; e++)
			ck_assert_msg(row[e] == deq[e], "q6_K row %zu elem %zu: packed %g gguf %g", r, e, row[e], deq[e]);
		/* Q4_K: d * scale * q - dmin * min */
		gi_dequantize_row(GI_TYPE_Q4_K, w4 + 2 * r, deq, k);
		for (size_t e = 0; e < k; e++) {
			const uint8_t *blk = p4 + e / 256 * XK_Q4K_BLOCK;
			const size_t f = e % 256, s = f / 32, j = f % 32 / 4, t = f % 4;
			const uint8_t v = blk[XK_Q4K_QS + 512 * (s / 2) + 64 * j + 4 * r + t];
			const int q = s & 1 ? v >> 4 : v & 15;
			const gi_f16 *dd = (const gi_f16 *)blk;
			const float d = gi_f16_to_f32(dd[r]) * (float)blk[XK_Q4K_SCALE + 16 * s + r];
			const float mn = gi_f16_to_f32(dd[16 + r]) * (float)blk[XK_Q4K_MIN + 16 * s + r];
			row[e] = d * (float)q - mn;
		}
		for (size_t e = 0; e < k; e++)
			ck_assert_msg(fabsf(row[e] - deq[e]) <= 1e-6f * (fabsf(deq[e]) + 1.0f),
				      "q4_K row %zu elem %zu: packed %g gguf %g", r, e, row[e], deq[e]);
	}
	free(p6);
	free(p4);
}
END_TEST

START_TEST(test_xk_sizes)
{
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q4_K, 2048, 32), 2 * 8 * XK_Q4K_BLOCK);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q6_K, 256, 16), XK_Q6K_BLOCK);
	ck_assert_uint_eq(cpu_x16_block_bytes(GI_TYPE_Q4_K), XK_Q4K_BLOCK);
	ck_assert_uint_eq(cpu_x16_block_bytes(GI_TYPE_Q6_K), XK_Q6K_BLOCK);
	ck_assert_uint_eq(XK_Q4K_BLOCK % 64, 0);
	ck_assert_uint_eq(XK_Q6K_BLOCK % 64, 0);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q4_K, 2048, 24), 0);  /* N not a multiple of 16 */
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q6_K, 288, 16), 0);   /* K not a multiple of 256 */
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q4_K, 0, 16), 0);
	ck_assert_uint_eq(cpu_x16_bytes(GI_TYPE_Q6_K, 256, SIZE_MAX - 15), 0);
	ck_assert_uint_eq(cpu_x16_group_bytes(GI_TYPE_Q4_K, SIZE_MAX / 256 * 256), 0);
	ck_assert_int_eq(cpu_x16_act_type(GI_TYPE_Q4_K), GI_TYPE_Q6_K);
	ck_assert_int_eq(cpu_x16_act_type(GI_TYPE_Q6_K), GI_TYPE_Q6_K);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("repack_k");
	TCase *tc = tcase_create("xk");
	tcase_set_timeout(tc, 240);
	tcase_add_loop_test(tc, test_xk_q4_K, 0, NSHAPES);
	tcase_add_loop_test(tc, test_xk_q6_K, 0, NSHAPES);
	tcase_add_test(tc, test_xk_layout);
	tcase_add_test(tc, test_xk_sizes);
	suite_add_tcase(s, tc);
	return s;
}
