/* Client side of one session's shared memory: submit SQEs (ringing the
 * engine only when it sleeps), reap CQEs, arm and take a sleep on the
 * completion doorbell, allocate request blobs in the arena. libgiclient is a
 * thin layer over this. Not thread-safe: the caller serialises submitters
 * and reapers (each side may have its own lock). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "ipc/arena.h"
#include "ipc/ring.h"
#include "ipc/session.h"
#include "ipc/wire.h"

struct gi_cli {
	struct gi_region region;   /* the client's mapping (not owned) */
	struct gi_ring_prod sq;
	struct gi_ring_cons cq;
	struct gi_arena arena;
	int submit_efd;            /* not owned */
	int complete_efd;          /* not owned */
	uint32_t wait_seq;         /* private shadow of cq_wait_seq */
	uint64_t n_kicks;          /* submit doorbell writes made */
};

/* Binds C to REGION (from gi_region_attach). Reads the initial counters from
 * the region (the daemon set them; no index has moved before hand-over). */
int gi_cli_init(struct gi_cli *c, const struct gi_region *region, int submit_efd, int complete_efd);
void gi_cli_fini(struct gi_cli *c); /* accepts a zeroed gi_cli */

/* Reserves LEN arena bytes for a request blob; *RET_PTR is where to write it
 * and *RET_OFF goes into sqe.req.arena_off. Reclaims what the engine has
 * consumed first. -EAGAIN if the arena is busy, -E2BIG if LEN never fits. */
int gi_cli_arena_alloc(struct gi_cli *c, uint32_t len, uint32_t *ret_off, uint8_t **ret_ptr);

/* Free SQ slots, or -EPROTO. */
int gi_cli_sq_space(struct gi_cli *c);
/* The I-th free SQ slot, to fill in place (I < gi_cli_sq_space()). */
struct gi_sqe *gi_cli_sqe(struct gi_cli *c, uint32_t i);
/* Publishes N filled slots and rings the engine if it sleeps. Returns 0 or
 * a negative errno from the doorbell write. */
int gi_cli_commit(struct gi_cli *c, uint32_t n);
/* Copies up to N SQEs in and commits them. Returns the number submitted,
 * -EAGAIN if the SQ is full, or a negative errno. */
int gi_cli_submit(struct gi_cli *c, const struct gi_sqe *sqes, uint32_t n);

/* Copies up to MAX available events to OUT. Returns the count or -EPROTO.
 * Reaping from a full CQ rings the engine if it sleeps (it may be holding
 * SQEs it could not answer), so this can return a doorbell write's -errno. */
int gi_cli_reap(struct gi_cli *c, struct gi_cqe *out, uint32_t max);

/* Before sleeping on the completion doorbell (or gi_conn_fd): arms the
 * wakeup (cq_wait_seq) and re-checks the CQ. Returns 0 if the CQ is empty and
 * the caller may sleep, 1 if events are waiting (do not sleep), -EPROTO. */
int gi_cli_prepare_sleep(struct gi_cli *c);

/* After waking: resets the completion doorbell. */
int gi_cli_after_wake(struct gi_cli *c);

/* Waits for events: spins up to SPIN_NS re-checking the CQ, then arms and
 * sleeps on the completion doorbell up to TIMEOUT_MS (-1 = forever).
 * Returns 1 when events are available, 0 on timeout, a negative errno. */
int gi_cli_wait(struct gi_cli *c, uint64_t spin_ns, int timeout_ms);

/* Current daemon flags (GI_DFLAG_*) and heartbeat (ms). */
uint32_t gi_cli_daemon_flags(const struct gi_cli *c);
uint64_t gi_cli_heartbeat(const struct gi_cli *c);
