/* Regex pre-tokenizers of byte-level BPE vocabularies, one list of regexes
 * per tokenizer.ggml.pre. The lists and the way they are applied follow
 * llama.cpp (llm_tokenizer_bpe, unicode_regex_split): every regex splits
 * each piece left by the previous one into its matches and the gaps between
 * them, and a piece is the whole subject of the match (lookaheads and `$`
 * stop at its end). PCRE2 (UTF + UCP) evaluates \p{L}, \p{N} and \s over
 * real Unicode properties where llama.cpp uses its own tables. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "engine/tok_impl.h"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3 RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"

struct pretok_type {
	const char *names[8];
	const char *re[TOK_MAX_REGEX];
	bool ignore_merges, add_bos;
};

static const struct pretok_type types[] = {
	{ .names = { "default" },
	  .re = { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" } },
	{ .names = { "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "mpt" },
	  .re = { RE_GPT2 } },
	{ .names = { "olmo", "jais", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4" }, .re = { RE_GPT2 } },
	{ .names = { "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral" }, .re = { RE_LLAMA3 }, .ignore_merges = true, .add_bos = true },
	{ .names = { "dbrx", "smaug-bpe", "chatglm-bpe", "glm4" }, .re = { RE_LLAMA3 } },
	{ .names = { "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez" }, .re = { RE_QWEN2 } },
	{ .names = { "deepseek-llm" },
	  .re = { "[\r\n]",
	    "\\s?["
		"A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}"
		"\\x{1c4}-\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}"
		"\\x{37f}\\x{386}\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}"
		"\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}"
		"\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}"
		"\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}"
		"\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}"
		"\\x{1f5b}\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}"
		"\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}"
		"\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}"
		"\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}"
		"\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}"
		"\\x{214e}\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}"
		"\\x{2cf2}\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}"
		"\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}"
		"\\x{fb13}-\\x{fb17}\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}"
		"\\x{104b0}-\\x{104d3}\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}"
		"\\x{118a0}-\\x{118df}\\x{1e900}-\\x{1e943}"
		"]+",
	    "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+", "\\s+$", RE_CJK, "\\p{N}+" } },
	{ .names = { "deepseek-coder" }, .re = { "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}" } },
	{ .names = { "falcon" },
	  .re = { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]" } },
	{ .names = { "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b" },
	  .re = { "\\p{N}", RE_GPT2 } },
	{ .names = { "poro-chat", "bloom", "gpt3-finnish" }, .re = { " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+" } },
	{ .names = { "viking" }, .re = { " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+", "\\p{N}" } },
	{ .names = { "tekken" },
	  .re = { "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
	  .ignore_merges = true, .add_bos = true },
	{ .names = { "gpt-4o" },
	  .re = { "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RE_CONTRACT "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RE_CONTRACT "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
};

static const struct pretok_type *find_type(const char *name, size_t len)
{
	if (!name || !len)
		return &types[0];
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		for (size_t j = 0; j < 8 && types[i].names[j]; j++)
			if (strlen(types[i].names[j]) == len && !memcmp(types[i].names[j], name, len))
				return &types[i];
	return NULL;
}

int tok_pretok_init(struct tok_pretok *p, const char *name, size_t name_len,
		    bool *ret_ignore_merges, bool *ret_add_bos, char *err, size_t errlen)
{
	const struct pretok_type *ty = find_type(name, name_len);

	memset(p, 0, sizeof(*p));
	if (!ty) {
		snprintf(err, errlen, "tokenizer.ggml.pre: unknown pre-tokenizer '%.*s'",
			 (int)(name_len > 64 ? 64 : name_len), name);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < TOK_MAX_REGEX && ty->re[i]; i++) {
		int ec;
		PCRE2_SIZE eoff;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)ty->re[i], PCRE2_ZERO_TERMINATED,
					       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY |
						       PCRE2_NO_UTF_CHECK,
					       &ec, &eoff, NULL);
		if (!re) {
			PCRE2_UCHAR msg[128];
			pcre2_get_error_message(ec, msg, sizeof(msg));
			snprintf(err, errlen, "tokenizer.ggml.pre: regex %u of '%.*s' at %zu: %s", i,
				 (int)name_len, name, (size_t)eoff, (const char *)msg);
			tok_pretok_free(p);
			return -EINVAL;
		}
		/* JIT is an optimisation: without it pcre2_match interprets. */
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
		p->re[p->n_re++] = re;
	}
	*ret_ignore_merges = ty->ignore_merges;
	*ret_add_bos = ty->add_bos;
	return 0;
}

void tok_pretok_free(struct tok_pretok *p)
{
	for (uint32_t i = 0; i < p->n_re; i++)
		pcre2_code_free(p->re[i]);
	p->n_re = 0;
}

struct span {
	size_t off, len;
};

struct spans {
	struct span *v;
	size_t n, cap;
};

static int spans_push(struct spans *s, size_t off, size_t len)
{
	if (!len)
		return 0;
	struct span *v = grow_array(s->v, &s->cap, s->n + 1, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->v[s->n++] = (struct span){ off, len };
	return 0;
}

/* Splits one piece [OFF, OFF+LEN) of TEXT by RE into OUT. */
static int split_piece(const pcre2_code *re, pcre2_match_data *md, const char *text, size_t off,
		       size_t len, struct spans *out)
{
	const PCRE2_SPTR subj = (PCRE2_SPTR)(text + off);
	size_t pos = 0, gap = 0;
	int ret;

	while (pos < len) {
		int rc = pcre2_match(re, subj, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0)
			return -EIO;
		const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		if (me == ms) {
			/* Empty match: step over one character, keep it in the gap. */
			if (ms >= len)
				break;
			pos = ms + tok_utf8_len(subj[ms]);
			continue;
		}
		if ((ret = spans_push(out, off + gap, ms - gap)) < 0 ||
		    (ret = spans_push(out, off + ms, me - ms)) < 0)
			return ret;
		gap = pos = me;
	}
	return spans_push(out, off + gap, len - gap);
}

int tok_pretok_split(const struct tok_pretok *p, const char *text, size_t len,
		     int (*fn)(void *arg, size_t off, size_t len), void *arg)
{
	struct spans a = { 0 }, b = { 0 };
	pcre2_match_data *md = NULL;
	int ret = spans_push(&a, 0, len);

	if (ret < 0)
		goto out;
	for (uint32_t r = 0; r < p->n_re; r++) {
		if (!md && !(md = pcre2_match_data_create(1, NULL))) {
			ret = -ENOMEM;
			goto out;
		}
		b.n = 0;
		for (size_t i = 0; i < a.n; i++)
			if ((ret = split_piece(p->re[r], md, text, a.v[i].off, a.v[i].len, &b)) < 0)
				goto out;
		struct spans tmp = a;
		a = b;
		b = tmp;
	}
	for (size_t i = 0; i < a.n; i++)
		if ((ret = fn(arg, a.v[i].off, a.v[i].len)) < 0)
			goto out;
	ret = 0;
out:
	pcre2_match_data_free(md);
	free(a.v);
	free(b.v);
	return ret;
}
