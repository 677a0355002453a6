/* Reading events: CQEs from the backlog or the ring, assembled into whole
 * tokens, and the wait (short busy-poll, then armed sleep on the epoll fd
 * per IPC.md "Doorbells and need-wakeup"). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "client/conn.h"
#include "client/probes.h"
#include "common/grow.h"
#include "ipc/atomics.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ensure(char **buf, size_t *cap, size_t need)
{
	char *n = grow_array(*buf, cap, need, 1, 64);

	if (!n)
		return -ENOMEM;
	*buf = n;
	return 0;
}

/* Hands TEXT (LEN bytes) to the caller through the connection's buffer. */
static int set_text(struct gi_conn *c, struct gi_event *ev, const char *text, size_t len)
{
	if (ensure(&c->evbuf, &c->evcap, len + 1) < 0)
		return -ENOMEM;
	if (len)
		memcpy(c->evbuf, text, len);
	c->evbuf[len] = 0;
	ev->text = c->evbuf;
	ev->text_len = len;
	return 0;
}

static void ev_init(struct gi_event *ev, const struct gi_inflight *r)
{
	memset(ev, 0, sizeof(*ev));
	ev->req = r->id;
	ev->tag = r->tag;
	ev->token = -1;
	ev->text = "";
}

static int protocol_error(struct gi_conn *c, const struct gi_cqe *q, const char *what)
{
	gi_clog(c, GI_LOG_ERROR, "daemon sent a bad event for request %llu: %s (kind %u, flags 0x%x, text_len %u)",
		(unsigned long long)q->user_data, what, q->kind, q->flags, q->text_len);
	gi_conn_set_dead(c, -GI_ERR_PROTOCOL);
	return 0;
}

/* Turns one CQE into an event. Returns 1 if *EV was filled, 0 if the CQE
 * produced nothing for the caller (a text piece, an internal completion),
 * or -ENOMEM. */
static int cqe_to_event(struct gi_conn *c, const struct gi_cqe *q, struct gi_event *ev)
{
	struct gi_inflight *r;
	bool last;
	int ret = 1;

	if (q->user_data & GI_INTERNAL_ID)
		return 0; /* answer to a cancel SQE: the request's own DONE follows */
	r = gi_inflight_find(c, q->user_data);
	if (!r) {
		gi_clog(c, GI_LOG_WARN, "event (kind %u) for request %llu, which is not in flight",
			q->kind, (unsigned long long)q->user_data);
		return 0;
	}
	if (q->text_len > GI_CQE_TEXT_MAX)
		return protocol_error(c, q, "text_len over the event's capacity");
	/* TOKEN text and an ERROR reason may come in TEXT_CONT pieces that
	 * end with a piece without it (LAST for an ERROR). */
	last = (q->flags & GI_CQE_F_LAST) ||
	       (q->kind != GI_CQE_TOKEN && !(q->kind == GI_CQE_ERROR && (q->flags & GI_CQE_F_TEXT_CONT)));
	switch (q->kind) {
	case GI_CQE_TOKEN:
		if (ensure(&r->buf, &r->cap, r->len + q->text_len) < 0)
			return -ENOMEM;
		memcpy(r->buf + r->len, q->text, q->text_len);
		r->len += q->text_len;
		if ((q->flags & GI_CQE_F_TEXT_CONT) && !last)
			return 0;
		ev_init(ev, r);
		ev->kind = GI_EVENT_TOKEN;
		ev->token = q->token;
		ev->logprob = q->logprob;
		if (set_text(c, ev, r->buf, r->len) < 0)
			return -ENOMEM;
		r->len = 0;
		GI_PROBE2(token, ev->req, ev->token);
		break;
	case GI_CQE_DONE:
		ev_init(ev, r);
		ev->kind = GI_EVENT_DONE;
		ev->finish = q->result;
		ev->done.queue_us = q->done.queue_us;
		ev->done.prefill_us = q->done.prefill_us;
		ev->done.decode_us = q->done.decode_us;
		ev->done.n_prompt = q->done.n_prompt;
		ev->done.n_cached = q->done.n_cached;
		ev->done.n_gen = q->done.n_gen;
		GI_PROBE2(done, ev->req, ev->finish);
		break;
	case GI_CQE_ERROR:
		if (!r->err_cont)
			r->len = 0; /* a token's unfinished text, if any, is lost with the request */
		if (ensure(&r->buf, &r->cap, r->len + q->text_len) < 0)
			return -ENOMEM;
		memcpy(r->buf + r->len, q->reason, strnlen(q->reason, q->text_len));
		r->len += strnlen(q->reason, q->text_len);
		r->err_cont = !last;
		if (!last)
			return 0;
		ev_init(ev, r);
		ev->kind = GI_EVENT_ERROR;
		ev->error = gi_map_daemon_error(q->result);
		if (set_text(c, ev, r->buf, r->len) < 0)
			return -ENOMEM;
		r->len = 0;
		GI_PROBE2(error, ev->req, ev->error);
		break;
	case GI_CQE_NOP:
		ev_init(ev, r);
		ev->kind = GI_EVENT_NOP;
		ev->nop_echo = q->nop.echo;
		break;
	case GI_CQE_CANCEL:
		ret = 0;
		last = false;
		break;
	default:
		return protocol_error(c, q, "unknown kind");
	}
	if (last)
		gi_inflight_remove(c, r);
	return ret;
}

/* Next event from the backlog, reaping the ring when the backlog is empty.
 * Returns 1, 0 (nothing available now) or a negative code. */
static int next_ready(struct gi_conn *c, struct gi_event *ev)
{
	int r;

	for (;;) {
		while (c->cq_i < c->cq_n) {
			r = cqe_to_event(c, &c->cqbuf[c->cq_i++], ev);
			if (r != 0)
				return r;
		}
		r = gi_conn_reap(c, GI_CQ_BATCH);
		if (r <= 0)
			return r < 0 && !c->dead ? r : 0;
	}
}

/* After the daemon went away: one ERROR event per request still in flight. */
static int next_dead(struct gi_conn *c, struct gi_event *ev)
{
	struct gi_inflight *r;
	static const char why[] = "the daemon closed the connection";

	if (!c->n_req)
		return c->dead_err;
	r = &c->req[c->n_req - 1];
	ev_init(ev, r);
	ev->kind = GI_EVENT_ERROR;
	ev->error = c->dead_err;
	if (set_text(c, ev, why, sizeof(why) - 1) < 0)
		return -ENOMEM;
	gi_inflight_remove(c, r);
	return 1;
}

/* IPC.md failure matrix, "daemon alive but engine stuck": a request whose
 * deadline (plus grace) has passed while the daemon's heartbeat stood still
 * ends here with -ETIMEDOUT (and a cancel is sent for it); if the heartbeat
 * moved, the engine is alive and its own DEADLINE event is coming, so the
 * check is pushed back by another grace period. Returns 1 with *EV filled,
 * 0 if nothing expired; *NEXT_NS gets the earliest pending expiry (0 if none). */
static int check_deadlines(struct gi_conn *c, struct gi_event *ev, uint64_t *next_ns)
{
	static const char why[] = "deadline passed and the daemon's engine is not stepping";
	uint64_t now = 0, hb;
	size_t i;

	*next_ns = 0;
	for (i = 0; i < c->n_req; i++) {
		struct gi_inflight *r = &c->req[i];

		if (!r->expire_ns)
			continue;
		if (!now)
			now = now_ns();
		if (now < r->expire_ns) {
			if (!*next_ns || r->expire_ns < *next_ns)
				*next_ns = r->expire_ns;
			continue;
		}
		hb = gi_cli_heartbeat(&c->ring);
		if (hb != r->heartbeat) {
			r->heartbeat = hb;
			r->expire_ns = now + GI_DEADLINE_GRACE_NS;
			if (!*next_ns || r->expire_ns < *next_ns)
				*next_ns = r->expire_ns;
			continue;
		}
		gi_req_cancel(c, r->id);
		ev_init(ev, r);
		ev->kind = GI_EVENT_ERROR;
		ev->error = -ETIMEDOUT;
		if (set_text(c, ev, why, sizeof(why) - 1) < 0)
			return -ENOMEM;
		gi_inflight_remove(c, r);
		return 1;
	}
	return 0;
}

/* Sleeps on the epoll fd up to TIMEOUT_MS; handles what woke it. Returns
 * 0 on wake or timeout, -EINTR. */
static int sleep_once(struct gi_conn *c, int timeout_ms)
{
	struct epoll_event evs[2];
	int n, i;

	if (timeout_ms != 0)
		GI_PROBE1(sleep, c->ring.wait_seq);
	n = epoll_wait(c->epfd, evs, 2, timeout_ms);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		if (evs[i].data.u32 == GI_EPOLL_DOORBELL)
			gi_conn_drain_doorbell(c);
		else
			gi_conn_poll_socket(c);
	}
	return 0;
}

/* Arms the completion doorbell unless already armed. Returns 1 if events
 * arrived meanwhile (do not sleep), 0 if armed, or a negative code. */
static int arm(struct gi_conn *c)
{
	int r;

	if (c->armed)
		return 0;
	r = gi_cli_prepare_sleep(&c->ring);
	if (r < 0) {
		gi_conn_set_dead(c, -GI_ERR_PROTOCOL);
		return 1;
	}
	if (r == 0)
		c->armed = true;
	return r;
}

int gi_event_next(struct gi_conn *c, struct gi_event *ev, int timeout_ms)
{
	uint64_t deadline = 0, expiry;
	int r;

	if (!c || !ev)
		return -EINVAL;
	if (timeout_ms > 0) {
		deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	}
	for (;;) {
		r = next_ready(c, ev);
		if (r != 0)
			return r;
		if (c->dead)
			return next_dead(c, ev);
		r = check_deadlines(c, ev, &expiry);
		if (r != 0)
			return r;
		if (timeout_ms == 0) {
			/* Notice a hang-up without blocking, and arm so that the
			 * caller's poll on gi_conn_fd() wakes for the next event. */
			r = sleep_once(c, 0);
			if (r < 0)
				return r;
			if (c->dead)
				continue;
			r = arm(c);
			if (r < 0)
				return r;
			if (r == 1)
				continue;
			return 0;
		}
		if (c->spin_us > 0) {
			uint64_t until = now_ns() + (uint64_t)c->spin_us * 1000ull;
			unsigned k = 0;

			while (now_ns() < until) {
				r = gi_conn_reap(c, GI_CQ_BATCH);
				if (r != 0)
					break;
				/* Yield now and then: when the engine shares our
				 * CPU, spinning only delays the answer. */
				if (++k % 16 == 0)
					sched_yield();
				else
					gi_cpu_relax();
			}
			if (r != 0)
				continue;
		}
		r = arm(c);
		if (r < 0)
			return r;
		if (r == 1)
			continue;
		{
			uint64_t now = now_ns(), until = deadline;
			int ms = -1;

			if (timeout_ms > 0 && now >= deadline)
				return 0;
			if (expiry && (!until || expiry < until))
				until = expiry;
			if (until)
				ms = until > now ? (int)((until - now + 999999) / 1000000) : 0;
			r = sleep_once(c, ms);
		}
		if (r < 0)
			return r;
	}
}

const char *gi_finish_name(int r)
{
	static const char *const names[] = {
		[GI_FINISH_REASON_EOS] = "eos",
		[GI_FINISH_REASON_STOP] = "stop",
		[GI_FINISH_REASON_LENGTH] = "length",
		[GI_FINISH_REASON_CANCELLED] = "cancelled",
		[GI_FINISH_REASON_ERROR] = "error",
		[GI_FINISH_REASON_SHUTDOWN] = "shutdown",
		[GI_FINISH_REASON_DEADLINE] = "deadline",
	};

	if (r <= 0 || (size_t)r >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[r];
}
