/* What every kernels/cuda source includes first: the CUDA headers under
 * nvcc, the CPU emulator (kernels/emu/cuda_emu.h) under a host compiler;
 * the launch macro that works with both; warp and block reductions and
 * element decoders the kernels share. The only place besides the emulator
 * that asks which compiler it is. */
#pragma once
#include <cerrno>
#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

/* Dynamic shared memory of the launch (its shared_bytes), as TYPE[]. */
#define GI_DYN_SHARED(type, name) extern __shared__ type name[]

static inline int gi_cuda_status(void)
{
	return cudaGetLastError() == cudaSuccess ? 0 : -EIO;
}

/* KERNEL<<<GRID, BLOCK, SHARED>>>(...) on STREAM; 0 or a negative errno. */
#define GI_LAUNCH(stream, grid, block, shared, kernel, ...) \
	(kernel<<<(grid), (block), (shared), (cudaStream_t)(stream)>>>(__VA_ARGS__), gi_cuda_status())
#else
#include "kernels/emu/cuda_emu.h"

#define GI_DYN_SHARED(type, name) type *name = static_cast<type *>(::emu::dyn_shared())
#define GI_LAUNCH(stream, grid, block, shared, kernel, ...) \
	((void)(stream), emu_launch((grid), (block), (shared), kernel, __VA_ARGS__))
#endif

/* kernels/types.h is C; its _Static_assert is static_assert in C++ */
#define _Static_assert static_assert
#include "kernels/cuda/cuda_kernels.h"
#undef _Static_assert

#define GI_FULL_MASK 0xffffffffu

static __device__ __forceinline__ float gi_warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(GI_FULL_MASK, v, o);
	return v;
}

static __device__ __forceinline__ float gi_warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(GI_FULL_MASK, v, o));
	return v;
}

/* Sum of V over the block (blockDim.x a multiple of 32, y = z = 1), in
 * every thread. Every thread of the block must call it. */
static __device__ __forceinline__ float gi_block_sum(float v)
{
	__shared__ float part[32];
	unsigned lane = threadIdx.x % 32, wid = threadIdx.x / 32;
	v = gi_warp_sum(v);
	__syncthreads(); /* a previous call's readers are done with part */
	if (lane == 0)
		part[wid] = v;
	__syncthreads();
	v = lane < blockDim.x / 32 ? part[lane] : 0.0f;
	return gi_warp_sum(v);
}

static __device__ __forceinline__ float gi_f16_at(const uint16_t *p, size_t i)
{
	return __half2float(__ushort_as_half(p[i]));
}

static __device__ __forceinline__ float gi_bf16_at(const uint16_t *p, size_t i)
{
	return __uint_as_float((unsigned)p[i] << 16);
}
