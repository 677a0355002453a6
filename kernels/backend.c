/* Backend-independent parts of the backend interface: the KV pool layout and
 * the checks every backend runs on a graph before accepting it. */
#include "kernels/backend.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/backend_impl.h"

size_t gi_kv_pool_layout(struct gi_kv_pool *kv, enum gi_type type, uint32_t n_layer,
			 uint32_t n_blocks, uint32_t block_tokens, uint32_t n_head_kv,
			 uint32_t head_dim)
{
	size_t esz = type == GI_TYPE_F16 ? 2 : 4;
	*kv = (struct gi_kv_pool){
		.type = type == GI_TYPE_F16 ? GI_TYPE_F16 : GI_TYPE_F32,
		.n_blocks = n_blocks,
		.block_tokens = block_tokens,
		.n_head_kv = n_head_kv,
		.head_dim = head_dim,
	};
	/* each factor below 2^32, so two at a time cannot overflow 64 bits */
	uint64_t blk = (uint64_t)n_head_kv * head_dim, lay;
	if (__builtin_mul_overflow(blk, (uint64_t)block_tokens * esz, &blk) ||
	    __builtin_mul_overflow(blk, (uint64_t)n_blocks, &lay) || blk > SIZE_MAX ||
	    lay > SIZE_MAX || __builtin_mul_overflow(lay, (uint64_t)n_layer, &lay) ||
	    lay > SIZE_MAX)
		return 0;
	kv->block_stride = (size_t)blk;
	kv->layer_stride = (size_t)blk * n_blocks;
	return (size_t)lay;
}

static int mat_ok(const struct gi_mat *w, uint32_t i, const char *what, char *err, size_t errlen)
{
	if (!w->data || !gi_type_valid(w->type) || w->type == GI_TYPE_Q8_K ||
	    !gi_type_row_bytes(w->type, w->k) || !w->n) {
		snprintf(err, errlen, "graph node %u: %s matrix (type %d, %u x %u) is not usable", i,
			 what, (int)w->type, w->n, w->k);
		return -EINVAL;
	}
	return 0;
}

int gi_graph_check(const struct gi_graph_desc *d, char *err, size_t errlen)
{
	const struct gi_attn_params *a = &d->attn;
	if (d->size < sizeof(*d) || !d->nodes || !d->n_nodes || !d->max_tokens || !d->max_out) {
		snprintf(err, errlen, "graph: empty or unsized description");
		return -EINVAL;
	}
	if (!a->n_head || !a->n_head_kv || a->n_head % a->n_head_kv || !a->head_dim ||
	    a->n_rot % 2 || a->n_rot > a->head_dim) {
		snprintf(err, errlen,
			 "graph: attention geometry n_head %u n_head_kv %u head_dim %u n_rot %u is invalid",
			 a->n_head, a->n_head_kv, a->head_dim, a->n_rot);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < d->n_nodes; i++) {
		const struct gi_node *n = &d->nodes[i];
		int r = 0;
		bool written = false;
		switch (n->op) {
		case GI_OP_EMBED:
			r = mat_ok(&n->embed.w, i, "embedding", err, errlen);
			written = r != 0;
			if (!r && (!n->embed.dst || n->rows != GI_ROWS_TOKENS))
				r = -EINVAL;
			break;
		case GI_OP_RMSNORM:
			if (!n->rmsnorm.src || !n->rmsnorm.w || !n->rmsnorm.dst || !n->rmsnorm.dim)
				r = -EINVAL;
			break;
		case GI_OP_MATMUL:
			if (!n->matmul.src || !n->matmul.n_mat || n->matmul.n_mat > GI_MATMUL_MAX)
				r = -EINVAL;
			for (uint32_t j = 0; !r && j < n->matmul.n_mat; j++) {
				r = mat_ok(&n->matmul.w[j], i, "matmul", err, errlen);
				written = r != 0;
				if (!r && (!n->matmul.dst[j] || n->matmul.w[j].k != n->matmul.w[0].k)) {
					snprintf(err, errlen,
						 "graph node %u: matmul %u has k %u, matmul 0 has k %u", i,
						 j, n->matmul.w[j].k, n->matmul.w[0].k);
					return -EINVAL;
				}
			}
			break;
		case GI_OP_ROPE_KV:
			if (!n->rope_kv.q || !n->rope_kv.k || !n->rope_kv.v || n->rows != GI_ROWS_TOKENS)
				r = -EINVAL;
			break;
		case GI_OP_ATTN:
			if (!n->attn.q || !n->attn.dst || n->rows != GI_ROWS_TOKENS)
				r = -EINVAL;
			break;
		case GI_OP_SILU_MUL:
			if (!n->silu_mul.a || !n->silu_mul.b || !n->silu_mul.dst || !n->silu_mul.dim)
				r = -EINVAL;
			break;
		default:
			snprintf(err, errlen, "graph node %u: unknown op %d", i, (int)n->op);
			return -EINVAL;
		}
		if (r && !written)
			snprintf(err, errlen, "graph node %u (op %d): missing operand or bad row mode",
				 i, (int)n->op);
		if (r)
			return r;
	}
	return 0;
}
