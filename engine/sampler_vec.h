/* The sampler's passes over the whole vocabulary: SSE2 on every x86-64,
 * AVX2+FMA when the CPU has it (chosen at run time), scalar elsewhere. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest value (-inf for N = 0; NaNs are skipped). */
float smp_max(const float *x, size_t n);
/* Lowest index of the largest value (0 if all are NaN). */
int32_t smp_argmax(const float *x, size_t n);
/* Sum of exp((x[i] - max) * scale) for arguments <= 0, relative error below
 * 1e-6; stores the terms in OUT if non-NULL. */
double smp_sum_exp(const float *x, size_t n, float max, float scale, float *out);
/* Index of the first x[i] with i >= FROM that is > TH (>= TH if GE), or N. */
size_t smp_find(const float *x, size_t n, size_t from, float th, bool ge);
/* OUT[b] = max of x[64b .. 64b+64) for every block (the last may be short);
 * OUT holds (N + 63) / 64 floats. */
#define SMP_BLOCK 64
void smp_block_max(const float *x, size_t n, float *out);
/* Writes x[i] >= TH and i to OUT_X / OUT_ID in index order; returns the count. */
size_t smp_gather(const float *x, size_t n, float th, float *out_x, int32_t *out_id);
