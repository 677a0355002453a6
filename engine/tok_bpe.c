/* Byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp's
 * llm_tokenizer_bpe_session: pre-tokenize into words, map every byte of a
 * word to its GPT-2 "bytes_to_unicode" symbol, then repeatedly merge the
 * adjacent pair with the lowest merge rank (ties: leftmost). Symbols that are
 * not tokens at the end fall back to single-byte tokens. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_impl.h"
#include "engine/tok_merge.h"

/* GPT-2 maps the 188 printable bytes to themselves and the other 68
 * (0x00-0x20, 0x7f-0xa0, 0xad) to U+0100.. in byte order. */
static bool byte_is_printable(uint32_t b)
{
	return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

static uint32_t byte_to_cpt(uint8_t b)
{
	if (byte_is_printable(b))
		return b;
	if (b <= 0x20)
		return 256 + b;
	if (b <= 0xa0)
		return 256 + 33 + (b - 0x7f);
	return 256 + 33 + 34; /* 0xad */
}

/* The byte-level BPE symbol of byte B (GPT-2 bytes_to_unicode) as UTF-8. */
static size_t tok_bpe_byte_encode(uint8_t b, char out[2])
{
	return tok_utf8_encode(byte_to_cpt(b), out);
}

int tok_bpe_cpt_to_byte(uint32_t cpt)
{
	if (cpt < 256)
		return byte_is_printable(cpt) ? (int)cpt : -1;
	if (cpt <= 256 + 32)
		return (int)(cpt - 256);
	if (cpt <= 256 + 33 + 33)
		return (int)(0x7f + cpt - 256 - 33);
	if (cpt == 256 + 33 + 34)
		return 0xad;
	return -1;
}

struct bpe_ctx {
	const struct tokenizer *t;
	const char *text;
	struct tok_out *out;
	char *enc;
	struct tok_merger m;
	size_t cap; /* bytes of the longest word the buffers hold */
};

/* Merge priority: lower merge rank first. Ranks stay below 2^24, so the
 * float holds them exactly. */
static bool pair_rank(void *arg, const struct tok_sym *l, const struct tok_sym *r, float *ret)
{
	const struct bpe_ctx *c = arg;
	int32_t rank = tok_merge_rank(c->t, c->enc + l->start, l->n, r->n);

	if (rank < 0)
		return false;
	*ret = -(float)rank;
	return true;
}

static int grow(struct bpe_ctx *c, size_t len)
{
	size_t cap = c->cap ? c->cap : 64;

	while (cap < len)
		cap *= 2;
	char *enc = realloc(c->enc, 2 * cap);
	if (!enc)
		return -ENOMEM;
	c->enc = enc;
	struct tok_sym *sym = realloc(c->m.sym, cap * sizeof(*sym));
	if (!sym)
		return -ENOMEM;
	c->m.sym = sym;
	struct tok_bigram *heap = realloc(c->m.heap, 3 * cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	c->m.heap = heap;
	c->cap = cap;
	return 0;
}

static int encode_word(void *arg, size_t off, size_t len)
{
	struct bpe_ctx *c = arg;
	const struct tokenizer *t = c->t;
	const uint8_t *w = (const uint8_t *)c->text + off;
	size_t elen = 0;
	int ret;

	if (len > c->cap && (ret = grow(c, len)) < 0)
		return ret;
	for (size_t i = 0; i < len; i++) {
		size_t n = tok_bpe_byte_encode(w[i], c->enc + elen);
		c->m.sym[i] = (struct tok_sym){ (uint32_t)elen, (uint32_t)n, (int32_t)i - 1,
					  i + 1 == len ? -1 : (int32_t)i + 1 };
		elen += n;
	}
	if (t->ignore_merges) {
		int32_t id = tok_lookup(t, c->enc, elen);
		if (id >= 0) {
			tok_out_push(c->out, id);
			return 0;
		}
	}

	tok_merge_run(&c->m, (int32_t)len);

	for (int32_t i = 0; i >= 0; i = c->m.sym[i].next) {
		const struct tok_sym *s = &c->m.sym[i];
		int32_t id = tok_lookup(t, c->enc + s->start, s->n);
		if (id >= 0) {
			tok_out_push(c->out, id);
			continue;
		}
		for (uint32_t j = 0; j < s->n; j++) {
			id = t->char1_tok[(uint8_t)c->enc[s->start + j]];
			if (id >= 0)
				tok_out_push(c->out, id);
		}
	}
	return 0;
}

int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_out *out)
{
	struct bpe_ctx c = { .t = t, .out = out };
	char *clean = malloc(3 * len + 1);
	int ret;

	if (!clean)
		return -ENOMEM;
	size_t clen = tok_utf8_sanitize(text, len, clean);
	c.text = clean;
	c.m.prio = pair_rank;
	c.m.arg = &c;
	ret = tok_pretok_split(&t->pretok, clean, clen, encode_word, &c);
	free(c.enc);
	free(c.m.sym);
	free(c.m.heap);
	free(clean);
	return ret;
}
