/* One graph node (kernels/backend.h) as the kernels that compute it: the
 * dispatch a CUDA backend's step runs (or captures) node by node. Host
 * code only. */
#include "kernels/cuda/common.cuh"

extern "C" int gi_cuda_node_run(gi_cuda_stream stream, const struct gi_node *n,
				const struct gi_attn_params *p, const struct gi_cuda_step *s)
{
	uint32_t rows = n->rows == GI_ROWS_OUT ? s->n_out : s->n_tokens;
	switch (n->op) {
	case GI_OP_EMBED:
		return gi_cuda_embed(stream, &n->embed.w, s->tokens, s->n_tokens, n->embed.dst);
	case GI_OP_RMSNORM:
		return gi_cuda_rmsnorm(stream, n->rmsnorm.src,
				       n->rows == GI_ROWS_OUT ? s->out_rows : nullptr, n->rmsnorm.w,
				       n->rmsnorm.dst, rows, n->rmsnorm.dim, n->rmsnorm.eps);
	case GI_OP_MATMUL:
		for (uint32_t i = 0; i < n->matmul.n_mat; i++) {
			int r = gi_cuda_gemv(stream, &n->matmul.w[i], n->matmul.src, rows,
					     n->matmul.bias[i], n->matmul.dst[i], n->matmul.accumulate);
			if (r)
				return r;
		}
		return 0;
	case GI_OP_ROPE_KV:
		return gi_cuda_rope_kv(stream, p, n->rope_kv.q, n->rope_kv.k, n->rope_kv.v,
				       s->n_tokens, &s->t, &s->kv, n->rope_kv.layer);
	case GI_OP_ATTN:
		return gi_cuda_attn(stream, p, n->attn.q, n->attn.dst, s->n_tokens, &s->t, &s->kv,
				    n->attn.layer);
	case GI_OP_SILU_MUL:
		return gi_cuda_silu_mul(stream, n->silu_mul.a, n->silu_mul.b, n->silu_mul.dst, rows,
					n->silu_mul.dim);
	default:
		return -EINVAL;
	}
}
