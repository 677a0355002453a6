/* Daemon side of a session's shared memory: hardened SQ reader, CQ writer. */
#include "ipc/srv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/atomics.h"
#include "ipc/doorbell.h"
#include "ipc/validate.h"

int gi_srv_init(struct gi_srv *s, const struct gi_region *region, const struct gi_limits *lim,
		uint32_t start, int submit_efd, int complete_efd)
{
	*s = (struct gi_srv){
		.region = *region,
		.submit_efd = submit_efd,
		.complete_efd = complete_efd,
		.limits = *lim,
	};
	const struct gi_layout *l = &region->layout;
	int err = gi_ring_cons_init(&s->sq, region->sq_head, region->sq_tail, region->sqes, l->sq_entries,
				    sizeof(struct gi_sqe), start);
	if (!err)
		err = gi_ring_prod_init(&s->cq, region->cq_tail, region->cq_head, region->cqes,
					l->cq_entries, sizeof(struct gi_cqe), start);
	if (err)
		return err;
	/* The largest blob a valid SQE can reference. */
	uint64_t cap = l->arena_size;
	if (lim->max_prompt_bytes) {
		uint64_t stops = (uint64_t)lim->max_stop_strings * (2u + (uint64_t)lim->max_stop_len);
		uint64_t want = (uint64_t)lim->max_prompt_bytes + 3 + stops;
		if (want < cap)
			cap = want;
	}
	s->blob_cap = (uint32_t)cap;
	s->blob = malloc(cap ? cap : 1);
	if (!s->blob)
		return -ENOMEM;
	return 0;
}

void gi_srv_fini(struct gi_srv *s)
{
	free(s->blob);
	*s = (struct gi_srv){ 0 };
}

int gi_srv_fail(struct gi_srv *s, const char *fmt, ...)
{
	if (!s->error) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
		va_end(ap);
		s->error = -EPROTO;
	}
	return s->error;
}

/* Free CQ slots (re-reading and validating cq.head), or -EPROTO. */
static int gi_srv_cq_space(struct gi_srv *s)
{
	if (s->error)
		return s->error;
	int space = gi_ring_prod_space(&s->cq, 1);
	if (space < 0)
		return gi_srv_fail(s, "cq.head %u moved backwards or past cq.tail %u (last valid %u)",
				   gi_load_relaxed(s->cq.head), s->cq.local_tail, s->cq.cached_head);
	return space;
}

int gi_srv_post(struct gi_srv *s, const struct gi_cqe *cqes, uint32_t n)
{
	if (s->error)
		return s->error;
	int r = gi_ring_push(&s->cq, cqes, n);
	if (r < 0)
		return gi_srv_fail(s, "cq.head %u moved backwards or past cq.tail %u (last valid %u)",
				   gi_load_relaxed(s->cq.head), s->cq.local_tail, s->cq.cached_head);
	if (r > 0)
		s->unkicked = true;
	return r;
}

uint32_t gi_srv_error_events(struct gi_cqe *ev, uint64_t user_data, int code, const char *reason)
{
	size_t len = reason ? strnlen(reason, GI_SRV_REASON_MAX) : 0, off = 0;
	uint32_t n = 0;

	do {
		size_t chunk = len - off < GI_CQE_TEXT_MAX ? len - off : GI_CQE_TEXT_MAX;
		ev[n] = (struct gi_cqe){
			.user_data = user_data,
			.kind = GI_CQE_ERROR,
			.flags = GI_CQE_F_MORE | GI_CQE_F_TEXT_CONT,
			.result = code,
			.text_len = (uint8_t)chunk,
		};
		memcpy(ev[n++].reason, reason + off, chunk);
		off += chunk;
	} while (off < len);
	ev[n - 1].flags = GI_CQE_F_LAST;
	return n;
}

/* Posts the ERROR events for USER_DATA with CODE and a reason; when the CQ
 * has room for fewer, the reason's head. Returns the count posted, 0 if the
 * CQ is full, or -EPROTO. */
static int gi_srv_post_error(struct gi_srv *s, uint64_t user_data, int code, const char *reason)
{
	struct gi_cqe ev[GI_SRV_REASON_EVENTS];
	uint32_t n = gi_srv_error_events(ev, user_data, code, reason);
	int space = gi_srv_cq_space(s);

	if (space <= 0)
		return space;
	/* gi_srv_poll answers an SQE once one slot is free: with less room
	 * than the whole reason, send its head. */
	if ((uint32_t)space < n) {
		n = (uint32_t)space;
		ev[n - 1].flags = GI_CQE_F_LAST;
	}
	return gi_srv_post(s, ev, n);
}

static int answer_nop(struct gi_srv *s, const struct gi_sqe *sqe)
{
	struct gi_cqe e = {
		.user_data = sqe->user_data,
		.kind = GI_CQE_NOP,
		.flags = GI_CQE_F_LAST,
		.nop.echo = sqe->nop.echo,
	};
	return gi_srv_post(s, &e, 1);
}

/* Handles one SQE already copied to REQ->sqe. Returns 0 or -EPROTO. */
static int handle_one(struct gi_srv *s, struct gi_srv_req *req, gi_srv_fn fn, void *ctx)
{
	char why[GI_CQE_TEXT_MAX + 88];
	const struct gi_sqe *sqe = &req->sqe;
	int r = gi_sqe_validate(sqe, &s->limits, s->region.layout.arena_size, why, sizeof(why));
	if (r) {
		s->n_bad_sqes++;
		return gi_srv_post_error(s, sqe->user_data, r, why) < 0 ? s->error : 0;
	}
	if (sqe->opcode == GI_OP_NOP)
		return answer_nop(s, sqe) < 0 ? s->error : 0;
	if (sqe->opcode == GI_OP_SUBMIT) {
		uint32_t blob = gi_sqe_blob_len(sqe);
		if (blob > s->blob_cap) {
			s->n_bad_sqes++;
			return gi_srv_post_error(s, sqe->user_data, -E2BIG, "request blob too large") < 0 ?
				       s->error : 0;
		}
		/* Copy out before anyone looks at it; validated above to lie inside
		 * the arena. Never re-read the shared bytes after this. */
		memcpy(s->blob, s->region.arena + sqe->req.arena_off, blob);
		req->prompt = s->blob;
		req->prompt_len = sqe->req.prompt_len;
		req->stops = s->blob + gi_sqe_stop_off(sqe);
		req->stop_len = sqe->stop_len;
	}
	r = fn ? fn(ctx, s, req) : -EOPNOTSUPP;
	if (r < 0 && !s->error)
		return gi_srv_post_error(s, sqe->user_data, r, "request refused") < 0 ? s->error : 0;
	return s->error;
}

int gi_srv_poll(struct gi_srv *s, uint32_t quota, gi_srv_fn fn, void *ctx)
{
	if (s->error)
		return s->error;
	/* One read of sq.tail per poll (the ring re-reads it only when its
	 * cache holds fewer than QUOTA records), bounded by the ring. */
	int avail = gi_ring_cons_avail(&s->sq, quota);
	if (avail < 0)
		return gi_srv_fail(s, "sq.tail %u is more than %u ahead of sq.head %u or moved backwards",
				   gi_load_relaxed(s->sq.tail), s->sq.mask + 1, s->sq.local_head);
	uint32_t n = (uint32_t)avail < quota ? (uint32_t)avail : quota;
	uint32_t done = 0;
	int err = 0;
	while (done < n) {
		int space = gi_srv_cq_space(s);
		if (space <= 0) {
			err = space;
			break;
		}
		struct gi_srv_req req = { 0 };
		memcpy(&req.sqe, gi_ring_cons_peek(&s->sq, done), sizeof(req.sqe));
		done++;
		err = handle_one(s, &req, fn, ctx);
		if (err)
			break;
	}
	/* Releasing the SQEs also frees their arena bytes: all copied by now. */
	if (done)
		gi_ring_cons_release(&s->sq, done);
	s->n_sqes += done;
	if (err < 0)
		return err;
	int r = gi_srv_kick(s);
	return r < 0 ? r : (int)done;
}

int gi_srv_kick(struct gi_srv *s)
{
	/* Nothing posted since the last kick: that kick's fence already paired
	 * with any sleep the client armed after it (see doorbell.c). */
	if (!s->unkicked)
		return 0;
	s->unkicked = false;
	return gi_db_complete_kick(s->region.cq_wait_seq, &s->last_rung, s->complete_efd);
}

int gi_srv_arm(struct gi_srv *s)
{
	if (s->error)
		return s->error;
	gi_db_engine_arm(s->region.daemon_flags, s->dflags);
	s->armed = true;
	/* The re-check after the fence in gi_db_engine_arm. */
	int avail = gi_ring_cons_avail(&s->sq, 1);
	if (avail < 0)
		return gi_srv_fail(s, "sq.tail %u is more than %u ahead of sq.head %u or moved backwards",
				   gi_load_relaxed(s->sq.tail), s->sq.mask + 1, s->sq.local_head);
	if (avail == 0)
		return 0;
	/* SQEs wait, but each needs a free CQ slot. With the CQ full only the
	 * client can unblock us, and it rings when it reaps from a full CQ
	 * (gi_cli_reap): so sleep rather than spin. The cq.head re-read here is
	 * after the fence, pairing with the client's fence after its head store. */
	int space = gi_srv_cq_space(s);
	if (space < 0)
		return space;
	return space > 0;
}

void gi_srv_disarm(struct gi_srv *s)
{
	if (!s->armed)
		return;
	gi_db_engine_disarm(s->region.daemon_flags, s->dflags);
	s->armed = false;
}

void gi_srv_set_shutdown(struct gi_srv *s)
{
	s->dflags |= GI_DFLAG_SHUTDOWN;
	/* Pairs with the load-acquire in gi_cli_daemon_flags: events posted
	 * before the flag are visible to a client that sees it. */
	gi_store_release(s->region.daemon_flags, s->dflags | (s->armed ? GI_DFLAG_NEED_WAKEUP : 0));
}

void gi_srv_heartbeat(struct gi_srv *s, uint64_t now_ms)
{
	/* A liveness hint only: orders nothing, so relaxed on both sides. */
	gi_store_relaxed64(s->region.heartbeat, now_ms);
}
