/* A scripted stand-in for gid, built on the daemon side of ipc/ (handshake,
 * region, gi_srv), for testing libgiclient without a model. It runs in a
 * forked child process listening on a temporary socket, serving one session
 * at a time (a client that leaves is followed by the next one).
 *
 * Generation is an echo: a text prompt is split into words (each keeps its
 * trailing spaces) and every word comes back as one TOKEN event whose id is
 * the word's index, so the concatenated output equals the prompt. Words over
 * GI_CQE_TEXT_MAX bytes are sent as TEXT_CONT pieces. A word equal to a stop
 * string ends the request with GI_FINISH_STOP; max_tokens ends it with
 * GI_FINISH_LENGTH; the end of the prompt with GI_FINISH_EOS. A chat prompt
 * echoes its last message's content; a token-id prompt echoes "ID " per id.
 * Deadlines are ignored; the heartbeat advances on every loop iteration. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/wire.h"

struct fake_gid_cfg {
	uint32_t sq_max;          /* cap on granted SQ entries (0: ipc default) */
	uint32_t arena_max;       /* cap on the arena (0: ipc default) */
	struct gi_limits limits;  /* all zero: fake defaults */
	uint32_t token_delay_us;  /* pause between engine steps that emit tokens */
	bool no_consume;          /* never read the SQ (SQ-full tests) */
	uint32_t stall_ms;        /* after the handshake, do nothing for this long */
	uint32_t die_after_tokens; /* > 0: _exit() after posting this many TOKEN events */
	int refuse;               /* < 0: answer every HELLO with ERROR(refuse) */
};

struct fake_gid {
	pid_t pid;
	char dir[64];
	char path[108];
};

/* Starts the fake daemon on a fresh socket under a temporary directory.
 * Returns 0 or a negative errno. */
int fake_gid_start(const struct fake_gid_cfg *cfg, struct fake_gid *ret);

/* Starts it again on the same socket path G->path (after a stop or kill). */
int fake_gid_restart(const struct fake_gid_cfg *cfg, struct fake_gid *g);

/* Sends SIG to the fake daemon and reaps it. Returns its wait status. */
int fake_gid_signal(struct fake_gid *g, int sig);

/* Stops it (SIGKILL), removes the socket and directory. */
void fake_gid_cleanup(struct fake_gid *g);
