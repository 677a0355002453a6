/* CPU backend graph runner. All threads of the pool walk the node list of a
 * step together and meet at a spin barrier after each node, so a step costs
 * one wake-up. Each node splits its rows (or output columns, for a matmul)
 * evenly; a node too small to pay for the split runs on thread 0 while the
 * others go straight to the barrier, and a whole step too small to pay for
 * any barrier runs on the calling thread alone. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/repack.h"

/* Multiply-adds below which a node runs on one thread, and below which a
 * whole step does. A step pays ~10 barriers per layer; at a few million
 * multiply-adds (stories260K decoding 8 sequences) one thread is as fast as
 * two on an idle machine and much faster on a busy one, where a barrier
 * waits for a preempted peer. */
#define NODE_SMALL_MACS 16384
#define STEP_SMALL_MACS 4000000
#define ATT_CHUNK 16   /* keys scored at once */
#define ATT_CACHE 4096 /* contexts up to this keep their scores between passes */

struct cpu_graph {
	struct gi_graph base;
	struct cpu_backend *b;
	struct gi_node *nodes;
	uint32_t n_nodes;
	uint8_t *packed;             /* per node: bit i = matmul weight i is x16-packed */
	void *packs;                 /* the packed copies, one mapping */
	size_t packs_len;
	struct gi_attn_params attn;
	uint64_t macs_tok, macs_out; /* matmul multiply-adds per token / per out row */
	uint32_t n_attn;             /* ATTN nodes (layers) */
	atomic_uint *next;           /* per node: next matmul column / attention item */
	uint8_t *xq[GI_MATMUL_MAX];  /* converted activations, one per weight type of a node */
	size_t xq_bytes;
	float *acc;                  /* matmul results before they are added to dst */
	float *thr;                  /* per-thread scratch, thr_stride floats each */
	size_t thr_stride;
	const struct gi_step *s;     /* the step being run */
};

static void split(uint32_t n, int ith, int nth, uint32_t *a, uint32_t *b)
{
	*a = (uint32_t)((uint64_t)n * (uint64_t)ith / (uint64_t)nth);
	*b = (uint32_t)((uint64_t)n * (uint64_t)(ith + 1) / (uint64_t)nth);
}

/* This thread's rows of a node of WORK multiply-adds: an even share, or for
 * a small node all rows on thread 0 and none elsewhere. */
static void share(uint64_t work, uint32_t rows, int ith, int nth, uint32_t *a, uint32_t *b)
{
	if (work < NODE_SMALL_MACS) {
		*a = 0;
		*b = ith ? 0 : rows;
		return;
	}
	split(rows, ith, nth, a, b);
}

static uint32_t node_rows(const struct cpu_graph *g, const struct gi_node *n)
{
	return n->rows == GI_ROWS_OUT ? g->s->n_out : g->s->n_tokens;
}

/* ---- per-op executors ------------------------------------------------------ */

static void exec_embed(struct cpu_graph *g, const struct gi_node *n, int ith, int nth)
{
	const struct gi_mat *w = &n->embed.w;
	size_t rb = gi_type_row_bytes(w->type, w->k);
	uint32_t a, b;
	split(g->s->n_tokens, ith, nth, &a, &b);
	for (uint32_t t = a; t < b; t++) {
		const uint8_t *row = (const uint8_t *)w->data + (size_t)g->s->tokens[t] * rb;
		float *dst = n->embed.dst + (size_t)t * w->k;
		if (w->type == GI_TYPE_F32)
			memcpy(dst, row, rb);
		else
			gi_dequantize_row(w->type, row, dst, w->k);
	}
}

static void exec_rmsnorm(struct cpu_graph *g, const struct gi_node *n, int ith, int nth)
{
	uint32_t dim = n->rmsnorm.dim, rows = node_rows(g, n), a, b;
	share((uint64_t)rows * dim, rows, ith, nth, &a, &b);
	for (uint32_t r = a; r < b; r++) {
		uint32_t in = n->rows == GI_ROWS_OUT ? g->s->out_rows[r] : r;
		g->b->ops->rmsnorm(n->rmsnorm.src + (size_t)in * dim, n->rmsnorm.w,
				   n->rmsnorm.dst + (size_t)r * dim, dim, n->rmsnorm.eps);
	}
}

static void exec_silu_mul(struct cpu_graph *g, const struct gi_node *n, int ith, int nth)
{
	uint32_t dim = n->silu_mul.dim, rows = node_rows(g, n), a, b;
	share((uint64_t)rows * dim, rows, ith, nth, &a, &b);
	for (uint32_t r = a; r < b; r++) {
		size_t o = (size_t)r * dim;
		g->b->ops->silu_mul(n->silu_mul.a + o, n->silu_mul.b + o, n->silu_mul.dst + o, dim);
	}
}

static bool is_packed(const struct cpu_graph *g, const struct gi_node *n, uint32_t i)
{
	return g->packed[n - g->nodes] >> i & 1;
}

/* The weight type whose activation format weight I of matmul node N reads:
 * its own, or the packed kernels' (repack.h). */
static enum gi_type act_type(const struct cpu_graph *g, const struct gi_node *n, uint32_t i)
{
	return is_packed(g, n, i) ? cpu_x16_act_type(n->matmul.w[i].type) : n->matmul.w[i].type;
}

/* The slot of converted activations weight I of a matmul node reads: the
 * first weight of the node with the same activation format. */
static uint32_t xq_slot(const struct cpu_graph *g, const struct gi_node *n, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++)
		if (act_type(g, n, j) == act_type(g, n, i))
			return j;
	return i;
}

/* Columns [A, B) of the concatenated outputs of matmul node N, M rows. */
static void matmul_cols(struct cpu_graph *g, const struct gi_node *n, uint32_t m, uint32_t a,
			uint32_t b)
{
	const struct cpu_backend *be = g->b;
	uint32_t k = n->matmul.w[0].k, off = 0;
	for (uint32_t i = 0; i < n->matmul.n_mat; i++) {
		const struct gi_mat *w = &n->matmul.w[i];
		uint32_t lo = off, hi = off + w->n;
		off = hi;
		if (b <= lo || a >= hi)
			continue;
		uint32_t j0 = (a > lo ? a : lo) - lo, j1 = (b < hi ? b : hi) - lo;
		float *dst = n->matmul.dst[i];
		float *y = n->matmul.accumulate ? g->acc : dst;
		if (is_packed(g, n, i))
			cpu_matmul_x16_rows(w->type, w->data, k, g->xq[xq_slot(g, n, i)], m, y, w->n, j0, j1);
		else
			cpu_matmul_rows(w->type, w->data, k, g->xq[xq_slot(g, n, i)], m, y, w->n, j0, j1);
		for (uint32_t r = 0; r < m; r++) {
			size_t o = (size_t)r * w->n + j0;
			if (n->matmul.accumulate)
				be->ops->add(dst + o, y + o, j1 - j0);
			if (n->matmul.bias[i])
				be->ops->add(dst + o, n->matmul.bias[i] + j0, j1 - j0);
		}
	}
}

static void exec_matmul(struct cpu_graph *g, const struct gi_node *n, int ith, int nth)
{
	const struct cpu_backend *be = g->b;
	uint32_t m = node_rows(g, n), k = n->matmul.w[0].k, ntot = 0, a, b;
	for (uint32_t i = 0; i < n->matmul.n_mat; i++)
		ntot += n->matmul.w[i].n;
	int sub = (uint64_t)m * k * ntot < NODE_SMALL_MACS ? 1 : nth;

	/* Phase 1: convert the activation rows once per weight type. */
	split(m, ith, nth, &a, &b);
	for (uint32_t i = 0; i < n->matmul.n_mat; i++)
		if (xq_slot(g, n, i) == i && a < b)
			cpu_act_convert(act_type(g, n, i), n->matmul.src, k, a, b, g->xq[i]);
	cpu_pool_barrier(be->pool, nth);
	if (ith >= sub)
		return;

	/* Phase 2: chunks of the output columns of all weights, taken as one
	 * concatenated range, handed out by an atomic counter (relaxed: it
	 * only splits work; the next barrier publishes the results), so a
	 * thread preempted on a busy machine delays one chunk, not a half. */
	atomic_uint *next = &g->next[n - g->nodes];
	uint32_t chunk = sub == 1 ? ntot : (ntot / ((uint32_t)sub * 4) + 15) & ~15u;
	chunk = chunk ? chunk : 16;
	for (;;) {
		uint32_t c0 = atomic_fetch_add_explicit(next, chunk, memory_order_relaxed);
		if (c0 >= ntot)
			break;
		matmul_cols(g, n, m, c0, c0 + chunk < ntot ? c0 + chunk : ntot);
	}
}

/* Start of block BLOCK of LAYER in pool half BASE (K or V). */
static uint8_t *kv_block(const struct gi_kv_pool *kv, void *base, uint32_t layer, uint32_t block)
{
	return (uint8_t *)base + layer * kv->layer_stride + block * kv->block_stride;
}

/* Stores K and V of one token at SLOT of a block, in the pool's layout. */
static void kv_store(const struct cpu_graph *g, const struct gi_kv_pool *kv, uint8_t *kb,
		     uint8_t *vb, uint32_t slot, const float *k, const float *v, float *tmp)
{
	uint32_t hd = kv->head_dim, bt = kv->block_tokens, kd = kv->n_head_kv * hd;
	int f16 = kv->type == GI_TYPE_F16;
	gi_f16 *th = (gi_f16 *)tmp;
	if (f16)
		g->b->ops->to_f16(k, th, kd);
	for (uint32_t i = 0; i < kd; i++) {
		size_t at = (size_t)i * bt + slot; /* (head, d) row i of the transposed K */
		if (f16)
			((gi_f16 *)kb)[at] = th[i];
		else
			((float *)kb)[at] = k[i];
	}
	for (uint32_t h = 0; h < kv->n_head_kv; h++) {
		size_t at = ((size_t)h * bt + slot) * hd;
		if (f16)
			g->b->ops->to_f16(v + h * hd, (gi_f16 *)vb + at, hd);
		else
			memcpy((float *)vb + at, v + h * hd, hd * sizeof(float));
	}
}

static void exec_rope_kv(struct cpu_graph *g, const struct gi_node *n, int ith, int nth)
{
	const struct gi_attn_params *p = &g->attn;
	const struct gi_step *s = g->s;
	const struct gi_kv_pool *kv = s->kv;
	uint32_t hd = p->head_dim, qd = p->n_head * hd, kd = p->n_head_kv * hd, a, b;
	float *cs = g->thr + (size_t)ith * g->thr_stride, *sn = cs + hd / 2, *tmp = cs + hd;
	int neox = p->rope_style == GI_ROPE_NEOX;
	split(s->n_tokens, ith, nth, &a, &b);
	for (uint32_t t = a; t < b; t++) {
		uint32_t pos = s->pos[t];
		cpu_rope_cache(cs, sn, pos, p->n_rot, p->freq_base, p->freq_scale);
		float *q = n->rope_kv.q + (size_t)t * qd, *k = n->rope_kv.k + (size_t)t * kd;
		for (uint32_t h = 0; h < p->n_head; h++)
			cpu_rope_head(q + h * hd, cs, sn, p->n_rot, neox);
		for (uint32_t h = 0; h < p->n_head_kv; h++)
			cpu_rope_head(k + h * hd, cs, sn, p->n_rot, neox);
		const struct gi_step_seq *sq = &s->seqs[s->seq[t]];
		uint32_t blk = sq->blocks[pos / kv->block_tokens], slot = pos % kv->block_tokens;
		kv_store(g, kv, kv_block(kv, kv->k, n->rope_kv.layer, blk),
			 kv_block(kv, kv->v, n->rope_kv.layer, blk), slot, k,
			 n->rope_kv.v + (size_t)t * kd, tmp);
	}
}

/* A run of keys of one block of one KV head: its transposed K columns (key
 * i of dimension d at k[d * block_tokens + i]) and its V rows. */
struct chunk {
	const void *k, *v;
	uint32_t n;
};

/* The keys [p0, p0 + n) of block BLK, head H, within one block. */
static void chunk_at(const struct gi_kv_pool *kv, uint32_t layer, uint32_t h, uint32_t blk,
		     uint32_t slot, uint32_t n, struct chunk *c)
{
	size_t esz = kv->type == GI_TYPE_F16 ? 2 : 4, hd = kv->head_dim, bt = kv->block_tokens;
	c->n = n;
	c->k = kv_block(kv, kv->k, layer, blk) + ((size_t)h * hd * bt + slot) * esz;
	c->v = kv_block(kv, kv->v, layer, blk) + ((size_t)h * bt + slot) * hd * esz;
}

/* Scaled scores of query QJ against the keys of chunk C. */
static void chunk_scores(const struct cpu_graph *g, const float *qj, const struct chunk *c,
			 float *sc)
{
	const struct gi_kv_pool *kv = g->s->kv;
	if (kv->type == GI_TYPE_F16)
		g->b->ops->kq_f16(qj, c->k, kv->block_tokens, c->n, kv->head_dim, g->attn.scale, sc);
	else
		g->b->ops->kq_f32(qj, c->k, kv->block_tokens, c->n, kv->head_dim, g->attn.scale, sc);
}

/* out += the values of chunk C weighted by W. */
static void chunk_values(const struct cpu_graph *g, float *out, const float *w,
			 const struct chunk *c)
{
	const struct gi_kv_pool *kv = g->s->kv;
	if (kv->type == GI_TYPE_F16)
		g->b->ops->pv_f16(out, w, c->v, kv->head_dim, c->n, kv->head_dim);
	else
		g->b->ops->pv_f32(out, w, c->v, kv->head_dim, c->n, kv->head_dim);
}

/* Attention of query QJ (already rounded for an F16 pool) over the context
 * [0, ctx) when its scores fit the row cache SC: all scores, one softmax over
 * the row, then the weighted values. */
static void attn_cached(const struct cpu_graph *g, const struct gi_step_seq *sq, uint32_t layer,
			uint32_t h, uint32_t ctx, const float *qj, float *oj, float *sc)
{
	const struct gi_kv_pool *kv = g->s->kv;
	const struct cpu_ops *ops = g->b->ops;
	uint32_t bt = kv->block_tokens;
	struct chunk c;
	for (uint32_t b = 0, p0 = 0; p0 < ctx; b++, p0 += bt) {
		chunk_at(kv, layer, h, sq->blocks[b], 0, ctx - p0 < bt ? ctx - p0 : bt, &c);
		chunk_scores(g, qj, &c, sc + p0);
	}
	float m = ops->max(sc, ctx);
	ops->scale(sc, 1.0f / ops->exp_sum(sc, sc, ctx, m), ctx);
	if (kv->type == GI_TYPE_F16)
		ops->round_f16(sc, ctx);
	for (uint32_t b = 0, p0 = 0; p0 < ctx; b++, p0 += bt) {
		chunk_at(kv, layer, h, sq->blocks[b], 0, ctx - p0 < bt ? ctx - p0 : bt, &c);
		chunk_values(g, oj, sc + p0, &c);
	}
}

/* The same for a context too long for the cache: a first pass for the
 * running maximum and sum, a second recomputing the scores chunk by chunk
 * (E holds ATT_CHUNK) to weight the values. */
static void attn_long(const struct cpu_graph *g, const struct gi_step_seq *sq, uint32_t layer,
		      uint32_t h, uint32_t ctx, const float *qj, float *oj, float *e)
{
	const struct gi_kv_pool *kv = g->s->kv;
	const struct cpu_ops *ops = g->b->ops;
	uint32_t bt = kv->block_tokens;
	float m = -INFINITY, sum = 0, inv = 0;
	struct chunk c;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t p0 = 0; p0 < ctx;) {
			uint32_t slot = p0 % bt, n = bt - slot;
			n = n < ATT_CHUNK ? n : ATT_CHUNK;
			n = n < ctx - p0 ? n : ctx - p0;
			chunk_at(kv, layer, h, sq->blocks[p0 / bt], slot, n, &c);
			p0 += n;
			chunk_scores(g, qj, &c, e);
			if (!pass) {
				float cm = fmaxf(m, ops->max(e, n));
				sum = sum * expf(m - cm) + ops->exp_sum(e, e, n, cm);
				m = cm;
				continue;
			}
			ops->exp_sum(e, e, n, m);
			ops->scale(e, inv, n);
			if (kv->type == GI_TYPE_F16)
				ops->round_f16(e, n);
			chunk_values(g, oj, e, &c);
		}
		inv = 1.0f / sum;
	}
}

/* One (token, KV head) item: the query heads sharing that KV head attend
 * over positions [0, pos] through the block table. With an F16 pool the
 * numerics are those of ggml's (non-flash) attention, which the golden
 * outputs were made with: the query is rounded to F16 for the K product and
 * the normalised probabilities are rounded to F16 for the V product. */
static void attn_item(struct cpu_graph *g, const struct gi_node *n, uint32_t t, uint32_t h,
		      float *scr)
{
	const struct gi_attn_params *p = &g->attn;
	const struct gi_step *s = g->s;
	uint32_t hd = p->head_dim, grp = p->n_head / p->n_head_kv, ctx = s->pos[t] + 1;
	const struct gi_step_seq *sq = &s->seqs[s->seq[t]];
	const float *q = n->attn.q + (size_t)t * p->n_head * hd + (size_t)h * grp * hd;
	float *out = n->attn.dst + (size_t)t * p->n_head * hd + (size_t)h * grp * hd;
	float *e = scr + ATT_CACHE, *qr = e + ATT_CHUNK;
	for (uint32_t j = 0; j < grp; j++) {
		const float *qj = q + j * hd;
		if (s->kv->type == GI_TYPE_F16) {
			memcpy(qr, qj, hd * sizeof(float));
			g->b->ops->round_f16(qr, hd);
			qj = qr;
		}
		memset(out + j * hd, 0, hd * sizeof(float));
		if (ctx <= ATT_CACHE)
			attn_cached(g, sq, n->attn.layer, h, ctx, qj, out + j * hd, scr);
		else
			attn_long(g, sq, n->attn.layer, h, ctx, qj, out + j * hd, e);
	}
}

static void exec_attn(struct cpu_graph *g, const struct gi_node *n, int ith, int nth)
{
	uint32_t nkv = g->attn.n_head_kv, items = g->s->n_tokens * nkv;
	float *scr = g->thr + (size_t)ith * g->thr_stride;
	/* items handed out one at a time: in a prefill later tokens attend over
	 * more keys, and a preempted thread holds up only its current item */
	atomic_uint *next = &g->next[n - g->nodes];
	for (;;) {
		uint32_t i = atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
		if (i >= items)
			break;
		attn_item(g, n, i / nkv, i % nkv, scr);
	}
}

static void run_step(void *arg, int ith, int nth)
{
	struct cpu_graph *g = arg;
	for (uint32_t i = 0; i < g->n_nodes; i++) {
		const struct gi_node *n = &g->nodes[i];
		switch (n->op) {
		case GI_OP_EMBED:
			exec_embed(g, n, ith, nth);
			break;
		case GI_OP_RMSNORM:
			exec_rmsnorm(g, n, ith, nth);
			break;
		case GI_OP_MATMUL:
			exec_matmul(g, n, ith, nth);
			break;
		case GI_OP_ROPE_KV:
			exec_rope_kv(g, n, ith, nth);
			break;
		case GI_OP_ATTN:
			exec_attn(g, n, ith, nth);
			break;
		case GI_OP_SILU_MUL:
			exec_silu_mul(g, n, ith, nth);
			break;
		default:
			break;
		}
		if (i + 1 < g->n_nodes)
			cpu_pool_barrier(g->b->pool, nth);
	}
}

/* ---- graph lifetime and runs ------------------------------------------------ */

int cpu_graph_create(struct gi_backend *base, const struct gi_graph_desc *d, struct gi_graph **ret,
		     char *err, size_t errlen)
{
	struct cpu_backend *b = (struct cpu_backend *)base;
	struct cpu_graph *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->b = b;
	g->attn = d->attn;
	g->n_nodes = d->n_nodes;
	g->nodes = malloc(d->n_nodes * sizeof(*g->nodes));
	g->next = calloc(d->n_nodes, sizeof(*g->next));
	g->packed = calloc(d->n_nodes, 1);
	if (!g->nodes || !g->next || !g->packed)
		goto nomem;
	memcpy(g->nodes, d->nodes, d->n_nodes * sizeof(*g->nodes));
	int r = cpu_graph_pack(b, g->nodes, g->n_nodes, g->packed, &g->packs, &g->packs_len, err, errlen);
	if (r) {
		cpu_graph_free(&g->base);
		return r;
	}

	size_t acc = 0;
	for (uint32_t i = 0; i < d->n_nodes; i++) {
		const struct gi_node *n = &d->nodes[i];
		g->n_attn += n->op == GI_OP_ATTN;
		if (n->op != GI_OP_MATMUL)
			continue;
		size_t rows = n->rows == GI_ROWS_OUT ? d->max_out : d->max_tokens;
		for (uint32_t j = 0; j < n->matmul.n_mat; j++) {
			const struct gi_mat *w = &n->matmul.w[j];
			size_t xb = cpu_act_row_bytes(act_type(g, &g->nodes[i], j), w->k) * rows;
			g->xq_bytes = xb > g->xq_bytes ? xb : g->xq_bytes;
			if (n->matmul.accumulate && rows * w->n > acc)
				acc = rows * w->n;
			uint64_t macs = (uint64_t)w->k * w->n;
			if (n->rows == GI_ROWS_OUT)
				g->macs_out += macs;
			else
				g->macs_tok += macs;
		}
	}
	const struct gi_attn_params *a = &d->attn;
	/* attention: score cache, one chunk's weights, the rounded query;
	 * rope: cos and sin, and a K row in F16 */
	size_t st = ATT_CACHE + ATT_CHUNK + a->head_dim, rope = (size_t)a->head_dim * (1 + a->n_head_kv);
	st = st > rope ? st : rope;
	g->thr_stride = (st + 15) & ~(size_t)15;
	g->xq_bytes = (g->xq_bytes + 63) & ~(size_t)63;
	if (gi_backend_alloc(base, g->xq_bytes * GI_MATMUL_MAX, (void **)&g->xq[0]) ||
	    gi_backend_alloc(base, acc * sizeof(float), (void **)&g->acc) ||
	    gi_backend_alloc(base, g->thr_stride * sizeof(float) * (size_t)b->n_threads,
			     (void **)&g->thr))
		goto nomem;
	for (int i = 1; i < GI_MATMUL_MAX; i++)
		g->xq[i] = g->xq[0] + (size_t)i * g->xq_bytes;
	*ret = &g->base;
	return 0;
nomem:
	cpu_graph_free(&g->base);
	snprintf(err, errlen, "graph: out of memory for scratch");
	return -ENOMEM;
}

void cpu_graph_free(struct gi_graph *base)
{
	struct cpu_graph *g = (struct cpu_graph *)base;
	gi_backend_release(&g->b->base, g->xq[0]);
	gi_backend_release(&g->b->base, g->acc);
	gi_backend_release(&g->b->base, g->thr);
	if (g->packs)
		munmap(g->packs, g->packs_len);
	free(g->packed);
	free(g->nodes);
	free(g->next);
	free(g);
}

int cpu_graph_run(struct gi_graph *base, const struct gi_step *s)
{
	struct cpu_graph *g = (struct cpu_graph *)base;
	uint64_t work = s->n_tokens * g->macs_tok + s->n_out * g->macs_out;
	uint64_t per_key = 2ull * g->attn.n_head * g->attn.head_dim * g->n_attn;
	for (uint32_t t = 0; t < s->n_tokens && work < STEP_SMALL_MACS; t++)
		work += (s->pos[t] + 1) * per_key;
	g->s = s;
	/* published to the workers by the pool's start of run */
	for (uint32_t i = 0; i < g->n_nodes; i++)
		atomic_store_explicit(&g->next[i], 0, memory_order_relaxed);
	cpu_pool_run(g->b->pool, work >= STEP_SMALL_MACS, run_step, g);
	g->s = NULL;
	return 0;
}
