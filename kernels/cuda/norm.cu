/* RMSNORM (one block per row, the sum of squares reduced over the block)
 * and SILU_MUL (element-wise, a grid-stride loop). */
#include "kernels/cuda/common.cuh"

#define NORM_THREADS 256
#define ELEM_THREADS 256
#define ELEM_MAX_BLOCKS 1024

static __global__ void rmsnorm_kernel(const float *src, const uint32_t *rows, const float *w,
				      float *dst, uint32_t dim, float eps)
{
	uint32_t r = blockIdx.x, in = rows ? rows[r] : r;
	const float *x = src + (size_t)in * dim;
	float *y = dst + (size_t)r * dim;
	float ss = 0.0f;
	for (uint32_t i = threadIdx.x; i < dim; i += blockDim.x)
		ss += x[i] * x[i];
	ss = gi_block_sum(ss);
	float scale = 1.0f / sqrtf(ss / (float)dim + eps);
	/* each thread rescales the elements it summed: in place is safe */
	for (uint32_t i = threadIdx.x; i < dim; i += blockDim.x)
		y[i] = x[i] * scale * w[i];
}

extern "C" int gi_cuda_rmsnorm(gi_cuda_stream stream, const float *src, const uint32_t *rows,
			       const float *w, float *dst, uint32_t n_rows, uint32_t dim, float eps)
{
	if (!n_rows || !dim)
		return 0;
	if (n_rows > 0x7fffffffu)
		return -EINVAL;
	return GI_LAUNCH(stream, dim3(n_rows), dim3(NORM_THREADS), 0, rmsnorm_kernel, src, rows, w,
			 dst, dim, eps);
}

static __global__ void silu_mul_kernel(const float *a, const float *b, float *dst, size_t n)
{
	size_t step = (size_t)gridDim.x * blockDim.x;
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
		dst[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

extern "C" int gi_cuda_silu_mul(gi_cuda_stream stream, const float *a, const float *b, float *dst,
				uint32_t n_rows, uint32_t dim)
{
	size_t n = (size_t)n_rows * dim;
	if (!n)
		return 0;
	size_t blocks = (n + ELEM_THREADS - 1) / ELEM_THREADS;
	blocks = blocks < ELEM_MAX_BLOCKS ? blocks : ELEM_MAX_BLOCKS;
	return GI_LAUNCH(stream, dim3((unsigned)blocks), dim3(ELEM_THREADS), 0, silu_mul_kernel, a,
			 b, dst, n);
}
