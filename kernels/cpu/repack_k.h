/* Packed ("x16") layouts for the K-quants Q4_K and Q6_K: as repack.h does
 * for Q4_0/Q8_0, 16 weight rows are interleaved four bytes at a time, so a
 * 512-bit vpdpbusd computes one 4-element step of 16 weight rows against
 * one activation row (its 4 bytes broadcast), and the per-row scales of a
 * super-block sit in vectors of 16 lanes ready to multiply the 16 lanes of
 * an accumulator. No horizontal sums, and a weight step unpacked once
 * serves every activation row of a tile.
 *
 * Layout of an N x K matrix (N % 16 == 0, K % 256 == 0, NB = K / 256
 * super-blocks per row): N / 16 groups of NB * QB bytes, group G holding
 * rows 16G .. 16G + 15, super-block b of the group at b * QB (every part
 * 64-byte aligned). Row r below means row 16G + r; a "step" is 4
 * consecutive elements, vector bytes 4r .. 4r + 3 holding row r's.
 *
 * Q4_K (QB 2368):
 *     0  d[16], dmin[16]: f16, the super-block scales of rows 0..15;
 *    64  scale[8][16]: byte 16s + r = row r's 6-bit scale of sub-block s
 *        (elements 32s .. 32s + 31), unpacked to 0..63;
 *   192  min[8][16]: the same for the 6-bit mins;
 *   320  quants: 4 pairs p x 8 vectors j of 64 bytes, vector (p, j) at
 *        320 + 512p + 64j; byte 4r + t is row r's GGUF qs[32p + 4j + t]:
 *        its low nibble element 64p + 4j + t (step j of sub-block 2p), its
 *        high nibble element 64p + 32 + 4j + t (step j of sub-block 2p + 1).
 *   Row r, super-block b: d * sum_s scale_s * sum_e q_e x_e
 *                        - dmin * sum_s min_s * sum_e x_e   (e in s).
 *
 * Q6_K (QB 3392), quants q = GGUF quant + 32, unsigned 0..63:
 *     0  d[16]: f32, the super-block scales of rows 0..15;
 *    64  scale[16][16]: byte 16s + r = row r's int8 scale of sub-block s
 *        (elements 16s .. 16s + 15);
 *   320  4 quarters a (elements 64a .. 64a + 63, sub-blocks 4a .. 4a + 3)
 *        of 768 bytes: 4 units v of 3 vectors V0, V1, V2 at 192v, 192v +
 *        64, 192v + 128, holding step v (elements 16j + 4v .. 16j + 4v + 3
 *        of the quarter) of its 4 sub-blocks j = 0..3; byte 4r + t of
 *        each, with A, B, C, D the quants of element 16j + 4v + t (j = 0,
 *        1, 2, 3) of row r:
 *          V0 = A | (B >> 4) << 6,  V1 = C | (D >> 4) << 6,
 *          V2 = (B & 15) | (D & 15) << 4.
 *        So A = V0 & 63 and C = V1 & 63 take one AND each, B and 4 x D
 *        one AND, one shift and one VPTERNLOG each.
 *   Row r, super-block b: d * sum_s scale_s * sum_e (q_e - 32) x_e.
 *
 * Activations for both: plain Q8_K rows (cpu_act_convert(GI_TYPE_Q6_K,
 * ...): struct block_q8_K per super-block, natural element order, float d,
 * int16 bsums per 16 elements), so cpu_x16_act_type returns GI_TYPE_Q6_K
 * for both types. The packed bytes are the GGUF bytes plus 64 (Q4_K) or
 * 32 (Q6_K) per 16-row super-block: 148 bytes per row and super-block
 * against 144, 212 against 210. */
#pragma once
#include <stddef.h>

#include "kernels/types.h"

#define XK_Q4K_BLOCK 2368
#define XK_Q4K_SCALE 64
#define XK_Q4K_MIN 192
#define XK_Q4K_QS 320
#define XK_Q6K_BLOCK 3392
#define XK_Q6K_SCALE 64
#define XK_Q6K_QS 320
#define XK_Q6K_QUARTER 768

/* Bytes of one packed super-block of 16 rows: XK_Q4K_BLOCK, XK_Q6K_BLOCK,
 * 0 for other types. */
size_t cpu_xk_block_bytes(enum gi_type t);
/* Bytes of one group of 16 packed rows of K elements; 0 if T is not Q4_K
 * or Q6_K, or K is not a positive multiple of 256 (or overflows). */
size_t cpu_xk_group_bytes(enum gi_type t, size_t k);
/* Packs groups [G0, G1) of the GGUF-layout Q4_K / Q6_K matrix W (rows of
 * K elements) into DST, the whole packed matrix (64-byte aligned). Threads
 * may pack disjoint group ranges at once. */
void cpu_xk_pack(enum gi_type t, const void *w, size_t k, size_t g0, size_t g1, void *dst);
/* The plain C matmul over the packed layout (cpu_mm_x16_scalar's K-quant
 * part): Y[i * LDY + j] for i < M, J0 <= j < J1 (multiples of 16), XQ rows
 * of Q8_K blocks XSTRIDE bytes apart. */
void cpu_mm_xk_scalar(enum gi_type t, const void *w, size_t k, const void *xq, size_t xstride,
		      size_t m, float *y, size_t ldy, size_t j0, size_t j1);
