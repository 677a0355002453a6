/* Requests in, events out: turns a validated SUBMIT or CANCEL SQE into a
 * scheduler call, and the scheduler's events into CQEs (see engine_loop.h).
 *
 * The scheduler's user_data is the address of our struct session_req and
 * its session is the address of our struct session; both stay valid until
 * the request's on_done/on_error (a dropped session is freed only once its
 * last request has ended), so events are routed without a lookup. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/engine_impl.h"
#include "daemon/log.h"
#include "daemon/textout.h"
#include "ipc/validate.h"

/* Posts an ERROR event for USER_DATA on S. */
static void engine_post_error(struct engine *e, struct session *s, uint64_t user_data, int code,
			      const char *reason)
{
	struct gi_cqe ev[GI_SRV_REASON_EVENTS];
	uint32_t n = gi_srv_error_events(ev, user_data, code, reason);

	if (session_post(s, ev, n) == -EPROTO)
		engine_fail_session(e, s);
}

/* Prompt token ids of a SUBMIT into e->pb.ids; returns the count. */
static int prompt_ids(struct engine *e, const struct gi_srv_req *req, char *err, size_t errlen)
{
	uint16_t f = req->sqe.flags;
	if (f & GI_SQE_F_TOKENS) {
		int r = gi_tokens_check(req->prompt, req->prompt_len, e->limits.n_vocab, err, errlen);
		if (r < 0)
			return r;
		uint32_t n = req->prompt_len / 4;
		if (prompt_reserve(&e->pb, n) < 0)
			return -ENOMEM;
		memcpy(e->pb.ids, req->prompt, (size_t)n * 4);
		return (int)n;
	}
	if (f & GI_SQE_F_CHAT)
		return prompt_chat(e->info->chat, e->tok, &e->pb, req->prompt, req->prompt_len,
				   f & GI_SQE_F_NO_BOS, err, errlen);
	if (!gi_utf8_valid(req->prompt, req->prompt_len)) {
		snprintf(err, errlen, "prompt: not valid UTF-8 (or contains NUL)");
		return -EINVAL;
	}
	int n = prompt_tokenize(e->tok, &e->pb, (const char *)req->prompt, req->prompt_len,
				!(f & GI_SQE_F_NO_BOS), f & GI_SQE_F_SPECIAL);
	if (n == 0) {
		snprintf(err, errlen, "prompt: empty after tokenization");
		return -EINVAL;
	}
	return n;
}

static void sampling_from_sqe(const struct gi_sqe *q, struct sampler_params *p)
{
	sampler_params_default(p);
	p->temperature = q->temperature;
	p->top_k = q->top_k;
	/* 0 reads as "off" like 1, so a zeroed SQE asks for plain greedy. */
	p->top_p = q->top_p > 0 ? q->top_p : 1.0f;
	p->min_p = q->min_p;
	p->repeat_penalty = q->repeat_penalty > 0 ? q->repeat_penalty : 1.0f;
	p->frequency_penalty = q->frequency_penalty;
	p->presence_penalty = q->presence_penalty;
	p->seed = q->seed;
}

static int submit(struct engine *e, struct session *s, const struct gi_srv_req *req)
{
	const struct gi_sqe *q = &req->sqe;
	char err[160] = "";
	const char *stops[TEXTOUT_MAX_STOP];
	uint32_t stop_lens[TEXTOUT_MAX_STOP];
	struct gi_span spans[TEXTOUT_MAX_STOP];
	int r;

	engine_take_tenants(e);
	if (s->n_reqs >= e->limits.max_inflight) {
		r = -EBUSY;
		snprintf(err, sizeof(err), "session has %u requests in flight (max_inflight)", s->n_reqs);
		goto reject;
	}
	r = gi_stop_list_parse(req->stops, req->stop_len, &e->limits, spans, TEXTOUT_MAX_STOP, err,
			       sizeof(err));
	if (r < 0)
		goto reject;
	uint32_t n_stop = (uint32_t)r;
	for (uint32_t i = 0; i < n_stop; i++) {
		stops[i] = (const char *)req->stops + spans[i].off;
		stop_lens[i] = spans[i].len;
	}
	r = prompt_ids(e, req, err, sizeof(err));
	if (r < 0)
		goto reject;
	struct sched_req_params p = {
		.size = sizeof(p),
		.prompt = e->pb.ids,
		.n_prompt = (uint32_t)r,
		.max_tokens = q->max_tokens ? q->max_tokens : e->limits.max_tokens,
		.stop = stops,
		.stop_len = stop_lens,
		.n_stop = n_stop,
		.priority = q->priority == GI_PRIO_BATCH ? SCHED_PRIO_BATCH : SCHED_PRIO_TENANT,
		.deadline_us = q->deadline_ms ? sched_now_us() + (uint64_t)q->deadline_ms * 1000 : 0,
		.ignore_eos = q->flags & GI_SQE_F_IGNORE_EOS,
	};
	sampling_from_sqe(q, &p.sampling);
	struct session_req *sr = session_req_new(s, q->user_data, q->flags);
	if (!sr) {
		r = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
		goto reject;
	}
	r = sched_submit(e->sched, &p, s->tenant, (uint64_t)(uintptr_t)s, (uint64_t)(uintptr_t)sr,
			 &sr->sched_id, err, sizeof(err));
	if (r < 0) {
		session_req_end(sr);
		goto reject;
	}
	e->requests_total++;
	return 0;
reject:
	e->requests_rejected++;
	if (!err[0])
		snprintf(err, sizeof(err), "%s", strerror(-r));
	log_debug("session %llu: request %llu refused: %s", (unsigned long long)s->id,
		  (unsigned long long)q->user_data, err);
	engine_post_error(e, s, q->user_data, r, err);
	return 0;
}

static int cancel(struct engine *e, struct session *s, const struct gi_sqe *q)
{
	int found = 0;
	if (q->flags & GI_SQE_F_CANCEL_ALL) {
		for (struct session_req *r = s->reqs; r; r = r->next)
			if (!r->cancelled && sched_cancel(e->sched, r->sched_id) == 0) {
				r->cancelled = true;
				found++;
			}
	} else {
		struct session_req *r = session_req_find(s, q->cancel.target);
		if (r && sched_cancel(e->sched, r->sched_id) == 0) {
			r->cancelled = true;
			found = 1;
		}
	}
	struct gi_cqe ev = {
		.user_data = q->user_data,
		.kind = GI_CQE_CANCEL,
		.flags = GI_CQE_F_LAST,
		.result = found ? 0 : -ENOENT,
	};
	if (session_post(s, &ev, 1) == -EPROTO)
		engine_fail_session(e, s);
	return 0;
}

int engine_on_sqe(void *ctx, struct gi_srv *srv, const struct gi_srv_req *req)
{
	struct engine *e = ctx;
	struct session *s = (struct session *)((char *)srv - offsetof(struct session, srv));
	if (req->sqe.opcode == GI_OP_CANCEL)
		return cancel(e, s, &req->sqe);
	return submit(e, s, req);
}

/* ---- scheduler events -> CQEs ---- */

/* Remembers when S first had to hold back its requests' events. */
static bool stalled(struct session *s)
{
	if (!s->stalled_since_ms)
		s->stalled_since_ms = gid_now_ms();
	return false;
}

static bool ev_can_emit(void *ctx, uint64_t session)
{
	struct session *s = (struct session *)(uintptr_t)session;
	if (s->dead)
		return true; /* its events are dropped; let it run to its cancellation */
	if (s->backlog.head != s->backlog.n)
		return stalled(s);
	/* A token and the DONE after it, with room for a split text. Asking
	 * the ring for that many makes it re-read cq.head when its cached
	 * view has fewer free slots. */
	uint32_t want = s->reserved + 3;
	int space = s->srv.error ? s->srv.error : gi_ring_prod_space(&s->srv.cq, want);
	if (space < 0) {
		gi_srv_fail(&s->srv, "cq.head moved backwards or past cq.tail");
		engine_fail_session(ctx, s);
		return true;
	}
	if ((uint32_t)space < want)
		return stalled(s);
	s->reserved += 3;
	s->stalled_since_ms = 0;
	return true;
}

/* Posts TOKEN events for TOKEN with TEXT, split into GI_CQE_TEXT_MAX pieces. */
static void post_text(struct engine *e, struct session_req *q, int32_t token, const char *text,
		      uint32_t len, float logprob)
{
	struct session *s = q->s;
	struct gi_cqe ev[8];
	uint32_t off = 0;
	do {
		uint32_t n = 0;
		for (; n < 8; n++) {
			uint32_t chunk = len - off < GI_CQE_TEXT_MAX ? len - off : GI_CQE_TEXT_MAX;
			ev[n] = (struct gi_cqe){
				.user_data = q->user_data,
				.kind = GI_CQE_TOKEN,
				.flags = GI_CQE_F_MORE,
				.token = token,
				.logprob = q->flags & GI_SQE_F_LOGPROBS ? logprob : 0.0f,
				.text_len = (uint8_t)chunk,
			};
			memcpy(ev[n].text, text + off, chunk);
			off += chunk;
			if (off >= len) {
				n++;
				break;
			}
			ev[n].flags |= GI_CQE_F_TEXT_CONT;
		}
		if (session_post(s, ev, n) == -EPROTO) {
			engine_fail_session(e, s);
			return;
		}
	} while (off < len);
}

static void ev_on_token(void *ctx, uint64_t user_data, uint64_t session, int32_t token,
			const char *text, uint32_t len, float logprob)
{
	struct session_req *q = (struct session_req *)(uintptr_t)user_data;
	if (q->s->dead)
		return;
	post_text(ctx, q, token, text, len, logprob);
}

static uint32_t clamp_u32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static const uint8_t finish_codes[] = {
	[SCHED_FINISH_EOS] = GI_FINISH_EOS,
	[SCHED_FINISH_LENGTH] = GI_FINISH_LENGTH,
	[SCHED_FINISH_STOP] = GI_FINISH_STOP,
	[SCHED_FINISH_CANCEL] = GI_FINISH_CANCELLED,
	[SCHED_FINISH_DEADLINE] = GI_FINISH_DEADLINE,
	[SCHED_FINISH_SHUTDOWN] = GI_FINISH_SHUTDOWN,
};

static void ev_on_done(void *ctx, uint64_t user_data, uint64_t session, const struct sched_done *d)
{
	struct engine *e = ctx;
	struct session_req *q = (struct session_req *)(uintptr_t)user_data;
	struct session *s = q->s;
	e->requests_done++;
	if (q->stalled && d->reason == SCHED_FINISH_CANCEL) {
		e->requests_stalled++;
		if (!s->dead) {
			char why[96];
			snprintf(why, sizeof(why), "events not read for %u ms (stall_timeout_ms): request ended",
				 e->cfg->stall_timeout_ms);
			engine_post_error(e, s, q->user_data, -ETIMEDOUT, why);
		}
		session_req_end(q);
		return;
	}
	if (d->reason == SCHED_FINISH_CANCEL)
		e->requests_cancelled++;
	if (!s->dead) {
		/* Text held back until the end (stop-string prefixes, partial
		 * UTF-8) belongs to no token: it goes out with token -1. */
		if (d->text_len)
			post_text(e, q, -1, d->text, d->text_len, 0.0f);
		struct gi_cqe ev = {
			.user_data = q->user_data,
			.kind = GI_CQE_DONE,
			.flags = GI_CQE_F_LAST,
			.result = (unsigned)d->reason < sizeof(finish_codes) ? finish_codes[d->reason]
									    : GI_FINISH_ERROR,
			.done = {
				.queue_us = clamp_u32(d->queue_us),
				.prefill_us = clamp_u32(d->prefill_us),
				.decode_us = clamp_u32(d->decode_us),
				.n_prompt = d->n_prompt,
				.n_cached = d->n_cached,
				.n_gen = d->n_generated,
			},
		};
		if (!s->dead && session_post(s, &ev, 1) == -EPROTO)
			engine_fail_session(e, s);
	}
	session_req_end(q);
}

static void ev_on_error(void *ctx, uint64_t user_data, uint64_t session, int err, const char *msg)
{
	struct engine *e = ctx;
	struct session_req *q = (struct session_req *)(uintptr_t)user_data;
	struct session *s = q->s;
	e->requests_done++;
	log_info("session %llu: request %llu failed: %s", (unsigned long long)s->id,
		 (unsigned long long)q->user_data, msg);
	if (!s->dead)
		engine_post_error(e, s, q->user_data, err, msg);
	session_req_end(q);
}

void engine_check_stalls(struct engine *e, uint64_t now_ms)
{
	uint32_t limit = e->cfg->stall_timeout_ms;
	if (!limit)
		return;
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		if (s->dead || !s->stalled_since_ms || now_ms - s->stalled_since_ms < limit)
			continue;
		/* The client caught up but nothing asked to emit since (its
		 * requests wait for a slot): not stalled. */
		if (s->backlog.head == s->backlog.n && !s->srv.error &&
		    gi_ring_prod_space(&s->srv.cq, 3) >= 3) {
			s->stalled_since_ms = 0;
			continue;
		}
		uint32_t n = 0;
		for (struct session_req *q = s->reqs; q; q = q->next)
			if (!q->cancelled && sched_cancel(e->sched, q->sched_id) == 0) {
				q->cancelled = q->stalled = true;
				n++;
			}
		s->stalled_since_ms = 0;
		if (n)
			log_info("session %llu: events not read for %u ms, %u requests ended",
				 (unsigned long long)s->id, limit, n);
	}
}

const struct sched_events engine_sched_events = {
	.can_emit = ev_can_emit,
	.on_token = ev_on_token,
	.on_done = ev_on_done,
	.on_error = ev_on_error,
};
