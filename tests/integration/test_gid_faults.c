/* gid under faults: a client SIGKILLed mid-stream, SIGTERM with streams
 * running, the daemon SIGKILLed under a client, hostile clients (garbage
 * SQEs, corrupted ring indices, doorbell floods, garbage control messages).
 * In each case only the guilty party is affected. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/atomics.h"
#include "ipc/doorbell.h"
#include "tests/engine/golden.h"
#include "tests/integration/gidt.h"
#include "tests/t_util.h"

static struct t_golden_case golden[8];
static int n_golden;
static struct gidt_daemon dmn;

static void start(const char *const *extra)
{
	n_golden = t_golden_load(t_shared("golden/stories260K_greedy.json"), golden, 8);
	ck_assert_int_ge(n_golden, 4);
	gidt_start_ok(&dmn, extra);
}

static void stop(void)
{
	gidt_stop_ok(&dmn);
}

/* Every golden case on a new session; 0 if all match. */
static int golden_pass(void)
{
	struct gidt_conn c;
	static struct gidt_result res;
	if (gidt_connect(&c, dmn.sock) < 0)
		return -ECONNREFUSED;
	for (int g = 0; g < n_golden; g++) {
		struct gidt_params p = { .prompt = golden[g].prompt, .max_tokens = golden[g].n_output };
		int r = gidt_run(&c, &p, &res, 30000);
		if (r < 0 || res.n_ids != golden[g].n_output ||
		    memcmp(res.ids, golden[g].output_ids, res.n_ids * 4)) {
			fprintf(stderr, "golden case %d: r=%d kind %d result %d ids %u\n", g, r, res.kind,
				res.result, res.n_ids);
			gidt_close(&c);
			return -EBADMSG;
		}
	}
	gidt_close(&c);
	return 0;
}

/* Forks a client that starts a long stream, tells the parent (one byte on
 * the pipe) once tokens flow, then stops draining its CQ and waits. With
 * FORK_HOLDER it first forks a child of its own that inherits the control
 * socket and outlives it by 10 s. Returns the client's pid once tokens flow. */
static pid_t stalled_client(bool fork_holder)
{
	int p[2];
	char x;
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		struct gidt_conn c;
		if (gidt_connect(&c, dmn.sock) < 0)
			_exit(2);
		if (fork_holder && fork() == 0) {
			sleep(10);
			_exit(0);
		}
		struct gidt_params q = { .prompt = golden[3].prompt, .max_tokens = 1500 };
		if (gidt_submit(&c, 0, &q) < 0)
			_exit(3);
		struct gi_cqe ev;
		while (gi_cli_reap(&c.cli, &ev, 1) == 0)
			usleep(100);
		if (write(p[1], "x", 1) != 1)
			_exit(4);
		pause();
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &x, 1), 1);
	close(p[0]);
	return pid;
}

START_TEST(client_killed_mid_stream)
{
	start(NULL);
	static char js[65536];
	pid_t pid = stalled_client(false);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_running", 1, 5000), 1);
	ck_assert_int_gt(gidt_stats(dmn.sock, js, sizeof(js)), 0);
	ck_assert_int_gt(gidt_json_num(js, "kv_blocks_used"), 0);
	/* Its stream is stalled behind its full CQ: the engine must wait, not
	 * spin (well under half a core while nothing can move). */
	/* until its CQ is full: tokens_generated stops moving */
	long long gen = -1;
	for (int i = 0; i < 100; i++) {
		usleep(100000);
		ck_assert_int_gt(gidt_stats(dmn.sock, js, sizeof(js)), 0);
		long long g = gidt_json_num(js, "tokens_generated");
		if (g == gen)
			break;
		gen = g;
	}
	long long cpu0 = gidt_cpu_ms(dmn.pid);
	usleep(1000000);
	long long cpu = gidt_cpu_ms(dmn.pid) - cpu0;
	fprintf(stderr, "stalled stream: gid used %lld ms CPU in 1 s\n", cpu);
	ck_assert_msg(cpu < 200, "engine used %lld ms of CPU in 1 s with only a stalled stream", cpu);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* Its blocks go back to the pool, its session disappears. */
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "kv_blocks_used", 0, 5000), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "sessions", 0, 5000), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_running", 0, 5000), 0);
	/* Others are served correctly. */
	ck_assert_int_eq(golden_pass(), 0);
	stop();
}
END_TEST

/* The client forked a child that keeps the control socket open, then
 * died: the daemon still notices (pidfd) and frees its blocks. */
START_TEST(client_killed_fork_holds_socket)
{
	start(NULL);
	pid_t pid = stalled_client(true);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_running", 1, 2000), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "kv_blocks_used", 0, 5000), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "sessions", 0, 5000), 0);
	ck_assert(gidt_log_has(&dmn, "peer process exited"));
	stop();
}
END_TEST

START_TEST(sigterm_mid_stream)
{
	start((const char *const[]){ "--shutdown-grace-ms", "300", NULL });
	enum { N = 6 };
	struct gidt_conn c[N];
	static struct gidt_result res[N][1];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(gidt_connect(&c[i], dmn.sock), 0);
		struct gidt_params q = { .prompt = golden[i % n_golden].prompt, .max_tokens = 1800 };
		ck_assert_int_eq(gidt_submit(&c[i], 0, &q), 0);
	}
	/* Every stream is running when the signal comes. */
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_running", N, 5000), N);
	kill(dmn.pid, SIGTERM);
	uint64_t t0 = gidt_now_us();
	int shutdown = 0;
	for (int i = 0; i < N; i++) {
		int r = gidt_wait_all(&c[i], res[i], 1, 10000);
		ck_assert_msg(r == 0, "client %d: %s", i, strerror(-r));
		ck_assert_msg(res[i][0].kind == GI_CQE_DONE, "client %d: kind %d result %d %s", i,
			      res[i][0].kind, res[i][0].result, res[i][0].reason);
		ck_assert(res[i][0].result == GI_FINISH_SHUTDOWN || res[i][0].result == GI_FINISH_LENGTH);
		shutdown += res[i][0].result == GI_FINISH_SHUTDOWN;
		ck_assert(gi_cli_daemon_flags(&c[i].cli) & GI_DFLAG_SHUTDOWN);
	}
	ck_assert_int_gt(shutdown, 0);
	/* After the finish reasons the daemon goes, and every client sees it. */
	for (int i = 0; i < N; i++) {
		struct pollfd p = { .fd = c[i].hs.sock, .events = POLLIN | POLLRDHUP };
		ck_assert_int_eq(poll(&p, 1, 10000), 1);
		gidt_close(&c[i]);
	}
	ck_assert_uint_lt(gidt_now_us() - t0, 8000000);
	int st = gidt_stop(&dmn, 0, 10000);
	ck_assert_int_eq(st, 0);
	ck_assert(gidt_log_has(&dmn, "shutting down"));
	gidt_cleanup(&dmn);
}
END_TEST

START_TEST(daemon_killed)
{
	start(NULL);
	struct gidt_conn c;
	static struct gidt_result res;
	ck_assert_int_eq(gidt_connect(&c, dmn.sock), 0);
	struct gidt_params q = { .prompt = golden[0].prompt, .max_tokens = 1800 };
	ck_assert_int_eq(gidt_submit(&c, 0, &q), 0);
	struct gi_cqe ev;
	while (gi_cli_reap(&c.cli, &ev, 1) == 0)
		usleep(100);
	kill(dmn.pid, SIGKILL);
	waitpid(dmn.pid, NULL, 0);
	dmn.pid = 0;
	uint64_t t0 = gidt_now_us();
	int r = gidt_wait_all(&c, &res, 1, 5000);
	ck_assert_int_eq(r, -ECONNRESET);
	ck_assert_uint_lt(gidt_now_us() - t0, 1000000);
	/* The mapping outlives the daemon: reading it does not fault. */
	uint32_t sum = 0;
	const uint8_t *b = c.hs.region.base;
	for (size_t i = 0; i < c.hs.region.size; i += 4096)
		sum += b[i];
	(void)sum;
	ck_assert_int_ge(gi_cli_reap(&c.cli, &ev, 1), 0);
	gidt_close(&c);
	gidt_cleanup(&dmn);
}
END_TEST

/* A client that connects and never says HELLO: closed after the
 * handshake timeout (5 s). Exit 10 if closed in time. */
static int silent_client(void)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, dmn.sock, sizeof(dmn.sock));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 2;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char b;
	return poll(&p, 1, 9000) == 1 && recv(fd, &b, 1, 0) == 0 ? 10 : 11;
}

/* Hostile children, each on its own session. Returns its pid. */
static pid_t hostile(int kind)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid)
		return pid;
	if (kind == 5)
		_exit(silent_client());
	struct gidt_conn c;
	if (gidt_connect(&c, dmn.sock) < 0)
		_exit(2);
	struct gi_region *r = &c.hs.region;
	srand(1234 + kind);
	uint64_t end = gidt_now_us() + 1500000;
	switch (kind) {
	case 0: /* garbage SQEs with an honest tail */
		for (int round = 0; round < 50; round++) {
			for (uint32_t i = 0; i < r->layout.sq_entries; i++)
				for (size_t k = 0; k < sizeof(struct gi_sqe); k++)
					((uint8_t *)&r->sqes[i])[k] = (uint8_t)rand();
			for (uint32_t i = 0; i < r->layout.arena_size; i += 64)
				r->arena[i] = (uint8_t)rand();
			uint32_t head = gi_load_acquire(r->sq_head);
			gi_store_release(r->sq_tail, head + r->layout.sq_entries);
			gi_db_ring(c.hs.submit_efd);
			/* drain our CQ so the daemon can answer */
			uint32_t ct = gi_load_acquire(r->cq_tail);
			gi_store_release(r->cq_head, ct);
			usleep(2000);
		}
		break;
	case 1: /* random bytes everywhere, indices included */
		for (size_t i = 4096; i < r->size; i++)
			((uint8_t *)r->base)[i] = (uint8_t)rand();
		gi_db_ring(c.hs.submit_efd);
		break;
	case 2: { /* doorbell flood, until dropped (at most 10 s) */
		struct pollfd p = { .fd = c.hs.sock, .events = POLLIN | POLLRDHUP };
		end = gidt_now_us() + 10000000;
		while (gidt_now_us() < end && poll(&p, 1, 0) == 0)
			for (int i = 0; i < 1000; i++)
				gi_db_ring(c.hs.submit_efd);
		break;
	}
	case 4: { /* file descriptors sent to the daemon */
		struct gi_stats_req q = { 0 };
		gi_msg_init(&q.hdr, GI_MSG_STATS_REQ, sizeof(q), 1);
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} ctl = { 0 };
		struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		int fd = 0;
		memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
		sendmsg(c.hs.sock, &m, MSG_NOSIGNAL);
		break;
	}
	case 3: { /* garbage on the control socket */
		uint8_t junk[200];
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		send(c.hs.sock, junk, sizeof(junk), MSG_NOSIGNAL);
		break;
	}
	}
	/* Wait to be dropped (or the time to run out), then leave. */
	struct pollfd p = { .fd = c.hs.sock, .events = POLLIN | POLLRDHUP };
	int dropped = poll(&p, 1, 3000) == 1;
	_exit(dropped ? 10 : 11);
}

START_TEST(hostile_clients)
{
	start(NULL);
	enum { K = 6 };
	pid_t pids[K];
	for (int k = 0; k < K; k++)
		pids[k] = hostile(k);
	/* Meanwhile honest clients are served correctly. */
	ck_assert_int_eq(golden_pass(), 0);
	ck_assert_int_eq(golden_pass(), 0);
	int st[K];
	for (int k = 0; k < K; k++) {
		waitpid(pids[k], &st[k], 0);
		ck_assert(WIFEXITED(st[k]));
	}
	/* Bad SQEs are answered with errors and the session goes on;
	 * corrupted indices, a doorbell flood and socket garbage get the
	 * session dropped. */
	ck_assert_int_eq(WEXITSTATUS(st[0]), 11);
	ck_assert_int_eq(WEXITSTATUS(st[1]), 10);
	ck_assert_int_eq(WEXITSTATUS(st[2]), 10);
	ck_assert_int_eq(WEXITSTATUS(st[3]), 10);
	ck_assert_int_eq(WEXITSTATUS(st[4]), 10);
	ck_assert_int_eq(WEXITSTATUS(st[5]), 10);
	static char js[65536];
	ck_assert_int_gt(gidt_stats(dmn.sock, js, sizeof(js)), 0);
	ck_assert_int_ge(gidt_json_num(js, "protocol_errors"), 4);
	ck_assert_int_gt(gidt_json_num(js, "requests_rejected"), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "sessions", 0, 5000), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "kv_blocks_used", 0, 5000), 0);
	ck_assert_int_eq(golden_pass(), 0);
	stop();
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("gid_faults");
	TCase *tc = tcase_create("faults");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, client_killed_mid_stream);
	tcase_add_test(tc, client_killed_fork_holds_socket);
	tcase_add_test(tc, sigterm_mid_stream);
	tcase_add_test(tc, daemon_killed);
	tcase_add_test(tc, hostile_clients);
	suite_add_tcase(s, tc);
	return s;
}
