/* Incremental detokenization for streaming. Byte-fallback and byte-level
 * BPE tokens can split a character across tokens, so bytes of an unfinished
 * UTF-8 sequence wait in the stream until the rest arrives; bytes that can
 * never form a character are replaced by U+FFFD, so a client only ever sees
 * valid UTF-8. Control tokens render as "" (as llama-server's content). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_impl.h"

#define REPLACEMENT "\xef\xbf\xbd"

void tok_stream_init(struct tok_stream *s, const struct tokenizer *t)
{
	s->tok = t;
	s->n_pending = 0;
}

/* Emits the valid characters of IN (N bytes) to OUT; returns the output
 * length, or -ENOBUFS if it does not fit CAP. The unfinished tail is left in
 * *TAIL_LEN bytes at the end of IN. */
static int emit(const uint8_t *in, size_t n, char *out, size_t cap, size_t *tail_len)
{
	size_t i = 0, o = 0;

	*tail_len = 0;
	while (i < n) {
		bool incomplete;
		size_t v = tok_utf8_valid_prefix(in + i, n - i, &incomplete);
		if (o + v > cap)
			return -ENOBUFS;
		memcpy(out + o, in + i, v);
		o += v;
		i += v;
		if (i == n)
			break;
		if (incomplete) {
			*tail_len = n - i;
			break;
		}
		if (o + 3 > cap)
			return -ENOBUFS;
		memcpy(out + o, REPLACEMENT, 3);
		o += 3;
		i++;
	}
	return (int)o;
}

int tok_stream_push(struct tok_stream *s, int32_t id, char *out, size_t cap)
{
	uint8_t local[256], *buf = local;
	size_t tail;
	int n, ret;

	if (!s || !s->tok || (!out && cap))
		return -EINVAL;
	n = tok_piece(s->tok, id, false, NULL, 0);
	if (n < 0)
		return n;
	size_t total = s->n_pending + (size_t)n;
	if (total > sizeof(local) && !(buf = malloc(total)))
		return -ENOMEM;
	memcpy(buf, s->pending, s->n_pending);
	tok_piece(s->tok, id, false, (char *)buf + s->n_pending, (size_t)n);
	ret = emit(buf, total, out, cap, &tail);
	if (ret >= 0) {
		/* An unfinished sequence is at most 3 bytes. */
		memcpy(s->pending, buf + total - tail, tail);
		s->n_pending = (uint32_t)tail;
	}
	if (buf != local)
		free(buf);
	return ret;
}

int tok_stream_flush(struct tok_stream *s, char *out, size_t cap)
{
	if (!s || (!out && cap))
		return -EINVAL;
	if (!s->n_pending)
		return 0;
	if (cap < 3)
		return -ENOBUFS;
	memcpy(out, REPLACEMENT, 3);
	s->n_pending = 0;
	return 3;
}
