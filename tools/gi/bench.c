/* gi bench: N client processes, each running M requests one after the
 * other, all at once. Reports time to first token, inter-token latency,
 * request latency (p50/p90/p99) and throughput; --nop measures NOP round
 * trips through the rings instead (p50/p90/p99/p99.9).
 *
 * Children send fixed-size sample records up one shared pipe (writes under
 * PIPE_BUF are atomic, so records never interleave). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/grow.h"
#include "tools/gi/gi.h"

enum {
	OPT_CLIENTS = OPT_OWN_,
	OPT_REQUESTS,
	OPT_PROMPT_TOKENS,
	OPT_SHARED_PREFIX,
	OPT_NOP,
	OPT_SPIN_US,
	OPT_IGNORE_EOS,
	OPT_STOP_AT_EOS,
};

enum sample_kind { S_TTFT, S_ITL, S_LAT, S_NOP, S_TOKENS, S_PROMPT, S_CACHED, S_ERROR, S_KINDS_ };

struct sample {
	uint32_t kind;
	uint32_t client;
	uint64_t v;             /* ns, or a count */
};

struct bench_cfg {
	struct gen_args a;
	uint32_t clients, requests, prompt_tokens, shared_prefix;
	int32_t spin_us;
	bool nop;
};

static const char *const words[] = {
	"the", "cat", "dog", "ran", "big", "little", "sun", "tree", "girl", "boy",
	"happy", "saw", "play", "ball", "red", "blue", "house", "day", "mom", "friend",
};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

static void emit(int fd, uint32_t client, uint32_t kind, uint64_t v)
{
	struct sample s = { kind, client, v };

	if (write(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
		_exit(GI_EXIT_REQUEST);
}

/* Prompt of request R of client CL: SHARED_PREFIX words common to all, the
 * rest varied per request. */
static void make_prompt(const struct bench_cfg *b, uint32_t cl, uint32_t r, char *out, size_t cap)
{
	size_t len = 0;
	uint32_t i, x = cl * 7919u + r * 104729u + 1;

	out[0] = 0;
	for (i = 0; i < b->prompt_tokens && len + 16 < cap; i++) {
		const char *w;

		if (i < b->shared_prefix) {
			w = words[i % N_WORDS];
		} else {
			x = x * 1103515245u + 12345u;
			w = words[(x >> 16) % N_WORDS];
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", w);
	}
}

static int child_gen(const struct bench_cfg *b, struct gi_conn *c, uint32_t cl, int fd)
{
	char prompt[16384];
	uint32_t r;

	for (r = 0; r < b->requests; r++) {
		uint64_t t0, prev = 0, req;
		struct gi_event ev;
		int e;

		make_prompt(b, cl, r, prompt, sizeof(prompt));
		t0 = mono_ns();
		e = gi_gen_text(c, prompt, strlen(prompt), &b->a.opts, r, &req);
		if (e < 0) {
			fprintf(stderr, "gi bench: client %u: submit: %s\n", cl, gi_strerror(e));
			emit(fd, cl, S_ERROR, 1);
			return GI_EXIT_REQUEST;
		}
		for (;;) {
			e = gi_event_next(c, &ev, -1);
			if (e < 0) {
				fprintf(stderr, "gi bench: client %u: %s\n", cl, gi_strerror(e));
				emit(fd, cl, S_ERROR, 1);
				return GI_EXIT_REQUEST;
			}
			uint64_t now = mono_ns();

			if (ev.kind == GI_EVENT_TOKEN) {
				if (ev.token < 0)
					continue; /* held-back text at the end: no token, no interval */
				emit(fd, cl, prev ? S_ITL : S_TTFT, now - (prev ? prev : t0));
				prev = now;
				continue;
			}
			if (ev.kind == GI_EVENT_ERROR) {
				fprintf(stderr, "gi bench: client %u: request failed: %.*s\n", cl,
					(int)ev.text_len, ev.text);
				emit(fd, cl, S_ERROR, 1);
				break;
			}
			emit(fd, cl, S_LAT, now - t0);
			emit(fd, cl, S_TOKENS, ev.done.n_gen);
			emit(fd, cl, S_PROMPT, ev.done.n_prompt);
			emit(fd, cl, S_CACHED, ev.done.n_cached);
			break;
		}
	}
	return GI_EXIT_OK;
}

static int child_nop(const struct bench_cfg *b, struct gi_conn *c, uint32_t cl, int fd)
{
	struct gi_event ev;
	uint32_t r;

	for (r = 0; r < b->requests + 100; r++) {
		uint64_t t0 = mono_ns();
		int e = gi_req_nop(c, r, 0, 0, NULL);

		if (e == 0)
			e = gi_event_next(c, &ev, -1);
		if (e < 0) {
			fprintf(stderr, "gi bench: client %u: nop: %s\n", cl, gi_strerror(e));
			emit(fd, cl, S_ERROR, 1);
			return GI_EXIT_REQUEST;
		}
		if (r >= 100) /* the first 100 warm up caches and the daemon's loop */
			emit(fd, cl, S_NOP, mono_ns() - t0);
	}
	return GI_EXIT_OK;
}

static int run_child(const struct bench_cfg *b, uint32_t cl, int fd)
{
	struct gi_conn *c = cli_connect("bench", b->a.socket, b->spin_us);
	int r;

	if (!c)
		return GI_EXIT_CONNECT;
	r = b->nop ? child_nop(b, c, cl, fd) : child_gen(b, c, cl, fd);
	gi_conn_close(c);
	return r;
}

struct series {
	uint64_t *v;
	size_t n, cap;
};

static int series_add(struct series *s, uint64_t v)
{
	uint64_t *n = grow_array(s->v, &s->cap, s->n + 1, sizeof(*n), 1024);

	if (!n)
		return -ENOMEM;
	s->v = n;
	s->v[s->n++] = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentile P (0..100) of sorted S, in milliseconds (nearest rank). */
static double pct_ms(const struct series *s, double p)
{
	size_t i;

	if (!s->n)
		return 0;
	i = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > s->n)
		i = s->n;
	return (double)s->v[i - 1] / 1e6;
}

static uint64_t sum(const struct series *s)
{
	uint64_t t = 0;
	size_t i;

	for (i = 0; i < s->n; i++)
		t += s->v[i];
	return t;
}

static const char *const names[S_KINDS_] = {
	[S_TTFT] = "ttft_ms", [S_ITL] = "itl_ms", [S_LAT] = "latency_ms", [S_NOP] = "nop_rtt_ms",
};

static void report(const struct bench_cfg *b, struct series *s, double wall_s)
{
	static const int shown[] = { S_TTFT, S_ITL, S_LAT };
	uint64_t tokens = sum(&s[S_TOKENS]);
	size_t i, n_req = s[S_LAT].n;
	double tps = wall_s > 0 ? (double)tokens / wall_s : 0;
	double rps = wall_s > 0 ? (double)(b->nop ? s[S_NOP].n : n_req) / wall_s : 0;
	double avg_prompt = n_req ? (double)sum(&s[S_PROMPT]) / (double)n_req : 0;
	double avg_cached = n_req ? (double)sum(&s[S_CACHED]) / (double)n_req : 0;

	for (i = 0; i < S_KINDS_; i++)
		if (s[i].n)
			qsort(s[i].v, s[i].n, sizeof(uint64_t), cmp_u64);
	if (b->a.json) {
		printf("{\"mode\": \"%s\", \"clients\": %u, \"requests_per_client\": %u, \"errors\": %zu, "
		       "\"wall_s\": %.3f",
		       b->nop ? "nop" : "generate", b->clients, b->requests, s[S_ERROR].n, wall_s);
		if (b->nop) {
			const struct series *x = &s[S_NOP];

			printf(", \"nop_rtt_us\": {\"n\": %zu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
			       "\"p99.9\": %.3f}, \"nops_per_s\": %.0f}\n",
			       x->n, pct_ms(x, 50) * 1e3, pct_ms(x, 90) * 1e3, pct_ms(x, 99) * 1e3,
			       pct_ms(x, 99.9) * 1e3, rps);
			return;
		}
		printf(", \"prompt_tokens_avg\": %.1f, \"cached_tokens_avg\": %.1f", avg_prompt, avg_cached);
		for (i = 0; i < 3; i++) {
			const struct series *x = &s[shown[i]];

			printf(", \"%s\": {\"n\": %zu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f}",
			       names[shown[i]], x->n, pct_ms(x, 50), pct_ms(x, 90), pct_ms(x, 99));
		}
		printf(", \"tokens\": %llu, \"tokens_per_s\": %.1f, \"requests_per_s\": %.2f}\n",
		       (unsigned long long)tokens, tps, rps);
		return;
	}
	if (b->nop) {
		const struct series *x = &s[S_NOP];

		printf("gi bench --nop: %u clients x %u round trips (client spin %d us), %zu errors\n",
		       b->clients, b->requests,
		       b->spin_us == 0 ? GI_SPIN_US_DEFAULT : b->spin_us < 0 ? 0 : b->spin_us,
		       s[S_ERROR].n);
		printf("  nop round trip us   p50 %.2f   p90 %.2f   p99 %.2f   p99.9 %.2f   (%.0f nops/s)\n",
		       pct_ms(x, 50) * 1e3, pct_ms(x, 90) * 1e3, pct_ms(x, 99) * 1e3,
		       pct_ms(x, 99.9) * 1e3, rps);
		return;
	}
	printf("gi bench: %u clients x %u requests, prompt %u words (shared prefix %u), "
	       "up to %u tokens each; %zu errors\n",
	       b->clients, b->requests, b->prompt_tokens, b->shared_prefix, b->a.opts.max_tokens,
	       s[S_ERROR].n);
	printf("  prompt tokens avg %.1f (from prefix cache %.1f)\n", avg_prompt, avg_cached);
	printf("  %-12s %10s %10s %10s %8s\n", "", "p50", "p90", "p99", "n");
	for (i = 0; i < 3; i++) {
		const struct series *x = &s[shown[i]];

		printf("  %-12s %10.3f %10.3f %10.3f %8zu\n", names[shown[i]], pct_ms(x, 50),
		       pct_ms(x, 90), pct_ms(x, 99), x->n);
	}
	printf("  throughput   %.1f tokens/s, %.2f requests/s over %.2f s\n", tps, rps, wall_s);
}

static int usage(FILE *f)
{
	fprintf(f, "usage: gi bench [OPTIONS]\n"
		   "  --clients N           concurrent client processes (default 4)\n"
		   "  --requests M          requests per client, one after another (default 8;\n"
		   "                        --nop: round trips per client, default 20000)\n"
		   "  --prompt-tokens P     prompt length in words (default 32)\n"
		   "  --shared-prefix K     first K words the same in every prompt (default 0)\n"
		   "  --max-tokens N        tokens generated per request at most (default 32)\n"
		   "  --ignore-eos          always generate --max-tokens tokens (the default, so\n"
		   "                        every run measures the same work)\n"
		   "  --stop-at-eos         let a request end early at end-of-sequence\n"
		   "  --nop                 measure NOP round trips through the rings\n"
		   "  --spin-us N           client busy-poll before sleeping (-1 = never)\n"
		   "  --json                one JSON object instead of the table\n"
		   "  --temp T --top-k K --top-p P --min-p P --seed S --socket PATH\n");
	return f == stdout ? GI_EXIT_OK : GI_EXIT_USAGE;
}

static int parse(struct bench_cfg *b, int argc, char **argv)
{
	static const struct option longopts[] = {
		GEN_LONG_OPTIONS,
		{ "clients", required_argument, NULL, OPT_CLIENTS },
		{ "requests", required_argument, NULL, OPT_REQUESTS },
		{ "prompt-tokens", required_argument, NULL, OPT_PROMPT_TOKENS },
		{ "shared-prefix", required_argument, NULL, OPT_SHARED_PREFIX },
		{ "nop", no_argument, NULL, OPT_NOP },
		{ "spin-us", required_argument, NULL, OPT_SPIN_US },
		{ "ignore-eos", no_argument, NULL, OPT_IGNORE_EOS },
		{ "stop-at-eos", no_argument, NULL, OPT_STOP_AT_EOS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool requests_set = false;
	uint32_t spin;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			usage(stdout);
			return -1;
		case OPT_CLIENTS:
			r = parse_u32("bench", "clients", optarg, 1, 1024, &b->clients);
			break;
		case OPT_REQUESTS:
			r = parse_u32("bench", "requests", optarg, 1, 100000000, &b->requests);
			requests_set = true;
			break;
		case OPT_PROMPT_TOKENS:
			r = parse_u32("bench", "prompt-tokens", optarg, 1, 2000, &b->prompt_tokens);
			break;
		case OPT_SHARED_PREFIX:
			r = parse_u32("bench", "shared-prefix", optarg, 0, 2000, &b->shared_prefix);
			break;
		case OPT_NOP:
			b->nop = true;
			r = 0;
			break;
		case OPT_IGNORE_EOS:
			b->a.opts.flags |= GI_GEN_IGNORE_EOS;
			r = 0;
			break;
		case OPT_STOP_AT_EOS:
			b->a.opts.flags &= ~GI_GEN_IGNORE_EOS;
			r = 0;
			break;
		case OPT_SPIN_US:
			if (!strcmp(optarg, "-1")) {
				b->spin_us = -1;
				r = 0;
				break;
			}
			r = parse_u32("bench", "spin-us", optarg, 0, 1000000, &spin);
			b->spin_us = r == 0 ? (spin ? (int32_t)spin : -1) : 0;
			break;
		default:
			r = gen_args_parse(&b->a, opt, optarg);
			if (r == 0) {
				usage(stderr);
				return -2;
			}
			r = r < 0 ? -1 : 0;
		}
		if (r < 0)
			return -2;
	}
	if (optind != argc) {
		fprintf(stderr, "gi bench: unexpected argument '%s'\n", argv[optind]);
		return -2;
	}
	if (b->shared_prefix > b->prompt_tokens) {
		fprintf(stderr, "gi bench: --shared-prefix %u is longer than --prompt-tokens %u\n",
			b->shared_prefix, b->prompt_tokens);
		return -2;
	}
	if (!requests_set && b->nop)
		b->requests = 20000;
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_cfg b = { .clients = 4, .requests = 8, .prompt_tokens = 32 };
	struct series s[S_KINDS_] = { { 0 } };
	struct sample smp;
	int fds[2], ret = GI_EXIT_OK, status, r;
	uint64_t t0;
	uint32_t i;
	ssize_t n;

	gen_args_init(&b.a);
	b.a.opts.max_tokens = 32;
	b.a.opts.flags |= GI_GEN_IGNORE_EOS;
	r = parse(&b, argc, argv);
	if (r == -1)
		return GI_EXIT_OK;
	if (r < 0)
		return GI_EXIT_USAGE;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "gi bench: pipe: %s\n", strerror(errno));
		return GI_EXIT_REQUEST;
	}
	fflush(stdout);
	t0 = mono_ns();
	for (i = 0; i < b.clients; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "gi bench: fork: %s\n", strerror(errno));
			ret = GI_EXIT_REQUEST;
			break;
		}
		if (pid == 0) {
			close(fds[0]);
			_exit(run_child(&b, i, fds[1]));
		}
	}
	close(fds[1]);
	while ((n = read(fds[0], &smp, sizeof(smp))) == (ssize_t)sizeof(smp)) {
		if (smp.kind < S_KINDS_ && series_add(&s[smp.kind], smp.v) < 0) {
			fprintf(stderr, "gi bench: out of memory\n");
			ret = GI_EXIT_REQUEST;
			break;
		}
	}
	close(fds[0]);
	while (wait(&status) > 0) {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : GI_EXIT_REQUEST;

		if (code == GI_EXIT_CONNECT && ret == GI_EXIT_OK)
			ret = GI_EXIT_CONNECT;
		else if (code != GI_EXIT_OK && ret != GI_EXIT_CONNECT)
			ret = GI_EXIT_REQUEST;
	}
	if (ret != GI_EXIT_CONNECT)
		report(&b, s, (double)(mono_ns() - t0) / 1e9);
	for (i = 0; i < S_KINDS_; i++)
		free(s[i].v);
	if (s[S_ERROR].n && ret == GI_EXIT_OK)
		ret = GI_EXIT_REQUEST;
	return ret;
}
