/* Error messages for callers that pass a buffer (ERR, ERRLEN): fills it when
 * there is one and returns CODE, a negative errno, so a failure path is one
 * statement: `return errmsg(err, errlen, -EINVAL, "key %s: ...", key);`.
 * Header-only; shared by every layer, depends on none. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

__attribute__((format(printf, 4, 5), unused))
static int errmsg(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}
