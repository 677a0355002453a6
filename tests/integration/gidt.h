/* Helpers for the integration tests: start a real build/bin/gid on a
 * temporary socket, and a minimal client written directly on ipc/
 * (handshake, rings, doorbells) that collects a request's events. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/cli.h"
#include "ipc/handshake.h"

struct gidt_daemon {
	pid_t pid;
	char dir[64];
	char sock[100];
	char log[192];
};

/* Starts GI_BUILD/bin/gid --model GI_SHARED/models/stories260K.gguf on a
 * fresh socket, with EXTRA flags (NULL-terminated, may be NULL), logging to
 * a file; waits up to 15 s until it answers. 0 or a negative errno. */
int gidt_start(struct gidt_daemon *d, const char *const *extra);
/* Same, running ARGV (a full command line) that serves SOCK. */
int gidt_start_argv(struct gidt_daemon *d, const char *sock, char *const *argv);
/* Sends SIG and waits up to TIMEOUT_MS for exit (then SIGKILLs). Returns
 * the wait status, or -ETIMEDOUT if it had to be killed. */
int gidt_stop(struct gidt_daemon *d, int sig, int timeout_ms);
/* Removes the daemon's directory (log, socket) after a passing test. */
void gidt_cleanup(struct gidt_daemon *d);
/* For Check tests: gidt_start that fails the test (log printed) unless
 * the daemon answers, and a SIGTERM stop that fails it unless the daemon
 * exits with status 0 within 10 s, then cleans up. */
void gidt_start_ok(struct gidt_daemon *d, const char *const *extra);
void gidt_stop_ok(struct gidt_daemon *d);
/* Prints the daemon's log to stderr (for failing tests). */
void gidt_dump_log(const struct gidt_daemon *d);
/* How often the daemon's log contains NEEDLE. */
int gidt_log_count(const struct gidt_daemon *d, const char *needle);
/* Whether the daemon's log contains NEEDLE. */
bool gidt_log_has(const struct gidt_daemon *d, const char *needle);

struct gidt_conn {
	struct gi_hs_session hs;
	struct gi_cli cli;
	bool open;
};

int gidt_connect(struct gidt_conn *c, const char *sock);
void gidt_close(struct gidt_conn *c);

struct gidt_params {
	const char *prompt;       /* text (NUL-terminated) unless ids */
	const int32_t *ids;       /* token prompt (GI_SQE_F_TOKENS) */
	const void *raw;          /* prompt bytes as they are (e.g. a chat list) */
	uint32_t raw_len;
	uint32_t n_ids;
	uint16_t flags;
	uint32_t max_tokens;
	float temperature;
	uint32_t seed;
	uint16_t top_k;
	float top_p;
	const char *stop;         /* one stop string or NULL */
	uint8_t priority;
};

#define GIDT_MAX_IDS 1024
struct gidt_result {
	int32_t ids[GIDT_MAX_IDS];
	uint32_t n_ids;
	char text[8192];
	uint32_t text_len;
	bool finished;
	int kind;                 /* kind of the LAST event (DONE or ERROR) */
	int result;               /* its result */
	char reason[4 * GI_CQE_TEXT_MAX + 1]; /* ERROR: the pieces joined */
	uint32_t n_prompt, n_cached, n_gen;
	uint64_t first_token_us;  /* monotonic time of the first TOKEN event */
	bool cont;                /* the last TOKEN event had TEXT_CONT */
};

/* Submits one SQE other than SUBMIT (NOP, CANCEL) as given. */
int gidt_submit_sqe(struct gidt_conn *c, const struct gi_sqe *q);
/* Submits P with user_data UD. 0 or a negative errno. */
int gidt_submit(struct gidt_conn *c, uint64_t ud, const struct gidt_params *p);
/* Submits N (<= 16) copies of P with user_data UD, UD + 1, ... in one
 * publication of sq.tail, so the daemon takes them together. */
int gidt_submit_many(struct gidt_conn *c, uint64_t ud, const struct gidt_params *p, uint32_t n);
/* Collects events into RES[ud] (ud < N) until all N finished. Returns 0,
 * -ETIMEDOUT, -ECONNRESET (daemon gone), or the ERROR message's code. */
int gidt_wait_all(struct gidt_conn *c, struct gidt_result *res, uint32_t n, int timeout_ms);
/* Submit + wait for one request (ud 0). */
int gidt_run(struct gidt_conn *c, const struct gidt_params *p, struct gidt_result *res, int timeout_ms);

/* Fetches the JSON stats over a fresh connection. Returns length or -errno. */
int gidt_stats(const char *sock, char *buf, size_t cap);
/* The number after "KEY": in JSON (first occurrence), or -1. */
long long gidt_json_num(const char *json, const char *key);
/* Polls stats until KEY == WANT (up to TIMEOUT_MS). Returns the last value. */
long long gidt_wait_stat(const char *sock, const char *key, long long want, int timeout_ms);

uint64_t gidt_now_us(void);
/* CPU time (user + system) PID has used, in ms; -1 on error. */
long long gidt_cpu_ms(pid_t pid);
