/* Test harness for the scheduler on the real stories260K engine: loads the
 * model, records every event per request (user_data = index), runs steps.
 * Header-only on purpose: a tests/ .c helper is linked into every test
 * program (the TSan ones too, which carry no daemon or engine code), while
 * only the scheduler suites include this. */
#pragma once
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sched.h"
#include "tests/engine/golden.h"
#include "tests/t_util.h"

/* Not every suite uses every helper. */
#define T_SCHED_FN static __attribute__((unused))

#define T_SCHED_MAX_REC 1100
#define T_SCHED_TEXT 4096

struct t_sched_rec {
	int32_t ids[600];
	uint32_t n_ids;
	char text[T_SCHED_TEXT];
	uint32_t n_text;
	bool done, failed;
	int err;
	struct sched_done d;
	uint64_t first_token_step, done_step;
	uint64_t token_step[600]; /* step of each token */
	uint64_t session;
};

struct t_sched_env {
	struct model *m;
	struct kv_cache *kv;
	struct sched *s;
	uint64_t steps;
	uint32_t max_batch;      /* no step may compute more tokens */
	bool blocked[16];       /* can_emit answers false for these sessions */
	uint64_t emits_while_blocked;
	struct t_sched_rec rec[T_SCHED_MAX_REC];
	struct t_golden_case golden[8];
	int n_golden;
};

static bool ev_can_emit(void *ctx, uint64_t session)
{
	struct t_sched_env *e = ctx;
	return !(session < 16 && e->blocked[session]);
}

static void ev_token(void *ctx, uint64_t ud, uint64_t session, int32_t token, const char *text,
		     uint32_t len, float logprob)
{
	struct t_sched_env *e = ctx;
	ck_assert_uint_lt(ud, T_SCHED_MAX_REC);
	struct t_sched_rec *r = &e->rec[ud];
	ck_assert(!r->done);
	ck_assert_uint_eq(r->session, session);
	if (session < 16 && e->blocked[session])
		e->emits_while_blocked++;
	if (r->n_ids == 0)
		r->first_token_step = e->steps;
	if (r->n_ids < sizeof(r->ids) / sizeof(r->ids[0])) {
		r->token_step[r->n_ids] = e->steps;
		r->ids[r->n_ids++] = token;
	}
	ck_assert(logprob <= 0.0f);
	ck_assert_uint_lt(r->n_text + len, T_SCHED_TEXT);
	memcpy(r->text + r->n_text, text, len);
	r->n_text += len;
}

static void ev_done(void *ctx, uint64_t ud, uint64_t session, const struct sched_done *d)
{
	struct t_sched_env *e = ctx;
	struct t_sched_rec *r = &e->rec[ud];
	ck_assert(!r->done);
	r->done = true;
	r->d = *d;
	r->done_step = e->steps;
	ck_assert_uint_lt(r->n_text + d->text_len, T_SCHED_TEXT);
	memcpy(r->text + r->n_text, d->text, d->text_len);
	r->n_text += d->text_len;
	r->d.text = NULL;
}

static void ev_error(void *ctx, uint64_t ud, uint64_t session, int err, const char *msg)
{
	struct t_sched_env *e = ctx;
	struct t_sched_rec *r = &e->rec[ud];
	ck_assert(!r->done);
	r->done = r->failed = true;
	r->err = err;
}

static const struct sched_events t_events = {
	.can_emit = ev_can_emit, .on_token = ev_token, .on_done = ev_done, .on_error = ev_error,
};

/* Loads stories260K (and the golden cases) into a fresh calloc'd env with a
 * pool of N_BLOCKS and a scheduler built from O (events filled in here;
 * O may be NULL for defaults). Fails the test on error. */
T_SCHED_FN struct t_sched_env *t_sched_env_new(uint32_t n_blocks, struct sched_opts *o)
{
	struct t_sched_env *e = calloc(1, sizeof(*e));
	ck_assert_ptr_nonnull(e);
	e->n_golden = t_golden_load(t_shared("golden/stories260K_greedy.json"), e->golden, 8);
	ck_assert_int_eq(e->n_golden, 4);
	struct model_opts mo = { .size = sizeof(mo), .n_threads = 1, .max_batch_tokens = 512,
				 .max_seqs = 256 };
	char err[256];
	int r = model_load(t_shared("models/stories260K.gguf"), &mo, &e->m, err, sizeof(err));
	ck_assert_msg(r == 0, "model_load: %s", err);
	ck_assert_int_eq(kv_cache_create(e->m, n_blocks, &e->kv), 0);
	struct sched_opts def = { .size = sizeof(def) };
	if (!o)
		o = &def;
	e->max_batch = o->max_batch_tokens ? o->max_batch_tokens : 512;
	o->ev = &t_events;
	o->ev_ctx = e;
	r = sched_create(e->m, e->kv, o, &e->s, err, sizeof(err));
	ck_assert_msg(r == 0, "sched_create: %s", err);
	return e;
}

T_SCHED_FN void t_sched_env_free(struct t_sched_env *e)
{
	sched_free(e->s);
	kv_cache_free(e->kv);
	model_free(e->m);
	free(e);
}

/* Default greedy params for PROMPT (N tokens), MAX_TOKENS. */
T_SCHED_FN struct sched_req_params t_sched_params(const int32_t *prompt, uint32_t n,
						  uint32_t max_tokens)
{
	struct sched_req_params p = { .size = sizeof(p), .prompt = prompt, .n_prompt = n,
				      .max_tokens = max_tokens };
	sampler_params_default(&p.sampling);
	p.sampling.temperature = 0; /* greedy */
	return p;
}

/* Submits with user_data = IDX into e->rec; fails the test on error. */
T_SCHED_FN uint64_t t_sched_submit(struct t_sched_env *e, const struct sched_req_params *p,
				   const char *tenant, uint64_t session, uint32_t idx)
{
	char err[256];
	uint64_t id = 0;
	e->rec[idx].session = session;
	int r = sched_submit(e->s, p, tenant ? tenant : "default", session, idx, &id, err, sizeof(err));
	ck_assert_msg(r == 0, "sched_submit: %d %s", r, err);
	return id;
}

/* One step (counted in e->steps); no step computes more than max_batch tokens. */
T_SCHED_FN int t_sched_step(struct t_sched_env *e)
{
	e->steps++;
	int r = sched_step(e->s);
	ck_assert_int_ge(r, 0);
	ck_assert_int_le(r, e->max_batch);
	return r;
}

/* Steps until sched_idle() or MAX steps; returns the steps run. */
T_SCHED_FN uint64_t t_sched_run(struct t_sched_env *e, uint64_t max)
{
	uint64_t n = 0;
	while (!sched_idle(e->s) && n < max) {
		t_sched_step(e);
		n++;
	}
	return n;
}

/* Request IDX ended with "length" and exactly G's golden output ids. */
T_SCHED_FN void t_sched_check_golden(const struct t_sched_env *e, uint32_t idx,
				     const struct t_golden_case *g)
{
	const struct t_sched_rec *r = &e->rec[idx];
	ck_assert_msg(r->done && !r->failed, "request %u not done (failed %d, err %d)", idx, r->failed, r->err);
	ck_assert_int_eq(r->d.reason, SCHED_FINISH_LENGTH);
	ck_assert_uint_eq(r->n_ids, g->n_output);
	ck_assert_uint_eq(r->d.n_generated, g->n_output);
	for (uint32_t i = 0; i < g->n_output; i++)
		ck_assert_msg(r->ids[i] == g->output_ids[i], "prompt \"%.30s\" token %u: %d, want %d",
			      g->prompt, i, r->ids[i], g->output_ids[i]);
}

/* Nothing in flight, no KV block in use, idle. */
T_SCHED_FN void t_sched_check_baseline(struct t_sched_env *e)
{
	struct sched_stats st;
	sched_get_stats(e->s, &st);
	ck_assert_uint_eq(st.requests_running, 0);
	ck_assert_uint_eq(st.requests_waiting, 0);
	ck_assert_uint_eq(st.kv_blocks_used, 0);
	ck_assert(sched_idle(e->s));
	for (uint32_t i = 0; i < st.n_tenants; i++)
		ck_assert_uint_eq(st.tenants[i].kv_blocks, 0);
}
