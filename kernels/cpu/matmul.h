/* Quantized matrix multiplication on the CPU, on blocks, never dequantizing
 * a whole matrix. Weights W: N rows of K elements of type WT (row-major, as
 * stored in GGUF). Activations X: M rows of K floats, first converted to the
 * activation format of WT (Q8_0 for Q4_0/Q8_0, Q8_K for Q4_K/Q6_K, ...).
 * The functions take a row range so the caller's thread pool splits the work;
 * they allocate nothing and pick AVX-512 / AVX2 / scalar at run time. */
#pragma once
#include <stddef.h>

#include "kernels/types.h"

/* Bytes of one converted activation row of K elements for weights of type WT. */
size_t cpu_act_row_bytes(enum gi_type wt, size_t k);

/* Converts activation rows [R0,R1) of X (row stride K floats) to XQ (row
 * stride cpu_act_row_bytes). */
void cpu_act_convert(enum gi_type wt, const float *x, size_t k, size_t r0, size_t r1, void *xq);

/* Y[i * LDY + j] = dot(W row j, XQ row i) for i < M and J0 <= j < J1. */
void cpu_matmul_rows(enum gi_type wt, const void *w, size_t k, const void *xq, size_t m,
		     float *y, size_t ldy, size_t j0, size_t j1);

/* Reference quantizer and dequantizer for every weight type (the model
 * generator and the tests use them; the forward pass does not). N is a
 * multiple of the type's block size. */
void gi_quantize_row(enum gi_type t, const float *x, void *y, size_t n);
void gi_dequantize_row(enum gi_type t, const void *x, float *y, size_t n);

/* Which SIMD level the dispatcher chose ("avx512", "avx2", "scalar"). */
const char *cpu_simd_level(void);
