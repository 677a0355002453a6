/* Whole forward steps from the CUDA kernels under the emulator: prompts
 * prefilled, then greedy decoding, every node run by gi_cuda_node_run over
 * the model's own weights and a KV pool of the test's, next to the engine
 * on the CPU backend fed the same tokens. stories260K (F32 weights): the
 * golden prompts with F16 (the engine's) and F32 pools, every step's logits
 * within kv_tol of the CPU's and every greedy token (gi_cuda_argmax) the CPU
 * backend's and llama.cpp's (the golden outputs). llama-2-tiny-random: F16
 * weights, against the CPU backend.
 *
 * The node list is the engine's graph (engine/forward.c) written out again
 * here over the test's activations: the engine builds its graph for its
 * own backend only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_impl.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/emu/emu.h"
#include "tests/engine/golden.h"
#include "tests/t_util.h"

#define MAXT 256
#define MAX_CASES 8

struct acts {
	float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *logits;
};

static float *act(size_t rows, size_t dim)
{
	float *p = calloc(rows * dim, sizeof(float));
	ck_assert_ptr_nonnull(p);
	return p;
}

static struct gi_node *mm(struct gi_node *n, const float *src, bool acc)
{
	*n = (struct gi_node){ .op = GI_OP_MATMUL, .rows = GI_ROWS_TOKENS };
	n->matmul.src = src;
	n->matmul.accumulate = acc;
	return n;
}

static void mm_add(struct gi_node *n, struct gi_mat w, const float *bias, float *dst)
{
	uint32_t i = n->matmul.n_mat++;
	n->matmul.w[i] = w;
	n->matmul.bias[i] = bias;
	n->matmul.dst[i] = dst;
}

static void norm(struct gi_node *n, const struct model *m, const float *src, const float *w,
		 float *dst)
{
	*n = (struct gi_node){ .op = GI_OP_RMSNORM, .rows = GI_ROWS_TOKENS };
	n->rmsnorm.src = src;
	n->rmsnorm.w = w;
	n->rmsnorm.dst = dst;
	n->rmsnorm.dim = m->info.n_embd;
	n->rmsnorm.eps = m->eps;
}

/* The engine's graph over activations A; returns the node count. */
static uint32_t build_nodes(const struct model *m, const struct acts *a, struct gi_node *nodes)
{
	struct gi_node *n = nodes;
	*n = (struct gi_node){ .op = GI_OP_EMBED, .rows = GI_ROWS_TOKENS };
	n->embed.w = m->tok_embd;
	n->embed.dst = a->x;
	n++;
	for (uint32_t l = 0; l < m->info.n_layer; l++) {
		const struct layer_weights *w = &m->layers[l];
		norm(n++, m, a->x, w->attn_norm, a->xb);
		mm(n, a->xb, false);
		mm_add(n, w->wq, w->bq, a->q);
		mm_add(n, w->wk, w->bk, a->k);
		mm_add(n++, w->wv, w->bv, a->v);
		*n = (struct gi_node){ .op = GI_OP_ROPE_KV, .rows = GI_ROWS_TOKENS };
		n->rope_kv.q = a->q;
		n->rope_kv.k = a->k;
		n->rope_kv.v = a->v;
		n++->rope_kv.layer = l;
		*n = (struct gi_node){ .op = GI_OP_ATTN, .rows = GI_ROWS_TOKENS };
		n->attn.q = a->q;
		n->attn.dst = a->att;
		n++->attn.layer = l;
		mm_add(mm(n++, a->att, true), w->wo, NULL, a->x);
		norm(n++, m, a->x, w->ffn_norm, a->xb);
		mm(n, a->xb, false);
		mm_add(n, w->gate, NULL, a->hb);
		mm_add(n++, w->up, NULL, a->hb2);
		*n = (struct gi_node){ .op = GI_OP_SILU_MUL, .rows = GI_ROWS_TOKENS };
		n->silu_mul.a = a->hb;
		n->silu_mul.b = a->hb2;
		n->silu_mul.dst = a->hb;
		n++->silu_mul.dim = m->info.n_ff;
		mm_add(mm(n++, a->hb, true), w->down, NULL, a->x);
	}
	norm(n, m, a->x, m->out_norm, a->xb);
	n++->rows = GI_ROWS_OUT;
	mm(n, a->xb, false)->rows = GI_ROWS_OUT;
	mm_add(n++, m->output, NULL, a->logits);
	return (uint32_t)(n - nodes);
}

static int32_t argmax(const float *x, uint32_t n)
{
	int32_t best = 0;
	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = (int32_t)i;
	return best;
}

/* Logits of magnitude up to ~20 agree within 3e-5 (F32 pool) and 2e-2
 * (F16 pool: the CPU backend rounds the attention probabilities to F16,
 * the one-pass kernel cannot). */
static const enum gi_type kv_types[] = { GI_TYPE_F16, GI_TYPE_F32 };
static const float kv_tol[] = { 5e-2f, 2e-4f };

/* Prefills each case's prompt and decodes its n_output tokens greedily on
 * both sides; GOLDEN: the tokens must also be the case's output_ids. */
static void run_cases(const char *model, enum gi_type kv_type, float tol,
		      const struct t_golden_case *cases, int nc, bool golden)
{
	struct model *m;
	char err[256];
	struct model_opts mo = { .size = sizeof(mo), .device = "cpu", .n_threads = 1 };
	ck_assert_msg(model_load(t_shared(model), &mo, &m, err, sizeof(err)) == 0, "%s", err);
	const struct model_info *in = model_get_info(m);
	struct acts a = { act(MAXT, in->n_embd), act(MAXT, in->n_embd), act(MAXT, m->q_dim),
			  act(MAXT, m->kv_dim), act(MAXT, m->kv_dim),  act(MAXT, m->q_dim),
			  act(MAXT, in->n_ff),	act(MAXT, in->n_ff),   act(1, in->n_vocab) };
	struct gi_node *nodes = calloc(3 + 9 * in->n_layer, sizeof(*nodes));
	uint32_t nn = build_nodes(m, &a, nodes);
	float *cpu_logits = malloc(in->n_vocab * sizeof(float));
	emu_set_threads(2);
	m->kv_type = kv_type;
	for (int ci = 0; ci < nc; ci++) {
		const struct t_golden_case *c = &cases[ci];
		uint32_t total = c->n_prompt + c->n_output;
		uint32_t nb = (total + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
		struct kv_cache *kv;
		ck_assert_int_eq(kv_cache_create(m, nb, &kv), 0);
		struct gi_kv_pool pool;
		size_t bytes = gi_kv_pool_layout(&pool, m->kv_type, in->n_layer, nb, KV_BLOCK_TOKENS,
						 in->n_head_kv, in->head_dim);
		pool.k = calloc(1, bytes);
		pool.v = calloc(1, bytes);
		uint32_t blocks[64], table_start[1] = { 0 }, seq[MAXT] = { 0 }, pos[MAXT], out_row[1];
		for (uint32_t i = 0; i < nb; i++)
			blocks[i] = nb - 1 - i; /* the test's table runs backwards */
		uint32_t cpu_blocks[64];
		for (uint32_t i = 0; i < nb; i++)
			cpu_blocks[i] = i;

		const int32_t *toks = c->prompt_ids;
		uint32_t n = c->n_prompt, at = 0;
		int32_t next = 0;
		for (uint32_t k = 0; k <= c->n_output; k++) {
			for (uint32_t t = 0; t < n; t++)
				pos[t] = at + t;
			out_row[0] = n - 1;
			struct gi_cuda_step s = { .n_tokens = n, .n_out = 1, .tokens = toks,
						  .out_rows = out_row,
						  .t = { pos, seq, table_start, blocks }, .kv = pool };
			for (uint32_t i = 0; i < nn; i++)
				ck_assert_msg(gi_cuda_node_run(NULL, &nodes[i], &m->attn, &s) == 0,
					      "node %u: %s", i, emu_last_error());
			struct step_seq ss = { .blocks = cpu_blocks, .n_blocks = nb, .pos = at,
					       .tokens = toks, .n_tokens = n, .logits = cpu_logits };
			ck_assert_int_eq(model_step(m, kv, &ss, 1), 0);
			for (uint32_t i = 0; i < in->n_vocab; i++)
				ck_assert_msg(fabsf(a.logits[i] - cpu_logits[i]) <= tol,
					      "%s pool, case %d step %u logit %u: %.6f, cpu %.6f",
					      gi_type_name(m->kv_type), ci, k, i, (double)a.logits[i],
					      (double)cpu_logits[i]);
			ck_assert_msg(gi_cuda_argmax(NULL, a.logits, 1, in->n_vocab, &next) == 0, "%s",
				      emu_last_error());
			ck_assert_int_eq(next, argmax(cpu_logits, in->n_vocab));
			if (k == c->n_output)
				break;
			ck_assert_msg(!golden || next == c->output_ids[k],
				      "case %d output %u: %d, golden %d", ci, k, next, c->output_ids[k]);
			at += n;
			toks = &next;
			n = 1;
		}
		free(pool.k);
		free(pool.v);
		kv_cache_free(kv);
	}
	float *bufs[] = { a.x, a.xb, a.q, a.k, a.v, a.att, a.hb, a.hb2, a.logits, cpu_logits };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
	free(nodes);
	model_free(m);
}

START_TEST(stories260k_greedy)
{
	static struct t_golden_case cases[MAX_CASES];
	int nc = t_golden_load(t_shared("golden/stories260K_greedy.json"), cases, MAX_CASES);
	ck_assert_msg(nc > 0, "golden/stories260K_greedy.json: cannot read");
	run_cases("models/stories260K.gguf", kv_types[_i], kv_tol[_i], cases, nc, true);
}
END_TEST

/* F16 weights (embedding, matmuls, 32000-row output) end to end; logits
 * of this random model stay below ~0.3 and agree within 1e-5. */
START_TEST(tiny_random_f16)
{
	static struct t_golden_case c = { .prompt_ids = { 1, 100, 2000, 31999, 5 }, .n_prompt = 5,
					  .n_output = 3 };
	run_cases("models/llama-2-tiny-random.gguf", GI_TYPE_F16, 1e-4f, &c, 1, false);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("emu_decode");
	TCase *tc = tcase_create("stories260k");
	tcase_set_timeout(tc, 240);
	tcase_add_loop_test(tc, stories260k_greedy, 0, 2);
	tcase_add_test(tc, tiny_random_f16);
	suite_add_tcase(s, tc);
	return s;
}
