/* Integration test helpers: a real gid and a minimal ipc/ client (gidt.h). */
#include "tests/integration/gidt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "tests/t_util.h"

uint64_t gidt_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

long long gidt_cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the command name (which may hold spaces): state is 3,
	 * utime 14, stime 15. */
	const char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static int wait_ready(struct gidt_daemon *d)
{
	for (int i = 0; i < 1500; i++) {
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return -ECHILD;
		}
		char buf[256];
		if (gidt_stats(d->sock, buf, sizeof(buf)) > 0)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static int spawn(struct gidt_daemon *d, char *const *argv)
{
	snprintf(d->log, sizeof(d->log), "%s/gid.log", d->dir);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		/* A failing test must not leave its daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("GI_SOCKET", d->sock, 1);
		unsetenv("JOURNAL_STREAM");
		execv(argv[0], argv);
		_exit(127);
	}
	d->pid = pid;
	return wait_ready(d);
}

static void new_dir(struct gidt_daemon *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/gidt-XXXXXX");
	if (!mkdtemp(d->dir))
		snprintf(d->dir, sizeof(d->dir), "/tmp");
	chmod(d->dir, 0755);
	snprintf(d->sock, sizeof(d->sock), "%s/gid.sock", d->dir);
}

int gidt_start(struct gidt_daemon *d, const char *const *extra)
{
	new_dir(d);
	static char gid[4096], model[4096];
	snprintf(gid, sizeof(gid), "%s", t_build("bin/gid"));
	snprintf(model, sizeof(model), "%s", t_shared("models/stories260K.gguf"));
	if (access(gid, X_OK) < 0) {
		fprintf(stderr, "gidt: %s is not built\n", gid);
		return -ENOENT;
	}
	char *argv[64] = { gid, "--model", model, "--socket", d->sock, "--user", "",
			   "--threads", "1", "--log-level", "debug" };
	int n = 11;
	for (int i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	return spawn(d, argv);
}

int gidt_start_argv(struct gidt_daemon *d, const char *sock, char *const *argv)
{
	new_dir(d);
	snprintf(d->sock, sizeof(d->sock), "%s", sock);
	return spawn(d, argv);
}

int gidt_stop(struct gidt_daemon *d, int sig, int timeout_ms)
{
	if (d->pid <= 0)
		return 0;
	kill(d->pid, sig);
	int st = 0;
	for (int i = 0; i < timeout_ms; i += 5) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return st;
		}
		usleep(5000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -ETIMEDOUT;
}

void gidt_cleanup(struct gidt_daemon *d)
{
	if (strncmp(d->dir, "/tmp/gidt-", 10))
		return;
	unlink(d->log);
	unlink(d->sock);
	rmdir(d->dir);
}

void gidt_dump_log(const struct gidt_daemon *d)
{
	size_t len;
	char *t = t_read_file(d->log, &len);
	if (t) {
		fprintf(stderr, "---- gid log (%s) ----\n%.*s---- end ----\n", d->log, (int)len, t);
		free(t);
	}
}

int gidt_log_count(const struct gidt_daemon *d, const char *needle)
{
	size_t len;
	char *t = t_read_file(d->log, &len);
	if (!t)
		return 0;
	char *z = realloc(t, len + 1);
	if (!z) {
		free(t);
		return 0;
	}
	z[len] = 0;
	int n = 0;
	for (const char *q = z; (q = strstr(q, needle)); q += strlen(needle))
		n++;
	free(z);
	return n;
}

bool gidt_log_has(const struct gidt_daemon *d, const char *needle)
{
	size_t len;
	char *t = t_read_file(d->log, &len);
	if (!t)
		return false;
	char *z = realloc(t, len + 1);
	if (!z) {
		free(t);
		return false;
	}
	z[len] = 0;
	bool r = strstr(z, needle) != NULL;
	free(z);
	return r;
}

int gidt_connect(struct gidt_conn *c, const char *sock)
{
	memset(c, 0, sizeof(*c));
	struct gi_hs_opts o = { .client_name = "gidt", .timeout_ms = 10000 };
	char err[160];
	int r = gi_hs_connect(sock, &o, &c->hs, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "gidt_connect %s: %s (%s)\n", sock, strerror(-r), err);
		return r;
	}
	r = gi_cli_init(&c->cli, &c->hs.region, c->hs.submit_efd, c->hs.complete_efd);
	if (r < 0) {
		gi_hs_session_close(&c->hs);
		return r;
	}
	c->open = true;
	return 0;
}

void gidt_close(struct gidt_conn *c)
{
	if (!c->open)
		return;
	gi_cli_fini(&c->cli);
	gi_hs_session_close(&c->hs);
	c->open = false;
}

/* Copies P's blob into the arena and fills *Q for it. */
static int prep_sqe(struct gidt_conn *c, uint64_t ud, const struct gidt_params *p, struct gi_sqe *q)
{
	uint32_t plen = p->raw ? p->raw_len : p->ids ? p->n_ids * 4 : (uint32_t)strlen(p->prompt);
	uint32_t slen = p->stop ? (uint32_t)strlen(p->stop) : 0;
	uint32_t stop_bytes = slen ? 2 + slen : 0;
	uint32_t blob = ((plen + 3) & ~3u) + stop_bytes;
	uint32_t off;
	uint8_t *mem;
	int r;
	for (int tries = 0; (r = gi_cli_arena_alloc(&c->cli, blob ? blob : 4, &off, &mem)) == -EAGAIN &&
			    tries < 10000; tries++)
		usleep(100);
	if (r < 0)
		return r;
	memset(mem, 0, blob);
	memcpy(mem, p->raw ? p->raw : p->ids ? (const void *)p->ids : (const void *)p->prompt, plen);
	if (slen) {
		uint16_t l = (uint16_t)slen;
		memcpy(mem + ((plen + 3) & ~3u), &l, 2);
		memcpy(mem + ((plen + 3) & ~3u) + 2, p->stop, slen);
	}
	*q = (struct gi_sqe){
		.opcode = GI_OP_SUBMIT,
		.priority = p->priority,
		.flags = (uint16_t)(p->flags | (p->ids ? GI_SQE_F_TOKENS : 0)),
		.max_tokens = p->max_tokens,
		.user_data = ud,
		.req = { .arena_off = off, .prompt_len = plen },
		.stop_len = (uint16_t)stop_bytes,
		.top_k = p->top_k,
		.seed = p->seed,
		.temperature = p->temperature,
		.top_p = p->top_p > 0 ? p->top_p : 1.0f,
		.repeat_penalty = 1.0f,
	};
	return 0;
}

int gidt_submit(struct gidt_conn *c, uint64_t ud, const struct gidt_params *p)
{
	struct gi_sqe q;
	int r = prep_sqe(c, ud, p, &q);
	return r < 0 ? r : gidt_submit_sqe(c, &q);
}

int gidt_submit_many(struct gidt_conn *c, uint64_t ud, const struct gidt_params *p, uint32_t n)
{
	struct gi_sqe q[16];
	if (n > 16)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		int r = prep_sqe(c, ud + i, p, &q[i]);
		if (r < 0)
			return r;
	}
	int r = gi_cli_submit(&c->cli, q, n);
	return r < 0 ? r : (uint32_t)r == n ? 0 : -EAGAIN;
}

int gidt_submit_sqe(struct gidt_conn *c, const struct gi_sqe *q)
{
	for (int tries = 0; tries < 10000; tries++) {
		int r = gi_cli_submit(&c->cli, q, 1);
		if (r != 0 && r != -EAGAIN)
			return r < 0 ? r : 0;
		usleep(100);
	}
	return -EAGAIN;
}

/* The control socket has something: EOF (daemon gone) or an ERROR. */
static int check_socket(struct gidt_conn *c)
{
	uint8_t buf[512];
	ssize_t n = recv(c->hs.sock, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0)
		return -ECONNRESET;
	struct gi_error_msg m;
	if ((size_t)n >= sizeof(m)) {
		memcpy(&m, buf, sizeof(m));
		if (m.hdr.type == GI_MSG_ERROR)
			return m.error < 0 ? m.error : -EPROTO;
	}
	return 0;
}

static void take(struct gidt_result *res, uint32_t n, const struct gi_cqe *e)
{
	if (e->user_data >= n)
		return;
	struct gidt_result *r = &res[e->user_data];
	if (e->kind == GI_CQE_TOKEN) {
		if (!r->first_token_us)
			r->first_token_us = gidt_now_us();
		/* One id per token: a text piece continues the previous event's
		 * token; token -1 is text with no token (flushed at the end). */
		if (e->token >= 0 && !r->cont && r->n_ids < GIDT_MAX_IDS)
			r->ids[r->n_ids++] = e->token;
		r->cont = e->flags & GI_CQE_F_TEXT_CONT;
		uint32_t l = e->text_len <= GI_CQE_TEXT_MAX ? e->text_len : GI_CQE_TEXT_MAX;
		if (r->text_len + l < sizeof(r->text)) {
			memcpy(r->text + r->text_len, e->text, l);
			r->text_len += l;
			r->text[r->text_len] = 0;
		}
	}
	if (e->kind == GI_CQE_ERROR) {
		/* A long reason comes in TEXT_CONT pieces, the last one LAST. */
		size_t have = strlen(r->reason);
		uint32_t l = e->text_len <= GI_CQE_TEXT_MAX ? e->text_len : GI_CQE_TEXT_MAX;
		if (have + l < sizeof(r->reason)) {
			memcpy(r->reason + have, e->reason, l);
			r->reason[have + l] = 0;
		}
	}
	if (e->flags & GI_CQE_F_LAST) {
		r->finished = true;
		r->kind = e->kind;
		r->result = e->result;
		if (e->kind == GI_CQE_DONE) {
			r->n_prompt = e->done.n_prompt;
			r->n_cached = e->done.n_cached;
			r->n_gen = e->done.n_gen;
		} else if (e->kind == GI_CQE_NOP) {
			r->n_gen = (uint32_t)e->nop.echo;
		}
	}
}

int gidt_wait_all(struct gidt_conn *c, struct gidt_result *res, uint32_t n, int timeout_ms)
{
	uint64_t end = gidt_now_us() + (uint64_t)timeout_ms * 1000;
	struct gi_cqe ev[64];
	for (;;) {
		int k = gi_cli_reap(&c->cli, ev, 64);
		if (k < 0)
			return k;
		for (int i = 0; i < k; i++)
			take(res, n, &ev[i]);
		uint32_t done = 0;
		for (uint32_t i = 0; i < n; i++)
			done += res[i].finished;
		if (done == n)
			return 0;
		if (k > 0)
			continue;
		int r = check_socket(c);
		if (r < 0)
			return r;
		uint64_t now = gidt_now_us();
		if (now >= end)
			return -ETIMEDOUT;
		if (gi_cli_prepare_sleep(&c->cli) != 0)
			continue;
		struct pollfd p[2] = {
			{ .fd = c->hs.complete_efd, .events = POLLIN },
			{ .fd = c->hs.sock, .events = POLLIN | POLLRDHUP },
		};
		int ms = (int)((end - now) / 1000) + 1;
		poll(p, 2, ms > 100 ? 100 : ms);
		gi_cli_after_wake(&c->cli);
	}
}

int gidt_run(struct gidt_conn *c, const struct gidt_params *p, struct gidt_result *res, int timeout_ms)
{
	memset(res, 0, sizeof(*res));
	int r = gidt_submit(c, 0, p);
	return r < 0 ? r : gidt_wait_all(c, res, 1, timeout_ms);
}

int gidt_stats(const char *sock, char *buf, size_t cap)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	struct gi_stats_req q = { 0 };
	gi_msg_init(&q.hdr, GI_MSG_STATS_REQ, sizeof(q), 7);
	int r = -EIO;
	static uint8_t rep[GI_MSG_MAX];
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || send(fd, &q, sizeof(q), MSG_NOSIGNAL) < 0) {
		r = -errno;
		goto out;
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1) {
		r = -ETIMEDOUT;
		goto out;
	}
	ssize_t n = recv(fd, rep, sizeof(rep), 0);
	struct gi_msg_hdr h;
	if (n < (ssize_t)sizeof(h))
		goto out;
	memcpy(&h, rep, sizeof(h));
	if (h.type != GI_MSG_STATS_REPLY || h.len != (uint32_t)n)
		goto out;
	size_t len = (size_t)n - sizeof(h);
	if (len >= cap)
		len = cap - 1;
	memcpy(buf, rep + sizeof(h), len);
	buf[len] = 0;
	r = (int)len;
out:
	close(fd);
	return r;
}

long long gidt_json_num(const char *json, const char *key)
{
	char pat[96];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

long long gidt_wait_stat(const char *sock, const char *key, long long want, int timeout_ms)
{
	static char buf[65536];
	long long v = -1;
	for (int i = 0; i <= timeout_ms; i += 20) {
		if (gidt_stats(sock, buf, sizeof(buf)) > 0) {
			v = gidt_json_num(buf, key);
			if (v == want)
				return v;
		}
		usleep(20000);
	}
	return v;
}

void gidt_start_ok(struct gidt_daemon *d, const char *const *extra)
{
	int r = gidt_start(d, extra);

	if (r < 0)
		gidt_dump_log(d);
	ck_assert_msg(r == 0, "gid did not start: %s", strerror(-r));
}

void gidt_stop_ok(struct gidt_daemon *d)
{
	int st = gidt_stop(d, SIGTERM, 10000);

	if (st != 0)
		gidt_dump_log(d);
	ck_assert_msg(st == 0, "gid exit status %d", st);
	gidt_cleanup(d);
}
