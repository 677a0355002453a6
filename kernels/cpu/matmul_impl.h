/* Internal interface between the CPU matmul dispatcher (matmul.c) and its
 * per-ISA kernels (matmul_scalar.c, *_avx2.c, *_avx512.c, *_amx.c).
 *
 * Activation row formats. Every SIMD level reads and writes the same bytes,
 * so a row converted at one level can be multiplied at any other:
 *
 *   F32 weights: K floats.
 *   F16, BF16 weights: KP = K rounded up to 32; KP floats (the row, zero
 *     padded), then KP bf16 XH = bf16(x) and KP bf16 XL = bf16(x - XH), the
 *     two halves AMX-BF16 multiplies (x = XH + XL to 16 significant bits).
 *   Q4_0, Q8_0 weights ("pair" format): the K/32 blocks of the row are taken
 *     two at a time, P = ceil(K / 64) pairs, a missing odd last block being
 *     zeros. First P * 64 int8 quants, then act_meta_len(K) float scales d
 *     (one per block, zero-padded), then as many int32 lane terms c8.
 *     Q8_0: a pair holds blocks b, b+1 in natural order.
 *     Q4_0: a pair holds b[0..15], b+1[0..15], b[16..31], b+1[16..31], the
 *     order in which the nibbles of two weight blocks unpack into one vector.
 *   Q4_K, Q6_K weights: K / 256 struct block_q8_K (ggml's Q8_K; for Q4_K
 *     with its sub-blocks reordered, see act_q4k_slot).
 *
 * Rows start on 64-byte boundaries when the buffer does (row bytes are
 * rounded up to 64). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

/* Pairs of a pair-format row of K elements. */
static inline size_t act_pairs(size_t k)
{
	return (k / 32 + 1) / 2;
}

/* Blocks of a pair-format row rounded up to 16 (one vector of scales). */
static inline size_t act_meta_len(size_t k)
{
	return (act_pairs(k) * 2 + 15) & ~(size_t)15;
}

/* Scales of the blocks of a pair-format row. */
static inline const float *act_d_of(const void *row, size_t k)
{
	return (const float *)((const uint8_t *)row + act_pairs(k) * 64);
}

/* The integer term that one 32-bit lane of a block adds to the block's dot
 * product of raw unsigned weight quants (eight lanes per block):
 * -sum(qs) for Q4_0 (nibbles are stored +8, so the block needs
 * -8 * sum(qs)), -16 * sum(qs) for Q8_0 (kernels bias the int8 weights by
 * +128 for unsigned x signed products: -128 * sum(qs) per block). */
static inline const int32_t *act_c8_of(const void *row, size_t k)
{
	return (const int32_t *)(act_d_of(row, k) + act_meta_len(k));
}

/* K rounded up to 32: the floats of an F16/BF16-weight activation row;
 * its XH part starts at 4 * KP bytes, XL at 6 * KP. */
static inline size_t act_f16w_kp(size_t k)
{
	return (k + 31) & ~(size_t)31;
}

/* Position of element E of block B (within its pair) in a pair-format row. */
static inline size_t act_q4_pos(size_t b, size_t e)
{
	return (b / 2) * 64 + (b & 1) * 16 + (e & 15) + (e >> 4) * 32;
}

/* One matmul kernel: Y[i * LDY + j] = dot(W row j, act row i), i < M,
 * J0 <= j < J1; act rows XSTRIDE bytes apart. */
typedef void (*cpu_mm_fn)(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			  float *y, size_t ldy, size_t j0, size_t j1);
/* One activation converter: row X of K floats to its format at XQ. */
typedef void (*cpu_act_fn)(const float *x, size_t k, void *xq);

struct cpu_kernels {
	const char *name;
	cpu_act_fn act[GI_TYPE_COUNT_];
	cpu_mm_fn mm[GI_TYPE_COUNT_];
	/* over weights packed by cpu_x16_pack (Q4_0, Q8_0; repack.h), Q8_0
	 * activation rows; J0 and J1 multiples of 16 */
	cpu_mm_fn mm_x16[GI_TYPE_COUNT_];
};

/* Scalar activation converters (used by every level unless it has its own). */
void cpu_act_f32_scalar(const float *x, size_t k, void *xq);
void cpu_act_f16w_scalar(const float *x, size_t k, void *xq);
void cpu_act_q4_0_scalar(const float *x, size_t k, void *xq);
void cpu_act_q8_0_scalar(const float *x, size_t k, void *xq);
void cpu_act_q8_K_scalar(const float *x, size_t k, void *xq);
void cpu_act_q4_K_scalar(const float *x, size_t k, void *xq);

/* The packed (x16) matmuls in plain C (repack.c), as kernel-table entries. */
void cpu_mm_x16_f32_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			   float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q4_0_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q8_0_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
/* The packed Q4_K / Q6_K matmuls in plain C (repack_k.c). */
void cpu_mm_x16_q4_K_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q6_K_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
/* The packed F16 / BF16 matmuls in plain C (repack_f16.c). */
void cpu_mm_x16_f16_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			   float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_bf16_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);

extern const struct cpu_kernels cpu_kernels_scalar;
#if !GI_NO_SIMD
extern const struct cpu_kernels cpu_kernels_avx2;
extern const struct cpu_kernels cpu_kernels_avx512;
/* AMX matmuls (one entry per type, NULL when absent): for M >= 16, and
 * M >= 8 for Q4_0/Q8_0; they call the AVX-512 kernels for small M and for
 * rows left over from whole 16 x 16 tiles. cpu_amx_enable asks the kernel
 * for the tile data permission; 0 on success. */
extern const struct cpu_kernels cpu_kernels_amx;
int cpu_amx_enable(void);
#endif

/* Test hook: forces a level ("scalar", "avx2", "avx512", "amx"); -ENOTSUP if
 * this CPU or build lacks it, -EINVAL if unknown. NULL restores the
 * automatic choice. Not thread-safe against concurrent matmuls. */
int cpu_simd_force(const char *level);

#if !GI_NO_SIMD
/* The packed F32 matmul (matmul_x16f_avx512.c). */
void cpu_mm_x16_f32_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			   float *y, size_t ldy, size_t j0, size_t j1);

/* AVX-512 activation converters (quant_avx512.c), byte-identical to the
 * scalar ones. */
void cpu_act_q4_0_avx512(const float *x, size_t k, void *xq);
void cpu_act_q8_0_avx512(const float *x, size_t k, void *xq);
void cpu_act_q4_K_avx512(const float *x, size_t k, void *xq);
void cpu_act_q8_K_avx512(const float *x, size_t k, void *xq);
void cpu_act_f16w_avx512(const float *x, size_t k, void *xq);

/* Packed (x16) Q4_0 / Q8_0 kernels of the AVX-512 set (matmul_x16_avx512.c):
 * any M >= 1, K % 32 == 0, J0 and J1 multiples of 16; weights 64-byte
 * aligned as cpu_x16_pack leaves them. */
void cpu_mm_x16_q4_0_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q8_0_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);

/* Packed (x16) Q4_0 / Q8_0 kernels of the AMX set (matmul_x16_amx.c): AMX
 * on whole 16-row activation tiles, the AVX-512 packed kernels for M < 16
 * (Q4_0) or M < 32 (Q8_0) and for the rows left over; same arguments as
 * the AVX-512 ones. */
void cpu_mm_x16_q4_0_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q8_0_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1);

/* Packed (x16) Q4_K / Q6_K kernels of the AMX set (matmul_xk_amx.c): AMX
 * on whole 16-row activation tiles, the AVX-512 packed kernels for M < 16
 * and for the rows left over; same arguments as the AVX-512 ones. */
void cpu_mm_x16_q4_K_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q6_K_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1);

/* Packed (x16) Q4_K / Q6_K kernels of the AVX-512 set (matmul_xk_avx512.c):
 * any M >= 1, K % 256 == 0, J0 and J1 multiples of 16, Q8_K activation
 * rows in natural order (repack_k.h). */
void cpu_mm_x16_q4_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_q6_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);

/* Packed (x16) F16 / BF16 kernels (repack_f16.h) of the AVX-512 set
 * (matmul_x16h_avx512.c, any M >= 1) and of the AMX set (matmul_x16h_amx.c:
 * AMX-BF16 on whole 16-row activation tiles, the AVX-512 ones for small M
 * and the rows left over); any K, J0 and J1 multiples of 16, F16-weight
 * activation rows. */
void cpu_mm_x16_f16_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			   float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_bf16_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_f16_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_x16_bf16_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1);

/* K-quant kernels of the AVX-512 set (matmul_k_avx512.c). */
void cpu_mm_q4_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_q6_K_avx512(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			float *y, size_t ldy, size_t j0, size_t j1);

/* AMX tile configuration, palette 1, as LDTILECFG reads it. */
struct amx_tilecfg {
	uint8_t palette;
	uint8_t start_row;
	uint8_t reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* AMX-BF16 kernels for F16 and BF16 weights (matmul_f_amx.c). */
void cpu_mm_f16_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
		    float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_bf16_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
		     float *y, size_t ldy, size_t j0, size_t j1);

/* AMX kernels for the K-quants (matmul_k_amx.c). */
void cpu_mm_q4_K_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
		     float *y, size_t ldy, size_t j0, size_t j1);
void cpu_mm_q6_K_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
		     float *y, size_t ldy, size_t j0, size_t j1);
#endif

/* Q4_K activations keep ggml's Q8_K block but store the eight 32-element
 * sub-blocks in the order 0 2 1 3 4 6 5 7 (two low-nibble sub-blocks, then
 * two high-nibble ones: how 64 weight bytes unpack); bsums stay in natural
 * order. Slot of sub-block J (the map is its own inverse): */
static inline int act_q4k_slot(int j)
{
	return (j & 4) | ((j & 1) << 1) | ((j >> 1) & 1);
}
