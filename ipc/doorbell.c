/* Doorbells and the need-wakeup protocol (IPC.md "Doorbells and need-wakeup").
 *
 * Both directions are the same Dekker pattern: the sleeper stores "I sleep"
 * then loads the ring; the producer stores the ring tail then loads "sleeps?".
 * With a full fence between the store and the load on each side, at least
 * one of them sees the other's store, so either the sleeper sees the new
 * record and does not sleep, or the producer sees the flag and rings.
 *
 *  producer (client submit / engine complete)   sleeper (engine / client)
 *  ------------------------------------------   ------------------------
 *  S1 store-release ring tail                   A1 store flag/seq
 *  S2 full fence           (pairs A2)           A2 full fence      (pairs S2)
 *  S3 load flag/seq                             A3 load ring tail
 *  S4 if set: write eventfd                     A4 if empty: sleep on eventfd
 *
 * Without S2/A2 a CPU may perform S3 before S1 is visible and A3 before A1
 * is visible (store buffering), both loads see old values, and the sleeper
 * waits for a ring that never comes: a lost wakeup. -DGI_IPC_NO_FULL_FENCE
 * builds exactly that, for the stress test that must catch it. */
#include "ipc/doorbell.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ipc/atomics.h"
#include "ipc/wire.h"

#ifdef GI_IPC_NO_FULL_FENCE
#define db_fence() gi_barrier_compiler()
#else
#define db_fence() gi_fence_full()
#endif

int gi_db_create(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int gi_db_ring(int efd)
{
	uint64_t one = 1;
	for (;;) {
		ssize_t w = write(efd, &one, sizeof(one));
		if (w == (ssize_t)sizeof(one))
			return 0;
		if (w < 0 && errno == EINTR)
			continue;
		/* EAGAIN: the counter is at its maximum, i.e. already rung. */
		if (w < 0 && errno == EAGAIN)
			return 0;
		return w < 0 ? -errno : -EIO;
	}
}

int gi_db_drain(int efd)
{
	uint64_t v;
	for (;;) {
		ssize_t r = read(efd, &v, sizeof(v));
		if (r == (ssize_t)sizeof(v))
			return 1;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		return r < 0 ? -errno : -EIO;
	}
}

int gi_db_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	for (;;) {
		int r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0 && (pfd.revents & (POLLERR | POLLNVAL)))
			return -EBADF;
		return r > 0;
	}
}

int gi_db_submit_kick(const uint32_t *daemon_flags, int submit_efd)
{
	/* S2: pairs with the engine's fence A2 in gi_db_engine_arm: either the
	 * engine's re-check sees our tail (S1, done by the caller) or we see its
	 * NEED_WAKEUP below. */
	db_fence();
	if (!(gi_load_relaxed(daemon_flags) & GI_DFLAG_NEED_WAKEUP))
		return 0;
	int r = gi_db_ring(submit_efd);
	return r < 0 ? r : 1;
}

void gi_db_engine_arm(uint32_t *daemon_flags, uint32_t flags)
{
	gi_store_relaxed(daemon_flags, flags | GI_DFLAG_NEED_WAKEUP);
	/* A2: pairs with the client's fence S2 in gi_db_submit_kick: the flag
	 * store is visible before our re-check loads sq.tail. */
	db_fence();
}

void gi_db_engine_disarm(uint32_t *daemon_flags, uint32_t flags)
{
	/* No fence: a client that still sees NEED_WAKEUP rings once more, which
	 * the eventfd counter absorbs. */
	gi_store_relaxed(daemon_flags, flags & ~GI_DFLAG_NEED_WAKEUP);
}

void gi_db_client_arm(uint32_t *cq_wait_seq, uint32_t *seq)
{
	*seq += 1;
	gi_store_relaxed(cq_wait_seq, *seq);
	/* A2: pairs with the engine's fence S2 in gi_db_complete_kick: our new
	 * sequence is visible before our re-check loads cq.tail. */
	db_fence();
}

int gi_db_complete_kick(const uint32_t *cq_wait_seq, uint32_t *last_rung, int complete_efd)
{
	/* S2: pairs with the client's fence A2 in gi_db_client_arm: either the
	 * client's re-check sees our cq.tail or we see its new sequence here. */
	db_fence();
	uint32_t seq = gi_load_relaxed(cq_wait_seq);
	if (seq == *last_rung)
		return 0;
	int r = gi_db_ring(complete_efd);
	if (r < 0)
		return r;
	*last_rung = seq;
	return 1;
}
