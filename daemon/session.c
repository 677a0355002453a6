/* Session set-up, teardown and the engine-side event backlog (see session.h). */
#include "daemon/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc/doorbell.h"
#include "ipc/session.h"

static void copy_name(char *dst, size_t cap, const char *src, size_t srclen)
{
	size_t n = strnlen(src, srclen);
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[n] = 0;
}

int session_open(int sock, const void *buf, size_t len, const struct session_ctx *ctx,
		 struct session **ret, char *reason, size_t reasonlen)
{
	struct gi_hello hello;
	struct gi_welcome welcome;
	struct gi_region_params params;
	uint32_t seq = 0;
	int r;

	if (len >= sizeof(struct gi_msg_hdr))
		memcpy(&seq, (const uint8_t *)buf + offsetof(struct gi_msg_hdr, seq), sizeof(seq));
	r = gi_hs_parse_hello(buf, len, &hello, reason, reasonlen);
	if (r < 0) {
		gi_hs_send_error(sock, seq, r, reason);
		return r;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(reason, reasonlen, "out of memory");
		gi_hs_send_error(sock, seq, -ENOMEM, reason);
		return -ENOMEM;
	}
	s->id = ctx->session_id;
	s->sock = sock;
	s->memfd = s->submit_efd = s->complete_efd = -1;
	s->peer.pidfd = -1;
	copy_name(s->client_name, sizeof(s->client_name), hello.client_name, sizeof(hello.client_name));

	r = gi_peer_identify(sock, &s->peer);
	if (r < 0) {
		snprintf(reason, reasonlen, "peer credentials: %s", strerror(-r));
		goto fail_reply;
	}
	const struct tenant_policy *t = tenant_table_match(ctx->tenants, s->peer.uid, s->peer.cgroup);
	if (!t || !t->allowed) {
		r = -EACCES;
		snprintf(reason, reasonlen, "uid %u cgroup '%s': %s", (unsigned)s->peer.uid, s->peer.cgroup,
			 t ? "tenant not allowed" : "no tenant matches");
		goto fail_reply;
	}
	snprintf(s->tenant, sizeof(s->tenant), "%s", t->name);

	r = gi_hs_negotiate(&hello, ctx->policy, s->id, &params, &welcome, reason, reasonlen);
	if (r < 0)
		goto fail_reply;
	r = gi_region_create(&params, &s->memfd, &s->region);
	if (r < 0) {
		snprintf(reason, reasonlen, "session memory: %s", strerror(-r));
		goto fail_reply;
	}
	s->features = welcome.features;
	s->submit_efd = gi_db_create();
	s->complete_efd = gi_db_create();
	if (s->submit_efd < 0 || s->complete_efd < 0) {
		r = s->submit_efd < 0 ? s->submit_efd : s->complete_efd;
		snprintf(reason, reasonlen, "doorbells: %s", strerror(-r));
		goto fail_reply;
	}
	r = gi_srv_init(&s->srv, &s->region, &ctx->policy->limits, params.start_index,
			s->submit_efd, s->complete_efd);
	if (r < 0) {
		snprintf(reason, reasonlen, "session reader: %s", strerror(-r));
		goto fail_reply;
	}
	welcome.hdr.seq = hello.hdr.seq;
	r = gi_hs_send_welcome(sock, &welcome, &s->region, s->memfd, s->submit_efd, s->complete_efd);
	if (r < 0) {
		snprintf(reason, reasonlen, "sending WELCOME: %s", strerror(-r));
		goto fail;
	}
	/* The client holds its own copy now; ours is not needed. */
	close(s->memfd);
	s->memfd = -1;
	*ret = s;
	return 0;

fail_reply:
	gi_hs_send_error(sock, hello.hdr.seq, r, reason);
fail:
	session_free(s);
	return r;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	gi_srv_fini(&s->srv);
	gi_region_release(&s->region);
	if (s->memfd >= 0)
		close(s->memfd);
	if (s->submit_efd >= 0)
		close(s->submit_efd);
	if (s->complete_efd >= 0)
		close(s->complete_efd);
	gi_peer_release(&s->peer);
	free(s->backlog.ev);
	while (s->reqs)
		session_req_end(s->reqs);
	free(s);
}

/* Queues events that did not fit in the CQ. -ENOMEM. */
static int session_backlog_push(struct session *s, const struct gi_cqe *ev, uint32_t n)
{
	struct cqe_backlog *b = &s->backlog;
	if (b->head > 0 && b->head == b->n)
		b->head = b->n = 0;
	if (b->n + n > b->cap) {
		if (b->head > 0) {
			memmove(b->ev, b->ev + b->head, (size_t)(b->n - b->head) * sizeof(*ev));
			b->n -= b->head;
			b->head = 0;
		}
		if (b->n + n > b->cap) {
			uint32_t cap = b->cap ? b->cap : 64;
			while (cap < b->n + n)
				cap *= 2;
			struct gi_cqe *e = realloc(b->ev, (size_t)cap * sizeof(*e));
			if (!e)
				return -ENOMEM;
			b->ev = e;
			b->cap = cap;
		}
	}
	memcpy(b->ev + b->n, ev, (size_t)n * sizeof(*ev));
	b->n += n;
	return 0;
}

int session_backlog_flush(struct session *s)
{
	struct cqe_backlog *b = &s->backlog;
	if (b->head == b->n)
		return 0;
	int r = gi_srv_post(&s->srv, b->ev + b->head, b->n - b->head);
	if (r < 0)
		return r;
	if (r > 0)
		s->posted = true;
	b->head += (uint32_t)r;
	if (b->head == b->n)
		b->head = b->n = 0;
	return (int)(b->n - b->head);
}

int session_post(struct session *s, const struct gi_cqe *ev, uint32_t n)
{
	uint32_t done = 0;
	if (s->backlog.head == s->backlog.n) {
		int r = gi_srv_post(&s->srv, ev, n);
		if (r < 0)
			return r;
		if (r > 0)
			s->posted = true;
		done = (uint32_t)r;
	}
	return done == n ? 0 : session_backlog_push(s, ev + done, n - done);
}

struct session_req *session_req_new(struct session *s, uint64_t user_data, uint16_t flags)
{
	struct session_req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->user_data = user_data;
	q->flags = flags;
	q->s = s;
	q->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = q;
	s->reqs = q;
	s->n_reqs++;
	return q;
}

void session_req_end(struct session_req *q)
{
	struct session *s = q->s;
	if (q->prev)
		q->prev->next = q->next;
	else
		s->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	s->n_reqs--;
	free(q);
}

struct session_req *session_req_find(const struct session *s, uint64_t user_data)
{
	for (struct session_req *q = s->reqs; q; q = q->next)
		if (q->user_data == user_data && !q->cancelled)
			return q;
	return NULL;
}
