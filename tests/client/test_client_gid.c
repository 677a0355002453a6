/* libgiclient and the gi CLI against the real daemon (build/bin/gid on
 * stories260K.gguf): the golden greedy outputs through the library and
 * through `gi run --json`, concurrent requests, cancel, NOPs, stats keys,
 * CLI exit codes, and the daemon dying under a client (-ECONNRESET, no
 * SIGBUS, reconnect once it is back). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/giclient.h"
#include "tests/t_util.h"

#define N_GOLDEN 4
#define MAX_IDS 512

struct golden {
	char prompt[2048];
	uint32_t prompt_ids[MAX_IDS], output_ids[64];
	int n_prompt, n_output;
	char output_text[1024];
	char output_ids_json[4200]; /* the "output_ids": [...] text as in the file */
	char prompt_ids_json[4200];
};

static struct golden gold[N_GOLDEN];

struct gid {
	pid_t pid;
	char dir[64], sock[128];
};

static struct gid d;
static char logged[1024];

static void log_cb(void *user, int level, const char *msg)
{
	(void)user;
	(void)level;
	snprintf(logged, sizeof(logged), "%s", msg);
}

/* ---- golden file ---- */

static const char *json_string(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	while (*p && *p != '"') {
		char ch = *p++;

		if (ch == '\\') {
			ch = *p++;
			if (ch == 'n')
				ch = '\n';
			else if (ch == 't')
				ch = '\t';
			ck_assert_msg(ch != 'u', "golden: \\u escapes are not handled by this reader");
		}
		ck_assert_uint_lt(n + 1, cap);
		out[n++] = ch;
	}
	out[n] = 0;
	return p;
}

static const char *json_ids(const char *p, uint32_t *ids, int max, int *ret_n, char *text,
			    size_t cap)
{
	const char *start = p;
	int n = 0;

	ck_assert_int_eq(*p, '[');
	p++;
	while (*p && *p != ']') {
		char *end;

		ck_assert_int_lt(n, max);
		ids[n++] = (uint32_t)strtoul(p, &end, 10);
		p = end;
		while (*p == ',' || *p == ' ')
			p++;
	}
	ck_assert_uint_lt((size_t)(p + 1 - start), cap);
	memcpy(text, start, (size_t)(p + 1 - start));
	text[p + 1 - start] = 0;
	*ret_n = n;
	return p;
}

static void load_golden(void)
{
	char *buf = t_read_file(t_shared("golden/stories260K_greedy.json"), NULL);
	const char *p = buf;

	ck_assert_msg(buf, "cannot read %s", t_shared("golden/stories260K_greedy.json"));
	for (int i = 0; i < N_GOLDEN; i++) {
		struct golden *g = &gold[i];
		char tmp[4096];

		p = strstr(p, "\"prompt\": \"");
		ck_assert_ptr_nonnull(p);
		p = json_string(p + 11, g->prompt, sizeof(g->prompt));
		p = strstr(p, "\"prompt_ids\": ");
		p = json_ids(p + 14, g->prompt_ids, MAX_IDS, &g->n_prompt, tmp, sizeof(tmp));
		snprintf(g->prompt_ids_json, sizeof(g->prompt_ids_json), "\"prompt_ids\": %s", tmp);
		p = strstr(p, "\"output_ids\": ");
		p = json_ids(p + 14, g->output_ids, 64, &g->n_output, tmp, sizeof(tmp));
		snprintf(g->output_ids_json, sizeof(g->output_ids_json), "\"output_ids\": %s", tmp);
		p = strstr(p, "\"output_text\": \"");
		p = json_string(p + 16, g->output_text, sizeof(g->output_text));
	}
	free(buf);
}

/* ---- the daemon ---- */

static void gid_launch(void)
{
	const char *gid = t_build("bin/gid");
	char model[1024];

	snprintf(model, sizeof(model), "%s", t_shared("models/stories260K.gguf"));
	ck_assert_msg(access(gid, X_OK) == 0, "%s is not built (make builds it)", gid);
	ck_assert_msg(access(model, R_OK) == 0, "model %s is missing", model);
	d.pid = fork();
	ck_assert_int_ge(d.pid, 0);
	if (d.pid == 0) {
		char log[160];

		snprintf(log, sizeof(log), "%s/gid.log", d.dir);
		if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(126);
		execl(gid, "gid", "--model", model, "--socket", d.sock, (char *)NULL);
		_exit(127);
	}
}

/* Connects, retrying while gid starts. */
static struct gi_conn *gid_conn(void)
{
	struct gi_conn_opts o = { .size = sizeof(o), .socket_path = d.sock, .log = log_cb };
	struct gi_conn *c = NULL;
	int r = -ENOENT;

	for (int i = 0; i < 300 && r < 0; i++) {
		r = gi_conn_open(&o, &c);
		if (r < 0) {
			int status;

			ck_assert_msg(waitpid(d.pid, &status, WNOHANG) == 0,
				      "gid exited before accepting (status 0x%x, see %s/gid.log)", status, d.dir);
			usleep(100000);
		}
	}
	ck_assert_msg(r == 0, "gi_conn_open: %s (%s)", gi_strerror(r), logged);
	return c;
}

static struct gi_conn *gid_start(void)
{
	snprintf(d.dir, sizeof(d.dir), "/tmp/gi-gid-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d.dir));
	snprintf(d.sock, sizeof(d.sock), "%s/gid.sock", d.dir);
	load_golden();
	gid_launch();
	return gid_conn();
}

/* Signals gid and returns its wait status. */
static int gid_signal(int sig)
{
	int status = -1;

	kill(d.pid, sig);
	waitpid(d.pid, &status, 0);
	d.pid = -1;
	return status;
}

static void gid_stop(struct gi_conn *c)
{
	gi_conn_close(c);
	if (d.pid > 0)
		gid_signal(SIGKILL);
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", d.dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- helpers ---- */

struct out {
	uint32_t ids[256];
	int n;
	char text[2048];
	size_t len;
	int finish, error;
	uint32_t n_prompt;
};

static void out_add(struct out *o, const struct gi_event *ev)
{
	ck_assert_int_lt(o->n, 256);
	o->ids[o->n++] = (uint32_t)ev->token;
	ck_assert_uint_lt(o->len + ev->text_len, sizeof(o->text));
	memcpy(o->text + o->len, ev->text, ev->text_len);
	o->len += ev->text_len;
	o->text[o->len] = 0;
}

/* Reads events until every request of OUTS (indexed by tag) has ended. */
static void read_all(struct gi_conn *c, struct out *outs, int n)
{
	struct gi_event ev;
	int ended = 0;

	while (ended < n) {
		int r = gi_event_next(c, &ev, 10000);

		ck_assert_msg(r == 1, "gi_event_next: %s (no event in 10 s: a lost wake-up?)",
			      r ? gi_strerror(r) : "timeout");
		ck_assert_uint_lt(ev.tag, (uint64_t)n);
		struct out *o = &outs[ev.tag];

		if (ev.kind == GI_EVENT_TOKEN) {
			out_add(o, &ev);
			continue;
		}
		ended++;
		if (ev.kind == GI_EVENT_DONE) {
			o->finish = ev.finish;
			o->n_prompt = ev.done.n_prompt;
		} else {
			o->error = ev.error;
			ck_assert_msg(0, "request %llu failed: %.*s (%s)", (unsigned long long)ev.tag,
				      (int)ev.text_len, ev.text, gi_strerror(ev.error));
		}
	}
}

static void check_golden(const struct out *o, const struct golden *g)
{
	ck_assert_int_eq(o->n, g->n_output);
	for (int i = 0; i < g->n_output; i++)
		ck_assert_msg(o->ids[i] == g->output_ids[i], "'%s': output id %d is %u, golden %u",
			      g->prompt, i, o->ids[i], g->output_ids[i]);
	ck_assert_int_eq(o->finish, GI_FINISH_REASON_LENGTH);
	ck_assert_uint_eq(o->n_prompt, (uint32_t)g->n_prompt);
}

static const struct gi_gen_opts greedy32 = { .size = sizeof(struct gi_gen_opts), .max_tokens = 32 };

/* ---- tests ---- */

START_TEST(golden_through_library)
{
	struct gi_conn *c = gid_start();
	struct gi_model_info mi;
	uint32_t ids[MAX_IDS];

	ck_assert_int_eq(gi_model_info(c, &mi), 0);
	ck_assert_uint_eq(mi.n_vocab, 512);
	ck_assert_uint_gt(mi.n_ctx, 0);
	for (int i = 0; i < N_GOLDEN; i++) {
		struct golden *g = &gold[i];
		struct out o = { 0 };

		ck_assert_int_eq(gi_tokenize(c, g->prompt, strlen(g->prompt), GI_TOKENIZE_ADD_BOS, ids,
					     MAX_IDS), g->n_prompt);
		ck_assert_mem_eq(ids, g->prompt_ids, (size_t)g->n_prompt * 4);
		ck_assert_int_eq(gi_gen_text(c, g->prompt, strlen(g->prompt), &greedy32, 0, NULL), 0);
		read_all(c, &o, 1);
		check_golden(&o, g);
		ck_assert_str_eq(o.text, g->output_text);
	}
	gid_stop(c);
}
END_TEST

START_TEST(golden_concurrent_one_connection)
{
	struct gi_conn *c = gid_start();
	static struct out o[N_GOLDEN];

	for (int i = 0; i < N_GOLDEN; i++)
		ck_assert_int_eq(gi_gen_text(c, gold[i].prompt, strlen(gold[i].prompt), &greedy32, i, NULL), 0);
	read_all(c, o, N_GOLDEN);
	for (int i = 0; i < N_GOLDEN; i++)
		check_golden(&o[i], &gold[i]);
	gid_stop(c);
}
END_TEST

START_TEST(golden_concurrent_connections)
{
	struct gi_conn *c[N_GOLDEN];
	static struct out o[N_GOLDEN];

	c[0] = gid_start();
	for (int i = 1; i < N_GOLDEN; i++)
		c[i] = gid_conn();
	for (int i = 0; i < N_GOLDEN; i++)
		ck_assert_int_eq(gi_gen_text(c[i], gold[i].prompt, strlen(gold[i].prompt), &greedy32, 0, NULL), 0);
	for (int i = 0; i < N_GOLDEN; i++) {
		read_all(c[i], &o[i], 1);
		check_golden(&o[i], &gold[i]);
	}
	for (int i = 1; i < N_GOLDEN; i++)
		gi_conn_close(c[i]);
	gid_stop(c[0]);
}
END_TEST

START_TEST(golden_through_cli_json)
{
	struct gi_conn *c = gid_start();

	for (int i = 0; i < N_GOLDEN; i++) {
		char path[256], *json;
		pid_t pid;
		int status;

		/* A stop string that starts with the output's last character:
		 * that character is held back, then released at the end with
		 * token -1, which is text only and not an output id. */
		char stop[8];
		size_t tl = strlen(gold[i].output_text);
		ck_assert_uint_gt(tl, 0);
		snprintf(stop, sizeof(stop), "%cQQ", gold[i].output_text[tl - 1]);
		snprintf(path, sizeof(path), "%s/run%d.json", d.dir, i);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			if (!freopen(path, "w", stdout))
				_exit(126);
			execl(t_build("bin/gi"), "gi", "run", "--json", "--max-tokens", "32", "--stop", stop,
			      "--socket", d.sock, gold[i].prompt, (char *)NULL);
			_exit(127);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gi run exit 0x%x", status);
		json = t_read_file(path, NULL);
		ck_assert_ptr_nonnull(json);
		ck_assert_msg(strstr(json, gold[i].output_ids_json), "gi run --json for '%s':\n%s\nlacks %s",
			      gold[i].prompt, json, gold[i].output_ids_json);
		ck_assert_msg(strstr(json, gold[i].prompt_ids_json), "gi run --json lacks %s",
			      gold[i].prompt_ids_json);
		ck_assert_ptr_nonnull(strstr(json, "\"finish_reason\": \"length\""));
		free(json);
	}
	gid_stop(c);
}
END_TEST

/* Runs gi with ARGS (NULL-terminated after "gi"); returns its exit code. */
static int run_gi(const char *stdin_text, const char *const *args)
{
	char *argv[32];
	int n = 0, status, in[2];
	pid_t pid;

	argv[n++] = "gi";
	while (*args)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	ck_assert_int_eq(pipe(in), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(in[0], 0);
		close(in[1]);
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(t_build("bin/gi"), argv);
		_exit(127);
	}
	close(in[0]);
	if (stdin_text)
		ck_assert_int_eq(write(in[1], stdin_text, strlen(stdin_text)), (ssize_t)strlen(stdin_text));
	close(in[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(cli_exit_codes)
{
	struct gi_conn *c = gid_start();
	const char *ok[] = { "run", "--socket", d.sock, "--max-tokens", "4", "Once", NULL };
	const char *usage1[] = { "run", "--socket", d.sock, "--temp", "hot", "x", NULL };
	const char *usage2[] = { "frobnicate", NULL };
	const char *noconn[] = { "run", "--socket", "/nonexistent/gid.sock", "x", NULL };
	const char *reqerr[] = { "run", "--socket", d.sock, "--max-tokens", "999999", "x", NULL };
	const char *stats[] = { "stats", "--socket", d.sock, "--json", NULL };
	const char *chat[] = { "chat", "--socket", d.sock, "--max-tokens", "4", NULL };

	ck_assert_int_eq(run_gi(NULL, ok), 0);
	ck_assert_int_eq(run_gi(NULL, usage1), 2);
	ck_assert_int_eq(run_gi(NULL, usage2), 2);
	ck_assert_int_eq(run_gi(NULL, noconn), 3);
	ck_assert_int_eq(run_gi(NULL, reqerr), 1);
	ck_assert_int_eq(run_gi(NULL, stats), 0);
	ck_assert_int_eq(run_gi("Hello\nHow are you\n", chat), 0);
	gid_stop(c);
}
END_TEST

START_TEST(bench_four_clients)
{
	struct gi_conn *c = gid_start();
	const char *bench[] = { "bench", "--socket", d.sock, "--clients", "4", "--requests", "4",
				"--max-tokens", "16", "--json", NULL };
	const char *nop[] = { "bench", "--socket", d.sock, "--clients", "2", "--nop", "--requests",
			      "2000", "--spin-us", "1000000", NULL };

	/* gi bench's children wait without a timeout: a lost wake-up hangs
	 * them, and the test's own timeout reports it. */
	ck_assert_int_eq(run_gi(NULL, bench), 0);
	ck_assert_int_eq(run_gi(NULL, nop), 0);
	gid_stop(c);
}
END_TEST

START_TEST(stats_has_the_documented_keys)
{
	struct gi_conn *c = gid_start();
	static const char *const keys[] = {
		"\"sessions\"", "\"requests_running\"", "\"requests_waiting\"", "\"kv_blocks_total\"",
		"\"kv_blocks_used\"", "\"kv_blocks_cached\"", "\"prefix_hit_tokens\"", "\"tenants\"",
	};
	char *text;

	ck_assert_int_eq(gi_stats(c, GI_STATS_JSON, &text, NULL), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_msg(strstr(text, keys[i]), "stats JSON lacks %s:\n%s", keys[i], text);
	free(text);
	ck_assert_int_eq(gi_stats(c, GI_STATS_OPENMETRICS, &text, NULL), 0);
	ck_assert_ptr_nonnull(strstr(text, "# EOF"));
	free(text);
	gid_stop(c);
}
END_TEST

START_TEST(nop_round_trips_wake_the_client)
{
	struct gi_conn *c0 = gid_start();
	struct gi_conn_opts o = { .size = sizeof(o), .socket_path = d.sock, .spin_us = -1 };
	struct gi_conn *c;
	struct gi_event ev;

	/* No busy-poll: every reply must arrive through the doorbell. A round
	 * trip takes microseconds; 200 ms means the wake-up was lost and the
	 * reply sat in the CQ until the wait timed out. */
	ck_assert_int_eq(gi_conn_open(&o, &c), 0);
	for (int i = 0; i < 100; i++) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		ck_assert_int_eq(gi_req_nop(c, 1000 + i, 0, 5, NULL), 0);
		int r = gi_event_next(c, &ev, 2000);

		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;

		ck_assert_msg(r == 1, "NOP %d: %s", i, r ? gi_strerror(r) : "no reply within 2 s");
		ck_assert_int_eq(ev.kind, GI_EVENT_NOP);
		ck_assert_uint_eq(ev.nop_echo, 1000 + i);
		ck_assert_msg(ms < 200, "NOP %d: reply after %.1f ms: gid posted it without ringing the "
			      "completion doorbell", i, ms);
	}
	gi_conn_close(c);
	gid_stop(c0);
}
END_TEST

START_TEST(cancel_mid_stream)
{
	struct gi_conn *c = gid_start();
	struct gi_gen_opts o = { .size = sizeof(o), .max_tokens = 2000 };
	struct gi_event ev;
	uint64_t req;
	int tokens = 0, r;

	ck_assert_int_eq(gi_gen_text(c, "Once upon a time", 16, &o, 0, &req), 0);
	while ((r = gi_event_next(c, &ev, 10000)) == 1 && ev.kind == GI_EVENT_TOKEN)
		if (++tokens == 3)
			ck_assert_int_eq(gi_req_cancel(c, req), 0);
	ck_assert_msg(r == 1, "%s", r ? gi_strerror(r) : "timeout");
	ck_assert_int_eq(ev.kind, GI_EVENT_DONE);
	/* The story may end (EOS) before the cancel lands; it must not run to 2000. */
	ck_assert_msg(ev.finish == GI_FINISH_REASON_CANCELLED || ev.finish == GI_FINISH_REASON_EOS,
		      "finish %s after %d tokens", gi_finish_name(ev.finish), tokens);
	ck_assert_int_lt(tokens, 2000);
	gid_stop(c);
}
END_TEST

START_TEST(daemon_killed_then_back)
{
	struct gi_conn *c = gid_start();
	struct gi_gen_opts o = { .size = sizeof(o), .max_tokens = 2000 };
	struct gi_event ev;
	int r, tokens = 0;

	ck_assert_int_eq(gi_gen_text(c, "Once upon a time", 16, &o, 0, NULL), 0);
	ck_assert_int_eq(gi_gen_text(c, "The little dog", 14, &o, 1, NULL), 0);
	ck_assert_int_eq(gi_event_next(c, &ev, 10000), 1);
	gid_signal(SIGKILL);
	while ((r = gi_event_next(c, &ev, 10000)) == 1) {
		if (ev.kind == GI_EVENT_TOKEN) {
			tokens++;
			continue;
		}
		if (ev.kind == GI_EVENT_ERROR)
			ck_assert_int_eq(ev.error, -ECONNRESET);
	}
	ck_assert_int_eq(r, -ECONNRESET);
	ck_assert_uint_eq(gi_conn_inflight(c), 0);
	ck_assert_int_eq(gi_gen_text(c, "x", 1, NULL, 0, NULL), -ECONNRESET);
	gi_conn_close(c);

	gid_launch();
	c = gid_conn();
	struct out out = { 0 };

	ck_assert_int_eq(gi_gen_text(c, gold[0].prompt, strlen(gold[0].prompt), &greedy32, 0, NULL), 0);
	read_all(c, &out, 1);
	check_golden(&out, &gold[0]);
	gid_stop(c);
}
END_TEST

START_TEST(sigterm_while_streaming)
{
	struct gi_conn *c = gid_start();
	struct gi_gen_opts o = { .size = sizeof(o), .max_tokens = 2000 };
	struct gi_event ev;
	int r, status;

	ck_assert_int_eq(gi_gen_text(c, "Once upon a time", 16, &o, 0, NULL), 0);
	ck_assert_int_eq(gi_event_next(c, &ev, 10000), 1);
	kill(d.pid, SIGTERM);
	while ((r = gi_event_next(c, &ev, 10000)) == 1 && ev.kind == GI_EVENT_TOKEN)
		;
	/* Either the daemon ends the stream (DONE, shutdown) or it hangs up. */
	if (r == 1 && ev.kind == GI_EVENT_DONE)
		/* gid drains running requests on SIGTERM: they end normally
		 * (the context of this small model fills within seconds). */
		ck_assert_msg(ev.finish == GI_FINISH_REASON_SHUTDOWN || ev.finish == GI_FINISH_REASON_EOS ||
				      ev.finish == GI_FINISH_REASON_LENGTH,
			      "finish %s", gi_finish_name(ev.finish));
	else if (r == 1)
		ck_assert_int_eq(ev.error, -ECONNRESET);
	else
		ck_assert_int_eq(r, -ECONNRESET);
	gi_conn_close(c);
	ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
	d.pid = -1;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gid status 0x%x", status);
	gid_stop(NULL);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("client_gid");
	TCase *tc = tcase_create("gid");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, golden_through_library);
	tcase_add_test(tc, golden_concurrent_one_connection);
	tcase_add_test(tc, golden_concurrent_connections);
	tcase_add_test(tc, golden_through_cli_json);
	tcase_add_test(tc, cli_exit_codes);
	tcase_add_test(tc, bench_four_clients);
	tcase_add_test(tc, stats_has_the_documented_keys);
	tcase_add_test(tc, nop_round_trips_wake_the_client);
	tcase_add_test(tc, cancel_mid_stream);
	tcase_add_test(tc, daemon_killed_then_back);
	tcase_add_test(tc, sigterm_while_streaming);
	suite_add_tcase(s, tc);
	return s;
}
