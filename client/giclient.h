/* libgiclient: talk to gid, the machine-wide LLM daemon.
 *
 * A connection (struct gi_conn) is one session with the daemon: a control
 * socket plus a shared-memory submission ring (requests) and completion ring
 * (events). Requests stream events back: TOKEN events carrying one whole
 * token each, then one DONE (or ERROR) event that ends the request.
 *
 * Conventions (every function):
 *  - returns 0 (or a count) on success and a negative errno-style code on
 *    failure; codes errno cannot express are >= GI_ERR_BASE in magnitude and
 *    gi_strerror() names every code;
 *  - out-parameters named ret_* are written only on success;
 *  - never logs, never exits, never aborts, never raises a signal in the
 *    calling process; details of a failure go to the optional log callback;
 *  - every descriptor the library creates is close-on-exec and the shared
 *    mapping is not inherited by fork() (MADV_DONTFORK);
 *  - thread safety: a gi_conn is used by one thread at a time (callers that
 *    share one must serialise all calls on it); different gi_conns are fully
 *    independent and may be used from different threads at once.
 *
 * The library owns no threads. gi_conn_fd() returns a pollable descriptor so
 * an application can drive a connection from its own event loop; the
 * blocking calls wait on the same descriptor. */
#ifndef GICLIENT_H
#define GICLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GI_EXPORT __attribute__((visibility("default")))
#else
#define GI_EXPORT
#endif

/* ---- errors ---------------------------------------------------------------- */

/* Library-specific codes, returned negated like errno values. */
#define GI_ERR_BASE 4096
enum gi_err {
	GI_ERR_PROTOCOL = GI_ERR_BASE, /* the daemon broke the wire protocol */
	GI_ERR_VERSION,                /* the daemon speaks another ABI major version */
	GI_ERR_SHUTDOWN,               /* the daemon is shutting down: submit nothing more */
	GI_ERR_MAX_,
};

/* Describes CODE (a negative return of this library, a negative errno, or
 * either sign). Returns a static string; never NULL. Thread-safe. */
GI_EXPORT const char *gi_strerror(int code);

/* ---- connection ------------------------------------------------------------ */

struct gi_conn;

/* Log levels of the optional callback. */
enum gi_log_level {
	GI_LOG_ERROR = 0,
	GI_LOG_WARN = 1,
	GI_LOG_DEBUG = 2,
};

/* Called with a NUL-terminated message describing a failure in more detail
 * than its return code (e.g. the reason the daemon gave). MSG is valid only
 * during the call. Called on the thread that made the failing call. */
typedef void (*gi_log_fn)(void *user, int level, const char *msg);

/* Options for gi_conn_open(). Set SIZE to sizeof(struct gi_conn_opts); fields
 * an older caller does not know are read as zero, and bytes beyond the
 * library's own struct must be zero (else -EINVAL). Zero means "default"
 * everywhere. */
struct gi_conn_opts {
	size_t size;
	const char *socket_path; /* NULL: $GI_SOCKET, else GI_DEFAULT_SOCKET */
	const char *app_name;    /* shown in daemon stats; NULL: program name */
	uint32_t sq_entries;     /* request ring slots (power of two); 0: daemon default */
	uint32_t cq_entries;     /* event ring slots (power of two); 0: daemon default */
	uint32_t arena_size;     /* bytes for prompts in flight; 0: daemon default */
	int32_t spin_us;         /* busy-poll before sleeping: 0 = GI_SPIN_US_DEFAULT, < 0 = never */
	int32_t timeout_ms;      /* connect + handshake; 0 = 5000 */
	uint32_t flags;          /* none defined yet: must be 0 */
	gi_log_fn log;           /* optional */
	void *log_user;          /* passed to LOG */
};

#define GI_DEFAULT_SOCKET "/run/gid/gid.sock"
/* Default busy-poll before a blocking wait sleeps (the spin yields the CPU
 * now and then). Measured with `gi bench --nop --spin-us N` on a 2-core box:
 * an answer that lands within the spin costs ~1 us instead of the ~5-10 us
 * of a sleep and doorbell; longer spins gained nothing there. */
#define GI_SPIN_US_DEFAULT 5

/* Connects to the daemon and sets up a session. OPTS may be NULL (all
 * defaults). On success *RET_CONN owns the connection; release it with
 * gi_conn_close(). Errors: -EINVAL (bad options), -ENOENT / -ECONNREFUSED
 * (no daemon listening at the path), -EACCES, -ETIMEDOUT (no WELCOME in
 * time), -GI_ERR_VERSION, -GI_ERR_PROTOCOL, -ENOMEM, or the code of the
 * daemon's refusal (e.g. -EPERM, -EDQUOT) with its reason logged.
 * Thread-safe (touches no shared state). */
GI_EXPORT int gi_conn_open(const struct gi_conn_opts *opts, struct gi_conn **ret_conn);

/* Ends the session (the daemon cancels whatever is still running) and frees
 * everything, including text pointers handed out by gi_event_next(). NULL is
 * accepted. */
GI_EXPORT void gi_conn_close(struct gi_conn *conn);

/* A descriptor for the application's event loop: an epoll instance that
 * becomes readable when events may be waiting *or* the daemon hung up. Poll
 * it for POLLIN/EPOLLIN, then call gi_conn_process() and gi_event_next(conn,
 * ev, 0) until it returns 0 (that last call re-arms the wake-up; stopping
 * earlier may leave events unannounced). Each submit arms it too, so the
 * fd may be polled right after submitting. Spurious wake-ups happen and are
 * harmless. Owned by the connection: do not close or read it.
 * Level-triggered: it stays readable after a hang-up.
 * Returns the descriptor, or -EINVAL if CONN is NULL. */
GI_EXPORT int gi_conn_fd(const struct gi_conn *conn);

/* Handles whatever made gi_conn_fd() readable: resets the completion
 * doorbell, reads control-socket messages, notices a hang-up. Never blocks.
 * Returns a positive count when events (or the errors of requests cut off
 * by a hang-up) wait to be read with gi_event_next() — a bound, as a long
 * token arrives in pieces — 0 if none, or, once the daemon is gone and
 * every pending request has been reported, -ECONNRESET (or the session's
 * error, e.g. -GI_ERR_PROTOCOL); -EINVAL if CONN is NULL. Not thread-safe
 * (see the file comment). */
GI_EXPORT int gi_conn_process(struct gi_conn *conn);

/* What WELCOME said about the model and the session. A plain result record. */
struct gi_model_info {
	char name[64];          /* NUL-terminated model name */
	uint32_t n_ctx;         /* context length, tokens */
	uint32_t n_vocab;       /* vocabulary size; token ids are below it */
	uint32_t max_tokens;    /* daemon cap on tokens generated per request */
	uint32_t max_prompt_bytes;
	uint32_t max_inflight;  /* requests running or queued per connection */
	uint32_t max_stop_strings;
	uint32_t max_stop_len;
	uint32_t reserved0;
	uint64_t session_id;
};

/* Copies the model information into *RET_INFO. -EINVAL if an argument is
 * NULL. Does not talk to the daemon. */
GI_EXPORT int gi_model_info(const struct gi_conn *conn, struct gi_model_info *ret_info);

/* ---- generation ------------------------------------------------------------ */

/* Request flags (gi_gen_opts.flags). */
#define GI_GEN_LOGPROBS   (1u << 0) /* fill gi_event.logprob */
#define GI_GEN_NO_BOS     (1u << 1) /* do not prepend BOS to a text prompt */
#define GI_GEN_SPECIAL    (1u << 2) /* parse special-token text (e.g. "<s>") in the prompt */
#define GI_GEN_IGNORE_EOS (1u << 3) /* keep generating past EOS until max_tokens */
#define GI_GEN_BLOCK      (1u << 4) /* wait for ring space instead of returning -EAGAIN */
#define GI_GEN_ALL_       0x1fu

enum gi_priority {
	GI_PRIORITY_INTERACTIVE = 0,
	GI_PRIORITY_BATCH = 1,
};

/* Generation options. Set SIZE to sizeof(struct gi_gen_opts); rules as for
 * gi_conn_opts. Zero in any field means "off" or "daemon default", so a
 * zeroed struct (or NULL) asks for greedy decoding up to the daemon's
 * token cap. */
struct gi_gen_opts {
	size_t size;
	uint32_t max_tokens;      /* 0: daemon cap */
	float temperature;        /* 0: greedy; else (0, 100] */
	uint32_t top_k;           /* 0: off; at most 65535 */
	float top_p;              /* 0 or 1: off; else (0, 1) */
	float min_p;              /* 0: off; [0, 1] */
	float repeat_penalty;     /* 0 or 1: off */
	float frequency_penalty;  /* 0: off */
	float presence_penalty;   /* 0: off */
	uint32_t seed;            /* sampling seed (same seed, same output) */
	const char *const *stop;  /* N_STOP non-empty NUL-terminated strings; generation
				   * ends before any of them (not included in the text) */
	size_t n_stop;
	uint32_t priority;        /* enum gi_priority */
	uint32_t deadline_ms;     /* from submission; 0: none (ends with GI_FINISH_REASON_DEADLINE) */
	uint32_t flags;           /* GI_GEN_* */
};

/* Chat roles and one chat message (input only). */
enum gi_role_kind {
	GI_CHAT_SYSTEM = 0,
	GI_CHAT_USER = 1,
	GI_CHAT_ASSISTANT = 2,
};
struct gi_chat_msg {
	uint32_t role;            /* enum gi_role_kind */
	const char *content;      /* NUL-terminated UTF-8 */
};

/* Submits a generation request for PROMPT (LEN bytes of UTF-8; the daemon
 * tokenizes it and prepends BOS unless GI_GEN_NO_BOS). TAG is any value of
 * the caller's; it comes back in every event of the request. On success
 * *RET_REQ (if not NULL) receives the request id used by gi_req_cancel() and
 * gi_event.req. The prompt is copied before returning.
 * Errors: -EINVAL (argument or option out of range; the log callback names
 * it), -E2BIG (prompt or stop strings over the daemon's limits), -EAGAIN (no
 * ring space or too many requests in flight; retry after reading events, or
 * pass GI_GEN_BLOCK), -ECONNRESET (daemon gone), -GI_ERR_SHUTDOWN.
 * Not thread-safe (see the file comment). */
GI_EXPORT int gi_gen_text(struct gi_conn *conn, const char *prompt, size_t len,
			  const struct gi_gen_opts *opts, uint64_t tag, uint64_t *ret_req);

/* As gi_gen_text() for a chat: N_MSGS messages (at least one); the daemon
 * applies the model's chat template and opens the assistant's turn. The
 * messages are copied before returning. Errors as gi_gen_text(); -EINVAL
 * also for no message, a NULL content or a role that is not a gi_role_kind. */
GI_EXPORT int gi_gen_chat(struct gi_conn *conn, const struct gi_chat_msg *msgs, size_t n_msgs,
			  const struct gi_gen_opts *opts, uint64_t tag, uint64_t *ret_req);

/* As gi_gen_text() for a prompt of N_IDS token ids (used as given: no BOS
 * is added; copied before returning). Ids must be below
 * gi_model_info.n_vocab. Errors as gi_gen_text(). */
GI_EXPORT int gi_gen_tokens(struct gi_conn *conn, const uint32_t *ids, size_t n_ids,
			    const struct gi_gen_opts *opts, uint64_t tag, uint64_t *ret_req);

/* Sends a no-op through the rings; it completes with one GI_EVENT_NOP event
 * whose .nop_echo is ECHO. For round-trip measurements and liveness checks.
 * Errors as gi_gen_text(); FLAGS may hold GI_GEN_BLOCK. */
GI_EXPORT int gi_req_nop(struct gi_conn *conn, uint64_t echo, uint32_t flags, uint64_t tag,
			 uint64_t *ret_req);

/* Asks the daemon to stop request REQ. Its stream still ends with a DONE
 * event (finish GI_FINISH_REASON_CANCELLED, or another reason if it had
 * already finished). Returns 0, -EINVAL if CONN is NULL, -ENOENT if REQ is
 * not in flight on this connection, -ECONNRESET (or the session's error)
 * once the daemon is gone. Not thread-safe (see the file comment). */
GI_EXPORT int gi_req_cancel(struct gi_conn *conn, uint64_t req);

/* ---- events ---------------------------------------------------------------- */

enum gi_event_kind {
	GI_EVENT_TOKEN = 1,       /* one generated token */
	GI_EVENT_DONE = 2,        /* request finished; .finish says why; last event */
	GI_EVENT_ERROR = 3,       /* request failed; .error says why; last event */
	GI_EVENT_NOP = 4,         /* gi_req_nop() completed; last event */
};

/* Why a request finished (GI_EVENT_DONE). */
enum gi_finish_reason {
	GI_FINISH_REASON_EOS = 1,
	GI_FINISH_REASON_STOP = 2,      /* a stop string matched */
	GI_FINISH_REASON_LENGTH = 3,    /* max_tokens or context full */
	GI_FINISH_REASON_CANCELLED = 4,
	GI_FINISH_REASON_ERROR = 5,
	GI_FINISH_REASON_SHUTDOWN = 6,
	GI_FINISH_REASON_DEADLINE = 7,
};

/* Name of finish reason R ("eos", "stop", "length", ...); "unknown" else.
 * Returns a static string; never NULL. Thread-safe. */
GI_EXPORT const char *gi_finish_name(int r);

/* One event: a plain result record filled by gi_event_next(). */
struct gi_event {
	uint64_t req;             /* request id (as returned by the submit call) */
	uint64_t tag;             /* the submitter's tag */
	uint32_t kind;            /* enum gi_event_kind */
	int32_t token;            /* TOKEN: token id; else -1 */
	float logprob;            /* TOKEN with GI_GEN_LOGPROBS; else 0 */
	int32_t finish;           /* DONE: enum gi_finish_reason; else 0 */
	int32_t error;            /* ERROR: negative code for gi_strerror(); else 0 */
	uint32_t reserved0;
	const char *text;         /* TOKEN: the token's bytes (may split a UTF-8 code
				   * point; concatenating all TOKEN texts gives the
				   * output); ERROR: the reason; else "". A NUL follows
				   * the TEXT_LEN bytes, but use TEXT_LEN (a byte token
				   * may be a NUL). Owned by the connection; valid until
				   * the next gi_event_next() or gi_conn_close() on it */
	size_t text_len;
	uint64_t nop_echo;        /* NOP: the echoed value */
	struct {                  /* DONE: counts and microseconds */
		uint32_t queue_us;    /* submission to first scheduled */
		uint32_t prefill_us;
		uint32_t decode_us;
		uint32_t n_prompt;    /* prompt tokens */
		uint32_t n_cached;    /* of which served from the prefix cache */
		uint32_t n_gen;       /* generated tokens */
	} done;
};

/* Fills *EV with the next event of any request on CONN. TIMEOUT_MS: 0 =
 * do not wait, < 0 = wait forever, else at most that long. Before sleeping
 * it busy-polls for the connection's spin time. Returns 1 when *EV was
 * filled, 0 if no event arrived in time, -EINTR if a signal interrupted the
 * wait, -ECONNRESET when the daemon has gone (after every request that was
 * in flight has been reported by a GI_EVENT_ERROR event with error
 * -ECONNRESET), -GI_ERR_PROTOCOL if the daemon broke the protocol.
 * A request submitted with a deadline whose daemon stops stepping (its
 * heartbeat stands still for a second past the deadline) is ended here by
 * a GI_EVENT_ERROR event with error -ETIMEDOUT.
 * -EINVAL if CONN or EV is NULL. Not thread-safe (see the file comment). */
GI_EXPORT int gi_event_next(struct gi_conn *conn, struct gi_event *ev, int timeout_ms);

/* Requests submitted and not yet ended by their last event; 0 if CONN is
 * NULL. Does not talk to the daemon. */
GI_EXPORT unsigned gi_conn_inflight(const struct gi_conn *conn);

/* ---- control queries (synchronous, over the control socket) ---------------- */

#define GI_TOKENIZE_ADD_BOS (1u << 0) /* prepend BOS as a text prompt would get */
#define GI_TOKENIZE_SPECIAL (1u << 1) /* parse special-token text */

/* Tokenizes TEXT (LEN bytes) with the model's tokenizer. Writes at most CAP
 * ids to IDS (which may be NULL when CAP is 0) and returns the total number
 * of tokens, which may exceed CAP (call again with a larger buffer).
 * Waits up to 5 s for the daemon. Errors: -EINVAL, -E2BIG (text over the
 * message limit), -ETIMEDOUT, -ECONNRESET, -GI_ERR_PROTOCOL, or the
 * daemon's error. Events that arrive meanwhile stay queued. */
GI_EXPORT int gi_tokenize(struct gi_conn *conn, const char *text, size_t len, uint32_t flags,
			  uint32_t *ids, size_t cap);

/* The ids gi_gen_chat() would give the model for MSGS (N_MSGS messages,
 * at least one): the daemon applies the chat template, opens the
 * assistant's turn and tokenizes. FLAGS: GI_TOKENIZE_ADD_BOS as a chat
 * request without GI_GEN_NO_BOS gets (the template may spell BOS itself),
 * else 0. IDS, CAP, return value and errors as gi_tokenize(). */
GI_EXPORT int gi_tokenize_chat(struct gi_conn *conn, const struct gi_chat_msg *msgs, size_t n_msgs,
			       uint32_t flags, uint32_t *ids, size_t cap);

enum gi_stats_format {
	GI_STATS_JSON = 0,
	GI_STATS_OPENMETRICS = 1,
};

/* Fetches the daemon's statistics as text in FORMAT. On success *RET_TEXT is
 * a NUL-terminated malloc'd string the caller releases with free(), and
 * *RET_LEN (if not NULL) its length. Errors as gi_tokenize(). */
GI_EXPORT int gi_stats(struct gi_conn *conn, int format, char **ret_text, size_t *ret_len);

#ifdef __cplusplus
}
#endif
#endif /* GICLIENT_H */
