/* bench-gid: what serving through gid costs and saves, against doing the
 * same work inside the application.
 *
 *  1. per-request overhead: 1-token generations on stories260K through a
 *     gid this bench starts, versus the same work in-process (tokenize,
 *     one model_step, argmax); the difference is gid's added latency;
 *  2. end to end: 1-token request p50/p99 with the client spinning and
 *     with the client sleeping on its doorbell, and time to the first
 *     streamed token;
 *  3. cold start: a new process from exec to its first token against a
 *     warm gid, versus one that loads the model itself;
 *  4. memory: 16 client processes connected to one gid versus 16
 *     processes each with its own engine (sum of Pss, sum of RSS);
 *  5. aggregate decode tokens/s at 1, 4, 16 and 64 concurrent streams on
 *     a TinyLlama-shaped Q4_0 model (made with gi-mkmodel if missing).
 *
 * `--json` prints one JSON object instead of the table. The bench
 * re-executes itself for the child processes (hidden --child-* modes). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
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

#include "engine/model.h"
#include "engine/tokenizer.h"
#include "ipc/cli.h"
#include "ipc/handshake.h"

#define PROMPT "Once upon a time"
#define N_MEM_PROCS 16

static char self_exe[PATH_MAX];
static char build_dir[PATH_MAX - 64];
static int n_threads = 2;      /* CPU backend threads for the TinyLlama sections */
static int lat_threads = 1;    /* and for the stories260K latency section (too small to split) */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Percentile P (0..100) of N samples in ns, in µs. Sorts V. */
static double pct_us(uint64_t *v, size_t n, double p)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)((double)(n - 1) * p / 100.0 + 0.5);
	return (double)v[i] / 1000.0;
}

/* ---- a gid of our own ---- */

struct daemon {
	pid_t pid;
	char dir[64];
	char sock[108];
};

static int stats_ok(const char *sock)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	struct gi_stats_req q = { 0 };
	gi_msg_init(&q.hdr, GI_MSG_STATS_REQ, sizeof(q), 1);
	int ok = 0;
	char buf[512];
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    send(fd, &q, sizeof(q), MSG_NOSIGNAL) == sizeof(q)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ok = poll(&p, 1, 2000) == 1 && recv(fd, buf, sizeof(buf), 0) > 0;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

static int daemon_start(struct daemon *d, const char *model, int threads_n, const char *const *extra)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/bench-gid-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/gid.sock", d->dir);
	char gid[PATH_MAX + 8], threads[16];
	snprintf(gid, sizeof(gid), "%s/gid", build_dir);
	snprintf(threads, sizeof(threads), "%d", threads_n);
	char *argv[32] = { gid, "--model", (char *)model, "--socket", d->sock, "--user", "",
			   "--threads", threads, "--log-level", "warning" };
	int n = 11;
	for (int i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(gid, argv);
		fprintf(stderr, "bench-gid: exec %s: %s\n", gid, strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		if (stats_ok(d->sock))
			return 0;
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return -ECHILD;
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void daemon_stop(struct daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	unlink(d->sock);
	rmdir(d->dir);
	d->pid = 0;
}

/* ---- a minimal client on ipc/ ---- */

struct client {
	struct gi_hs_session hs;
	struct gi_cli cli;
};

static int client_open(struct client *c, const char *sock)
{
	struct gi_hs_opts o = { .client_name = "bench-gid", .sq_entries = 128 };
	char err[160];
	int r = gi_hs_connect(sock, &o, &c->hs, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "bench-gid: connect %s: %s\n", sock, err);
		return r;
	}
	return gi_cli_init(&c->cli, &c->hs.region, c->hs.submit_efd, c->hs.complete_efd);
}

static void client_close(struct client *c)
{
	gi_cli_fini(&c->cli);
	gi_hs_session_close(&c->hs);
}

static int submit(struct client *c, uint64_t ud, const char *prompt, uint32_t max_tokens)
{
	uint32_t len = (uint32_t)strlen(prompt), off;
	uint8_t *mem;
	int r;
	while ((r = gi_cli_arena_alloc(&c->cli, len, &off, &mem)) == -EAGAIN)
		;
	if (r < 0)
		return r;
	memcpy(mem, prompt, len);
	struct gi_sqe q = {
		.opcode = GI_OP_SUBMIT,
		.max_tokens = max_tokens,
		.user_data = ud,
		.req = { .arena_off = off, .prompt_len = len },
		.top_p = 1.0f,
		.repeat_penalty = 1.0f,
	};
	while ((r = gi_cli_submit(&c->cli, &q, 1)) == 0)
		;
	return r < 0 ? r : 0;
}

/* Waits for at least one event: spins (SPIN true) or sleeps on the
 * completion doorbell. Returns the number reaped, or a negative errno. */
static int reap(struct client *c, struct gi_cqe *ev, uint32_t max, bool spin)
{
	for (;;) {
		int n = gi_cli_reap(&c->cli, ev, max);
		if (n != 0)
			return n;
		if (spin)
			continue;
		if (gi_cli_prepare_sleep(&c->cli) != 0)
			continue;
		struct pollfd p[2] = { { .fd = c->hs.complete_efd, .events = POLLIN },
				       { .fd = c->hs.sock, .events = POLLIN } };
		int w = poll(p, 2, 120000);
		if (w == 0)
			return -ETIMEDOUT;
		if (w < 0 || p[1].revents)
			return -ECONNRESET;
		gi_cli_after_wake(&c->cli);
	}
}

/* Runs one request to its end; returns ns to the first token via *TTFT. */
static int run_one(struct client *c, uint32_t max_tokens, bool spin, uint64_t *ret_total,
		   uint64_t *ret_ttft)
{
	struct gi_cqe ev[64];
	uint64_t t0 = now_ns(), first = 0;
	int r = submit(c, 1, PROMPT, max_tokens);
	if (r < 0)
		return r;
	for (;;) {
		int n = reap(c, ev, 64, spin);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++) {
			if (ev[i].kind == GI_CQE_TOKEN && !first)
				first = now_ns();
			if (ev[i].flags & GI_CQE_F_LAST) {
				*ret_total = now_ns() - t0;
				if (ret_ttft)
					*ret_ttft = first - t0;
				return ev[i].kind == GI_CQE_DONE ? 0 : -EIO;
			}
		}
	}
}

/* ---- in-process engine ---- */

struct inproc {
	struct model *m;
	struct kv_cache *kv;
	float *logits;
	uint32_t n_vocab;
};

static int inproc_open(struct inproc *e, const char *path, uint32_t n_blocks, int threads_n)
{
	struct model_opts mo = { .size = sizeof(mo), .device = "cpu", .n_threads = threads_n };
	char err[256];
	int r = model_load(path, &mo, &e->m, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "bench-gid: %s: %s\n", path, err);
		return r;
	}
	r = kv_cache_create(e->m, n_blocks, &e->kv);
	if (r < 0)
		return r;
	e->n_vocab = model_get_info(e->m)->n_vocab;
	e->logits = malloc(e->n_vocab * sizeof(float));
	return e->logits ? 0 : -ENOMEM;
}

static void inproc_close(struct inproc *e)
{
	free(e->logits);
	kv_cache_free(e->kv);
	model_free(e->m);
}

/* What gid does for a 1-token request, done here: tokenize, prefill, argmax. */
static int32_t inproc_first_token(struct inproc *e, const char *prompt)
{
	int32_t ids[64];
	int n = tok_encode(model_tokenizer(e->m), prompt, strlen(prompt), true, false, ids, 64);
	if (n <= 0 || n > 64)
		return -EINVAL;
	uint32_t blocks[4] = { 0, 1, 2, 3 };
	struct step_seq s = { .blocks = blocks, .n_blocks = 4, .tokens = ids, .n_tokens = (uint32_t)n,
			      .logits = e->logits };
	int r = model_step(e->m, e->kv, &s, 1);
	if (r < 0)
		return r;
	int32_t best = 0;
	for (uint32_t i = 1; i < e->n_vocab; i++)
		if (e->logits[i] > e->logits[best])
			best = (int32_t)i;
	return best;
}

/* ---- child modes ---- */

static int child_gid(const char *sock)
{
	struct client c;
	uint64_t t, f;
	if (client_open(&c, sock) < 0 || run_one(&c, 1, false, &t, &f) < 0)
		return 1;
	client_close(&c);
	return 0;
}

static int child_inproc(const char *model)
{
	struct inproc e;
	if (inproc_open(&e, model, 4, n_threads) < 0 || inproc_first_token(&e, PROMPT) < 0)
		return 1;
	inproc_close(&e);
	return 0;
}

/* Holds a session (or an engine) after one request until killed. */
static int child_hold(const char *what, bool engine, int ready_fd)
{
	struct client c;
	struct inproc e;
	uint64_t t, f;
	if (engine ? inproc_open(&e, what, 32, n_threads) < 0 || inproc_first_token(&e, PROMPT) < 0
		   : client_open(&c, what) < 0 || run_one(&c, 1, false, &t, &f) < 0)
		return 1;
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	pause();
	return 0;
}

/* ---- measurements ---- */

struct results {
	double inproc_p50, gid_spin_p50, gid_spin_p99, gid_block_p50, gid_block_p99;
	double ttft_spin_p50, ttft_block_p50, overhead_p50;
	double cold_gid_ms, cold_inproc_ms;
	double cold_small_gid_ms, cold_small_inproc_ms;
	int spin_us[4];
	double spin_p50[4], spin_ttft_p50[4];
	const char *cold_model;
	double mem_gid_pss_mb, mem_gid_rss_mb, mem_inproc_pss_mb, mem_inproc_rss_mb;
	const char *mem_model;
	int tput_levels[4];
	double tput[4];
	const char *tput_model;
	bool have_big;
};

/* Wall time of a child process run as SELF --MODE ARG, in ms (median of N). */
static double time_child(const char *mode, const char *arg, int n)
{
	double t[9];
	if (n > 9)
		n = 9;
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		pid_t p = fork();
		if (p == 0) {
			execl(self_exe, self_exe, mode, arg, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(p, &st, 0);
		t[i] = (double)(now_ns() - t0) / 1e6;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return NAN;
	}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
			double x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return t[n / 2];
}

/* The three ways of doing a 1-token request, measured in interleaved
 * rounds so that load from other processes hits all of them alike. */
static int measure_latency(const char *model, int n, struct results *R)
{
	enum { ROUNDS = 10 };
	uint64_t *v[3], *w[2];
	for (int k = 0; k < 3; k++)
		v[k] = calloc((size_t)n, sizeof(uint64_t));
	for (int k = 0; k < 2; k++)
		w[k] = calloc((size_t)n, sizeof(uint64_t));
	struct inproc e;
	int r = inproc_open(&e, model, 4, lat_threads);
	if (r < 0)
		return r;
	struct daemon d;
	r = daemon_start(&d, model, lat_threads, NULL);
	if (r < 0) {
		fprintf(stderr, "bench-gid: gid did not start: %s\n", strerror(-r));
		inproc_close(&e);
		return r;
	}
	struct client c;
	r = client_open(&c, d.sock);
	uint64_t t;
	for (int i = 0; r == 0 && i < n / 10; i++) {
		inproc_first_token(&e, PROMPT);
		r = run_one(&c, 1, false, &t, NULL);
	}
	int per = n / ROUNDS, m = per / 4 > 5 ? per / 4 : 5, nm = 0;
	for (int round = 0; r == 0 && round < ROUNDS; round++) {
		for (int i = round * per; i < (round + 1) * per; i++) {
			uint64_t t0 = now_ns();
			if (inproc_first_token(&e, PROMPT) < 0) {
				r = -EIO;
				break;
			}
			v[0][i] = now_ns() - t0;
		}
		for (int i = round * per; r == 0 && i < (round + 1) * per; i++)
			r = run_one(&c, 1, false, &v[2][i], NULL);
		for (int i = 0; r == 0 && i < m; i++)
			r = run_one(&c, 16, false, &t, &w[1][nm + i]);
		for (int i = round * per; r == 0 && i < (round + 1) * per; i++)
			r = run_one(&c, 1, true, &v[1][i], NULL);
		for (int i = 0; r == 0 && i < m; i++)
			r = run_one(&c, 16, true, &t, &w[0][nm + i]);
		nm += m;
	}
	size_t cnt = (size_t)per * ROUNDS;
	if (r == 0) {
		R->inproc_p50 = pct_us(v[0], cnt, 50);
		R->gid_spin_p50 = pct_us(v[1], cnt, 50);
		R->gid_spin_p99 = pct_us(v[1], cnt, 99);
		R->gid_block_p50 = pct_us(v[2], cnt, 50);
		R->gid_block_p99 = pct_us(v[2], cnt, 99);
		R->ttft_spin_p50 = pct_us(w[0], (size_t)nm, 50);
		R->ttft_block_p50 = pct_us(w[1], (size_t)nm, 50);
		R->overhead_p50 = R->gid_block_p50 - R->inproc_p50;
	}
	client_close(&c);
	inproc_close(&e);
	R->cold_small_gid_ms = time_child("--child-gid", d.sock, 7);
	R->cold_small_inproc_ms = time_child("--child-inproc", model, 7);
	daemon_stop(&d);
	for (int k = 0; k < 3; k++)
		free(v[k]);
	for (int k = 0; k < 2; k++)
		free(w[k]);
	return r;
}

/* Engine idle spin (IPC.md's open question): 1-token p50 and TTFT with a
 * sleeping client at several idle_spin_us settings. */
static int measure_idle_spin(const char *model, int n, struct results *R)
{
	static const int spins[4] = { 0, 20, 50, 200 };
	uint64_t *v = calloc((size_t)n, sizeof(*v)), *w = calloc((size_t)n, sizeof(*w));
	int r = v && w ? 0 : -ENOMEM;
	for (int k = 0; r == 0 && k < 4; k++) {
		char arg[16];
		snprintf(arg, sizeof(arg), "%d", spins[k]);
		struct daemon d;
		r = daemon_start(&d, model, lat_threads, (const char *const[]){ "--idle-spin-us", arg, NULL });
		if (r < 0)
			break;
		struct client c;
		uint64_t t;
		r = client_open(&c, d.sock);
		for (int i = 0; r == 0 && i < n / 10; i++)
			r = run_one(&c, 1, false, &t, NULL);
		for (int i = 0; r == 0 && i < n; i++)
			r = run_one(&c, 1, false, &v[i], NULL);
		for (int i = 0; r == 0 && i < n / 4; i++)
			r = run_one(&c, 16, false, &t, &w[i]);
		if (r == 0) {
			R->spin_us[k] = spins[k];
			R->spin_p50[k] = pct_us(v, (size_t)n, 50);
			R->spin_ttft_p50[k] = pct_us(w, (size_t)n / 4, 50);
		}
		client_close(&c);
		daemon_stop(&d);
	}
	free(v);
	free(w);
	return r;
}

/* Pss and Rss of PID in kB from smaps_rollup. */
static void mem_of(pid_t pid, uint64_t *pss, uint64_t *rss)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	unsigned long long v;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Pss: %llu kB", &v) == 1)
			*pss += v;
		else if (sscanf(line, "Rss: %llu kB", &v) == 1)
			*rss += v;
	}
	fclose(f);
}

/* Starts N children holding a session of SOCK (or an engine of MODEL) and
 * sums their memory (plus EXTRA_PID's). */
static int hold_children(const char *arg, bool engine, pid_t extra_pid, double *pss_mb, double *rss_mb)
{
	pid_t kids[N_MEM_PROCS];
	int fds[2];
	if (pipe(fds) < 0)
		return -errno;
	for (int i = 0; i < N_MEM_PROCS; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			close(fds[0]);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			char fd[16];
			snprintf(fd, sizeof(fd), "%d", fds[1]);
			execl(self_exe, self_exe, engine ? "--child-hold-engine" : "--child-hold", arg, fd,
			      (char *)NULL);
			_exit(127);
		}
	}
	close(fds[1]);
	int ready = 0;
	char ch;
	while (ready < N_MEM_PROCS && read(fds[0], &ch, 1) == 1)
		ready++;
	close(fds[0]);
	uint64_t pss = 0, rss = 0;
	if (ready == N_MEM_PROCS) {
		for (int i = 0; i < N_MEM_PROCS; i++)
			mem_of(kids[i], &pss, &rss);
		if (extra_pid > 0)
			mem_of(extra_pid, &pss, &rss);
	}
	for (int i = 0; i < N_MEM_PROCS; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	*pss_mb = (double)pss / 1024.0;
	*rss_mb = (double)rss / 1024.0;
	return ready == N_MEM_PROCS ? 0 : -EIO;
}

/* Aggregate decode tokens/s with S streams of TOKENS tokens each. */
static double throughput(const char *sock, int streams, uint32_t tokens)
{
	struct client c;
	if (client_open(&c, sock) < 0)
		return NAN;
	uint64_t first[64] = { 0 }, end[64] = { 0 };
	uint32_t gen[64] = { 0 };
	for (int i = 0; i < streams; i++)
		if (submit(&c, (uint64_t)i, PROMPT, tokens) < 0)
			return NAN;
	int done = 0;
	struct gi_cqe ev[256];
	while (done < streams) {
		int n = reap(&c, ev, 256, false);
		if (n < 0)
			return NAN;
		uint64_t t = now_ns();
		for (int i = 0; i < n; i++) {
			uint64_t u = ev[i].user_data;
			if (u >= 64)
				continue;
			if (ev[i].kind == GI_CQE_TOKEN && !(ev[i].flags & GI_CQE_F_TEXT_CONT) && ev[i].token >= 0) {
				if (!first[u])
					first[u] = t;
				gen[u]++;
			}
			if (ev[i].flags & GI_CQE_F_LAST) {
				end[u] = t;
				done++;
			}
		}
	}
	client_close(&c);
	uint64_t t0 = UINT64_MAX, t1 = 0, total = 0;
	for (int i = 0; i < streams; i++) {
		if (first[i] && first[i] < t0)
			t0 = first[i];
		if (end[i] > t1)
			t1 = end[i];
		total += gen[i] ? gen[i] - 1 : 0;
	}
	return t1 > t0 ? (double)total / ((double)(t1 - t0) / 1e9) : NAN;
}

static int ensure_big_model(char *path, size_t cap)
{
	snprintf(path, cap, "%s/../models/tinyllama-q4_0.gguf", build_dir);
	if (access(path, R_OK) == 0)
		return 0;
	char gen[PATH_MAX + 16];
	snprintf(gen, sizeof(gen), "%s/gi-mkmodel", build_dir);
	if (access(gen, X_OK) < 0) {
		fprintf(stderr, "bench-gid: %s missing and no %s: skipping the TinyLlama sections\n", path, gen);
		return -ENOENT;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/../models", build_dir);
	mkdir(dir, 0755);
	pid_t p = fork();
	if (p == 0) {
		execl(gen, gen, "--out", path, "--preset", "tinyllama", "--type", "q4_0", (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(p, &st, 0);
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

static void print_table(const struct results *R)
{
	printf("gid per-request cost (stories260K, 1-token generation, prompt \"%s\", %d thread%s)\n", PROMPT,
	       lat_threads, lat_threads == 1 ? "" : "s");
	printf("  %-44s %10s %10s  %s\n", "", "p50 us", "p99 us", "target / baseline");
	printf("  %-44s %10.1f %10s\n", "in-process: tokenize + model_step + argmax", R->inproc_p50, "");
	printf("  %-44s %10.1f %10.1f\n", "through gid, client spinning", R->gid_spin_p50, R->gid_spin_p99);
	printf("  %-44s %10.1f %10.1f  < 100 us; llama.cpp HTTP server 620-890 us\n",
	       "through gid, client sleeping on doorbell", R->gid_block_p50, R->gid_block_p99);
	printf("  %-44s %10.1f %10s  < 20 us\n", "added by gid (sleeping p50 - in-process p50)",
	       R->overhead_p50, "");
	printf("  %-44s %10.1f %10s\n", "added by gid (spinning p50 - in-process p50)",
	       R->gid_spin_p50 - R->inproc_p50, "");
	printf("  %-44s %10.1f %10s\n", "time to first streamed token, spinning", R->ttft_spin_p50, "");
	printf("  %-44s %10.1f %10s  < 200 us; llama.cpp 1.29 ms\n", "time to first streamed token, sleeping",
	       R->ttft_block_p50, "");
	printf("\nengine idle spin (client sleeping on its doorbell)\n");
	for (int k = 0; k < 4; k++)
		printf("  idle_spin_us %-4d 1-token p50 %8.1f us, first token p50 %8.1f us\n", R->spin_us[k],
		       R->spin_p50[k], R->spin_ttft_p50[k]);
	printf("\ncold start: new process, exec to first token\n");
	printf("  %-44s %10.2f ms\n", "stories260K, against a warm gid", R->cold_small_gid_ms);
	printf("  %-44s %10.2f ms\n", "stories260K, loading the model in-process", R->cold_small_inproc_ms);
	if (R->cold_model) {
		printf("  %-44s %10.1f ms\n", "tinyllama-q4_0, against a warm gid", R->cold_gid_ms);
		printf("  %-44s %10.1f ms\n", "tinyllama-q4_0, loading the model in-process",
		       R->cold_inproc_ms);
	}
	if (!R->mem_model)
		return;
	printf("\nmemory: %d processes (%s)\n", N_MEM_PROCS, R->mem_model);
	printf("  %-44s %10.1f MiB Pss %10.1f MiB Rss\n", "16 clients + one gid", R->mem_gid_pss_mb,
	       R->mem_gid_rss_mb);
	printf("  %-44s %10.1f MiB Pss %10.1f MiB Rss\n", "16 in-process engines", R->mem_inproc_pss_mb,
	       R->mem_inproc_rss_mb);
	if (R->have_big) {
		printf("\naggregate decode tokens/s through gid (%s)\n", R->tput_model);
		for (int i = 0; i < 4; i++)
			printf("  %3d streams %10.1f tok/s  (%.2fx single)%s\n", R->tput_levels[i], R->tput[i],
			       R->tput[i] / R->tput[0], R->tput_levels[i] == 16 ? "  target >= 6x" : "");
	}
}

static void print_json(const struct results *R)
{
	printf("{\"threads\":%d,\"latency_threads\":%d,\"inproc_p50_us\":%.2f,\"gid_spin_p50_us\":%.2f,\"gid_spin_p99_us\":%.2f,"
	       "\"gid_block_p50_us\":%.2f,\"gid_block_p99_us\":%.2f,\"overhead_p50_us\":%.2f,"
	       "\"ttft_spin_p50_us\":%.2f,\"ttft_block_p50_us\":%.2f,\"cold_small_gid_ms\":%.3f,"
	       "\"cold_small_inproc_ms\":%.3f,\"cold_model\":\"%s\","
	       "\"cold_gid_ms\":%.2f,\"cold_inproc_ms\":%.2f,\"mem_model\":\"%s\",\"mem_procs\":%d,"
	       "\"mem_gid_pss_mib\":%.1f,\"mem_gid_rss_mib\":%.1f,\"mem_inproc_pss_mib\":%.1f,"
	       "\"mem_inproc_rss_mib\":%.1f,\"decode_tok_s\":{",
	       n_threads, lat_threads, R->inproc_p50, R->gid_spin_p50, R->gid_spin_p99, R->gid_block_p50, R->gid_block_p99,
	       R->overhead_p50, R->ttft_spin_p50, R->ttft_block_p50, R->cold_small_gid_ms,
	       R->cold_small_inproc_ms, R->cold_model ? R->cold_model : "", R->cold_gid_ms,
	       R->cold_inproc_ms, R->mem_model ? R->mem_model : "", N_MEM_PROCS, R->mem_gid_pss_mb, R->mem_gid_rss_mb,
	       R->mem_inproc_pss_mb, R->mem_inproc_rss_mb);
	for (int i = 0; R->have_big && i < 4; i++)
		printf("%s\"%d\":%.2f", i ? "," : "", R->tput_levels[i], R->tput[i]);
	printf("},\"idle_spin\":[");
	for (int k = 0; k < 4; k++)
		printf("%s{\"idle_spin_us\":%d,\"p50_us\":%.2f,\"ttft_p50_us\":%.2f}", k ? "," : "",
		       R->spin_us[k], R->spin_p50[k], R->spin_ttft_p50[k]);
	printf("]}\n");
}

int main(int argc, char **argv)
{
	/* Children inherit the thread count through the environment. */
	const char *th = getenv("GI_BENCH_THREADS");
	if (th && atoi(th) > 0)
		n_threads = atoi(th);
	if (argc == 3 && !strcmp(argv[1], "--child-gid"))
		return child_gid(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--child-inproc"))
		return child_inproc(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "--child-hold"))
		return child_hold(argv[2], false, atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "--child-hold-engine"))
		return child_hold(argv[2], true, atoi(argv[3]));

	bool json = false, quick = false, latency_only = false;
	uint32_t decode_tokens = 16;
	const char *shared = getenv("GI_SHARED") ? getenv("GI_SHARED") : "../shared";
	char small[PATH_MAX], big[PATH_MAX];
	snprintf(small, sizeof(small), "%s/models/stories260K.gguf", shared);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--latency-only"))
			latency_only = true;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			n_threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--latency-threads") && i + 1 < argc)
			lat_threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--decode-tokens") && i + 1 < argc)
			decode_tokens = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--model") && i + 1 < argc)
			snprintf(small, sizeof(small), "%s", argv[++i]);
		else {
			fprintf(stderr, "usage: bench-gid [--json] [--quick] [--latency-only] [--threads N] [--latency-threads N] [--decode-tokens N] [--model GGUF]\n");
			return 2;
		}
	}
	char thr[16];
	snprintf(thr, sizeof(thr), "%d", n_threads);
	setenv("GI_BENCH_THREADS", thr, 1);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0)
		return 1;
	self_exe[n] = 0;
	char *slash = strrchr(self_exe, '/');
	if (!slash || (size_t)(slash - self_exe) >= sizeof(build_dir))
		return 1;
	memcpy(build_dir, self_exe, (size_t)(slash - self_exe));
	signal(SIGPIPE, SIG_IGN);

	static struct results R;
	int r = measure_latency(small, quick ? 300 : 3000, &R);
	if (r < 0) {
		fprintf(stderr, "bench-gid: latency: %s\n", strerror(-r));
		return 1;
	}
	r = measure_idle_spin(small, quick ? 300 : 1000, &R);
	if (r < 0) {
		fprintf(stderr, "bench-gid: idle spin: %s\n", strerror(-r));
		return 1;
	}
	if (latency_only) {
		if (json)
			print_json(&R);
		else
			print_table(&R);
		return 0;
	}
	R.have_big = ensure_big_model(big, sizeof(big)) == 0;
	const char *model = R.have_big ? big : small;
	R.mem_model = R.tput_model = R.have_big ? "tinyllama-q4_0" : "stories260K";
	R.cold_model = R.have_big ? "tinyllama-q4_0" : NULL;

	struct daemon d;
	r = daemon_start(&d, model, n_threads, (const char *const[]){ "--max-running", "64", "--ctx", "512", NULL });
	if (r < 0) {
		fprintf(stderr, "bench-gid: gid on %s did not start: %s\n", model, strerror(-r));
		return 1;
	}
	if (R.have_big) {
		R.cold_gid_ms = time_child("--child-gid", d.sock, quick ? 3 : 5);
		R.cold_inproc_ms = time_child("--child-inproc", model, 3);
	}
	hold_children(d.sock, false, d.pid, &R.mem_gid_pss_mb, &R.mem_gid_rss_mb);
	hold_children(model, true, 0, &R.mem_inproc_pss_mb, &R.mem_inproc_rss_mb);
	if (R.have_big) {
		const int levels[4] = { 1, 4, 16, 64 };
		for (int i = 0; i < 4; i++) {
			R.tput_levels[i] = levels[i];
			R.tput[i] = throughput(d.sock, levels[i], decode_tokens);
		}
	}
	daemon_stop(&d);
	if (json)
		print_json(&R);
	else
		print_table(&R);
	return 0;
}
