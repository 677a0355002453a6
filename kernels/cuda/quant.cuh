/* Decoding the GGUF weight layouts on the device (kernels/types.h; the
 * scalar reference is gi_dequantize_row in kernels/cpu/quant.c): one
 * element at a time for the dequantize and embedding kernels, and the
 * helpers the GEMV kernels decode their blocks with. */
#pragma once
#include "kernels/cuda/common.cuh"

/* Scale and min (6 bits each) of sub-block J of a Q4_K super-block from its
 * packed 12 bytes S. */
static __device__ __forceinline__ void gi_k4_scale_min(int j, const uint8_t *s, int *sc, int *m)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*m = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
		*m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
	}
}

/* The 6-bit quant (0..63, i.e. value + 32) of element I of the Q6_K
 * super-block at B: 4 low bits from ql, 2 high bits from qh. */
static __device__ __forceinline__ int gi_q6k_quant(const struct block_q6_K *b, int i)
{
	int n = i / 128, g = (i % 128) / 32, l = i % 32;
	int lo = b->ql[64 * n + l + ((g & 1) ? 32 : 0)];
	lo = (g & 2) ? lo >> 4 : lo & 0xf;
	return lo | (((b->qh[32 * n + l] >> (2 * g)) & 3) << 4);
}

/* Element I of the row at ROW of type T (GGUF layout). */
static __device__ __forceinline__ float gi_decode(enum gi_type t, const uint8_t *row, uint32_t i)
{
	switch (t) {
	case GI_TYPE_F32:
		return reinterpret_cast<const float *>(row)[i];
	case GI_TYPE_F16:
		return gi_f16_at(reinterpret_cast<const uint16_t *>(row), i);
	case GI_TYPE_BF16:
		return gi_bf16_at(reinterpret_cast<const uint16_t *>(row), i);
	case GI_TYPE_Q4_0: {
		const struct block_q4_0 *b = reinterpret_cast<const struct block_q4_0 *>(row) + i / 32;
		uint32_t j = i % 32;
		int q = j < 16 ? b->qs[j] & 0xf : b->qs[j - 16] >> 4;
		return gi_f16_at(&b->d, 0) * (float)(q - 8);
	}
	case GI_TYPE_Q8_0: {
		const struct block_q8_0 *b = reinterpret_cast<const struct block_q8_0 *>(row) + i / 32;
		return gi_f16_at(&b->d, 0) * (float)b->qs[i % 32];
	}
	case GI_TYPE_Q4_K: {
		const struct block_q4_K *b = reinterpret_cast<const struct block_q4_K *>(row) + i / 256;
		uint32_t j = i % 256, c = j / 64, l = j % 64;
		int sc, m;
		gi_k4_scale_min((int)(2 * c + l / 32), b->scales, &sc, &m);
		int q = l < 32 ? b->qs[32 * c + l] & 0xf : b->qs[32 * c + l - 32] >> 4;
		return gi_f16_at(&b->d, 0) * (float)sc * (float)q - gi_f16_at(&b->dmin, 0) * (float)m;
	}
	case GI_TYPE_Q6_K: {
		const struct block_q6_K *b = reinterpret_cast<const struct block_q6_K *>(row) + i / 256;
		int j = (int)(i % 256);
		return gi_f16_at(&b->d, 0) * (float)b->scales[j / 16] * (float)(gi_q6k_quant(b, j) - 32);
	}
	default:
		return 0.0f;
	}
}

/* Types the kernels decode (every weight type; Q8_K is activations only). */
static inline bool gi_cuda_weight_type(enum gi_type t)
{
	return t == GI_TYPE_F32 || t == GI_TYPE_F16 || t == GI_TYPE_BF16 || t == GI_TYPE_Q4_0 ||
	       t == GI_TYPE_Q8_0 || t == GI_TYPE_Q4_K || t == GI_TYPE_Q6_K;
}

/* Bytes of a row of K elements of T; 0 if K is not a whole number of blocks. */
static inline size_t gi_cuda_row_bytes(enum gi_type t, uint32_t k)
{
	switch (t) {
	case GI_TYPE_F32:
		return (size_t)k * 4;
	case GI_TYPE_F16:
	case GI_TYPE_BF16:
		return (size_t)k * 2;
	case GI_TYPE_Q4_0:
		return k % 32 ? 0 : (size_t)k / 32 * sizeof(struct block_q4_0);
	case GI_TYPE_Q8_0:
		return k % 32 ? 0 : (size_t)k / 32 * sizeof(struct block_q8_0);
	case GI_TYPE_Q4_K:
		return k % 256 ? 0 : (size_t)k / 256 * sizeof(struct block_q4_K);
	case GI_TYPE_Q6_K:
		return k % 256 ? 0 : (size_t)k / 256 * sizeof(struct block_q6_K);
	default:
		return 0;
	}
}
