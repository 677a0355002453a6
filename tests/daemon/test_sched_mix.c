/* Scheduler at scale and under a random mix of submissions, cancels,
 * blocked sessions, tenants and classes, on the real stories260K engine. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sched.h"
#include "tests/daemon/sched_env.h"
#include "tests/t_util.h"

START_TEST(scale_1024)
{
	struct sched_opts o = { .size = sizeof(o), .max_requests = 1024, .max_running = 64,
				.max_batch_tokens = 512 };
	struct t_sched_env *e = t_sched_env_new(1024, &o);
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, 5, 3);
	char err[256];
	for (uint32_t i = 0; i < 1024; i++)
		t_sched_submit(e, &p, NULL, i % 256, i);
	ck_assert_int_eq(sched_submit(e->s, &p, "default", 1, 0, NULL, err, sizeof(err)), -EAGAIN);
	uint64_t t0 = sched_now_us();
	uint64_t steps = t_sched_run(e, 100000);
	uint64_t dt = sched_now_us() - t0;
	for (uint32_t i = 0; i < 1024; i++) {
		ck_assert(e->rec[i].done && !e->rec[i].failed);
		ck_assert_uint_eq(e->rec[i].n_ids, 3);
		ck_assert_mem_eq(e->rec[i].ids, e->golden[0].output_ids, 3 * sizeof(int32_t));
	}
	fprintf(stderr, "scale_1024: 1024 requests over 256 sessions in %llu steps, %.1f ms\n",
		(unsigned long long)steps, dt / 1000.0);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

/* Random mix under a tiny pool: submissions, cancels, blocked sessions,
 * deadlines, tenants of different weights and classes, tenant reloads. Every
 * request ends exactly once, with a prefix of its reference (alone, greedy)
 * tokens, all of them unless cancelled or late. */
static uint32_t lcg(uint64_t *st)
{
	*st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*st >> 33);
}

START_TEST(random_mix)
{
	enum { N_PROMPTS = 8, N_REQ = 80, GEN = 40 };
	static int32_t prompts[N_PROMPTS][256];
	static uint32_t plen[N_PROMPTS];
	static int32_t ref[N_PROMPTS][GEN];
	struct t_sched_env *f = t_sched_env_new(256, NULL);
	const uint32_t cut[N_PROMPTS] = { 0, 0, 0, 0, 40, 100, 150, 231 };
	for (int i = 0; i < N_PROMPTS; i++) {
		const struct t_golden_case *g = &f->golden[i < 4 ? i : 3];
		plen[i] = i < 4 ? g->n_prompt : cut[i];
		memcpy(prompts[i], g->prompt_ids, plen[i] * sizeof(int32_t));
		if (i == 7)
			prompts[i][120] = 5; /* shares 7 blocks with the others */
		struct sched_req_params p = t_sched_params(prompts[i], plen[i], GEN);
		t_sched_submit(f, &p, NULL, 1, (uint32_t)i);
	}
	t_sched_run(f, 1000);
	for (int i = 0; i < N_PROMPTS; i++) {
		ck_assert_uint_eq(f->rec[i].n_ids, GEN);
		memcpy(ref[i], f->rec[i].ids, sizeof(ref[i]));
	}
	t_sched_env_free(f);

	struct tenant_table tt;
	tenant_table_init_default(&tt);
	const char *names[3] = { "default", "heavy", "bulk" };
	for (int i = 1; i < 3; i++) {
		tenant_policy_init(&tt.t[i], names[i]);
		tt.t[i].match = TENANT_MATCH_UID;
		tt.t[i].uid = (uint32_t)i;
	}
	tt.t[1].weight = 3;
	tt.t[2].priority = TENANT_PRIO_BATCH;
	tt.n = 3;
	struct sched_opts o = { .size = sizeof(o), .max_batch_tokens = 48, .max_running = 6,
				.tenants = &tt };
	struct t_sched_env *e = t_sched_env_new(24, &o);
	uint64_t rs = 0x1234 + (uint64_t)_i * 977;
	uint64_t ids[N_REQ];
	uint32_t which[N_REQ], gen[N_REQ], n_sub = 0;
	bool cancelled[N_REQ] = { false }, deadline[N_REQ] = { false };
	while (n_sub < N_REQ || !sched_idle(e->s)) {
		uint32_t roll = lcg(&rs) % 100;
		if (n_sub < N_REQ && roll < 30) {
			which[n_sub] = lcg(&rs) % N_PROMPTS;
			gen[n_sub] = 1 + lcg(&rs) % GEN;
			struct sched_req_params p = t_sched_params(prompts[which[n_sub]], plen[which[n_sub]], gen[n_sub]);
			if (lcg(&rs) % 4 == 0)
				p.priority = SCHED_PRIO_BATCH;
			if (lcg(&rs) % 10 == 0)
				p.deadline_us = sched_now_us() + lcg(&rs) % 20000;
			deadline[n_sub] = p.deadline_us != 0;
			ids[n_sub] = t_sched_submit(e, &p, names[lcg(&rs) % 3], lcg(&rs) % 8, n_sub);
			n_sub++;
		} else if (roll < 33 && n_sub) {
			uint32_t k = lcg(&rs) % n_sub;
			if (sched_cancel(e->s, ids[k]) == 0)
				cancelled[k] = true;
		} else if (roll < 40) {
			uint32_t sess = lcg(&rs) % 8;
			e->blocked[sess] = !e->blocked[sess];
		}
		if (n_sub == N_REQ && roll < 5)
			memset(e->blocked, 0, sizeof(e->blocked));
		if (roll == 99) {
			/* Reload: weights and classes change under running requests. */
			tt.t[1].weight = 1 + lcg(&rs) % 5;
			tt.t[2].priority = lcg(&rs) % 2 ? TENANT_PRIO_BATCH : TENANT_PRIO_INTERACTIVE;
			ck_assert_int_eq(sched_set_tenants(e->s, &tt), 0);
		}
		t_sched_step(e);
		ck_assert_uint_lt(e->steps, 20000);
	}
	ck_assert_uint_eq(e->emits_while_blocked, 0);
	for (uint32_t k = 0; k < N_REQ; k++) {
		const struct t_sched_rec *r = &e->rec[k];
		ck_assert_msg(r->done && !r->failed, "request %u: done %d failed %d", k, r->done, r->failed);
		for (uint32_t i = 0; i < r->n_ids; i++)
			ck_assert_msg(r->ids[i] == ref[which[k]][i], "request %u (prompt %u) token %u: %d, want %d",
				      k, which[k], i, r->ids[i], ref[which[k]][i]);
		if (r->d.reason == SCHED_FINISH_DEADLINE) {
			ck_assert(deadline[k]);
		} else if (r->d.reason != SCHED_FINISH_CANCEL) {
			ck_assert_int_eq(r->d.reason, SCHED_FINISH_LENGTH);
			ck_assert_uint_eq(r->n_ids, gen[k]);
		} else {
			ck_assert(cancelled[k]);
		}
	}
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	fprintf(stderr, "random_mix %d: %llu steps, %llu preemptions, %llu prefix-hit tokens\n", _i,
		(unsigned long long)e->steps, (unsigned long long)st.preemptions,
		(unsigned long long)st.prefix_hit_tokens);
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("sched_mix");
	TCase *tc = tcase_create("sched_mix");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, scale_1024);
	tcase_add_loop_test(tc, random_mix, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}
