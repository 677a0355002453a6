/* The one interface between engine/ and kernels/.
 *
 * Design.
 *  - Memory is backend memory. The engine asks the backend for it
 *    (gi_backend_alloc for the KV pool and activations, gi_backend_map for
 *    weights that sit in the GGUF mapping) and only ever holds the returned
 *    addresses; it never dereferences them. The CPU backend hands back host
 *    pointers (weights zero-copy, straight from the mmap, except the Q4_0
 *    and Q8_0 matmul weights it packs into its own layout once, at graph
 *    creation: kernels/cpu/repack.h); a GPU backend
 *    returns device pointers (weights uploaded once at load, the KV pool in
 *    device memory).
 *  - The forward pass is described once, at load: a list of nodes (struct
 *    gi_node) whose tensors are fixed backend addresses. What changes from one
 *    step to the next (how many tokens, which tokens, their positions and
 *    sequences, the block tables, which rows want logits, which KV pool) is not
 *    in the graph but in a small step record (struct gi_step). A GPU backend
 *    copies that record to the device in one transfer and replays a graph it
 *    captured once per token-count bucket; the CPU backend walks the nodes
 *    with all its threads, a spin barrier between nodes, so a step costs one
 *    wake-up and not one per op.
 *  - Execution is asynchronous: gi_graph_run queues the step, gi_backend_sync
 *    waits for it, gi_backend_read copies results (logits) back to the host.
 *    The CPU backend runs synchronously, which satisfies the same contract.
 *  - Ops are coarse and fused where it removes a pass over memory or a
 *    barrier: one MATMUL node multiplies one input by up to three weights
 *    (Q/K/V, gate/up) and can add a bias or accumulate into the residual;
 *    ROPE_KV rotates Q and K and stores K and V into the paged pool in one
 *    pass; ATTN reads the pool through each sequence's block table. Weight
 *    formats differ only inside the matmul and embedding ops.
 *  - Scratch the backend needs for itself (quantized activations, partial
 *    sums) is sized from the graph at gi_graph_create: a step allocates
 *    nothing.
 *  - kernels/backend.c is the front: it picks the backend for the device
 *    string, runs the checks common to all (graph shapes, step sizes) and
 *    dispatches through the backend's table (backend_impl.h). A CUDA backend
 *    is one more table; the engine does not change.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

struct gi_backend;
struct gi_graph;

struct gi_backend_opts {
	size_t size;        /* sizeof(struct gi_backend_opts) */
	const char *device; /* "auto", "cpu"; NULL = auto */
	int n_threads;      /* CPU threads; 0 = all online CPUs */
};

/* Creates a backend. -ENODEV (message in ERR) for a device that is not
 * available, -EINVAL for a malformed device string. */
int gi_backend_create(const struct gi_backend_opts *o, struct gi_backend **ret, char *err,
		      size_t errlen);
void gi_backend_free(struct gi_backend *b); /* accepts NULL */
/* Human-readable description, e.g. "cpu (avx512, 2 threads)". */
const char *gi_backend_name(const struct gi_backend *b);

/* Backend memory, zeroed, aligned to 64 bytes. -ENOMEM. */
int gi_backend_alloc(struct gi_backend *b, size_t bytes, void **ret);
void gi_backend_release(struct gi_backend *b, void *mem); /* accepts NULL */
/* Makes BYTES of read-only host memory (the weights in the GGUF mapping)
 * usable by the backend and returns its backend address. The CPU backend
 * returns HOST itself; HOST must outlive the backend's use of it. HOST must
 * be a read-only file mapping: a backend that copies a weight into its own
 * layout (the CPU backend packs Q4_0/Q8_0 matmul weights when a graph is
 * created) drops the source pages from memory (MADV_DONTNEED); they are
 * read back from the file if touched again. -ENOMEM. */
int gi_backend_map(struct gi_backend *b, const void *host, size_t bytes, const void **ret);
/* Copies BYTES from backend memory SRC to host DST (waits for queued work). */
int gi_backend_read(struct gi_backend *b, void *dst, const void *src, size_t bytes);

/* ---- graph ---------------------------------------------------------------- */

/* A weight matrix in backend memory: N rows of K elements of TYPE, row-major
 * (the GGUF layout: ne[0] = K, ne[1] = N). */
struct gi_mat {
	enum gi_type type;
	uint32_t k, n;
	const void *data;
};

enum gi_op {
	GI_OP_EMBED,    /* dst[t] = row tokens[t] of embed.w (any type) */
	GI_OP_RMSNORM,  /* dst[r] = src[r] / rms(src[r]) * w */
	GI_OP_MATMUL,   /* dst_i[r] (+)= W_i src[r] (+ b_i), i < n_mat, one shared src */
	GI_OP_ROPE_KV,  /* rope q[t], k[t] in place at pos[t]; store k[t], v[t] in the pool */
	GI_OP_ATTN,     /* dst[t] = causal attention of q[t] over its sequence, [0, pos[t]] */
	GI_OP_SILU_MUL, /* dst[r] = silu(a[r]) * b[r] */
	GI_OP_COUNT_,
};

/* Which rows a node works on: every token of the step, or only the rows
 * whose logits are wanted (GI_ROWS_OUT; RMSNORM then gathers its input rows
 * from step->out_rows, so its output row i is token row out_rows[i]). */
enum gi_rows {
	GI_ROWS_TOKENS,
	GI_ROWS_OUT,
};

#define GI_MATMUL_MAX 3

/* Activations are F32 rows in backend memory; a node's row stride is the
 * row length it names (dim, or the matrix N/K). */
struct gi_node {
	enum gi_op op;
	enum gi_rows rows;
	union {
		struct {
			struct gi_mat w; /* N = vocabulary, K = dim */
			float *dst;
		} embed;
		struct {
			const float *src, *w; /* w: dim floats */
			float *dst;
			uint32_t dim;
			float eps;
		} rmsnorm;
		struct {
			const float *src;          /* rows of w[0].k floats */
			uint32_t n_mat;
			struct gi_mat w[GI_MATMUL_MAX]; /* all with the same k */
			const float *bias[GI_MATMUL_MAX]; /* NULL or w[i].n floats */
			float *dst[GI_MATMUL_MAX]; /* rows of w[i].n floats */
			bool accumulate;           /* dst += W src (n_mat 1) instead of dst = W src */
		} matmul;
		struct {
			float *q, *k;   /* rows of n_head*head_dim, n_head_kv*head_dim */
			const float *v; /* rows of n_head_kv*head_dim */
			uint32_t layer;
		} rope_kv;
		struct {
			const float *q; /* rows of n_head*head_dim */
			float *dst;     /* rows of n_head*head_dim */
			uint32_t layer;
		} attn;
		struct {
			const float *a, *b;
			float *dst;
			uint32_t dim;
		} silu_mul;
	};
};

enum gi_rope_style {
	GI_ROPE_NORM, /* rotate adjacent pairs (2i, 2i+1): llama */
	GI_ROPE_NEOX, /* rotate halves (i, i + n_rot/2): qwen2 */
};

/* Attention geometry shared by the ROPE_KV and ATTN nodes. */
struct gi_attn_params {
	uint32_t n_head, n_head_kv, head_dim;
	uint32_t n_rot;           /* rotated dims per head (even, <= head_dim) */
	enum gi_rope_style rope_style;
	float freq_base;          /* theta_i = pos * freq_scale * base^(-2i/n_rot) */
	float freq_scale;         /* 1 / linear scaling factor */
	float scale;              /* score scale, usually 1/sqrt(head_dim) */
};

struct gi_graph_desc {
	size_t size; /* sizeof(struct gi_graph_desc) */
	const struct gi_node *nodes;
	uint32_t n_nodes;
	struct gi_attn_params attn;
	uint32_t max_tokens; /* most tokens in one step */
	uint32_t max_out;    /* most GI_ROWS_OUT rows in one step */
};

/* The paged KV pool. Block B of layer L starts at k + L*layer_stride +
 * B*block_stride bytes (V likewise); inside a block, elements of TYPE (F32 or
 * F16) for KV head H are laid out as
 *   K: [head_dim][block_tokens], (d, slot) at (H*head_dim + d)*block_tokens + slot
 *   V: [block_tokens][head_dim], (slot, d) at (H*block_tokens + slot)*head_dim + d
 * K is transposed so the scores of a block's keys are vector multiply-adds
 * across slots (no horizontal sums, whatever the head size); V is row-major
 * so weighting values is multiply-adds across dims. */
struct gi_kv_pool {
	void *k, *v;
	enum gi_type type;
	uint32_t n_blocks, block_tokens, n_head_kv, head_dim;
	size_t layer_stride, block_stride;
};

/* Fills KV's layout for N_LAYER layers of N_BLOCKS blocks and returns the
 * bytes of K (V is the same size); KV->k and KV->v are the caller's to
 * allocate. 0 on overflow. */
size_t gi_kv_pool_layout(struct gi_kv_pool *kv, enum gi_type type, uint32_t n_layer,
			 uint32_t n_blocks, uint32_t block_tokens, uint32_t n_head_kv,
			 uint32_t head_dim);

struct gi_step_seq {
	const uint32_t *blocks; /* block table (host memory, read during the run) */
	uint32_t n_blocks;
};

/* What one step runs on. Host arrays, only read until gi_graph_run returns
 * (a GPU backend copies them to the device inside). The caller has checked
 * every index: tokens < vocabulary, seq < n_seqs, each table covers pos + 1
 * of every token of its sequence, block ids < pool n_blocks. */
struct gi_step {
	uint32_t n_tokens, n_seqs, n_out;
	const int32_t *tokens;    /* [n_tokens] */
	const uint32_t *pos;      /* [n_tokens] */
	const uint32_t *seq;      /* [n_tokens] index into seqs */
	const struct gi_step_seq *seqs; /* [n_seqs] */
	const uint32_t *out_rows; /* [n_out] token rows for GI_ROWS_OUT nodes */
	const struct gi_kv_pool *kv;
};

/* Checks the nodes (shapes agree, ops known) and sizes the backend's own
 * scratch. -EINVAL with a message naming the node, -ENOMEM. */
int gi_graph_create(struct gi_backend *b, const struct gi_graph_desc *d, struct gi_graph **ret,
		    char *err, size_t errlen);
void gi_graph_free(struct gi_graph *g); /* accepts NULL */
/* Queues one step. Returns 0 or -EINVAL (n_tokens or n_out above the graph's
 * maximum). Not thread-safe: one caller at a time per backend. */
int gi_graph_run(struct gi_graph *g, const struct gi_step *s);
/* Waits until every queued step has finished. */
int gi_backend_sync(struct gi_backend *b);
