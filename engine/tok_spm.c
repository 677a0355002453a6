/* SentencePiece-style BPE (tokenizer.ggml.model = "llama"), as llama.cpp's
 * llm_tokenizer_spm_session: start from one symbol per UTF-8 character,
 * repeatedly merge the adjacent pair whose concatenation is the token with
 * the highest score (ties: leftmost), then emit each symbol's token or, for a
 * character that is not in the vocabulary, its bytes as <0xNN> tokens. */
#include <errno.h>
#include <stdlib.h>

#include "engine/tok_impl.h"
#include "engine/tok_merge.h"

struct spm_ctx {
	const struct tokenizer *t;
	const char *text;
};

/* Merge priority: the score of the token the pair spells, if there is one.
 * Symbols are contiguous, so the pair's text is one span. */
static bool pair_score(void *arg, const struct tok_sym *l, const struct tok_sym *r, float *ret)
{
	const struct spm_ctx *c = arg;
	int32_t id = tok_lookup(c->t, c->text + l->start, l->n + r->n);

	if (id < 0)
		return false;
	*ret = c->t->score[id];
	return true;
}

int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_out *out)
{
	struct spm_ctx c = { .t = t, .text = text };
	struct tok_merger m = { .prio = pair_score, .arg = &c };
	int32_t n = 0;

	if (!len)
		return 0;
	m.sym = malloc(len * sizeof(*m.sym));
	m.heap = malloc(3 * len * sizeof(*m.heap));
	if (!m.sym || !m.heap) {
		free(m.sym);
		free(m.heap);
		return -ENOMEM;
	}
	for (size_t off = 0; off < len; n++) {
		size_t l = tok_utf8_len((uint8_t)text[off]);
		if (l > len - off)
			l = len - off;
		m.sym[n] = (struct tok_sym){ (uint32_t)off, (uint32_t)l, n - 1, n + 1 };
		off += l;
	}
	m.sym[n - 1].next = -1;
	tok_merge_run(&m, n);

	for (int32_t i = 0; i >= 0; i = m.sym[i].next) {
		const struct tok_sym *s = &m.sym[i];
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
	free(m.sym);
	free(m.heap);
	return 0;
}
