/* Byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp's
 * llm_tokenizer_bpe_session: pre-tokenize into words, map every byte of a
 * word to its GPT-2 "bytes_to_unicode" symbol, then repeatedly merge the
 * adjacent pair with the lowest merge rank (ties: leftmost). Symbols that are
 * not tokens at the end fall back to single-byte tokens. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_impl.h"

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

size_t tok_bpe_byte_encode(uint8_t b, char out[2])
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

struct sym {
	uint32_t start, n; /* bytes of the encoded word */
	int32_t prev, next;
};

struct bigram {
	int32_t left, right;
	int32_t rank;
	uint32_t size;
};

struct bpe_ctx {
	const struct tokenizer *t;
	const char *text;
	struct tok_out *out;
	char *enc;
	struct sym *sym;
	struct bigram *heap;
	size_t cap; /* bytes of the longest word the buffers hold */
	size_t n_heap;
};

/* Lower rank first, then the leftmost pair. */
static bool before(const struct bigram *a, const struct bigram *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(struct bpe_ctx *c, struct bigram bg)
{
	size_t i = c->n_heap++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&bg, &c->heap[parent]))
			break;
		c->heap[i] = c->heap[parent];
		i = parent;
	}
	c->heap[i] = bg;
}

static struct bigram heap_pop(struct bpe_ctx *c)
{
	struct bigram top = c->heap[0], last = c->heap[--c->n_heap];
	size_t i = 0, n = c->n_heap;

	for (;;) {
		size_t l = 2 * i + 1, best;
		if (l >= n)
			break;
		best = l + 1 < n && before(&c->heap[l + 1], &c->heap[l]) ? l + 1 : l;
		if (!before(&c->heap[best], &last))
			break;
		c->heap[i] = c->heap[best];
		i = best;
	}
	if (n)
		c->heap[i] = last;
	return top;
}

static void add_bigram(struct bpe_ctx *c, int32_t left, int32_t right)
{
	if (left < 0 || right < 0)
		return;
	const struct sym *l = &c->sym[left], *r = &c->sym[right];
	int32_t rank = tok_merge_rank(c->t, c->enc + l->start, l->n, r->n);
	if (rank < 0)
		return;
	heap_push(c, (struct bigram){ left, right, rank, l->n + r->n });
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
	struct sym *sym = realloc(c->sym, cap * sizeof(*sym));
	if (!sym)
		return -ENOMEM;
	c->sym = sym;
	struct bigram *heap = realloc(c->heap, 3 * cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	c->heap = heap;
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
		c->sym[i] = (struct sym){ (uint32_t)elen, (uint32_t)n, (int32_t)i - 1,
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

	c->n_heap = 0;
	for (size_t i = 1; i < len; i++)
		add_bigram(c, (int32_t)i - 1, (int32_t)i);
	while (c->n_heap) {
		struct bigram bg = heap_pop(c);
		struct sym *l = &c->sym[bg.left], *r = &c->sym[bg.right];
		/* Stale if either side changed since the pair was queued. */
		if (!l->n || !r->n || l->n + r->n != bg.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			c->sym[r->next].prev = bg.left;
		add_bigram(c, l->prev, bg.left);
		add_bigram(c, bg.left, l->next);
	}

	for (int32_t i = 0; i >= 0; i = c->sym[i].next) {
		const struct sym *s = &c->sym[i];
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
	ret = tok_pretok_split(&t->pretok, clean, clen, encode_word, &c);
	free(c.enc);
	free(c.sym);
	free(c.heap);
	free(clean);
	return ret;
}
