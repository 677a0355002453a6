/* The model's insides, shared by model.c (loading), forward.c (the graph
 * and the step) and kv_cache.c. Not for other layers. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"
#include "kernels/backend.h"

struct gguf;

struct layer_weights {
	const float *attn_norm, *ffn_norm; /* [n_embd] */
	struct gi_mat wq, wk, wv;          /* [n_embd] -> [q_dim], [kv_dim], [kv_dim] */
	const float *bq, *bk, *bv;         /* qwen2 biases or NULL */
	struct gi_mat wo;                  /* [q_dim] -> [n_embd] */
	struct gi_mat gate, up;            /* [n_embd] -> [n_ff] */
	struct gi_mat down;                /* [n_ff] -> [n_embd] */
};

/* Activations for the largest step, in backend memory; rows are tokens. */
struct model_acts {
	float *x;       /* [max_tokens][n_embd] residual stream */
	float *xb;      /* [max_tokens][n_embd] normed input of a block */
	float *q;       /* [max_tokens][q_dim] */
	float *k, *v;   /* [max_tokens][kv_dim] */
	float *att;     /* [max_tokens][q_dim] attention output */
	float *hb, *hb2; /* [max_tokens][n_ff] gate and up */
	float *logits;  /* [max_out][n_vocab] */
};

/* Host arrays of the step record, filled by model_step (no allocation). */
struct step_arrays {
	int32_t *tokens;     /* [max_tokens] */
	uint32_t *pos, *seq; /* [max_tokens] */
	uint32_t *out_rows;  /* [max_out] */
	uint32_t *out_seq;   /* [max_out] which step_seq asked for out row i */
	struct gi_step_seq *seqs; /* [max_seqs] */
};

struct model {
	struct gguf *gguf;
	struct tokenizer *tok;
	struct gi_backend *be;
	struct gi_graph *graph;
	struct model_info info;
	char arch[16], name[128];
	struct gi_attn_params attn;
	float eps;
	uint32_t q_dim, kv_dim;
	struct gi_mat tok_embd, output; /* output may be tok_embd (tied) */
	const float *out_norm;
	struct layer_weights *layers;   /* [n_layer] */
	uint32_t max_tokens, max_seqs, max_out;
	struct model_acts a;
	struct step_arrays st;
	enum gi_type kv_type;
};

struct kv_cache {
	struct model *m;
	struct gi_kv_pool pool;
};

/* forward.c: builds and frees the step graph and activations. */
int model_graph_create(struct model *m, char *err, size_t errlen);
void model_graph_free(struct model *m);
