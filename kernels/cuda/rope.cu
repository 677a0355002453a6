/* ROPE_KV: one block per token rotates the token's q and k heads in place
 * and stores its k and v in the paged pool (layout in kernels/backend.h:
 * K transposed per block, V row-major), F32 or F16 (rounded to nearest even).
 *
 * The angles are the CPU backend's to the bit where the math library
 * allows: theta_i = pos * scale_i with scale_i built by i multiplications
 * by theta_scale in float (as ggml does), theta_scale computed on the host
 * with the same powf call as kernels/cpu/ops.c. */
#include <cmath>

#include "kernels/cuda/common.cuh"

#define ROPE_THREADS 128
#define ROPE_MAX_PAIRS (GI_CUDA_MAX_HEAD_DIM / 2)

static __global__ void rope_kv_kernel(struct gi_attn_params p, float theta_scale, float *q,
				      float *k, const float *v, struct gi_cuda_tokens t,
				      struct gi_kv_pool kv, uint32_t layer)
{
	__shared__ float cs[ROPE_MAX_PAIRS], sn[ROPE_MAX_PAIRS];
	uint32_t tok = blockIdx.x, pos = t.pos[tok], half = p.n_rot / 2, hd = p.head_dim;
	uint32_t qd = p.n_head * hd, kd = p.n_head_kv * hd;
	for (uint32_t i = threadIdx.x; i < half; i += blockDim.x) {
		float theta = (float)pos;
		for (uint32_t j = 0; j < i; j++)
			theta *= theta_scale;
		float a = theta * p.freq_scale;
		cs[i] = cosf(a);
		sn[i] = sinf(a);
	}
	__syncthreads();

	float *qt = q + (size_t)tok * qd, *kt = k + (size_t)tok * kd;
	bool neox = p.rope_style == GI_ROPE_NEOX;
	uint32_t pairs = (p.n_head + p.n_head_kv) * half;
	for (uint32_t w = threadIdx.x; w < pairs; w += blockDim.x) {
		uint32_t h = w / half, i = w % half;
		float *x = h < p.n_head ? qt + h * hd : kt + (h - p.n_head) * hd;
		uint32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
		float x0 = x[a], x1 = x[b];
		x[a] = x0 * cs[i] - x1 * sn[i];
		x[b] = x0 * sn[i] + x1 * cs[i];
	}
	__syncthreads(); /* the rotated k is in memory before it is stored */

	uint32_t bt = kv.block_tokens, slot = pos % bt;
	uint32_t blk = t.blocks[t.table_start[t.seq[tok]] + pos / bt];
	size_t off = (size_t)layer * kv.layer_stride + (size_t)blk * kv.block_stride;
	uint8_t *kb = static_cast<uint8_t *>(kv.k) + off, *vb = static_cast<uint8_t *>(kv.v) + off;
	const float *vt = v + (size_t)tok * kd;
	bool f16 = kv.type == GI_TYPE_F16;
	for (uint32_t i = threadIdx.x; i < kd; i += blockDim.x) {
		/* K: (head, d) = row i of the transposed block; V: (head, slot) rows */
		size_t ka = (size_t)i * bt + slot, va = ((size_t)(i / hd) * bt + slot) * hd + i % hd;
		if (f16) {
			reinterpret_cast<uint16_t *>(kb)[ka] = __half_as_ushort(__float2half(kt[i]));
			reinterpret_cast<uint16_t *>(vb)[va] = __half_as_ushort(__float2half(vt[i]));
		} else {
			reinterpret_cast<float *>(kb)[ka] = kt[i];
			reinterpret_cast<float *>(vb)[va] = vt[i];
		}
	}
}

extern "C" int gi_cuda_rope_kv(gi_cuda_stream stream, const struct gi_attn_params *p, float *q,
			       float *k, const float *v, uint32_t n_tokens,
			       const struct gi_cuda_tokens *t, const struct gi_kv_pool *kv,
			       uint32_t layer)
{
	if (p->head_dim > GI_CUDA_MAX_HEAD_DIM || p->n_rot > p->head_dim || p->n_rot % 2 ||
	    kv->head_dim != p->head_dim || kv->n_head_kv != p->n_head_kv || !kv->block_tokens ||
	    (kv->type != GI_TYPE_F32 && kv->type != GI_TYPE_F16) || n_tokens > 0x7fffffffu)
		return -EINVAL;
	if (!n_tokens)
		return 0;
	float theta_scale = powf(p->freq_base, -2.0f / (float)(p->n_rot ? p->n_rot : 2));
	return GI_LAUNCH(stream, dim3(n_tokens), dim3(ROPE_THREADS), 0, rope_kv_kernel, *p,
			 theta_scale, q, k, v, *t, *kv, layer);
}
