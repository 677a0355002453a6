/* Connection lifetime: open (handshake, epoll set), close, the pollable fd,
 * control-socket housekeeping and the in-flight request table. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/conn.h"
#include "common/grow.h"
#include "ipc/doorbell.h"

void gi_logf(gi_log_fn fn, void *user, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(user, level, msg);
}

int gi_opts_copy(void *dst, size_t dst_size, const void *src, const char *name,
		 gi_log_fn log, void *log_user)
{
	size_t size, i;
	const uint8_t *s = src;

	memset(dst, 0, dst_size);
	if (!src)
		return 0;
	memcpy(&size, src, sizeof(size));
	if (size < sizeof(size_t)) {
		gi_logf(log, log_user, GI_LOG_ERROR, "%s.size %zu is smaller than the size field", name,
			size);
		return -EINVAL;
	}
	for (i = dst_size; i < size; i++) {
		if (s[i]) {
			gi_logf(log, log_user, GI_LOG_ERROR,
				"%s.size %zu: byte %zu beyond this library's %zu-byte struct is not zero",
				name, size, i, dst_size);
			return -EINVAL;
		}
	}
	memcpy(dst, src, size < dst_size ? size : dst_size);
	return 0;
}

int gi_map_daemon_error(int err)
{
	switch (err) {
	case -EPROTO:
	case -EBADMSG:
		return -GI_ERR_PROTOCOL;
	case -EPROTONOSUPPORT:
		return -GI_ERR_VERSION;
	case -ESHUTDOWN:
		return -GI_ERR_SHUTDOWN;
	default:
		return err < 0 ? err : -EIO;
	}
}

void gi_conn_set_dead(struct gi_conn *c, int err)
{
	if (c->dead)
		return;
	c->dead = true;
	c->dead_err = err;
}

struct gi_inflight *gi_inflight_find(struct gi_conn *c, uint64_t id)
{
	size_t i;

	for (i = 0; i < c->n_req; i++)
		if (c->req[i].id == id)
			return &c->req[i];
	return NULL;
}

int gi_inflight_add(struct gi_conn *c, uint64_t id, uint64_t tag)
{
	struct gi_inflight *n = grow_array(c->req, &c->cap_req, c->n_req + 1, sizeof(*n), 16);

	if (!n)
		return -ENOMEM;
	c->req = n;
	c->req[c->n_req++] = (struct gi_inflight){ .id = id, .tag = tag };
	return 0;
}

void gi_inflight_remove(struct gi_conn *c, struct gi_inflight *r)
{
	free(r->buf);
	*r = c->req[--c->n_req];
}

int gi_conn_reap(struct gi_conn *c, size_t max)
{
	struct gi_cqe *nb;
	int n;

	if (c->cq_i == c->cq_n)
		c->cq_i = c->cq_n = 0;
	nb = grow_array(c->cqbuf, &c->cq_cap, c->cq_n + max, sizeof(*nb), GI_CQ_BATCH);
	if (!nb)
		return -ENOMEM;
	c->cqbuf = nb;
	n = gi_cli_reap(&c->ring, c->cqbuf + c->cq_n, (uint32_t)max);
	if (n < 0) {
		gi_clog(c, GI_LOG_ERROR, "completion ring: daemon index out of range (%s)",
			strerror(-n));
		gi_conn_set_dead(c, -GI_ERR_PROTOCOL);
		return -GI_ERR_PROTOCOL;
	}
	if (n > 0)
		c->armed = false;
	c->cq_n += (size_t)n;
	return n;
}

void gi_conn_drain_doorbell(struct gi_conn *c)
{
	/* The daemon rings at most once per cq_wait_seq value, and may ring
	 * with nothing new in the CQ (a kick after an empty step). Once a
	 * ring is consumed, the sequence it answered is spent: the next sleep
	 * must arm a fresh one, or the events that follow never ring. */
	if (gi_db_drain(c->s.complete_efd) > 0)
		c->armed = false;
}

void gi_conn_arm_for_poll(struct gi_conn *c)
{
	int r = 0;

	if (!c->armed) {
		r = gi_cli_prepare_sleep(&c->ring);
		if (r < 0)
			return;
		c->armed = true;
	}
	/* Events the daemon published before the arm rang nobody: ring our
	 * own doorbell so that gi_conn_fd() reports them. */
	if (r == 1 || c->cq_n > c->cq_i)
		gi_db_ring(c->s.complete_efd);
}

int gi_conn_send(struct gi_conn *c, const void *msg, size_t len)
{
	ssize_t n;

	do
		n = send(c->s.sock, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int err = -errno;

		if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN) {
			gi_conn_set_dead(c, -ECONNRESET);
			return -ECONNRESET;
		}
		return err;
	}
	return (size_t)n == len ? 0 : -EIO;
}

/* A session ERROR from the daemon: log its reason, end the connection. */
static void handle_error_msg(struct gi_conn *c, const uint8_t *buf, size_t len)
{
	struct gi_error_msg e;

	if (len < sizeof(e)) {
		gi_clog(c, GI_LOG_ERROR, "daemon sent a %zu-byte ERROR message (want %zu)", len,
			sizeof(e));
		gi_conn_set_dead(c, -GI_ERR_PROTOCOL);
		return;
	}
	memcpy(&e, buf, sizeof(e));
	e.reason[sizeof(e.reason) - 1] = 0;
	gi_clog(c, GI_LOG_ERROR, "daemon ended the session: %s (%d)", e.reason, e.error);
	gi_conn_set_dead(c, gi_map_daemon_error(e.error < 0 ? e.error : -EIO));
}

void gi_conn_poll_socket(struct gi_conn *c)
{
	for (;;) {
		ssize_t n = recv(c->s.sock, c->msgbuf, GI_MSG_MAX, MSG_DONTWAIT);
		struct gi_msg_hdr h;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			gi_conn_set_dead(c, -ECONNRESET);
			return;
		}
		if ((size_t)n < sizeof(h))
			continue;
		memcpy(&h, c->msgbuf, sizeof(h));
		if (h.magic == GI_MSG_MAGIC && h.type == GI_MSG_ERROR)
			handle_error_msg(c, c->msgbuf, (size_t)n);
		/* Anything else is a late reply to a query that timed out. */
	}
}

int gi_conn_process(struct gi_conn *c)
{
	struct epoll_event evs[2];
	int n, i, r;

	if (!c)
		return -EINVAL;
	n = epoll_wait(c->epfd, evs, 2, 0);
	for (i = 0; i < n; i++) {
		if (evs[i].data.u32 == GI_EPOLL_DOORBELL)
			gi_conn_drain_doorbell(c);
		else
			gi_conn_poll_socket(c);
	}
	if (!c->dead) {
		r = gi_conn_reap(c, GI_CQ_BATCH);
		if (r < 0 && !c->dead)
			return r;
	} else {
		gi_conn_reap(c, GI_CQ_BATCH);
	}
	if (c->cq_n > c->cq_i)
		return (int)(c->cq_n - c->cq_i);
	if (c->dead)
		return c->n_req ? (int)c->n_req : c->dead_err;
	return 0;
}

int gi_conn_fd(const struct gi_conn *c)
{
	return c ? c->epfd : -EINVAL;
}

unsigned gi_conn_inflight(const struct gi_conn *c)
{
	return c ? (unsigned)c->n_req : 0;
}

int gi_model_info(const struct gi_conn *c, struct gi_model_info *ret)
{
	const struct gi_welcome *w;

	if (!c || !ret)
		return -EINVAL;
	w = &c->s.welcome;
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->name, w->model_name, sizeof(w->model_name));
	ret->name[sizeof(ret->name) - 1] = 0;
	ret->n_ctx = w->limits.n_ctx;
	ret->n_vocab = w->limits.n_vocab;
	ret->max_tokens = w->limits.max_tokens;
	ret->max_prompt_bytes = w->limits.max_prompt_bytes;
	ret->max_inflight = w->limits.max_inflight;
	ret->max_stop_strings = w->limits.max_stop_strings;
	ret->max_stop_len = w->limits.max_stop_len;
	ret->session_id = w->session_id;
	return 0;
}

static const char *socket_path(const struct gi_conn_opts *o)
{
	const char *env;

	if (o->socket_path && *o->socket_path)
		return o->socket_path;
	env = secure_getenv("GI_SOCKET");
	return env && *env ? env : GI_DEFAULT_SOCKET;
}

static int epoll_add(int epfd, int fd, uint32_t events, uint32_t tag)
{
	struct epoll_event ev = { .events = events, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void gi_conn_close(struct gi_conn *c)
{
	size_t i;

	if (!c)
		return;
	gi_cli_fini(&c->ring);
	gi_hs_session_close(&c->s);
	if (c->epfd >= 0)
		close(c->epfd);
	for (i = 0; i < c->n_req; i++)
		free(c->req[i].buf);
	free(c->req);
	free(c->cqbuf);
	free(c->evbuf);
	free(c->msgbuf);
	free(c);
}

int gi_conn_open(const struct gi_conn_opts *opts, struct gi_conn **ret_conn)
{
	struct gi_conn_opts o;
	struct gi_hs_opts ho = { 0 };
	struct gi_conn *c;
	char err[256] = "";
	const char *path;
	int r;

	if (!ret_conn)
		return -EINVAL;
	r = gi_opts_copy(&o, sizeof(o), opts, "gi_conn_opts", opts ? opts->log : NULL,
			 opts ? opts->log_user : NULL);
	if (r < 0)
		return r;
	if (o.flags) {
		gi_logf(o.log, o.log_user, GI_LOG_ERROR, "gi_conn_opts.flags 0x%x: no flags are defined",
			o.flags);
		return -EINVAL;
	}
	if ((o.sq_entries & (o.sq_entries - 1)) || (o.cq_entries & (o.cq_entries - 1))) {
		gi_logf(o.log, o.log_user, GI_LOG_ERROR,
			"gi_conn_opts: sq_entries %u and cq_entries %u must be 0 or powers of two",
			o.sq_entries, o.cq_entries);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->s.sock = c->s.memfd = c->s.submit_efd = c->s.complete_efd = -1;
	c->epfd = -1;
	c->log = o.log;
	c->log_user = o.log_user;
	c->spin_us = o.spin_us == 0 ? GI_SPIN_US_DEFAULT : o.spin_us;
	c->next_id = 1;
	c->ctl_seq = 2; /* 1 is the HELLO's */
	c->msgbuf = malloc(GI_MSG_MAX);
	if (!c->msgbuf) {
		r = -ENOMEM;
		goto fail;
	}

	path = socket_path(&o);
	ho.sq_entries = o.sq_entries;
	ho.cq_entries = o.cq_entries;
	ho.arena_size = o.arena_size;
	ho.client_name = o.app_name ? o.app_name : program_invocation_short_name;
	ho.timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 5000;
	r = gi_hs_connect(path, &ho, &c->s, err, sizeof(err));
	if (r < 0) {
		if (*err)
			gi_logf(o.log, o.log_user, GI_LOG_ERROR, "%s", err);
		else
			gi_logf(o.log, o.log_user, GI_LOG_ERROR, "connect to %s: %s", path, strerror(-r));
		r = gi_map_daemon_error(r);
		goto fail;
	}
	r = gi_cli_init(&c->ring, &c->s.region, c->s.submit_efd, c->s.complete_efd);
	if (r < 0) {
		gi_logf(o.log, o.log_user, GI_LOG_ERROR, "session rings from %s: %s", path,
			strerror(-r));
		r = gi_map_daemon_error(r);
		goto fail;
	}
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0) {
		r = -errno;
		goto fail;
	}
	r = epoll_add(c->epfd, c->s.complete_efd, EPOLLIN, GI_EPOLL_DOORBELL);
	if (r == 0)
		r = epoll_add(c->epfd, c->s.sock, EPOLLIN | EPOLLRDHUP, GI_EPOLL_SOCKET);
	if (r < 0)
		goto fail;
	*ret_conn = c;
	return 0;
fail:
	gi_conn_close(c);
	return r;
}
