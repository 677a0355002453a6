/* Lost-wakeup stress harness, shared by test_wakeup_mt.c (real doorbells) and
 * test_wakeup_nofence.c (doorbell.c built with -DGI_IPC_NO_FULL_FENCE).
 *
 * A client thread and an engine thread ping-pong NOP SQEs/CQEs over a real
 * session region through gi_cli/gi_srv, with random pauses so both race
 * through their sleep paths (arm, fence, re-check, sleep) in every order,
 * each thread pinned to its own CPU so that they really run at once.
 * Each sleep has a short poll timeout. When it expires, the sleeper checks
 * whether a wakeup was lost, exactly: records are waiting, the producer has
 * finished its "ring or not" decision for all of them (it publishes a
 * counter after deciding), and the doorbell is still not rung. With the
 * fences in place that state is impossible; without them it is the bug. */
#pragma once
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "ipc/atomics.h"
#include "ipc/cli.h"
#include "ipc/doorbell.h"
#include "ipc/session.h"
#include "ipc/srv.h"
#include "tests/t_util.h"

struct ws_ctx {
	struct gi_region dregion, cregion;
	struct gi_srv srv;
	struct gi_cli cli;
	int memfd, sub_efd, cmp_efd;
	int timeout_ms;
	double seconds;
	uint32_t stop;            /* client -> engine */
	uint32_t sq_decided;      /* client: sq tail whose kick decision is made */
	uint32_t cq_decided;      /* engine: cq tail whose kick decision is made */
	/* results */
	uint64_t round_trips, engine_sleeps, client_sleeps, engine_timeouts, client_timeouts;
	uint64_t lost_sq, lost_cq;
	int client_err, engine_err;
};

static uint64_t ws_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void ws_pause(uint64_t *rng)
{
	uint64_t r = ws_rand(rng);
	/* Half of the time no pause, rarely a yield, else a spin that is either
	 * uniform up to 400 PAUSEs or log-uniform from 1 to 512, so the two
	 * sides' store/load pairs line up at every scale. */
	if (r & 1)
		return;
	if ((r & 0x3fe) == 2) {
		sched_yield();
		return;
	}
	unsigned n;
	if (r & 2)
		n = (unsigned)((r >> 10) % 400);
	else
		n = (unsigned)((r >> 20) & ((1u << ((r >> 10) % 7)) - 1));
	for (; n; n--)
		gi_cpu_relax();
}


static double ws_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *ws_engine(void *arg)
{
	struct ws_ctx *x = arg;
	struct gi_srv *s = &x->srv;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	t_pin_nth_cpu(0);
	while (!gi_load_acquire(&x->stop)) {
		int r = gi_srv_poll(s, 64, NULL, NULL);
		if (r < 0) {
			x->engine_err = r;
			break;
		}
		if (r > 0) {
			gi_srv_kick(s);
			/* Decision for every CQE up to local_tail is made. */
			gi_store_release(&x->cq_decided, s->cq.local_tail);
			ws_pause(&rng);
			continue;
		}
		ws_pause(&rng);
		r = gi_srv_arm(s);
		if (r != 0) {
			gi_srv_disarm(s);
			if (r < 0) {
				x->engine_err = r;
				break;
			}
			continue;
		}
		x->engine_sleeps++;
		r = gi_db_wait(x->sub_efd, x->timeout_ms);
		if (r == 0) {
			x->engine_timeouts++;
			int avail = gi_ring_cons_avail(&s->sq, 1);
			uint32_t decided = gi_load_acquire(&x->sq_decided);
			if (avail > 0 && decided == s->sq.cached_tail && gi_db_drain(x->sub_efd) == 0)
				x->lost_sq++;
		} else {
			gi_db_drain(x->sub_efd);
		}
		gi_srv_disarm(s);
	}
	return NULL;
}

static void *ws_client(void *arg)
{
	struct ws_ctx *x = arg;
	struct gi_cli *c = &x->cli;
	uint64_t rng = 0x2545f4914f6cdd1dull;
	t_pin_nth_cpu(1);
	uint64_t echo = 0, expect = 0;
	double end = ws_now() + x->seconds;
	while (ws_now() < end) {
		uint32_t n = 1 + (uint32_t)(ws_rand(&rng) % 4);
		struct gi_sqe sqes[4] = { 0 };
		for (uint32_t i = 0; i < n; i++)
			sqes[i] = (struct gi_sqe){ .opcode = GI_OP_NOP, .user_data = echo, .nop.echo = echo };
		echo++;
		int r = gi_cli_submit(c, sqes, n);
		if (r != (int)n) {
			x->client_err = r < 0 ? r : -EAGAIN;
			break;
		}
		gi_store_release(&x->sq_decided, c->sq.local_tail);
		ws_pause(&rng);
		uint32_t got = 0;
		while (got < n && !x->client_err) {
			struct gi_cqe cqe[4];
			r = gi_cli_reap(c, cqe, n - got);
			if (r < 0) {
				x->client_err = r;
				break;
			}
			for (int i = 0; i < r; i++)
				if (cqe[i].kind != GI_CQE_NOP || cqe[i].nop.echo != expect)
					x->client_err = -EBADMSG;
			got += (uint32_t)r;
			if (got == n || r > 0)
				continue;
			ws_pause(&rng);
			r = gi_cli_prepare_sleep(c);
			if (r != 0) {
				if (r < 0)
					x->client_err = r;
				continue;
			}
			x->client_sleeps++;
			r = gi_db_wait(x->cmp_efd, x->timeout_ms);
			if (r == 0) {
				x->client_timeouts++;
				int avail = gi_ring_cons_avail(&c->cq, 1);
				uint32_t decided = gi_load_acquire(&x->cq_decided);
				if (avail > 0 && decided == c->cq.cached_tail && gi_db_drain(x->cmp_efd) == 0)
					x->lost_cq++;
			} else {
				gi_cli_after_wake(c);
			}
		}
		expect++;
		x->round_trips++;
		if (x->client_err)
			break;
	}
	gi_store_release(&x->stop, 1);
	gi_db_ring(x->sub_efd);
	return NULL;
}

/* Runs the harness for SECONDS with sleeps timing out after TIMEOUT_MS.
 * Returns 0, or -1 if the setup failed (no ck_assert here: t_suite() of the
 * no-fence test calls it outside any test). */
static int ws_run(struct ws_ctx *x, double seconds, int timeout_ms)
{
	*x = (struct ws_ctx){ .seconds = seconds, .timeout_ms = timeout_ms };
	/* Counters start near UINT32_MAX so the run also crosses the wrap. */
	struct gi_region_params p = { .sq_entries = 8, .cq_entries = 32, .arena_size = 4096,
				      .session_id = 7, .start_index = UINT32_MAX - 100 };
	struct gi_limits lim = { .max_prompt_bytes = 1024, .max_stop_strings = 4, .max_stop_len = 32 };
	if (gi_region_create(&p, &x->memfd, &x->dregion))
		return -1;
	x->sub_efd = gi_db_create();
	x->cmp_efd = gi_db_create();
	int err = x->sub_efd < 0 || x->cmp_efd < 0 ||
		  gi_region_attach(x->memfd, &x->dregion.layout, 7, &x->cregion) ||
		  gi_srv_init(&x->srv, &x->dregion, &lim, p.start_index, x->sub_efd, x->cmp_efd) ||
		  gi_cli_init(&x->cli, &x->cregion, x->sub_efd, x->cmp_efd);
	x->sq_decided = x->cq_decided = p.start_index;
	pthread_t te, tc;
	if (!err && pthread_create(&te, NULL, ws_engine, x) == 0) {
		if (pthread_create(&tc, NULL, ws_client, x) == 0) {
			pthread_join(tc, NULL);
		} else {
			gi_store_release(&x->stop, 1);
			gi_db_ring(x->sub_efd);
			err = 1;
		}
		pthread_join(te, NULL);
	} else {
		err = 1;
	}
	printf("wakeup stress: %.1f s, %llu round trips, %llu engine sleeps, %llu client sleeps, "
	       "%llu timeouts, lost wakeups: %llu submit-side, %llu completion-side\n",
	       seconds, (unsigned long long)x->round_trips, (unsigned long long)x->engine_sleeps,
	       (unsigned long long)x->client_sleeps,
	       (unsigned long long)(x->engine_timeouts + x->client_timeouts),
	       (unsigned long long)x->lost_sq, (unsigned long long)x->lost_cq);
	fflush(stdout);
	gi_cli_fini(&x->cli);
	gi_srv_fini(&x->srv);
	gi_region_release(&x->cregion);
	gi_region_release(&x->dregion);
	close(x->memfd);
	close(x->sub_efd);
	close(x->cmp_efd);
	return err ? -1 : 0;
}
