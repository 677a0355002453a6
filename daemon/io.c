/* The I/O thread (see io.h). Every file descriptor it watches has one
 * io_uring operation in flight: a multishot accept on the listening socket,
 * multishot polls on each connection, the signalfd and the engine's event
 * fd, and a re-armed timeout for the timers. Completions carry
 * (kind, generation, slot) in user_data, so a completion that arrives after
 * its connection slot was reused is recognised and dropped. */
#include "daemon/io.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/chatprompt.h"
#include "daemon/engine_loop.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/session.h"
#include "daemon/stats_json.h"
#include "engine/tokenizer.h"

#define IO_TICK_MS 250
#define HANDSHAKE_TIMEOUT_MS 5000
#define SHUTDOWN_SLACK_MS 3000
#define CONN_SLACK 64     /* connections beyond max_sessions still in handshake */

enum op_kind { OP_ACCEPT = 1, OP_SIGNAL, OP_ENGINE, OP_TIMER, OP_CONN, OP_PIDFD, OP_IGNORE };

enum conn_state { CONN_FREE = 0, CONN_HANDSHAKE, CONN_ACTIVE };

struct conn {
	int fd;
	int pidfd;                /* the peer's pidfd (owned by its session), or -1 */
	enum conn_state state;
	uint32_t gen;
	uint64_t session_id;
	uint64_t opened_ms;
};

struct io {
	const struct io_opts *o;
	struct io_uring ring;
	int listen_fd, sig_fd, eng_fd;
	struct conn *conns;
	uint32_t n_conns;         /* slots */
	uint32_t n_active;        /* sessions handed to the engine */
	uint64_t next_session_id;
	struct tenant_table tenants;
	struct __kernel_timespec tick;
	bool stopping;
	bool done;
	uint64_t stop_deadline_ms;
	uint64_t last_watchdog_ms;
	struct prompt_buf pb;     /* TOKENIZE work buffers */
	uint8_t buf[GI_MSG_MAX];
	uint8_t reply[GI_MSG_MAX];
};

static uint64_t ud_make(enum op_kind k, uint32_t gen, uint32_t slot)
{
	return (uint64_t)k << 56 | (uint64_t)(gen & 0xffffffu) << 32 | slot;
}

static enum op_kind ud_kind(uint64_t ud)
{
	return (enum op_kind)(ud >> 56);
}

static struct io_uring_sqe *get_sqe(struct io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	if (!sqe) {
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

static int arm_poll(struct io *io, int fd, uint64_t ud, unsigned mask)
{
	struct io_uring_sqe *sqe = get_sqe(io);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, fd, mask);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

static int arm_poll_once(struct io *io, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(io);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

static int arm_accept(struct io *io)
{
	struct io_uring_sqe *sqe = get_sqe(io);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, io->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	io_uring_sqe_set_data64(sqe, ud_make(OP_ACCEPT, 0, 0));
	return 0;
}

static int arm_timer(struct io *io)
{
	struct io_uring_sqe *sqe = get_sqe(io);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_timeout(sqe, &io->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_make(OP_TIMER, 0, 0));
	return 0;
}

/* Removes the poll of UD; its final completion is ignored by generation. */
static void cancel_op(struct io *io, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(io);
	if (!sqe)
		return;
	io_uring_prep_poll_remove(sqe, ud);
	io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
}

static uint64_t conn_ud(const struct io *io, uint32_t slot)
{
	return ud_make(OP_CONN, io->conns[slot].gen, slot);
}

static void conn_close(struct io *io, uint32_t slot, bool violation)
{
	struct conn *c = &io->conns[slot];
	if (c->state == CONN_FREE)
		return;
	cancel_op(io, conn_ud(io, slot));
	if (c->pidfd >= 0)
		cancel_op(io, ud_make(OP_PIDFD, c->gen, slot));
	c->pidfd = -1;
	close(c->fd);
	if (c->state == CONN_ACTIVE) {
		engine_drop_session(io->o->eng, c->session_id, violation);
		io->n_active--;
	}
	c->state = CONN_FREE;
	c->fd = -1;
	c->gen++;
}

/* Sends an ERROR message and closes the connection: the peer broke the
 * protocol, only its own session is affected. */
static void conn_fail(struct io *io, uint32_t slot, uint32_t seq, int code, const char *reason)
{
	struct conn *c = &io->conns[slot];
	log_notice("session %llu (fd %d): %s", (unsigned long long)c->session_id, c->fd, reason);
	gi_hs_send_error(c->fd, seq, code, reason);
	conn_close(io, slot, true);
}

static void send_reply(struct io *io, uint32_t slot, const void *buf, size_t len)
{
	ssize_t n = send(io->conns[slot].fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN)
		log_debug("reply on fd %d: %s", io->conns[slot].fd, strerror(errno));
}

static void serve_stats(struct io *io, uint32_t slot, const struct gi_msg_hdr *h)
{
	if (h->len != sizeof(struct gi_stats_req) || h->flags > GI_STATS_F_OPENMETRICS ||
	    ((const struct gi_stats_req *)(const void *)io->buf)->reserved) {
		conn_fail(io, slot, h->seq, -EPROTO, "STATS: bad length, flags or reserved field");
		return;
	}
	static struct gid_stats st;
	engine_stats(io->o->eng, &st);
	char *text = (char *)io->reply + sizeof(struct gi_msg_hdr);
	size_t cap = sizeof(io->reply) - sizeof(struct gi_msg_hdr);
	int n = h->flags == GI_STATS_F_OPENMETRICS ? stats_format_openmetrics(&st, text, cap)
						   : stats_format_json(&st, text, cap);
	if (n < 0)
		n = 0;
	gi_msg_init((struct gi_msg_hdr *)(void *)io->reply, GI_MSG_STATS_REPLY,
		    (uint32_t)(sizeof(struct gi_msg_hdr) + (size_t)n), h->seq);
	send_reply(io, slot, io->reply, sizeof(struct gi_msg_hdr) + (size_t)n);
}

static void serve_tokenize(struct io *io, uint32_t slot, const struct gi_msg_hdr *h)
{
	struct gi_tokenize_req req;
	memcpy(&req, io->buf, sizeof(req));
	if (h->flags & ~(GI_TOKENIZE_F_ADD_BOS | GI_TOKENIZE_F_SPECIAL | GI_TOKENIZE_F_CHAT) ||
	    req.reserved || req.text_len != h->len - sizeof(req)) {
		conn_fail(io, slot, h->seq, -EPROTO, "TOKENIZE: bad flags, reserved field or text_len");
		return;
	}
	struct gi_tokenize_reply *rep = (struct gi_tokenize_reply *)(void *)io->reply;
	const uint8_t *payload = io->buf + sizeof(req);
	size_t cap = (sizeof(io->reply) - sizeof(*rep)) / sizeof(int32_t);
	char err[160];
	int n;
	if (h->flags & GI_TOKENIZE_F_CHAT) {
		n = prompt_chat(io->o->chat, io->o->tok, &io->pb, payload, req.text_len,
				!(h->flags & GI_TOKENIZE_F_ADD_BOS), err, sizeof(err));
		if (n < 0)
			log_debug("TOKENIZE of a chat list refused: %s", err);
	} else {
		n = prompt_tokenize(io->o->tok, &io->pb, (const char *)payload, req.text_len,
				    h->flags & GI_TOKENIZE_F_ADD_BOS, h->flags & GI_TOKENIZE_F_SPECIAL);
	}
	if (n > (int)cap)
		n = -E2BIG;
	if (n > 0)
		memcpy(io->reply + sizeof(*rep), io->pb.ids, (size_t)n * sizeof(int32_t));
	rep->result = n < 0 ? n : 0;
	rep->n_tokens = n < 0 ? 0 : (uint32_t)n;
	size_t len = sizeof(*rep) + (size_t)rep->n_tokens * sizeof(int32_t);
	gi_msg_init(&rep->hdr, GI_MSG_TOKENIZE_REPLY, (uint32_t)len, h->seq);
	send_reply(io, slot, io->reply, len);
}

static void serve_cancel(struct io *io, uint32_t slot, const struct gi_msg_hdr *h)
{
	struct conn *c = &io->conns[slot];
	struct gi_cancel_msg m;
	if (h->len != sizeof(m) || c->state != CONN_ACTIVE) {
		conn_fail(io, slot, h->seq, -EPROTO, "CANCEL: bad length or no session");
		return;
	}
	memcpy(&m, io->buf, sizeof(m));
	if (h->flags & ~GI_CANCEL_F_ALL || m.reserved) {
		conn_fail(io, slot, h->seq, -EPROTO, "CANCEL: unknown flags or reserved field set");
		return;
	}
	engine_cancel(io->o->eng, c->session_id, m.user_data, h->flags & GI_CANCEL_F_ALL);
}

static void serve_hello(struct io *io, uint32_t slot, size_t len, uint32_t seq)
{
	struct conn *c = &io->conns[slot];
	char reason[160];
	if (c->state != CONN_HANDSHAKE) {
		conn_fail(io, slot, seq, -EPROTO, "HELLO on an established session");
		return;
	}
	if (io->stopping || io->n_active >= io->o->cfg->max_sessions) {
		gi_hs_send_error(c->fd, seq, io->stopping ? -ESHUTDOWN : -EBUSY,
				 io->stopping ? "gid is shutting down" : "too many sessions (max_sessions)");
		conn_close(io, slot, false);
		return;
	}
	struct session_ctx ctx = {
		.policy = io->o->policy,
		.tenants = &io->tenants,
		.session_id = io->next_session_id,
	};
	struct session *s;
	int r = session_open(c->fd, io->buf, len, &ctx, &s, reason, sizeof(reason));
	if (r < 0) {
		log_info("handshake on fd %d refused: %s", c->fd, reason);
		conn_close(io, slot, false);
		return;
	}
	io->next_session_id++;
	log_debug("session %llu: pid %d uid %u tenant %s client '%s'", (unsigned long long)s->id,
		  (int)s->peer.pid, (unsigned)s->peer.uid, s->tenant, s->client_name);
	uint64_t id = s->id;
	int pidfd = s->peer.pidfd;
	r = engine_add_session(io->o->eng, s);
	if (r < 0) {
		session_free(s);
		conn_close(io, slot, false);
		return;
	}
	c->state = CONN_ACTIVE;
	c->session_id = id;
	io->n_active++;
	/* The peer's death, even while a child it forked keeps the socket
	 * open (IPC.md failure matrix): its pidfd turns readable. */
	if (pidfd >= 0 && arm_poll_once(io, pidfd, ud_make(OP_PIDFD, c->gen, slot)) == 0)
		c->pidfd = pidfd;
}

/* One datagram from a connection. */
static void conn_message(struct io *io, uint32_t slot, size_t len)
{
	struct gi_msg_hdr h;
	char err[128];
	if (len < sizeof(h)) {
		conn_fail(io, slot, 0, -EPROTO, "message shorter than its header");
		return;
	}
	memcpy(&h, io->buf, sizeof(h));
	size_t min = h.type == GI_MSG_TOKENIZE_REQ ? sizeof(struct gi_tokenize_req) : sizeof(h);
	int r = gi_msg_check(io->buf, len, h.type, min, &h, err, sizeof(err));
	if (r < 0) {
		conn_fail(io, slot, h.seq, r, err);
		return;
	}
	switch (h.type) {
	case GI_MSG_HELLO:
		serve_hello(io, slot, len, h.seq);
		break;
	case GI_MSG_CANCEL:
		serve_cancel(io, slot, &h);
		break;
	case GI_MSG_STATS_REQ:
		serve_stats(io, slot, &h);
		break;
	case GI_MSG_TOKENIZE_REQ:
		serve_tokenize(io, slot, &h);
		break;
	default:
		snprintf(err, sizeof(err), "message type %u is not one a client may send", h.type);
		conn_fail(io, slot, h.seq, -EPROTO, err);
	}
}

/* Drains the connection's socket: every datagram, then EOF or EAGAIN. */
static void conn_readable(struct io *io, uint32_t slot, unsigned revents)
{
	for (;;) {
		struct conn *c = &io->conns[slot];
		if (c->state == CONN_FREE)
			return;
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(16 * sizeof(int))];
		} ctl;
		struct iovec iov = { .iov_base = io->buf, .iov_len = sizeof(io->buf) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			conn_close(io, slot, false);
			return;
		}
		bool fds = false;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t k = 0; k < nfd; k++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(fd));
				close(fd);
			}
			fds = true;
		}
		if (fds || m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			conn_fail(io, slot, 0, -EPROTO, fds ? "client sent file descriptors"
							     : "message larger than GI_MSG_MAX");
			return;
		}
		conn_message(io, slot, (size_t)n);
	}
	if (io->conns[slot].state != CONN_FREE && revents & (POLLHUP | POLLERR | POLLRDHUP)) {
		/* Data was drained above; a half-closed peer is gone for good. */
		conn_close(io, slot, false);
	}
}

static void on_accept(struct io *io, int fd)
{
	uint32_t slot = io->n_conns;
	for (uint32_t i = 0; i < io->n_conns; i++)
		if (io->conns[i].state == CONN_FREE) {
			slot = i;
			break;
		}
	if (io->stopping || slot == io->n_conns) {
		gi_hs_send_error(fd, 0, io->stopping ? -ESHUTDOWN : -EBUSY,
				 io->stopping ? "gid is shutting down" : "too many connections");
		close(fd);
		return;
	}
	struct conn *c = &io->conns[slot];
	c->fd = fd;
	c->pidfd = -1;
	c->state = CONN_HANDSHAKE;
	c->session_id = 0;
	c->opened_ms = gid_now_ms();
	if (arm_poll(io, fd, conn_ud(io, slot), POLLIN | POLLRDHUP) < 0) {
		close(fd);
		c->state = CONN_FREE;
		c->gen++;
	}
}

static uint32_t find_session(const struct io *io, uint64_t id)
{
	for (uint32_t i = 0; i < io->n_conns; i++)
		if (io->conns[i].state == CONN_ACTIVE && io->conns[i].session_id == id)
			return i;
	return UINT32_MAX;
}

static void begin_shutdown(struct io *io, const char *why)
{
	if (io->stopping)
		return;
	log_notice("%s: shutting down (grace %u ms)", why, io->o->cfg->shutdown_grace_ms);
	notify_stopping();
	io->stopping = true;
	io->stop_deadline_ms = gid_now_ms() + io->o->cfg->shutdown_grace_ms + SHUTDOWN_SLACK_MS;
	struct io_uring_sqe *sqe = get_sqe(io);
	if (sqe) {
		io_uring_prep_cancel64(sqe, ud_make(OP_ACCEPT, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
	}
	if (io->o->unlink_path)
		unlink(io->o->unlink_path);
	engine_shutdown(io->o->eng, io->o->cfg->shutdown_grace_ms);
}

static void reload_tenants(struct io *io)
{
	const char *path = io->o->cfg->config_path;
	char err[256];
	if (!path[0]) {
		log_warn("SIGHUP: no configuration file was read at start-up; nothing to reload");
		return;
	}
	notify_reloading();
	struct tenant_table *tt = malloc(sizeof(*tt));
	int r = tt ? config_reload_tenants(path, tt, err, sizeof(err)) : -ENOMEM;
	if (r < 0) {
		log_err("SIGHUP: reload of %s failed, keeping the old tenant policy: %s", path,
			tt ? err : "out of memory");
	} else {
		io->tenants = *tt;
		io->o->cfg->tenants = *tt;
		engine_set_tenants(io->o->eng, tt);
		log_notice("SIGHUP: reloaded %u tenants from %s", tt->n, path);
	}
	free(tt);
	notify_ready("serving");
}

static void on_signal(struct io *io)
{
	struct signalfd_siginfo si;
	while (read(io->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			reload_tenants(io);
			break;
		case SIGTERM:
		case SIGINT:
			if (io->stopping) {
				log_notice("second %s: stopping now", strsignal((int)si.ssi_signo));
				io->done = true;
			} else {
				begin_shutdown(io, strsignal((int)si.ssi_signo));
			}
			break;
		default:
			break;
		}
	}
}

static void on_engine(struct io *io)
{
	uint64_t v;
	ssize_t n = read(io->eng_fd, &v, sizeof(v));
	(void)n;
	uint64_t id;
	char reason[160];
	while (engine_take_failed(io->o->eng, &id, reason, sizeof(reason)) > 0) {
		uint32_t slot = find_session(io, id);
		if (slot != UINT32_MAX)
			conn_fail(io, slot, 0, -EPROTO, reason);
	}
	if (io->stopping && engine_stopped(io->o->eng))
		io->done = true;
}

static void on_tick(struct io *io)
{
	uint64_t now = gid_now_ms();
	for (uint32_t i = 0; i < io->n_conns; i++)
		if (io->conns[i].state == CONN_HANDSHAKE && now - io->conns[i].opened_ms > HANDSHAKE_TIMEOUT_MS) {
			log_info("fd %d: no HELLO within %d ms", io->conns[i].fd, HANDSHAKE_TIMEOUT_MS);
			conn_close(io, i, false);
		}
	if (io->o->watchdog_usec && (now - io->last_watchdog_ms) * 2000 >= io->o->watchdog_usec) {
		/* Only vouch for an engine that is still turning. */
		if (now - engine_alive_ms(io->o->eng) < 2000 + io->o->watchdog_usec / 2000) {
			notify_watchdog();
			io->last_watchdog_ms = now;
		} else {
			log_warn("engine thread silent for %llu ms: withholding the watchdog ping",
				 (unsigned long long)(now - engine_alive_ms(io->o->eng)));
		}
	}
	if (io->stopping && (engine_stopped(io->o->eng) || now > io->stop_deadline_ms))
		io->done = true;
}

static void on_cqe(struct io *io, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	bool more = cqe->flags & IORING_CQE_F_MORE;
	switch (ud_kind(ud)) {
	case OP_ACCEPT:
		if (cqe->res >= 0)
			on_accept(io, cqe->res);
		else if (cqe->res != -ECANCELED && cqe->res != -EAGAIN && cqe->res != -EINTR)
			log_warn("accept: %s", strerror(-cqe->res));
		if (!more && !io->stopping)
			arm_accept(io);
		break;
	case OP_SIGNAL:
		on_signal(io);
		if (!more)
			arm_poll(io, io->sig_fd, ud, POLLIN);
		break;
	case OP_ENGINE:
		on_engine(io);
		if (!more)
			arm_poll(io, io->eng_fd, ud, POLLIN);
		break;
	case OP_TIMER:
		on_tick(io);
		arm_timer(io);
		break;
	case OP_CONN: {
		uint32_t slot = (uint32_t)ud;
		if (slot >= io->n_conns || ud != conn_ud(io, slot) || io->conns[slot].state == CONN_FREE)
			break;
		if (cqe->res < 0) {
			conn_close(io, slot, false);
			break;
		}
		conn_readable(io, slot, (unsigned)cqe->res);
		if (!more && io->conns[slot].state != CONN_FREE && ud == conn_ud(io, slot))
			arm_poll(io, io->conns[slot].fd, ud, POLLIN | POLLRDHUP);
		break;
	}
	case OP_PIDFD: {
		uint32_t slot = (uint32_t)ud;
		if (slot >= io->n_conns || cqe->res < 0 || io->conns[slot].state != CONN_ACTIVE ||
		    ud != ud_make(OP_PIDFD, io->conns[slot].gen, slot))
			break;
		log_info("session %llu: peer process exited", (unsigned long long)io->conns[slot].session_id);
		io->conns[slot].pidfd = -1;
		conn_close(io, slot, false);
		break;
	}
	default:
		break;
	}
}

static int ring_setup(struct io *io, unsigned entries)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
	int r = io_uring_queue_init_params(entries, &io->ring, &p);
	if (r == -EINVAL) {
		/* Kernels before 6.1 know neither flag. */
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(entries, &io->ring, &p);
	}
	return r;
}

static int io_setup(struct io *io, const struct io_opts *o, char *err, size_t errlen)
{
	io->o = o;
	io->listen_fd = o->listen_fd;
	io->sig_fd = -1;
	io->eng_fd = engine_event_fd(o->eng);
	io->tenants = o->cfg->tenants;
	io->next_session_id = 1;
	io->tick.tv_nsec = IO_TICK_MS * 1000000L;
	io->n_conns = o->cfg->max_sessions + CONN_SLACK;
	io->conns = calloc(io->n_conns, sizeof(*io->conns));
	if (!io->conns) {
		snprintf(err, errlen, "out of memory for %u connections", io->n_conns);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < io->n_conns; i++)
		io->conns[i].fd = io->conns[i].pidfd = -1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	io->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (io->sig_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "signalfd: %s", strerror(e));
		return -e;
	}
	int r = ring_setup(io, 256);
	if (r < 0) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-r));
		return r;
	}
	if (arm_accept(io) || arm_poll(io, io->sig_fd, ud_make(OP_SIGNAL, 0, 0), POLLIN) ||
	    arm_poll(io, io->eng_fd, ud_make(OP_ENGINE, 0, 0), POLLIN) || arm_timer(io)) {
		snprintf(err, errlen, "io_uring: no submission slots");
		return -EBUSY;
	}
	return 0;
}

int io_run(const struct io_opts *o, char *err, size_t errlen)
{
	struct io *io = calloc(1, sizeof(*io));
	if (!io) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	io->ring.ring_fd = -1;
	int r = io_setup(io, o, err, errlen);
	while (r == 0 && !io->done) {
		int w = io_uring_submit_and_wait(&io->ring, 1);
		if (w < 0 && w != -EINTR && w != -EAGAIN && w != -EBUSY) {
			snprintf(err, errlen, "io_uring_submit_and_wait: %s", strerror(-w));
			r = w;
			break;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&io->ring, head, cqe) {
			on_cqe(io, cqe);
			n++;
			if (io->done)
				break;
		}
		io_uring_cq_advance(&io->ring, n);
	}
	if (io->conns)
		for (uint32_t i = 0; i < io->n_conns; i++)
			if (io->conns[i].state != CONN_FREE)
				conn_close(io, i, false);
	if (io->ring.ring_fd >= 0)
		io_uring_queue_exit(&io->ring);
	if (io->sig_fd >= 0)
		close(io->sig_fd);
	close(io->listen_fd);
	free(io->conns);
	prompt_buf_free(&io->pb);
	free(io);
	return r;
}
