/* Matrix times a few vectors, for decode: one warp per weight row, up to
 * GEMV_M activation rows per block (more rows: more blocks in y). The lanes
 * split the row's blocks, decode their part in registers, multiply-add it
 * with the F32 activations (scales applied once per part) and the warp sums
 * the lanes at the end.
 *
 * How a row is split among the 32 lanes, per type:
 *   F32/F16/BF16  element i goes to lane i % 32 (reads coalesced)
 *   Q8_0, Q4_0    4 lanes per 32-element block, 8 quants each: Q8_0 lane
 *                 part p takes qs[8p..8p+7]; Q4_0 part p takes the bytes
 *                 qs[4p..4p+3], i.e. elements 4p.. (low nibbles) and
 *                 16 + 4p.. (high nibbles)
 *   Q4_K          one super-block per warp step, lane L: chunk c = L / 8 of
 *                 64 elements, bytes qs[32c + 4(L % 8) ..+3], whose low
 *                 nibbles are in sub-block 2c and high nibbles in 2c + 1
 *   Q6_K          one super-block per warp step, lane L: half n = L / 16,
 *                 columns l = 2(L % 16) and l + 1 of each of the 4 groups
 *                 of 32: elements 128n + 32g + l */
#include "kernels/cuda/quant.cuh"

#define GEMV_WARPS 4
#define GEMV_M 8

/* acc[r] += dot of this lane's share of the row with activation row r. */
template <enum gi_type T> struct gemv_row;

template <enum gi_type T> struct gemv_float {
	static __device__ __forceinline__ void run(const uint8_t *row, uint32_t k, const float *x,
						   uint32_t m, unsigned lane, float *acc)
	{
		for (uint32_t i = lane; i < k; i += 32) {
			float w = T == GI_TYPE_F32 ? reinterpret_cast<const float *>(row)[i] :
				  T == GI_TYPE_F16 ? gi_f16_at(reinterpret_cast<const uint16_t *>(row), i) :
						     gi_bf16_at(reinterpret_cast<const uint16_t *>(row), i);
			for (uint32_t r = 0; r < GEMV_M; r++)
				if (r < m)
					acc[r] += w * x[(size_t)r * k + i];
		}
	}
};

template <> struct gemv_row<GI_TYPE_F32> : gemv_float<GI_TYPE_F32> {};
template <> struct gemv_row<GI_TYPE_F16> : gemv_float<GI_TYPE_F16> {};
template <> struct gemv_row<GI_TYPE_BF16> : gemv_float<GI_TYPE_BF16> {};

template <> struct gemv_row<GI_TYPE_Q8_0> {
	static __device__ __forceinline__ void run(const uint8_t *row, uint32_t k, const float *x,
						   uint32_t m, unsigned lane, float *acc)
	{
		const struct block_q8_0 *bl = reinterpret_cast<const struct block_q8_0 *>(row);
		for (uint32_t u = lane; u < k / 8; u += 32) {
			const struct block_q8_0 *b = bl + u / 4;
			uint32_t p = u % 4, i0 = u / 4 * 32 + 8 * p;
			float d = gi_f16_at(&b->d, 0), q[8];
			for (int e = 0; e < 8; e++)
				q[e] = (float)b->qs[8 * p + e];
			for (uint32_t r = 0; r < GEMV_M; r++) {
				if (r >= m)
					break;
				const float *xr = x + (size_t)r * k + i0;
				float s = 0.0f;
				for (int e = 0; e < 8; e++)
					s += q[e] * xr[e];
				acc[r] += d * s;
			}
		}
	}
};

template <> struct gemv_row<GI_TYPE_Q4_0> {
	static __device__ __forceinline__ void run(const uint8_t *row, uint32_t k, const float *x,
						   uint32_t m, unsigned lane, float *acc)
	{
		const struct block_q4_0 *bl = reinterpret_cast<const struct block_q4_0 *>(row);
		for (uint32_t u = lane; u < k / 8; u += 32) {
			const struct block_q4_0 *b = bl + u / 4;
			uint32_t p = u % 4, i0 = u / 4 * 32 + 4 * p;
			float d = gi_f16_at(&b->d, 0), lo[4], hi[4];
			for (int e = 0; e < 4; e++) {
				uint8_t v = b->qs[4 * p + e];
				lo[e] = (float)((v & 0xf) - 8);
				hi[e] = (float)((v >> 4) - 8);
			}
			for (uint32_t r = 0; r < GEMV_M; r++) {
				if (r >= m)
					break;
				const float *xr = x + (size_t)r * k + i0;
				float s = 0.0f;
				for (int e = 0; e < 4; e++)
					s += lo[e] * xr[e] + hi[e] * xr[16 + e];
				acc[r] += d * s;
			}
		}
	}
};

template <> struct gemv_row<GI_TYPE_Q4_K> {
	static __device__ __forceinline__ void run(const uint8_t *row, uint32_t k, const float *x,
						   uint32_t m, unsigned lane, float *acc)
	{
		const struct block_q4_K *bl = reinterpret_cast<const struct block_q4_K *>(row);
		uint32_t c = lane / 8, l0 = lane % 8 * 4;
		for (uint32_t sb = 0; sb < k / 256; sb++) {
			const struct block_q4_K *b = bl + sb;
			int sc0, m0, sc1, m1;
			gi_k4_scale_min((int)(2 * c), b->scales, &sc0, &m0);
			gi_k4_scale_min((int)(2 * c + 1), b->scales, &sc1, &m1);
			float d = gi_f16_at(&b->d, 0), dmin = gi_f16_at(&b->dmin, 0), lo[4], hi[4];
			for (int e = 0; e < 4; e++) {
				uint8_t v = b->qs[32 * c + l0 + e];
				lo[e] = (float)(v & 0xf);
				hi[e] = (float)(v >> 4);
			}
			uint32_t i0 = sb * 256 + 64 * c + l0;
			for (uint32_t r = 0; r < GEMV_M; r++) {
				if (r >= m)
					break;
				const float *xr = x + (size_t)r * k + i0;
				float ql = 0.0f, qh = 0.0f, xl = 0.0f, xh = 0.0f;
				for (int e = 0; e < 4; e++) {
					ql += lo[e] * xr[e];
					qh += hi[e] * xr[32 + e];
					xl += xr[e];
					xh += xr[32 + e];
				}
				acc[r] += d * ((float)sc0 * ql + (float)sc1 * qh) -
					  dmin * ((float)m0 * xl + (float)m1 * xh);
			}
		}
	}
};

template <> struct gemv_row<GI_TYPE_Q6_K> {
	static __device__ __forceinline__ void run(const uint8_t *row, uint32_t k, const float *x,
						   uint32_t m, unsigned lane, float *acc)
	{
		const struct block_q6_K *bl = reinterpret_cast<const struct block_q6_K *>(row);
		uint32_t n = lane / 16, l = lane % 16 * 2;
		for (uint32_t sb = 0; sb < k / 256; sb++) {
			const struct block_q6_K *b = bl + sb;
			float d = gi_f16_at(&b->d, 0), q[4][2], sc[4];
			for (int g = 0; g < 4; g++) {
				sc[g] = d * (float)b->scales[8 * n + 2 * g + l / 16];
				for (int e = 0; e < 2; e++)
					q[g][e] = (float)(gi_q6k_quant(b, (int)(128 * n + 32 * g + l + e)) - 32);
			}
			uint32_t i0 = sb * 256 + 128 * n + l;
			for (uint32_t r = 0; r < GEMV_M; r++) {
				if (r >= m)
					break;
				const float *xr = x + (size_t)r * k + i0;
				float s = 0.0f;
				for (int g = 0; g < 4; g++)
					s += sc[g] * (q[g][0] * xr[32 * g] + q[g][1] * xr[32 * g + 1]);
				acc[r] += s;
			}
		}
	}
};

template <enum gi_type T>
static __global__ void gemv_kernel(const uint8_t *w, size_t row_bytes, uint32_t k, uint32_t n,
				   const float *x, uint32_t m, const float *bias, float *dst,
				   bool accumulate)
{
	uint32_t j = blockIdx.x * GEMV_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
	uint32_t r0 = blockIdx.y * GEMV_M, mr = m - r0 < GEMV_M ? m - r0 : GEMV_M;
	if (j >= n)
		return; /* a whole warp: the kernel has no block barrier */
	float acc[GEMV_M];
	for (int r = 0; r < GEMV_M; r++)
		acc[r] = 0.0f;
	gemv_row<T>::run(w + (size_t)j * row_bytes, k, x + (size_t)r0 * k, mr, lane, acc);
	for (uint32_t r = 0; r < GEMV_M; r++)
		if (r < mr) /* the same in every lane of the warp */
			acc[r] = gi_warp_sum(acc[r]);
	if (lane)
		return;
	for (uint32_t r = 0; r < mr; r++) {
		/* the CPU backend's order: dst + W x, then + bias */
		float *o = dst + (size_t)(r0 + r) * n + j, y = accumulate ? *o + acc[r] : acc[r];
		*o = bias ? y + bias[j] : y;
	}
}

template <enum gi_type T>
static int gemv_launch(gi_cuda_stream stream, const struct gi_mat *w, size_t rb, const float *x,
		       uint32_t m, const float *bias, float *dst, bool accumulate)
{
	dim3 grid((w->n + GEMV_WARPS - 1) / GEMV_WARPS, (m + GEMV_M - 1) / GEMV_M);
	return GI_LAUNCH(stream, grid, dim3(32 * GEMV_WARPS), 0, gemv_kernel<T>,
			 static_cast<const uint8_t *>(w->data), rb, w->k, w->n, x, m, bias, dst,
			 accumulate);
}

extern "C" int gi_cuda_gemv(gi_cuda_stream stream, const struct gi_mat *w, const float *x,
			    uint32_t m, const float *bias, float *dst, bool accumulate)
{
	size_t rb = gi_cuda_row_bytes(w->type, w->k);
	if (!rb || (m + GEMV_M - 1) / GEMV_M > 65535)
		return -EINVAL;
	if (!m || !w->n)
		return 0;
	switch (w->type) {
	case GI_TYPE_F32:
		return gemv_launch<GI_TYPE_F32>(stream, w, rb, x, m, bias, dst, accumulate);
	case GI_TYPE_F16:
		return gemv_launch<GI_TYPE_F16>(stream, w, rb, x, m, bias, dst, accumulate);
	case GI_TYPE_BF16:
		return gemv_launch<GI_TYPE_BF16>(stream, w, rb, x, m, bias, dst, accumulate);
	case GI_TYPE_Q8_0:
		return gemv_launch<GI_TYPE_Q8_0>(stream, w, rb, x, m, bias, dst, accumulate);
	case GI_TYPE_Q4_0:
		return gemv_launch<GI_TYPE_Q4_0>(stream, w, rb, x, m, bias, dst, accumulate);
	case GI_TYPE_Q4_K:
		return gemv_launch<GI_TYPE_Q4_K>(stream, w, rb, x, m, bias, dst, accumulate);
	case GI_TYPE_Q6_K:
		return gemv_launch<GI_TYPE_Q6_K>(stream, w, rb, x, m, bias, dst, accumulate);
	default:
		return -EINVAL;
	}
}
