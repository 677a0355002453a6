/* Tokenizer construction from GGUF metadata: vocabulary, scores, token
 * types, merges, special tokens and the flags llama.cpp derives from them
 * (llama_vocab::impl::load). Encoding and decoding are in tok_codec.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tok_impl.h"

#define MAX_VOCAB (1u << 24)
#define MAX_MERGES (1u << 24)

/* GGUF token types (gguf-py TokenType). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

#define ERR(...) snprintf(err, err ? errlen : 0, __VA_ARGS__)

uint32_t tok_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static int map_init(struct tok_map *m, uint32_t n)
{
	uint32_t size = 16;

	while (size < 2 * (uint64_t)n)
		size *= 2;
	m->slots = calloc(size, sizeof(*m->slots));
	if (!m->slots)
		return -ENOMEM;
	m->mask = size - 1;
	return 0;
}

int32_t tok_lookup(const struct tokenizer *t, const char *text, size_t len)
{
	uint32_t h = tok_hash(text, len);

	for (uint32_t i = h & t->vocab.mask;; i = (i + 1) & t->vocab.mask) {
		const struct tok_slot *s = &t->vocab.slots[i];
		if (!s->val1)
			return -1;
		uint32_t id = s->val1 - 1;
		if (s->hash == h && t->text_len[id] == len && !memcmp(tok_text_of(t, id), text, len))
			return (int32_t)id;
	}
}

int32_t tok_merge_rank(const struct tokenizer *t, const char *left, size_t llen, size_t rlen)
{
	size_t len = llen + rlen;
	uint32_t h;

	if (!t->n_merges)
		return -1;
	h = tok_hash(left, len);
	for (uint32_t i = h & t->merges.mask;; i = (i + 1) & t->merges.mask) {
		const struct tok_slot *s = &t->merges.slots[i];
		if (!s->val1)
			return -1;
		uint32_t r = s->val1 - 1;
		if (s->hash == h && t->merge_len[r] == len && t->merge_split[r] == llen &&
		    !memcmp(t->merge_arena + t->merge_off[r], left, len))
			return (int32_t)r;
	}
}

/* Copies the vocabulary and fills the text -> id map. */
static int load_tokens(struct tokenizer *t, const struct gguf_kv *kv, char *err, size_t errlen)
{
	const struct gguf_str *s = kv->v.arr.strs;
	uint64_t total = 0;
	uint32_t n = t->n_vocab;
	char empty[32];

	for (uint32_t i = 0; i < n; i++)
		total += (s[i].len ? s[i].len : sizeof(empty)) + 1;
	if (total > UINT32_MAX) {
		ERR("tokenizer.ggml.tokens: %llu bytes of text is too much", (unsigned long long)total);
		return -EINVAL;
	}
	t->arena = malloc(total);
	t->text_off = malloc(n * sizeof(*t->text_off));
	t->text_len = malloc(n * sizeof(*t->text_len));
	if (!t->arena || !t->text_off || !t->text_len || map_init(&t->vocab, n) < 0)
		return -ENOMEM;

	uint32_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		const char *p = s[i].ptr;
		size_t len = s[i].len;
		if (!len) {
			/* As llama.cpp: an empty token gets a placeholder name. */
			len = (size_t)snprintf(empty, sizeof(empty), "[EMPTY_%u]", i);
			p = empty;
		}
		memcpy(t->arena + off, p, len);
		t->arena[off + len] = '\0';
		t->text_off[i] = off;
		t->text_len[i] = (uint32_t)len;
		off += (uint32_t)len + 1;

		uint32_t h = tok_hash(p, len), j;
		for (j = h & t->vocab.mask; t->vocab.slots[j].val1; j = (j + 1) & t->vocab.mask) {
			uint32_t o = t->vocab.slots[j].val1 - 1;
			if (t->vocab.slots[j].hash == h && t->text_len[o] == len &&
			    !memcmp(tok_text_of(t, o), p, len)) {
				ERR("tokenizer.ggml.tokens: duplicate token '%.*s' at ids %u and %u",
				    (int)(len > 64 ? 64 : len), p, o, i);
				return -EINVAL;
			}
		}
		t->vocab.slots[j] = (struct tok_slot){ h, i + 1 };
	}
	return 0;
}

/* Optional per-token array KEY of one of the numeric types; NULL if absent. */
static int opt_array(const struct gguf *g, const char *key, enum gguf_vtype a, enum gguf_vtype b,
		     uint32_t n, const struct gguf_kv **ret, char *err, size_t errlen)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);

	*ret = NULL;
	if (!kv)
		return 0;
	if (kv->type != GGUF_ARRAY || (kv->v.arr.type != a && kv->v.arr.type != b)) {
		ERR("%s: unexpected type %d", key, kv->type == GGUF_ARRAY ? (int)kv->v.arr.type : (int)kv->type);
		return -EINVAL;
	}
	if (kv->v.arr.n < n) {
		ERR("%s: %llu entries for %u tokens", key, (unsigned long long)kv->v.arr.n, n);
		return -EINVAL;
	}
	*ret = kv;
	return 0;
}

static int load_scores_types(struct tokenizer *t, const struct gguf *g, char *err, size_t errlen)
{
	const struct gguf_kv *sc, *ty;
	uint32_t n = t->n_vocab;
	int ret;

	if ((ret = opt_array(g, "tokenizer.ggml.scores", GGUF_F32, GGUF_I32, n, &sc, err, errlen)) < 0 ||
	    (ret = opt_array(g, "tokenizer.ggml.token_type", GGUF_I32, GGUF_I32, n, &ty, err, errlen)) < 0)
		return ret;
	t->score = calloc(n, sizeof(*t->score));
	t->attr = calloc(n, sizeof(*t->attr));
	if (!t->score || !t->attr)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (sc)
			t->score[i] = (float)gguf_arr_f64(sc, i);
		int64_t type = ty ? gguf_arr_i64(ty, i) : TT_NORMAL;
		switch (type) {
		case TT_NORMAL: t->attr[i] = TOK_ATTR_NORMAL; break;
		case TT_UNKNOWN: t->attr[i] = TOK_ATTR_UNKNOWN; break;
		case TT_CONTROL: t->attr[i] = TOK_ATTR_CONTROL; break;
		case TT_USER_DEFINED: t->attr[i] = TOK_ATTR_USER_DEFINED; break;
		case TT_UNUSED: t->attr[i] = TOK_ATTR_UNUSED; break;
		case TT_BYTE: t->attr[i] = TOK_ATTR_BYTE; break;
		default: t->attr[i] = 0; break;
		}
	}
	return 0;
}

static int load_merges(struct tokenizer *t, const struct gguf *g, char *err, size_t errlen)
{
	const struct gguf_kv *kv;
	int ret = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &kv, err, errlen);

	if (ret == -ENOENT) {
		ERR("tokenizer.ggml.merges: missing (required by a gpt2 tokenizer)");
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if (kv->v.arr.n > MAX_MERGES) {
		ERR("tokenizer.ggml.merges: %llu merges is too many", (unsigned long long)kv->v.arr.n);
		return -EINVAL;
	}
	uint32_t n = (uint32_t)kv->v.arr.n;
	const struct gguf_str *s = kv->v.arr.strs;
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++)
		total += s[i].len;
	if (total > UINT32_MAX) {
		ERR("tokenizer.ggml.merges: %llu bytes of text is too much", (unsigned long long)total);
		return -EINVAL;
	}
	t->merge_arena = malloc(total + 1);
	t->merge_off = malloc((n + 1) * sizeof(*t->merge_off));
	t->merge_len = malloc((n + 1) * sizeof(*t->merge_len));
	t->merge_split = malloc((n + 1) * sizeof(*t->merge_split));
	if (!t->merge_arena || !t->merge_off || !t->merge_len || !t->merge_split ||
	    map_init(&t->merges, n) < 0)
		return -ENOMEM;

	uint32_t off = 0;
	for (uint32_t r = 0; r < n; r++) {
		const char *p = s[r].ptr;
		uint32_t len = (uint32_t)s[r].len, split;
		/* "left right", split at the first space after the first byte. */
		const char *sp = len > 1 ? memchr(p + 1, ' ', len - 1) : NULL;
		if (!sp)
			continue;
		split = (uint32_t)(sp - p);
		memcpy(t->merge_arena + off, p, split);
		memcpy(t->merge_arena + off + split, sp + 1, len - split - 1);
		t->merge_off[r] = off;
		t->merge_len[r] = len - 1;
		t->merge_split[r] = split;

		uint32_t h = tok_hash(t->merge_arena + off, len - 1), j;
		bool dup = false;
		for (j = h & t->merges.mask; t->merges.slots[j].val1; j = (j + 1) & t->merges.mask) {
			uint32_t o = t->merges.slots[j].val1 - 1;
			if (t->merges.slots[j].hash == h && t->merge_len[o] == len - 1 &&
			    t->merge_split[o] == split &&
			    !memcmp(t->merge_arena + t->merge_off[o], t->merge_arena + off, len - 1)) {
				dup = true; /* the first rank wins, as llama.cpp's emplace */
				break;
			}
		}
		if (!dup)
			t->merges.slots[j] = (struct tok_slot){ h, r + 1 };
		off += len - 1;
	}
	t->n_merges = n;
	return 0;
}

/* Special id KEY if present and in range (llama.cpp keeps the default for an
 * out-of-range id such as 0xFFFFFFFF). */
static void special_id(const struct gguf *g, const char *key, uint32_t n, int32_t *id)
{
	uint32_t v;

	if (*id >= 0 && (uint32_t)*id >= n)
		*id = -1;
	if (gguf_get_u32(g, key, &v, NULL, 0) == 0 && v < n)
		*id = (int32_t)v;
}

static void opt_bool(const struct gguf *g, const char *key, bool *v)
{
	bool b;

	if (gguf_get_bool(g, key, &b, NULL, 0) == 0)
		*v = b;
}

static bool text_is(const struct tokenizer *t, uint32_t id, const char *s)
{
	size_t n = strlen(s);
	return t->text_len[id] == n && !memcmp(tok_text_of(t, id), s, n);
}

static bool text_in(const struct tokenizer *t, uint32_t id, const char *const *list)
{
	for (; *list; list++)
		if (text_is(t, id, *list))
			return true;
	return false;
}

/* llama.cpp recognises end-of-turn and end-of-generation tokens by text. */
static const char *const eot_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
	"_<EOT>", "<｜end▁of▁sentence｜>", NULL,
};
static const char *const eog_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
	"<EOT>", "_<EOT>", "<|end_of_text|>",
	/* FIM pad / repo / file separator */
	"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>",
	"<fim-repo>", "<REPO>", "<|file_sep|>", NULL,
};
static const char *const eom_texts[] = { "<|eom_id|>", NULL };

static void mark_eog(struct tokenizer *t, int32_t id)
{
	if (id >= 0)
		t->attr[id] |= TOK_ATTR_EOG;
}

static void find_eog(struct tokenizer *t)
{
	for (uint32_t i = 0; i < t->n_vocab; i++) {
		char c = tok_text_of(t, i)[0];
		if (c != '<' && c != '_') /* how every text in the lists starts */
			continue;
		bool eot = t->eot < 0 && text_in(t, i, eot_texts);
		bool eom = t->eom < 0 && text_in(t, i, eom_texts);
		if (eot)
			t->eot = (int32_t)i;
		if (eom)
			t->eom = (int32_t)i;
		if (eot || eom || text_in(t, i, eog_texts))
			t->attr[i] |= TOK_ATTR_EOG | TOK_ATTR_CONTROL;
	}
	mark_eog(t, t->eos);
	mark_eog(t, t->eot);
	mark_eog(t, t->eom);
}

static int cmp_special(const void *a, const void *b, void *arg)
{
	const struct tokenizer *t = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	uint32_t lx = t->text_len[x], ly = t->text_len[y];

	if (lx != ly)
		return lx > ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int build_specials(struct tokenizer *t, const struct gguf *g)
{
	struct gguf_str name;
	bool phi3 = false;

	if (gguf_get_str(g, "general.name", &name, NULL, 0) == 0) {
		char low[64] = { 0 };
		size_t n = name.len < sizeof(low) - 1 ? name.len : sizeof(low) - 1;
		for (size_t i = 0; i < n; i++)
			low[i] = (char)(name.ptr[i] >= 'A' && name.ptr[i] <= 'Z' ? name.ptr[i] + 32 : name.ptr[i]);
		phi3 = strstr(low, "phi-3") || strstr(low, "phi3");
	}
	t->specials = malloc(t->n_vocab * sizeof(*t->specials));
	if (!t->specials)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n_vocab; i++) {
		if (!(t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)))
			continue;
		t->specials[t->n_specials++] = (int32_t)i;
		/* llama.cpp: Phi-3's special tokens eat the spaces after them. */
		if (phi3)
			t->attr[i] |= TOK_ATTR_RSTRIP;
	}
	if (phi3) {
		static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>", NULL };
		for (uint32_t i = 0; i < t->n_vocab; i++) {
			if (text_is(t, i, "</s>"))
				t->attr[i] |= TOK_ATTR_RSTRIP;
			if (text_in(t, i, keep))
				t->attr[i] &= (uint16_t)~TOK_ATTR_RSTRIP;
		}
	}
	qsort_r(t->specials, t->n_specials, sizeof(*t->specials), cmp_special, t);
	return 0;
}

static void build_byte_tables(struct tokenizer *t)
{
	static const char hex[] = "0123456789ABCDEF";

	for (int b = 0; b < 256; b++) {
		char name[7] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0 };
		char c = (char)b;
		t->char1_tok[b] = tok_lookup(t, &c, 1);
		t->byte_tok[b] = tok_lookup(t, name, 6);
		if (t->byte_tok[b] < 0)
			t->byte_tok[b] = t->char1_tok[b];
	}
}

static int load(struct tokenizer *t, const struct gguf *g, char *err, size_t errlen)
{
	struct gguf_str model, pre = { NULL, 0 };
	const struct gguf_kv *toks;
	int ret;

	ret = gguf_get_str(g, "tokenizer.ggml.model", &model, err, errlen);
	if (ret == -ENOENT) {
		ERR("tokenizer.ggml.model: missing");
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if (gguf_str_eq(model, "llama")) {
		t->kind = TOK_SPM;
		t->bos = 1, t->eos = 2, t->unk = 0;
		t->add_bos = true, t->add_space_prefix = true;
	} else if (gguf_str_eq(model, "gpt2")) {
		t->kind = TOK_BPE;
		t->bos = 11, t->eos = 11, t->unk = -1;
	} else {
		ERR("tokenizer.ggml.model: unsupported '%.*s' (want llama or gpt2)",
		    (int)(model.len > 64 ? 64 : model.len), model.ptr);
		return -EINVAL;
	}
	t->eot = t->eom = -1;

	ret = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks, err, errlen);
	if (ret == -ENOENT) {
		ERR("tokenizer.ggml.tokens: missing");
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if (!toks->v.arr.n || toks->v.arr.n > MAX_VOCAB) {
		ERR("tokenizer.ggml.tokens: %llu tokens (want 1..%u)", (unsigned long long)toks->v.arr.n, MAX_VOCAB);
		return -EINVAL;
	}
	t->n_vocab = (uint32_t)toks->v.arr.n;
	if ((ret = load_tokens(t, toks, err, errlen)) < 0 ||
	    (ret = load_scores_types(t, g, err, errlen)) < 0)
		return ret;

	if (t->kind == TOK_BPE) {
		bool ignore_merges = false, add_bos = false;
		if (gguf_find_kv(g, "tokenizer.ggml.pre") &&
		    (ret = gguf_get_str(g, "tokenizer.ggml.pre", &pre, err, errlen)) < 0)
			return ret;
		if ((ret = load_merges(t, g, err, errlen)) < 0 ||
		    (ret = tok_pretok_init(&t->pretok, pre.ptr, pre.len, &ignore_merges, &add_bos, err,
					   errlen)) < 0)
			return ret;
		t->ignore_merges = ignore_merges;
		t->add_bos = add_bos;
	}
	opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);

	special_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos);
	special_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos);
	special_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot);
	special_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom);
	special_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk);
	opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
	opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos);
	if ((t->add_bos && t->bos < 0) || (t->add_eos && t->eos < 0)) {
		ERR("tokenizer.ggml.add_%s_token is true, but there is no %s token",
		    t->add_bos && t->bos < 0 ? "bos" : "eos", t->add_bos && t->bos < 0 ? "BOS" : "EOS");
		return -EINVAL;
	}

	find_eog(t);
	build_byte_tables(t);
	return build_specials(t, g);
}

int tok_create(const struct gguf *g, struct tokenizer **ret, char *err, size_t errlen)
{
	struct tokenizer *t;
	int r;

	if (!g || !ret)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	r = load(t, g, err, errlen);
	if (r < 0) {
		if (r == -ENOMEM)
			ERR("tokenizer: out of memory");
		tok_destroy(t);
		return r;
	}
	*ret = t;
	return 0;
}

void tok_destroy(struct tokenizer *t)
{
	if (!t)
		return;
	tok_pretok_free(&t->pretok);
	free(t->arena);
	free(t->text_off);
	free(t->text_len);
	free(t->score);
	free(t->attr);
	free(t->vocab.slots);
	free(t->merge_arena);
	free(t->merge_off);
	free(t->merge_len);
	free(t->merge_split);
	free(t->merges.slots);
	free(t->specials);
	free(t);
}

uint32_t tok_n_vocab(const struct tokenizer *t)
{
	return t->n_vocab;
}

int32_t tok_bos(const struct tokenizer *t)
{
	return t->bos;
}

int32_t tok_eos(const struct tokenizer *t)
{
	return t->eos;
}

bool tok_add_bos(const struct tokenizer *t)
{
	return t->add_bos;
}

bool tok_add_eos(const struct tokenizer *t)
{
	return t->add_eos;
}

bool tok_is_eog(const struct tokenizer *t, int32_t id)
{
	return id >= 0 && (uint32_t)id < t->n_vocab && (t->attr[id] & TOK_ATTR_EOG);
}

const char *tok_text(const struct tokenizer *t, int32_t id, size_t *ret_len)
{
	if (id < 0 || (uint32_t)id >= t->n_vocab)
		return NULL;
	if (ret_len)
		*ret_len = t->text_len[id];
	return tok_text_of(t, id);
}
