/* Kernels that exercise the CUDA emulator itself (tests/emu/probe.cu), with
 * C launchers for tests/emu/test_emu.c. Each returns the launch's result. */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blocks of BX x BY threads, GRID blocks: each thread spins for a
 * thread-dependent time, writes its id to shared memory, and after a
 * barrier records its neighbour's entry, ROUNDS times:
 * out[block * n + t] = sum over rounds of the neighbour's value. */
int probe_barrier(uint32_t *out, unsigned bx, unsigned by, unsigned grid, unsigned rounds);

/* Each block: out[2 * b] = the first word of dynamic shared memory before
 * any write (the emulator's fill), out[2 * b + 1] = what its thread 0 left
 * in static shared memory after the block's own barrier (its index). */
int probe_shared(uint32_t *out, unsigned grid, unsigned threads);

/* out[i] = the warp shuffle MODE (0 idx, 1 xor, 2 down, 3 up) of in[] with
 * per-thread argument arg[i] and WIDTH, lanes of MASK taking part (the
 * others write in[i]); blocks of THREADS. */
int probe_shfl(const uint32_t *in, const int *arg, uint32_t *out, unsigned n, unsigned threads,
	       int mode, int width, unsigned mask);

/* Per thread i: out[3i] = ballot, out[3i + 1] = any, out[3i + 2] = all of
 * pred[i] over a full warp. */
int probe_vote(const int *pred, uint32_t *out, unsigned n);

/* GRID blocks of THREADS threads: each adds 1 to *count and 0.5 to *sum
 * and raises *max to its global thread index. */
int probe_atomics(int *count, float *sum, int *max, unsigned grid, unsigned threads);

/* Misuse, each ends the launch with an error: 0 = threads with odd index
 * return before a barrier, 1 = two barriers at different places, 2 = a
 * shuffle whose mask leaves out the calling lane, 3 = a __syncwarp some
 * lanes never reach, 4 = half a warp at a shuffle, half at __syncwarp. */
int probe_misuse(int kind, unsigned threads);

/* A kernel missing a barrier between a shared write and a neighbour's read
 * (thread t reads t - 1's slot, or t + 1's with UP): out[b * threads + t]. */
int probe_race(uint32_t *out, unsigned grid, unsigned threads, int up);

/* A launch with a block of BX threads and SHARED bytes of dynamic memory. */
int probe_config(unsigned bx, unsigned shared);

#ifdef __cplusplus
}
#endif
