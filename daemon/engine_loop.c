/* The engine thread: its loop, the idle policy (spin, then need-wakeup and
 * epoll), the stats snapshot and its life cycle (see engine_loop.h). */
#include "daemon/engine_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "ipc/atomics.h"
#include "ipc/doorbell.h"

#define SQE_QUOTA 64            /* SQEs per session per iteration */
#define SPURIOUS_LIMIT 256      /* empty doorbell rings before the doorbell is muted */
#define MUTE_MS 200
#define MUTE_LIMIT 5            /* mutes before the session is dropped */
#define IDLE_TICK_MS 500        /* an idle engine still turns this often (watchdog) */
#define BLOCKED_POLL_MS 1       /* every runnable request waits for a CQ to drain: */
#define BLOCKED_POLL_MAX_MS 8   /* poll again, backing off while nothing moves */
#define STATS_EVERY_MS 2

uint64_t gid_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gid_now_ms(void)
{
	return gid_now_us() / 1000u;
}

/* ---- stats ---- */

static void refresh_stats(struct engine *e, uint64_t now_ms)
{
	struct sched_stats *ss = &e->sst;
	sched_get_stats(e->sched, ss);
	pthread_mutex_lock(&e->lock);
	struct gid_stats *st = &e->stats;
	st->sessions = 0;
	for (uint32_t i = 0; i < e->n_sess; i++)
		st->sessions += !e->sess[i]->dropped;
	st->sessions_total = e->sessions_total;
	st->protocol_errors = e->protocol_errors;
	st->requests_total = e->requests_total;
	st->requests_rejected = e->requests_rejected;
	st->requests_done = e->requests_done;
	st->requests_cancelled = e->requests_cancelled;
	st->requests_stalled = e->requests_stalled;
	st->requests_running = ss->requests_running;
	st->requests_waiting = ss->requests_waiting;
	st->tokens_prompt = ss->tokens_prefilled;
	st->tokens_generated = ss->tokens_generated;
	st->prefix_hit_tokens = ss->prefix_hit_tokens;
	st->preemptions = ss->preemptions;
	st->steps = ss->steps;
	st->kv_block_tokens = KV_BLOCK_TOKENS;
	st->kv_blocks_total = ss->kv_blocks_total;
	st->kv_blocks_used = ss->kv_blocks_used;
	st->kv_blocks_cached = ss->kv_blocks_cached;
	st->kv_blocks_free = ss->kv_blocks_total - ss->kv_blocks_used - ss->kv_blocks_cached;
	st->n_tenants = 0;
	for (uint32_t i = 0; i < ss->n_tenants && st->n_tenants < TENANT_MAX; i++) {
		const struct sched_tenant_stats *t = &ss->tenants[i];
		struct gid_tenant_stats *o = &st->tenants[st->n_tenants++];
		memset(o, 0, sizeof(*o));
		memcpy(o->name, t->name, sizeof(o->name));
		o->name[sizeof(o->name) - 1] = 0;
		o->requests_running = t->running;
		o->requests_waiting = t->waiting;
		o->requests_total = t->requests_done + t->running + t->waiting;
		o->tokens_prompt = t->tokens_prefilled;
		o->tokens_generated = t->tokens_generated;
		o->kv_blocks = t->kv_blocks;
		int k = tenant_table_find(&e->tenants, t->name);
		o->weight = k >= 0 ? e->tenants.t[k].weight : 0;
		for (uint32_t j = 0; j < e->n_sess; j++)
			o->sessions += !e->sess[j]->dropped && !strcmp(e->sess[j]->tenant, t->name);
	}
	pthread_mutex_unlock(&e->lock);
	e->stats_ms = now_ms;
}

/* ---- the loop ---- */

/* Drains every live session's SQ; returns how many SQEs were taken. */
static uint32_t poll_sessions(struct engine *e)
{
	uint32_t total = 0;
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		s->reserved = 0;
		if (s->dead)
			continue;
		if (session_backlog_flush(s) == -EPROTO) {
			engine_fail_session(e, s);
			continue;
		}
		uint64_t bad = s->srv.n_bad_sqes;
		int r = gi_srv_poll(&s->srv, SQE_QUOTA, engine_on_sqe, e);
		e->requests_rejected += s->srv.n_bad_sqes - bad;
		if (r < 0)
			engine_fail_session(e, s);
		else if (r > 0) {
			total += (uint32_t)r;
			s->spurious = 0;
		}
	}
	return total;
}

static void kick_sessions(struct engine *e, uint64_t now_ms)
{
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		if (s->dead)
			continue;
		if (s->posted) {
			s->posted = false;
			gi_srv_kick(&s->srv);
		}
		gi_srv_heartbeat(&s->srv, now_ms);
	}
}

/* Anything for the engine without a syscall: a command, or SQEs the reader
 * can take (each needs a free CQ slot; SQEs behind a full CQ wait for the
 * client, whose reap rings us). */
static bool work_pending(struct engine *e)
{
	if (atomic_load(&e->cmd_pending))
		return true;
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		if (!s->dead && gi_ring_cons_avail(&s->srv.sq, 1) != 0 &&
		    gi_ring_prod_space(&s->srv.cq, 1) != 0)
			return true;
	}
	return false;
}

/* Sets NEED_WAKEUP everywhere; returns false if work arrived meanwhile. */
static bool arm_all(struct engine *e)
{
	bool ok = true;
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		if (!s->dead && gi_srv_arm(&s->srv) != 0)
			ok = false;
	}
	return ok && !atomic_load(&e->cmd_pending);
}

static void disarm_all(struct engine *e)
{
	for (uint32_t i = 0; i < e->n_sess; i++)
		if (!e->sess[i]->dead)
			gi_srv_disarm(&e->sess[i]->srv);
}

static void unmute(struct engine *e, uint64_t now_ms, int *timeout)
{
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		if (s->dead || !s->muted)
			continue;
		if (now_ms >= s->muted_until_ms) {
			s->spurious = 0;
			engine_epoll_add(e, s);
		} else if ((int)(s->muted_until_ms - now_ms) < *timeout) {
			*timeout = (int)(s->muted_until_ms - now_ms);
		}
	}
}

/* A doorbell rang: a ring with nothing new in the SQ while we slept is
 * spurious; a session that keeps doing that is muted, then dropped. */
static void doorbell(struct engine *e, struct session *s, uint64_t now_ms)
{
	gi_db_drain(s->submit_efd);
	if (s->dead || gi_ring_cons_avail(&s->srv.sq, 1) != 0)
		return;
	if (++s->spurious < SPURIOUS_LIMIT)
		return;
	if (++s->mutes > MUTE_LIMIT) {
		engine_fail_session(e, s);
		return;
	}
	log_info("session %llu: %u empty doorbell rings, muted for %d ms", (unsigned long long)s->id,
		 s->spurious, MUTE_MS);
	engine_epoll_del(e, s);
	s->muted_until_ms = now_ms + MUTE_MS;
}

static void sleep_idle(struct engine *e, bool blocked)
{
	uint64_t now = gid_now_ms();
	int timeout = blocked ? (int)e->blocked_ms : IDLE_TICK_MS;
	if (blocked && e->blocked_ms < BLOCKED_POLL_MAX_MS)
		e->blocked_ms *= 2;
	uint64_t wake = sched_next_wakeup_us(e->sched);
	if (wake) {
		uint64_t t = sched_now_us();
		int ms = wake > t ? (int)((wake - t + 999) / 1000) : 0;
		if (ms < timeout)
			timeout = ms;
	}
	unmute(e, now, &timeout);
	if (!arm_all(e)) {
		disarm_all(e);
		return;
	}
	refresh_stats(e, now);
	struct epoll_event evs[64];
	int n = epoll_wait(e->epfd, evs, 64, timeout);
	disarm_all(e);
	now = gid_now_ms();
	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr == NULL)
			gi_db_drain(e->wake_efd);
		else
			doorbell(e, evs[i].data.ptr, now);
	}
}

/* Spins up to idle_spin_us for new work before the caller sleeps. */
static bool spin_for_work(struct engine *e)
{
	uint64_t spin = e->cfg->idle_spin_us;
	if (!spin)
		return false;
	uint64_t end = gid_now_us() + spin;
	do {
		for (int i = 0; i < 32; i++)
			gi_cpu_relax();
		if (work_pending(e))
			return true;
	} while (gid_now_us() < end);
	return false;
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	while (!atomic_load(&e->quit)) {
		uint64_t now = gid_now_ms();
		atomic_store(&e->alive_ms, now);
		if (atomic_load(&e->cmd_pending))
			engine_run_cmds(e);
		uint32_t taken = poll_sessions(e);
		engine_check_stalls(e, now);
		int tokens = 0;
		bool idle = sched_idle(e->sched);
		if (!idle) {
			tokens = sched_step(e->sched);
			if (tokens < 0)
				log_err("engine step failed: %s", strerror(-tokens));
		}
		kick_sessions(e, now);
		engine_sweep_sessions(e);
		if (now - e->stats_ms >= STATS_EVERY_MS)
			refresh_stats(e, now);
		if (e->shutting_down && sched_idle(e->sched) && !atomic_load(&e->stopped)) {
			refresh_stats(e, now);
			atomic_store(&e->stopped, true);
			gi_db_ring(e->event_efd);
		}
		if (taken || tokens > 0 || atomic_load(&e->cmd_pending)) {
			e->blocked_ms = BLOCKED_POLL_MS;
			continue;
		}
		/* Nothing ran: either nothing is in flight (spin a little, then
		 * sleep until a doorbell), or every runnable request waits for
		 * its client to drain the CQ (poll again shortly). */
		if (idle && spin_for_work(e))
			continue;
		sleep_idle(e, !sched_idle(e->sched));
	}
	return NULL;
}

/* ---- life cycle ---- */

int engine_create(const struct engine_opts *o, struct engine **ret, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->model = o->model;
	e->info = model_get_info(o->model);
	e->tok = model_tokenizer(o->model);
	e->cfg = o->cfg;
	e->limits = o->limits;
	e->tenants = o->cfg->tenants;
	e->epfd = e->wake_efd = e->event_efd = -1;
	e->cmds_tail = &e->cmds;
	e->started_ms = gid_now_ms();
	e->blocked_ms = BLOCKED_POLL_MS;
	pthread_mutex_init(&e->lock, NULL);
	snprintf(e->stats.model, sizeof(e->stats.model), "%s", e->info->name);
	snprintf(e->stats.backend, sizeof(e->stats.backend), "%s", e->info->backend);
	int r;
	struct sched_opts so = {
		.size = sizeof(so),
		.max_requests = 1024 > o->cfg->max_sessions * 4 ? 1024 : o->cfg->max_sessions * 4,
		.max_running = o->cfg->max_running,
		.max_batch_tokens = o->cfg->max_batch_tokens,
		.ctx = o->limits.n_ctx,
		.tenants = &o->cfg->tenants,
		.ev = &engine_sched_events,
		.ev_ctx = e,
	};
	r = sched_create(o->model, o->kv, &so, &e->sched, err, errlen);
	if (r < 0)
		goto fail;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->wake_efd = gi_db_create();
	e->event_efd = gi_db_create();
	if (e->epfd < 0 || e->wake_efd < 0 || e->event_efd < 0) {
		r = e->epfd < 0 ? -errno : e->wake_efd < 0 ? e->wake_efd : e->event_efd;
		snprintf(err, errlen, "engine epoll/eventfds: %s", strerror(-r));
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wake_efd, &ev) < 0) {
		r = -errno;
		snprintf(err, errlen, "engine epoll: %s", strerror(-r));
		goto fail;
	}
	refresh_stats(e, gid_now_ms());
	*ret = e;
	return 0;
fail:
	engine_destroy(e);
	return r;
}

int engine_start(struct engine *e)
{
	atomic_store(&e->alive_ms, gid_now_ms());
	int r = pthread_create(&e->thread, NULL, engine_main, e);
	if (r)
		return -r;
	e->started = true;
	return 0;
}

void engine_destroy(struct engine *e)
{
	if (!e)
		return;
	if (e->started) {
		atomic_store(&e->quit, true);
		gi_db_ring(e->wake_efd);
		pthread_join(e->thread, NULL);
	}
	/* Requests still held reference sessions: free the scheduler first. */
	sched_free(e->sched);
	for (uint32_t i = 0; i < e->n_sess; i++)
		session_free(e->sess[i]);
	free(e->sess);
	engine_cmds_free(e);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->wake_efd >= 0)
		close(e->wake_efd);
	if (e->event_efd >= 0)
		close(e->event_efd);
	prompt_buf_free(&e->pb);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
