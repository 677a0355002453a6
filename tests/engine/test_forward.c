/* The forward pass over the paged KV cache: a step of many sequences equals
 * the sequences run alone, prefill in chunks equals prefill in one step, a
 * block table scattered over the pool equals a contiguous one, and a bad
 * step fails whole with -EINVAL without touching the KV. On stories260K. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "tests/t_util.h"

#define MAXP 48   /* prompt tokens */
#define GEN 12    /* greedy tokens after the prompt */
#define NB 8      /* blocks per sequence: covers MAXP + GEN */
#define NSEQ 4

static struct model *load(int threads)
{
	struct model_opts o = { .size = sizeof(o), .n_threads = threads, .max_batch_tokens = 256 };
	struct model *m;
	char err[256];
	int r = model_load(t_shared("models/stories260K.gguf"), &o, &m, err, sizeof(err));
	ck_assert_msg(r == 0, "model_load: %s", err);
	return m;
}

/* Deterministic prompts of different lengths from the 512-token vocab. */
static uint32_t prompt(uint32_t s, int32_t *ids)
{
	uint32_t n = 5 + s * 13 % MAXP;
	n = n > MAXP ? MAXP : n;
	ids[0] = 1;
	for (uint32_t i = 1; i < n; i++)
		ids[i] = (int32_t)(259 + (s * 131 + i * 37) % 253);
	return n;
}

static int32_t argmax(const float *l, uint32_t n)
{
	int32_t b = 0;
	for (uint32_t i = 1; i < n; i++)
		if (l[i] > l[b])
			b = (int32_t)i;
	return b;
}

static float max_diff(const float *a, const float *b, uint32_t n)
{
	float d = 0;
	for (uint32_t i = 0; i < n; i++)
		d = fmaxf(d, fabsf(a[i] - b[i]));
	return d;
}

struct run {
	int32_t toks[MAXP + GEN];
	uint32_t n_prompt;
	int32_t out[GEN];
	float first[512]; /* logits after the prompt */
};

/* Runs sequence S alone: prefill in chunks of CHUNK tokens, then GEN greedy
 * tokens; its KV in blocks TABLE. */
static void run_alone(struct model *m, struct kv_cache *kv, uint32_t s, const uint32_t *table,
		      uint32_t chunk, struct run *r)
{
	float logits[512];
	r->n_prompt = prompt(s, r->toks);
	for (uint32_t at = 0; at < r->n_prompt; at += chunk) {
		uint32_t n = r->n_prompt - at < chunk ? r->n_prompt - at : chunk;
		struct step_seq q = { .blocks = table, .n_blocks = NB, .pos = at,
				      .tokens = r->toks + at, .n_tokens = n,
				      .logits = at + n == r->n_prompt ? logits : NULL };
		ck_assert_int_eq(model_step(m, kv, &q, 1), 0);
	}
	memcpy(r->first, logits, sizeof(logits));
	for (uint32_t k = 0; k < GEN; k++) {
		uint32_t pos = r->n_prompt + k;
		r->out[k] = r->toks[pos] = argmax(logits, 512);
		struct step_seq q = { .blocks = table, .n_blocks = NB, .pos = pos,
				      .tokens = &r->toks[pos], .n_tokens = 1, .logits = logits };
		ck_assert_int_eq(model_step(m, kv, &q, 1), 0);
	}
}

START_TEST(batched_equals_alone)
{
	struct model *m = load(_i + 1);
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, NSEQ * NB, &kv), 0);
	uint32_t tables[NSEQ][NB];
	for (uint32_t s = 0; s < NSEQ; s++)
		for (uint32_t b = 0; b < NB; b++)
			tables[s][b] = s * NB + b;
	struct run alone[NSEQ], together[NSEQ];
	for (uint32_t s = 0; s < NSEQ; s++)
		run_alone(m, kv, s, tables[s], MAXP, &alone[s]);

	/* All prompts in one step, then one token of each per step. */
	static float logits[NSEQ][512];
	struct step_seq q[NSEQ];
	for (uint32_t s = 0; s < NSEQ; s++) {
		together[s].n_prompt = prompt(s, together[s].toks);
		q[s] = (struct step_seq){ .blocks = tables[s], .n_blocks = NB, .pos = 0,
					  .tokens = together[s].toks,
					  .n_tokens = together[s].n_prompt, .logits = logits[s] };
	}
	ck_assert_int_eq(model_step(m, kv, q, NSEQ), 0);
	for (uint32_t s = 0; s < NSEQ; s++)
		ck_assert_msg(max_diff(logits[s], alone[s].first, 512) < 1e-3,
			      "seq %u: batched prefill logits differ by %g", s,
			      max_diff(logits[s], alone[s].first, 512));
	for (uint32_t k = 0; k < GEN; k++) {
		for (uint32_t s = 0; s < NSEQ; s++) {
			struct run *r = &together[s];
			uint32_t pos = r->n_prompt + k;
			r->out[k] = r->toks[pos] = argmax(logits[s], 512);
			q[s] = (struct step_seq){ .blocks = tables[s], .n_blocks = NB, .pos = pos,
						  .tokens = &r->toks[pos], .n_tokens = 1,
						  .logits = logits[s] };
		}
		ck_assert_int_eq(model_step(m, kv, q, NSEQ), 0);
	}
	for (uint32_t s = 0; s < NSEQ; s++)
		for (uint32_t k = 0; k < GEN; k++)
			ck_assert_msg(together[s].out[k] == alone[s].out[k],
				      "seq %u token %u: batched %d, alone %d", s, k,
				      together[s].out[k], alone[s].out[k]);
	kv_cache_free(kv);
	model_free(m);
}
END_TEST

/* A step mixing one sequence's prefill chunk with other sequences' decode
 * tokens gives each the same result as running alone. */
START_TEST(mixed_prefill_and_decode)
{
	struct model *m = load(2);
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, NSEQ * NB, &kv), 0);
	uint32_t tables[NSEQ][NB];
	for (uint32_t s = 0; s < NSEQ; s++)
		for (uint32_t b = 0; b < NB; b++)
			tables[s][b] = s * NB + b;
	struct run ref[2], got[2];
	run_alone(m, kv, 0, tables[0], MAXP, &ref[0]);
	run_alone(m, kv, 3, tables[1], MAXP, &ref[1]);

	/* seq A: full prompt first; then A decodes while B prefills in chunks of 5 */
	static float la[512], lb[512];
	got[0].n_prompt = prompt(0, got[0].toks);
	got[1].n_prompt = prompt(3, got[1].toks);
	struct step_seq q[2] = { { .blocks = tables[2], .n_blocks = NB, .tokens = got[0].toks,
				   .n_tokens = got[0].n_prompt, .logits = la } };
	ck_assert_int_eq(model_step(m, kv, q, 1), 0);
	uint32_t ka = 0, kb = 0, bat = 0;
	while (ka < GEN || kb < GEN) {
		uint32_t n = 0;
		if (ka < GEN) {
			uint32_t pos = got[0].n_prompt + ka;
			got[0].out[ka] = got[0].toks[pos] = argmax(la, 512);
			q[n++] = (struct step_seq){ .blocks = tables[2], .n_blocks = NB, .pos = pos,
						    .tokens = &got[0].toks[pos], .n_tokens = 1,
						    .logits = la };
			ka++;
		}
		if (bat < got[1].n_prompt) {
			uint32_t c = got[1].n_prompt - bat < 5 ? got[1].n_prompt - bat : 5;
			q[n++] = (struct step_seq){ .blocks = tables[3], .n_blocks = NB, .pos = bat,
						    .tokens = got[1].toks + bat, .n_tokens = c,
						    .logits = bat + c == got[1].n_prompt ? lb : NULL };
			bat += c;
		} else if (kb < GEN) {
			uint32_t pos = got[1].n_prompt + kb;
			got[1].out[kb] = got[1].toks[pos] = argmax(lb, 512);
			q[n++] = (struct step_seq){ .blocks = tables[3], .n_blocks = NB, .pos = pos,
						    .tokens = &got[1].toks[pos], .n_tokens = 1,
						    .logits = lb };
			kb++;
		}
		ck_assert_int_eq(model_step(m, kv, q, n), 0);
	}
	for (uint32_t s = 0; s < 2; s++)
		for (uint32_t k = 0; k < GEN; k++)
			ck_assert_msg(got[s].out[k] == ref[s].out[k], "seq %u token %u: %d, want %d", s,
				      k, got[s].out[k], ref[s].out[k]);
	kv_cache_free(kv);
	model_free(m);
}
END_TEST

START_TEST(chunked_prefill)
{
	static const uint32_t chunks[] = { 1, 3, 7, 16, 17 };
	struct model *m = load(2);
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, NB, &kv), 0);
	uint32_t table[NB];
	for (uint32_t b = 0; b < NB; b++)
		table[b] = b;
	struct run whole, part;
	run_alone(m, kv, 5, table, MAXP, &whole);
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		run_alone(m, kv, 5, table, chunks[c], &part);
		ck_assert_msg(max_diff(whole.first, part.first, 512) < 1e-3,
			      "chunk %u: logits differ by %g", chunks[c],
			      max_diff(whole.first, part.first, 512));
		for (uint32_t k = 0; k < GEN; k++)
			ck_assert_msg(part.out[k] == whole.out[k], "chunk %u token %u: %d, want %d",
				      chunks[c], k, part.out[k], whole.out[k]);
	}
	kv_cache_free(kv);
	model_free(m);
}
END_TEST

START_TEST(scattered_blocks)
{
	struct model *m = load(1);
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, 64, &kv), 0);
	uint32_t contig[NB], scattered[NB];
	for (uint32_t b = 0; b < NB; b++) {
		contig[b] = b;
		scattered[b] = (63 - b * 7) % 64; /* distinct, descending, far apart */
	}
	struct run a, b;
	run_alone(m, kv, 7, contig, 9, &a);
	run_alone(m, kv, 7, scattered, 9, &b);
	ck_assert_msg(max_diff(a.first, b.first, 512) == 0, "logits differ by %g",
		      max_diff(a.first, b.first, 512));
	for (uint32_t k = 0; k < GEN; k++)
		ck_assert_int_eq(a.out[k], b.out[k]);
	kv_cache_free(kv);
	model_free(m);
}
END_TEST

START_TEST(bad_steps)
{
	struct model *m = load(1);
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, 4, &kv), 0);
	ck_assert_uint_eq(kv_cache_n_blocks(kv), 4);
	uint32_t table[4] = { 0, 1, 2, 3 }, bad_table[2] = { 0, 4 };
	int32_t toks[300] = { 1, 2, 3 }, bad_tok[2] = { 1, 512 }, neg_tok[1] = { -1 };
	float logits[512];
	struct step_seq ok = { .blocks = table, .n_blocks = 4, .tokens = toks, .n_tokens = 3,
			       .logits = logits };
	struct step_seq q;
	q = ok, q.tokens = bad_tok, q.n_tokens = 2;
	ck_assert_int_eq(model_step(m, kv, &q, 1), -EINVAL);
	q = ok, q.tokens = neg_tok, q.n_tokens = 1;
	ck_assert_int_eq(model_step(m, kv, &q, 1), -EINVAL);
	q = ok, q.blocks = bad_table, q.n_blocks = 2, q.pos = 16;
	ck_assert_int_eq(model_step(m, kv, &q, 1), -EINVAL);
	q = ok, q.n_blocks = 1, q.pos = 15; /* positions 15..17 need 2 blocks */
	ck_assert_int_eq(model_step(m, kv, &q, 1), -EINVAL);
	q = ok, q.n_tokens = 0;
	ck_assert_int_eq(model_step(m, kv, &q, 1), -EINVAL);
	q = ok, q.n_tokens = 257; /* above max_batch_tokens */
	ck_assert_int_eq(model_step(m, kv, &q, 1), -EINVAL);
	ck_assert_int_eq(model_step(m, kv, &ok, 0), -EINVAL);
	/* a good sequence next to a bad one: nothing runs */
	struct step_seq two[2] = { ok, ok };
	two[1].tokens = bad_tok;
	two[1].n_tokens = 2;
	ck_assert_int_eq(model_step(m, kv, two, 2), -EINVAL);
	ck_assert_int_eq(model_step(m, kv, &ok, 1), 0);
	ck_assert_int_eq(kv_cache_create(m, 0, &kv) , -EINVAL);
	kv_cache_free(kv);
	model_free(m);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("forward");
	TCase *tc = tcase_create("stories260K");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, batched_equals_alone, 0, 2);
	tcase_add_test(tc, mixed_prefill_and_decode);
	tcase_add_test(tc, chunked_prefill);
	tcase_add_test(tc, scattered_blocks);
	tcase_add_test(tc, bad_steps);
	suite_add_tcase(s, tc);
	return s;
}
