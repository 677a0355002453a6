/* Test harness for the scheduler on the real stories260K engine: loads the
 * model, records every event per request (user_data = index), runs steps. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "daemon/sched.h"
#include "tests/engine/golden.h"

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

/* Loads stories260K (and the golden cases) into a fresh calloc'd env with a
 * pool of N_BLOCKS and a scheduler built from O (events filled in here;
 * O may be NULL for defaults). Fails the test on error. */
struct t_sched_env *t_sched_env_new(uint32_t n_blocks, struct sched_opts *o);
void t_sched_env_free(struct t_sched_env *e);

/* Default greedy params for PROMPT (N tokens), MAX_TOKENS. */
struct sched_req_params t_sched_params(const int32_t *prompt, uint32_t n, uint32_t max_tokens);

/* Submits with user_data = IDX into e->rec; fails the test on error. */
uint64_t t_sched_submit(struct t_sched_env *e, const struct sched_req_params *p, const char *tenant,
			uint64_t session, uint32_t idx);

/* Steps until sched_idle() or MAX steps; returns the steps run. */
uint64_t t_sched_run(struct t_sched_env *e, uint64_t max);
/* One step (counted in e->steps). */
int t_sched_step(struct t_sched_env *e);

/* Request IDX ended with "length" and exactly G's golden output ids. */
void t_sched_check_golden(const struct t_sched_env *e, uint32_t idx, const struct t_golden_case *g);
/* Nothing in flight, no KV block in use, idle. */
void t_sched_check_baseline(struct t_sched_env *e);
