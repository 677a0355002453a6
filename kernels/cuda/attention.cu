/* ATTN: causal attention over the paged KV pool, decode and prefill alike.
 *
 * One block per (query head, token) attends over the token's positions
 * [0, pos] through its sequence's block table. Its ATT_WARPS warps take
 * chunks of 32 keys in turn (warp w: chunks w, w + ATT_WARPS, ...), a lane
 * per key: the lane scores its key against the query held in shared memory
 * (K is transposed in the pool, so the 32 lanes read 32 consecutive slots),
 * the warp updates its running maximum and sum (online softmax), then
 * weights the chunk's values with the lanes over the head's dimensions (V
 * rows are contiguous; the chunk's probabilities reach every lane through
 * shared memory). At the end the warps' partial results are merged
 * through shared memory with the usual rescaling.
 *
 * With an F16 pool the query is rounded to F16 first, as the CPU backend
 * does (ggml's numerics). The CPU backend also rounds the normalised
 * probabilities to F16 before weighting the values; one pass cannot (the
 * sum is known only at the end), so F16 results differ from the CPU's by
 * that rounding (~1e-3 relative). */
#include "kernels/cuda/common.cuh"

#define ATT_WARPS 4
#define ATT_DIMS (GI_CUDA_MAX_HEAD_DIM / 32) /* head dims per lane */

/* Element offset of (dim 0, slot) of KV head H in position P's block; the
 * caller scales by the element size and adds K's or V's layout. */
struct kv_at {
	size_t block_off; /* bytes from the pool base to the block */
	uint32_t slot;
};

static __device__ __forceinline__ kv_at kv_locate(const struct gi_kv_pool &kv,
						  const uint32_t *table, uint32_t layer, uint32_t p)
{
	uint32_t blk = table[p / kv.block_tokens];
	return kv_at{ (size_t)layer * kv.layer_stride + (size_t)blk * kv.block_stride,
		      p % kv.block_tokens };
}

template <bool F16> static __device__ __forceinline__ float kv_load(const void *base, size_t i)
{
	if (F16)
		return gi_f16_at(static_cast<const uint16_t *>(base), i);
	return static_cast<const float *>(base)[i];
}

template <bool F16>
static __global__ void attn_kernel(struct gi_attn_params p, const float *q, float *dst,
				   struct gi_cuda_tokens t, struct gi_kv_pool kv, uint32_t layer)
{
	__shared__ float qs[GI_CUDA_MAX_HEAD_DIM];
	__shared__ float part_m[ATT_WARPS], part_l[ATT_WARPS];
	__shared__ float part_o[ATT_WARPS][GI_CUDA_MAX_HEAD_DIM];
	__shared__ float probs[ATT_WARPS][32];
	uint32_t h = blockIdx.x, tok = blockIdx.y, hd = p.head_dim, bt = kv.block_tokens;
	uint32_t kvh = h / (p.n_head / p.n_head_kv), ctx = t.pos[tok] + 1;
	uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	const uint32_t *table = t.blocks + t.table_start[t.seq[tok]];
	const float *qh = q + ((size_t)tok * p.n_head + h) * hd;
	for (uint32_t d = threadIdx.x; d < hd; d += blockDim.x)
		qs[d] = F16 ? __half2float(__float2half(qh[d])) : qh[d];
	__syncthreads();

	const uint8_t *kbase = static_cast<const uint8_t *>(kv.k);
	const uint8_t *vbase = static_cast<const uint8_t *>(kv.v);
	const size_t esz = F16 ? 2 : 4;
	float m = -INFINITY, l = 0.0f, acc[ATT_DIMS];
	for (int i = 0; i < ATT_DIMS; i++)
		acc[i] = 0.0f;
	for (uint32_t p0 = warp * 32; p0 < ctx; p0 += ATT_WARPS * 32) {
		uint32_t n = ctx - p0 < 32 ? ctx - p0 : 32;
		float s = -INFINITY;
		if (lane < n) {
			kv_at a = kv_locate(kv, table, layer, p0 + lane);
			const void *kc = kbase + a.block_off +
					 ((size_t)kvh * hd * bt + a.slot) * esz;
			float dot = 0.0f;
			for (uint32_t d = 0; d < hd; d++)
				dot += qs[d] * kv_load<F16>(kc, (size_t)d * bt);
			s = dot * p.scale;
		}
		float mn = fmaxf(m, gi_warp_max(s)); /* finite: lane 0 always has a key */
		float alpha = expf(m - mn), e = lane < n ? expf(s - mn) : 0.0f;
		l = l * alpha + gi_warp_sum(e);
		m = mn;
		for (int i = 0; i < ATT_DIMS; i++)
			acc[i] *= alpha;
		probs[warp][lane] = e;
		__syncwarp();
		for (uint32_t j = 0; j < n; j++) {
			float pj = probs[warp][j];
			kv_at a = kv_locate(kv, table, layer, p0 + j);
			const void *vr = vbase + a.block_off +
					 ((size_t)kvh * bt + a.slot) * hd * esz;
			for (int i = 0; i < ATT_DIMS; i++) {
				uint32_t d = lane + 32 * (uint32_t)i;
				if (d < hd)
					acc[i] += pj * kv_load<F16>(vr, d);
			}
		}
		__syncwarp(); /* all lanes read probs before the next chunk writes */
	}
	if (lane == 0) {
		part_m[warp] = m;
		part_l[warp] = l;
	}
	for (int i = 0; i < ATT_DIMS; i++) {
		uint32_t d = lane + 32 * (uint32_t)i;
		if (d < hd)
			part_o[warp][d] = acc[i];
	}
	__syncthreads();

	/* merge: warps without keys have m = -inf, l = 0 and weigh nothing */
	float mx = part_m[0];
	for (int w = 1; w < ATT_WARPS; w++)
		mx = fmaxf(mx, part_m[w]);
	float sum = 0.0f, wt[ATT_WARPS];
	for (int w = 0; w < ATT_WARPS; w++) {
		wt[w] = expf(part_m[w] - mx);
		sum += part_l[w] * wt[w];
	}
	float *out = dst + ((size_t)tok * p.n_head + h) * hd;
	for (uint32_t d = threadIdx.x; d < hd; d += blockDim.x) {
		float o = 0.0f;
		for (int w = 0; w < ATT_WARPS; w++)
			o += part_o[w][d] * wt[w];
		out[d] = o / sum;
	}
}

extern "C" int gi_cuda_attn(gi_cuda_stream stream, const struct gi_attn_params *p, const float *q,
			    float *dst, uint32_t n_tokens, const struct gi_cuda_tokens *t,
			    const struct gi_kv_pool *kv, uint32_t layer)
{
	if (!p->head_dim || p->head_dim > GI_CUDA_MAX_HEAD_DIM || !p->n_head_kv ||
	    p->n_head % p->n_head_kv || p->n_head > 65535 || kv->head_dim != p->head_dim ||
	    kv->n_head_kv != p->n_head_kv || !kv->block_tokens || n_tokens > 65535 ||
	    (kv->type != GI_TYPE_F32 && kv->type != GI_TYPE_F16))
		return -EINVAL;
	if (!n_tokens || !p->n_head)
		return 0;
	dim3 grid(p->n_head, n_tokens), block(32 * ATT_WARPS);
	if (kv->type == GI_TYPE_F16)
		return GI_LAUNCH(stream, grid, block, 0, attn_kernel<true>, *p, q, dst, *t, *kv,
				 layer);
	return GI_LAUNCH(stream, grid, block, 0, attn_kernel<false>, *p, q, dst, *t, *kv, layer);
}
