/* Scheduler on the real stories260K engine: golden outputs under batching,
 * prefix caching, preemption, cancellation, fairness bound, deadlines, stop
 * strings, back-pressure, errors, tenant reload. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/sched.h"
#include "ipc/atomics.h"
#include "tests/daemon/sched_env.h"
#include "tests/t_util.h"

START_TEST(golden_together)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	for (int i = 0; i < e->n_golden; i++) {
		struct sched_req_params p = t_sched_params(e->golden[i].prompt_ids, e->golden[i].n_prompt, 32);
		t_sched_submit(e, &p, NULL, 1, (uint32_t)i);
	}
	t_sched_run(e, 1000);
	for (int i = 0; i < e->n_golden; i++)
		t_sched_check_golden(e, (uint32_t)i, &e->golden[i]);
	/* The streamed text of the first case is the golden text. */
	e->rec[0].text[e->rec[0].n_text] = 0;
	ck_assert_str_eq(e->rec[0].text, ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw");
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_eq(st.tokens_generated, 4 * 32);
	ck_assert_uint_eq(st.preemptions, 0);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(prefix_cache)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	const struct t_golden_case *g = &e->golden[3];
	ck_assert_uint_ge(g->n_prompt, 200);
	int32_t b[240];
	memcpy(b, g->prompt_ids, 200 * sizeof(int32_t));
	for (int i = 0; i < 20; i++)
		b[200 + i] = e->golden[2].prompt_ids[1 + i];

	struct sched_req_params pa = t_sched_params(g->prompt_ids, g->n_prompt, 32);
	t_sched_submit(e, &pa, NULL, 1, 0);
	t_sched_run(e, 1000);
	t_sched_check_golden(e, 0, g);
	struct sched_stats st0;
	sched_get_stats(e->s, &st0);
	ck_assert_uint_eq(st0.prefix_hit_tokens, 0);
	ck_assert_uint_gt(st0.kv_blocks_cached, 12);

	struct sched_req_params pb = t_sched_params(b, 220, 24);
	t_sched_submit(e, &pb, NULL, 1, 1);
	t_sched_run(e, 1000);
	struct sched_stats st1;
	sched_get_stats(e->s, &st1);
	/* 200 shared tokens: 12 full blocks (192 tokens) come from the cache. */
	ck_assert_uint_eq(st1.prefix_hit_tokens, 192);
	ck_assert_uint_eq(e->rec[1].d.n_cached, 192);
	ck_assert_uint_eq(st1.tokens_prefilled - st0.tokens_prefilled, 220 - 192);
	t_sched_check_baseline(e);

	/* The same request without a cache gives the same tokens. */
	struct t_sched_env *f = t_sched_env_new(256, NULL);
	t_sched_submit(f, &pb, NULL, 1, 1);
	t_sched_run(f, 1000);
	ck_assert(f->rec[1].done && !f->rec[1].failed);
	ck_assert_uint_eq(f->rec[1].n_ids, 24);
	ck_assert_uint_eq(e->rec[1].n_ids, 24);
	ck_assert_mem_eq(f->rec[1].ids, e->rec[1].ids, 24 * sizeof(int32_t));
	sched_get_stats(f->s, &st1);
	ck_assert_uint_eq(st1.prefix_hit_tokens, 0);
	t_sched_env_free(f);
	t_sched_env_free(e);
}
END_TEST

START_TEST(preempt_tiny_pool)
{
	/* 20 blocks = 320 tokens: the four cases need 26 blocks at their ends. */
	struct sched_opts o = { .size = sizeof(o), .max_batch_tokens = 64, .max_running = 8 };
	struct t_sched_env *e = t_sched_env_new(20, &o);
	for (int i = 0; i < e->n_golden; i++) {
		struct sched_req_params p = t_sched_params(e->golden[i].prompt_ids, e->golden[i].n_prompt, 32);
		t_sched_submit(e, &p, NULL, (uint64_t)i, (uint32_t)i);
	}
	/* Sampled (seeded) requests must also come out the same after recompute. */
	struct sched_req_params ps = t_sched_params(e->golden[2].prompt_ids, e->golden[2].n_prompt, 40);
	ps.sampling.temperature = 0.9f;
	ps.sampling.seed = 1234;
	t_sched_submit(e, &ps, NULL, 5, 5);
	t_sched_run(e, 5000);
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_gt(st.preemptions, 0);
	fprintf(stderr, "preempt_tiny_pool: %llu preemptions\n", (unsigned long long)st.preemptions);
	for (int i = 0; i < e->n_golden; i++)
		t_sched_check_golden(e, (uint32_t)i, &e->golden[i]);
	ck_assert(e->rec[5].done && !e->rec[5].failed);
	t_sched_check_baseline(e);

	struct t_sched_env *f = t_sched_env_new(256, NULL);
	t_sched_submit(f, &ps, NULL, 5, 5);
	t_sched_run(f, 1000);
	ck_assert_uint_eq(f->rec[5].n_ids, e->rec[5].n_ids);
	ck_assert_mem_eq(f->rec[5].ids, e->rec[5].ids, f->rec[5].n_ids * sizeof(int32_t));
	t_sched_env_free(f);
	t_sched_env_free(e);
}
END_TEST

/* Long prompts arriving never take a step from a running decode. */
START_TEST(decode_not_starved)
{
	struct sched_opts o = { .size = sizeof(o), .max_batch_tokens = 32, .max_running = 8 };
	struct t_sched_env *e = t_sched_env_new(256, &o);
	const struct t_golden_case *g = &e->golden[3];
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, e->golden[0].n_prompt, 32);
	t_sched_submit(e, &p, NULL, 1, 0);
	while (e->rec[0].n_ids < 2)
		t_sched_step(e);
	static int32_t big[4][256];
	for (uint32_t i = 0; i < 4; i++) {
		memcpy(big[i], g->prompt_ids, g->n_prompt * sizeof(int32_t));
		big[i][1] = 3 + (int32_t)i;
		struct sched_req_params pb = t_sched_params(big[i], g->n_prompt, 2);
		t_sched_submit(e, &pb, NULL, 2, 1 + i);
	}
	t_sched_run(e, 1000);
	t_sched_check_golden(e, 0, &e->golden[0]);
	for (uint32_t i = 1; i < 32; i++)
		ck_assert_msg(e->rec[0].token_step[i] == e->rec[0].token_step[i - 1] + 1,
			      "decode skipped a step at token %u", i);
	for (uint32_t i = 1; i <= 4; i++)
		ck_assert(e->rec[i].done && e->rec[i].n_ids == 2);
	/* The prompts were still being prefilled while the decode ran. */
	ck_assert_uint_lt(e->rec[1].first_token_step, e->rec[0].done_step);
	ck_assert_uint_gt(e->rec[4].first_token_step, e->rec[0].token_step[2]);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(cancel_frees)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	uint64_t id[4];
	for (int i = 0; i < 4; i++) {
		struct sched_req_params p = t_sched_params(e->golden[i].prompt_ids, e->golden[i].n_prompt, 0);
		id[i] = t_sched_submit(e, &p, NULL, i < 2 ? 7 : 8, (uint32_t)i);
	}
	for (int k = 0; k < 5; k++)
		t_sched_step(e);
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_gt(st.kv_blocks_used, 0);
	ck_assert_int_eq(sched_cancel(e->s, id[0]), 0);
	ck_assert_uint_eq(sched_cancel_session(e->s, 8), 2);
	t_sched_step(e);
	ck_assert(e->rec[0].done && e->rec[2].done && e->rec[3].done);
	ck_assert(!e->rec[1].done);
	ck_assert_int_eq(e->rec[0].d.reason, SCHED_FINISH_CANCEL);
	ck_assert_int_eq(e->rec[3].d.reason, SCHED_FINISH_CANCEL);
	ck_assert_int_eq(sched_cancel(e->s, id[0]), -ENOENT);
	ck_assert_uint_eq(sched_cancel_session(e->s, 7), 1);
	ck_assert(!sched_idle(e->s));
	t_sched_step(e);
	ck_assert(e->rec[1].done);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

/* Tenant A queues 100 distinct prompts of A_LEN tokens (generating A_GEN
 * each) and runs WARM steps; then B sends one 231-token prompt. B's first
 * token must arrive within the bound documented in sched.h. */
static void fairness(uint32_t weight_b, uint32_t a_len, uint32_t a_gen, int warm)
{
	const uint32_t M = 64, R = 4;
	struct tenant_table tt;
	tenant_table_init_default(&tt);
	tenant_policy_init(&tt.t[1], "A");
	tenant_policy_init(&tt.t[2], "B");
	tt.t[1].match = TENANT_MATCH_UID;
	tt.t[1].uid = 1;
	tt.t[2].match = TENANT_MATCH_UID;
	tt.t[2].uid = 2;
	tt.t[2].weight = weight_b;
	tt.n = 3;
	struct sched_opts o = { .size = sizeof(o), .max_batch_tokens = M, .max_running = R,
				.tenants = &tt, .ctx = 512 };
	struct t_sched_env *e = t_sched_env_new(512, &o);
	const struct t_golden_case *g = &e->golden[3];
	static int32_t pa[100][256];
	for (int i = 0; i < 100; i++) {
		memcpy(pa[i], g->prompt_ids, a_len * sizeof(int32_t));
		pa[i][1] = 3 + i; /* no two share a block */
		struct sched_req_params p = t_sched_params(pa[i], a_len, a_gen);
		t_sched_submit(e, &p, "A", 1, (uint32_t)i);
	}
	for (int k = 0; k < warm; k++)
		t_sched_step(e);
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	uint32_t a_running = st.tenants[1].running;
	int32_t pb[256];
	memcpy(pb, g->prompt_ids, g->n_prompt * sizeof(int32_t));
	pb[1] = 200;
	uint32_t P = g->n_prompt;
	struct sched_req_params p = t_sched_params(pb, P, 4);
	uint64_t submitted = e->steps;
	t_sched_submit(e, &p, "B", 2, 500);
	uint32_t share = (M - R) * weight_b / (1 + weight_b);
	uint64_t bound = 1 + (P + share - 1) / share;
	while (!e->rec[500].n_ids && e->steps - submitted < 300)
		t_sched_step(e);
	ck_assert_msg(e->rec[500].n_ids > 0, "B starved");
	fprintf(stderr, "fairness: A %u-token prompts (%u running), B weight %u: B's first token %llu steps after submit (bound %llu)\n",
		a_len, a_running, weight_b, (unsigned long long)(e->rec[500].first_token_step - submitted),
		(unsigned long long)bound);
	ck_assert_msg(e->rec[500].first_token_step - submitted <= bound,
		      "B's first token after %llu steps, bound %llu",
		      (unsigned long long)(e->rec[500].first_token_step - submitted),
		      (unsigned long long)bound);
	/* A keeps going meanwhile. */
	sched_get_stats(e->s, &st);
	ck_assert_uint_gt(st.tenants[1].tokens_generated, 0);
	ck_assert_uint_eq(sched_cancel_session(e->s, 1), 100 - (uint32_t)st.tenants[1].requests_done);
	t_sched_run(e, 100);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}

START_TEST(fairness_bound)
{
	/* A's long prompts compete with B's for prefill tokens. */
	fairness(1, 231, 32, 3);
	fairness(3, 231, 32, 3);
	/* A's short prompts fill every running slot with long decodes. */
	fairness(1, 5, 200, 10);
	fairness(2, 5, 200, 10);
}
END_TEST

/* Interactive requests go before batch ones and take their slots. */
START_TEST(priority_classes)
{
	struct tenant_table tt;
	tenant_table_init_default(&tt);
	tenant_policy_init(&tt.t[1], "bulk");
	tt.t[1].match = TENANT_MATCH_UID;
	tt.t[1].uid = 9;
	tt.t[1].priority = TENANT_PRIO_BATCH;
	tt.n = 2;
	struct sched_opts o = { .size = sizeof(o), .max_batch_tokens = 64, .max_running = 2,
				.tenants = &tt };
	struct t_sched_env *e = t_sched_env_new(256, &o);
	static int32_t pa[6][8];
	for (int i = 0; i < 6; i++) {
		memcpy(pa[i], e->golden[0].prompt_ids, 5 * sizeof(int32_t));
		pa[i][1] = 3 + i;
		struct sched_req_params p = t_sched_params(pa[i], 5, 100);
		t_sched_submit(e, &p, "bulk", 1, (uint32_t)i);
	}
	for (int k = 0; k < 5; k++)
		t_sched_step(e);
	/* An interactive tenant's request preempts a batch sequence at once... */
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, 5, 32);
	uint64_t at = e->steps;
	t_sched_submit(e, &p, "default", 2, 10);
	/* ...and one that lowers itself to batch waits for the interactive class. */
	p.priority = SCHED_PRIO_BATCH;
	t_sched_submit(e, &p, "default", 2, 11);
	t_sched_step(e);
	ck_assert_uint_eq(e->rec[10].n_ids, 1);
	ck_assert_uint_eq(e->rec[10].first_token_step, at + 1);
	while (!e->rec[10].done)
		t_sched_step(e);
	t_sched_check_golden(e, 10, &e->golden[0]);
	ck_assert_uint_eq(e->rec[11].n_ids, 0);
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_eq(st.tenants[1].preemptions, 1);
	t_sched_run(e, 5000);
	t_sched_check_golden(e, 11, &e->golden[0]);
	for (int i = 0; i < 6; i++)
		ck_assert(e->rec[i].done && e->rec[i].n_ids == 100);
	/* The lowered one waited for the interactive one, then shared fairly with bulk. */
	ck_assert_uint_gt(e->rec[11].first_token_step, e->rec[10].done_step);
	ck_assert_uint_lt(e->rec[11].first_token_step, e->rec[5].first_token_step);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(shutdown_grace)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, 5, 0);
	t_sched_submit(e, &p, NULL, 1, 0);
	t_sched_step(e);
	sched_shutdown(e->s, 50);
	uint64_t t0 = sched_now_us();
	ck_assert_uint_gt(sched_next_wakeup_us(e->s), t0);
	struct timespec ts = { 0, 2000000 };
	while (!e->rec[0].done) {
		t_sched_step(e);
		nanosleep(&ts, NULL);
	}
	uint64_t dt = sched_now_us() - t0;
	ck_assert_int_eq(e->rec[0].d.reason, SCHED_FINISH_SHUTDOWN);
	ck_assert_uint_ge(dt, 50000);
	ck_assert_uint_gt(e->rec[0].n_ids, 5);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(deadline)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	const struct t_golden_case *g = &e->golden[0];
	struct sched_req_params p = t_sched_params(g->prompt_ids, g->n_prompt, 0);
	p.deadline_us = sched_now_us() - 1;
	t_sched_submit(e, &p, NULL, 1, 0);
	p.deadline_us = sched_now_us() + 30000;
	t_sched_submit(e, &p, NULL, 1, 1);
	t_sched_step(e);
	ck_assert_uint_eq(sched_next_wakeup_us(e->s), p.deadline_us);
	ck_assert(e->rec[0].done);
	ck_assert_int_eq(e->rec[0].d.reason, SCHED_FINISH_DEADLINE);
	ck_assert_uint_eq(e->rec[0].n_ids, 0);
	struct timespec ts = { 0, 3000000 };
	for (int k = 0; k < 200 && !e->rec[1].done; k++) {
		t_sched_step(e);
		nanosleep(&ts, NULL);
	}
	ck_assert(e->rec[1].done);
	ck_assert_int_eq(e->rec[1].d.reason, SCHED_FINISH_DEADLINE);
	ck_assert_uint_gt(e->rec[1].n_ids, 0);
	ck_assert_uint_lt(e->rec[1].n_ids, 200);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

static const struct {
	const char *stop[3];
	const char *want;
	enum sched_finish reason;
} stop_cases[] = {
	{ { "Lily" }, ", there was a little girl named ", SCHED_FINISH_STOP },
	{ { "girl na" }, ", there was a little ", SCHED_FINISH_STOP },
	{ { "park", "named L", "zzz" }, ", there was a little girl ", SCHED_FINISH_STOP },
	{ { ", there" }, "", SCHED_FINISH_STOP },
	{ { "dragon" }, ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw",
	  SCHED_FINISH_LENGTH },
};

START_TEST(stop_strings)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	const struct t_golden_case *g = &e->golden[0];
	struct sched_req_params p = t_sched_params(g->prompt_ids, g->n_prompt, 32);
	uint32_t len[3];
	p.stop = stop_cases[_i].stop;
	for (p.n_stop = 0; p.n_stop < 3 && stop_cases[_i].stop[p.n_stop]; p.n_stop++)
		len[p.n_stop] = (uint32_t)strlen(stop_cases[_i].stop[p.n_stop]);
	p.stop_len = len;
	t_sched_submit(e, &p, NULL, 1, 0);
	t_sched_run(e, 1000);
	struct t_sched_rec *r = &e->rec[0];
	ck_assert(r->done);
	r->text[r->n_text] = 0;
	ck_assert_str_eq(r->text, stop_cases[_i].want);
	ck_assert_int_eq(r->d.reason, stop_cases[_i].reason);
	/* Tokens up to the one completing the stop string are reported, and they are golden. */
	for (uint32_t i = 0; i < r->n_ids; i++)
		ck_assert_int_eq(r->ids[i], g->output_ids[i]);
	if (stop_cases[_i].reason == SCHED_FINISH_STOP)
		ck_assert_uint_lt(r->n_ids, 32);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(back_pressure)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	for (int i = 0; i < 3; i++) {
		struct sched_req_params p = t_sched_params(e->golden[i].prompt_ids, e->golden[i].n_prompt, 32);
		t_sched_submit(e, &p, NULL, i == 0 ? 3 : 4, (uint32_t)i);
	}
	e->blocked[3] = true;
	for (int k = 0; k < 60; k++)
		t_sched_step(e);
	/* Session 4 finished while session 3 could not take a single event. */
	t_sched_check_golden(e, 1, &e->golden[1]);
	t_sched_check_golden(e, 2, &e->golden[2]);
	ck_assert_uint_eq(e->rec[0].n_ids, 0);
	ck_assert(!e->rec[0].done);
	ck_assert_uint_eq(e->emits_while_blocked, 0);
	ck_assert(!sched_idle(e->s));
	ck_assert_int_eq(sched_step(e->s), 0); /* nothing runnable: the engine may sleep */
	e->blocked[3] = false;
	t_sched_run(e, 1000);
	t_sched_check_golden(e, 0, &e->golden[0]);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

/* max_tokens 0 runs until the context is full; prompt + 1 must fit. */
START_TEST(context_full)
{
	struct sched_opts o = { .size = sizeof(o), .ctx = 64 };
	struct t_sched_env *e = t_sched_env_new(256, &o);
	const struct t_golden_case *g = &e->golden[2];
	struct sched_req_params p = t_sched_params(g->prompt_ids, g->n_prompt, 0);
	t_sched_submit(e, &p, NULL, 1, 0);
	p.max_tokens = 1000;
	t_sched_submit(e, &p, NULL, 1, 1);
	t_sched_run(e, 1000);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(e->rec[i].d.reason, SCHED_FINISH_LENGTH);
		ck_assert_uint_eq(e->rec[i].n_ids, 64 - g->n_prompt);
		ck_assert_mem_eq(e->rec[i].ids, g->output_ids, 20 * sizeof(int32_t));
	}
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_eq(st.ctx, 64);
	int32_t long_prompt[64];
	for (int i = 0; i < 64; i++)
		long_prompt[i] = g->prompt_ids[i % g->n_prompt];
	char err[256];
	p = t_sched_params(long_prompt, 63, 0);
	t_sched_submit(e, &p, NULL, 1, 2);
	p.n_prompt = 64;
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 3, NULL, err, sizeof(err)), -E2BIG);
	t_sched_run(e, 100);
	ck_assert_uint_eq(e->rec[2].n_ids, 1);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(submit_errors)
{
	struct tenant_table tt;
	tenant_table_init_default(&tt);
	tenant_policy_init(&tt.t[1], "closed");
	tt.t[1].allowed = false;
	tt.t[1].match = TENANT_MATCH_UID;
	tenant_policy_init(&tt.t[2], "small");
	tt.t[2].match = TENANT_MATCH_UID;
	tt.t[2].uid = 5;
	tt.t[2].max_inflight = 2;
	tt.t[2].max_kv_blocks = 4;
	tt.n = 3;
	struct sched_opts o = { .size = sizeof(o), .ctx = 128, .tenants = &tt };
	struct t_sched_env *e = t_sched_env_new(64, &o);
	const struct t_golden_case *g = &e->golden[3];
	char err[256];
	struct sched_req_params p = t_sched_params(g->prompt_ids, g->n_prompt, 4);
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 0, NULL, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "231 tokens"));
	p = t_sched_params(e->golden[0].prompt_ids, 5, 4);
	int32_t bad[2] = { 1, 9999 };
	p.prompt = bad;
	p.n_prompt = 2;
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 0, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "9999"));
	p = t_sched_params(e->golden[0].prompt_ids, 5, 4);
	p.n_prompt = 0;
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 0, NULL, err, sizeof(err)), -EINVAL);
	p.n_prompt = 5;
	p.sampling.top_p = -1;
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 0, NULL, err, sizeof(err)), -EINVAL);
	p.sampling.top_p = 1;
	const char *stop[1] = { "" };
	uint32_t sl[1] = { 0 };
	p.stop = stop;
	p.stop_len = sl;
	p.n_stop = 1;
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 0, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "stop[0]"));
	p.n_stop = 0;
	p.size = sizeof(p) + 8; /* a newer caller's struct: unknown tail bytes must be zero */
	struct { struct sched_req_params p; uint64_t extra; } big_p = { p, 1 };
	ck_assert_int_eq(sched_submit(e->s, &big_p.p, "default", 1, 0, NULL, err, sizeof(err)), -EINVAL);
	big_p.extra = 0;
	e->rec[9].session = 1;
	ck_assert_int_eq(sched_submit(e->s, &big_p.p, "default", 1, 9, NULL, err, sizeof(err)), 0);
	p.size = sizeof(p);
	ck_assert_int_eq(sched_submit(e->s, &p, "nobody", 1, 0, NULL, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(sched_submit(e->s, &p, "closed", 1, 0, NULL, err, sizeof(err)), -EACCES);
	t_sched_submit(e, &p, "small", 1, 0);
	t_sched_submit(e, &p, "small", 1, 1);
	ck_assert_int_eq(sched_submit(e->s, &p, "small", 1, 2, NULL, err, sizeof(err)), -EDQUOT);
	ck_assert_ptr_nonnull(strstr(err, "max_inflight"));
	/* A prompt over max_kv_blocks is refused; a sequence outgrowing it fails with an event. */
	struct sched_req_params big = t_sched_params(g->prompt_ids, 100, 0);
	t_sched_run(e, 1000);
	ck_assert(e->rec[0].done && e->rec[1].done);
	ck_assert_int_eq(sched_submit(e->s, &big, "small", 1, 3, NULL, err, sizeof(err)), -EDQUOT);
	ck_assert_ptr_nonnull(strstr(err, "max_kv_blocks"));
	struct sched_req_params grow = t_sched_params(e->golden[2].prompt_ids, 40, 0);
	t_sched_submit(e, &grow, "small", 1, 4);
	t_sched_run(e, 1000);
	ck_assert(e->rec[4].failed);
	ck_assert_int_eq(e->rec[4].err, -EDQUOT);
	ck_assert_uint_eq(e->rec[4].n_ids, 64 + 1 - 40); /* positions 0..63 fed, one more sampled */
	t_sched_check_baseline(e);

	/* Shutdown: new submits refused, running requests end after the grace. */
	p = t_sched_params(e->golden[0].prompt_ids, 5, 0);
	t_sched_submit(e, &p, NULL, 1, 5);
	t_sched_submit(e, &p, NULL, 1, 6);
	t_sched_step(e);
	ck_assert_uint_gt(e->rec[5].n_ids, 0);
	sched_shutdown(e->s, 0);
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 7, NULL, err, sizeof(err)), -ESHUTDOWN);
	t_sched_step(e);
	ck_assert(e->rec[5].done && e->rec[6].done);
	ck_assert_int_eq(e->rec[5].d.reason, SCHED_FINISH_SHUTDOWN);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

START_TEST(tenant_reload)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, 5, 8);
	t_sched_submit(e, &p, "default", 1, 0);
	t_sched_step(e);
	struct tenant_table tt;
	memset(&tt, 0, sizeof(tt));
	tenant_policy_init(&tt.t[0], "new");
	tt.n = 1;
	ck_assert_int_eq(sched_set_tenants(e->s, &tt), 0);
	char err[256];
	/* In force for the next submit; the running request finishes under
	 * its old tenant. */
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 2, NULL, err, sizeof(err)), -ENOENT);
	t_sched_submit(e, &p, "new", 1, 3);
	t_sched_run(e, 1000);
	ck_assert(e->rec[0].done && e->rec[3].done);
	ck_assert_int_eq(e->rec[0].d.reason, SCHED_FINISH_LENGTH);
	t_sched_step(e);
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_eq(st.n_tenants, 1);
	ck_assert_str_eq(st.tenants[0].name, "new");
	ck_assert_uint_eq(st.tenants[0].requests_done, 1);
	t_sched_env_free(e);
}
END_TEST

/* sched_set_tenants() from another thread while the engine thread steps. */
struct swapper {
	struct sched *s;
	uint32_t stop;           /* set by the test thread, polled by the swapper */
	uint32_t swaps;
};

static void *swap_tenants(void *arg)
{
	struct swapper *w = arg;
	struct tenant_table tt;
	tenant_table_init_default(&tt);
	while (!gi_load_acquire(&w->stop)) {
		tt.t[0].weight = 1 + w->swaps % 7;
		tt.t[0].priority = w->swaps % 2 ? TENANT_PRIO_BATCH : TENANT_PRIO_INTERACTIVE;
		ck_assert_int_eq(sched_set_tenants(w->s, &tt), 0);
		w->swaps++;
	}
	return NULL;
}

START_TEST(tenant_swap_threaded)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	struct swapper w = { .s = e->s };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, swap_tenants, &w), 0);
	for (int i = 0; i < 4; i++) {
		struct sched_req_params p = t_sched_params(e->golden[i].prompt_ids, e->golden[i].n_prompt, 32);
		t_sched_submit(e, &p, NULL, 1, (uint32_t)i);
	}
	t_sched_run(e, 1000);
	gi_store_release(&w.stop, 1);
	pthread_join(th, NULL);
	ck_assert_uint_gt(w.swaps, 0);
	for (int i = 0; i < 4; i++)
		t_sched_check_golden(e, (uint32_t)i, &e->golden[i]);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("sched");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, golden_together);
	tcase_add_test(tc, prefix_cache);
	tcase_add_test(tc, preempt_tiny_pool);
	tcase_add_test(tc, decode_not_starved);
	tcase_add_test(tc, cancel_frees);
	tcase_add_test(tc, fairness_bound);
	tcase_add_test(tc, priority_classes);
	tcase_add_test(tc, shutdown_grace);
	tcase_add_test(tc, deadline);
	tcase_add_loop_test(tc, stop_strings, 0, (int)(sizeof(stop_cases) / sizeof(stop_cases[0])));
	tcase_add_test(tc, back_pressure);
	tcase_add_test(tc, context_full);
	tcase_add_test(tc, submit_errors);
	tcase_add_test(tc, tenant_reload);
	tcase_add_test(tc, tenant_swap_threaded);
	suite_add_tcase(s, tc);
	return s;
}
