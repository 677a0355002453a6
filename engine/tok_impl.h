/* Tokenizer internals shared by tokenizer.c (vocabulary, special tokens,
 * pieces), tok_spm.c, tok_bpe.c, tok_pretok.c and tok_utf8.c. Nothing here is
 * visible outside engine/. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tokenizer.h"

enum tok_kind {
	TOK_SPM, /* tokenizer.ggml.model = "llama" */
	TOK_BPE, /* tokenizer.ggml.model = "gpt2" */
};

/* Token attributes, from tokenizer.ggml.token_type plus what we infer. */
enum {
	TOK_ATTR_UNKNOWN = 1u << 0,
	TOK_ATTR_UNUSED = 1u << 1,
	TOK_ATTR_NORMAL = 1u << 2,
	TOK_ATTR_CONTROL = 1u << 3,
	TOK_ATTR_USER_DEFINED = 1u << 4,
	TOK_ATTR_BYTE = 1u << 5,
	TOK_ATTR_RSTRIP = 1u << 6, /* eats the spaces after it (llama.cpp's Phi-3 rule) */
	TOK_ATTR_EOG = 1u << 7,    /* ends generation */
};

/* Open-addressing hash table from a byte string to a value; the strings
 * live elsewhere and are compared through the owner's key arrays. */
struct tok_slot {
	uint32_t hash;
	uint32_t val1; /* value + 1; 0 = empty */
};

struct tok_map {
	struct tok_slot *slots;
	uint32_t mask;
};

uint32_t tok_hash(const char *s, size_t n);

#define TOK_MAX_REGEX 8

/* Regex pre-tokenizer (byte-level BPE only): the regexes llama.cpp applies
 * one after the other, each splitting every piece the previous one left into
 * its matches and the gaps between them. */
struct tok_pretok {
	void *re[TOK_MAX_REGEX]; /* pcre2_code_8 * */
	uint32_t n_re;
};

struct tokenizer {
	enum tok_kind kind;
	uint32_t n_vocab;
	char *arena;           /* every token text, NUL-terminated */
	uint32_t *text_off;    /* [n_vocab] */
	uint32_t *text_len;    /* [n_vocab] */
	float *score;          /* [n_vocab] */
	uint16_t *attr;        /* [n_vocab] TOK_ATTR_* */
	struct tok_map vocab;  /* text -> id */

	/* BPE merges: "left right" stored as left||right with the split point. */
	uint32_t n_merges;
	char *merge_arena;
	uint32_t *merge_off, *merge_len, *merge_split;
	struct tok_map merges; /* left||right (hash of the joined bytes) -> rank */

	int32_t bos, eos, eot, eom, unk;
	bool add_bos, add_eos, add_space_prefix, ignore_merges;

	int32_t byte_tok[256];  /* SPM byte fallback: <0xNN> (or the byte itself) */
	int32_t char1_tok[256]; /* BPE: token whose text is this single byte */

	/* Control, user-defined and unknown tokens, longest text first. */
	int32_t *specials;
	uint32_t n_specials;

	struct tok_pretok pretok;
};

static inline const char *tok_text_of(const struct tokenizer *t, int32_t id)
{
	return t->arena + t->text_off[id];
}

/* -1 if TEXT (LEN bytes) is not a token. */
int32_t tok_lookup(const struct tokenizer *t, const char *text, size_t len);
/* Rank of merging LEFT (LLEN bytes) with the RLEN bytes that follow it in
 * memory; -1 if no such merge. */
int32_t tok_merge_rank(const struct tokenizer *t, const char *left, size_t llen, size_t rlen);

/* Growable id output: keeps counting past CAP, writes only below it. */
struct tok_out {
	int32_t *ids;
	size_t cap;
	size_t n;
};

static inline void tok_out_push(struct tok_out *o, int32_t id)
{
	if (o->n < o->cap)
		o->ids[o->n] = id;
	o->n++;
}

/* SPM: encodes TEXT (spaces already escaped to U+2581). */
int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_out *out);
/* BPE: pre-tokenizes then merges raw TEXT. */
int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_out *out);
/* The byte a byte-level BPE symbol (GPT-2 bytes_to_unicode) stands for, or -1. */
int tok_bpe_cpt_to_byte(uint32_t cpt);

/* Pre-tokenizer for tokenizer.ggml.pre NAME (NULL or "" = llama.cpp default).
 * Sets *RET_IGNORE_MERGES / *RET_ADD_BOS for the types that imply them
 * (llama3 and the like); -EINVAL with a message for an unknown NAME. */
int tok_pretok_init(struct tok_pretok *p, const char *name, size_t name_len,
		    bool *ret_ignore_merges, bool *ret_add_bos, char *err, size_t errlen);
void tok_pretok_free(struct tok_pretok *p);
/* Splits valid UTF-8 TEXT into words; calls FN(ARG, off, len) for each in
 * order. Returns 0 or a negative errno. */
int tok_pretok_split(const struct tok_pretok *p, const char *text, size_t len,
		     int (*fn)(void *arg, size_t off, size_t len), void *arg);

/* UTF-8 helpers. Length of the sequence a lead byte announces (llama.cpp's
 * rule: continuation and invalid bytes count as 1). */
static inline size_t tok_utf8_len(uint8_t lead)
{
	static const uint8_t lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
	return lookup[lead >> 4];
}
/* Decodes one code point at S (N > 0 bytes left) the way llama.cpp does
 * (lenient: overlong forms accepted); returns the bytes consumed and the
 * code point in *CPT, or 1 with *CPT = U+FFFD for an invalid sequence. */
size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cpt);
/* Writes CPT as UTF-8 to OUT (4 bytes room); returns the length. */
size_t tok_utf8_encode(uint32_t cpt, char *out);
/* Length of the longest prefix of S (N bytes) made of complete, valid UTF-8
 * sequences, stopping early at an invalid byte; *RET_INCOMPLETE says whether
 * the stop is a valid but unfinished sequence at the end. */
size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n, bool *ret_incomplete);
/* Rewrites TEXT as valid UTF-8 (invalid bytes become U+FFFD as llama.cpp's
 * decoder makes them) into OUT (3 * LEN bytes room); returns the length. */
size_t tok_utf8_sanitize(const char *text, size_t len, char *out);
