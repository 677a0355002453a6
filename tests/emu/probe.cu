/* Kernels that exercise the CUDA emulator's runtime (see probe.h). They are
 * ordinary CUDA: nothing here knows it runs on the CPU. */
#include "kernels/cuda/common.cuh"
#include "tests/emu/probe.h"

/* Divergent work between barriers: in round R the full warps W with
 * (W + R) even first sum their thread ids with shuffles (each a switch
 * between fibers), the others go straight to the barrier. */
static __global__ void barrier_kernel(uint32_t *out, unsigned rounds)
{
	__shared__ uint32_t ids[1024];
	unsigned n = blockDim.x * blockDim.y, t = threadIdx.y * blockDim.x + threadIdx.x;
	uint32_t acc = 0;
	for (unsigned r = 0; r < rounds; r++) {
		uint32_t v = t * 1000 + r + blockIdx.x;
		if (t / 32 < n / 32 && (t / 32 + r) % 2 == 0) {
			uint32_t s = t;
			for (int o = 16; o > 0; o >>= 1)
				s += __shfl_xor_sync(GI_FULL_MASK, s, o);
			v += s;
		}
		ids[t] = v;
		__syncthreads();
		acc += ids[(t + 1) % n];
		__syncthreads(); /* everyone read before the next round writes */
	}
	out[blockIdx.x * n + t] = acc;
}

extern "C" int probe_barrier(uint32_t *out, unsigned bx, unsigned by, unsigned grid,
			     unsigned rounds)
{
	return GI_LAUNCH(nullptr, dim3(grid), dim3(bx, by), 0, barrier_kernel, out, rounds);
}

static __global__ void shared_kernel(uint32_t *out)
{
	GI_DYN_SHARED(uint32_t, dyn);
	__shared__ uint32_t owner;
	uint32_t first = dyn[0];
	__syncthreads(); /* all have read the fill before thread 0 writes */
	if (threadIdx.x == 0) {
		dyn[0] = blockIdx.x;
		owner = blockIdx.x;
	}
	__syncthreads();
	if (threadIdx.x == blockDim.x - 1) {
		out[2 * blockIdx.x] = first;
		out[2 * blockIdx.x + 1] = owner == dyn[0] ? owner : 0xdeadbeefu;
	}
}

extern "C" int probe_shared(uint32_t *out, unsigned grid, unsigned threads)
{
	return GI_LAUNCH(nullptr, dim3(grid), dim3(threads), 64, shared_kernel, out);
}

static __global__ void shfl_kernel(const uint32_t *in, const int *arg, uint32_t *out, unsigned n,
				   int mode, int width, unsigned mask)
{
	unsigned i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
	if (!(mask >> lane & 1)) {
		out[i] = in[i];
		return;
	}
	uint32_t v = in[i], r = v;
	switch (mode) {
	case 0:
		r = __shfl_sync(mask, v, arg[i], width);
		break;
	case 1:
		r = __shfl_xor_sync(mask, v, arg[i], width);
		break;
	case 2:
		r = __shfl_down_sync(mask, v, (unsigned)arg[i], width);
		break;
	default:
		r = __shfl_up_sync(mask, v, (unsigned)arg[i], width);
		break;
	}
	out[i] = r;
}

extern "C" int probe_shfl(const uint32_t *in, const int *arg, uint32_t *out, unsigned n,
			  unsigned threads, int mode, int width, unsigned mask)
{
	return GI_LAUNCH(nullptr, dim3(n / threads), dim3(threads), 0, shfl_kernel, in, arg, out, n,
			 mode, width, mask);
}

static __global__ void vote_kernel(const int *pred, uint32_t *out)
{
	unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
	out[3 * i] = __ballot_sync(GI_FULL_MASK, pred[i]);
	out[3 * i + 1] = (uint32_t)__any_sync(GI_FULL_MASK, pred[i]);
	out[3 * i + 2] = (uint32_t)__all_sync(GI_FULL_MASK, pred[i]);
}

extern "C" int probe_vote(const int *pred, uint32_t *out, unsigned n)
{
	return GI_LAUNCH(nullptr, dim3(n / 64), dim3(64), 0, vote_kernel, pred, out);
}

static __global__ void atomics_kernel(int *count, float *sum, int *max)
{
	atomicAdd(count, 1);
	atomicAdd(sum, 0.5f);
	atomicMax(max, (int)(blockIdx.x * blockDim.x + threadIdx.x));
}

extern "C" int probe_atomics(int *count, float *sum, int *max, unsigned grid, unsigned threads)
{
	return GI_LAUNCH(nullptr, dim3(grid), dim3(threads), 0, atomics_kernel, count, sum, max);
}

static __global__ void misuse_kernel(int kind, int *out)
{
	__shared__ int s;
	unsigned t = threadIdx.x;
	if (kind == 0) {
		if (t % 2)
			return;
		__syncthreads();
	} else if (kind == 1) {
		if (t < 5) {
			s = 1;
			__syncthreads();
		} else {
			s = 2;
			__syncthreads();
		}
	} else if (kind == 2) {
		s = __shfl_sync(0x1u, (int)t, 0);
	} else if (kind == 3) {
		if (t % 32 < 16)
			__syncwarp();
	} else if (kind == 4) {
		if (t % 32 < 16)
			s = __shfl_xor_sync(GI_FULL_MASK, (int)t, 1);
		else
			__syncwarp();
	}
	out[t] = s;
}

extern "C" int probe_misuse(int kind, unsigned threads)
{
	static int out[1024];
	return GI_LAUNCH(nullptr, dim3(2), dim3(threads), 0, misuse_kernel, kind, out);
}

/* A missing barrier: each thread reads the shared slot its neighbour
 * (thread t - 1, or t + 1 with UP) writes, with no __syncthreads between. */
static __global__ void race_kernel(uint32_t *out, int up)
{
	__shared__ uint32_t ids[1024];
	unsigned n = blockDim.x, t = threadIdx.x;
	ids[t] = 0;
	__syncthreads();
	ids[t] = t + 1;
	out[blockIdx.x * n + t] = ids[up ? (t + 1) % n : (t + n - 1) % n];
}

extern "C" int probe_race(uint32_t *out, unsigned grid, unsigned threads, int up)
{
	return GI_LAUNCH(nullptr, dim3(grid), dim3(threads), 0, race_kernel, out, up);
}

static __global__ void config_kernel(int *out)
{
	out[0] = 1;
}

extern "C" int probe_config(unsigned bx, unsigned shared)
{
	static int out[1];
	return GI_LAUNCH(nullptr, dim3(1), dim3(bx), shared, config_kernel, out);
}
