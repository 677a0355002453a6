/* The CUDA emulator's C interface: what a test (C) needs to steer the runtime
 * that runs kernels/cuda sources on the CPU (kernels/emu/cuda_emu.h is the
 * C++ side those sources see). */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* OS threads that run the blocks of one launch (each runs one block at a
 * time, its CUDA threads as fibers). N <= 0 restores the default: the
 * environment variable GI_EMU_THREADS, else min(online CPUs, 4). Not
 * thread-safe against a launch in progress. */
void emu_set_threads(int n);

/* A copy of the message of the last failed launch of this process ("" when
 * none failed): which block and thread broke a CUDA rule (a barrier some
 * threads never reach, barriers at different places, a shuffle reading a
 * lane outside its mask, a bad launch configuration). Returns a static
 * buffer, valid until the next launch. */
const char *emu_last_error(void);

#ifdef __cplusplus
}
#endif
