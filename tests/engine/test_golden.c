/* End to end: greedy decoding of stories260K matches llama.cpp's golden
 * outputs exactly (prompt tokens and all 32 generated ids), and the first
 * position's probabilities match within 1e-4; with 1 and 2 threads and every
 * SIMD level this CPU has (a level it lacks is reported as skipped). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/tokenizer.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/ops.h"
#include "tests/engine/golden.h"
#include "tests/t_util.h"

#define MAX_CASES 16

static void run_case(struct model *m, const struct t_golden_case *c)
{
	const struct model_info *in = model_get_info(m);
	uint32_t nb = (c->n_prompt + c->n_output + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, nb, &kv), 0);
	uint32_t blocks[64];
	for (uint32_t i = 0; i < nb; i++)
		blocks[i] = i;
	float *logits = malloc(in->n_vocab * sizeof(float));
	struct step_seq s = { .blocks = blocks, .n_blocks = nb, .pos = 0,
			      .tokens = c->prompt_ids, .n_tokens = c->n_prompt, .logits = logits };
	ck_assert_int_eq(model_step(m, kv, &s, 1), 0);

	/* first position: softmax over the raw logits */
	double mx = -INFINITY, sum = 0;
	for (uint32_t i = 0; i < in->n_vocab; i++)
		mx = logits[i] > mx ? logits[i] : mx;
	for (uint32_t i = 0; i < in->n_vocab; i++)
		sum += exp(logits[i] - mx);
	for (uint32_t i = 0; i < c->n_top; i++) {
		double p = exp(logits[c->top_id[i]] - mx) / sum;
		ck_assert_msg(fabs(p - c->top_prob[i]) <= 1e-4,
			      "prompt \"%s\": p(%d) = %.6f, want %.6f", c->prompt, c->top_id[i], p,
			      c->top_prob[i]);
	}
	uint32_t pos = c->n_prompt;
	for (uint32_t k = 0; k < c->n_output; k++) {
		int32_t best = 0;
		for (uint32_t i = 1; i < in->n_vocab; i++)
			if (logits[i] > logits[best])
				best = (int32_t)i;
		ck_assert_msg(best == c->output_ids[k], "prompt \"%s\" output %u: %d, want %d",
			      c->prompt, k, best, c->output_ids[k]);
		s = (struct step_seq){ .blocks = blocks, .n_blocks = nb, .pos = pos++,
				       .tokens = &best, .n_tokens = 1, .logits = logits };
		ck_assert_int_eq(model_step(m, kv, &s, 1), 0);
	}
	free(logits);
	kv_cache_free(kv);
}

static const struct {
	int threads;
	const char *simd;
} configs[] = {
	{ 1, "scalar" }, { 1, "avx2" }, { 1, "avx512" }, { 2, "avx512" }, { 2, "avx2" },
	{ 2, "amx" }, /* matmuls on AMX tiles, the other ops at AVX-512 */
};

/* The model's tokenizer gives the golden prompt ids (BOS added). */
static void check_tokens(struct model *m, const struct t_golden_case *c)
{
	int32_t ids[T_GOLDEN_MAX_IDS];
	int n = tok_encode(model_tokenizer(m), c->prompt, strlen(c->prompt), true, false, ids,
			   T_GOLDEN_MAX_IDS);
	ck_assert_msg(n == (int)c->n_prompt, "prompt \"%s\": %d ids, want %u", c->prompt, n,
		      c->n_prompt);
	for (int i = 0; i < n; i++)
		ck_assert_msg(ids[i] == c->prompt_ids[i], "prompt \"%s\" id %d: %d, want %d",
			      c->prompt, i, ids[i], c->prompt_ids[i]);
}

START_TEST(golden_greedy)
{
	struct t_golden_case *cases = calloc(MAX_CASES, sizeof(*cases));
	int n = t_golden_load(t_shared("golden/stories260K_greedy.json"), cases, MAX_CASES);
	ck_assert_msg(n > 0, "cannot read %s", t_shared("golden/stories260K_greedy.json"));
	const char *simd = configs[_i].simd;
	setenv("GI_CPU_SIMD", simd, 1);
	/* A level this CPU lacks would silently run as a lower one. */
	int r = cpu_simd_force(simd);
	if (r == -ENOTSUP) {
		fprintf(stderr, "golden_greedy: %s at %d threads skipped: this CPU lacks %s\n", simd,
			configs[_i].threads, simd);
		free(cases);
		return;
	}
	ck_assert_int_eq(r, 0);
	struct model_opts o = { .size = sizeof(o), .n_threads = configs[_i].threads };
	struct model *m;
	char err[256];
	r = model_load(t_shared("models/stories260K.gguf"), &o, &m, err, sizeof(err));
	ck_assert_msg(r == 0, "model_load: %s", err);
	ck_assert_str_eq(cpu_simd_level(), simd);
	ck_assert_str_eq(cpu_ops_best()->name, strcmp(simd, "amx") ? simd : "avx512");
	for (int i = 0; i < n; i++)
		run_case(m, &cases[i]);
	for (int i = 0; i < n; i++)
		check_tokens(m, &cases[i]);
	model_free(m);
	free(cases);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("golden");
	TCase *tc = tcase_create("stories260K");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, golden_greedy, 0, (int)(sizeof(configs) / sizeof(configs[0])));
	suite_add_tcase(s, tc);
	return s;
}
