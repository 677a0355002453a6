/* Logging to stderr, journald-friendly (see log.h). */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum config_log_level max_level = CONFIG_LOG_INFO;
static bool journal;

void log_init(enum config_log_level level)
{
	const char *js = getenv("JOURNAL_STREAM");
	journal = js && *js;
	max_level = level;
}

static const char *level_word(enum config_log_level level)
{
	switch (level) {
	case CONFIG_LOG_ERR:
		return "error";
	case CONFIG_LOG_WARNING:
		return "warning";
	case CONFIG_LOG_NOTICE:
		return "notice";
	case CONFIG_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void log_msg(enum config_log_level level, const char *fmt, ...)
{
	if (level > max_level)
		return;
	char line[1024];
	int n = journal ? snprintf(line, sizeof(line), "<%d>", (int)level)
			: snprintf(line, sizeof(line), "gid: %s: ", level_word(level));
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* One event, one line: a newline inside the message would split it. */
	for (size_t i = (size_t)n; i < len; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
