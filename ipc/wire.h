/* gid wire format: every byte that crosses the process boundary.
 *
 * Two channels carry it (IPC.md "The session design"):
 *  - the control socket (AF_UNIX, SOCK_SEQPACKET): one message per datagram,
 *    each starting with struct gi_msg_hdr — HELLO, WELCOME (+ memfd and two
 *    eventfds as SCM_RIGHTS), ERROR, CANCEL, STATS, TOKENIZE;
 *  - the session memfd: header page, control lines, SQ of gi_sqe, CQ of
 *    gi_cqe, request arena.
 * All fields are fixed-width little-endian; reserved fields and unknown flag
 * bits must be zero (receivers reject them). Sizes and offsets are asserted
 * below, so a change that moves a field fails to compile. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define GI_ABI_MAJOR 1u
#define GI_ABI_MINOR 0u

#define GI_MSG_MAGIC     0x4d444947u /* "GIDM": every control-socket message */
#define GI_SESSION_MAGIC 0x53444947u /* "GIDS": first word of the session memfd */

/* Largest control-socket message either side sends or accepts. */
#define GI_MSG_MAX 65536u

#define GI_STATIC_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " size")
#define GI_STATIC_OFF(type, field, off) \
	_Static_assert(offsetof(type, field) == (off), #type "." #field " offset")

/* ---- control socket ------------------------------------------------------ */

enum gi_msg_type {
	GI_MSG_HELLO = 1,          /* client -> daemon, first message */
	GI_MSG_WELCOME = 2,        /* daemon -> client, carries 3 fds */
	GI_MSG_ERROR = 3,          /* daemon -> client: handshake refused or session failed */
	GI_MSG_CANCEL = 4,         /* client -> daemon: cancel by user_data (also possible as an SQE) */
	GI_MSG_STATS_REQ = 5,      /* client -> daemon */
	GI_MSG_STATS_REPLY = 6,    /* daemon -> client: text payload */
	GI_MSG_TOKENIZE_REQ = 7,   /* client -> daemon: text payload */
	GI_MSG_TOKENIZE_REPLY = 8, /* daemon -> client: u32 token ids */
	GI_MSG_TYPE_COUNT_,
};

/* First 16 bytes of every control-socket message. LEN is the whole datagram,
 * header included; SEQ is chosen by the requester and echoed in the reply. */
struct gi_msg_hdr {
	uint32_t magic; /* GI_MSG_MAGIC */
	uint16_t type;  /* enum gi_msg_type */
	uint16_t flags; /* per type; unknown bits rejected */
	uint32_t len;
	uint32_t seq;
};
GI_STATIC_SIZE(struct gi_msg_hdr, 16);
GI_STATIC_OFF(struct gi_msg_hdr, type, 4);
GI_STATIC_OFF(struct gi_msg_hdr, len, 8);
GI_STATIC_OFF(struct gi_msg_hdr, seq, 12);

/* Feature bits, negotiated in HELLO/WELCOME (the daemon grants a subset). */
#define GI_FEAT_CHAT      (1u << 0) /* GI_SQE_F_CHAT understood */
#define GI_FEAT_TOKENS    (1u << 1) /* GI_SQE_F_TOKENS understood */
#define GI_FEAT_HEARTBEAT (1u << 2) /* heartbeat line maintained */
#define GI_FEAT_ALL       (GI_FEAT_CHAT | GI_FEAT_TOKENS | GI_FEAT_HEARTBEAT)

/* HELLO: what the client speaks and would like. Zero sizes ask for defaults;
 * the daemon rounds and clamps them and says what it granted in WELCOME. */
struct gi_hello {
	struct gi_msg_hdr hdr;  /* type GI_MSG_HELLO, flags 0 */
	uint16_t abi_major;     /* must equal the daemon's */
	uint16_t abi_minor;     /* highest minor the client knows */
	uint32_t features;      /* GI_FEAT_* wanted */
	uint32_t sq_entries;    /* 0 = default; else a power of two */
	uint32_t cq_entries;    /* 0 = default; else a power of two */
	uint32_t arena_size;    /* bytes; 0 = default */
	uint32_t reserved0;
	char client_name[32];   /* NUL-padded, informational (gi stats) */
	uint64_t reserved[5];
};
GI_STATIC_SIZE(struct gi_hello, 112);
GI_STATIC_OFF(struct gi_hello, abi_major, 16);
GI_STATIC_OFF(struct gi_hello, features, 20);
GI_STATIC_OFF(struct gi_hello, sq_entries, 24);
GI_STATIC_OFF(struct gi_hello, arena_size, 32);
GI_STATIC_OFF(struct gi_hello, client_name, 40);
GI_STATIC_OFF(struct gi_hello, reserved, 72);

/* Where everything lives in the session memfd. Sent in WELCOME and repeated
 * in the memfd's header page; the client checks that both agree. All offsets
 * are from the start of the mapping; every control word sits alone at the
 * start of its own GI_CTL_LINE-byte line. */
#define GI_CTL_LINE 128u
struct gi_layout {
	uint64_t region_size;   /* bytes of the memfd, a multiple of the page size */
	uint32_t sq_entries;    /* power of two */
	uint32_t cq_entries;    /* power of two, >= sq_entries */
	uint32_t sqe_size;      /* sizeof(struct gi_sqe) */
	uint32_t cqe_size;      /* sizeof(struct gi_cqe) */
	uint32_t arena_size;    /* bytes */
	uint32_t reserved0;
	uint64_t off_sq_tail;   /* u32, client writes */
	uint64_t off_sq_head;   /* u32, daemon writes */
	uint64_t off_cq_tail;   /* u32, daemon writes */
	uint64_t off_cq_head;   /* u32, client writes */
	uint64_t off_cq_wait_seq; /* u32, client writes: bumped each time it arms a sleep */
	uint64_t off_daemon_flags; /* u32 GI_DFLAG_*, daemon writes */
	uint64_t off_heartbeat; /* u64 monotonic ms, daemon writes once per engine step */
	uint64_t off_sqes;      /* sq_entries * sqe_size */
	uint64_t off_cqes;      /* cq_entries * cqe_size */
	uint64_t off_arena;     /* arena_size */
};
GI_STATIC_SIZE(struct gi_layout, 112);
GI_STATIC_OFF(struct gi_layout, sq_entries, 8);
GI_STATIC_OFF(struct gi_layout, arena_size, 24);
GI_STATIC_OFF(struct gi_layout, off_sq_tail, 32);
GI_STATIC_OFF(struct gi_layout, off_heartbeat, 80);
GI_STATIC_OFF(struct gi_layout, off_arena, 104);

/* Daemon-side limits the client should respect (requests beyond them get an
 * -EINVAL/-E2BIG error event). */
struct gi_limits {
	uint32_t max_prompt_bytes;  /* prompt (text, token ids or chat list) */
	uint32_t max_tokens;        /* cap on sqe.max_tokens (0 in an SQE = this) */
	uint32_t max_stop_strings;
	uint32_t max_stop_len;      /* bytes of one stop string */
	uint32_t max_inflight;      /* SUBMITs running or queued per session */
	uint32_t n_ctx;             /* model context length */
	uint32_t n_vocab;           /* token ids must be below this */
	uint32_t reserved0;
};
GI_STATIC_SIZE(struct gi_limits, 32);

/* WELCOME: the session is ready. Ancillary data: exactly three fds, in the
 * order memfd, submit doorbell eventfd, completion doorbell eventfd. */
struct gi_welcome {
	struct gi_msg_hdr hdr;  /* type GI_MSG_WELCOME, seq of the HELLO */
	uint16_t abi_major;
	uint16_t abi_minor;     /* min(client's, daemon's) */
	uint32_t features;      /* granted subset of the HELLO's */
	uint64_t session_id;
	struct gi_layout layout;
	struct gi_limits limits;
	char model_name[64];    /* NUL-padded */
	uint64_t reserved[4];
};
GI_STATIC_SIZE(struct gi_welcome, 272);
GI_STATIC_OFF(struct gi_welcome, abi_major, 16);
GI_STATIC_OFF(struct gi_welcome, session_id, 24);
GI_STATIC_OFF(struct gi_welcome, layout, 32);
GI_STATIC_OFF(struct gi_welcome, limits, 144);
GI_STATIC_OFF(struct gi_welcome, model_name, 176);
GI_STATIC_OFF(struct gi_welcome, reserved, 240);

/* ERROR: negative errno plus a NUL-terminated reason. For a version refusal
 * (-EPROTONOSUPPORT) abi_major/abi_minor say what the daemon speaks. After an
 * ERROR the daemon closes the socket. */
struct gi_error_msg {
	struct gi_msg_hdr hdr;  /* type GI_MSG_ERROR, seq of the offending message (0 if none) */
	int32_t error;          /* negative errno */
	uint16_t abi_major;
	uint16_t abi_minor;
	char reason[120];
};
GI_STATIC_SIZE(struct gi_error_msg, 144);
GI_STATIC_OFF(struct gi_error_msg, error, 16);
GI_STATIC_OFF(struct gi_error_msg, reason, 24);

/* CANCEL over the socket: same effect as a GI_OP_CANCEL SQE, usable when the
 * SQ is full. No reply; the request ends with a DONE/CANCELLED event. */
#define GI_CANCEL_F_ALL (1u << 0) /* hdr.flags: every request of the session */
struct gi_cancel_msg {
	struct gi_msg_hdr hdr;
	uint64_t user_data;
	uint64_t reserved;
};
GI_STATIC_SIZE(struct gi_cancel_msg, 32);

/* STATS: request carries a format in hdr.flags; the reply's payload
 * (hdr.len - 16 bytes, not NUL-terminated) is the text. */
#define GI_STATS_F_JSON        0u
#define GI_STATS_F_OPENMETRICS 1u
struct gi_stats_req {
	struct gi_msg_hdr hdr;
	uint64_t reserved;
};
GI_STATIC_SIZE(struct gi_stats_req, 24);

/* TOKENIZE: request payload after the fixed part is UTF-8 text
 * (hdr.len - 24 bytes); reply payload is u32 token ids. */
#define GI_TOKENIZE_F_ADD_BOS (1u << 0)
#define GI_TOKENIZE_F_SPECIAL (1u << 1) /* parse special-token text */
/* The payload is a chat list (the GI_SQE_F_CHAT encoding, below): the ids
 * are those a SUBMIT with GI_SQE_F_CHAT gets (template applied, assistant's
 * turn opened, special tokens parsed; ADD_BOS clear = GI_SQE_F_NO_BOS). */
#define GI_TOKENIZE_F_CHAT    (1u << 2)
struct gi_tokenize_req {
	struct gi_msg_hdr hdr;
	uint32_t text_len;
	uint32_t reserved;
	/* uint8_t text[text_len]; */
};
GI_STATIC_SIZE(struct gi_tokenize_req, 24);
struct gi_tokenize_reply {
	struct gi_msg_hdr hdr;
	int32_t result;         /* 0 or negative errno */
	uint32_t n_tokens;
	/* uint32_t ids[n_tokens]; */
};
GI_STATIC_SIZE(struct gi_tokenize_reply, 24);

/* ---- session memfd --------------------------------------------------------- */

/* daemon_flags bits (written only by the daemon, on busy<->idle transitions). */
#define GI_DFLAG_NEED_WAKEUP (1u << 0) /* engine sleeps: ring the submit doorbell */
#define GI_DFLAG_SHUTDOWN    (1u << 1) /* daemon is shutting down: submit nothing more */

/* Header page, written once by the daemon before hand-over. */
struct gi_session_hdr {
	uint32_t magic;         /* GI_SESSION_MAGIC */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t hdr_size;      /* sizeof(struct gi_session_hdr) */
	uint32_t features;
	uint64_t session_id;
	struct gi_layout layout;
	uint64_t reserved[8];
};
GI_STATIC_SIZE(struct gi_session_hdr, 200);
GI_STATIC_OFF(struct gi_session_hdr, session_id, 16);
GI_STATIC_OFF(struct gi_session_hdr, layout, 24);

/* ---- SQE: one request descriptor, one cache line --------------------------- */

enum gi_op {
	GI_OP_NOP = 0,    /* completes at once with a NOP event echoing nop.echo */
	GI_OP_SUBMIT = 1, /* generate */
	GI_OP_CANCEL = 2, /* cancel the request whose user_data is cancel.target */
	GI_OP_COUNT_,
};

/* SUBMIT flags */
#define GI_SQE_F_TOKENS     (1u << 0) /* prompt is little-endian u32 token ids */
#define GI_SQE_F_CHAT       (1u << 1) /* prompt is a chat message list (below) */
#define GI_SQE_F_LOGPROBS   (1u << 2) /* fill cqe.logprob */
#define GI_SQE_F_NO_BOS     (1u << 3) /* do not prepend BOS to a text prompt */
#define GI_SQE_F_SPECIAL    (1u << 4) /* parse special-token text in the prompt */
#define GI_SQE_F_IGNORE_EOS (1u << 5) /* keep generating past EOS until max_tokens */
#define GI_SQE_F_SUBMIT_ALL 0x3fu
/* CANCEL flags */
#define GI_SQE_F_CANCEL_ALL (1u << 0) /* every request of the session */

enum gi_prio {
	GI_PRIO_INTERACTIVE = 0,
	GI_PRIO_BATCH = 1,
	GI_PRIO_COUNT_,
};

/* Request blob in the arena (SUBMIT): starts at arena_off (4-byte aligned),
 *   [prompt: prompt_len bytes][zero pad to 4][stop list: stop_len bytes]
 * so one contiguous allocation holds a request. The engine copies the blob
 * out before validating it; advancing sq.head past the SQE frees it.
 *
 * Stop list: stop_len bytes of entries { u16 len; u8 bytes[len]; }, packed,
 * len >= 1, at most limits.max_stop_strings entries of max_stop_len bytes.
 *
 * Chat list (GI_SQE_F_CHAT): prompt_len bytes of entries
 *   { u32 role (enum gi_role); u32 len; u8 content[len]; zero pad to 4 }
 * at least one entry; the daemon applies the model's chat template and opens
 * the assistant's turn. */
enum gi_role {
	GI_ROLE_SYSTEM = 0,
	GI_ROLE_USER = 1,
	GI_ROLE_ASSISTANT = 2,
	GI_ROLE_COUNT_,
};
struct gi_chat_entry_hdr {
	uint32_t role;
	uint32_t len;
};
GI_STATIC_SIZE(struct gi_chat_entry_hdr, 8);

struct gi_sqe {
	uint8_t opcode;          /* enum gi_op */
	uint8_t priority;        /* enum gi_prio (SUBMIT), else 0 */
	uint16_t flags;          /* GI_SQE_F_* for the opcode */
	uint32_t max_tokens;     /* SUBMIT: 0 = daemon limit */
	uint64_t user_data;      /* echoed in every event of this request */
	union {
		struct {         /* SUBMIT */
			uint32_t arena_off;
			uint32_t prompt_len;
		} req;
		struct {         /* NOP */
			uint64_t echo;
		} nop;
		struct {         /* CANCEL */
			uint64_t target; /* user_data of the request to cancel */
		} cancel;
	};
	uint16_t stop_len;       /* SUBMIT: bytes of stop list after the prompt */
	/* Sampling; the daemon rejects (-EINVAL) values outside the ranges. */
	uint16_t top_k;          /* 0 = off; <= n_vocab */
	uint32_t seed;           /* same seed and request, same output */
	float temperature;       /* [0, 100]; 0 = greedy */
	float top_p;             /* [0, 1]; 1 = off */
	float min_p;             /* [0, 1]; 0 = off */
	float repeat_penalty;    /* [0, 10]; 1 = off (0 is read as 1) */
	float frequency_penalty; /* [-2, 2]; 0 = off */
	float presence_penalty;  /* [-2, 2]; 0 = off */
	uint32_t deadline_ms;    /* from submission; 0 = none */
	uint32_t reserved;       /* must be 0 */
};
GI_STATIC_SIZE(struct gi_sqe, 64);
GI_STATIC_OFF(struct gi_sqe, flags, 2);
GI_STATIC_OFF(struct gi_sqe, max_tokens, 4);
GI_STATIC_OFF(struct gi_sqe, user_data, 8);
GI_STATIC_OFF(struct gi_sqe, req.arena_off, 16);
GI_STATIC_OFF(struct gi_sqe, req.prompt_len, 20);
GI_STATIC_OFF(struct gi_sqe, nop.echo, 16);
GI_STATIC_OFF(struct gi_sqe, cancel.target, 16);
GI_STATIC_OFF(struct gi_sqe, stop_len, 24);
GI_STATIC_OFF(struct gi_sqe, top_k, 26);
GI_STATIC_OFF(struct gi_sqe, seed, 28);
GI_STATIC_OFF(struct gi_sqe, temperature, 32);
GI_STATIC_OFF(struct gi_sqe, top_p, 36);
GI_STATIC_OFF(struct gi_sqe, min_p, 40);
GI_STATIC_OFF(struct gi_sqe, repeat_penalty, 44);
GI_STATIC_OFF(struct gi_sqe, frequency_penalty, 48);
GI_STATIC_OFF(struct gi_sqe, presence_penalty, 52);
GI_STATIC_OFF(struct gi_sqe, deadline_ms, 56);
GI_STATIC_OFF(struct gi_sqe, reserved, 60);

/* ---- CQE: one event, one cache line ------------------------------------------ */

enum gi_cqe_kind {
	GI_CQE_TOKEN = 1,  /* token, logprob, text[text_len] */
	GI_CQE_DONE = 2,   /* result = enum gi_finish; done.* timings and counts */
	GI_CQE_ERROR = 3,  /* result = negative errno; reason (text_len bytes; TEXT_CONT: more follows) */
	GI_CQE_NOP = 4,    /* result 0; nop.echo = sqe.nop.echo */
	GI_CQE_CANCEL = 5, /* result 0 (found, its DONE/CANCELLED follows) or -ENOENT */
	GI_CQE_KIND_COUNT_,
};

/* CQE flags */
#define GI_CQE_F_MORE      (1u << 0) /* more events follow for this user_data */
#define GI_CQE_F_TEXT_CONT (1u << 1) /* the text continues in the next event of this kind:
                                       * a TOKEN's text, or an ERROR's reason (with MORE) */
#define GI_CQE_F_LAST      (1u << 2) /* last event of this user_data (MORE clear) */

enum gi_finish {
	GI_FINISH_EOS = 1,       /* model produced end-of-sequence */
	GI_FINISH_STOP = 2,      /* a stop string matched (not included in the text) */
	GI_FINISH_LENGTH = 3,    /* max_tokens or context full */
	GI_FINISH_CANCELLED = 4,
	GI_FINISH_ERROR = 5,
	GI_FINISH_SHUTDOWN = 6,
	GI_FINISH_DEADLINE = 7,
	GI_FINISH_COUNT_,
};

#define GI_CQE_TEXT_MAX 40u

struct gi_cqe {
	uint64_t user_data;
	uint8_t kind;            /* enum gi_cqe_kind */
	uint8_t text_len;        /* TOKEN: bytes of text; ERROR: bytes of reason */
	uint16_t flags;          /* GI_CQE_F_* */
	int32_t result;
	int32_t token;           /* TOKEN: token id */
	float logprob;           /* TOKEN with GI_SQE_F_LOGPROBS, else 0 */
	union {
		char text[GI_CQE_TEXT_MAX]; /* TOKEN: UTF-8 bytes (a token may split a code point) */
		char reason[GI_CQE_TEXT_MAX]; /* ERROR */
		struct {
			uint32_t queue_us;   /* submission to first scheduled */
			uint32_t prefill_us;
			uint32_t decode_us;
			uint32_t n_prompt;   /* prompt tokens */
			uint32_t n_cached;   /* of which served from the prefix cache */
			uint32_t n_gen;      /* generated tokens */
			uint32_t reserved[4];
		} done;
		struct {
			uint64_t echo;
			uint64_t reserved[4];
		} nop;
	};
};
GI_STATIC_SIZE(struct gi_cqe, 64);
GI_STATIC_OFF(struct gi_cqe, kind, 8);
GI_STATIC_OFF(struct gi_cqe, text_len, 9);
GI_STATIC_OFF(struct gi_cqe, flags, 10);
GI_STATIC_OFF(struct gi_cqe, result, 12);
GI_STATIC_OFF(struct gi_cqe, token, 16);
GI_STATIC_OFF(struct gi_cqe, logprob, 20);
GI_STATIC_OFF(struct gi_cqe, text, 24);
GI_STATIC_OFF(struct gi_cqe, done.queue_us, 24);
GI_STATIC_OFF(struct gi_cqe, done.n_gen, 44);
GI_STATIC_OFF(struct gi_cqe, nop.echo, 24);
