/* Host-side launchers of the CUDA kernels (the .cu files of kernels/cuda), plain C, for
 * the CUDA backend and the tests. Built two ways: by nvcc into libgicuda.a,
 * where each function queues its kernel on STREAM (a cudaStream_t; NULL is
 * the default stream) and returns at once, and by the host C++ compiler
 * against the CPU emulator (kernels/emu) into libgicudaemu.a, where STREAM is
 * ignored and the kernel has run when the function returns.
 *
 * Every pointer argument is device memory (host memory for the emulator)
 * unless it says host; the kernels compute what the CPU backend computes for
 * the op of the same name (kernels/cpu/graph.c), node fields as in
 * kernels/backend.h. Returns 0 or a negative errno: -EINVAL for arguments
 * no kernel handles (a type without a kernel, a head size above 256), -EIO
 * when CUDA refuses the launch; the emulator also returns -EDEADLK or
 * -EINVAL for a kernel that broke a CUDA rule (kernels/emu/emu.h). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gi_cuda_stream_ *gi_cuda_stream;

/* Largest head size the attention kernel keeps in registers. */
#define GI_CUDA_MAX_HEAD_DIM 256

/* Which tokens a step holds, in device memory: for token t its position
 * pos[t] and sequence seq[t]; sequence s's block table is
 * blocks[table_start[s]...] (the step's tables concatenated). */
struct gi_cuda_tokens {
	const uint32_t *pos, *seq, *table_start, *blocks;
};

/* dst[r] = src[in] / rms(src[in]) * w, in = rows ? rows[r] : r, r < N_ROWS;
 * rows of DIM floats. DST may be SRC when ROWS is NULL. */
int gi_cuda_rmsnorm(gi_cuda_stream stream, const float *src, const uint32_t *rows, const float *w,
		    float *dst, uint32_t n_rows, uint32_t dim, float eps);

/* dst = silu(a) * b over N_ROWS rows of DIM floats; DST may be A or B. */
int gi_cuda_silu_mul(gi_cuda_stream stream, const float *a, const float *b, float *dst,
		     uint32_t n_rows, uint32_t dim);

/* dst[t] = row tokens[t] of W dequantized to F32 (rows of W->k floats), any
 * weight type. W is a host struct; W->data and TOKENS are device memory. */
int gi_cuda_embed(gi_cuda_stream stream, const struct gi_mat *w, const int32_t *tokens,
		  uint32_t n_tokens, float *dst);

/* The whole matrix W dequantized into DST, N rows of K elements of
 * DST_TYPE (GI_TYPE_F32 or GI_TYPE_F16): what the prefill GEMM reads. */
int gi_cuda_dequantize(gi_cuda_stream stream, const struct gi_mat *w, void *dst,
		       enum gi_type dst_type);

/* Matrix times a few vectors (decode): for r < M, j < W->n
 *   dst[r * W->n + j] (+)= dot(W row j, x[r]) (+ bias[j]),
 * x rows of W->k floats, F32 accumulation over the dequantized weights
 * (the activations stay F32). ACCUMULATE adds to DST; BIAS may be NULL.
 * Any M works; the kernel is meant for M up to ~8. */
int gi_cuda_gemv(gi_cuda_stream stream, const struct gi_mat *w, const float *x, uint32_t m,
		 const float *bias, float *dst, bool accumulate);

/* ROPE_KV: rotates q and k of each of N_TOKENS tokens in place at its
 * position and stores its k and v in the pool at LAYER. P, KV: host. */
int gi_cuda_rope_kv(gi_cuda_stream stream, const struct gi_attn_params *p, float *q, float *k,
		    const float *v, uint32_t n_tokens, const struct gi_cuda_tokens *t,
		    const struct gi_kv_pool *kv, uint32_t layer);

/* ATTN: causal attention of each token's query heads over positions
 * [0, pos[t]] of its sequence through its block table (GQA: query head h
 * reads KV head h / (n_head / n_head_kv)). One pass, online softmax. P, KV:
 * host. */
int gi_cuda_attn(gi_cuda_stream stream, const struct gi_attn_params *p, const float *q, float *dst,
		 uint32_t n_tokens, const struct gi_cuda_tokens *t, const struct gi_kv_pool *kv,
		 uint32_t layer);

/* ---- sampling ----------------------------------------------------------------- */

/* Greedy sampling: out[r] = the index of the largest of the N floats of row
 * r of LOGITS, the lowest index among equal maxima (the engine's argmax);
 * NaNs are never picked. N_ROWS rows, OUT in device memory. */
int gi_cuda_argmax(gi_cuda_stream stream, const float *logits, uint32_t n_rows, uint32_t n,
		   int32_t *out);

/* ---- nodes ------------------------------------------------------------------ */

/* A step as the node kernels read it: the host record's arrays copied to
 * device memory (T, TOKENS, OUT_ROWS), the pool's struct on the host. */
struct gi_cuda_step {
	uint32_t n_tokens, n_out;
	const int32_t *tokens;     /* [n_tokens] */
	const uint32_t *out_rows;  /* [n_out] token rows of GI_ROWS_OUT nodes */
	struct gi_cuda_tokens t;
	struct gi_kv_pool kv;
};

/* Queues the kernels of graph node N (kernels/backend.h) for step S: what
 * the CPU backend's runner does for the node, MATMUL as one GEMV per weight
 * (right for decode; a prefill wants the dequantize + GEMM path). P: the
 * graph's attention parameters (host). -EINVAL for an unknown op. */
int gi_cuda_node_run(gi_cuda_stream stream, const struct gi_node *n,
		     const struct gi_attn_params *p, const struct gi_cuda_step *s);

#ifdef __cplusplus
}
#endif
