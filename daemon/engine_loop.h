/* The engine thread: joins the session rings to the scheduler.
 *
 * Each iteration it drains every session's SQ through the hardened reader
 * (no syscall while busy), tokenizes prompts (applying the chat template for
 * chat requests), submits them to the scheduler, runs one scheduler step,
 * writes the events to the sessions' CQs (token text inline, split across
 * events when long) and rings the doorbells of clients that sleep. With
 * nothing to do it spins for idle_spin_us, then arms NEED_WAKEUP on every
 * session and sleeps in epoll on all submit doorbells plus one internal
 * eventfd that the I/O thread rings with commands.
 *
 * The I/O thread talks to it only through the functions below (a locked
 * command queue); the engine answers through engine_event_fd(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/stats_json.h"
#include "ipc/wire.h"

struct engine;
struct model;
struct kv_cache;
struct session;

struct engine_opts {
	struct model *model;       /* loaded; not owned */
	struct kv_cache *kv;       /* not owned */
	const struct gid_config *cfg;
	struct gi_limits limits;   /* what sessions were promised */
};

int engine_create(const struct engine_opts *o, struct engine **ret, char *err, size_t errlen);
/* Starts the thread. */
int engine_start(struct engine *e);
/* Stops the thread (if running), frees every session still held. Accepts NULL. */
void engine_destroy(struct engine *e);

/* ---- from the I/O thread ---- */

/* Hands a session over; the engine owns it from now on. -ESHUTDOWN when
 * shutting down (the caller keeps S). */
int engine_add_session(struct engine *e, struct session *s);
/* The session's socket is gone: cancel its requests and free it.
 * VIOLATION: it was closed for a protocol error (counted in the stats). */
void engine_drop_session(struct engine *e, uint64_t session_id, bool violation);
/* CANCEL over the socket. */
void engine_cancel(struct engine *e, uint64_t session_id, uint64_t user_data, bool all);
/* SIGHUP: new tenant policy, in force for every SUBMIT the engine takes
 * after this returns (queued requests see it at the next step boundary). */
void engine_set_tenants(struct engine *e, const struct tenant_table *t);
/* SIGTERM: refuse new requests, let running ones finish within GRACE_MS,
 * then end them with GI_FINISH_SHUTDOWN. */
void engine_shutdown(struct engine *e, uint32_t grace_ms);

/* Readable (eventfd) when the engine has something for the I/O thread:
 * sessions to drop (engine_take_failed) or shutdown complete. */
int engine_event_fd(const struct engine *e);
/* Takes one session the engine failed (protocol violation): its id and the
 * reason. Returns 1 if one was taken, 0 if none. */
int engine_take_failed(struct engine *e, uint64_t *ret_id, char *reason, size_t len);
/* True once shutdown was asked for and every request has ended. */
bool engine_stopped(struct engine *e);
/* Monotonic ms of the engine's last loop iteration (for the watchdog). */
uint64_t engine_alive_ms(struct engine *e);
/* Copies the latest counters (refreshed by the engine every iteration). */
void engine_stats(struct engine *e, struct gid_stats *ret);

/* The limits sessions are promised (for WELCOME). */
void engine_limits(const struct engine *e, struct gi_limits *ret);

/* Monotonic clock in ms / µs. */
uint64_t gid_now_ms(void);
uint64_t gid_now_us(void);
