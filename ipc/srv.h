/* Daemon side of one session's shared memory: the hardened SQ reader, CQ
 * writer, idle arming and heartbeat. The daemon's engine thread owns a
 * struct gi_srv per session and calls only these on the session's memory,
 * so what the hostile-peer tests exercise is exactly what runs.
 *
 * Everything read from the region is treated as hostile: sq.tail is read
 * once per poll and bounded, each SQE and its arena blob are copied into
 * private memory before validation, cq.head is checked to be monotonic and
 * not past our tail. A bad record gets an ERROR event (-EINVAL) and the
 * session goes on; a bad index is a protocol violation: the gi_srv becomes
 * failed (sticky -EPROTO with a reason) and the daemon drops the session. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "ipc/ring.h"
#include "ipc/session.h"
#include "ipc/wire.h"

struct gi_srv {
	struct gi_region region;   /* the daemon's mapping (not owned) */
	struct gi_ring_cons sq;
	struct gi_ring_prod cq;
	int submit_efd;            /* not owned */
	int complete_efd;          /* not owned */
	uint32_t dflags;           /* private copy of daemon_flags */
	uint32_t last_rung;        /* cq_wait_seq we last rang for */
	bool unkicked;             /* events posted since the last gi_srv_kick */
	bool armed;
	struct gi_limits limits;
	uint8_t *blob;             /* private copy of the current SQE's arena bytes */
	uint32_t blob_cap;
	int error;                 /* 0, or the sticky protocol error */
	char why[160];             /* reason of ERROR */
	uint64_t n_sqes;           /* SQEs consumed */
	uint64_t n_bad_sqes;       /* SQEs answered with an ERROR event */
};

/* A request as handed to the daemon: SQE and blob are private copies. */
struct gi_srv_req {
	struct gi_sqe sqe;
	const uint8_t *prompt;     /* SUBMIT: prompt_len bytes, else NULL */
	uint32_t prompt_len;
	const uint8_t *stops;      /* SUBMIT: stop list, stop_len bytes */
	uint32_t stop_len;
};

/* Called for each valid SUBMIT or CANCEL SQE. The request's memory is valid
 * only during the call. Returns 0 if taken, or a negative errno: the reader
 * then posts an ERROR event with it for that user_data, in the one CQ slot it
 * made sure of before the call (so a callback that posts events itself and
 * then fails may find the CQ full, and that ERROR is not delivered). NOPs are
 * answered by the reader itself. */
typedef int (*gi_srv_fn)(void *ctx, struct gi_srv *s, const struct gi_srv_req *req);

/* Binds S to REGION (created by gi_region_create with counters at START).
 * Allocates the blob buffer from LIM. Does not own the fds. */
int gi_srv_init(struct gi_srv *s, const struct gi_region *region, const struct gi_limits *lim,
		uint32_t start, int submit_efd, int complete_efd);
void gi_srv_fini(struct gi_srv *s); /* accepts a zeroed gi_srv */

/* Consumes up to QUOTA SQEs. Each needs one free CQ slot (for a NOP or ERROR
 * answer), so polling stops early when the CQ is full. If anything was
 * posted meanwhile (the reader's own NOP/ERROR answers, or the callback's
 * events) it ends with gi_srv_kick, so those answers never wait for the
 * caller to remember a kick. Returns the number of SQEs consumed, or -EPROTO
 * once the session failed (s->why says why). */
int gi_srv_poll(struct gi_srv *s, uint32_t quota, gi_srv_fn fn, void *ctx);

/* Publishes up to N events. Returns how many fit (the rest are the caller's
 * backlog), or -EPROTO. Does not ring: call gi_srv_kick once per batch. */
int gi_srv_post(struct gi_srv *s, const struct gi_cqe *cqes, uint32_t n);

/* Longest error reason sent; it travels in GI_CQE_TEXT_MAX-byte pieces. */
#define GI_SRV_REASON_MAX (4 * GI_CQE_TEXT_MAX)
#define GI_SRV_REASON_EVENTS (GI_SRV_REASON_MAX / GI_CQE_TEXT_MAX)

/* Fills EV (room for GI_SRV_REASON_EVENTS) with the ERROR events carrying
 * CODE and REASON (NULL: none) for USER_DATA: every piece but the last has
 * MORE | TEXT_CONT, the last has LAST, like a long token's text. Returns the
 * number of events. */
uint32_t gi_srv_error_events(struct gi_cqe *ev, uint64_t user_data, int code, const char *reason);

/* After posting: rings the completion doorbell if the client armed a sleep
 * since the last ring. A no-op (no fence) when nothing was posted since the
 * last call, so it is cheap to call for every session every step. Returns 1
 * if rung, 0, or a negative errno. */
int gi_srv_kick(struct gi_srv *s);

/* Engine going idle: sets NEED_WAKEUP, full fence, re-checks sq.tail (and
 * cq.head when the CQ looks full). Returns 0 if the session has nothing the
 * reader can take — SQ empty, or SQEs waiting behind a full CQ, which the
 * client's reap will ring about — so it is safe to sleep; 1 if work arrived
 * (caller disarms and keeps running); -EPROTO. */
int gi_srv_arm(struct gi_srv *s);
void gi_srv_disarm(struct gi_srv *s);

/* Sets GI_DFLAG_SHUTDOWN for the client to see. */
void gi_srv_set_shutdown(struct gi_srv *s);

/* Stores the heartbeat (monotonic ms), once per engine step. */
void gi_srv_heartbeat(struct gi_srv *s, uint64_t now_ms);

/* Marks the session failed with -EPROTO and a formatted reason (first one wins). */
int gi_srv_fail(struct gi_srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
