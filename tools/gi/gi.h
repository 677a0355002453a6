/* gi: the command-line client of gid. One file per subcommand (run.c,
 * chat.c, stats.c, bench.c); shared option parsing, connecting and JSON
 * output live in util.c. */
#pragma once
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client/giclient.h"

/* Exit codes (DESIGN.md "Interfaces"). */
#define GI_EXIT_OK 0
#define GI_EXIT_REQUEST 1
#define GI_EXIT_USAGE 2
#define GI_EXIT_CONNECT 3

#define GI_MAX_STOPS 16

/* Options shared by every subcommand that generates. */
struct gen_args {
	struct gi_gen_opts opts;
	const char *stops[GI_MAX_STOPS];
	const char *socket;     /* NULL: libgiclient's default */
	const char *system;     /* system message (chat mode) */
	bool chat, json;
};

/* Long options of struct gen_args, for a subcommand's getopt_long table:
 * values from 256 up so they never clash with a short option. */
enum {
	OPT_MAX_TOKENS = 256,
	OPT_TEMP,
	OPT_TOP_K,
	OPT_TOP_P,
	OPT_MIN_P,
	OPT_REPEAT_PENALTY,
	OPT_SEED,
	OPT_STOP,
	OPT_SYSTEM,
	OPT_CHAT,
	OPT_JSON,
	OPT_SOCKET,
	OPT_OWN_, /* first value free for a subcommand's own options */
};
#define GEN_LONG_OPTIONS                                                   \
	{ "max-tokens", required_argument, NULL, OPT_MAX_TOKENS },         \
	{ "temp", required_argument, NULL, OPT_TEMP },                     \
	{ "top-k", required_argument, NULL, OPT_TOP_K },                   \
	{ "top-p", required_argument, NULL, OPT_TOP_P },                   \
	{ "min-p", required_argument, NULL, OPT_MIN_P },                   \
	{ "repeat-penalty", required_argument, NULL, OPT_REPEAT_PENALTY }, \
	{ "seed", required_argument, NULL, OPT_SEED },                     \
	{ "stop", required_argument, NULL, OPT_STOP },                     \
	{ "system", required_argument, NULL, OPT_SYSTEM },                 \
	{ "chat", no_argument, NULL, OPT_CHAT },                           \
	{ "json", no_argument, NULL, OPT_JSON },                           \
	{ "socket", required_argument, NULL, OPT_SOCKET }
#define GEN_USAGE                                                                        \
	"  --max-tokens N        generate at most N tokens (default: the daemon's cap)\n" \
	"  --temp T              temperature, 0 = greedy (default 0)\n"                   \
	"  --top-k K --top-p P --min-p P --repeat-penalty R --seed S   sampling\n"       \
	"  --stop STR            stop before STR (repeatable, up to 16)\n"               \
	"  --socket PATH         gid's socket (default $GI_SOCKET, else " GI_DEFAULT_SOCKET ")\n"

void gen_args_init(struct gen_args *a);
/* Handles OPT (a GEN_LONG_OPTIONS value) with ARG. Returns 1 if handled,
 * 0 if OPT is not one of them, or -1 after printing a usage error. */
int gen_args_parse(struct gen_args *a, int opt, const char *arg);

/* Strict number parsing: the whole of S, within [LO, HI]. On error prints
 * "gi CMD: --NAME: ..." and returns -1. */
int parse_u32(const char *cmd, const char *name, const char *s, uint32_t lo, uint32_t hi,
	      uint32_t *ret);
int parse_float(const char *cmd, const char *name, const char *s, float lo, float hi, float *ret);

/* Connects (logging libgiclient's messages to stderr). On failure prints
 * why and returns NULL; the caller exits with GI_EXIT_CONNECT. */
struct gi_conn *cli_connect(const char *cmd, const char *socket, int32_t spin_us);

/* Writes S (LEN bytes) as a JSON string literal, escaping as needed. */
void json_str(FILE *f, const char *s, size_t len);

/* Monotonic time in nanoseconds. */
uint64_t mono_ns(void);

/* Set by SIGINT when installed by install_sigint(); the handler does not
 * restart system calls, so waits return -EINTR. */
extern volatile int g_interrupted;
void install_sigint(void);

/* One request's output as stream_request() collected it. */
struct gen_result {
	int32_t *ids;
	size_t n_ids, cap_ids;
	char *text;             /* NUL-terminated */
	size_t len, cap_text;
	int finish;             /* enum gi_finish_reason */
	struct gi_event done;   /* the DONE event (timings) */
	uint64_t start_ns, first_ns, end_ns;
};
void gen_result_free(struct gen_result *r);

/* Reads the events of request REQ to its end, writing text to OUT (if not
 * NULL) as it arrives; SIGINT cancels the request. Returns GI_EXIT_OK, or
 * GI_EXIT_REQUEST after printing why on stderr. */
int stream_request(const char *cmd, struct gi_conn *c, uint64_t req, FILE *out,
		   struct gen_result *res);

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_bench(int argc, char **argv);
