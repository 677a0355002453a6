/* Tensor type table and the scalar f16/bf16 conversions (bit-exact IEEE
 * round-to-nearest-even; NaN stays NaN, overflow becomes infinity). */
#include <string.h>

#include "kernels/types.h"

struct type_info {
	const char *name;
	size_t block_elems;
	size_t block_bytes;
};

static const struct type_info type_table[GI_TYPE_COUNT_] = {
	[GI_TYPE_F32] = { "F32", 1, sizeof(float) },
	[GI_TYPE_F16] = { "F16", 1, sizeof(gi_f16) },
	[GI_TYPE_Q4_0] = { "Q4_0", QK4_0, sizeof(struct block_q4_0) },
	[GI_TYPE_Q8_0] = { "Q8_0", QK8_0, sizeof(struct block_q8_0) },
	[GI_TYPE_Q4_K] = { "Q4_K", QK_K, sizeof(struct block_q4_K) },
	[GI_TYPE_Q6_K] = { "Q6_K", QK_K, sizeof(struct block_q6_K) },
	[GI_TYPE_Q8_K] = { "Q8_K", QK_K, sizeof(struct block_q8_K) },
	[GI_TYPE_BF16] = { "BF16", 1, sizeof(gi_bf16) },
};

int gi_type_valid(uint32_t t)
{
	return t < GI_TYPE_COUNT_ && type_table[t].name != NULL;
}

const char *gi_type_name(enum gi_type t)
{
	return gi_type_valid(t) ? type_table[t].name : "unknown";
}

size_t gi_type_block_elems(enum gi_type t)
{
	return gi_type_valid(t) ? type_table[t].block_elems : 0;
}

size_t gi_type_block_bytes(enum gi_type t)
{
	return gi_type_valid(t) ? type_table[t].block_bytes : 0;
}

size_t gi_type_row_bytes(enum gi_type t, size_t n)
{
	if (!gi_type_valid(t) || n % type_table[t].block_elems)
		return 0;
	size_t blocks = n / type_table[t].block_elems;
	if (blocks > SIZE_MAX / type_table[t].block_bytes)
		return 0;
	return blocks * type_table[t].block_bytes;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

float gi_f16_to_f32(gi_f16 h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t mant = h & 0x3ff;

	if (exp == 0x1f)
		return bits_f32(sign | 0x7f800000 | (mant << 13));
	if (exp == 0) {
		/* zero or subnormal: mant * 2^-24, exact in f32 */
		float v = (float)mant * 0x1p-24f;
		return bits_f32(sign | f32_bits(v));
	}
	return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

gi_f16 gi_f32_to_f16(float f)
{
	uint32_t x = f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000;

	x &= 0x7fffffff;
	if (x > 0x7f800000) /* NaN: keep it quiet and keep the top payload bits */
		return (gi_f16)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
	if (x >= 0x477ff000) /* >= 65520 rounds to infinity */
		return (gi_f16)(sign | 0x7c00);
	if (x < 0x38800000) {
		/* below 2^-14: adding 0.5 puts round(|f| / 2^-24) (to nearest
		 * even, by the FPU) in the low mantissa bits */
		float a = bits_f32(x) + 0.5f;
		return (gi_f16)(sign | (f32_bits(a) - 0x3f000000));
	}
	/* rebias the exponent by (127 - 15) << 23 and round to nearest even */
	x += 0xc8000fff + ((x >> 13) & 1);
	return (gi_f16)(sign | (x >> 13));
}

float gi_bf16_to_f32(gi_bf16 h)
{
	return bits_f32((uint32_t)h << 16);
}

gi_bf16 gi_f32_to_bf16(float f)
{
	uint32_t x = f32_bits(f);

	if ((x & 0x7fffffff) > 0x7f800000)
		return (gi_bf16)((x >> 16) | 0x40);
	x += 0x7fff + ((x >> 16) & 1);
	return (gi_bf16)(x >> 16);
}
