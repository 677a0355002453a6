/* Internal state of a libgiclient connection, shared by the client/ files:
 * conn.c (open, close, process, socket messages), submit.c (requests),
 * event.c (reading and assembling events), query.c (tokenize, stats). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/giclient.h"
#include "ipc/cli.h"
#include "ipc/handshake.h"

/* Request ids handed to callers count up from 1; user_data values with this
 * bit set are the library's own (cancel SQEs) and never reach the caller. */
#define GI_INTERNAL_ID (1ull << 63)

/* epoll data tags of the two descriptors behind gi_conn_fd(). */
#define GI_EPOLL_DOORBELL 1u
#define GI_EPOLL_SOCKET 2u

/* CQEs reaped per ring access. */
#define GI_CQ_BATCH 32u

/* One request in flight. Text of a token split over several CQEs
 * (GI_CQE_F_TEXT_CONT) is assembled in BUF until its last piece. */
struct gi_inflight {
	uint64_t id;
	uint64_t tag;
	char *buf;                /* TEXT_CONT pieces of a token's text or an error's reason */
	size_t len, cap;
	bool err_cont;            /* buf holds the first pieces of an ERROR reason */
	uint64_t expire_ns;       /* deadline + grace (CLOCK_MONOTONIC), 0 = none */
	uint64_t heartbeat;       /* daemon heartbeat when last checked */
};

/* How long past a request's deadline the library waits for the daemon's
 * own GI_FINISH_DEADLINE before it looks at the heartbeat. */
#define GI_DEADLINE_GRACE_NS 1000000000ull

struct gi_conn {
	struct gi_hs_session s;
	int epfd;
	struct gi_cli ring;       /* SQ, CQ, arena, doorbells (ipc/cli.h) */
	bool armed;               /* cq_wait_seq bumped, and since then no CQE reaped
				   * and no ring consumed */
	struct gi_cqe *cqbuf;     /* reaped, not yet delivered: [cq_i, cq_n) */
	size_t cq_n, cq_i, cq_cap;
	uint8_t *msgbuf;          /* GI_MSG_MAX bytes for control-socket messages */
	bool dead;                /* control socket gone or session failed */
	int dead_err;             /* what to report once dead (negative) */
	int32_t spin_us;
	uint32_t ctl_seq;         /* next control-socket message seq */
	uint64_t next_id;

	struct gi_inflight *req;  /* unordered, N_REQ used of CAP_REQ */
	size_t n_req, cap_req;

	char *evbuf;              /* text handed out by the last gi_event_next */
	size_t evcap;

	gi_log_fn log;
	void *log_user;
};

/* Formats a message and passes it to the connection's log callback (if any). */
void gi_logf(gi_log_fn fn, void *user, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define gi_clog(c, level, ...) gi_logf((c)->log, (c)->log_user, (level), __VA_ARGS__)

/* Copies a caller's size-prefixed options struct SRC (NULL: zeroes) into DST
 * of DST_SIZE bytes: fields the caller's older struct lacks read as zero,
 * bytes beyond ours must be zero. -EINVAL naming NAME otherwise. */
int gi_opts_copy(void *dst, size_t dst_size, const void *src, const char *name,
		 gi_log_fn log, void *log_user);

/* Reads everything pending on the control socket without blocking. Marks the
 * connection dead on EOF, a hang-up or a session ERROR message. Replies to
 * synchronous queries are not expected here and are dropped. */
void gi_conn_poll_socket(struct gi_conn *c);

/* Marks the connection dead with ERR (negative) unless it already is. */
void gi_conn_set_dead(struct gi_conn *c, int err);

/* Finds the in-flight request ID; NULL if none. */
struct gi_inflight *gi_inflight_find(struct gi_conn *c, uint64_t id);
/* Adds a request; -ENOMEM. */
int gi_inflight_add(struct gi_conn *c, uint64_t id, uint64_t tag);
/* Removes R (a pointer from gi_inflight_find) and frees its buffer. */
void gi_inflight_remove(struct gi_conn *c, struct gi_inflight *r);

/* Maps a daemon error code from the wire to the library's codes. */
int gi_map_daemon_error(int err);

/* Moves up to MAX available CQEs from the ring to the backlog (growing it).
 * Returns the number moved, or a negative code (the connection is then dead). */
int gi_conn_reap(struct gi_conn *c, size_t max);

/* Resets the completion doorbell after gi_conn_fd() woke; a consumed ring
 * means the armed wait sequence is spent, so the next sleep re-arms. */
void gi_conn_drain_doorbell(struct gi_conn *c);

/* After a submit: arms the completion doorbell (unless armed) so that
 * gi_conn_fd() becomes readable for the request's events even if the caller
 * polls it before reading any event; rings it itself if events are
 * already waiting. */
void gi_conn_arm_for_poll(struct gi_conn *c);

/* The chat list encoding of GI_SQE_F_CHAT (ipc/wire.h). gi_chat_list_len
 * checks MSGS (N of them; FN names the caller in messages) and gives the
 * encoded length; gi_chat_list_write writes that many bytes to DST. */
int gi_chat_list_len(struct gi_conn *c, const char *fn, const struct gi_chat_msg *msgs, size_t n,
		     uint32_t *ret_len);
void gi_chat_list_write(uint8_t *dst, const struct gi_chat_msg *msgs, size_t n);

/* Sends one control message; marks the connection dead on EPIPE/ECONNRESET. */
int gi_conn_send(struct gi_conn *c, const void *msg, size_t len);
