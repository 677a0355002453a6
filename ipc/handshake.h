/* Control-socket handshake (IPC.md "Handshake and versioning") and peer
 * identity. AF_UNIX SOCK_SEQPACKET: one message per datagram.
 *
 * Client: gi_hs_connect() = socket + connect + gi_hs_client(): send HELLO,
 * receive WELCOME with exactly three fds (memfd, submit eventfd, completion
 * eventfd), check it, map the region. Any mismatch: -EPROTO (or the daemon's
 * ERROR code), every fd closed.
 *
 * Daemon: the I/O thread receives bytes however it likes (io_uring), then
 * gi_hs_parse_hello() -> gi_hs_negotiate() -> gi_region_create() ->
 * gi_hs_send_welcome(), or gi_hs_send_error(). gi_peer_identify() reads
 * SO_PEERCRED, SO_PEERPIDFD (when the kernel has it) and /proc/PID/cgroup. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/session.h"
#include "ipc/wire.h"

/* ---- peer identity (daemon) ---- */

struct gi_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;              /* -1 when SO_PEERPIDFD is unavailable */
	char cgroup[512];       /* cgroup v2 path ("/user.slice/..."), "" if unknown */
};

/* Fills *RET from the connected socket SOCK. The pidfd (when present) is
 * owned by *RET: release with gi_peer_release(). -errno from getsockopt;
 * a missing pidfd or cgroup is not an error. */
int gi_peer_identify(int sock, struct gi_peer *ret);
void gi_peer_release(struct gi_peer *p);

/* Reads the cgroup v2 path of PID from /proc/PID/cgroup into BUF. */
int gi_peer_cgroup(pid_t pid, char *buf, size_t len);

/* ---- message checks shared by both sides ---- */

/* Checks that BUF (LEN bytes received) starts with a well-formed header of
 * TYPE: magic, hdr.len == LEN, LEN within [MIN_LEN, GI_MSG_MAX]. Copies the
 * header to *RET. -EPROTO (-EBADMSG for a bad magic), naming the field. */
int gi_msg_check(const void *buf, size_t len, uint16_t type, size_t min_len,
		 struct gi_msg_hdr *ret, char *err, size_t errlen);

/* Fills a header for TYPE, total LEN bytes, SEQ. */
void gi_msg_init(struct gi_msg_hdr *h, uint16_t type, uint32_t len, uint32_t seq);

/* ---- daemon side ---- */

/* Parses a HELLO from untrusted bytes: exact length, type, flags 0, reserved
 * zero, name NUL-padded. Version is not judged here (gi_hs_negotiate). */
int gi_hs_parse_hello(const void *buf, size_t len, struct gi_hello *ret, char *err, size_t errlen);

/* Daemon policy for the geometry it grants. */
struct gi_hs_policy {
	uint32_t features;      /* GI_FEAT_* the daemon offers */
	uint32_t sq_max, cq_max, arena_max; /* 0 = GI_*_MAX */
	struct gi_limits limits;
	const char *model_name;
};

/* Decides the session from HELLO H under POLICY: version (-EPROTONOSUPPORT
 * if the major differs), features (intersection), sizes (defaults, rounded
 * up to powers of two, clamped). Writes region parameters (session_id from
 * SESSION_ID) and the WELCOME minus the layout, which gi_hs_send_welcome
 * fills from the created region. */
int gi_hs_negotiate(const struct gi_hello *h, const struct gi_hs_policy *policy,
		    uint64_t session_id, struct gi_region_params *ret_params,
		    struct gi_welcome *ret_welcome, char *err, size_t errlen);

/* Sends W (its layout set from REGION) with MEMFD, SUBMIT_EFD, COMPLETE_EFD
 * as SCM_RIGHTS. Does not close the fds. */
int gi_hs_send_welcome(int sock, struct gi_welcome *w, const struct gi_region *region,
		       int memfd, int submit_efd, int complete_efd);

/* Sends an ERROR message (ERROR_CODE negative errno, REASON truncated). */
int gi_hs_send_error(int sock, uint32_t seq, int error_code, const char *reason);

/* ---- client side ---- */

struct gi_hs_opts {
	uint32_t sq_entries, cq_entries, arena_size; /* 0 = daemon default */
	uint32_t features;      /* 0 = GI_FEAT_ALL */
	const char *client_name;
	int timeout_ms;         /* for the WELCOME; <= 0 = 5000 */
};

/* An established session as the client holds it. */
struct gi_hs_session {
	int sock;               /* control socket (CLOEXEC) */
	int memfd;
	int submit_efd;
	int complete_efd;
	struct gi_welcome welcome;
	struct gi_region region;
};

/* Builds the HELLO for OPTS. */
void gi_hs_build_hello(const struct gi_hs_opts *opts, uint32_t seq, struct gi_hello *ret);

/* Parses a WELCOME or ERROR from untrusted bytes. A WELCOME is checked for
 * length, type, version, reserved fields and gi_layout_check(); an ERROR is
 * returned as its (negative) code with the reason copied to ERR. */
int gi_hs_parse_welcome(const void *buf, size_t len, struct gi_welcome *ret, char *err, size_t errlen);

/* Receives one message with ancillary fds on SOCK, waiting up to TIMEOUT_MS.
 * Rejects MSG_TRUNC/MSG_CTRUNC and any fd count other than WANT_FDS (all
 * received fds are closed on error). Returns bytes received. */
int gi_hs_recv_fds(int sock, void *buf, size_t cap, int *fds, int want_fds, int timeout_ms);

/* Runs the client side on connected SOCK (not taken over on error). */
int gi_hs_client(int sock, const struct gi_hs_opts *opts, struct gi_hs_session *ret,
		 char *err, size_t errlen);

/* socket + connect to PATH + gi_hs_client. */
int gi_hs_connect(const char *path, const struct gi_hs_opts *opts, struct gi_hs_session *ret,
		  char *err, size_t errlen);

/* Closes every fd and unmaps; fds of -1 are skipped, so it is safe twice. */
void gi_hs_session_close(struct gi_hs_session *s);
