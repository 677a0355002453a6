/* The backend interface's front: picks the backend for a device string,
 * checks what every backend would check (graph shapes, step sizes), lays out
 * the KV pool, and dispatches the rest to the backend's table. */
#include "kernels/backend.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Checks the shapes and operands of every node of D; -EINVAL with a message
 * naming the node. */
static int gi_graph_check(const struct gi_graph_desc *d, char *err, size_t errlen)
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
			/* accumulate: one weight (its partial sums share a buffer) */
			if (!n->matmul.src || !n->matmul.n_mat || n->matmul.n_mat > GI_MATMUL_MAX ||
			    (n->matmul.accumulate && n->matmul.n_mat > 1))
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

int gi_backend_create(const struct gi_backend_opts *o, struct gi_backend **ret, char *err,
		      size_t errlen)
{
	const char *dev = o && o->size >= sizeof(*o) ? o->device : NULL;
	int n = o && o->size >= sizeof(*o) ? o->n_threads : 0;
	if (o && o->size < sizeof(*o)) {
		snprintf(err, errlen, "backend options: size %zu is smaller than %zu", o->size,
			 sizeof(*o));
		return -EINVAL;
	}
	for (size_t i = sizeof(*o); o && i < o->size; i++)
		if (((const uint8_t *)o)[i]) {
			snprintf(err, errlen, "backend options: unknown non-zero byte at offset %zu", i);
			return -EINVAL;
		}
	if (dev && strcmp(dev, "auto") && strcmp(dev, "cpu")) {
		int cuda = !strncmp(dev, "cuda", 4);
		snprintf(err, errlen,
			 cuda ? "device \"%s\": this build has no GPU backend"
			      : "device \"%s\" is unknown (auto, cpu, cuda[:N])",
			 dev);
		return cuda ? -ENODEV : -EINVAL;
	}
	if (n < 0 || n > 1024) {
		snprintf(err, errlen, "threads %d is out of range (0 = all CPUs, at most 1024)", n);
		return -EINVAL;
	}
	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	return cpu_backend_create(n, ret, err, errlen);
}

void gi_backend_free(struct gi_backend *b)
{
	if (b)
		b->ops->free(b);
}

const char *gi_backend_name(const struct gi_backend *b)
{
	return b->name;
}

int gi_backend_alloc(struct gi_backend *b, size_t bytes, void **ret)
{
	return b->ops->alloc(b, bytes, ret);
}

void gi_backend_release(struct gi_backend *b, void *mem)
{
	if (mem)
		b->ops->release(b, mem);
}

int gi_backend_map(struct gi_backend *b, const void *host, size_t bytes, const void **ret)
{
	return b->ops->map(b, host, bytes, ret);
}

int gi_backend_read(struct gi_backend *b, void *dst, const void *src, size_t bytes)
{
	return b->ops->read(b, dst, src, bytes);
}

int gi_backend_sync(struct gi_backend *b)
{
	return b->ops->sync(b);
}

int gi_graph_create(struct gi_backend *b, const struct gi_graph_desc *d, struct gi_graph **ret,
		    char *err, size_t errlen)
{
	int r = gi_graph_check(d, err, errlen);
	if (r)
		return r;
	struct gi_graph *g;
	if ((r = b->ops->graph_create(b, d, &g, err, errlen)))
		return r;
	g->b = b;
	g->max_tokens = d->max_tokens;
	g->max_out = d->max_out;
	*ret = g;
	return 0;
}

void gi_graph_free(struct gi_graph *g)
{
	if (g)
		g->b->ops->graph_free(g);
}

int gi_graph_run(struct gi_graph *g, const struct gi_step *s)
{
	if (!s->n_tokens || s->n_tokens > g->max_tokens || s->n_out > g->max_out || !s->kv)
		return -EINVAL;
	return g->b->ops->graph_run(g, s);
}
