/* Tensor types: f16/bf16 conversion (exhaustive round trips, rounding to
 * nearest even, inf, NaN, subnormals), the GGUF block layouts decoded from
 * hand-built blocks, and the reference quantizers' error per type. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "tests/t_util.h"

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

/* ---- f16 ------------------------------------------------------------------- */

START_TEST(test_f16_edges)
{
	static const struct {
		float f;
		uint16_t h;
	} cases[] = {
		{ 0.0f, 0x0000 },	      { -0.0f, 0x8000 },	  { 1.0f, 0x3c00 },
		{ -2.0f, 0xc000 },	      { 65504.0f, 0x7bff },	  { 65519.99f, 0x7bff },
		{ 65520.0f, 0x7c00 },	      { 1e9f, 0x7c00 },	  { -1e9f, 0xfc00 },
		{ INFINITY, 0x7c00 },	      { -INFINITY, 0xfc00 },	  { 0x1p-14f, 0x0400 },
		{ 0x1p-24f, 0x0001 },	      { 0x1p-25f, 0x0000 },	  /* tie: to even (0) */
		{ 0x1.8p-25f, 0x0001 },      { 0x1.8p-24f, 0x0002 },   /* 1.5 ulp: tie to even 2 */
		{ 0x1.4p-24f, 0x0001 },      { 0x3ffp-24f, 0x03ff },   /* largest subnormal */
		{ 0x1.ffcp-15f, 0x0400 },    /* rounds up into the normals */
		{ 1.0f + 0x1p-11f, 0x3c00 }, /* tie: to even */
		{ 1.0f + 0x3p-11f, 0x3c02 }, /* tie: to even (up) */
		{ 1.0f + 0x1.01p-11f, 0x3c01 }, { 0.1f, 0x2e66 },	  { -3.14159f, 0xc248 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(gi_f32_to_f16(cases[i].f) == cases[i].h, "f16(%a) = 0x%04x, want 0x%04x", cases[i].f,
			      gi_f32_to_f16(cases[i].f), cases[i].h);
	ck_assert(isnan(gi_f16_to_f32(gi_f32_to_f16(NAN))));
	ck_assert(isnan(gi_f16_to_f32(gi_f32_to_f16(bits_f32(0x7f800001))))); /* signalling, tiny payload */
	ck_assert(isinf(gi_f16_to_f32(0x7c00)) && gi_f16_to_f32(0xfc00) < 0);
	ck_assert(gi_f16_to_f32(0x0001) == 0x1p-24f);
	ck_assert(gi_f16_to_f32(0x8001) == -0x1p-24f);
	ck_assert(f32_bits(gi_f16_to_f32(0x8000)) == 0x80000000u);
}
END_TEST

START_TEST(test_f16_exhaustive)
{
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = gi_f16_to_f32((gi_f16)h);
		int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
		if (nan) {
			ck_assert_msg(isnan(f), "0x%04x not NaN", h);
			ck_assert(isnan(gi_f16_to_f32(gi_f32_to_f16(f))));
			continue;
		}
		ck_assert_msg(gi_f32_to_f16(f) == h, "0x%04x -> %a -> 0x%04x", h, f, gi_f32_to_f16(f));
		/* the midpoint to the next value rounds to the even one of the two */
		if ((h & 0x7fff) < 0x7bff) {
			float g = gi_f16_to_f32((gi_f16)(h + 1));
			float mid = (float)(((double)f + (double)g) / 2);
			uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
			ck_assert_msg(gi_f32_to_f16(mid) == want, "mid of 0x%04x rounds to 0x%04x", h,
				      gi_f32_to_f16(mid));
			/* just above / below the midpoint */
			ck_assert(gi_f32_to_f16(nextafterf(mid, g)) == (uint16_t)(h + 1));
			ck_assert(gi_f32_to_f16(nextafterf(mid, f)) == h);
		}
	}
}
END_TEST

/* ---- bf16 ------------------------------------------------------------------ */

START_TEST(test_bf16)
{
	ck_assert_uint_eq(gi_f32_to_bf16(1.0f), 0x3f80);
	ck_assert_uint_eq(gi_f32_to_bf16(-0.0f), 0x8000);
	ck_assert_uint_eq(gi_f32_to_bf16(INFINITY), 0x7f80);
	ck_assert_uint_eq(gi_f32_to_bf16(bits_f32(0x3f808000)), 0x3f80); /* tie: even */
	ck_assert_uint_eq(gi_f32_to_bf16(bits_f32(0x3f818000)), 0x3f82); /* tie: even (up) */
	ck_assert_uint_eq(gi_f32_to_bf16(bits_f32(0x3f808001)), 0x3f81);
	ck_assert_uint_eq(gi_f32_to_bf16(bits_f32(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
	ck_assert_uint_eq(gi_f32_to_bf16(bits_f32(0x00000001)), 0x0000); /* subnormal */
	ck_assert_uint_eq(gi_f32_to_bf16(bits_f32(0x00018000)), 0x0002);
	ck_assert(isnan(gi_bf16_to_f32(gi_f32_to_bf16(NAN))));
	ck_assert(isnan(gi_bf16_to_f32(gi_f32_to_bf16(bits_f32(0x7f800001)))));
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = gi_bf16_to_f32((gi_bf16)h);
		ck_assert_uint_eq(f32_bits(f), h << 16);
		if (!isnan(f))
			ck_assert_uint_eq(gi_f32_to_bf16(f), h);
	}
}
END_TEST

/* ---- block layouts from hand-built blocks ----------------------------------- */

START_TEST(test_layout_q4_0_q8_0)
{
	struct block_q4_0 b4;
	memset(&b4, 0, sizeof(b4));
	b4.d = 0x3800; /* 0.5 */
	b4.qs[0] = 0x1f;
	b4.qs[15] = 0x80;
	float y[32];
	gi_dequantize_row(GI_TYPE_Q4_0, &b4, y, 32);
	ck_assert(y[0] == 3.5f && y[16] == -3.5f); /* low nibble: element i, high: i + 16 */
	ck_assert(y[15] == -4.0f && y[31] == 0.0f);
	ck_assert(y[1] == -4.0f);

	struct block_q8_0 b8;
	memset(&b8, 0, sizeof(b8));
	b8.d = 0x3400; /* 0.25 */
	b8.qs[7] = -3;
	gi_dequantize_row(GI_TYPE_Q8_0, &b8, y, 32);
	ck_assert(y[7] == -0.75f && y[6] == 0.0f);
	ck_assert_uint_eq(gi_type_row_bytes(GI_TYPE_Q8_0, 64), 68);
	ck_assert_uint_eq(gi_type_row_bytes(GI_TYPE_Q4_0, 33), 0);
}
END_TEST

/* Q4_K as the format describes it: 8 sub-blocks of 32 with 6-bit scales and
 * mins; scales and mins 0..3 are the low 6 bits of bytes 0..3 and 4..7;
 * 4..7 take their low 4 bits from the nibbles of bytes 8..11 (scale low,
 * min high) and their top 2 bits from the top bits of bytes 0..3 (scales)
 * and 4..7 (mins). Quants: 64-element chunks of 32 bytes, low nibbles
 * first. */
START_TEST(test_layout_q4_K)
{
	struct block_q4_K b;
	for (int i = 0; i < 12; i++)
		b.scales[i] = (uint8_t)(0x5a + 37 * i);
	for (int i = 0; i < 128; i++)
		b.qs[i] = (uint8_t)(i * 29 + 3);
	b.d = 0x3c00;	 /* 1 */
	b.dmin = 0x3800; /* 0.5 */
	float y[QK_K];
	gi_dequantize_row(GI_TYPE_Q4_K, &b, y, QK_K);
	for (int e = 0; e < QK_K; e++) {
		int s = e / 32, sc, m;
		if (s < 4) {
			sc = b.scales[s] % 64;
			m = b.scales[s + 4] % 64;
		} else {
			sc = b.scales[s + 4] % 16 + (b.scales[s - 4] / 64) * 16;
			m = b.scales[s + 4] / 16 + (b.scales[s] / 64) * 16;
		}
		int chunk = e / 64, within = e % 64;
		int byte = b.qs[32 * chunk + within % 32];
		int q = within < 32 ? byte % 16 : byte / 16;
		float want = (float)(sc * q) - 0.5f * (float)m;
		ck_assert_msg(y[e] == want, "q4_K element %d: %g want %g", e, y[e], want);
	}
}
END_TEST

/* Q6_K as the format describes it: two halves of 128; in a half, element j
 * has its low 4 bits in ql[64h + j % 64] (low nibble if j < 64, else high)
 * and its top 2 bits in qh[32h + j % 32] at bit 2 * (j / 32); value
 * d * scales[e / 16] * (q - 32). */
START_TEST(test_layout_q6_K)
{
	struct block_q6_K b;
	for (int i = 0; i < 128; i++)
		b.ql[i] = (uint8_t)(i * 53 + 7);
	for (int i = 0; i < 64; i++)
		b.qh[i] = (uint8_t)(i * 91 + 5);
	for (int i = 0; i < 16; i++)
		b.scales[i] = (int8_t)(i * 17 - 100);
	b.d = 0x3800; /* 0.5 */
	float y[QK_K];
	gi_dequantize_row(GI_TYPE_Q6_K, &b, y, QK_K);
	for (int e = 0; e < QK_K; e++) {
		int h = e / 128, j = e % 128;
		int lo = b.ql[64 * h + j % 64];
		lo = j < 64 ? lo % 16 : lo / 16;
		int hi = (b.qh[32 * h + j % 32] >> (2 * (j / 32))) & 3;
		float want = 0.5f * (float)b.scales[e / 16] * (float)(lo + 16 * hi - 32);
		ck_assert_msg(y[e] == want, "q6_K element %d: %g want %g", e, y[e], want);
	}
}
END_TEST

/* ---- quantizer error ----------------------------------------------------------- */

static uint64_t rng = 7;

static double gauss(void)
{
	double s = 0;
	for (int i = 0; i < 12; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		s += (double)(rng >> 11) / 9007199254740992.0;
	}
	return s - 6.0;
}

struct bound {
	enum gi_type t;
	double max_rel_rms;
};

/* Relative RMS error of quantize + dequantize over gaussian rows with
 * outliers; bounds sit just above what these quantizers reach (Q4_0
 * about 0.10, Q4_K 0.08, Q6_K 0.02, Q8_0 0.005). */
static const struct bound bounds[] = {
	{ GI_TYPE_F32, 0.0 },	  { GI_TYPE_F16, 0.0005 },  { GI_TYPE_BF16, 0.003 }, { GI_TYPE_Q8_0, 0.008 },
	{ GI_TYPE_Q6_K, 0.025 }, { GI_TYPE_Q4_K, 0.09 }, { GI_TYPE_Q4_0, 0.13 },
};

START_TEST(test_roundtrip)
{
	const struct bound *bd = &bounds[_i];
	const size_t n = 4096;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	void *q = malloc(gi_type_row_bytes(bd->t, n));
	ck_assert(x && y && q);
	double err = 0, ref = 0;
	for (int row = 0; row < 16; row++) {
		double scale = pow(10.0, row % 5 - 2);
		for (size_t i = 0; i < n; i++)
			x[i] = (float)(gauss() * scale * (i % 211 == 0 ? 6.0 : 1.0) + (row == 3 ? scale : 0.0));
		gi_quantize_row(bd->t, x, q, n);
		gi_dequantize_row(bd->t, q, y, n);
		for (size_t i = 0; i < n; i++) {
			ck_assert(isfinite(y[i]));
			err += ((double)y[i] - x[i]) * ((double)y[i] - x[i]) / (scale * scale);
			ref += (double)x[i] * x[i] / (scale * scale);
		}
	}
	double rel = sqrt(err / ref);
	ck_assert_msg(rel <= bd->max_rel_rms, "%s: relative RMS error %.5f > %.5f", gi_type_name(bd->t), rel,
		      bd->max_rel_rms);
	/* all-zero rows stay exactly zero, constant rows stay close */
	memset(x, 0, n * sizeof(float));
	gi_quantize_row(bd->t, x, q, n);
	gi_dequantize_row(bd->t, q, y, n);
	for (size_t i = 0; i < n; i++)
		ck_assert(y[i] == 0.0f);
	for (size_t i = 0; i < n; i++)
		x[i] = -0.75f;
	gi_quantize_row(bd->t, x, q, n);
	gi_dequantize_row(bd->t, q, y, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabsf(y[i] + 0.75f) <= 0.75f * (float)bd->max_rel_rms + 1e-6f, "%s const: %g",
			      gi_type_name(bd->t), y[i]);
	free(x);
	free(y);
	free(q);
}
END_TEST

START_TEST(test_type_table)
{
	ck_assert(gi_type_valid(GI_TYPE_Q6_K) && !gi_type_valid(3) && !gi_type_valid(1000));
	ck_assert_str_eq(gi_type_name(GI_TYPE_Q4_K), "Q4_K");
	ck_assert_str_eq(gi_type_name((enum gi_type)77), "unknown");
	ck_assert_uint_eq(gi_type_block_elems(GI_TYPE_Q4_K), 256);
	ck_assert_uint_eq(gi_type_block_bytes(GI_TYPE_Q6_K), 210);
	ck_assert_uint_eq(gi_type_row_bytes(GI_TYPE_BF16, 3), 6);
	ck_assert_uint_eq(gi_type_row_bytes(GI_TYPE_Q4_K, 512), 288);
	ck_assert_uint_eq(gi_type_row_bytes(GI_TYPE_Q4_K, 511), 0);
	ck_assert_uint_eq(gi_type_row_bytes(GI_TYPE_F32, SIZE_MAX / 2), 0);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("quant");
	TCase *tc = tcase_create("types");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_f16_edges);
	tcase_add_test(tc, test_f16_exhaustive);
	tcase_add_test(tc, test_bf16);
	tcase_add_test(tc, test_layout_q4_0_q8_0);
	tcase_add_test(tc, test_layout_q4_K);
	tcase_add_test(tc, test_layout_q6_K);
	tcase_add_loop_test(tc, test_roundtrip, 0, (int)(sizeof(bounds) / sizeof(bounds[0])));
	tcase_add_test(tc, test_type_table);
	suite_add_tcase(s, tc);
	return s;
}
