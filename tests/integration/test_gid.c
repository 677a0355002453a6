/* gid end to end: a real daemon on a temporary socket serving
 * stories260K to real client processes (golden greedy outputs, seeded
 * sampling, concurrency, stats, errors as events). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/engine/golden.h"
#include "tests/integration/gidt.h"
#include "tests/t_util.h"

#define N_GOLDEN_MAX 8

static struct t_golden_case golden[N_GOLDEN_MAX];
static int n_golden;
static struct gidt_daemon dmn;

static void load_golden(void)
{
	n_golden = t_golden_load(t_shared("golden/stories260K_greedy.json"), golden, N_GOLDEN_MAX);
	ck_assert_int_ge(n_golden, 4);
}

static void start(const char *const *extra)
{
	gidt_start_ok(&dmn, extra);
}

static void stop(void)
{
	gidt_stop_ok(&dmn);
}

/* Runs golden case G greedily on C; 0 if ids match exactly. */
static int check_golden(struct gidt_conn *c, int g, struct gidt_result *res)
{
	struct gidt_params p = { .prompt = golden[g].prompt, .max_tokens = golden[g].n_output };
	int r = gidt_run(c, &p, res, 30000);
	if (r < 0)
		return r;
	if (res->kind != GI_CQE_DONE || res->result != GI_FINISH_LENGTH)
		return -EBADMSG;
	if (res->n_ids != golden[g].n_output || res->n_prompt != golden[g].n_prompt)
		return -EBADMSG;
	return memcmp(res->ids, golden[g].output_ids, golden[g].n_output * sizeof(int32_t)) ? -EBADMSG : 0;
}

START_TEST(one_client_golden)
{
	load_golden();
	start(NULL);
	struct gidt_conn c;
	ck_assert_int_eq(gidt_connect(&c, dmn.sock), 0);
	static struct gidt_result res;
	for (int g = 0; g < n_golden; g++) {
		int r = check_golden(&c, g, &res);
		ck_assert_msg(r == 0, "case %d: %s (kind %d result %d, %u ids, %u prompt): %s", g, strerror(-r),
			      res.kind, res.result, res.n_ids, res.n_prompt, res.reason);
	}
	/* The text of the first case, as llama.cpp printed it. */
	struct gidt_params p = { .prompt = golden[0].prompt, .max_tokens = golden[0].n_output };
	ck_assert_int_eq(gidt_run(&c, &p, &res, 30000), 0);
	ck_assert_str_eq(res.text, ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw");
	gidt_close(&c);
	stop();
}
END_TEST

/* Child: runs every golden case on its own session, then a seeded sampled
 * request whose ids it writes to FD. Exit 0 if all golden cases matched. */
static int golden_child(int i, int fd)
{
	struct gidt_conn c;
	if (gidt_connect(&c, dmn.sock) < 0)
		return 2;
	static struct gidt_result res;
	int g = i % n_golden;
	for (int k = 0; k < 2; k++, g = (g + 1) % n_golden)
		if (check_golden(&c, g, &res) < 0) {
			fprintf(stderr, "child %d case %d: kind %d result %d n_ids %u %s\n", i, g, res.kind,
				res.result, res.n_ids, res.reason);
			return 1;
		}
	struct gidt_params p = { .prompt = "Once upon a time", .max_tokens = 24, .temperature = 0.9f,
				 .top_k = 40, .top_p = 0.95f, .seed = (uint32_t)(1000 + i % 2) };
	if (gidt_run(&c, &p, &res, 30000) < 0 || res.kind != GI_CQE_DONE)
		return 3;
	ssize_t w = write(fd, &res.n_ids, sizeof(res.n_ids));
	w += write(fd, res.ids, res.n_ids * sizeof(int32_t));
	gidt_close(&c);
	return w > 0 ? 0 : 4;
}

START_TEST(clients_32_golden_and_seeded)
{
	load_golden();
	start((const char *const[]){ "--max-running", "32", NULL });
	enum { N = 32 };
	int fds[N][2];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pipe(fds[i]), 0);
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			close(fds[i][0]);
			_exit(golden_child(i, fds[i][1]));
		}
		close(fds[i][1]);
	}
	static int32_t ids[N][64];
	uint32_t n_ids[N] = { 0 };
	int failed = 0;
	for (int i = 0; i < N; i++) {
		ssize_t r = read(fds[i][0], &n_ids[i], sizeof(n_ids[i]));
		if (r == sizeof(n_ids[i]) && n_ids[i] <= 64)
			r = read(fds[i][0], ids[i], n_ids[i] * sizeof(int32_t));
		close(fds[i][0]);
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "client %d: status %d\n", i, st);
			failed++;
		}
	}
	if (failed)
		gidt_dump_log(&dmn);
	ck_assert_int_eq(failed, 0);
	/* Same seed, same request, same tokens; the two seeds differ. */
	for (int i = 2; i < N; i++) {
		ck_assert_uint_eq(n_ids[i], n_ids[i % 2]);
		ck_assert_int_eq(memcmp(ids[i], ids[i % 2], n_ids[i] * sizeof(int32_t)), 0);
	}
	ck_assert_msg(n_ids[0] != n_ids[1] || memcmp(ids[0], ids[1], n_ids[0] * sizeof(int32_t)),
		      "different seeds gave identical samples");
	static char js[65536];
	ck_assert_int_gt(gidt_stats(dmn.sock, js, sizeof(js)), 0);
	ck_assert_int_ge(gidt_json_num(js, "requests_total"), N * 3);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "sessions", 0, 5000), 0);
	stop();
}
END_TEST

START_TEST(errors_are_events)
{
	load_golden();
	start((const char *const[]){ "--ctx", "256", NULL });
	struct gidt_conn c;
	ck_assert_int_eq(gidt_connect(&c, dmn.sock), 0);
	static struct gidt_result res;
	/* A prompt longer than the context. */
	static char longp[4096];
	for (int i = 0; i < 400; i++)
		memcpy(longp + 5 * i, "Lily ", 5);
	struct gidt_params p = { .prompt = longp, .max_tokens = 4 };
	ck_assert_int_eq(gidt_run(&c, &p, &res, 10000), 0);
	ck_assert_int_eq(res.kind, GI_CQE_ERROR);
	ck_assert_int_eq(res.result, -E2BIG);
	/* Bad parameters: a token id beyond the vocabulary. */
	int32_t bad[2] = { 1, 100000 };
	p = (struct gidt_params){ .ids = bad, .n_ids = 2, .max_tokens = 4 };
	ck_assert_int_eq(gidt_run(&c, &p, &res, 10000), 0);
	ck_assert_int_eq(res.kind, GI_CQE_ERROR);
	ck_assert_int_eq(res.result, -EINVAL);
	/* The session goes on: a golden case still matches. */
	ck_assert_int_eq(check_golden(&c, 0, &res), 0);
	/* Token-id prompt gives the same output as the text. */
	p = (struct gidt_params){ .ids = golden[0].prompt_ids, .n_ids = golden[0].n_prompt,
				  .max_tokens = golden[0].n_output };
	ck_assert_int_eq(gidt_run(&c, &p, &res, 10000), 0);
	ck_assert_int_eq(memcmp(res.ids, golden[0].output_ids, golden[0].n_output * 4), 0);
	/* A stop string ends the request and is not in the text. */
	p = (struct gidt_params){ .prompt = golden[0].prompt, .max_tokens = 32, .stop = "Lily" };
	ck_assert_int_eq(gidt_run(&c, &p, &res, 10000), 0);
	ck_assert_int_eq(res.kind, GI_CQE_DONE);
	ck_assert_int_eq(res.result, GI_FINISH_STOP);
	ck_assert_str_eq(res.text, ", there was a little girl named ");
	gidt_close(&c);
	stop();
}
END_TEST

/* 256 sessions with 4 requests each in flight at once. */
START_TEST(sessions_256_requests_1024)
{
	load_golden();
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	ck_assert_uint_ge(rl.rlim_cur, 2048);
	start((const char *const[]){ "--max-running", "256", "--max-batch-tokens", "2048", NULL });
	enum { S = 256, R = 4, T = 4 };
	static struct gidt_conn c[S];
	static struct gidt_result res[S][R];
	for (int i = 0; i < S; i++) {
		int r = gidt_connect(&c[i], dmn.sock);
		ck_assert_msg(r == 0, "session %d: %s", i, strerror(-r));
	}
	for (int i = 0; i < S; i++)
		for (int k = 0; k < R; k++) {
			int g = (i + k) % n_golden;
			struct gidt_params p = { .prompt = golden[g].prompt, .max_tokens = T };
			ck_assert_int_eq(gidt_submit(&c[i], (uint64_t)k, &p), 0);
		}
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "sessions", S, 5000), S);
	for (int i = 0; i < S; i++) {
		int r = gidt_wait_all(&c[i], res[i], R, 60000);
		ck_assert_msg(r == 0, "session %d: %s", i, strerror(-r));
		for (int k = 0; k < R; k++) {
			int g = (i + k) % n_golden;
			ck_assert_msg(res[i][k].kind == GI_CQE_DONE && res[i][k].n_ids == T &&
					      !memcmp(res[i][k].ids, golden[g].output_ids, T * 4),
				      "session %d request %d: kind %d result %d %s", i, k, res[i][k].kind,
				      res[i][k].result, res[i][k].reason);
		}
	}
	/* One more session is refused while all 256 are open. */
	struct gidt_conn extra;
	ck_assert_int_eq(gidt_connect(&extra, dmn.sock), -EBUSY);
	for (int i = 0; i < S; i++)
		gidt_close(&c[i]);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "sessions", 0, 10000), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_done", S * R, 1000), S * R);
	stop();
}
END_TEST

START_TEST(cancel_nop_chat)
{
	load_golden();
	start(NULL);
	struct gidt_conn c;
	ck_assert_int_eq(gidt_connect(&c, dmn.sock), 0);
	static struct gidt_result res[4];
	struct gi_cqe ev;

	/* CANCEL as an SQE, once the stream runs. */
	struct gidt_params p = { .prompt = golden[0].prompt, .max_tokens = 2000 };
	ck_assert_int_eq(gidt_submit(&c, 0, &p), 0);
	while (gi_cli_reap(&c.cli, &ev, 1) == 0)
		usleep(100);
	struct gi_sqe q = { .opcode = GI_OP_CANCEL, .user_data = 1, .cancel.target = 0 };
	ck_assert_int_eq(gidt_submit_sqe(&c, &q), 0);
	ck_assert_int_eq(gidt_wait_all(&c, res, 2, 10000), 0);
	ck_assert_int_eq(res[0].kind, GI_CQE_DONE);
	ck_assert_int_eq(res[0].result, GI_FINISH_CANCELLED);
	ck_assert_int_eq(res[1].kind, GI_CQE_CANCEL);
	ck_assert_int_eq(res[1].result, 0);
	/* Cancelling what is not there. */
	memset(res, 0, sizeof(res));
	q.cancel.target = 77;
	q.user_data = 0;
	ck_assert_int_eq(gidt_submit_sqe(&c, &q), 0);
	ck_assert_int_eq(gidt_wait_all(&c, res, 1, 10000), 0);
	ck_assert_int_eq(res[0].result, -ENOENT);

	/* CANCEL over the socket, every request of the session. */
	memset(res, 0, sizeof(res));
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(gidt_submit(&c, (uint64_t)i, &p), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_running", 2, 5000), 2);
	struct gi_cancel_msg m = { 0 };
	gi_msg_init(&m.hdr, GI_MSG_CANCEL, sizeof(m), 3);
	m.hdr.flags = GI_CANCEL_F_ALL;
	ck_assert_int_eq(send(c.hs.sock, &m, sizeof(m), 0), sizeof(m));
	ck_assert_int_eq(gidt_wait_all(&c, res, 2, 10000), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(res[i].result, GI_FINISH_CANCELLED);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "kv_blocks_used", 0, 5000), 0);

	/* NOP echoes. */
	memset(res, 0, sizeof(res));
	q = (struct gi_sqe){ .opcode = GI_OP_NOP, .user_data = 0, .nop.echo = 4242 };
	ck_assert_int_eq(gidt_submit_sqe(&c, &q), 0);
	ck_assert_int_eq(gidt_wait_all(&c, res, 1, 10000), 0);
	ck_assert_int_eq(res[0].kind, GI_CQE_NOP);
	ck_assert_uint_eq(res[0].n_gen, 4242);

	/* A chat request: the template (chatml for this model) is applied. */
	static uint8_t chat[256];
	const char *msg = "Tell me a story.";
	uint32_t role = GI_ROLE_USER, len = (uint32_t)strlen(msg);
	memcpy(chat, &role, 4);
	memcpy(chat + 4, &len, 4);
	memcpy(chat + 8, msg, len);
	memset(res, 0, sizeof(res));
	p = (struct gidt_params){ .raw = chat, .raw_len = 8 + ((len + 3) & ~3u), .flags = GI_SQE_F_CHAT,
				  .max_tokens = 8 };
	ck_assert_int_eq(gidt_run(&c, &p, res, 10000), 0);
	ck_assert_msg(res[0].kind == GI_CQE_DONE, "chat: kind %d result %d %s", res[0].kind, res[0].result,
		      res[0].reason);
	ck_assert_uint_eq(res[0].n_gen, 8);
	/* "<|im_start|>user\n" and the rest make it longer than the message. */
	ck_assert_uint_gt(res[0].n_prompt, 10);
	gidt_close(&c);
	stop();
}
END_TEST

/* The sd_notify protocol: READY with a status, watchdog pings while the
 * engine turns, STOPPING on SIGTERM. */
START_TEST(sd_notify_protocol)
{
	load_golden();
	static char path[108];
	snprintf(path, sizeof(path), "/tmp/gidt-notify-%d", (int)getpid());
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, path, strlen(path) + 1);
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "400000", 1);
	start(NULL);
	static char all[65536];
	size_t len = 0;
	uint64_t end = gidt_now_us() + 3000000;
	int pings = 0;
	while (gidt_now_us() < end && pings < 3) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 100) != 1)
			continue;
		ssize_t n = recv(fd, all + len, sizeof(all) - len - 1, 0);
		if (n > 0) {
			all[len + (size_t)n] = 0;
			pings += strstr(all + len, "WATCHDOG=1") != NULL;
			len += (size_t)n;
		}
	}
	ck_assert_msg(strstr(all, "READY=1") && strstr(all, "STATUS="), "notify messages: %s", all);
	ck_assert_int_ge(pings, 3);
	kill(dmn.pid, SIGTERM);
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	ck_assert_int_eq(poll(&pf, 1, 5000), 1);
	ssize_t n = recv(fd, all, sizeof(all) - 1, 0);
	ck_assert_int_gt(n, 0);
	all[n] = 0;
	ck_assert_ptr_nonnull(strstr(all, "STOPPING=1"));
	stop();
	close(fd);
	unlink(path);
}
END_TEST

/* systemd-style socket activation: systemd-socket-activate owns the
 * socket and execs gid (LISTEN_FDS) on the first connection. */
START_TEST(socket_activation)
{
	load_golden();
	static char gid[4096], model[4096], sock[128];
	const char *tool = "/usr/bin/systemd-socket-activate";
	ck_assert_msg(access(tool, X_OK) == 0, "%s is missing (Debian: package systemd)", tool);
	snprintf(gid, sizeof(gid), "%s", t_build("bin/gid"));
	snprintf(model, sizeof(model), "%s", t_shared("models/stories260K.gguf"));
	snprintf(sock, sizeof(sock), "/tmp/gidt-sa-%d.sock", (int)getpid());
	char *argv[] = { (char *)tool, "-l", sock, "--seqpacket", gid, "--model", model, "--user", "",
			 "--threads", "1", NULL };
	int r = gidt_start_argv(&dmn, sock, argv);
	if (r < 0)
		gidt_dump_log(&dmn);
	ck_assert_int_eq(r, 0);
	struct gidt_conn c;
	ck_assert_int_eq(gidt_connect(&c, sock), 0);
	static struct gidt_result res;
	ck_assert_int_eq(check_golden(&c, 0, &res), 0);
	gidt_close(&c);
	ck_assert(gidt_log_has(&dmn, "listening on the socket systemd passed"));
	stop();
	unlink(sock);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("gid");
	TCase *tc = tcase_create("golden");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, one_client_golden);
	tcase_add_test(tc, clients_32_golden_and_seeded);
	tcase_add_test(tc, errors_are_events);
	tcase_add_test(tc, socket_activation);
	tcase_add_test(tc, sd_notify_protocol);
	tcase_add_test(tc, cancel_nop_chat);
	tcase_add_test(tc, sessions_256_requests_1024);
	suite_add_tcase(s, tc);
	return s;
}
