/* The I/O thread: one io_uring that accepts on the control socket (its own
 * or systemd's), runs handshakes, serves control messages (CANCEL, STATS,
 * TOKENIZE), notices hangups, takes signals through a signalfd (SIGTERM and
 * SIGINT: graceful shutdown; SIGHUP: tenant policy reload) and runs the
 * timers (systemd watchdog, handshake timeouts, shutdown deadline).
 *
 * Runs on the calling thread until shutdown completes. The caller must have
 * blocked SIGTERM, SIGINT and SIGHUP in every thread. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "engine/chat.h"
#include "ipc/handshake.h"

struct engine;
struct tokenizer;

struct io_opts {
	int listen_fd;                 /* listening SOCK_SEQPACKET socket; closed by io_run */
	const char *unlink_path;       /* socket file to remove on shutdown, NULL if systemd owns it */
	struct gid_config *cfg;        /* tenants replaced on SIGHUP */
	struct engine *eng;
	const struct tokenizer *tok;
	enum chat_tmpl chat;           /* the model's chat template (TOKENIZE of a chat list) */
	const struct gi_hs_policy *policy;
	uint64_t watchdog_usec;        /* 0 = no systemd watchdog */
};

/* Returns 0 after a clean shutdown, or a negative errno (message in ERR)
 * if the ring could not be set up. */
int io_run(const struct io_opts *o, char *err, size_t errlen);
