/* Scheduler limits and per-request flags on the real stories260K engine:
 * the quota of a tenant table set just before a submit, ignore_eos. */
#include <errno.h>
#include <string.h>

#include "daemon/sched.h"
#include "engine/tokenizer.h"
#include "tests/daemon/sched_env.h"
#include "tests/t_util.h"

/* A reload that sets max_inflight 2 is in force for the very next submits,
 * with no step in between, and counts the requests already in flight. */
START_TEST(quota_after_reload)
{
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, 5, 16);
	struct tenant_table tt;
	tenant_table_init_default(&tt);
	char err[256];
	uint32_t idx = 0;
	for (uint32_t round = 0; round < 4; round++) {
		/* Round 0 and 2: nothing in flight; 1 and 3: one request is. */
		uint32_t before = round % 2;
		tt.t[0].max_inflight = 0;
		ck_assert_int_eq(sched_set_tenants(e->s, &tt), 0);
		for (uint32_t i = 0; i < before; i++)
			t_sched_submit(e, &p, NULL, 1, idx++);
		if (before)
			t_sched_step(e);
		tt.t[0].max_inflight = 2;
		ck_assert_int_eq(sched_set_tenants(e->s, &tt), 0);
		int ok = 0, quota = 0;
		for (int i = 0; i < 4; i++) {
			e->rec[idx].session = 1;
			int r = sched_submit(e->s, &p, "default", 1, idx++, NULL, err, sizeof(err));
			ok += r == 0;
			quota += r == -EDQUOT;
		}
		ck_assert_int_eq(ok, 2 - (int)before);
		ck_assert_int_eq(quota, 2 + (int)before);
		t_sched_run(e, 1000);
		t_sched_check_baseline(e);
	}
	t_sched_env_free(e);
}
END_TEST

/* ignore_eos: stories260K never ends with EOS under greedy decoding, but at
 * temperature 100 (nearly uniform over 512 tokens) a few hundred tokens
 * hit it for most seeds. The seed that ended with EOS runs to max_tokens
 * with ignore_eos, and no end-of-generation token is ever reported. */
START_TEST(ignore_eos)
{
	enum { MAX = 300, SEEDS = 16 };
	struct t_sched_env *e = t_sched_env_new(256, NULL);
	struct sched_req_params p = t_sched_params(e->golden[0].prompt_ids, 5, MAX);
	p.sampling.temperature = 100;
	p.sampling.top_k = 0;
	p.sampling.top_p = 1;
	p.sampling.min_p = 0;
	int eos_seed = -1;
	for (uint32_t seed = 1; seed <= SEEDS && eos_seed < 0; seed++) {
		p.sampling.seed = seed;
		t_sched_submit(e, &p, NULL, 1, seed);
		t_sched_run(e, 2 * MAX);
		ck_assert(e->rec[seed].done && !e->rec[seed].failed);
		if (e->rec[seed].d.reason == SCHED_FINISH_EOS)
			eos_seed = (int)seed;
	}
	ck_assert_msg(eos_seed > 0, "no seed of %d ended with EOS within %d tokens", SEEDS, MAX);
	ck_assert_uint_lt(e->rec[eos_seed].n_ids, MAX);
	p.sampling.seed = (uint64_t)eos_seed;
	p.ignore_eos = true;
	for (uint32_t k = 0; k < 4; k++)
		t_sched_submit(e, &p, NULL, 1, 100 + k);
	t_sched_run(e, 4 * MAX);
	const struct tokenizer *tk = model_tokenizer(e->m);
	for (uint32_t k = 0; k < 4; k++) {
		const struct t_sched_rec *r = &e->rec[100 + k];
		ck_assert(r->done && !r->failed);
		ck_assert_int_eq(r->d.reason, SCHED_FINISH_LENGTH);
		ck_assert_uint_eq(r->d.n_generated, MAX);
		ck_assert_uint_eq(r->n_ids, MAX);
		for (uint32_t i = 0; i < MAX; i++)
			ck_assert(!tok_is_eog(tk, r->ids[i]));
		ck_assert_int_eq(memcmp(r->ids, e->rec[100].ids, sizeof(r->ids[0]) * MAX), 0);
	}
	t_sched_check_baseline(e);
	t_sched_env_free(e);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("sched_limits");
	TCase *tc = tcase_create("limits");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, quota_after_reload);
	tcase_add_test(tc, ignore_eos);
	suite_add_tcase(s, tc);
	return s;
}
