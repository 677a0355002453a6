/* Sampling helpers: greedy argmax over rows of logits, one block per row
 * (each thread scans a strided share, then a warp and a block reduction of
 * (value, index) pairs that prefers the lower index on ties). */
#include "kernels/cuda/common.cuh"

#define ARGMAX_THREADS 256

/* Does (V, I) beat (BV, BI)? NaN never does. */
static __device__ __forceinline__ bool beats(float v, uint32_t i, float bv, uint32_t bi)
{
	return v > bv || (v == bv && i < bi);
}

static __device__ __forceinline__ void warp_best(float *v, uint32_t *i)
{
	for (int o = 16; o > 0; o >>= 1) {
		float ov = __shfl_xor_sync(GI_FULL_MASK, *v, o);
		uint32_t oi = __shfl_xor_sync(GI_FULL_MASK, *i, o);
		if (beats(ov, oi, *v, *i)) {
			*v = ov;
			*i = oi;
		}
	}
}

static __global__ void argmax_kernel(const float *logits, uint32_t n, int32_t *out)
{
	__shared__ float wv[32];
	__shared__ uint32_t wi[32];
	const float *x = logits + (size_t)blockIdx.x * n;
	float bv = -INFINITY;
	uint32_t bi = n; /* none yet: every real index beats it on a tie */
	for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
		if (beats(x[i], i, bv, bi)) {
			bv = x[i];
			bi = i;
		}
	warp_best(&bv, &bi);
	unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	if (lane == 0) {
		wv[warp] = bv;
		wi[warp] = bi;
	}
	__syncthreads();
	if (warp)
		return; /* no barrier follows */
	bv = lane < blockDim.x / 32 ? wv[lane] : -INFINITY;
	bi = lane < blockDim.x / 32 ? wi[lane] : n;
	warp_best(&bv, &bi);
	if (lane == 0)
		out[blockIdx.x] = bi < n ? (int32_t)bi : 0;
}

extern "C" int gi_cuda_argmax(gi_cuda_stream stream, const float *logits, uint32_t n_rows,
			      uint32_t n, int32_t *out)
{
	if (!n || n > 0x7fffffffu || n_rows > 0x7fffffffu)
		return -EINVAL;
	if (!n_rows)
		return 0;
	return GI_LAUNCH(stream, dim3(n_rows), dim3(ARGMAX_THREADS), 0, argmax_kernel, logits, n,
			 out);
}
