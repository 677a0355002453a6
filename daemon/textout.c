/* Stop-string matching over the streamed text of one request. */
#include "daemon/textout.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int textout_check(const char *const *stop, const uint32_t *len, uint32_t n, char *err, size_t errlen)
{
	if (n > TEXTOUT_MAX_STOP) {
		snprintf(err, errlen, "stop: %u strings, at most %d", n, TEXTOUT_MAX_STOP);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (len[i] == 0 || len[i] > TEXTOUT_STOP_MAX_LEN || !stop[i]) {
			snprintf(err, errlen, "stop[%u]: length %u, must be 1..%d bytes", i, len[i],
				 TEXTOUT_STOP_MAX_LEN);
			return -EINVAL;
		}
	}
	return 0;
}

void textout_init(struct textout *t, const struct tokenizer *tok, const char *const *stop,
		  const uint32_t *len, uint32_t n)
{
	tok_stream_init(&t->ts, tok);
	t->n_stop = n;
	t->max_stop_len = 0;
	t->n_held = 0;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(t->stop[i], stop[i], len[i]);
		t->stop_len[i] = len[i];
		if (len[i] > t->max_stop_len)
			t->max_stop_len = len[i];
	}
}

/* Earliest start of a stop string inside BUF[0..N), or N if none. */
static uint32_t find_stop(const struct textout *t, const char *buf, uint32_t n)
{
	uint32_t best = n;
	for (uint32_t i = 0; i < t->n_stop; i++) {
		uint32_t sl = t->stop_len[i];
		for (uint32_t p = 0; p + sl <= n && p < best; p++) {
			if (!memcmp(buf + p, t->stop[i], sl)) {
				best = p;
				break;
			}
		}
	}
	return best;
}

/* True if BUF[0..N) is a proper prefix of some stop string. */
static bool is_stop_prefix(const struct textout *t, const char *buf, uint32_t n)
{
	for (uint32_t i = 0; i < t->n_stop; i++)
		if (n < t->stop_len[i] && !memcmp(buf, t->stop[i], n))
			return true;
	return false;
}

int textout_push(struct textout *t, int32_t id, char *out, size_t cap, bool *ret_stopped)
{
	char work[TEXTOUT_STOP_MAX_LEN + 64];
	*ret_stopped = false;
	if (cap < TEXTOUT_OUT_MAX)
		return -EINVAL;
	memcpy(work, t->held, t->n_held);
	int r = tok_stream_push(&t->ts, id, work + t->n_held, sizeof(work) - t->n_held);
	if (r < 0)
		return r;
	if ((size_t)r > sizeof(work) - t->n_held)
		return -EOVERFLOW;
	uint32_t n = t->n_held + (uint32_t)r;
	if (t->n_stop == 0) {
		memcpy(out, work, n);
		return (int)n;
	}
	uint32_t p = find_stop(t, work, n);
	if (p < n) {
		memcpy(out, work, p);
		t->n_held = 0;
		*ret_stopped = true;
		return (int)p;
	}
	/* Hold back the longest tail that a stop string could still complete. */
	uint32_t k = n > t->max_stop_len - 1 ? n - (t->max_stop_len - 1) : 0;
	while (k < n && !is_stop_prefix(t, work + k, n - k))
		k++;
	memcpy(out, work, k);
	t->n_held = n - k;
	memcpy(t->held, work + k, t->n_held);
	return (int)k;
}

int textout_flush(struct textout *t, char *out, size_t cap)
{
	if (cap < TEXTOUT_OUT_MAX)
		return -EINVAL;
	uint32_t n = t->n_held;
	memcpy(out, t->held, n);
	t->n_held = 0;
	int r = tok_stream_flush(&t->ts, out + n, cap - n);
	if (r < 0)
		return r;
	return (int)(n + (uint32_t)r);
}
