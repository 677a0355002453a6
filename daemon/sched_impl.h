/* Scheduler internals shared by sched.c (requests, tenants, lifecycle) and
 * sched_step.c (one engine iteration). Not a public interface. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>

#include "daemon/kvmgr.h"
#include "daemon/sched.h"
#include "daemon/textout.h"

#define NIL UINT32_MAX
#define N_TSLOTS (2 * TENANT_MAX) /* live tenants + tenants retiring after a reload */

enum { RQ_FREE = 0, RQ_WAITING, RQ_RUNNING };

struct sreq {
	uint64_t id;              /* (generation << 32) | slot; 0 while free */
	uint64_t user_data, session;
	uint32_t tenant;          /* runtime tenant slot */
	uint8_t state;
	uint8_t cls;              /* 0 interactive, 1 batch */
	uint32_t slot_gen;

	int32_t *tok;             /* prompt then generated tokens */
	uint32_t n_tok, limit;    /* limit: n_tok at which the request ends with "length" */
	uint32_t n_prompt, n_gen;
	uint32_t n_done;          /* positions whose KV is in blk */

	uint32_t *blk;            /* block table */
	uint64_t *bkey;           /* prefix key of each full block */
	uint32_t n_blk, n_key, cap_blk;

	struct sampler *smp;
	struct textout *to;

	uint64_t t_submit, t_admit, t_first, deadline;
	uint64_t admit_seq;       /* order of the latest admission (preemption picks the newest) */
	uint32_t n_cached, n_preempt;
	bool admitted_once;
	bool cancel_pending;       /* its id is in sched.cancel_ids */
	bool ignore_eos;          /* end-of-generation tokens masked out before sampling */

	uint32_t qprev, qnext;    /* waiting queue (WAITING) or prefill list (RUNNING, > 1 token pending) */
	bool in_plist;
	uint32_t run_idx;         /* index in sched.run while RUNNING */
	uint32_t heap_idx;        /* index in the deadline heap, NIL if no deadline */
	uint32_t batch_idx;       /* entry in this step's batch, NIL if none */
	uint64_t seen_step;       /* step that last asked can_emit for it */
	bool emit_ok;             /* can_emit answer of seen_step */
};

struct stenant {
	struct tenant_policy pol;
	bool used, live;
	uint32_t n_wait, n_run, kv_blocks;
	uint32_t qhead[TENANT_N_PRIO], qtail[TENANT_N_PRIO]; /* waiting, FIFO */
	uint32_t phead[TENANT_N_PRIO], ptail[TENANT_N_PRIO]; /* prefilling, admission order */
	int64_t deficit;          /* this step's remaining allowance */
	uint64_t prefilled, generated, done, preempt;
};

struct sched {
	struct model *m;
	struct kv_cache *kv;
	const struct tokenizer *tok;
	int32_t *eog;                     /* end-of-generation token ids (ignore_eos masks them) */
	uint32_t n_eog;
	struct kvmgr *kvm;
	uint32_t n_vocab, ctx, max_req, max_run, max_batch, n_pool;
	struct sched_events ev;
	void *ev_ctx;

	struct sreq *rq;
	uint32_t free_head, n_inflight, n_waiting;
	uint32_t *run, n_run;
	uint32_t *heap, n_heap;           /* min-heap of request slots by deadline */
	uint64_t *cancel_ids;
	uint32_t n_cancel;

	struct stenant ten[N_TSLOTS];
	uint32_t n_tslots;                /* 1 + highest used slot: loops stop there */
	uint32_t rr[TENANT_N_PRIO];

	struct step_seq *batch;
	uint32_t *batch_req, n_batch, batch_tokens;
	float *logits;                    /* max_run * n_vocab */
	char text[TEXTOUT_OUT_MAX];

	uint64_t now, admit_counter, steps;
	bool shutting;
	uint64_t shutdown_at;

	pthread_mutex_t tlock;            /* guards tnext and tpending */
	atomic_bool tpending;             /* read without the lock on the submit path */
	struct tenant_table tnext;

	uint64_t prefilled, generated, prefix_hits, preemptions;
};

/* sched.c, sched_tenant.c */
void sched_finish(struct sched *s, struct sreq *r, enum sched_finish why);
void sched_fail(struct sched *s, struct sreq *r, int err, const char *msg);
void sched_apply_tenants(struct sched *s);
void sched_tenant_init(struct stenant *t, const struct tenant_policy *p);
int sched_find_tenant(const struct sched *s, const char *name);
void sched_reap(struct sched *s);
void sched_q_push(struct sched *s, struct sreq *r, bool front);
void sched_q_unlink(struct sched *s, struct sreq *r);
void sched_pl_push(struct sched *s, struct sreq *r);
void sched_pl_unlink(struct sched *s, struct sreq *r);
void sched_run_add(struct sched *s, struct sreq *r);
void sched_run_remove(struct sched *s, struct sreq *r);
void sched_release_blocks(struct sched *s, struct sreq *r);

static inline uint32_t req_slot(const struct sched *s, const struct sreq *r)
{
	return (uint32_t)(r - s->rq);
}
