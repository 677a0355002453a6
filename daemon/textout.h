/* Per-request text output: token ids to UTF-8 (tok_stream) plus stop strings
 * matched across token boundaries. Text that could be the start of a stop
 * string is held back until it is known not to be; a matched stop string and
 * everything after it is never emitted. No allocation. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tokenizer.h"

#define TEXTOUT_MAX_STOP 8
#define TEXTOUT_STOP_MAX_LEN 128
/* Enough room for any one textout_push() or textout_flush() result. */
#define TEXTOUT_OUT_MAX (2 * TEXTOUT_STOP_MAX_LEN + 64)

struct textout {
	struct tok_stream ts;
	uint32_t n_stop, max_stop_len, n_held;
	uint32_t stop_len[TEXTOUT_MAX_STOP];
	char stop[TEXTOUT_MAX_STOP][TEXTOUT_STOP_MAX_LEN];
	char held[TEXTOUT_STOP_MAX_LEN]; /* undecided text, always shorter than max_stop_len */
};

/* Checks N stop strings (0..TEXTOUT_MAX_STOP, each 1..TEXTOUT_STOP_MAX_LEN
 * bytes); -EINVAL with a message naming the string otherwise. */
int textout_check(const char *const *stop, const uint32_t *len, uint32_t n, char *err, size_t errlen);

/* Sets up T (stop strings as accepted by textout_check, copied). */
void textout_init(struct textout *t, const struct tokenizer *tok, const char *const *stop,
		  const uint32_t *len, uint32_t n);

/* Appends token ID. Writes the text that can be emitted now to OUT (CAP >=
 * TEXTOUT_OUT_MAX) and returns its length, or a negative errno. Sets
 * *RET_STOPPED when a stop string completed: OUT then holds the text before
 * it and the request must end. */
int textout_push(struct textout *t, int32_t id, char *out, size_t cap, bool *ret_stopped);

/* End of stream without a stop string: returns the held-back text and any
 * incomplete UTF-8 (as U+FFFD) in OUT (CAP >= TEXTOUT_OUT_MAX). */
int textout_flush(struct textout *t, char *out, size_t cap);
