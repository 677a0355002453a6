/* Quantized matrix multiplication on the CPU, on blocks, never dequantizing
 * a whole matrix. Weights W: N rows of K elements of type WT (row-major, as
 * stored in GGUF). Activations X: M rows of K floats, first converted to the
 * activation format of WT (Q8_0 for Q4_0/Q8_0, Q8_K for Q4_K/Q6_K, ...).
 * The functions take a row range so the caller's thread pool splits the work;
 * they allocate nothing and pick AMX / AVX-512 / AVX2 / scalar at run time
 * (GI_NO_SIMD=1 builds: scalar only; the environment variable GI_CPU_SIMD
 * = amx, avx512, avx2 or scalar picks a lower level if the CPU has it). All functions are thread-safe: any
 * number of threads may convert disjoint activation rows and multiply
 * disjoint output columns at once.
 *
 * Speed notes for callers: split output columns at multiples of 16 (the AMX
 * and tile kernels work on 16 weight rows; other splits are correct but run
 * their ragged edge on slower code); unpacked, M >= 16 runs on AMX (all
 * types but F32; Q4_0 and Q8_0 from M >= 8), packed (cpu_matmul_x16_rows)
 * Q4_0 from M >= 16 and Q8_0 from M >= 32, K-quants stay on AVX-512;
 * keep XQ 64-byte aligned. */
#pragma once
#include <stddef.h>

#include "kernels/types.h"

/* Bytes of one converted activation row of K elements for weights of type
 * WT, a multiple of 64; 0 if WT is not a weight type or K is not a multiple
 * of its block size (32 for Q4_0/Q8_0, 256 for Q4_K/Q6_K). */
size_t cpu_act_row_bytes(enum gi_type wt, size_t k);

/* Converts activation rows [R0,R1) of X (row stride K floats) to XQ (row
 * stride cpu_act_row_bytes). X and XQ are the bases of the whole matrices:
 * row r is read at X + r * K and written at XQ + r * stride, so threads
 * converting their own row ranges share one buffer. Does nothing when
 * cpu_act_row_bytes(WT, K) is 0. */
void cpu_act_convert(enum gi_type wt, const float *x, size_t k, size_t r0, size_t r1, void *xq);

/* Y[i * LDY + j] = dot(W row j, XQ row i) for i < M and J0 <= j < J1; XQ
 * holds M rows converted by cpu_act_convert for the same WT and K. Writes
 * nothing else. Does nothing when cpu_act_row_bytes(WT, K) is 0. */
void cpu_matmul_rows(enum gi_type wt, const void *w, size_t k, const void *xq, size_t m,
		     float *y, size_t ldy, size_t j0, size_t j1);

/* As cpu_matmul_rows, for a matrix packed by cpu_x16_pack
 * (kernels/cpu/repack.h): XQ holds rows converted for cpu_x16_act_type(WT),
 * and J0, J1 are multiples of 16. */
void cpu_matmul_x16_rows(enum gi_type wt, const void *wp, size_t k, const void *xq, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1);

/* Reference quantizer and dequantizer for every weight type (the model
 * generator and the tests use them; the forward pass does not). N is a
 * multiple of the type's block size. */
void gi_quantize_row(enum gi_type t, const float *x, void *y, size_t n);
void gi_dequantize_row(enum gi_type t, const void *x, float *y, size_t n);

/* Which SIMD level the dispatcher chose ("amx", "avx512", "avx2", "scalar";
 * "amx" runs AVX-512 kernels where AMX has none or M < 16). Tests force a
 * level with cpu_simd_force() from kernels/cpu/matmul_impl.h. */
const char *cpu_simd_level(void);
