/* libgiclient against the scripted fake daemon (fake_gid.h): streaming and
 * token assembly, options on the wire, chat and token prompts, cancel,
 * tokenize/stats, the epoll-fd loop, SQ full, daemon death (-ECONNRESET,
 * no SIGBUS) and reconnect. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/giclient.h"
#include "tests/client/fake_gid.h"
#include "tests/t_util.h"

static char logged[1024];

static void log_cb(void *user, int level, const char *msg)
{
	(void)user;
	(void)level;
	snprintf(logged, sizeof(logged), "%s", msg);
}

static struct fake_gid g;

static struct gi_conn *conn_to(const struct fake_gid *fg)
{
	struct gi_conn_opts o = { .size = sizeof(o), .socket_path = fg->path, .log = log_cb,
				  .app_name = "test" };
	struct gi_conn *c = NULL;
	int r = gi_conn_open(&o, &c);

	ck_assert_msg(r == 0, "gi_conn_open: %s (%s)", gi_strerror(r), logged);
	return c;
}

static struct gi_conn *start(const struct fake_gid_cfg *cfg)
{
	static const struct fake_gid_cfg def;

	ck_assert_int_eq(fake_gid_start(cfg ? cfg : &def, &g), 0);
	return conn_to(&g);
}

static void stop(struct gi_conn *c)
{
	gi_conn_close(c);
	fake_gid_cleanup(&g);
}

/* Result of one request read to its end. */
struct run {
	char text[4096];
	size_t len;
	int n_tokens;
	int32_t last_token;
	int finish, error;
	uint32_t n_gen;
};

/* Reads events of request REQ until its last one (other requests' events
 * are not expected). */
static void collect(struct gi_conn *c, uint64_t req, struct run *out)
{
	struct gi_event ev;

	memset(out, 0, sizeof(*out));
	for (;;) {
		int r = gi_event_next(c, &ev, 5000);

		ck_assert_msg(r == 1, "gi_event_next: %d %s", r, gi_strerror(r));
		ck_assert_uint_eq(ev.req, req);
		if (ev.kind == GI_EVENT_TOKEN) {
			ck_assert_uint_lt(out->len + ev.text_len, sizeof(out->text));
			memcpy(out->text + out->len, ev.text, ev.text_len);
			out->len += ev.text_len;
			out->n_tokens++;
			out->last_token = ev.token;
			continue;
		}
		if (ev.kind == GI_EVENT_DONE) {
			out->finish = ev.finish;
			out->n_gen = ev.done.n_gen;
		} else {
			ck_assert_int_eq(ev.kind, GI_EVENT_ERROR);
			out->error = ev.error;
		}
		return;
	}
}

static void gen(struct gi_conn *c, const char *prompt, const struct gi_gen_opts *o, struct run *out)
{
	uint64_t req = 0;
	int r = gi_gen_text(c, prompt, strlen(prompt), o, 7, &req);

	ck_assert_msg(r == 0, "gi_gen_text: %s (%s)", gi_strerror(r), logged);
	collect(c, req, out);
}

START_TEST(model_info_from_welcome)
{
	struct gi_conn *c = start(NULL);
	struct gi_model_info mi;

	ck_assert_int_eq(gi_model_info(c, &mi), 0);
	ck_assert_str_eq(mi.name, "fake-model");
	ck_assert_uint_eq(mi.n_ctx, 2048);
	ck_assert_uint_eq(mi.n_vocab, 512);
	ck_assert_uint_eq(mi.max_inflight, 64);
	ck_assert_uint_ne(mi.session_id, 0);
	ck_assert_int_ge(gi_conn_fd(c), 0);
	stop(c);
}
END_TEST

START_TEST(stream_text_and_tags)
{
	struct gi_conn *c = start(NULL);
	struct gi_event ev;
	uint64_t req;
	struct run r;
	int n = 0;

	ck_assert_int_eq(gi_gen_text(c, "hello big world", 15, NULL, 42, &req), 0);
	ck_assert_uint_eq(gi_conn_inflight(c), 1);
	while (gi_event_next(c, &ev, 5000) == 1) {
		ck_assert_uint_eq(ev.tag, 42);
		ck_assert_uint_eq(ev.req, req);
		if (ev.kind != GI_EVENT_TOKEN)
			break;
		ck_assert_int_eq(ev.token, n++);
	}
	ck_assert_int_eq(ev.kind, GI_EVENT_DONE);
	ck_assert_int_eq(ev.finish, GI_FINISH_REASON_EOS);
	ck_assert_uint_eq(ev.done.n_gen, 3);
	ck_assert_uint_eq(ev.done.decode_us, 3);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(gi_conn_inflight(c), 0);
	gen(c, "one two", NULL, &r);
	ck_assert_str_eq(r.text, "one two");
	stop(c);
}
END_TEST

START_TEST(long_token_is_assembled)
{
	struct gi_conn *c = start(NULL);
	char prompt[200];
	struct run r;

	memset(prompt, 'x', 130);
	strcpy(prompt + 130, " tail");
	gen(c, prompt, NULL, &r);
	ck_assert_int_eq(r.n_tokens, 2); /* 131 bytes in 4 CQEs are one token */
	ck_assert_uint_eq(r.len, strlen(prompt));
	ck_assert_mem_eq(r.text, prompt, r.len);
	ck_assert_int_eq(r.finish, GI_FINISH_REASON_EOS);
	stop(c);
}
END_TEST

START_TEST(max_tokens_and_stop_strings)
{
	struct gi_conn *c = start(NULL);
	const char *stops[] = { "nope", "STOP" };
	struct gi_gen_opts o = { .size = sizeof(o), .max_tokens = 2 };
	struct run r;

	gen(c, "a b c d", &o, &r);
	ck_assert_str_eq(r.text, "a b ");
	ck_assert_int_eq(r.finish, GI_FINISH_REASON_LENGTH);
	o.max_tokens = 0;
	o.stop = stops;
	o.n_stop = 2;
	gen(c, "a b STOP c", &o, &r);
	ck_assert_str_eq(r.text, "a b ");
	ck_assert_int_eq(r.finish, GI_FINISH_REASON_STOP);
	stop(c);
}
END_TEST

START_TEST(chat_and_token_prompts)
{
	struct gi_conn *c = start(NULL);
	struct gi_chat_msg msgs[] = {
		{ GI_CHAT_SYSTEM, "be brief" },
		{ GI_CHAT_USER, "hi there" },
		{ GI_CHAT_ASSISTANT, "hello" },
		{ GI_CHAT_USER, "tell me more" },
	};
	uint32_t ids[] = { 5, 7, 511 };
	uint64_t req;
	struct run r;

	ck_assert_int_eq(gi_gen_chat(c, msgs, 4, NULL, 1, &req), 0);
	collect(c, req, &r);
	ck_assert_str_eq(r.text, "tell me more");
	ck_assert_int_eq(gi_gen_tokens(c, ids, 3, NULL, 2, &req), 0);
	collect(c, req, &r);
	ck_assert_str_eq(r.text, "5 7 511 ");
	stop(c);
}
END_TEST

struct newer_gen_opts {
	struct gi_gen_opts o;
	uint32_t future;
};

START_TEST(gen_options_are_checked)
{
	struct gi_conn *c = start(NULL);
	struct gi_gen_opts o = { .size = sizeof(o) };
	struct newer_gen_opts n = { .o = { .size = sizeof(n) } };
	struct gi_chat_msg bad_role = { 9, "x" };
	const char *empty[] = { "" };
	uint32_t big_id = 512;

#define EXPECT(err, what)                                                            \
	do {                                                                         \
		logged[0] = 0;                                                       \
		ck_assert_int_eq(gi_gen_text(c, "p", 1, &o, 0, NULL), err);          \
		ck_assert_msg(strstr(logged, what), "log '%s' lacks '%s'", logged, what); \
		o = (struct gi_gen_opts){ .size = sizeof(o) };                       \
	} while (0)
	o.temperature = -1;
	EXPECT(-EINVAL, "temperature");
	o.temperature = NAN;
	EXPECT(-EINVAL, "temperature");
	o.top_p = 2;
	EXPECT(-EINVAL, "top_p 2");
	o.min_p = -0.5f;
	EXPECT(-EINVAL, "min_p");
	o.top_k = 70000;
	EXPECT(-EINVAL, "top_k 70000");
	o.flags = 1u << 20;
	EXPECT(-EINVAL, "flags");
	o.priority = 5;
	EXPECT(-EINVAL, "priority 5");
	o.max_tokens = 5000;
	EXPECT(-E2BIG, "max_tokens 5000");
	o.n_stop = 1;
	EXPECT(-EINVAL, "stop is NULL");
	o.stop = empty;
	o.n_stop = 1;
	EXPECT(-EINVAL, "stop[0]");
	o.size = 4;
	EXPECT(-EINVAL, "size 4");
#undef EXPECT
	ck_assert_int_eq(gi_gen_text(c, "p", 1, &n.o, 0, NULL), 0);
	n.future = 1;
	ck_assert_int_eq(gi_gen_text(c, "p", 1, &n.o, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_gen_text(c, "", 0, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_gen_chat(c, &bad_role, 1, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_gen_chat(c, NULL, 0, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_gen_tokens(c, &big_id, 1, NULL, 0, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(logged, "512"));
	ck_assert_int_eq(gi_req_nop(c, 0, GI_GEN_LOGPROBS, 0, NULL), -EINVAL);
	stop(c);
}
END_TEST

START_TEST(nop_round_trip)
{
	struct gi_conn *c = start(NULL);
	struct gi_event ev;
	uint64_t req;

	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(gi_req_nop(c, 0xabc0 + i, 0, 9, &req), 0);
		ck_assert_int_eq(gi_event_next(c, &ev, 5000), 1);
		ck_assert_int_eq(ev.kind, GI_EVENT_NOP);
		ck_assert_uint_eq(ev.nop_echo, 0xabc0 + i);
		ck_assert_uint_eq(ev.tag, 9);
		ck_assert_uint_eq(ev.req, req);
	}
	ck_assert_int_eq(gi_event_next(c, &ev, 0), 0);
	stop(c);
}
END_TEST

START_TEST(tokenize_and_stats)
{
	struct gi_conn *c = start(NULL);
	uint32_t ids[8];
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(gi_tokenize(c, "ab", 2, GI_TOKENIZE_ADD_BOS, ids, 8), 3);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 'a');
	ck_assert_uint_eq(ids[2], 'b');
	ck_assert_int_eq(gi_tokenize(c, "abcdef", 6, 0, ids, 2), 6);
	ck_assert_int_eq(gi_tokenize(c, "abc", 3, 0, NULL, 0), 3);
	ck_assert_int_eq(gi_tokenize(c, "a", 1, 1u << 9, ids, 8), -EINVAL);
	ck_assert_int_eq(gi_stats(c, GI_STATS_JSON, &text, &len), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"sessions\":1"));
	ck_assert_uint_eq(len, strlen(text));
	free(text);
	ck_assert_int_eq(gi_stats(c, GI_STATS_OPENMETRICS, &text, NULL), 0);
	ck_assert_ptr_nonnull(strstr(text, "# EOF"));
	free(text);
	ck_assert_int_eq(gi_stats(c, 7, &text, NULL), -EINVAL);
	stop(c);
}
END_TEST

START_TEST(many_requests_interleaved)
{
	struct gi_conn *c = start(NULL);
	char prompts[20][64], got[20][256] = { { 0 } };
	uint64_t reqs[20];
	struct gi_event ev;
	int done = 0;

	for (int i = 0; i < 20; i++) {
		snprintf(prompts[i], sizeof(prompts[i]), "request %d says %d words", i, i * 7);
		ck_assert_int_eq(gi_gen_text(c, prompts[i], strlen(prompts[i]), NULL, 100 + i, &reqs[i]), 0);
	}
	ck_assert_uint_eq(gi_conn_inflight(c), 20);
	while (done < 20) {
		ck_assert_int_eq(gi_event_next(c, &ev, 5000), 1);
		int i = (int)ev.tag - 100;

		ck_assert(i >= 0 && i < 20);
		ck_assert_uint_eq(ev.req, reqs[i]);
		if (ev.kind == GI_EVENT_TOKEN)
			strncat(got[i], ev.text, ev.text_len);
		else
			done++;
	}
	for (int i = 0; i < 20; i++)
		ck_assert_str_eq(got[i], prompts[i]);
	stop(c);
}
END_TEST

START_TEST(event_loop_on_conn_fd)
{
	struct fake_gid_cfg cfg = { .token_delay_us = 2000 };
	struct gi_conn *c = start(&cfg);
	struct pollfd p = { .fd = gi_conn_fd(c), .events = POLLIN };
	char out[2][64] = { "", "" };
	int ends = 0, wakes = 0;

	ck_assert_int_eq(gi_gen_text(c, "alpha beta gamma", 16, NULL, 0, NULL), 0);
	ck_assert_int_eq(gi_gen_text(c, "one two three four", 18, NULL, 1, NULL), 0);
	while (ends < 2) {
		struct gi_event ev;
		int r;

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		wakes++;
		ck_assert_int_ge(gi_conn_process(c), 0);
		while ((r = gi_event_next(c, &ev, 0)) == 1) {
			if (ev.kind == GI_EVENT_TOKEN)
				strncat(out[ev.tag], ev.text, ev.text_len);
			else
				ends++;
		}
		ck_assert_int_eq(r, 0);
	}
	ck_assert_str_eq(out[0], "alpha beta gamma");
	ck_assert_str_eq(out[1], "one two three four");
	ck_assert_int_ge(wakes, 2);
	stop(c);
}
END_TEST

START_TEST(cancel_running_request)
{
	struct fake_gid_cfg cfg = { .token_delay_us = 20000 };
	struct gi_conn *c = start(&cfg);
	struct gi_event ev;
	uint64_t req;
	struct run r;

	ck_assert_int_eq(gi_gen_text(c, "a b c d e f g h i j k l m n o p", 31, NULL, 0, &req), 0);
	ck_assert_int_eq(gi_event_next(c, &ev, 5000), 1);
	ck_assert_int_eq(ev.kind, GI_EVENT_TOKEN);
	ck_assert_int_eq(gi_req_cancel(c, req), 0);
	collect(c, req, &r);
	ck_assert_int_eq(r.finish, GI_FINISH_REASON_CANCELLED);
	ck_assert_int_lt(r.n_tokens, 15);
	ck_assert_int_eq(gi_req_cancel(c, req), -ENOENT);
	ck_assert_int_eq(gi_req_cancel(c, 12345), -ENOENT);
	stop(c);
}
END_TEST

START_TEST(sq_full_is_eagain)
{
	struct fake_gid_cfg cfg = { .no_consume = true, .sq_max = 4 };
	struct gi_conn *c = start(&cfg);
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(gi_req_nop(c, i, 0, 0, NULL), 0);
	ck_assert_int_eq(gi_req_nop(c, 9, 0, 0, NULL), -EAGAIN);
	ck_assert_int_eq(gi_gen_text(c, "x", 1, NULL, 0, NULL), -EAGAIN);
	ck_assert_uint_eq(gi_conn_inflight(c), 4);
	stop(c);
}
END_TEST

START_TEST(sq_full_blocks_when_asked)
{
	struct fake_gid_cfg cfg = { .stall_ms = 300, .sq_max = 4 };
	struct gi_conn *c = start(&cfg);
	struct timespec t0, t1;
	struct gi_event ev;
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(gi_req_nop(c, i, 0, 0, NULL), 0);
	ck_assert_int_eq(gi_req_nop(c, 4, 0, 0, NULL), -EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(gi_req_nop(c, 4, GI_GEN_BLOCK, 0, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_ge((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 100);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(gi_event_next(c, &ev, 5000), 1);
		ck_assert_int_eq(ev.kind, GI_EVENT_NOP);
		ck_assert_uint_eq(ev.nop_echo, (uint64_t)i);
	}
	stop(c);
}
END_TEST

START_TEST(every_descriptor_is_cloexec)
{
	bool open_before[1024];
	struct gi_conn *c;
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		open_before[fd] = fcntl(fd, F_GETFD) >= 0;
	c = start(NULL);
	for (int fd = 0; fd < 1024; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0 && !open_before[fd]) {
			n++;
			ck_assert_msg(fl & FD_CLOEXEC, "fd %d is not close-on-exec", fd);
		}
	}
	ck_assert_int_eq(n, 5); /* socket, memfd, two eventfds, epoll */
	stop(c);
}
END_TEST

START_TEST(stuck_engine_times_out_a_deadline)
{
	struct fake_gid_cfg cfg = { .stall_ms = 4000 };
	struct gi_conn *c = start(&cfg);
	struct gi_gen_opts o = { .size = sizeof(o), .deadline_ms = 100 };
	struct timespec t0, t1;
	struct gi_event ev;
	uint64_t req;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(gi_gen_text(c, "a b", 3, &o, 3, &req), 0);
	ck_assert_int_eq(gi_event_next(c, &ev, -1), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(ev.kind, GI_EVENT_ERROR);
	ck_assert_int_eq(ev.error, -ETIMEDOUT);
	ck_assert_uint_eq(ev.req, req);
	ck_assert_uint_eq(ev.tag, 3);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);
	ck_assert_uint_eq(gi_conn_inflight(c), 0);
	stop(c);
}
END_TEST

START_TEST(live_engine_past_deadline_is_not_timed_out)
{
	struct fake_gid_cfg cfg = { .token_delay_us = 100000 };
	struct gi_conn *c = start(&cfg);
	struct gi_gen_opts o = { .size = sizeof(o), .deadline_ms = 50 };
	struct run r;

	/* 16 words at 100 ms a step outlive deadline + grace; the heartbeat
	 * moves, so the library waits for the daemon's own verdict. */
	gen(c, "a b c d e f g h i j k l m n o p", &o, &r);
	ck_assert_int_eq(r.error, 0);
	ck_assert_int_eq(r.finish, GI_FINISH_REASON_EOS);
	ck_assert_int_eq(r.n_tokens, 16);
	stop(c);
}
END_TEST

START_TEST(daemon_death_mid_stream)
{
	struct fake_gid_cfg cfg = { .die_after_tokens = 3, .token_delay_us = 1000 };
	struct gi_conn *c = start(&cfg);
	struct gi_event ev;
	int tokens = 0, errors = 0, r;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(gi_gen_text(c, "w w w w w w w w w w", 19, NULL, i, NULL), 0);
	while ((r = gi_event_next(c, &ev, -1)) == 1) {
		if (ev.kind == GI_EVENT_TOKEN) {
			tokens++;
			continue;
		}
		ck_assert_int_eq(ev.kind, GI_EVENT_ERROR);
		ck_assert_int_eq(ev.error, -ECONNRESET);
		ck_assert_uint_gt(ev.text_len, 0);
		errors++;
	}
	ck_assert_int_eq(r, -ECONNRESET);
	ck_assert_int_eq(tokens, 3);
	ck_assert_int_eq(errors, 3);
	ck_assert_uint_eq(gi_conn_inflight(c), 0);
	ck_assert_int_eq(gi_event_next(c, &ev, 0), -ECONNRESET);
	ck_assert_int_eq(gi_gen_text(c, "x", 1, NULL, 0, NULL), -ECONNRESET);
	ck_assert_int_eq(gi_conn_process(c), -ECONNRESET);
	gi_conn_close(c);

	/* The daemon comes back on the same path: connecting works again. */
	cfg.die_after_tokens = 0;
	ck_assert_int_eq(fake_gid_restart(&cfg, &g), 0);
	c = conn_to(&g);
	struct run run;

	gen(c, "back again", NULL, &run);
	ck_assert_str_eq(run.text, "back again");
	stop(c);
}
END_TEST

START_TEST(daemon_killed_while_waiting)
{
	struct fake_gid_cfg cfg = { .token_delay_us = 200000 };
	struct gi_conn *c = start(&cfg);
	struct pollfd p;
	struct gi_event ev;
	uint64_t req;

	ck_assert_int_eq(gi_gen_text(c, "slow slow slow slow", 19, NULL, 0, &req), 0);
	fake_gid_signal(&g, SIGKILL);
	/* The fd becomes readable on hang-up, so an event loop notices. */
	p = (struct pollfd){ .fd = gi_conn_fd(c), .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_ge(gi_conn_process(c), 0);
	for (;;) {
		int r = gi_event_next(c, &ev, -1);

		if (r == 1 && ev.kind == GI_EVENT_TOKEN)
			continue;
		ck_assert_int_eq(r, 1);
		ck_assert_int_eq(ev.kind, GI_EVENT_ERROR);
		ck_assert_int_eq(ev.error, -ECONNRESET);
		break;
	}
	ck_assert_int_eq(gi_event_next(c, &ev, -1), -ECONNRESET);
	char *text;

	ck_assert_int_eq(gi_stats(c, GI_STATS_JSON, &text, NULL), -ECONNRESET);
	stop(c);
}
END_TEST

START_TEST(refused_session)
{
	struct fake_gid_cfg cfg = { .refuse = -EPERM };
	struct gi_conn_opts o = { .size = sizeof(o), .log = log_cb };
	struct gi_conn *c;
	int fds;

	ck_assert_int_eq(fake_gid_start(&cfg, &g), 0);
	o.socket_path = g.path;
	fds = t_count_fds();
	logged[0] = 0;
	ck_assert_int_eq(gi_conn_open(&o, &c), -EPERM);
	ck_assert_ptr_nonnull(strstr(logged, "refuses by configuration"));
	ck_assert_int_eq(t_count_fds(), fds);
	fake_gid_cleanup(&g);
}
END_TEST

START_TEST(open_close_leaks_nothing)
{
	struct gi_conn *c = start(NULL);
	int fds;

	gi_conn_close(c);
	fds = t_count_fds();
	for (int i = 0; i < 20; i++) {
		struct run r;

		c = conn_to(&g);
		gen(c, "x y", NULL, &r);
		gi_conn_close(c);
	}
	ck_assert_int_eq(t_count_fds(), fds);
	fake_gid_cleanup(&g);
}
END_TEST

START_TEST(fork_child_does_not_inherit_session)
{
	struct gi_conn *c = start(NULL);
	char maps[256];
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* MADV_DONTFORK: no shared mapping of the session in the child. */
		char *m;

		snprintf(maps, sizeof(maps), "/proc/%d/maps", getpid());
		m = t_read_file(maps, NULL);
		_exit(m && !strstr(m, "memfd:") ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	stop(c);
}
END_TEST

/* Lost-wake-up stress: the client never busy-polls, so every event after a
 * sleep must come through the doorbell; a lost ring shows as a 2 s stall. */
START_TEST(no_lost_wakeups)
{
	static const uint32_t delays[] = { 0, 3, 20, 100 };
	struct fake_gid_cfg cfg = { .token_delay_us = delays[_i] };
	struct gi_conn_opts o = { .size = sizeof(o), .spin_us = _i % 2 ? -1 : 1 };
	struct gi_conn *c;
	struct gi_event ev;
	int events = 0;

	ck_assert_int_eq(fake_gid_start(&cfg, &g), 0);
	o.socket_path = g.path;
	ck_assert_int_eq(gi_conn_open(&o, &c), 0);
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(gi_gen_text(c, "a b c d e f g h", 15, NULL, 0, NULL), 0);
		if (i % 3 == 0)
			ck_assert_int_eq(gi_req_nop(c, i, 0, 1, NULL), 0);
		while (gi_conn_inflight(c)) {
			struct timespec t0, t1;
			int r;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			r = gi_event_next(c, &ev, 2000);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			ck_assert_msg(r == 1, "request %d: %s after %d events", i,
				      r ? gi_strerror(r) : "no event within 2 s", events);
			double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
				    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;

			ck_assert_msg(ms < 1000, "request %d: an event took %.1f ms: found by the "
				      "timeout, not woken by the doorbell", i, ms);
			events++;
		}
	}
	stop(c);
}
END_TEST

/* Runs build/bin/PROG with ARG against the fake, output to a file; returns
 * the exit status and the output (malloc'd) in *RET_OUT. */
static int run_example(const char *prog, const char *arg, char **ret_out)
{
	char path[128], out[160];
	pid_t pid;
	int status;

	snprintf(path, sizeof(path), "bin/%s", prog);
	snprintf(out, sizeof(out), "%s/%s.out", g.dir, prog);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("GI_SOCKET", g.path, 1);
		if (!freopen(out, "w", stdout))
			_exit(126);
		execl(t_build(path), prog, arg, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	*ret_out = t_read_file(out, NULL);
	unlink(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(examples_run)
{
	struct fake_gid_cfg cfg = { .token_delay_us = 5000 };
	char *out = NULL;

	ck_assert_int_eq(fake_gid_start(&cfg, &g), 0);
	ck_assert_int_eq(run_example("example-stream", "one two three", &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "one two three\n[eos, 3 tokens]"));
	free(out);
	ck_assert_int_eq(run_example("example-epoll", "a b c d e f", &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "[req 0] a b c d e fa b c d e f"));
	ck_assert_ptr_nonnull(strstr(out, "[req 1] The little dogThe little dog"));
	ck_assert_ptr_nonnull(strstr(out, "timer ticks meanwhile: "));
	ck_assert_ptr_null(strstr(out, "timer ticks meanwhile: 0\n"));
	free(out);
	fake_gid_cleanup(&g);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("client_fake");
	TCase *tc = tcase_create("fake");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, model_info_from_welcome);
	tcase_add_test(tc, stream_text_and_tags);
	tcase_add_test(tc, long_token_is_assembled);
	tcase_add_test(tc, max_tokens_and_stop_strings);
	tcase_add_test(tc, chat_and_token_prompts);
	tcase_add_test(tc, gen_options_are_checked);
	tcase_add_test(tc, nop_round_trip);
	tcase_add_test(tc, tokenize_and_stats);
	tcase_add_test(tc, many_requests_interleaved);
	tcase_add_test(tc, event_loop_on_conn_fd);
	tcase_add_test(tc, cancel_running_request);
	tcase_add_test(tc, sq_full_is_eagain);
	tcase_add_test(tc, sq_full_blocks_when_asked);
	tcase_add_test(tc, every_descriptor_is_cloexec);
	tcase_add_test(tc, stuck_engine_times_out_a_deadline);
	tcase_add_test(tc, live_engine_past_deadline_is_not_timed_out);
	tcase_add_test(tc, daemon_death_mid_stream);
	tcase_add_test(tc, daemon_killed_while_waiting);
	tcase_add_test(tc, refused_session);
	tcase_add_test(tc, open_close_leaks_nothing);
	tcase_add_test(tc, fork_child_does_not_inherit_session);
	tcase_add_test(tc, examples_run);
	tcase_add_loop_test(tc, no_lost_wakeups, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}
