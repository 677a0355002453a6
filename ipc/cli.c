/* Client side of a session's shared memory. */
#include "ipc/cli.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

#include "ipc/atomics.h"
#include "ipc/doorbell.h"

int gi_cli_init(struct gi_cli *c, const struct gi_region *region, int submit_efd, int complete_efd)
{
	*c = (struct gi_cli){
		.region = *region,
		.submit_efd = submit_efd,
		.complete_efd = complete_efd,
	};
	const struct gi_layout *l = &region->layout;
	/* Our own words, as the daemon initialised them; nothing has moved yet
	 * (the daemon touches neither ring before our first SQE). */
	uint32_t sq_start = gi_load_relaxed(region->sq_tail);
	uint32_t cq_start = gi_load_relaxed(region->cq_head);
	c->wait_seq = gi_load_relaxed(region->cq_wait_seq);
	int err = gi_ring_prod_init(&c->sq, region->sq_tail, region->sq_head, region->sqes, l->sq_entries,
				    sizeof(struct gi_sqe), sq_start);
	if (!err)
		err = gi_ring_cons_init(&c->cq, region->cq_head, region->cq_tail, region->cqes,
					l->cq_entries, sizeof(struct gi_cqe), cq_start);
	if (!err)
		err = gi_arena_init(&c->arena, region->arena, l->arena_size, l->sq_entries, sq_start);
	return err;
}

void gi_cli_fini(struct gi_cli *c)
{
	gi_arena_fini(&c->arena);
	*c = (struct gi_cli){ 0 };
}

int gi_cli_sq_space(struct gi_cli *c)
{
	return gi_ring_prod_space(&c->sq, 1);
}

int gi_cli_arena_alloc(struct gi_cli *c, uint32_t len, uint32_t *ret_off, uint8_t **ret_ptr)
{
	/* Refresh sq.head (validated by the ring) so consumed blobs are free. */
	int r = gi_ring_prod_space(&c->sq, c->sq.mask + 1);
	if (r < 0)
		return r;
	gi_arena_reclaim(&c->arena, c->sq.cached_head);
	uint32_t off;
	r = gi_arena_alloc(&c->arena, len, &off);
	if (r)
		return r;
	*ret_off = off;
	*ret_ptr = c->arena.base + off;
	return 0;
}

struct gi_sqe *gi_cli_sqe(struct gi_cli *c, uint32_t i)
{
	return gi_ring_prod_slot(&c->sq, i);
}

int gi_cli_commit(struct gi_cli *c, uint32_t n)
{
	if (n == 0)
		return 0;
	/* Every blob allocated so far is released when the last of these SQEs
	 * is consumed. */
	for (uint32_t i = 0; i < n; i++)
		gi_arena_note_commit(&c->arena, c->sq.local_tail + i);
	gi_ring_prod_commit(&c->sq, n);
	int r = gi_db_submit_kick(c->region.daemon_flags, c->submit_efd);
	if (r > 0)
		c->n_kicks++;
	return r < 0 ? r : 0;
}

int gi_cli_submit(struct gi_cli *c, const struct gi_sqe *sqes, uint32_t n)
{
	int space = gi_ring_prod_space(&c->sq, n);
	if (space < 0)
		return space;
	if (space == 0)
		return -EAGAIN;
	if ((uint32_t)space < n)
		n = (uint32_t)space;
	for (uint32_t i = 0; i < n; i++)
		*gi_cli_sqe(c, i) = sqes[i];
	int r = gi_cli_commit(c, n);
	return r < 0 ? r : (int)n;
}

int gi_cli_reap(struct gi_cli *c, struct gi_cqe *out, uint32_t max)
{
	int n = gi_ring_pop(&c->cq, out, max);
	if (n <= 0)
		return n;
	/* Was the CQ full before this pop? (cached_tail is the tail the pop
	 * validated.) Then the engine may be asleep with SQEs it could not
	 * answer: after our cq.head store, the same fence-then-check as a
	 * submit, pairing with the fence in the engine's arm and its cq.head
	 * re-read (gi_srv_arm). */
	if (c->cq.cached_tail - (c->cq.local_head - (uint32_t)n) == c->cq.mask + 1) {
		int r = gi_db_submit_kick(c->region.daemon_flags, c->submit_efd);
		if (r > 0)
			c->n_kicks++;
		if (r < 0)
			return r;
	}
	return n;
}

int gi_cli_prepare_sleep(struct gi_cli *c)
{
	gi_db_client_arm(c->region.cq_wait_seq, &c->wait_seq);
	/* The re-check after the fence in gi_db_client_arm. */
	int avail = gi_ring_cons_avail(&c->cq, 1);
	if (avail < 0)
		return avail;
	return avail > 0;
}

int gi_cli_after_wake(struct gi_cli *c)
{
	int r = gi_db_drain(c->complete_efd);
	return r < 0 ? r : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int gi_cli_wait(struct gi_cli *c, uint64_t spin_ns, int timeout_ms)
{
	int r = gi_ring_cons_avail(&c->cq, 1);
	if (r != 0)
		return r < 0 ? r : 1;
	if (spin_ns) {
		uint64_t end = now_ns() + spin_ns;
		unsigned k = 0;
		do {
			gi_cpu_relax();
			r = gi_ring_cons_avail(&c->cq, 1);
			if (r != 0)
				return r < 0 ? r : 1;
			/* Every ~64 polls, let a runnable task of this CPU go first:
			 * if the engine shares our CPU, spinning would only delay
			 * the very answer we wait for (measured: 107 us instead of
			 * 5 us unpinned). With nothing else runnable it returns at
			 * once. */
			if ((++k & 63) == 0)
				sched_yield();
		} while ((k & 63) || now_ns() < end);
	}
	uint64_t deadline = timeout_ms < 0 ? 0 : now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		r = gi_cli_prepare_sleep(c);
		if (r != 0)
			return r;
		int left = -1;
		if (timeout_ms >= 0) {
			uint64_t t = now_ns();
			left = t >= deadline ? 0 : (int)((deadline - t + 999999u) / 1000000u);
		}
		r = gi_db_wait(c->complete_efd, left);
		if (r <= 0)
			return r;
		r = gi_cli_after_wake(c);
		if (r < 0)
			return r;
		r = gi_ring_cons_avail(&c->cq, 1);
		if (r != 0)
			return r < 0 ? r : 1;
		/* Spurious (a ring meant for an earlier sleep): arm again. */
	}
}

uint32_t gi_cli_daemon_flags(const struct gi_cli *c)
{
	/* Pairs with the store-release in gi_srv_set_shutdown. */
	return gi_load_acquire(c->region.daemon_flags);
}

uint64_t gi_cli_heartbeat(const struct gi_cli *c)
{
	return gi_load_relaxed64(c->region.heartbeat);
}
