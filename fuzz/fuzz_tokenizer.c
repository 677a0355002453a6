/* libFuzzer target for the tokenizers and the streaming detokenizer. The
 * first input byte picks a vocabulary (stories260K SPM, gpt-2 and
 * deepseek-llm byte-level BPE from $GI_SHARED) and the encode flags; the rest
 * is the text. Any input must encode to in-range ids and decode without
 * error; byte-level BPE must give valid UTF-8 text back exactly; the stream
 * must emit only valid UTF-8, and the same bytes as the decoder when those
 * are valid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tok_impl.h"
#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {
	"models/stories260K.gguf",
	"models/vocab/ggml-vocab-gpt-2.gguf",
	"models/vocab/ggml-vocab-deepseek-llm.gguf",
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

static struct tokenizer *toks[N_FILES];

static void load(void)
{
	const char *shared = getenv("GI_SHARED");
	char path[1024], err[256];

	for (size_t i = 0; i < N_FILES; i++) {
		struct gguf *g;
		snprintf(path, sizeof(path), "%s/%s", shared ? shared : "../shared", files[i]);
		if (gguf_open(path, &g, err, sizeof(err)) < 0 || tok_create(g, &toks[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err);
			abort();
		}
		/* the tokenizer keeps copies: the file may go */
		gguf_close(g);
	}
}

static bool valid_utf8(const char *s, size_t n)
{
	bool incomplete;
	return tok_utf8_valid_prefix((const uint8_t *)s, n, &incomplete) == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int32_t ids[8192];
	static char dec[65536], out[65536 + 64];

	if (!toks[0])
		load();
	if (size < 1 || size > 2048)
		return 0;
	const struct tokenizer *t = toks[data[0] % N_FILES];
	bool add_special = data[0] & 0x10, parse_special = data[0] & 0x20;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;

	int n = tok_encode(t, text, len, add_special, parse_special, ids, 8192);
	if (n < 0 || n > 8192)
		abort();
	for (int i = 0; i < n; i++)
		if (ids[i] < 0 || (uint32_t)ids[i] >= tok_n_vocab(t))
			abort();
	int d = tok_decode(t, ids, (size_t)n, false, dec, sizeof(dec));
	if (d < 0)
		abort();
	bool full = (size_t)d <= sizeof(dec);
	if (full && t != toks[0] && !add_special && !parse_special && valid_utf8(text, len) &&
	    ((size_t)d != len || memcmp(dec, text, len)))
		abort(); /* byte-level BPE is lossless on valid UTF-8 */

	struct tok_stream ts;
	size_t o = 0;
	int i;
	tok_stream_init(&ts, t);
	for (i = 0; i < n && o + 4096 <= sizeof(out); i++) {
		int r = tok_stream_push(&ts, ids[i], out + o, sizeof(out) - o);
		if (r < 0)
			abort();
		o += (size_t)r;
	}
	int r = tok_stream_flush(&ts, out + o, 64);
	if (r < 0)
		abort();
	o += (size_t)r;
	if (!valid_utf8(out, o))
		abort(); /* never half a character, never an invalid byte */
	if (i < n || !full || !valid_utf8(dec, (size_t)d))
		return 0;
	/* the stream shows what decode gives (which drops SPM's prefix space) */
	bool same = (size_t)d == o && !memcmp(dec, out, o);
	bool prefix = t == toks[0] && o == (size_t)d + 1 && out[0] == ' ' && !memcmp(dec, out + 1, (size_t)d);
	if (!same && !prefix)
		abort();
	return 0;
}
