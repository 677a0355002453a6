/* Tokenizers built from GGUF metadata: SentencePiece style
 * (tokenizer.ggml.model = "llama") and byte-level BPE ("gpt2", with the
 * pre-tokenizer named by tokenizer.ggml.pre). Immutable after creation, so
 * one tokenizer is shared by every thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gguf;
struct tokenizer;

int tok_create(const struct gguf *g, struct tokenizer **ret, char *err, size_t errlen);
void tok_destroy(struct tokenizer *t); /* accepts NULL */

uint32_t tok_n_vocab(const struct tokenizer *t);
int32_t tok_bos(const struct tokenizer *t); /* -1 if none */
int32_t tok_eos(const struct tokenizer *t); /* -1 if none */
bool tok_add_bos(const struct tokenizer *t);
bool tok_add_eos(const struct tokenizer *t);
/* End of generation: EOS, EOT and the like (not BOS). */
bool tok_is_eog(const struct tokenizer *t, int32_t id);
/* The token's text as stored in the vocabulary (e.g. "▁the", "<0x0A>"). */
const char *tok_text(const struct tokenizer *t, int32_t id, size_t *ret_len);

/* Encodes LEN bytes of TEXT. ADD_SPECIAL adds BOS/EOS as the model asks;
 * PARSE_SPECIAL recognises control-token text (e.g. "<|im_start|>") in TEXT.
 * Writes at most CAP ids to OUT and returns the total number of ids (which
 * may exceed CAP: call again with a bigger buffer), or a negative errno. */
int tok_encode(const struct tokenizer *t, const char *text, size_t len,
	       bool add_special, bool parse_special, int32_t *out, size_t cap);

/* Bytes token ID stands for in text ("▁" becomes a space, <0xNN> the byte,
 * byte-level BPE symbols their bytes). Control tokens give "" unless
 * RENDER_SPECIAL. Returns the length (may exceed CAP, nothing written past
 * CAP) or a negative errno (-EINVAL for an id out of range). */
int tok_piece(const struct tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap);

/* Decodes a sequence to text (as llama.cpp detokenize: SPM drops the space
 * prefix added at encode time). Same return convention as tok_piece. */
int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n,
	       bool render_special, char *buf, size_t cap);

/* Incremental detokenizer for streaming: never emits half a UTF-8 sequence. */
struct tok_stream {
	const struct tokenizer *tok;
	uint8_t pending[8];
	uint32_t n_pending;
};
void tok_stream_init(struct tok_stream *s, const struct tokenizer *t);
/* Appends token ID; writes the complete UTF-8 bytes now available to OUT
 * (CAP >= 64 always suffices for one token) and returns their count, or a
 * negative errno (-ENOBUFS, nothing consumed, when a long piece does not fit
 * CAP: retry with a bigger buffer). Invalid bytes come out as U+FFFD. */
int tok_stream_push(struct tok_stream *s, int32_t id, char *out, size_t cap);
/* Emits what is left (invalid partial sequences as U+FFFD). */
int tok_stream_flush(struct tok_stream *s, char *out, size_t cap);
