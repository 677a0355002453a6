/* Packed ("x16") weight layouts for Q4_0 and Q8_0: the CPU backend copies
 * such matrices once, at graph creation, into a layout where 16 weight rows
 * are interleaved four bytes at a time. A 512-bit vpdpbusd then computes one
 * 4-element step of 16 weight rows against one activation row in its 16
 * lanes (no horizontal sums, the activation bytes broadcast), and the same
 * 16 x 32-element block is the B tile AMX multiplies without any gather.
 *
 * Layout of an N x K matrix (N % 16 == 0, K % 32 == 0, NB = K / 32 blocks
 * per row): N / 16 groups of cpu_x16_group_bytes(T, K) bytes, group G
 * holding weight rows 16G .. 16G + 15 as
 *
 *   d: NB x 16 f16 scales, block-major (d[b * 16 + r] is the scale of block
 *      b of row 16G + r), zero-padded to a multiple of 64 bytes;
 *   q: NB blocks of unsigned weight quants, QB bytes each (64-byte aligned):
 *      Q4_0 (QB 256): four 64-byte vectors v0..v3; byte 4r + t of vi holds
 *        row r's qs[4i + t] as in the GGUF block: low nibble element
 *        4i + t, high nibble element 16 + 4i + t, both stored +8.
 *        So (vi & 15) is the 4-byte step j = i and (vi >> 4) & 15 the step
 *        j = i + 4.
 *      Q8_0 (QB 512): eight 64-byte vectors v0..v7; byte 4r + t of vj holds
 *        row r's qs[4j + t] + 128 (the int8 quant XOR 0x80).
 *   Either way step j (j < 8) is 16 lanes of 4 unsigned bytes, lane r =
 *   elements 4j .. 4j + 3 of block b of row 16G + r, value = byte - BIAS
 *   with BIAS 8 (Q4_0) or 128 (Q8_0); the 8 steps of a block, as 8 rows of
 *   64 bytes, are an AMX B tile (K = 32) in the VNNI layout.
 *
 * F32 (any K; N padded to 16 with zero rows): group G is K steps of 64
 * bytes, step k = element k of rows 16G .. 16G + 15 as 16 floats, so a
 * kernel broadcasts x[k] and multiply-adds 16 output columns at once, with
 * no horizontal sums however short the rows are (small models).
 *
 * Activations for both packed quantized types are Q8_0 activation rows (the "pair"
 * format of matmul_impl.h with Q8_0's natural element order; convert them
 * with cpu_act_convert(GI_TYPE_Q8_0, ...)). Block b of an activation row: 32
 * int8 at 32b, scale act_d_of()[b], c8 = act_c8_of()[b] = -16 * sum of the
 * block's quants. The block's dot product with the packed weights is
 *   d_w * d_x * (sum(byte * x) + c8 * BIAS / 16). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

#define X16_ROWS 16

/* The weight type whose activation format (cpu_act_convert) the packed
 * kernels for weights of type T read: GI_TYPE_Q8_0 for Q4_0 and Q8_0,
 * GI_TYPE_F32 (plain floats) for F32, GI_TYPE_Q6_K (plain Q8_K) for Q4_K and
 * Q6_K (their layouts: repack_k.h), the type itself for F16 and BF16
 * (repack_f16.h). */
enum gi_type cpu_x16_act_type(enum gi_type t);

/* Quant bytes of one packed block of 16 rows: 256 (Q4_0), 512 (Q8_0), the
 * whole 256-element super-block for Q4_K and Q6_K (repack_k.h), 1024 for a
 * 32-element block of F16 or BF16 (repack_f16.h), 0 for other types. */
size_t cpu_x16_block_bytes(enum gi_type t);
/* Bytes of the scale part of a group of K-element rows (64-byte multiple). */
size_t cpu_x16_scale_bytes(size_t k);
/* Bytes of one group of 16 packed rows of K elements; 0 if T has no packed
 * layout or K is not a multiple of its block (32; 1 for F32; F16 and BF16
 * take any K, padded to 32). */
size_t cpu_x16_group_bytes(enum gi_type t, size_t k);
/* Bytes of a whole packed N x K matrix; 0 if it cannot be packed (type, K
 * not a multiple of 32, N not a multiple of 16 (F32: any N, the last group
 * padded with zero rows), or overflow). */
size_t cpu_x16_bytes(enum gi_type t, size_t k, size_t n);

/* Packs groups [G0, G1) of the GGUF-layout N x K matrix W into DST (the
 * whole packed matrix, 64-byte aligned; cpu_x16_bytes of it). Threads may
 * pack disjoint group ranges at once. */
void cpu_x16_pack(enum gi_type t, const void *w, size_t k, size_t n, size_t g0, size_t g1,
		  void *dst);

/* Y[i * LDY + j] = dot(packed W row j, XQ row i) for i < M, J0 <= j < J1,
 * with XQ rows XSTRIDE bytes apart in the cpu_x16_act_type(T) format. J0
 * and J1 are multiples of 16 except for F32 (any range within N). The plain
 * C reference every SIMD packed kernel is
 * tested against, and the kernel of the scalar and AVX2 levels. */
void cpu_mm_x16_scalar(enum gi_type t, const void *w, size_t k, const void *xq, size_t xstride,
		       size_t m, float *y, size_t ldy, size_t j0, size_t j1);
