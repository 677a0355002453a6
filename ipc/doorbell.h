/* Doorbells: eventfds plus the need-wakeup protocol of IPC.md, in both
 * directions. A doorbell is a hint, the ring is the truth: wakes coalesce,
 * sleepers drain until empty, spurious wakes are harmless.
 *
 * Submit direction (client produces SQEs, engine consumes):
 *   client:  publish sq.tail; gi_db_submit_kick()   -> full fence, read
 *            daemon_flags, ring only if NEED_WAKEUP.
 *   engine:  gi_db_engine_arm() -> set NEED_WAKEUP, full fence; re-check every
 *            sq.tail; sleep only if all are empty; gi_db_engine_disarm() on wake.
 * Completion direction (engine produces CQEs, client consumes):
 *   client:  gi_db_client_arm() -> bump cq_wait_seq, full fence; re-check
 *            cq.tail; sleep only if empty; gi_db_drain() after waking.
 *   engine:  publish cq.tail; gi_db_complete_kick() -> full fence, read
 *            cq_wait_seq, ring only if it changed since the last ring.
 * CQ full (the engine cannot answer more SQEs): the engine's arm also
 * re-reads cq.head after its fence and sleeps if the CQ is still full; the
 * client, after reaping from a full CQ, does the submit kick (fence, check
 * NEED_WAKEUP, ring). Same Dekker pair, with cq.head in place of sq.tail.
 * So a side that keeps busy-polling costs the other no syscall, and each
 * sleep costs at most one eventfd write.
 *
 * Building with -DGI_IPC_NO_FULL_FENCE removes the full fences (only a
 * compiler barrier is left) so the lost-wakeup stress test can show that it
 * detects their absence. Never ship such a build. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Creates a doorbell eventfd (EFD_NONBLOCK | EFD_CLOEXEC). Returns the fd or
 * a negative errno. */
int gi_db_create(void);

/* Adds one to the eventfd counter. EAGAIN (counter saturated, i.e. already
 * rung) counts as success. Returns 0 or a negative errno. */
int gi_db_ring(int efd);

/* Reads (resets) the eventfd counter. Returns 1 if it was rung, 0 if not,
 * or a negative errno. */
int gi_db_drain(int efd);

/* Waits until FD is readable, up to TIMEOUT_MS (-1 = forever). Returns 1 if
 * readable, 0 on timeout, a negative errno on error (EINTR is retried). */
int gi_db_wait(int fd, int timeout_ms);

/* Client, after publishing sq.tail: full fence, then ring SUBMIT_EFD if the
 * engine set NEED_WAKEUP. Returns 1 if it rang, 0 if not needed, or a
 * negative errno from the write. */
int gi_db_submit_kick(const uint32_t *daemon_flags, int submit_efd);

/* Engine, going idle: publishes FLAGS | NEED_WAKEUP to *DAEMON_FLAGS (its own
 * word; FLAGS is the daemon's private copy of the other bits), then a full
 * fence. The caller must then re-check the SQ tail before sleeping. */
void gi_db_engine_arm(uint32_t *daemon_flags, uint32_t flags);
/* Engine, awake again: publishes FLAGS without NEED_WAKEUP. */
void gi_db_engine_disarm(uint32_t *daemon_flags, uint32_t flags);

/* Client, about to sleep on the completion doorbell: increments *SEQ (the
 * client's private shadow of cq_wait_seq), publishes it, full fence. The
 * caller must then re-check the CQ tail before sleeping. */
void gi_db_client_arm(uint32_t *cq_wait_seq, uint32_t *seq);

/* Engine, after publishing cq.tail: full fence, read cq_wait_seq; if it
 * differs from *LAST_RUNG (daemon-private), ring COMPLETE_EFD and remember
 * it. Returns 1 if it rang, 0 if not needed, or a negative errno. */
int gi_db_complete_kick(const uint32_t *cq_wait_seq, uint32_t *last_rung, int complete_efd);
