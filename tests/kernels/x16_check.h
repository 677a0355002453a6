/* The check every packed (x16) matmul test shares. */
#pragma once
#include <stddef.h>

#include "kernels/types.h"

/* Packs the N x K matrix W (GGUF layout, type T) in two group ranges as
 * threads would, multiplies it with the M float activation rows X at every
 * SIMD level this CPU has (whole, then in column ranges of alternately STEP0
 * and STEP1 columns), and fails the test unless every output is within
 * 1e-4 * (|r| + 1) of the unpacked cpu_matmul_rows at the scalar level and
 * nothing is written past column N. Leaves the automatic level chosen. */
void t_x16_check(enum gi_type t, const void *w, const float *x, size_t m, size_t n, size_t k,
		 size_t step0, size_t step1);
