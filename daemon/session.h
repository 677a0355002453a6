/* One client session as gid holds it: the control socket (I/O thread), the
 * sealed memfd region with its two doorbells and the hardened reader
 * (engine thread), the peer's identity and the tenant it maps to.
 *
 * Ownership: the I/O thread creates a session (session_open runs the
 * daemon side of the handshake), hands it to the engine thread, and from
 * then on touches only its socket. When the socket hangs up (or the engine
 * asks for the session to be dropped) the I/O thread closes the socket and
 * tells the engine, which cancels the session's requests and frees it. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "daemon/tenant.h"
#include "ipc/handshake.h"
#include "ipc/srv.h"
#include "ipc/wire.h"

/* Events that did not fit in the CQ, in order; flushed before new ones. */
struct cqe_backlog {
	struct gi_cqe *ev;
	uint32_t n, head, cap;
};

/* A request of the session that the scheduler holds; its address is the
 * user_data the scheduler reports events with. */
struct session_req {
	uint64_t user_data;          /* the client's */
	uint64_t sched_id;
	struct session *s;
	struct session_req *prev, *next;
	uint16_t flags;              /* GI_SQE_F_* of the SUBMIT */
	bool cancelled;
	bool stalled;                /* cancelled for the stall timeout: ends with an ERROR */
};

struct session {
	uint64_t id;
	int sock;                    /* control socket; the I/O thread's */
	int memfd;
	int submit_efd;              /* client -> engine */
	int complete_efd;            /* engine -> client */
	struct gi_region region;     /* daemon's mapping of the memfd */
	struct gi_peer peer;
	char client_name[33];
	char tenant[TENANT_NAME_MAX];
	uint32_t features;

	/* Engine thread only from here on. */
	struct gi_srv srv;
	struct cqe_backlog backlog;
	struct session_req *reqs;    /* in flight: submitted, not yet ended */
	uint32_t n_reqs;
	uint32_t reserved;           /* CQ slots promised by can_emit this step */
	bool posted;                 /* events published since the last kick */
	bool dead;                   /* failed or hung up: no more polling or events */
	bool dropped;                /* the I/O thread closed the socket */
	bool shutdown_flagged;
	uint64_t stalled_since_ms;   /* can_emit refused since then without a yes; 0 = not */
	uint32_t spurious;           /* doorbell rings with nothing new */
	uint32_t mutes;              /* times the doorbell was taken out of epoll */
	uint64_t muted_until_ms;     /* doorbell out of the epoll set until then */
	bool muted;
};

/* Daemon-wide inputs to a handshake. */
struct session_ctx {
	const struct gi_hs_policy *policy;
	const struct tenant_table *tenants;
	uint64_t session_id;         /* id to give this session */
};

/* Runs the daemon side of the handshake on SOCK for the HELLO in BUF (LEN
 * bytes): parses it, identifies the peer, maps it to a tenant (refusing a
 * tenant that is not allowed), negotiates the geometry, creates the region
 * and the doorbells, starts the reader and sends WELCOME. On failure an
 * ERROR message goes back to the peer (when it makes sense), REASON says
 * why, and a negative errno is returned; SOCK is never closed here. */
int session_open(int sock, const void *buf, size_t len, const struct session_ctx *ctx,
		 struct session **ret, char *reason, size_t reasonlen);

/* Frees everything but the socket (closed by the I/O thread). Accepts NULL. */
void session_free(struct session *s);

/* Posts as much of the backlog as fits. Returns events still waiting, or -EPROTO. */
int session_backlog_flush(struct session *s);

/* Posts N events for the session, keeping order: what does not fit goes to
 * the backlog. Returns 0, -ENOMEM, or -EPROTO (session failed). */
int session_post(struct session *s, const struct gi_cqe *ev, uint32_t n);

/* In-flight request bookkeeping. */
struct session_req *session_req_new(struct session *s, uint64_t user_data, uint16_t flags);
/* Unlinks and frees Q. */
void session_req_end(struct session_req *q);
/* The newest request with USER_DATA not yet cancelled, or NULL. */
struct session_req *session_req_find(const struct session *s, uint64_t user_data);
