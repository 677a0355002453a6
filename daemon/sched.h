/* The scheduler: continuous batching over one model and one paged KV pool.
 *
 * Each sched_step() is one engine iteration: apply cancellations, deadlines
 * and a new tenant table; give every running decode sequence its token;
 * share the rest of the token budget, interactive class first, between the
 * tenants with prefill work: each gets a quantum proportional to its weight
 * (deficit round robin whose quantum is the tenant's weighted share of the
 * step's budget), spent on prefill chunks of its running sequences (oldest
 * first) and then on admitting its queued requests; what a tenant cannot use
 * goes round again to the others, and the starting tenant rotates each step.
 * Then model_step(), sampling, events.
 *
 * KV: an admitted request takes the blocks for its whole prompt at once,
 * reusing cached full blocks of a prompt prefix seen before (kvmgr.h), so a
 * prefill never waits for KV. When a decode needs a block and none is left,
 * the lowest-priority, most recently admitted sequence is preempted: its
 * blocks are freed and it goes back to the front of its queue with prompt +
 * generated tokens, to be recomputed later with unchanged output. A waiting
 * request may preempt a lower-class sequence, or one of another tenant above
 * its weighted share of running slots or KV, to get a slot and blocks.
 *
 * Fairness bound (tested): let M = max_batch_tokens, R = max_running, and W
 * the summed weight of the tenants with prefill work in the class of a
 * request of tenant T (weight w), and V the summed weight of the tenants
 * in flight. If no higher class is waiting, T has nothing else running, is
 * entitled to a slot (R * w >= V) and its prompt to its KV share (blocks *
 * V <= pool * w), its session takes events, and no decode runs out of KV
 * meanwhile (that would preempt the newest sequence, this one), the
 * request is admitted in the first sched_step() after sched_submit() and its
 * prefill gets at least floor((M - R) * w / W) tokens in every step after,
 * so a P-token prompt yields its first token within
 * 1 + ceil(P / floor((M - R) * w / W)) steps, however many requests other
 * tenants queue. (With A and B of weight 1, M = 64, R = 4, P = 231: 9 steps.)
 *
 * Threads: everything here runs on the engine thread, except
 * sched_set_tenants(), which any thread may call. Event callbacks run inside
 * sched_step() and may call sched_cancel()/sched_cancel_session() (applied at
 * the next step boundary) but not sched_step(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/tenant.h"
#include "engine/model.h"
#include "engine/sampler.h"

struct sched;

enum sched_finish {
	SCHED_FINISH_EOS = 0,    /* the model produced an end-of-generation token */
	SCHED_FINISH_LENGTH,     /* max_tokens generated, or the context is full */
	SCHED_FINISH_STOP,       /* a stop string matched */
	SCHED_FINISH_CANCEL,     /* sched_cancel() / sched_cancel_session() */
	SCHED_FINISH_DEADLINE,   /* deadline passed */
	SCHED_FINISH_SHUTDOWN,   /* shutdown grace ran out */
};

enum sched_prio {
	SCHED_PRIO_TENANT = 0,   /* the tenant's class */
	SCHED_PRIO_INTERACTIVE,
	SCHED_PRIO_BATCH,        /* a request may lower its class, never raise it */
};

/* Final record of a request (with on_done). TEXT is held-back text released
 * at the end (empty after a stop string), valid during the callback. */
struct sched_done {
	enum sched_finish reason;
	uint32_t n_prompt;       /* prompt tokens */
	uint32_t n_generated;    /* tokens reported through on_token */
	uint32_t n_cached;       /* prompt tokens served from the prefix cache at first admission */
	uint32_t n_preempted;    /* times this request was preempted and recomputed */
	uint64_t queue_us;       /* submit -> first admission */
	uint64_t prefill_us;     /* first admission -> first token (or end) */
	uint64_t decode_us;      /* first token -> end */
	const char *text;
	uint32_t text_len;
};

/* Callbacks, all optional except on_done and on_error. CTX is sched_opts.ev_ctx. */
struct sched_events {
	/* Back-pressure: asked once per request per step before it is put in a
	 * step that would produce a token for it. Answering true promises room
	 * for one on_token (and possibly the on_done right after it) for that
	 * request; false makes the request skip this step, nothing is lost.
	 * NULL = always true. */
	bool (*can_emit)(void *ctx, uint64_t session);
	/* One generated token. TEXT (LEN bytes, not NUL-terminated, may be 0
	 * long while text is held back for stop strings or UTF-8) is valid
	 * during the call; LOGPROB is the token's natural-log probability under
	 * the unmodified distribution. */
	void (*on_token)(void *ctx, uint64_t user_data, uint64_t session, int32_t token,
			 const char *text, uint32_t len, float logprob);
	/* The request ended normally; its id is no longer valid. */
	void (*on_done)(void *ctx, uint64_t user_data, uint64_t session, const struct sched_done *d);
	/* The request failed after it was accepted (-EIO: the model step failed;
	 * -EDQUOT: the sequence outgrew its tenant's max_kv_blocks); MSG names
	 * the cause. Its id is no longer valid. */
	void (*on_error)(void *ctx, uint64_t user_data, uint64_t session, int err, const char *msg);
};

struct sched_opts {
	size_t size;                /* sizeof(struct sched_opts) */
	uint32_t max_requests;      /* waiting + running; 0 = 1024 */
	uint32_t max_running;       /* sequences per step; 0 = 64; <= model_opts.max_seqs */
	uint32_t max_batch_tokens;  /* tokens per step; 0 = 512; > max_running, <= model_opts.max_batch_tokens */
	uint32_t ctx;               /* tokens per sequence; 0 = the model's; capped by the pool */
	const struct tenant_table *tenants; /* copied; NULL = one default tenant */
	const struct sched_events *ev;      /* copied; required */
	void *ev_ctx;
};

/* Creates a scheduler over model M and its pool KV (both outlive it).
 * -EINVAL names a bad option in ERR; -ENOMEM. */
int sched_create(struct model *m, struct kv_cache *kv, const struct sched_opts *o,
		 struct sched **ret, char *err, size_t errlen);
void sched_free(struct sched *s); /* accepts NULL; ends nothing, reports nothing */

struct sched_req_params {
	size_t size;                /* sizeof(struct sched_req_params) */
	const int32_t *prompt;      /* token ids (BOS included if wanted); copied */
	uint32_t n_prompt;
	struct sampler_params sampling;
	uint32_t max_tokens;        /* 0 = until the context is full */
	const char *const *stop;    /* stop strings, copied (see textout.h limits) */
	const uint32_t *stop_len;
	uint32_t n_stop;
	enum sched_prio priority;
	uint64_t deadline_us;       /* sched_now_us() clock; 0 = none */
	bool ignore_eos;            /* never sample an end-of-generation token: run to max_tokens */
};

/* Queues a request of TENANT (a name in the current table) for SESSION.
 * A table given to sched_set_tenants() before this call is in force.
 * Returns 0 and the request id in *RET_ID (may be NULL), or a negative errno
 * with a message in ERR and no event ever: -EINVAL bad parameter, -E2BIG
 * prompt does not fit the context, -ENOENT unknown tenant, -EACCES tenant not
 * allowed, -EDQUOT tenant's max_inflight or max_kv_blocks, -EAGAIN
 * max_requests in flight, -ESHUTDOWN after sched_shutdown(), -ENOMEM.
 * Every accepted request ends with exactly one on_done or on_error. */
int sched_submit(struct sched *s, const struct sched_req_params *p, const char *tenant,
		 uint64_t session, uint64_t user_data, uint64_t *ret_id, char *err, size_t errlen);

/* Cancels one request (ends with SCHED_FINISH_CANCEL at the next step
 * boundary, blocks freed then). -ENOENT if ID is not in flight. */
int sched_cancel(struct sched *s, uint64_t id);
/* Cancels every request of SESSION (hangup); returns how many. */
uint32_t sched_cancel_session(struct sched *s, uint64_t session);

/* One engine iteration. Returns the number of tokens computed (0 when
 * nothing could run: idle, or every runnable request blocked by can_emit),
 * or a negative errno if the model step failed (its requests got on_error,
 * the rest goes on). */
int sched_step(struct sched *s);

/* True when no request is in flight and nothing is pending. */
bool sched_idle(const struct sched *s);

/* Earliest deadline or shutdown time (sched_now_us clock) among requests in
 * flight, or 0: an idle engine thread should wake by then. */
uint64_t sched_next_wakeup_us(const struct sched *s);

/* Stops admitting: sched_submit() returns -ESHUTDOWN, and requests that never
 * started end now with SCHED_FINISH_SHUTDOWN (reported from inside this
 * call). Requests that started go on for GRACE_MS, then end the same way at
 * a step boundary. */
void sched_shutdown(struct sched *s, uint32_t grace_ms);

/* Replaces the tenant policy; callable from any thread. The engine thread
 * applies it at its next step boundary: tenants are matched by name, so
 * counters and queued requests carry over; requests of a tenant that is gone
 * finish under its old policy. */
int sched_set_tenants(struct sched *s, const struct tenant_table *tt);

struct sched_tenant_stats {
	char name[TENANT_NAME_MAX];
	bool live;                  /* in the current table (false: retiring) */
	uint32_t running, waiting, kv_blocks;
	uint64_t tokens_prefilled, tokens_generated, requests_done, preemptions;
};

struct sched_stats {
	uint32_t requests_running, requests_waiting;
	uint64_t tokens_prefilled, tokens_generated;
	uint32_t kv_blocks_total, kv_blocks_used, kv_blocks_cached;
	uint64_t prefix_hit_tokens, preemptions, steps;
	uint32_t ctx;               /* effective tokens per sequence */
	uint32_t n_tenants;
	struct sched_tenant_stats tenants[2 * TENANT_MAX];
};

/* Engine thread only. */
void sched_get_stats(const struct sched *s, struct sched_stats *ret);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t sched_now_us(void);
