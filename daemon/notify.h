/* systemd integration: sd_notify messages (READY, STATUS, WATCHDOG,
 * STOPPING, RELOADING) and socket activation. Every call is a no-op when gid
 * was not started by systemd ($NOTIFY_SOCKET / $LISTEN_FDS unset). */
#pragma once
#include <stddef.h>
#include <stdint.h>

void notify_ready(const char *status);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_reloading(void);
void notify_stopping(void);
void notify_watchdog(void);

/* Watchdog interval systemd expects pings within (µs), 0 if none. */
uint64_t notify_watchdog_usec(void);

/* The listening socket systemd passed ($LISTEN_FDS): returns the fd (>= 3)
 * if exactly one AF_UNIX SOCK_SEQPACKET listening socket was passed, 0 if
 * none was passed, or a negative errno (-EINVAL with a message in ERR for
 * more than one fd or a socket of the wrong kind). Unsets the variables. */
int notify_listen_fd(char *err, size_t errlen);
