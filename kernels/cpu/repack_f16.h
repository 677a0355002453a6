/* Packed ("x16") layout for F16 and BF16 weights: 16 weight rows are
 * interleaved two elements (4 bytes) at a time, the "VNNI pair" order of
 * AMX-BF16 B tiles, so
 *  - a block of 32 elements of the 16 rows (1024 bytes) is one B tile
 *    (16 rows of 64 bytes, row s = elements 2s, 2s + 1 of each weight
 *    row): BF16 loads it as is, F16 converts each 64 bytes to the bf16
 *    halves WH, WL with a few vector ops, with no transpose;
 *  - the AVX-512 kernels stream it in order: 64 bytes are elements 2s, 2s
 *    + 1 of the 16 rows, multiplied against the activation pair (x[2s],
 *    x[2s + 1]) broadcast (F16: two vcvtph2ps give rows 0..7 and 8..15
 *    with the pair in adjacent lanes, summed once at the end; BF16: one
 *    shift and one AND give element 2s and element 2s + 1 of all 16 rows).
 *
 * Layout of an N x K matrix (N % 16 == 0, any K >= 1; KP = K rounded up to
 * 32, the elements past K stored as zeros): N / 16 groups of KP * 32 bytes,
 * group G holding rows 16G .. 16G + 15 as KP / 32 blocks of XH_BLOCK
 * bytes; block b, step s (< 16), row r: the 2-byte elements 32b + 2s and
 * 32b + 2s + 1 of row 16G + r at bytes 1024b + 64s + 4r and + 2. Element e
 * of row r of a group is therefore the 16-bit word
 *   (e / 32) * 512 + (e % 32 / 2) * 32 + 2r + e % 2.
 *
 * Activations are the F16-weight activation rows (matmul_impl.h: KP
 * floats, then KP bf16 XH, KP bf16 XL), so cpu_x16_act_type returns the
 * weight type itself; the padding elements of both are zeros. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

/* Bytes of one packed 32-element block of 16 rows (one AMX B tile). */
#define XH_BLOCK 1024

/* Bytes of one group of 16 packed rows of K elements for T (F16, BF16);
 * 0 for other types, K == 0 or overflow. */
size_t cpu_xh_group_bytes(enum gi_type t, size_t k);

/* Packs groups [G0, G1) of the GGUF-layout (row-major) N x K F16 or BF16
 * matrix W into DST (the whole packed matrix, 64-byte aligned). */
void cpu_xh_pack(enum gi_type t, const void *w, size_t k, size_t g0, size_t g1, void *dst);

/* The plain C matmul over the packed layout (cpu_mm_x16_scalar's F16/BF16
 * part): the float part of each activation row times the weights, summed
 * in element order in float, as the unpacked scalar kernel does. */
void cpu_mm_xh_scalar(enum gi_type t, const void *w, size_t k, const void *xq, size_t xstride,
		      size_t m, float *y, size_t ldy, size_t j0, size_t j1);

/* Word offset of element E of row R (< 16) within a packed group. */
static inline size_t xh_word(size_t r, size_t e)
{
	return e / 32 * (XH_BLOCK / 2) + e % 32 / 2 * 32 + 2 * r + e % 2;
}
