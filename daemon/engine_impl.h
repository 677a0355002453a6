/* Internals of the engine thread shared by engine_loop.c (thread, commands,
 * idle policy, stats) and engine_req.c (requests in, events out). */
#pragma once
#include <pthread.h>
#include <stdatomic.h>

#include "daemon/chatprompt.h"
#include "daemon/engine_loop.h"
#include "daemon/sched.h"
#include "daemon/session.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

struct engine_cmd;

/* A session the engine failed, waiting for the I/O thread to drop it. */
struct engine_failed {
	uint64_t id;
	char reason[160];
	struct engine_failed *next;
};

struct engine {
	struct model *model;
	const struct model_info *info;
	const struct tokenizer *tok;
	struct sched *sched;
	const struct gid_config *cfg;
	struct gi_limits limits;
	struct tenant_table tenants;   /* engine thread's copy, for re-matching sessions */

	pthread_t thread;
	bool started;
	atomic_bool quit;
	atomic_bool cmd_pending;
	atomic_bool tenants_pending;   /* tnext holds a table the engine has not taken */
	atomic_bool stopped;
	atomic_uint_fast64_t alive_ms;
	int epfd;
	int wake_efd;                  /* I/O -> engine: commands waiting */
	int event_efd;                 /* engine -> I/O: failed sessions, stopped */

	pthread_mutex_t lock;          /* cmds, failed, stats, tnext */
	struct tenant_table tnext;     /* latest table from the I/O thread */
	struct engine_cmd *cmds, **cmds_tail;
	struct engine_failed *failed;
	struct gid_stats stats;
	uint64_t stats_ms;             /* when the snapshot was refreshed */

	/* Engine thread only. */
	struct session **sess;
	uint32_t n_sess, cap_sess;
	bool shutting_down;
	uint64_t started_ms;
	uint32_t blocked_ms;           /* poll interval while streams wait on full CQs */
	uint64_t sessions_total, protocol_errors;
	uint64_t requests_total, requests_rejected, requests_done, requests_cancelled;
	uint64_t requests_stalled;
	struct prompt_buf pb;          /* prompt ids and chat template text */
	struct sched_stats sst;        /* scratch for the snapshot */
};

/* engine_req.c */
extern const struct sched_events engine_sched_events;
/* gi_srv_fn for gi_srv_poll: one valid SUBMIT or CANCEL SQE of a session. */
int engine_on_sqe(void *ctx, struct gi_srv *srv, const struct gi_srv_req *req);
/* Ends the requests of every session that has held back their events for
 * stall_timeout_ms (its CQ stayed too full); each ends with -ETIMEDOUT. */
void engine_check_stalls(struct engine *e, uint64_t now_ms);

/* engine_cmd.c */
/* Marks S failed for a protocol violation: cancels its requests, takes its
 * doorbell out of epoll and asks the I/O thread to drop it. */
void engine_fail_session(struct engine *e, struct session *s);
/* Hands a tenant table the I/O thread set since the last call to the
 * scheduler and re-matches the sessions; cheap when there is none. Called
 * before every SUBMIT, so a request sent after a reload finished gets the
 * new policy even if the engine was mid-iteration. */
void engine_take_tenants(struct engine *e);
/* Runs the commands queued by the I/O thread. */
void engine_run_cmds(struct engine *e);
/* Frees sessions whose socket is gone and whose requests have all ended. */
void engine_sweep_sessions(struct engine *e);
/* A session's submit doorbell in / out of the epoll set (mute). */
int engine_epoll_add(struct engine *e, struct session *s);
void engine_epoll_del(struct engine *e, struct session *s);
/* Frees queued commands and failure notices (engine_destroy). */
void engine_cmds_free(struct engine *e);
