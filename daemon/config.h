/* gid configuration: built-in defaults, then the INI file
 * (/etc/gid/gid.conf or --config FILE), then command line flags. Every key
 * is documented in README.md ("Configuration"). Errors name the file and line (or the
 * flag), the key and the value. Library code: never prints or exits. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/tenant.h"

#define CONFIG_DEFAULT_PATH "/etc/gid/gid.conf"
#define CONFIG_DEFAULT_SOCKET "/run/gid/gid.sock"
#define CONFIG_PATH_MAX 4096
#define CONFIG_SOCKET_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define CONFIG_NAME_MAX 64

enum config_log_level {
	CONFIG_LOG_ERR = 3,
	CONFIG_LOG_WARNING = 4,
	CONFIG_LOG_NOTICE = 5,
	CONFIG_LOG_INFO = 6,
	CONFIG_LOG_DEBUG = 7,
};

struct gid_config {
	char config_path[CONFIG_PATH_MAX]; /* the file read, "" if none */
	char model[CONFIG_PATH_MAX];
	char socket[CONFIG_SOCKET_MAX];
	char socket_group[CONFIG_NAME_MAX];  /* "" = the daemon's group */
	uint32_t socket_mode;                /* permission bits of the socket */
	char device[CONFIG_NAME_MAX];        /* auto | cpu | cuda | cuda:N */
	uint32_t threads;                    /* 0 = all online CPUs */
	uint32_t ctx;                        /* 0 = the model's training context */
	uint32_t kv_mb;                      /* 0 = sized from ctx and max_running */
	char user[CONFIG_NAME_MAX];          /* user to drop to; "" = stay */
	uint32_t max_sessions;
	uint32_t max_batch_tokens;
	uint32_t max_running;
	uint32_t shutdown_grace_ms;
	enum config_log_level log_level;
	uint32_t idle_spin_us;
	uint32_t stall_timeout_ms;           /* end requests whose events wait this long; 0 = never */
	struct tenant_table tenants;
};

/* Fills C with the built-in defaults (socket from $GI_SOCKET if set). */
void config_defaults(struct gid_config *c);

#define CONFIG_HELP 1

/* Builds the whole configuration: defaults, the config file (--config FILE
 * or --config=FILE anywhere in ARGV, else CONFIG_DEFAULT_PATH if it exists),
 * then every other flag of ARGV[1..ARGC) on top. Returns 0, CONFIG_HELP if
 * --help or -h was given (print config_usage()), or a negative errno with a
 * message in ERR: -EINVAL bad key/value/flag, -ENOENT/-EACCES for an
 * unreadable --config file. C is written only on success. */
int config_load(struct gid_config *c, int argc, char *const *argv, char *err, size_t errlen);

/* Parses the INI file PATH on top of C (which holds defaults or earlier
 * values). Same errors as config_load. */
int config_parse_file(struct gid_config *c, const char *path, char *err, size_t errlen);

/* Parses the INI text TEXT (NAME used in messages) on top of C. */
int config_parse_string(struct gid_config *c, const char *name, const char *text,
			char *err, size_t errlen);

/* For SIGHUP: parses PATH again (every key is checked, [daemon] values are
 * discarded) and returns the new tenant table in *RET. The caller hands it to
 * sched_set_tenants() and uses it for new peers. *RET untouched on error. */
int config_reload_tenants(const char *path, struct tenant_table *ret, char *err, size_t errlen);

/* The flags, one per line, for --help. */
const char *config_usage(void);
