/* Control-socket handshake: HELLO / WELCOME / ERROR, fd passing, peer identity. */
#include "ipc/handshake.h"
#include "common/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; glibc headers may lack it */
#endif

#define HS_FDS 3
#define HS_MAX_RECV_FDS 8 /* room to see (and reject) extra fds instead of truncating */


static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint32_t round_pow2(uint32_t v)
{
	uint32_t p = 1;
	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

/* ---- peer identity ---- */

int gi_peer_cgroup(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char data[4096];
	ssize_t n = read(fd, data, sizeof(data) - 1);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	data[n] = 0;
	/* cgroup v2: the line "0::/path". */
	for (char *line = data; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, "0::", 3)) {
			if (strlen(line + 3) >= len)
				return -ENAMETOOLONG;
			strcpy(buf, line + 3);
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int gi_peer_identify(int sock, struct gi_peer *ret)
{
	struct ucred cred;
	socklen_t sl = sizeof(cred);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0)
		return -errno;
	struct gi_peer p = { .pid = cred.pid, .uid = cred.uid, .gid = cred.gid, .pidfd = -1 };
	int pidfd;
	sl = sizeof(pidfd);
	/* 6.5+; older kernels say ENOPROTOOPT and we rely on socket EOF alone. */
	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &sl) == 0 && sl == sizeof(pidfd))
		p.pidfd = pidfd;
	if (gi_peer_cgroup(p.pid, p.cgroup, sizeof(p.cgroup)) < 0)
		p.cgroup[0] = 0;
	*ret = p;
	return 0;
}

void gi_peer_release(struct gi_peer *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

/* ---- messages ---- */

void gi_msg_init(struct gi_msg_hdr *h, uint16_t type, uint32_t len, uint32_t seq)
{
	*h = (struct gi_msg_hdr){ .magic = GI_MSG_MAGIC, .type = type, .len = len, .seq = seq };
}

int gi_msg_check(const void *buf, size_t len, uint16_t type, size_t min_len,
		 struct gi_msg_hdr *ret, char *err, size_t errlen)
{
	struct gi_msg_hdr h;
	if (len < sizeof(h))
		return errmsg(err, errlen, -EPROTO, "message of %zu bytes shorter than its header", len);
	memcpy(&h, buf, sizeof(h));
	if (h.magic != GI_MSG_MAGIC)
		return errmsg(err, errlen, -EBADMSG, "message magic 0x%08x, expected 0x%08x", h.magic,
			    GI_MSG_MAGIC);
	if (h.type != type)
		return errmsg(err, errlen, -EPROTO, "message type %u, expected %u", h.type, type);
	if (h.len != len)
		return errmsg(err, errlen, -EPROTO, "message len field %u but %zu bytes received", h.len, len);
	if (len < min_len || len > GI_MSG_MAX)
		return errmsg(err, errlen, -EPROTO, "message type %u of %zu bytes, need %zu..%u", type, len,
			    min_len, GI_MSG_MAX);
	*ret = h;
	return 0;
}

static int send_all(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int) * HS_FDS)];
		struct cmsghdr align;
	} cmsg;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds > 0) {
		memset(&cmsg, 0, sizeof(cmsg));
		msg.msg_control = cmsg.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		/* SEQPACKET sends whole records or fails. */
		return (size_t)n == len ? 0 : -EIO;
	}
}

/* ---- daemon side ---- */

int gi_hs_parse_hello(const void *buf, size_t len, struct gi_hello *ret, char *err, size_t errlen)
{
	struct gi_msg_hdr h;
	int r = gi_msg_check(buf, len, GI_MSG_HELLO, sizeof(struct gi_hello), &h, err, errlen);
	if (r)
		return r;
	if (len != sizeof(struct gi_hello))
		return errmsg(err, errlen, -EPROTO, "hello of %zu bytes, expected %zu", len,
			    sizeof(struct gi_hello));
	struct gi_hello m;
	memcpy(&m, buf, sizeof(m));
	if (m.hdr.flags)
		return errmsg(err, errlen, -EPROTO, "hello flags 0x%x must be 0", m.hdr.flags);
	if (m.reserved0 || !all_zero(m.reserved, sizeof(m.reserved)))
		return errmsg(err, errlen, -EPROTO, "hello reserved fields must be 0");
	if ((m.features & ~GI_FEAT_ALL) && m.abi_minor <= GI_ABI_MINOR)
		return errmsg(err, errlen, -EPROTO, "hello features 0x%x has unknown bits", m.features);
	/* client_name: text then NUL padding to the end. */
	size_t nl = strnlen(m.client_name, sizeof(m.client_name));
	if (nl == sizeof(m.client_name) || !all_zero(m.client_name + nl, sizeof(m.client_name) - nl))
		return errmsg(err, errlen, -EPROTO, "hello client_name not NUL-padded");
	*ret = m;
	return 0;
}

int gi_hs_negotiate(const struct gi_hello *h, const struct gi_hs_policy *policy,
		    uint64_t session_id, struct gi_region_params *ret_params,
		    struct gi_welcome *ret_welcome, char *err, size_t errlen)
{
	if (h->abi_major != GI_ABI_MAJOR)
		return errmsg(err, errlen, -EPROTONOSUPPORT, "client ABI %u.%u, daemon speaks %u.%u",
			    h->abi_major, h->abi_minor, GI_ABI_MAJOR, GI_ABI_MINOR);
	uint32_t sq_max = policy->sq_max ? policy->sq_max : GI_SQ_ENTRIES_MAX;
	uint32_t cq_max = policy->cq_max ? policy->cq_max : GI_CQ_ENTRIES_MAX;
	uint32_t arena_max = policy->arena_max ? policy->arena_max : GI_ARENA_MAX;
	if (sq_max > GI_SQ_ENTRIES_MAX)
		sq_max = GI_SQ_ENTRIES_MAX;
	if (cq_max > GI_CQ_ENTRIES_MAX)
		cq_max = GI_CQ_ENTRIES_MAX;
	if (arena_max > GI_ARENA_MAX)
		arena_max = GI_ARENA_MAX;
	uint32_t sq = round_pow2(h->sq_entries ? h->sq_entries : GI_SQ_ENTRIES_DEFAULT);
	if (sq > sq_max)
		sq = round_pow2(sq_max / 2 + 1);
	uint32_t cq = round_pow2(h->cq_entries ? h->cq_entries : sq * GI_CQ_ENTRIES_MIN_FACTOR);
	if (cq < sq * GI_CQ_ENTRIES_MIN_FACTOR)
		cq = sq * GI_CQ_ENTRIES_MIN_FACTOR;
	while (cq > cq_max && cq > sq)
		cq >>= 1;
	uint32_t arena = h->arena_size ? h->arena_size : GI_ARENA_DEFAULT;
	if (arena > arena_max)
		arena = arena_max;
	uint16_t minor = (uint16_t)min_u32(h->abi_minor, GI_ABI_MINOR);
	*ret_params = (struct gi_region_params){
		.sq_entries = sq,
		.cq_entries = cq,
		.arena_size = arena,
		.features = h->features & policy->features & GI_FEAT_ALL,
		.session_id = session_id,
		.abi_minor = minor,
	};
	struct gi_welcome w = {
		.abi_major = GI_ABI_MAJOR,
		.abi_minor = minor,
		.features = ret_params->features,
		.session_id = session_id,
		.limits = policy->limits,
	};
	gi_msg_init(&w.hdr, GI_MSG_WELCOME, sizeof(w), h->hdr.seq);
	if (policy->model_name)
		strncpy(w.model_name, policy->model_name, sizeof(w.model_name) - 1);
	*ret_welcome = w;
	return 0;
}

int gi_hs_send_welcome(int sock, struct gi_welcome *w, const struct gi_region *region,
		       int memfd, int submit_efd, int complete_efd)
{
	w->layout = region->layout;
	const int fds[HS_FDS] = { memfd, submit_efd, complete_efd };
	return send_all(sock, w, sizeof(*w), fds, HS_FDS);
}

int gi_hs_send_error(int sock, uint32_t seq, int error_code, const char *reason)
{
	struct gi_error_msg m = { .error = error_code, .abi_major = GI_ABI_MAJOR, .abi_minor = GI_ABI_MINOR };
	gi_msg_init(&m.hdr, GI_MSG_ERROR, sizeof(m), seq);
	if (reason)
		strncpy(m.reason, reason, sizeof(m.reason) - 1);
	return send_all(sock, &m, sizeof(m), NULL, 0);
}

/* ---- client side ---- */

void gi_hs_build_hello(const struct gi_hs_opts *o, uint32_t seq, struct gi_hello *ret)
{
	struct gi_hello h = {
		.abi_major = GI_ABI_MAJOR,
		.abi_minor = GI_ABI_MINOR,
		.features = o->features ? o->features : GI_FEAT_ALL,
		.sq_entries = o->sq_entries,
		.cq_entries = o->cq_entries,
		.arena_size = o->arena_size,
	};
	gi_msg_init(&h.hdr, GI_MSG_HELLO, sizeof(h), seq);
	if (o->client_name)
		strncpy(h.client_name, o->client_name, sizeof(h.client_name) - 1);
	*ret = h;
}

static int parse_error(const void *buf, size_t len, char *err, size_t errlen)
{
	struct gi_msg_hdr h;
	int r = gi_msg_check(buf, len, GI_MSG_ERROR, sizeof(struct gi_error_msg), &h, err, errlen);
	if (r)
		return r;
	struct gi_error_msg m;
	memcpy(&m, buf, sizeof(m));
	/* The daemon's code must look like a negative errno. */
	if (m.error >= 0 || m.error < -4095)
		return errmsg(err, errlen, -EPROTO, "error message code %d is not a negative errno", m.error);
	m.reason[sizeof(m.reason) - 1] = 0;
	return errmsg(err, errlen, m.error, "daemon refused (ABI %u.%u): %s", m.abi_major, m.abi_minor,
		    m.reason);
}

int gi_hs_parse_welcome(const void *buf, size_t len, struct gi_welcome *ret, char *err, size_t errlen)
{
	struct gi_msg_hdr h;
	if (len >= sizeof(h)) {
		memcpy(&h, buf, sizeof(h));
		if (h.magic == GI_MSG_MAGIC && h.type == GI_MSG_ERROR)
			return parse_error(buf, len, err, errlen);
	}
	int r = gi_msg_check(buf, len, GI_MSG_WELCOME, sizeof(struct gi_welcome), &h, err, errlen);
	if (r)
		return r;
	if (len != sizeof(struct gi_welcome))
		return errmsg(err, errlen, -EPROTO, "welcome of %zu bytes, expected %zu", len,
			    sizeof(struct gi_welcome));
	struct gi_welcome w;
	memcpy(&w, buf, sizeof(w));
	if (w.hdr.flags || w.abi_major != GI_ABI_MAJOR || w.abi_minor > GI_ABI_MINOR)
		return errmsg(err, errlen, -EPROTO, "welcome ABI %u.%u flags 0x%x, client speaks %u.%u",
			    w.abi_major, w.abi_minor, w.hdr.flags, GI_ABI_MAJOR, GI_ABI_MINOR);
	if (w.features & ~GI_FEAT_ALL)
		return errmsg(err, errlen, -EPROTO, "welcome features 0x%x has unknown bits", w.features);
	if (w.limits.reserved0 || !all_zero(w.reserved, sizeof(w.reserved)))
		return errmsg(err, errlen, -EPROTO, "welcome reserved fields must be 0");
	if (gi_layout_check(&w.layout))
		return errmsg(err, errlen, -EPROTO, "welcome layout inconsistent (sq %u cq %u arena %u size %llu)",
			    w.layout.sq_entries, w.layout.cq_entries, w.layout.arena_size,
			    (unsigned long long)w.layout.region_size);
	w.model_name[sizeof(w.model_name) - 1] = 0;
	*ret = w;
	return 0;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* Receives one message and up to HS_MAX_RECV_FDS fds (CLOEXEC). */
static int recv_msg(int sock, void *buf, size_t cap, int *fds, int *ret_nfds, int timeout_ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	union {
		char buf[CMSG_SPACE(sizeof(int) * HS_MAX_RECV_FDS)];
		struct cmsghdr align;
	} cmsg;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cmsg.buf,
			      .msg_controllen = sizeof(cmsg.buf) };
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	int nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < HS_MAX_RECV_FDS)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(fds, nfds);
		return -EPROTO;
	}
	if (n == 0) {
		close_fds(fds, nfds);
		return -ECONNRESET;
	}
	*ret_nfds = nfds;
	return (int)n;
}

int gi_hs_recv_fds(int sock, void *buf, size_t cap, int *fds, int want_fds, int timeout_ms)
{
	int got[HS_MAX_RECV_FDS];
	int nfds = 0;
	int n = recv_msg(sock, buf, cap, got, &nfds, timeout_ms);
	if (n < 0)
		return n;
	if (nfds != want_fds) {
		close_fds(got, nfds);
		return -EPROTO;
	}
	memcpy(fds, got, sizeof(int) * (size_t)nfds);
	return n;
}

int gi_hs_client(int sock, const struct gi_hs_opts *opts, struct gi_hs_session *ret,
		 char *err, size_t errlen)
{
	const uint32_t seq = 1;
	struct gi_hello hello;
	gi_hs_build_hello(opts, seq, &hello);
	int r = send_all(sock, &hello, sizeof(hello), NULL, 0);
	if (r)
		return errmsg(err, errlen, r, "sending hello: %s", strerror(-r));
	/* Large enough to notice an oversized reply (MSG_TRUNC otherwise). */
	union {
		struct gi_welcome w;
		char raw[sizeof(struct gi_welcome) + 64];
	} buf;
	int fds[HS_MAX_RECV_FDS];
	int nfds = 0;
	int n = recv_msg(sock, &buf, sizeof(buf), fds, &nfds,
			 opts->timeout_ms > 0 ? opts->timeout_ms : 5000);
	if (n < 0)
		return errmsg(err, errlen, n, "receiving welcome: %s", strerror(-n));
	struct gi_welcome w;
	r = gi_hs_parse_welcome(&buf, (size_t)n, &w, err, errlen);
	if (r) {
		close_fds(fds, nfds);
		return r;
	}
	if (nfds != HS_FDS) {
		close_fds(fds, nfds);
		return errmsg(err, errlen, -EPROTO, "welcome carried %d fds, expected %d", nfds, HS_FDS);
	}
	if (w.hdr.seq != seq) {
		close_fds(fds, nfds);
		return errmsg(err, errlen, -EPROTO, "welcome seq %u, hello was %u", w.hdr.seq, seq);
	}
	struct gi_hs_session s = {
		.sock = sock,
		.memfd = fds[0],
		.submit_efd = fds[1],
		.complete_efd = fds[2],
		.welcome = w,
	};
	r = gi_region_attach(s.memfd, &w.layout, w.session_id, &s.region);
	if (r) {
		close_fds(fds, nfds);
		return errmsg(err, errlen, r, "session memfd rejected (seals, size or header): %s",
			    strerror(-r));
	}
	*ret = s;
	return 0;
}

int gi_hs_connect(const char *path, const struct gi_hs_opts *opts, struct gi_hs_session *ret,
		  char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return errmsg(err, errlen, -ENAMETOOLONG, "socket path %s too long", path);
	strcpy(sa.sun_path, path);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return errmsg(err, errlen, -errno, "socket: %s", strerror(errno));
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(sock);
		return errmsg(err, errlen, e, "connect %s: %s", path, strerror(-e));
	}
	int r = gi_hs_client(sock, opts, ret, err, errlen);
	if (r)
		close(sock);
	return r;
}

void gi_hs_session_close(struct gi_hs_session *s)
{
	gi_region_release(&s->region);
	int fds[] = { s->sock, s->memfd, s->submit_efd, s->complete_efd };
	close_fds(fds, 4);
	s->sock = s->memfd = s->submit_efd = s->complete_efd = -1;
}
