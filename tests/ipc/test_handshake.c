/* Handshake: happy path (socketpair and a real listening socket), version
 * refusal, truncated messages, missing/extra fds, bad memfd, peer dying or
 * silent mid-handshake, peer identity. Every case checks that the client
 * process ends with exactly the fds it started with. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/doorbell.h"
#include "ipc/handshake.h"
#include "ipc/session.h"
#include "tests/t_util.h"

enum mode {
	M_OK, M_VERSION, M_TRUNC, M_LONG, M_FDS0, M_FDS2, M_FDS4, M_FDS12, M_DIE, M_SILENT,
	M_UNSEALED, M_BADLAYOUT, M_MAJOR, M_BADMAGIC, M_ERR_GARBAGE, M_SEQ
};

static const struct gi_hs_policy policy = {
	.features = GI_FEAT_ALL,
	.limits = { .max_prompt_bytes = 4096, .max_tokens = 256, .max_stop_strings = 4, .max_stop_len = 32 },
	.model_name = "stories260K",
};

static int send_raw(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 16)] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* The daemon's side, in a child process. */
static void daemon_role(int sock, enum mode mode)
{
	char buf[512];
	ssize_t n = recv(sock, buf, sizeof(buf), 0);
	struct gi_hello h;
	char err[160];
	if (n < 0 || gi_hs_parse_hello(buf, (size_t)n, &h, err, sizeof(err)))
		_exit(10);
	if (mode == M_DIE)
		_exit(0);
	if (mode == M_SILENT) {
		sleep(3);
		_exit(0);
	}
	if (mode == M_VERSION)
		h.abi_major = GI_ABI_MAJOR + 1; /* as if the client spoke another major */
	struct gi_region_params p;
	struct gi_welcome w;
	int r = gi_hs_negotiate(&h, &policy, 77, &p, &w, err, sizeof(err));
	if (r) {
		gi_hs_send_error(sock, h.hdr.seq, r, err);
		_exit(0);
	}
	if (mode == M_ERR_GARBAGE) {
		gi_hs_send_error(sock, h.hdr.seq, 5, "positive code"); /* not a negative errno */
		_exit(0);
	}
	int memfd;
	struct gi_region reg;
	if (gi_region_create(&p, &memfd, &reg))
		_exit(11);
	if (mode == M_UNSEALED) {
		close(memfd);
		memfd = memfd_create("x", MFD_CLOEXEC);
		if (ftruncate(memfd, (off_t)reg.size))
			_exit(12);
	}
	int fds[12];
	fds[0] = memfd;
	fds[1] = gi_db_create();
	fds[2] = gi_db_create();
	for (int i = 3; i < 12; i++)
		fds[i] = gi_db_create();
	w.layout = reg.layout;
	if (mode == M_BADLAYOUT)
		w.layout.sq_entries = 3;
	if (mode == M_MAJOR)
		w.abi_major = GI_ABI_MAJOR + 1;
	if (mode == M_BADMAGIC)
		w.hdr.magic = 0x12345678;
	if (mode == M_SEQ)
		w.hdr.seq += 1;
	size_t len = sizeof(w);
	if (mode == M_TRUNC)
		len -= 8;
	char big[sizeof(w) + 64] = { 0 };
	memcpy(big, &w, sizeof(w));
	if (mode == M_LONG)
		len += 32;
	int nfds = mode == M_FDS0 ? 0 : mode == M_FDS2 ? 2 : mode == M_FDS4 ? 4 : mode == M_FDS12 ? 12 : 3;
	if (mode == M_OK)
		r = gi_hs_send_welcome(sock, &w, &reg, fds[0], fds[1], fds[2]);
	else
		r = send_raw(sock, big, len, fds, nfds);
	if (r)
		_exit(13);
	/* Stay until the client closes its end. */
	recv(sock, buf, sizeof(buf), 0);
	_exit(0);
}

static int run_case(enum mode mode, struct gi_hs_session *s, char *err, size_t errlen, int timeout_ms)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		daemon_role(sv[1], mode);
	}
	close(sv[1]);
	struct gi_hs_opts o = { .client_name = "test", .timeout_ms = timeout_ms, .sq_entries = 32 };
	int r = gi_hs_client(sv[0], &o, s, err, errlen);
	if (r) {
		close(sv[0]);
	} else {
		/* Exercise the region before closing. */
		*s->region.sq_tail = 1;
		gi_hs_session_close(s);
	}
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	return r;
}

static const struct {
	enum mode mode;
	int expect;
	int timeout_ms;
} cases[] = {
	{ M_OK, 0, 5000 },
	{ M_VERSION, -EPROTONOSUPPORT, 5000 },
	{ M_TRUNC, -EPROTO, 5000 },
	{ M_LONG, -EPROTO, 5000 },
	{ M_FDS0, -EPROTO, 5000 },
	{ M_FDS2, -EPROTO, 5000 },
	{ M_FDS4, -EPROTO, 5000 },
	{ M_FDS12, -EPROTO, 5000 },
	{ M_DIE, -ECONNRESET, 5000 },
	{ M_SILENT, -ETIMEDOUT, 200 },
	{ M_UNSEALED, -EPROTO, 5000 },
	{ M_BADLAYOUT, -EPROTO, 5000 },
	{ M_MAJOR, -EPROTO, 5000 },
	{ M_BADMAGIC, -EBADMSG, 5000 },
	{ M_ERR_GARBAGE, -EPROTO, 5000 },
	{ M_SEQ, -EPROTO, 5000 },
};

START_TEST(test_client_cases)
{
	int before = t_count_fds();
	struct gi_hs_session s;
	char err[256] = "";
	int r = run_case(cases[_i].mode, &s, err, sizeof(err), cases[_i].timeout_ms);
	ck_assert_msg(r == cases[_i].expect, "mode %d: got %d (%s), expected %d", cases[_i].mode, r, err,
		      cases[_i].expect);
	if (r)
		ck_assert_msg(err[0], "mode %d: no error text", cases[_i].mode);
	ck_assert_int_eq(t_count_fds(), before);
}
END_TEST

START_TEST(test_welcome_contents)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		daemon_role(sv[1], M_OK);
	}
	close(sv[1]);
	struct gi_hs_opts o = { .client_name = "x", .sq_entries = 100, .cq_entries = 0, .arena_size = 5000 };
	struct gi_hs_session s;
	char err[160];
	ck_assert_int_eq(gi_hs_client(sv[0], &o, &s, err, sizeof(err)), 0);
	ck_assert_uint_eq(s.welcome.session_id, 77);
	ck_assert_uint_eq(s.welcome.layout.sq_entries, 128);
	ck_assert_uint_eq(s.welcome.layout.cq_entries, 512);
	ck_assert_uint_eq(s.welcome.layout.arena_size, 5056);
	ck_assert_str_eq(s.welcome.model_name, "stories260K");
	ck_assert_uint_eq(s.welcome.limits.max_tokens, 256);
	ck_assert_uint_eq(s.welcome.features, GI_FEAT_ALL);
	/* The fds are what they claim: sealed memfd, two eventfds, CLOEXEC. */
	ck_assert_int_eq(fcntl(s.memfd, F_GET_SEALS) & GI_REGION_SEALS, GI_REGION_SEALS);
	ck_assert_int_eq(ftruncate(s.memfd, 0), -1);
	ck_assert_int_eq(fallocate(s.memfd, 0, 0, 1 << 24), -1);
	ck_assert_int_eq(fcntl(s.memfd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	ck_assert(fcntl(s.submit_efd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(gi_db_ring(s.submit_efd), 0);
	gi_hs_session_close(&s);
	gi_hs_session_close(&s); /* idempotent */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(test_hello_parse)
{
	struct gi_hs_opts o = { .client_name = "abc" };
	struct gi_hello h, out;
	gi_hs_build_hello(&o, 9, &h);
	char err[160];
	ck_assert_int_eq(gi_hs_parse_hello(&h, sizeof(h), &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.client_name, "abc");
	/* Truncated, too long, empty, header-only. */
	char buf[sizeof(h) + 8] = { 0 };
	memcpy(buf, &h, sizeof(h));
	ck_assert_int_eq(gi_hs_parse_hello(buf, sizeof(h) - 1, &out, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(gi_hs_parse_hello(buf, sizeof(h) + 8, &out, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(gi_hs_parse_hello(buf, 0, &out, err, sizeof(err)), -EPROTO);
	ck_assert_int_eq(gi_hs_parse_hello(buf, 16, &out, err, sizeof(err)), -EPROTO);
	/* len field disagreeing with the bytes received. */
	struct gi_hello m = h;
	m.hdr.len = 64;
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
	m = h;
	m.hdr.type = GI_MSG_WELCOME;
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
	m = h;
	m.hdr.magic = 0;
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EBADMSG);
	m = h;
	m.reserved[2] = 1;
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
	m = h;
	m.hdr.flags = 1;
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
	m = h;
	memset(m.client_name, 'a', sizeof(m.client_name));
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
	m = h;
	m.client_name[20] = 'x'; /* text after the NUL */
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
	m = h;
	m.features = 1u << 30;
	ck_assert_int_eq(gi_hs_parse_hello(&m, sizeof(m), &out, err, sizeof(err)), -EPROTO);
}
END_TEST

START_TEST(test_negotiate)
{
	struct gi_hs_opts o = { 0 };
	struct gi_hello h;
	gi_hs_build_hello(&o, 1, &h);
	struct gi_region_params p;
	struct gi_welcome w;
	char err[160];
	ck_assert_int_eq(gi_hs_negotiate(&h, &policy, 5, &p, &w, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.sq_entries, GI_SQ_ENTRIES_DEFAULT);
	ck_assert_uint_eq(p.cq_entries, GI_SQ_ENTRIES_DEFAULT * 4);
	ck_assert_uint_eq(p.arena_size, GI_ARENA_DEFAULT);
	struct gi_layout l;
	ck_assert_int_eq(gi_layout_compute(&p, &l), 0);
	/* Huge requests are clamped to something that can be created. */
	h.sq_entries = 0xffffffffu;
	h.cq_entries = 0x80000001u;
	h.arena_size = 0xffffffffu;
	ck_assert_int_eq(gi_hs_negotiate(&h, &policy, 5, &p, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(gi_layout_compute(&p, &l), 0);
	ck_assert_uint_le(p.sq_entries, GI_SQ_ENTRIES_MAX);
	ck_assert_uint_le(p.cq_entries, GI_CQ_ENTRIES_MAX);
	ck_assert_uint_le(p.arena_size, GI_ARENA_MAX);
	/* A newer minor is served at ours; another major is refused, naming both. */
	h.abi_minor = GI_ABI_MINOR + 3;
	ck_assert_int_eq(gi_hs_negotiate(&h, &policy, 5, &p, &w, err, sizeof(err)), 0);
	ck_assert_uint_eq(w.abi_minor, GI_ABI_MINOR);
	h.abi_major = GI_ABI_MAJOR + 1;
	ck_assert_int_eq(gi_hs_negotiate(&h, &policy, 5, &p, &w, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_ptr_nonnull(strstr(err, "daemon speaks"));
}
END_TEST

START_TEST(test_connect_and_identity)
{
	int before = t_count_fds();
	char *dir = t_tmpdir();
	char path[256];
	snprintf(path, sizeof(path), "%s/gid.sock", dir);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(ls, 4), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		struct gi_peer peer;
		if (gi_peer_identify(c, &peer) || peer.pid != getppid() || peer.uid != getuid())
			_exit(20);
		/* SO_PEERPIDFD exists on this kernel (6.5+): report whether we got one. */
		if (peer.pidfd < 0 || !(fcntl(peer.pidfd, F_GETFD) & FD_CLOEXEC))
			_exit(21);
		if (peer.cgroup[0] != '/')
			_exit(22);
		gi_peer_release(&peer);
		daemon_role(c, M_OK);
	}
	struct gi_hs_session s;
	char err[160];
	struct gi_hs_opts o = { .client_name = "conn" };
	int r = gi_hs_connect(path, &o, &s, err, sizeof(err));
	ck_assert_msg(r == 0, "connect: %d %s", r, err);
	gi_hs_session_close(&s);
	int st;
	waitpid(pid, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon child status %d", WEXITSTATUS(st));
	/* No listener: a clean error. */
	unlink(path);
	ck_assert_int_eq(gi_hs_connect(path, &o, &s, err, sizeof(err)), -ENOENT);
	close(ls);
	rmdir(dir);
	free(dir);
	ck_assert_int_eq(t_count_fds(), before);
	/* Own identity through a socketpair, and the cgroup reader. */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct gi_peer me;
	ck_assert_int_eq(gi_peer_identify(sv[0], &me), 0);
	ck_assert_int_eq(me.pid, getpid());
	gi_peer_release(&me);
	close(sv[0]);
	close(sv[1]);
	char cg[512];
	ck_assert_int_eq(gi_peer_cgroup(getpid(), cg, sizeof(cg)), 0);
	ck_assert_int_eq(gi_peer_cgroup(getpid(), cg, 1), -ENAMETOOLONG);
}
END_TEST

/* gi_hs_recv_fds: exact fd count or -EPROTO with every received fd closed. */
START_TEST(test_recv_fds)
{
	int before = t_count_fds();
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	int e1 = gi_db_create(), e2 = gi_db_create();
	const int two[2] = { e1, e2 };
	char msg[8] = "abcdefg", buf[16];
	int got[4];
	ck_assert_int_eq(send_raw(sv[0], msg, sizeof(msg), two, 2), 0);
	ck_assert_int_eq(gi_hs_recv_fds(sv[1], buf, sizeof(buf), got, 2, 1000), (int)sizeof(msg));
	ck_assert(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	close(got[0]);
	close(got[1]);
	ck_assert_int_eq(send_raw(sv[0], msg, sizeof(msg), two, 2), 0);
	ck_assert_int_eq(gi_hs_recv_fds(sv[1], buf, sizeof(buf), got, 3, 1000), -EPROTO);
	ck_assert_int_eq(send_raw(sv[0], msg, sizeof(msg), two, 2), 0);
	ck_assert_int_eq(gi_hs_recv_fds(sv[1], buf, 4, got, 2, 1000), -EPROTO); /* MSG_TRUNC */
	ck_assert_int_eq(gi_hs_recv_fds(sv[1], buf, sizeof(buf), got, 0, 50), -ETIMEDOUT);
	close(sv[0]);
	ck_assert_int_eq(gi_hs_recv_fds(sv[1], buf, sizeof(buf), got, 0, 1000), -ECONNRESET);
	close(sv[1]);
	close(e1);
	close(e2);
	ck_assert_int_eq(t_count_fds(), before);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ipc_handshake");
	TCase *tc = tcase_create("handshake");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, test_client_cases, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_welcome_contents);
	tcase_add_test(tc, test_hello_parse);
	tcase_add_test(tc, test_negotiate);
	tcase_add_test(tc, test_recv_fds);
	tcase_add_test(tc, test_connect_and_identity);
	suite_add_tcase(s, tc);
	return s;
}
