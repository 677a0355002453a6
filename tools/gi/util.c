/* Shared pieces of the gi subcommands. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/gi/gi.h"

volatile int g_interrupted;

void gen_args_init(struct gen_args *a)
{
	memset(a, 0, sizeof(*a));
	a->opts.size = sizeof(a->opts);
	a->opts.stop = a->stops;
}

int parse_u32(const char *cmd, const char *name, const char *s, uint32_t lo, uint32_t hi,
	      uint32_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (!*s || *end || errno || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "gi %s: --%s '%s' is not a whole number in [%u, %u]\n", cmd, name, s,
			lo, hi);
		return -1;
	}
	*ret = (uint32_t)v;
	return 0;
}

int parse_float(const char *cmd, const char *name, const char *s, float lo, float hi, float *ret)
{
	char *end;
	float v;

	errno = 0;
	v = strtof(s, &end);
	if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
		fprintf(stderr, "gi %s: --%s '%s' is not a number in [%g, %g]\n", cmd, name, s, lo, hi);
		return -1;
	}
	*ret = v;
	return 0;
}

int gen_args_parse(struct gen_args *a, int opt, const char *arg)
{
	struct gi_gen_opts *o = &a->opts;
	const char *cmd = a->chat ? "chat" : "run";
	int r = 0;

	switch (opt) {
	case OPT_MAX_TOKENS:
		r = parse_u32(cmd, "max-tokens", arg, 1, UINT32_MAX, &o->max_tokens);
		break;
	case OPT_TEMP:
		r = parse_float(cmd, "temp", arg, 0, 100, &o->temperature);
		break;
	case OPT_TOP_K:
		r = parse_u32(cmd, "top-k", arg, 0, 65535, &o->top_k);
		break;
	case OPT_TOP_P:
		r = parse_float(cmd, "top-p", arg, 0, 1, &o->top_p);
		break;
	case OPT_MIN_P:
		r = parse_float(cmd, "min-p", arg, 0, 1, &o->min_p);
		break;
	case OPT_REPEAT_PENALTY:
		r = parse_float(cmd, "repeat-penalty", arg, 0, 10, &o->repeat_penalty);
		break;
	case OPT_SEED:
		r = parse_u32(cmd, "seed", arg, 0, UINT32_MAX, &o->seed);
		break;
	case OPT_STOP:
		if (!*arg || o->n_stop == GI_MAX_STOPS) {
			fprintf(stderr, "gi %s: --stop '%s': stop strings must be non-empty, at most %d\n",
				cmd, arg, GI_MAX_STOPS);
			return -1;
		}
		a->stops[o->n_stop++] = arg;
		break;
	case OPT_SYSTEM:
		a->system = arg;
		a->chat = true;
		break;
	case OPT_CHAT:
		a->chat = true;
		break;
	case OPT_JSON:
		a->json = true;
		break;
	case OPT_SOCKET:
		a->socket = arg;
		break;
	default:
		return 0;
	}
	return r < 0 ? -1 : 1;
}

/* While connecting, libgiclient's detail is kept for the one error line. */
static char connect_detail[512];
static bool connecting;

static void log_stderr(void *user, int level, const char *msg)
{
	const char *cmd = user;

	if (connecting)
		snprintf(connect_detail, sizeof(connect_detail), "%s", msg);
	else if (level <= GI_LOG_WARN)
		fprintf(stderr, "gi %s: %s\n", cmd, msg);
}

struct gi_conn *cli_connect(const char *cmd, const char *socket, int32_t spin_us)
{
	struct gi_conn_opts o = {
		.size = sizeof(o),
		.socket_path = socket,
		.app_name = "gi",
		.spin_us = spin_us,
		.log = log_stderr,
		.log_user = (void *)cmd,
	};
	struct gi_conn *c;
	int r;

	connecting = true;
	connect_detail[0] = 0;
	r = gi_conn_open(&o, &c);
	connecting = false;
	if (r < 0) {
		const char *path = socket ? socket : getenv("GI_SOCKET");

		if (strstr(connect_detail, gi_strerror(r)))
			connect_detail[0] = 0; /* says nothing more */
		fprintf(stderr, "gi %s: cannot connect to gid at %s: %s%s%s%s\n", cmd,
			path && *path ? path : GI_DEFAULT_SOCKET, gi_strerror(r),
			*connect_detail ? " (" : "", connect_detail, *connect_detail ? ")" : "");
		return NULL;
	}
	return c;
}

void json_str(FILE *f, const char *s, size_t len)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		switch (ch) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\u%04x", ch);
			else
				fputc(ch, f);
		}
	}
	fputc('"', f);
}

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_sigint(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

void install_sigint(void)
{
	struct sigaction sa = { .sa_handler = on_sigint };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}
