/* EMBED (rows picked by token, dequantized to F32) and the dequantization
 * of a whole weight matrix to F32 or F16, the input of the prefill GEMM.
 * One block per row, its threads over the row's elements. */
#include "kernels/cuda/quant.cuh"

#define ROW_THREADS 256

static __global__ void embed_kernel(enum gi_type t, const uint8_t *w, size_t row_bytes, uint32_t k,
				    const int32_t *tokens, float *dst)
{
	const uint8_t *row = w + (size_t)tokens[blockIdx.x] * row_bytes;
	float *y = dst + (size_t)blockIdx.x * k;
	for (uint32_t i = threadIdx.x; i < k; i += blockDim.x)
		y[i] = gi_decode(t, row, i);
}

extern "C" int gi_cuda_embed(gi_cuda_stream stream, const struct gi_mat *w, const int32_t *tokens,
			     uint32_t n_tokens, float *dst)
{
	size_t rb = gi_cuda_row_bytes(w->type, w->k);
	if (!rb || n_tokens > 0x7fffffffu)
		return -EINVAL;
	if (!n_tokens)
		return 0;
	return GI_LAUNCH(stream, dim3(n_tokens), dim3(ROW_THREADS), 0, embed_kernel, w->type,
			 static_cast<const uint8_t *>(w->data), rb, w->k, tokens, dst);
}

/* Row blockIdx.y * gridDim.x + blockIdx.x (a grid is at most 65535 wide in x here). */
static __global__ void dequant_kernel(enum gi_type t, const uint8_t *w, size_t row_bytes,
				      uint32_t k, uint32_t n, void *dst, bool f16)
{
	size_t j = (size_t)blockIdx.y * gridDim.x + blockIdx.x;
	if (j >= n)
		return;
	const uint8_t *row = w + j * row_bytes;
	for (uint32_t i = threadIdx.x; i < k; i += blockDim.x) {
		float v = gi_decode(t, row, i);
		if (f16)
			static_cast<uint16_t *>(dst)[j * k + i] = __half_as_ushort(__float2half(v));
		else
			static_cast<float *>(dst)[j * k + i] = v;
	}
}

extern "C" int gi_cuda_dequantize(gi_cuda_stream stream, const struct gi_mat *w, void *dst,
				  enum gi_type dst_type)
{
	size_t rb = gi_cuda_row_bytes(w->type, w->k);
	if (!rb || (dst_type != GI_TYPE_F32 && dst_type != GI_TYPE_F16))
		return -EINVAL;
	if (!w->n)
		return 0;
	unsigned gx = w->n < 65535 ? w->n : 65535, gy = (w->n + 65534) / 65535;
	return GI_LAUNCH(stream, dim3(gx, gy), dim3(ROW_THREADS), 0, dequant_kernel, w->type,
			 static_cast<const uint8_t *>(w->data), rb, w->k, w->n, dst,
			 dst_type == GI_TYPE_F16);
}
