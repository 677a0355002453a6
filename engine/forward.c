/* The forward pass, described once as a backend graph at load, and one step
 * of it over the paged KV cache. Per layer:
 *
 *   xb = rmsnorm(x) * attn_norm
 *   q, k, v = Wq xb (+bq), Wk xb (+bk), Wv xb (+bv)      one MATMUL node
 *   rope(q, k) at each token's position; k, v -> KV pool  ROPE_KV
 *   att = softmax(q K^T / sqrt(d)) V  over the block table  ATTN
 *   x += Wo att                                           MATMUL, accumulate
 *   xb = rmsnorm(x) * ffn_norm
 *   hb, hb2 = Wgate xb, Wup xb                            one MATMUL node
 *   hb = silu(hb) * hb2
 *   x += Wdown hb                                         MATMUL, accumulate
 *
 * then the final norm and the output matmul on the rows that want logits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_impl.h"

static int alloc_act(struct model *m, float **p, size_t rows, size_t dim)
{
	return gi_backend_alloc(m->be, rows * dim * sizeof(float), (void **)p);
}

static int alloc_acts(struct model *m)
{
	struct model_acts *a = &m->a;
	const struct model_info *in = &m->info;
	size_t t = m->max_tokens;
	int r;
	if ((r = alloc_act(m, &a->x, t, in->n_embd)) || (r = alloc_act(m, &a->xb, t, in->n_embd)) ||
	    (r = alloc_act(m, &a->q, t, m->q_dim)) || (r = alloc_act(m, &a->k, t, m->kv_dim)) ||
	    (r = alloc_act(m, &a->v, t, m->kv_dim)) || (r = alloc_act(m, &a->att, t, m->q_dim)) ||
	    (r = alloc_act(m, &a->hb, t, in->n_ff)) || (r = alloc_act(m, &a->hb2, t, in->n_ff)) ||
	    (r = alloc_act(m, &a->logits, m->max_out, in->n_vocab)))
		return r;
	m->info.scratch_bytes =
		t * sizeof(float) * (2 * in->n_embd + 2 * m->q_dim + 2 * m->kv_dim + 2 * in->n_ff) +
		(size_t)m->max_out * in->n_vocab * sizeof(float);
	struct step_arrays *s = &m->st;
	s->tokens = calloc(t, sizeof(*s->tokens));
	s->pos = calloc(t, sizeof(*s->pos));
	s->seq = calloc(t, sizeof(*s->seq));
	s->out_rows = calloc(m->max_out, sizeof(*s->out_rows));
	s->out_seq = calloc(m->max_out, sizeof(*s->out_seq));
	s->seqs = calloc(m->max_seqs, sizeof(*s->seqs));
	if (!s->tokens || !s->pos || !s->seq || !s->out_rows || !s->out_seq || !s->seqs)
		return -ENOMEM;
	return 0;
}

static void matmul_node(struct gi_node *n, const float *src, bool acc)
{
	*n = (struct gi_node){ .op = GI_OP_MATMUL, .rows = GI_ROWS_TOKENS };
	n->matmul.src = src;
	n->matmul.accumulate = acc;
}

static void matmul_add(struct gi_node *n, struct gi_mat w, const float *bias, float *dst)
{
	uint32_t i = n->matmul.n_mat++;
	n->matmul.w[i] = w;
	n->matmul.bias[i] = bias;
	n->matmul.dst[i] = dst;
}

static void rmsnorm_node(struct gi_node *n, const struct model *m, const float *src,
			 const float *w, float *dst)
{
	*n = (struct gi_node){ .op = GI_OP_RMSNORM, .rows = GI_ROWS_TOKENS };
	n->rmsnorm.src = src;
	n->rmsnorm.w = w;
	n->rmsnorm.dst = dst;
	n->rmsnorm.dim = m->info.n_embd;
	n->rmsnorm.eps = m->eps;
}

#define NODES_PER_LAYER 9

int model_graph_create(struct model *m, char *err, size_t errlen)
{
	int r = alloc_acts(m);
	if (r)
		return r;
	uint32_t nn = 3 + NODES_PER_LAYER * m->info.n_layer;
	struct gi_node *nodes = calloc(nn, sizeof(*nodes)), *n = nodes;
	if (!nodes)
		return -ENOMEM;
	struct model_acts *a = &m->a;
	*n = (struct gi_node){ .op = GI_OP_EMBED, .rows = GI_ROWS_TOKENS };
	n->embed.w = m->tok_embd;
	n->embed.dst = a->x;
	n++;
	for (uint32_t l = 0; l < m->info.n_layer; l++) {
		const struct layer_weights *w = &m->layers[l];
		rmsnorm_node(n++, m, a->x, w->attn_norm, a->xb);
		matmul_node(n, a->xb, false);
		matmul_add(n, w->wq, w->bq, a->q);
		matmul_add(n, w->wk, w->bk, a->k);
		matmul_add(n, w->wv, w->bv, a->v);
		n++;
		*n = (struct gi_node){ .op = GI_OP_ROPE_KV, .rows = GI_ROWS_TOKENS };
		n->rope_kv.q = a->q;
		n->rope_kv.k = a->k;
		n->rope_kv.v = a->v;
		n->rope_kv.layer = l;
		n++;
		*n = (struct gi_node){ .op = GI_OP_ATTN, .rows = GI_ROWS_TOKENS };
		n->attn.q = a->q;
		n->attn.dst = a->att;
		n->attn.layer = l;
		n++;
		matmul_node(n, a->att, true);
		matmul_add(n++, w->wo, NULL, a->x);
		rmsnorm_node(n++, m, a->x, w->ffn_norm, a->xb);
		matmul_node(n, a->xb, false);
		matmul_add(n, w->gate, NULL, a->hb);
		matmul_add(n, w->up, NULL, a->hb2);
		n++;
		*n = (struct gi_node){ .op = GI_OP_SILU_MUL, .rows = GI_ROWS_TOKENS };
		n->silu_mul.a = a->hb;
		n->silu_mul.b = a->hb2;
		n->silu_mul.dst = a->hb;
		n->silu_mul.dim = m->info.n_ff;
		n++;
		matmul_node(n, a->hb, true);
		matmul_add(n++, w->down, NULL, a->x);
	}
	rmsnorm_node(n, m, a->x, m->out_norm, a->xb);
	n++->rows = GI_ROWS_OUT;
	matmul_node(n, a->xb, false);
	n->rows = GI_ROWS_OUT;
	matmul_add(n++, m->output, NULL, a->logits);

	struct gi_graph_desc d = {
		.size = sizeof(d),
		.nodes = nodes,
		.n_nodes = (uint32_t)(n - nodes),
		.attn = m->attn,
		.max_tokens = m->max_tokens,
		.max_out = m->max_out,
	};
	r = gi_graph_create(m->be, &d, &m->graph, err, errlen);
	free(nodes);
	return r;
}

void model_graph_free(struct model *m)
{
	gi_graph_free(m->graph);
	m->graph = NULL;
	if (!m->be)
		return;
	struct model_acts *a = &m->a;
	float *bufs[] = { a->x, a->xb, a->q, a->k, a->v, a->att, a->hb, a->hb2, a->logits };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		gi_backend_release(m->be, bufs[i]);
	free(m->st.tokens);
	free(m->st.pos);
	free(m->st.seq);
	free(m->st.out_rows);
	free(m->st.out_seq);
	free(m->st.seqs);
}

/* Checks every sequence before anything runs: a bad request fails whole and
 * leaves the KV untouched. */
static int check_step(const struct model *m, const struct kv_cache *kv,
		      const struct step_seq *seqs, uint32_t n)
{
	if (!n || n > m->max_seqs || kv->m != m)
		return -EINVAL;
	uint64_t total = 0, outs = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct step_seq *s = &seqs[i];
		if (!s->n_tokens || !s->tokens || (s->n_blocks && !s->blocks))
			return -EINVAL;
		total += s->n_tokens;
		outs += s->logits != NULL;
		uint64_t end = (uint64_t)s->pos + s->n_tokens;
		if (total > m->max_tokens || end > (uint64_t)s->n_blocks * KV_BLOCK_TOKENS)
			return -EINVAL;
		for (uint32_t t = 0; t < s->n_tokens; t++)
			if (s->tokens[t] < 0 || (uint32_t)s->tokens[t] >= m->info.n_vocab)
				return -EINVAL;
		uint32_t used = (uint32_t)((end + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS);
		for (uint32_t b = 0; b < used; b++)
			if (s->blocks[b] >= kv->pool.n_blocks)
				return -EINVAL;
	}
	return outs <= m->max_out ? 0 : -EINVAL;
}

int model_step(struct model *m, struct kv_cache *kv, const struct step_seq *seqs, uint32_t n)
{
	int r = check_step(m, kv, seqs, n);
	if (r)
		return r;
	struct step_arrays *a = &m->st;
	uint32_t nt = 0, no = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct step_seq *s = &seqs[i];
		a->seqs[i] = (struct gi_step_seq){ .blocks = s->blocks, .n_blocks = s->n_blocks };
		for (uint32_t t = 0; t < s->n_tokens; t++, nt++) {
			a->tokens[nt] = s->tokens[t];
			a->pos[nt] = s->pos + t;
			a->seq[nt] = i;
		}
		if (s->logits) {
			a->out_rows[no] = nt - 1;
			a->out_seq[no++] = i;
		}
	}
	struct gi_step st = {
		.n_tokens = nt,
		.n_seqs = n,
		.n_out = no,
		.tokens = a->tokens,
		.pos = a->pos,
		.seq = a->seq,
		.seqs = a->seqs,
		.out_rows = a->out_rows,
		.kv = &kv->pool,
	};
	if ((r = gi_graph_run(m->graph, &st)) || (r = gi_backend_sync(m->be)))
		return r;
	size_t nv = m->info.n_vocab;
	for (uint32_t i = 0; i < no; i++)
		if ((r = gi_backend_read(m->be, seqs[a->out_seq[i]].logits, m->a.logits + i * nv,
					 nv * sizeof(float))))
			return r;
	return 0;
}
