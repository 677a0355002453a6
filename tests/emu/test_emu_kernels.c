/* The CUDA kernels (kernels/cuda) run by the emulator against the CPU
 * backend: RMSNORM and SILU_MUL against the CPU row ops, EMBED and the
 * dequantize kernel against gi_dequantize_row, the GEMV against a double
 * dot product of the dequantized rows and against the CPU backend's MATMUL
 * node (which quantizes the activations, hence a looser bound), ROPE_KV and
 * ATTN against a CPU backend graph of the same two nodes over several steps
 * of two sequences (prefill then decode, tables interleaved, GQA), F32 and
 * F16 pools, NORM and NEOX rope, odd head sizes. Per-op tolerances as in
 * tests/kernels/test_ops.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/emu/emu.h"
#include "tests/t_util.h"

static uint64_t rng = 1234;

static float frand(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void fill(float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = frand() * scale;
}

static void close_to(double got, double want, double tol, const char *op, const char *what,
		     size_t n, size_t i)
{
	ck_assert_msg(fabs(got - want) <= tol * (1 + fabs(want)), "%s (%s, %zu) [%zu]: %.9g, want %.9g",
		      op, what, n, i, got, want);
}

#define LAUNCH(call) ck_assert_msg((call) == 0, "%s: %s", #call, emu_last_error())

/* ---- row ops ----------------------------------------------------------------- */

START_TEST(rmsnorm_silu)
{
	static const uint32_t dims[] = { 1, 7, 31, 64, 100, 257, 1000, 4096 };
	emu_set_threads(2);
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
		uint32_t dim = dims[di], rows = 5;
		size_t n = (size_t)rows * dim;
		float *x = malloc(n * 4), *b = malloc(n * 4), *w = malloc(dim * 4), *y = malloc(n * 4);
		float *ref = malloc(n * 4);
		fill(x, n, 3);
		fill(b, n, 2);
		fill(w, dim, 1);
		/* rows gathered in reverse, as a GI_ROWS_OUT node */
		uint32_t idx[5] = { 4, 3, 2, 1, 0 };
		LAUNCH(gi_cuda_rmsnorm(NULL, x, idx, w, y, rows, dim, 1e-5f));
		for (uint32_t r = 0; r < rows; r++)
			cpu_ops_scalar.rmsnorm(x + (size_t)idx[r] * dim, w, ref + (size_t)r * dim, dim,
					       1e-5f);
		for (size_t i = 0; i < n; i++)
			close_to(y[i], ref[i], 1e-5, "rmsnorm", "gather", dim, i);
		/* in place */
		memcpy(y, x, n * 4);
		LAUNCH(gi_cuda_rmsnorm(NULL, y, NULL, w, y, rows, dim, 1e-6f));
		for (uint32_t r = 0; r < rows; r++)
			cpu_ops_scalar.rmsnorm(x + (size_t)r * dim, w, ref + (size_t)r * dim, dim, 1e-6f);
		for (size_t i = 0; i < n; i++)
			close_to(y[i], ref[i], 1e-5, "rmsnorm", "in place", dim, i);

		LAUNCH(gi_cuda_silu_mul(NULL, x, b, y, rows, dim));
		cpu_ops_scalar.silu_mul(x, b, ref, n);
		for (size_t i = 0; i < n; i++)
			close_to(y[i], ref[i], 1e-6, "silu_mul", "", dim, i);
		free(x);
		free(b);
		free(w);
		free(y);
		free(ref);
	}
}
END_TEST

START_TEST(argmax)
{
	static const uint32_t ns[] = { 1, 2, 31, 33, 512, 1000, 32000 };
	emu_set_threads(2);
	for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
		uint32_t n = ns[ni], rows = 4;
		float *x = malloc((size_t)rows * n * 4);
		int32_t out[4];
		fill(x, (size_t)rows * n, 10);
		/* row 1: the maximum twice (the lower index wins); row 2: all
		 * equal; row 3: a NaN beside the maximum */
		x[n + n / 3] = 11.0f;
		x[n + n - 1] = 11.0f;
		for (uint32_t i = 0; i < n; i++)
			x[2 * n + i] = -1.0f;
		x[3 * n + n / 2] = 12.0f;
		x[3 * n + n / 4] = NAN;
		LAUNCH(gi_cuda_argmax(NULL, x, rows, n, out));
		for (uint32_t r = 0; r < rows; r++) {
			int32_t best = 0;
			for (uint32_t i = 1; i < n; i++)
				if (x[r * n + i] > x[r * n + best] || isnan(x[r * n + best]))
					best = (int32_t)i;
			ck_assert_msg(out[r] == best, "argmax n %u row %u: %d, want %d", n, r, out[r],
				      best);
		}
		free(x);
	}
}
END_TEST

/* ---- weights: embed, dequantize, gemv ----------------------------------------- */

static const enum gi_type wtypes[] = { GI_TYPE_F32,  GI_TYPE_F16,  GI_TYPE_BF16, GI_TYPE_Q8_0,
				       GI_TYPE_Q4_0, GI_TYPE_Q4_K, GI_TYPE_Q6_K };
#define N_WTYPES (int)(sizeof(wtypes) / sizeof(wtypes[0]))

/* A random N x K matrix of type T and its dequantized F32 copy. */
static void *make_weights(enum gi_type t, uint32_t k, uint32_t n, float **ret_deq)
{
	size_t rb = gi_type_row_bytes(t, k);
	uint8_t *w = malloc(rb * n);
	float *deq = malloc((size_t)n * k * 4), *row = malloc((size_t)k * 4);
	for (uint32_t j = 0; j < n; j++) {
		fill(row, k, 0.5f + (float)(j % 5));
		gi_quantize_row(t, row, w + j * rb, k);
		gi_dequantize_row(t, w + j * rb, deq + (size_t)j * k, k);
	}
	free(row);
	*ret_deq = deq;
	return w;
}

START_TEST(embed_dequantize)
{
	enum gi_type t = wtypes[_i];
	uint32_t bk = (uint32_t)gi_type_block_elems(t), k = bk == 1 ? 77 : 2 * bk, n = 37;
	float *deq;
	void *w = make_weights(t, k, n, &deq);
	struct gi_mat m = { t, k, n, w };
	int32_t tokens[6] = { 36, 0, 5, 5, 17, 1 };
	float *y = malloc(6 * (size_t)k * 4), *all = malloc((size_t)n * k * 4);
	uint16_t *h = malloc((size_t)n * k * 2);
	LAUNCH(gi_cuda_embed(NULL, &m, tokens, 6, y));
	for (int r = 0; r < 6; r++)
		for (uint32_t i = 0; i < k; i++)
			close_to(y[r * k + i], deq[(size_t)tokens[r] * k + i], 1e-6, "embed",
				 gi_type_name(t), k, i);
	LAUNCH(gi_cuda_dequantize(NULL, &m, all, GI_TYPE_F32));
	LAUNCH(gi_cuda_dequantize(NULL, &m, h, GI_TYPE_F16));
	for (size_t i = 0; i < (size_t)n * k; i++) {
		close_to(all[i], deq[i], 1e-6, "dequantize f32", gi_type_name(t), k, i);
		close_to(gi_f16_to_f32(h[i]), gi_f16_to_f32(gi_f32_to_f16(deq[i])), 1e-3,
			 "dequantize f16", gi_type_name(t), k, i);
	}
	ck_assert_int_eq(gi_cuda_dequantize(NULL, &m, all, GI_TYPE_Q8_0), -EINVAL);
	struct gi_mat bad = { t, k + (bk == 1 ? 0 : 1), n, w };
	if (bk > 1)
		ck_assert_int_eq(gi_cuda_embed(NULL, &bad, tokens, 1, y), -EINVAL);
	free(w);
	free(deq);
	free(y);
	free(all);
	free(h);
}
END_TEST

/* W (as one MATMUL node with a bias) through the CPU backend; the weights
 * get a copy of their own (the backend may pack them and drop the pages). */
static void cpu_matmul(const struct gi_mat *w, const float *x, uint32_t m, const float *bias,
		       float *y)
{
	struct gi_backend *be;
	char err[256];
	struct gi_backend_opts bo = { .size = sizeof(bo), .n_threads = 1 };
	ck_assert_msg(gi_backend_create(&bo, &be, err, sizeof(err)) == 0, "%s", err);
	size_t wb = gi_type_row_bytes(w->type, w->k) * w->n;
	void *wc = mmap(NULL, wb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(wc != MAP_FAILED);
	memcpy(wc, w->data, wb);
	float *src, *dst;
	ck_assert_int_eq(gi_backend_alloc(be, (size_t)m * w->k * 4, (void **)&src), 0);
	ck_assert_int_eq(gi_backend_alloc(be, (size_t)m * w->n * 4, (void **)&dst), 0);
	memcpy(src, x, (size_t)m * w->k * 4);
	struct gi_node node = { .op = GI_OP_MATMUL };
	node.matmul.src = src;
	node.matmul.n_mat = 1;
	node.matmul.w[0] = (struct gi_mat){ w->type, w->k, w->n, wc };
	node.matmul.bias[0] = bias;
	node.matmul.dst[0] = dst;
	struct gi_graph_desc d = { .size = sizeof(d), .nodes = &node, .n_nodes = 1,
				   .max_tokens = m, .max_out = 1,
				   .attn = { .n_head = 1, .n_head_kv = 1, .head_dim = 8 } };
	struct gi_graph *g;
	ck_assert_msg(gi_graph_create(be, &d, &g, err, sizeof(err)) == 0, "%s", err);
	int32_t toks[16] = { 0 };
	uint32_t pos[16] = { 0 }, seq[16] = { 0 };
	struct gi_step_seq sq = { NULL, 0 };
	struct gi_kv_pool kv = { 0 };
	struct gi_step s = { .n_tokens = m, .n_seqs = 1, .tokens = toks, .pos = pos, .seq = seq,
			     .seqs = &sq, .kv = &kv };
	ck_assert_int_eq(gi_graph_run(g, &s), 0);
	ck_assert_int_eq(gi_backend_sync(be), 0);
	memcpy(y, dst, (size_t)m * w->n * 4);
	gi_graph_free(g);
	gi_backend_release(be, src);
	gi_backend_release(be, dst);
	gi_backend_free(be);
	munmap(wc, wb);
}

START_TEST(gemv)
{
	enum gi_type t = wtypes[_i];
	uint32_t bk = (uint32_t)gi_type_block_elems(t);
	static const uint32_t ms[] = { 1, 3, 8, 9, 16 };
	const uint32_t ks[] = { bk == 1 ? 7 : bk, bk == 1 ? 100 : 3 * bk, bk == 1 ? 512 : 8 * bk };
	const uint32_t ns[] = { 1, 5, 67 };
	emu_set_threads(2);
	for (size_t ki = 0; ki < 3; ki++)
		for (size_t ni = 0; ni < 3; ni++) {
			uint32_t k = ks[ki], n = ns[ni];
			float *deq;
			void *w = make_weights(t, k, n, &deq);
			struct gi_mat mat = { t, k, n, w };
			for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
				uint32_t m = ms[mi];
				float *x = malloc((size_t)m * k * 4), *y = malloc((size_t)m * n * 4);
				float *y0 = malloc((size_t)m * n * 4), *bias = malloc((size_t)n * 4);
				fill(x, (size_t)m * k, 1);
				fill(bias, n, 1);
				fill(y0, (size_t)m * n, 1);
				int acc = (int)(mi % 2), with_bias = (int)(ni != 1);
				memcpy(y, y0, (size_t)m * n * 4);
				LAUNCH(gi_cuda_gemv(NULL, &mat, x, m, with_bias ? bias : NULL, y, acc));
				for (uint32_t r = 0; r < m; r++)
					for (uint32_t j = 0; j < n; j++) {
						double s = 0, mag = 0;
						for (uint32_t i = 0; i < k; i++) {
							double p = (double)deq[(size_t)j * k + i] * x[(size_t)r * k + i];
							s += p;
							mag += fabs(p);
						}
						s += (acc ? y0[r * n + j] : 0) + (with_bias ? bias[j] : 0);
						double got = y[r * n + j];
						ck_assert_msg(fabs(got - s) <= 1e-5 * (1 + mag),
							      "gemv %s k %u n %u m %u [%u,%u]: %.9g, want %.9g",
							      gi_type_name(t), k, n, m, r, j, got, s);
					}
				if (ki == 2 && !acc) {
					/* the CPU backend's MATMUL node, activations quantized
					 * for the quantized types: 2% of the row's magnitude */
					float *yc = malloc((size_t)m * n * 4);
					cpu_matmul(&mat, x, m, with_bias ? bias : NULL, yc);
					for (uint32_t r = 0; r < m; r++)
						for (uint32_t j = 0; j < n; j++) {
							double mag = 0;
							for (uint32_t i = 0; i < k; i++)
								mag += fabs((double)deq[(size_t)j * k + i] *
									    x[(size_t)r * k + i]);
							double tol = bk == 1 && t == GI_TYPE_F32 ? 1e-5 : 2e-2;
							ck_assert_msg(fabs(y[r * n + j] - yc[r * n + j]) <=
									      tol * (1 + mag),
								      "gemv vs cpu %s k %u n %u m %u [%u,%u]: %.9g, cpu %.9g",
								      gi_type_name(t), k, n, m, r, j,
								      y[r * n + j], yc[r * n + j]);
						}
					free(yc);
				}
				free(x);
				free(y);
				free(y0);
				free(bias);
			}
			free(w);
			free(deq);
		}
}
END_TEST

/* ---- rope_kv and attention against a CPU graph ------------------------------- */

#define MAXT 24

static const struct {
	enum gi_type kv;
	int neox;
	uint32_t n_head, n_head_kv, head_dim, n_rot, bt;
	double tol;
	int long_ctx; /* one sequence of ~300 tokens: many chunks per warp */
} acfg[] = {
	{ GI_TYPE_F32, 0, 4, 2, 16, 12, 4, 1e-5, 0 },   { GI_TYPE_F32, 1, 4, 2, 16, 16, 4, 1e-5, 0 },
	{ GI_TYPE_F16, 0, 4, 2, 16, 12, 4, 3e-3, 0 },   { GI_TYPE_F16, 1, 6, 3, 40, 24, 5, 3e-3, 0 },
	{ GI_TYPE_F32, 0, 8, 1, 128, 128, 16, 1e-5, 0 }, { GI_TYPE_F32, 1, 2, 2, 7, 6, 3, 1e-5, 0 },
	{ GI_TYPE_F32, 0, 4, 2, 64, 64, 16, 1e-5, 1 },  { GI_TYPE_F16, 1, 4, 4, 256, 64, 32, 3e-3, 1 },
};

struct side {
	float *q, *k, *v, *att;
	struct gi_kv_pool pool;
};

static void side_alloc(struct gi_backend *be, struct side *s, uint32_t qd, uint32_t kd,
		       enum gi_type kvt, uint32_t nblk, uint32_t bt, uint32_t nkv, uint32_t hd)
{
	ck_assert_int_eq(gi_backend_alloc(be, (size_t)MAXT * qd * 4, (void **)&s->q), 0);
	ck_assert_int_eq(gi_backend_alloc(be, (size_t)MAXT * kd * 4, (void **)&s->k), 0);
	ck_assert_int_eq(gi_backend_alloc(be, (size_t)MAXT * kd * 4, (void **)&s->v), 0);
	ck_assert_int_eq(gi_backend_alloc(be, (size_t)MAXT * qd * 4, (void **)&s->att), 0);
	size_t bytes = gi_kv_pool_layout(&s->pool, kvt, 2, nblk, bt, nkv, hd);
	ck_assert_int_eq(gi_backend_alloc(be, bytes, &s->pool.k), 0);
	ck_assert_int_eq(gi_backend_alloc(be, bytes, &s->pool.v), 0);
}

static void side_free(struct gi_backend *be, struct side *s)
{
	void *p[] = { s->q, s->k, s->v, s->att, s->pool.k, s->pool.v };
	for (int i = 0; i < 6; i++)
		gi_backend_release(be, p[i]);
}

static float pool_at(const struct gi_kv_pool *kv, const void *base, size_t i)
{
	if (kv->type == GI_TYPE_F16)
		return gi_f16_to_f32(((const uint16_t *)base)[i]);
	return ((const float *)base)[i];
}

START_TEST(rope_attention)
{
	const __typeof__(acfg[0]) *c = &acfg[_i];
	uint32_t nh = c->n_head, nkv = c->n_head_kv, hd = c->head_dim, bt = c->bt;
	uint32_t qd = nh * hd, kd = nkv * hd, layer = 1;
	uint32_t cap = c->long_ctx ? 320 : 40, nblk = 2 * ((cap + bt - 1) / bt);
	struct gi_backend *be;
	char err[256];
	struct gi_backend_opts bo = { .size = sizeof(bo), .n_threads = 1 };
	ck_assert_msg(gi_backend_create(&bo, &be, err, sizeof(err)) == 0, "%s", err);
	struct side cpu, emu;
	side_alloc(be, &cpu, qd, kd, c->kv, nblk, bt, nkv, hd);
	side_alloc(be, &emu, qd, kd, c->kv, nblk, bt, nkv, hd);
	struct gi_node nodes[2] = { { .op = GI_OP_ROPE_KV }, { .op = GI_OP_ATTN } };
	nodes[0].rope_kv.q = cpu.q;
	nodes[0].rope_kv.k = cpu.k;
	nodes[0].rope_kv.v = cpu.v;
	nodes[0].rope_kv.layer = layer;
	nodes[1].attn.q = cpu.q;
	nodes[1].attn.dst = cpu.att;
	nodes[1].attn.layer = layer;
	struct gi_attn_params ap = { .n_head = nh, .n_head_kv = nkv, .head_dim = hd,
				     .n_rot = c->n_rot,
				     .rope_style = c->neox ? GI_ROPE_NEOX : GI_ROPE_NORM,
				     .freq_base = 10000.0f, .freq_scale = c->neox ? 0.5f : 1.0f,
				     .scale = 1.0f / sqrtf((float)hd) };
	struct gi_graph_desc d = { .size = sizeof(d), .nodes = nodes, .n_nodes = 2,
				   .max_tokens = MAXT, .max_out = 1, .attn = ap };
	struct gi_graph *g;
	ck_assert_msg(gi_graph_create(be, &d, &g, err, sizeof(err)) == 0, "%s", err);

	/* two sequences: A on the even blocks from the top down, B on the odd */
	uint32_t half = nblk / 2, *blocks = malloc(nblk * 4), table_start[2] = { 0, half };
	for (uint32_t b = 0; b < half; b++) {
		blocks[b] = nblk - 2 - 2 * b;
		blocks[half + b] = 2 * b + 1;
	}
	struct gi_step_seq seqs[2] = { { blocks, half }, { blocks + half, half } };
	uint32_t at[2] = { 0, 0 };
	emu_set_threads(2);
	for (int st = 0;; st++) {
		/* prefill steps of several tokens, then single-token decode */
		uint32_t want[2];
		if (c->long_ctx) {
			want[1] = st < 2 ? 3 : 0;
			want[0] = cap - at[0] < MAXT - want[1] ? cap - at[0] : MAXT - want[1];
		} else {
			static const uint32_t plan[4][2] = { { 13, 5 }, { 1, 6 }, { 1, 1 }, { 2, 1 } };
			if (st == 4)
				break;
			want[0] = plan[st][0];
			want[1] = plan[st][1];
		}
		if (!want[0] && !want[1])
			break;
		int32_t toks[MAXT] = { 0 };
		uint32_t pos[MAXT], sq[MAXT], n = 0;
		for (uint32_t s = 0; s < 2; s++)
			for (uint32_t i = 0; i < want[s]; i++, n++) {
				pos[n] = at[s] + i;
				sq[n] = s;
			}
		fill(cpu.q, (size_t)n * qd, 1);
		fill(cpu.k, (size_t)n * kd, 1);
		fill(cpu.v, (size_t)n * kd, 1);
		memcpy(emu.q, cpu.q, (size_t)n * qd * 4);
		memcpy(emu.k, cpu.k, (size_t)n * kd * 4);
		memcpy(emu.v, cpu.v, (size_t)n * kd * 4);
		struct gi_step step = { .n_tokens = n, .n_seqs = 2, .tokens = toks, .pos = pos,
					.seq = sq, .seqs = seqs, .kv = &cpu.pool };
		ck_assert_int_eq(gi_graph_run(g, &step), 0);
		ck_assert_int_eq(gi_backend_sync(be), 0);
		struct gi_cuda_tokens ct = { pos, sq, table_start, blocks };
		LAUNCH(gi_cuda_rope_kv(NULL, &ap, emu.q, emu.k, emu.v, n, &ct, &emu.pool, layer));
		LAUNCH(gi_cuda_attn(NULL, &ap, emu.q, emu.att, n, &ct, &emu.pool, layer));
		for (size_t i = 0; i < (size_t)n * qd; i++) {
			close_to(emu.q[i], cpu.q[i], 1e-5, "rope q", "", st, i);
			close_to(emu.att[i], cpu.att[i], c->tol, "attn", c->kv == GI_TYPE_F16 ? "f16" : "f32",
				 st, i);
		}
		for (size_t i = 0; i < (size_t)n * kd; i++)
			close_to(emu.k[i], cpu.k[i], 1e-5, "rope k", "", st, i);
		at[0] += want[0];
		at[1] += want[1];
	}
	/* the pools agree everywhere (both started zeroed) */
	size_t elems = cpu.pool.layer_stride * 2 / (c->kv == GI_TYPE_F16 ? 2 : 4);
	for (size_t i = 0; i < elems; i++) {
		close_to(pool_at(&emu.pool, emu.pool.k, i), pool_at(&cpu.pool, cpu.pool.k, i), 1e-3,
			 "pool k", "", 0, i);
		close_to(pool_at(&emu.pool, emu.pool.v, i), pool_at(&cpu.pool, cpu.pool.v, i), 0,
			 "pool v", "", 0, i);
	}
	struct gi_attn_params big = ap;
	big.head_dim = 512;
	struct gi_cuda_tokens ct = { NULL, NULL, NULL, NULL };
	ck_assert_int_eq(gi_cuda_attn(NULL, &big, emu.q, emu.att, 1, &ct, &emu.pool, 0), -EINVAL);
	free(blocks);
	gi_graph_free(g);
	side_free(be, &cpu);
	side_free(be, &emu);
	gi_backend_free(be);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("emu_kernels");
	TCase *tc = tcase_create("kernels");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rmsnorm_silu);
	tcase_add_test(tc, argmax);
	tcase_add_loop_test(tc, embed_dequantize, 0, N_WTYPES);
	tcase_add_loop_test(tc, gemv, 0, N_WTYPES);
	tcase_add_loop_test(tc, rope_attention, 0, (int)(sizeof(acfg) / sizeof(acfg[0])));
	suite_add_tcase(s, tc);
	return s;
}
