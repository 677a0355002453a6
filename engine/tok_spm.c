/* SentencePiece-style BPE (tokenizer.ggml.model = "llama"), as llama.cpp's
 * llm_tokenizer_spm_session: start from one symbol per UTF-8 character,
 * repeatedly merge the adjacent pair whose concatenation is the token with
 * the highest score (ties: leftmost), then emit each symbol's token or, for a
 * character that is not in the vocabulary, its bytes as <0xNN> tokens. */
#include <errno.h>
#include <stdlib.h>

#include "engine/tok_impl.h"

struct sym {
	uint32_t start, n; /* bytes of the text */
	int32_t prev, next;
};

struct bigram {
	int32_t left, right;
	float score;
	uint32_t size;
};

struct spm_ctx {
	const struct tokenizer *t;
	const char *text;
	struct sym *sym;
	struct bigram *heap;
	size_t n_heap;
};

/* Higher score first, then the leftmost pair. */
static bool before(const struct bigram *a, const struct bigram *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct spm_ctx *c, struct bigram bg)
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

static struct bigram heap_pop(struct spm_ctx *c)
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

static void add_bigram(struct spm_ctx *c, int32_t left, int32_t right)
{
	if (left < 0 || right < 0)
		return;
	const struct sym *l = &c->sym[left], *r = &c->sym[right];
	/* Symbols are contiguous, so the pair's text is one span. */
	int32_t id = tok_lookup(c->t, c->text + l->start, l->n + r->n);
	if (id < 0)
		return;
	heap_push(c, (struct bigram){ left, right, c->t->score[id], l->n + r->n });
}

int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_out *out)
{
	struct spm_ctx c = { .t = t, .text = text };
	int32_t n = 0;

	if (!len)
		return 0;
	c.sym = malloc(len * sizeof(*c.sym));
	c.heap = malloc(3 * len * sizeof(*c.heap));
	if (!c.sym || !c.heap) {
		free(c.sym);
		free(c.heap);
		return -ENOMEM;
	}
	for (size_t off = 0; off < len; n++) {
		size_t l = tok_utf8_len((uint8_t)text[off]);
		if (l > len - off)
			l = len - off;
		c.sym[n] = (struct sym){ (uint32_t)off, (uint32_t)l, n - 1, n + 1 };
		off += l;
	}
	c.sym[n - 1].next = -1;

	for (int32_t i = 1; i < n; i++)
		add_bigram(&c, i - 1, i);
	while (c.n_heap) {
		struct bigram bg = heap_pop(&c);
		struct sym *l = &c.sym[bg.left], *r = &c.sym[bg.right];
		if (!l->n || !r->n || l->n + r->n != bg.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			c.sym[r->next].prev = bg.left;
		add_bigram(&c, l->prev, bg.left);
		add_bigram(&c, bg.left, l->next);
	}

	for (int32_t i = 0; i >= 0; i = c.sym[i].next) {
		const struct sym *s = &c.sym[i];
		int32_t id = tok_lookup(t, text + s->start, s->n);
		if (id >= 0) {
			tok_out_push(out, id);
			continue;
		}
		for (uint32_t j = 0; j < s->n; j++) {
			id = t->byte_tok[(uint8_t)text[s->start + j]];
			if (id < 0)
				id = t->unk;
			if (id >= 0)
				tok_out_push(out, id);
		}
	}
	free(c.sym);
	free(c.heap);
	return 0;
}
