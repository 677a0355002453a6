/* Submitting requests: options checked and translated to an SQE, the prompt
 * and stop strings written as one blob into the request arena (wire.h
 * "Request blob"), SQ-full handling, cancel. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/conn.h"
#include "client/probes.h"

/* Longest back-off between two looks at a full SQ under GI_GEN_BLOCK. */
#define BLOCK_SLEEP_MAX_NS 1000000L

/* A request blob before it is written: either a flat prompt or chat list. */
struct blob_src {
	const void *prompt;              /* flat prompt bytes, or NULL for chat */
	uint32_t prompt_len;             /* bytes of the prompt section */
	const struct gi_chat_msg *msgs;  /* chat list, when PROMPT is NULL */
	size_t n_msgs;
};

static int bad(struct gi_conn *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct gi_conn *c, int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (!c->log)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->log(c->log_user, GI_LOG_ERROR, msg);
	return err;
}

static int check_float(struct gi_conn *c, const char *name, float v, float lo, float hi)
{
	if (!isfinite(v) || v < lo || v > hi)
		return bad(c, -EINVAL, "gi_gen_opts.%s %g is outside [%g, %g]", name, v, lo, hi);
	return 0;
}

/* Checks O and fills the sampling fields of SQE. */
static int opts_to_sqe(struct gi_conn *c, const struct gi_gen_opts *o, struct gi_sqe *sqe)
{
	const struct gi_limits *lim = &c->s.welcome.limits;
	int r = 0;

	if (o->flags & ~GI_GEN_ALL_)
		return bad(c, -EINVAL, "gi_gen_opts.flags 0x%x has unknown bits", o->flags);
	if (o->priority > GI_PRIORITY_BATCH)
		return bad(c, -EINVAL, "gi_gen_opts.priority %u is not a gi_priority", o->priority);
	if (o->top_k > UINT16_MAX)
		return bad(c, -EINVAL, "gi_gen_opts.top_k %u is over 65535", o->top_k);
	if (lim->max_tokens && o->max_tokens > lim->max_tokens)
		return bad(c, -E2BIG, "gi_gen_opts.max_tokens %u is over the daemon's limit %u",
			   o->max_tokens, lim->max_tokens);
	r = r ?: check_float(c, "temperature", o->temperature, 0, 100);
	r = r ?: check_float(c, "top_p", o->top_p, 0, 1);
	r = r ?: check_float(c, "min_p", o->min_p, 0, 1);
	r = r ?: check_float(c, "repeat_penalty", o->repeat_penalty, 0, 10);
	r = r ?: check_float(c, "frequency_penalty", o->frequency_penalty, -2, 2);
	r = r ?: check_float(c, "presence_penalty", o->presence_penalty, -2, 2);
	if (r)
		return r;
	sqe->priority = (uint8_t)o->priority;
	sqe->max_tokens = o->max_tokens;
	sqe->top_k = (uint16_t)o->top_k;
	sqe->seed = o->seed;
	sqe->temperature = o->temperature;
	sqe->top_p = o->top_p == 0 ? 1.0f : o->top_p;
	sqe->min_p = o->min_p;
	sqe->repeat_penalty = o->repeat_penalty == 0 ? 1.0f : o->repeat_penalty;
	sqe->frequency_penalty = o->frequency_penalty;
	sqe->presence_penalty = o->presence_penalty;
	sqe->deadline_ms = o->deadline_ms;
	if (o->flags & GI_GEN_LOGPROBS)
		sqe->flags |= GI_SQE_F_LOGPROBS;
	if (o->flags & GI_GEN_NO_BOS)
		sqe->flags |= GI_SQE_F_NO_BOS;
	if (o->flags & GI_GEN_SPECIAL)
		sqe->flags |= GI_SQE_F_SPECIAL;
	if (o->flags & GI_GEN_IGNORE_EOS)
		sqe->flags |= GI_SQE_F_IGNORE_EOS;
	return 0;
}

/* Bytes of the stop list for O, checked against the daemon's limits. */
static int stop_list_len(struct gi_conn *c, const struct gi_gen_opts *o, uint32_t *ret_len)
{
	const struct gi_limits *lim = &c->s.welcome.limits;
	size_t i, total = 0;

	if (o->n_stop && !o->stop)
		return bad(c, -EINVAL, "gi_gen_opts.stop is NULL with n_stop %zu", o->n_stop);
	if (lim->max_stop_strings && o->n_stop > lim->max_stop_strings)
		return bad(c, -E2BIG, "gi_gen_opts.n_stop %zu is over the daemon's limit %u",
			   o->n_stop, lim->max_stop_strings);
	for (i = 0; i < o->n_stop; i++) {
		size_t n = o->stop[i] ? strlen(o->stop[i]) : 0;

		if (n == 0)
			return bad(c, -EINVAL, "gi_gen_opts.stop[%zu] is NULL or empty", i);
		if (n > UINT16_MAX || (lim->max_stop_len && n > lim->max_stop_len))
			return bad(c, -E2BIG, "gi_gen_opts.stop[%zu] is %zu bytes, over the limit %u",
				   i, n, lim->max_stop_len);
		total += 2 + n;
	}
	if (total > UINT16_MAX)
		return bad(c, -E2BIG, "gi_gen_opts.stop: %zu bytes of stop strings, over 65535", total);
	*ret_len = (uint32_t)total;
	return 0;
}

static uint32_t pad4(uint32_t n)
{
	return (n + 3u) & ~3u;
}

void gi_chat_list_write(uint8_t *dst, const struct gi_chat_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct gi_chat_entry_hdr h = {
			.role = msgs[i].role,
			.len = (uint32_t)strlen(msgs[i].content),
		};
		memcpy(dst, &h, sizeof(h));
		memcpy(dst + sizeof(h), msgs[i].content, h.len);
		memset(dst + sizeof(h) + h.len, 0, pad4(h.len) - h.len);
		dst += sizeof(h) + pad4(h.len);
	}
}

int gi_chat_list_len(struct gi_conn *c, const char *fn, const struct gi_chat_msg *msgs, size_t n,
		     uint32_t *ret_len)
{
	size_t i, total = 0;

	if (!msgs || n == 0)
		return bad(c, -EINVAL, "%s: no messages", fn);
	for (i = 0; i < n; i++) {
		if (msgs[i].role > GI_CHAT_ASSISTANT)
			return bad(c, -EINVAL, "%s: msgs[%zu].role %u is not a gi_role_kind", fn, i,
				   msgs[i].role);
		if (!msgs[i].content)
			return bad(c, -EINVAL, "%s: msgs[%zu].content is NULL", fn, i);
		total += sizeof(struct gi_chat_entry_hdr) + pad4((uint32_t)strnlen(msgs[i].content, UINT32_MAX / 2));
		if (total > UINT32_MAX / 2)
			return bad(c, -E2BIG, "%s: messages too long", fn);
	}
	*ret_len = (uint32_t)total;
	return 0;
}

static void write_blob(uint8_t *dst, const struct blob_src *b, const struct gi_gen_opts *o)
{
	uint8_t *p = dst;
	size_t i;

	if (b->prompt) {
		memcpy(p, b->prompt, b->prompt_len);
		p += b->prompt_len;
	} else {
		gi_chat_list_write(p, b->msgs, b->n_msgs);
		p += b->prompt_len;
	}
	memset(p, 0, pad4(b->prompt_len) - b->prompt_len);
	p = dst + pad4(b->prompt_len);
	for (i = 0; i < o->n_stop; i++) {
		uint16_t n = (uint16_t)strlen(o->stop[i]);

		memcpy(p, &n, 2);
		memcpy(p + 2, o->stop[i], n);
		p += 2 + n;
	}
}

static void block_sleep(long *ns)
{
	struct timespec ts = { 0, *ns };

	nanosleep(&ts, NULL);
	if (*ns < BLOCK_SLEEP_MAX_NS)
		*ns *= 2;
}

/* Waits (under GI_GEN_BLOCK) until the SQ has a slot and BLOB_LEN arena
 * bytes fit. Reaped events go to the backlog so a full CQ cannot stall the
 * engine's SQ reader. Returns 0 with the offset and pointer set, or an error. */
static int reserve(struct gi_conn *c, uint32_t blob_len, bool block, uint32_t *ret_off,
		   uint8_t **ret_ptr)
{
	long ns = 20000;
	int r;

	for (;;) {
		if (c->dead)
			return c->dead_err;
		if (gi_cli_daemon_flags(&c->ring) & GI_DFLAG_SHUTDOWN)
			return -GI_ERR_SHUTDOWN;
		r = gi_cli_sq_space(&c->ring);
		if (r < 0) {
			gi_conn_set_dead(c, -GI_ERR_PROTOCOL);
			return bad(c, -GI_ERR_PROTOCOL, "submission ring: daemon head out of range");
		}
		if (r > 0) {
			if (!blob_len)
				return 0;
			r = gi_cli_arena_alloc(&c->ring, blob_len, ret_off, ret_ptr);
			if (r == 0)
				return 0;
			if (r == -E2BIG)
				return bad(c, -E2BIG, "request blob of %u bytes can never fit the %u-byte arena",
					   blob_len, c->s.welcome.layout.arena_size);
			if (r != -EAGAIN)
				return r;
		}
		if (!block)
			return -EAGAIN;
		gi_conn_poll_socket(c);
		r = gi_conn_reap(c, GI_CQ_BATCH);
		if (r < 0)
			return r;
		block_sleep(&ns);
	}
}

/* Common path of every submit call. SQE has its opcode-specific fields set. */
static int submit(struct gi_conn *c, struct gi_sqe *sqe, const struct blob_src *b,
		  const struct gi_gen_opts *o, uint64_t tag, uint64_t *ret_req)
{
	const struct gi_limits *lim = &c->s.welcome.limits;
	uint32_t stop_len = 0, blob_len = 0, off = 0;
	uint8_t *dst = NULL;
	uint64_t id;
	int r;

	if (sqe->opcode == GI_OP_SUBMIT) {
		r = opts_to_sqe(c, o, sqe);
		if (r == 0)
			r = stop_list_len(c, o, &stop_len);
		if (r)
			return r;
		if (lim->max_prompt_bytes && b->prompt_len > lim->max_prompt_bytes)
			return bad(c, -E2BIG, "prompt of %u bytes is over the daemon's limit %u",
				   b->prompt_len, lim->max_prompt_bytes);
		blob_len = pad4(b->prompt_len) + stop_len;
		sqe->stop_len = (uint16_t)stop_len;
		sqe->req.prompt_len = b->prompt_len;
	}
	/* Requests end only when the caller reads their events, so even
	 * GI_GEN_BLOCK cannot wait for this one. */
	if (sqe->opcode == GI_OP_SUBMIT && lim->max_inflight && c->n_req >= lim->max_inflight &&
	    !c->dead)
		return bad(c, -EAGAIN, "%zu requests in flight, the daemon's limit is %u: read events first",
			   c->n_req, lim->max_inflight);
	r = reserve(c, blob_len, o->flags & GI_GEN_BLOCK, &off, &dst);
	if (r < 0)
		return r;
	id = c->next_id;
	r = gi_inflight_add(c, id, tag);
	if (r < 0)
		return r;
	if (sqe->deadline_ms) {
		struct gi_inflight *in = &c->req[c->n_req - 1];
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		in->expire_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
				(uint64_t)sqe->deadline_ms * 1000000ull + GI_DEADLINE_GRACE_NS;
		in->heartbeat = gi_cli_heartbeat(&c->ring);
	}
	c->next_id = (c->next_id + 1) & ~GI_INTERNAL_ID;
	if (blob_len) {
		write_blob(dst, b, o);
		sqe->req.arena_off = off;
	}
	sqe->user_data = id;
	*gi_cli_sqe(&c->ring, 0) = *sqe;
	r = gi_cli_commit(&c->ring, 1);
	if (r < 0)
		gi_clog(c, GI_LOG_WARN, "ringing the engine's doorbell: %s", strerror(-r));
	GI_PROBE3(submit, id, tag, sqe->opcode);
	gi_conn_arm_for_poll(c);
	if (ret_req)
		*ret_req = id;
	return 0;
}

static int gen_common(struct gi_conn *c, const struct blob_src *b, uint16_t wire_flags,
		      const struct gi_gen_opts *opts, uint64_t tag, uint64_t *ret_req)
{
	struct gi_gen_opts o;
	struct gi_sqe sqe = { .opcode = GI_OP_SUBMIT, .flags = wire_flags };
	int r;

	r = gi_opts_copy(&o, sizeof(o), opts, "gi_gen_opts", c->log, c->log_user);
	if (r < 0)
		return r;
	return submit(c, &sqe, b, &o, tag, ret_req);
}

int gi_gen_text(struct gi_conn *c, const char *prompt, size_t len, const struct gi_gen_opts *opts,
		uint64_t tag, uint64_t *ret_req)
{
	struct blob_src b = { .prompt = prompt, .prompt_len = (uint32_t)len };

	if (!c || (!prompt && len))
		return -EINVAL;
	if (len == 0)
		return bad(c, -EINVAL, "gi_gen_text: the prompt is empty");
	if (len > UINT32_MAX / 2)
		return bad(c, -E2BIG, "gi_gen_text: prompt of %zu bytes", len);
	return gen_common(c, &b, 0, opts, tag, ret_req);
}

int gi_gen_tokens(struct gi_conn *c, const uint32_t *ids, size_t n_ids,
		  const struct gi_gen_opts *opts, uint64_t tag, uint64_t *ret_req)
{
	struct blob_src b = { .prompt = ids, .prompt_len = (uint32_t)(n_ids * 4) };
	uint32_t n_vocab;
	size_t i;

	if (!c || !ids || n_ids == 0)
		return c ? bad(c, -EINVAL, "gi_gen_tokens: no token ids") : -EINVAL;
	if (n_ids > UINT32_MAX / 8)
		return bad(c, -E2BIG, "gi_gen_tokens: %zu token ids", n_ids);
	n_vocab = c->s.welcome.limits.n_vocab;
	for (i = 0; i < n_ids && n_vocab; i++)
		if (ids[i] >= n_vocab)
			return bad(c, -EINVAL, "gi_gen_tokens: ids[%zu] %u is not below n_vocab %u",
				   i, ids[i], n_vocab);
	return gen_common(c, &b, GI_SQE_F_TOKENS, opts, tag, ret_req);
}

int gi_gen_chat(struct gi_conn *c, const struct gi_chat_msg *msgs, size_t n_msgs,
		const struct gi_gen_opts *opts, uint64_t tag, uint64_t *ret_req)
{
	struct blob_src b = { .msgs = msgs, .n_msgs = n_msgs };
	int r;

	if (!c)
		return -EINVAL;
	r = gi_chat_list_len(c, "gi_gen_chat", msgs, n_msgs, &b.prompt_len);
	if (r < 0)
		return r;
	return gen_common(c, &b, GI_SQE_F_CHAT, opts, tag, ret_req);
}

int gi_req_nop(struct gi_conn *c, uint64_t echo, uint32_t flags, uint64_t tag, uint64_t *ret_req)
{
	struct gi_gen_opts o = { .size = sizeof(o), .flags = flags };
	struct gi_sqe sqe = { .opcode = GI_OP_NOP, .nop.echo = echo };

	if (!c)
		return -EINVAL;
	if (flags & ~GI_GEN_BLOCK)
		return bad(c, -EINVAL, "gi_req_nop: flags 0x%x (only GI_GEN_BLOCK is allowed)", flags);
	return submit(c, &sqe, NULL, &o, tag, ret_req);
}

int gi_req_cancel(struct gi_conn *c, uint64_t req)
{
	struct gi_cancel_msg m;
	int r;

	if (!c)
		return -EINVAL;
	if (!gi_inflight_find(c, req))
		return -ENOENT;
	if (c->dead)
		return c->dead_err;
	GI_PROBE1(cancel, req);
	r = gi_cli_sq_space(&c->ring);
	if (r > 0) {
		struct gi_sqe sqe = {
			.opcode = GI_OP_CANCEL,
			.user_data = GI_INTERNAL_ID | req,
			.cancel.target = req,
		};

		*gi_cli_sqe(&c->ring, 0) = sqe;
		gi_cli_commit(&c->ring, 1);
		return 0;
	}
	/* SQ full: the control socket carries the same request. */
	memset(&m, 0, sizeof(m));
	gi_msg_init(&m.hdr, GI_MSG_CANCEL, sizeof(m), c->ctl_seq++);
	m.user_data = req;
	return gi_conn_send(c, &m, sizeof(m));
}
