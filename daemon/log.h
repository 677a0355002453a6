/* gid's log: one line per event on stderr, with a syslog priority. When
 * stderr is the journal ($JOURNAL_STREAM set) each line starts with "<N>",
 * which journald turns into the entry's priority; otherwise a word names the
 * level. Thread-safe: each line is one write(2). */
#pragma once
#include "daemon/config.h"

/* Lines above LEVEL are dropped. Reads $JOURNAL_STREAM once. */
void log_init(enum config_log_level level);

void log_msg(enum config_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)    log_msg(CONFIG_LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(CONFIG_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(CONFIG_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(CONFIG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(CONFIG_LOG_DEBUG, __VA_ARGS__)
