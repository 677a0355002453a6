/* Tensor element types (numbering follows the GGUF/ggml type ids) and their
 * block layouts. Shared by the GGUF reader, the model generator and every
 * backend. */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum gi_type {
	GI_TYPE_F32 = 0,
	GI_TYPE_F16 = 1,
	GI_TYPE_Q4_0 = 2,
	GI_TYPE_Q8_0 = 8,
	GI_TYPE_Q4_K = 12,
	GI_TYPE_Q6_K = 14,
	GI_TYPE_Q8_K = 15, /* activations only */
	GI_TYPE_BF16 = 30,
	GI_TYPE_COUNT_ = 31,
};

#define QK4_0 32
#define QK8_0 32
#define QK_K 256

typedef uint16_t gi_f16;
typedef uint16_t gi_bf16;

struct block_q4_0 {
	gi_f16 d;
	uint8_t qs[QK4_0 / 2];
};
struct block_q8_0 {
	gi_f16 d;
	int8_t qs[QK8_0];
};
struct block_q4_K {
	gi_f16 d, dmin;
	uint8_t scales[12];
	uint8_t qs[QK_K / 2];
};
struct block_q6_K {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	gi_f16 d;
};
struct block_q8_K {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
};
_Static_assert(sizeof(struct block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(struct block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(struct block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(struct block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(struct block_q8_K) == 292, "q8_K");

/* Known type? (the reader rejects the others by name). */
int gi_type_valid(uint32_t t);
const char *gi_type_name(enum gi_type t);
/* Elements per block (1 for float types) and bytes per block. */
size_t gi_type_block_elems(enum gi_type t);
size_t gi_type_block_bytes(enum gi_type t);
/* Bytes of a row of N elements; 0 if N is not a multiple of the block size. */
size_t gi_type_row_bytes(enum gi_type t, size_t n);

float gi_f16_to_f32(gi_f16 h);
gi_f16 gi_f32_to_f16(float f);
float gi_bf16_to_f32(gi_bf16 h);
gi_bf16 gi_f32_to_bf16(float f);
