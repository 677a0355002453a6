/* Encoding and decoding, as llama.cpp's llama_vocab::impl::tokenize and
 * token_to_piece / detokenize: the text is first cut at special tokens
 * (user-defined ones always, control ones only when asked), then each raw
 * fragment goes to the SPM or BPE encoder. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "engine/tok_impl.h"

struct frag {
	int32_t tok; /* -1: raw text [off, off+len) */
	uint32_t off, len;
};

struct frags {
	struct frag *v;
	size_t n, cap;
};

static int frags_push(struct frags *f, int32_t tok, size_t off, size_t len)
{
	if (tok < 0 && !len)
		return 0;
	struct frag *v = grow_array(f->v, &f->cap, f->n + 1, sizeof(*v), 16);
	if (!v)
		return -ENOMEM;
	f->v = v;
	f->v[f->n++] = (struct frag){ tok, (uint32_t)off, (uint32_t)len };
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Cuts every raw fragment of A at the occurrences of special token ID,
 * writing the result to B. */
static int cut(const struct tokenizer *t, int32_t id, const char *text, const struct frags *a,
	       struct frags *b)
{
	const char *tt = tok_text_of(t, id);
	size_t tl = t->text_len[id];
	uint16_t attr = t->attr[id];
	int ret;

	b->n = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct frag *f = &a->v[i];
		if (f->tok >= 0) {
			if ((ret = frags_push(b, f->tok, 0, 0)) < 0)
				return ret;
			continue;
		}
		size_t base = f->off, end = f->off + f->len;
		for (;;) {
			const char *m = memmem(text + base, end - base, tt, tl);
			if (!m)
				break;
			size_t mo = (size_t)(m - text);
			if ((ret = frags_push(b, -1, base, mo - base)) < 0 ||
			    (ret = frags_push(b, id, 0, 0)) < 0)
				return ret;
			base = mo + tl;
			if (attr & TOK_ATTR_RSTRIP)
				while (base < end && is_space(text[base]))
					base++;
		}
		if ((ret = frags_push(b, -1, base, end - base)) < 0)
			return ret;
	}
	return 0;
}

static int partition(const struct tokenizer *t, const char *text, size_t len, bool parse_special,
		     struct frags *out)
{
	struct frags tmp = { 0 };
	uint64_t present[4] = { 0 };
	int ret = frags_push(out, -1, 0, len);

	for (size_t i = 0; i < len; i++)
		present[(uint8_t)text[i] >> 6] |= 1ull << ((uint8_t)text[i] & 63);
	for (uint32_t s = 0; s < t->n_specials && ret == 0; s++) {
		int32_t id = t->specials[s];
		uint8_t first = (uint8_t)tok_text_of(t, id)[0];
		if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
			continue;
		if (t->text_len[id] > len || !(present[first >> 6] & (1ull << (first & 63))))
			continue;
		if ((ret = cut(t, id, text, out, &tmp)) == 0) {
			struct frags x = *out;
			*out = tmp;
			tmp = x;
		}
	}
	free(tmp.v);
	return ret;
}

/* SPM: optional leading space, then every space becomes U+2581. */
static int spm_fragment(const struct tokenizer *t, const char *s, size_t len, bool prefix,
			struct tok_out *out)
{
	char *buf = malloc(3 * (len + 1));
	size_t n = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len + prefix; i++) {
		char c = prefix ? (i ? s[i - 1] : ' ') : s[i];
		if (c == ' ') {
			memcpy(buf + n, "\xe2\x96\x81", 3);
			n += 3;
		} else {
			buf[n++] = c;
		}
	}
	ret = tok_spm_encode(t, buf, n, out);
	free(buf);
	return ret;
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special,
	       bool parse_special, int32_t *ids, size_t cap)
{
	struct tok_out out = { ids, ids ? cap : 0, 0 };
	struct frags f = { 0 };
	bool prev_special = true; /* SPM prefixes a space at the start */
	int ret = 0;

	if (!t || (!text && len) || len > UINT32_MAX)
		return -EINVAL;
	if (len && (ret = partition(t, text, len, parse_special, &f)) < 0)
		goto out;
	if (add_special && t->add_bos && t->bos >= 0)
		tok_out_push(&out, t->bos);
	for (size_t i = 0; i < f.n && ret == 0; i++) {
		const struct frag *fr = &f.v[i];
		if (fr->tok >= 0) {
			tok_out_push(&out, fr->tok);
			prev_special = true;
		} else if (t->kind == TOK_SPM) {
			ret = spm_fragment(t, text + fr->off, fr->len,
					   t->add_space_prefix && prev_special, &out);
			prev_special = false;
		} else {
			ret = tok_bpe_encode(t, text + fr->off, fr->len, &out);
		}
	}
	if (ret == 0 && add_special && t->add_eos && t->eos >= 0)
		tok_out_push(&out, t->eos);
out:
	free(f.v);
	if (ret < 0)
		return ret;
	return out.n > INT_MAX ? -EOVERFLOW : (int)out.n;
}

/* Bounded writer that can drop one leading space (detokenize's lstrip). */
struct wr {
	char *buf;
	size_t cap, n;
	bool lstrip;
};

static void put(struct wr *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (w->lstrip) {
			w->lstrip = false;
			if (s[i] == ' ')
				continue;
		}
		if (w->n < w->cap)
			w->buf[w->n] = s[i];
		w->n++;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void piece(const struct tokenizer *t, int32_t id, bool special, struct wr *w)
{
	uint16_t a = t->attr[id];
	const char *s = tok_text_of(t, id);
	size_t n = t->text_len[id];

	if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)) {
		if (special)
			put(w, s, n);
	} else if (a & TOK_ATTR_USER_DEFINED) {
		put(w, s, n);
	} else if (a & TOK_ATTR_NORMAL) {
		if (t->kind == TOK_SPM) {
			for (size_t i = 0; i < n; i++) {
				if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) {
					put(w, " ", 1);
					i += 2;
				} else {
					put(w, s + i, 1);
				}
			}
			return;
		}
		for (size_t i = 0; i < n;) {
			uint32_t cpt;
			size_t l = tok_utf8_decode((const uint8_t *)s + i, n - i, &cpt);
			int b = tok_bpe_cpt_to_byte(cpt);
			if (b >= 0) {
				char c = (char)b;
				put(w, &c, 1);
			} else {
				put(w, s + i, l); /* not a byte symbol: keep it as is */
			}
			i += l;
		}
	} else if (a & TOK_ATTR_BYTE) {
		int hi = n == 6 ? hexval(s[3]) : -1, lo = n == 6 ? hexval(s[4]) : -1;
		if (hi >= 0 && lo >= 0 && !memcmp(s, "<0x", 3) && s[5] == '>') {
			char c = (char)(hi << 4 | lo);
			put(w, &c, 1);
		}
	}
}

int tok_piece(const struct tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap)
{
	struct wr w = { buf, buf ? cap : 0, 0, false };

	if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
		return -EINVAL;
	piece(t, id, render_special, &w);
	return w.n > INT_MAX ? -EOVERFLOW : (int)w.n;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool render_special,
	       char *buf, size_t cap)
{
	struct wr w = { buf, buf ? cap : 0, 0, false };

	if (!t || (!ids && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 0 || (uint32_t)ids[i] >= t->n_vocab)
			return -EINVAL;
		/* SPM drops the space prefix it added at encode time. */
		w.lstrip = i == 0 && t->add_space_prefix;
		piece(t, ids[i], render_special, &w);
		if (w.n > INT_MAX)
			return -EOVERFLOW;
	}
	return (int)w.n;
}
