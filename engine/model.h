/* A loaded model: weights in backend memory, its tokenizer and chat template,
 * and the forward pass over a paged KV cache. One step runs many sequences,
 * each at its own position, mixing prefill chunks and single decode tokens.
 * model_step() is called from one thread at a time (the engine thread); the
 * backend parallelises inside it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/chat.h"

struct model;
struct tokenizer;
struct kv_cache;

#define KV_BLOCK_TOKENS 16

struct model_opts {
	size_t size;          /* sizeof(struct model_opts) */
	const char *device;   /* "auto", "cpu", "cuda", "cuda:N"; NULL = auto */
	int n_threads;        /* CPU backend threads; 0 = all online CPUs */
	uint32_t max_batch_tokens; /* largest step (sum of n_tokens); 0 = 512 */
	uint32_t max_seqs;         /* most sequences in one step; 0 = 256 */
};

struct model_info {
	const char *arch;      /* "llama", "qwen2" */
	const char *name;      /* general.name or "" */
	const char *backend;   /* "cpu (avx512, 2 threads)" */
	uint32_t n_vocab, n_ctx_train, n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff;
	size_t weight_bytes;   /* bytes of tensor data the forward pass reads */
	size_t kv_bytes_per_block; /* all layers, K and V, KV_BLOCK_TOKENS tokens */
	size_t scratch_bytes;  /* activations and logits for the largest step */
	enum chat_tmpl chat;
	bool chat_known;       /* false: tokenizer.chat_template unrecognised, chatml used */
};

int model_load(const char *path, const struct model_opts *o, struct model **ret,
	       char *err, size_t errlen);
void model_free(struct model *m); /* accepts NULL */
const struct model_info *model_get_info(const struct model *m);
const struct tokenizer *model_tokenizer(const struct model *m);

/* The paged KV pool: N_BLOCKS blocks of KV_BLOCK_TOKENS positions, all
 * layers, in backend memory. Which block belongs to which sequence is the
 * caller's business (block tables below). */
int kv_cache_create(struct model *m, uint32_t n_blocks, struct kv_cache **ret);
void kv_cache_free(struct kv_cache *kv); /* accepts NULL */
uint32_t kv_cache_n_blocks(const struct kv_cache *kv);

struct step_seq {
	const uint32_t *blocks; /* block table: block i holds positions [16i, 16i+16) */
	uint32_t n_blocks;      /* must cover pos + n_tokens */
	uint32_t pos;           /* position of tokens[0]; KV of [0, pos) is already in blocks */
	const int32_t *tokens;
	uint32_t n_tokens;      /* >= 1 */
	float *logits;          /* NULL: none wanted; else n_vocab floats for the last token */
};

/* Runs one forward step. Returns 0, or -EINVAL (bad token id, block id,
 * table too short, too many tokens) without touching any KV. */
int model_step(struct model *m, struct kv_cache *kv, const struct step_seq *seqs, uint32_t n);
