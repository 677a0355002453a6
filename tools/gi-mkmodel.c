/* gi-mkmodel: writes a llama-architecture GGUF with seeded random weights,
 * any shape, any supported tensor type, and either a real vocabulary copied
 * from another GGUF (--vocab) or a synthetic byte-level SentencePiece one.
 * Weights are normal(0, 0.02)-like and norms are 1.0, so forward passes stay
 * in range. Tensor data is generated, quantized and streamed one chunk at a
 * time: memory stays small whatever the model size, and the output is a
 * function of the options and the seed only. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "kernels/cpu/matmul.h"

#define WEIGHT_STD 0.02f
#define CHUNK_ELEMS (1u << 18)
#define N_BASE_TOKENS 259 /* <unk> <s> </s> and 256 byte tokens */
#define MAX_THREADS 64

struct config {
	uint32_t dim, layers, heads, kv_heads, ffn, ctx, vocab;
	uint32_t threads;
	const char *type_name;
	const char *vocab_path;
	const char *out;
	const char *name;
	uint64_t seed;
	bool vocab_set; /* --vocab-size given (else a --vocab file decides) */
};

/* ---- weight types ------------------------------------------------------------- */

enum role { ROLE_NORM, ROLE_EMBD, ROLE_OUTPUT, ROLE_Q, ROLE_K, ROLE_V, ROLE_O, ROLE_GATE,
	    ROLE_DOWN, ROLE_UP };

struct type_choice {
	const char *name;
	enum gi_type base;   /* most matrices */
	bool mix_q6k;        /* Q4_K_M: output, ffn_down and attn_v in Q6_K */
	uint32_t file_type;  /* general.file_type (llama_ftype) */
};

static const struct type_choice type_choices[] = {
	{ "f32", GI_TYPE_F32, false, 0 },
	{ "f16", GI_TYPE_F16, false, 1 },
	{ "bf16", GI_TYPE_BF16, false, 32 },
	{ "q8_0", GI_TYPE_Q8_0, false, 7 },
	{ "q4_0", GI_TYPE_Q4_0, false, 2 },
	{ "q4_k", GI_TYPE_Q4_K, false, 14 },
	{ "q6_k", GI_TYPE_Q6_K, false, 18 },
	{ "q4_k_m", GI_TYPE_Q4_K, true, 15 },
};

static enum gi_type role_type(const struct type_choice *tc, enum role r)
{
	if (r == ROLE_NORM)
		return GI_TYPE_F32;
	if (tc->mix_q6k && (r == ROLE_OUTPUT || r == ROLE_DOWN || r == ROLE_V))
		return GI_TYPE_Q6_K;
	return tc->base;
}

/* ---- random numbers ------------------------------------------------------------ */

/* splitmix64: one add and a few multiply-xorshifts per 64 random bits. The
 * state is a counter stepped by RNG_GAMMA, so a chunk of a tensor can start
 * at draw i directly (state + i * RNG_GAMMA): threads generating chunks
 * produce the same bytes as one thread generating them in order. */
#define RNG_GAMMA 0x9e3779b97f4a7c15ull

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += RNG_GAMMA);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Approximately normal(0, STD): the sum of four 16-bit uniforms (Irwin-Hall,
 * variance 4/12) recentred and scaled; one draw per value. */
static void fill_normal(uint64_t *s, float *x, size_t n, float std)
{
	const float scale = std * 1.7320508f / 65536.0f;
	for (size_t i = 0; i < n; i++) {
		uint64_t r = rng_next(s);
		int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
			      (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48);
		x[i] = (float)(sum - 131070) * scale;
	}
}

static uint64_t name_seed(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	uint64_t s = seed ^ h;
	return rng_next(&s);
}

/* ---- tensors ------------------------------------------------------------------- */

struct tensor_spec {
	char name[64];
	enum role role;
	enum gi_type type;
	uint64_t ne[2];
	uint32_t n_dims;
};

static size_t list_tensors(const struct config *c, const struct type_choice *tc,
			   struct tensor_spec *ts)
{
	uint32_t hd = c->dim / c->heads;
	size_t n = 0;
#define T(r, d0, d1, nd, ...) do {                                                  \
		snprintf(ts[n].name, sizeof(ts[n].name), __VA_ARGS__);             \
		ts[n].role = (r);                                                  \
		ts[n].type = role_type(tc, (r));                                   \
		ts[n].ne[0] = (d0);                                                \
		ts[n].ne[1] = (d1);                                                \
		ts[n].n_dims = (nd);                                               \
		n++;                                                               \
	} while (0)
	T(ROLE_EMBD, c->dim, c->vocab, 2, "token_embd.weight");
	T(ROLE_NORM, c->dim, 1, 1, "output_norm.weight");
	T(ROLE_OUTPUT, c->dim, c->vocab, 2, "output.weight");
	for (uint32_t l = 0; l < c->layers; l++) {
		T(ROLE_NORM, c->dim, 1, 1, "blk.%u.attn_norm.weight", l);
		T(ROLE_Q, c->dim, c->heads * hd, 2, "blk.%u.attn_q.weight", l);
		T(ROLE_K, c->dim, c->kv_heads * hd, 2, "blk.%u.attn_k.weight", l);
		T(ROLE_V, c->dim, c->kv_heads * hd, 2, "blk.%u.attn_v.weight", l);
		T(ROLE_O, c->heads * hd, c->dim, 2, "blk.%u.attn_output.weight", l);
		T(ROLE_NORM, c->dim, 1, 1, "blk.%u.ffn_norm.weight", l);
		T(ROLE_GATE, c->dim, c->ffn, 2, "blk.%u.ffn_gate.weight", l);
		T(ROLE_DOWN, c->ffn, c->dim, 2, "blk.%u.ffn_down.weight", l);
		T(ROLE_UP, c->dim, c->ffn, 2, "blk.%u.ffn_up.weight", l);
	}
#undef T
	return n;
}

/* One chunk of rows of one tensor, generated and quantized by a thread. */
struct chunk {
	const struct tensor_spec *t;
	uint64_t rng;   /* state before the chunk's first draw */
	size_t n;       /* elements */
	float *x;
	uint8_t *q;
	pthread_t thread;
	bool started;
};

static void *make_chunk(void *arg)
{
	struct chunk *ck = arg;
	if (ck->t->role == ROLE_NORM)
		for (size_t i = 0; i < ck->n; i++)
			ck->x[i] = 1.0f;
	else
		fill_normal(&ck->rng, ck->x, ck->n, WEIGHT_STD);
	gi_quantize_row(ck->t->type, ck->x, ck->q, ck->n);
	return NULL;
}

/* Generates, quantizes and writes one tensor, N_CK chunks of rows at a time
 * (one per thread), in order. */
static int write_tensor(struct gguf_writer *w, FILE *f, const struct tensor_spec *t,
			uint64_t seed, struct chunk *ck, int n_ck)
{
	size_t row_elems = t->ne[0];
	size_t row_bytes = gi_type_row_bytes(t->type, row_elems);
	size_t chunk_rows = CHUNK_ELEMS / row_elems ? CHUNK_ELEMS / row_elems : 1;
	uint64_t base = name_seed(seed, t->name);
	for (uint64_t r0 = 0; r0 < t->ne[1];) {
		int k = 0;
		for (; k < n_ck && r0 < t->ne[1]; k++) {
			size_t rows = t->ne[1] - r0 < chunk_rows ? t->ne[1] - r0 : chunk_rows;
			ck[k].t = t;
			ck[k].rng = base + r0 * row_elems * RNG_GAMMA;
			ck[k].n = rows * row_elems;
			/* chunk 0 runs here; a thread that cannot start runs here too */
			ck[k].started = k > 0 && pthread_create(&ck[k].thread, NULL, make_chunk, &ck[k]) == 0;
			r0 += rows;
		}
		make_chunk(&ck[0]);
		for (int i = 1; i < k; i++) {
			if (ck[i].started)
				pthread_join(ck[i].thread, NULL);
			else
				make_chunk(&ck[i]);
		}
		for (int i = 0; i < k; i++) {
			int r = gguf_writer_write_data(w, f, ck[i].q, ck[i].n / row_elems * row_bytes);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- vocabulary ---------------------------------------------------------------- */

/* Synthetic SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens,
 * then distinct pieces "▁", "▁a", "a", "▁b", ... "▁aa", "aa", ... with
 * decreasing scores, up to N tokens. */
static int add_synthetic_vocab(struct gguf_writer *w, uint32_t n)
{
	struct gguf_str *strs = calloc(n, sizeof(*strs));
	float *scores = calloc(n, sizeof(*scores));
	int32_t *types = calloc(n, sizeof(*types));
	char *pool = malloc((size_t)n * 16);
	int r = -ENOMEM;
	if (!strs || !scores || !types || !pool)
		goto out;
	size_t used = 0;
	static const char *const special[] = { "<unk>", "<s>", "</s>" };
	for (uint32_t i = 0; i < n; i++) {
		char *p = pool + used;
		size_t len;
		if (i < 3) {
			len = (size_t)sprintf(p, "%s", special[i]);
			types[i] = i == 0 ? 2 : 3;
		} else if (i < N_BASE_TOKENS) {
			len = (size_t)sprintf(p, "<0x%02X>", i - 3);
			types[i] = 6;
		} else {
			/* piece k: k = 0 is "▁"; then words of growing length over
			 * a-z, each as "▁word" and "word" */
			uint64_t k = i - N_BASE_TOKENS, words = 26, wl = 1;
			len = 0;
			if (k > 0) {
				k--;
				while (k >= 2 * words) {
					k -= 2 * words;
					words *= 26;
					wl++;
				}
			}
			if (i == N_BASE_TOKENS || k % 2 == 0) {
				memcpy(p, "\xe2\x96\x81", 3);
				len = 3;
			}
			if (i > N_BASE_TOKENS) {
				uint64_t v = k / 2;
				for (uint64_t j = 0; j < wl; j++, v /= 26)
					p[len + wl - 1 - j] = (char)('a' + v % 26);
				len += wl;
			}
			scores[i] = -(float)(i - N_BASE_TOKENS);
			types[i] = 1;
		}
		strs[i] = (struct gguf_str){ p, len };
		used += len;
	}
	gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
	gguf_writer_add_strs(w, "tokenizer.ggml.tokens", strs, n);
	gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, n);
	gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, n);
	gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
	gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
	gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
	r = gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false);
out:
	free(strs);
	free(scores);
	free(types);
	free(pool);
	return r;
}

/* Opens the --vocab file; C->vocab becomes its number of tokens (which must
 * match --vocab-size if that was given too). */
static int open_vocab(struct config *c, struct gguf **ret)
{
	char err[512];
	struct gguf *g;
	const struct gguf_kv *tokens;
	int r = gguf_open(c->vocab_path, &g, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "gi-mkmodel: --vocab %s\n", err);
		return r;
	}
	r = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tokens, err, sizeof(err));
	if (r == 0 && tokens->v.arr.n > UINT32_MAX) {
		snprintf(err, sizeof(err), "%llu tokens", (unsigned long long)tokens->v.arr.n);
		r = -EINVAL;
	}
	if (r < 0) {
		fprintf(stderr, "gi-mkmodel: --vocab %s: %s\n", c->vocab_path, err);
		gguf_close(g);
		return r;
	}
	if (c->vocab_set && c->vocab != tokens->v.arr.n) {
		fprintf(stderr, "gi-mkmodel: --vocab-size %u, but %s has %llu tokens\n", c->vocab,
			c->vocab_path, (unsigned long long)tokens->v.arr.n);
		gguf_close(g);
		return -EINVAL;
	}
	c->vocab = (uint32_t)tokens->v.arr.n;
	*ret = g;
	return 0;
}

/* Copies every tokenizer.* key of G. */
static int copy_vocab(struct gguf_writer *w, const struct gguf *g)
{
	int r = 0;
	for (uint64_t i = 0; i < gguf_n_kv(g) && r == 0; i++) {
		const struct gguf_kv *kv = gguf_kv_at(g, i);
		if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0)
			r = gguf_writer_copy_kv(w, kv);
	}
	return r;
}

/* ---- model --------------------------------------------------------------------- */

static void add_hparams(struct gguf_writer *w, const struct config *c,
			const struct type_choice *tc)
{
	char name[128];
	snprintf(name, sizeof(name), "%s", c->name ? c->name : "gi-mkmodel");
	gguf_writer_add_str(w, "general.architecture", "llama");
	gguf_writer_add_str(w, "general.name", name);
	gguf_writer_add_u32(w, "general.file_type", tc->file_type);
	if (tc->base != GI_TYPE_F32 && tc->base != GI_TYPE_F16 && tc->base != GI_TYPE_BF16)
		gguf_writer_add_u32(w, "general.quantization_version", 2);
	gguf_writer_add_u32(w, "llama.vocab_size", c->vocab);
	gguf_writer_add_u32(w, "llama.context_length", c->ctx);
	gguf_writer_add_u32(w, "llama.embedding_length", c->dim);
	gguf_writer_add_u32(w, "llama.block_count", c->layers);
	gguf_writer_add_u32(w, "llama.feed_forward_length", c->ffn);
	gguf_writer_add_u32(w, "llama.rope.dimension_count", c->dim / c->heads);
	gguf_writer_add_u32(w, "llama.attention.head_count", c->heads);
	gguf_writer_add_u32(w, "llama.attention.head_count_kv", c->kv_heads);
	gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_writer_add_f32(w, "llama.rope.freq_base", 10000.0f);
}

static int check_shapes(const struct config *c, const struct tensor_spec *ts, size_t n)
{
	if (!c->dim || !c->layers || !c->heads || !c->kv_heads || !c->ffn || !c->ctx) {
		fprintf(stderr, "gi-mkmodel: --dim, --layers, --heads, --kv-heads, --ffn and --ctx must be > 0\n");
		return -EINVAL;
	}
	if (c->dim % c->heads || (c->dim / c->heads) % 2 || c->heads % c->kv_heads) {
		fprintf(stderr, "gi-mkmodel: --dim %u, --heads %u, --kv-heads %u: need dim = heads * an even head size, heads a multiple of kv-heads\n",
			c->dim, c->heads, c->kv_heads);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		size_t be = gi_type_block_elems(ts[i].type);
		if (ts[i].ne[0] % be) {
			fprintf(stderr, "gi-mkmodel: %s: row length %llu is not a multiple of %zu, the block of type %s\n",
				ts[i].name, (unsigned long long)ts[i].ne[0], be,
				gi_type_name(ts[i].type));
			return -EINVAL;
		}
	}
	return 0;
}

static int write_file(struct gguf_writer *w, FILE *f, const struct tensor_spec *ts, size_t n,
		      uint64_t seed, size_t max_row, int n_threads)
{
	size_t buf_elems = CHUNK_ELEMS > max_row ? CHUNK_ELEMS : max_row;
	struct chunk ck[MAX_THREADS] = { 0 };
	int r = 0;
	for (int i = 0; i < n_threads && r == 0; i++) {
		ck[i].x = malloc(buf_elems * sizeof(float));
		ck[i].q = malloc(buf_elems * sizeof(float)); /* no type takes more */
		if (!ck[i].x || !ck[i].q)
			r = -ENOMEM;
	}
	if (r == 0)
		r = gguf_writer_write_header(w, f);
	for (size_t i = 0; i < n && r == 0; i++)
		r = write_tensor(w, f, &ts[i], seed, ck, n_threads);
	if (r == 0)
		r = gguf_writer_finish(w, f);
	for (int i = 0; i < n_threads; i++) {
		free(ck[i].x);
		free(ck[i].q);
	}
	return r;
}

static int write_model(struct config *c, const struct type_choice *tc)
{
	struct gguf *vg = NULL;
	struct gguf_writer *w = NULL;
	struct tensor_spec *ts = NULL;
	FILE *f = NULL;
	char tmp[4096];
	int r = 0;

	if (c->vocab_path)
		r = open_vocab(c, &vg);
	else if (c->vocab < N_BASE_TOKENS) {
		fprintf(stderr, "gi-mkmodel: --vocab-size %u: the synthetic vocabulary needs at least %d\n",
			c->vocab, N_BASE_TOKENS);
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	ts = calloc(3 + 9 * (size_t)c->layers, sizeof(*ts));
	if (!ts || (r = gguf_writer_new(&w)) < 0) {
		fprintf(stderr, "gi-mkmodel: out of memory for %u layers\n", c->layers);
		r = -ENOMEM;
		goto out;
	}
	size_t n = list_tensors(c, tc, ts);
	if ((r = check_shapes(c, ts, n)) < 0)
		goto out;
	add_hparams(w, c, tc);
	r = vg ? copy_vocab(w, vg) : add_synthetic_vocab(w, c->vocab);
	size_t max_row = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		r = gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne);
		max_row = ts[i].ne[0] > max_row ? ts[i].ne[0] : max_row;
	}
	if (r < 0) {
		fprintf(stderr, "gi-mkmodel: cannot lay out the model: %s\n", strerror(-r));
		goto out;
	}
	/* Written beside the target and renamed: no half-written model under
	 * the final name. */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", c->out, (int)getpid());
	f = fopen(tmp, "wbe");
	if (!f) {
		r = -errno;
		fprintf(stderr, "gi-mkmodel: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	r = write_file(w, f, ts, n, c->seed, max_row, (int)c->threads);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, c->out) != 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "gi-mkmodel: writing %s: %s\n", c->out, strerror(-r));
		unlink(tmp);
	}
out:
	gguf_writer_free(w);
	gguf_close(vg);
	free(ts);
	return r;
}

/* ---- command line -------------------------------------------------------------- */

static const char usage[] =
	"usage: gi-mkmodel --out PATH [--preset small|tinyllama] [--type TYPE] [--seed N]\n"
	"                  [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ffn N]\n"
	"                  [--ctx N] [--vocab-size N | --vocab GGUF] [--name NAME] [--threads N]\n"
	"Writes a llama-architecture GGUF with seeded random weights.\n"
	"  --preset small      dim 256, 2 layers, 8 heads, 4 kv heads, ffn 768, vocab 512, ctx 512 (default)\n"
	"  --preset tinyllama  dim 2048, 22 layers, 32 heads, 4 kv heads, ffn 5632, vocab 32000, ctx 2048\n"
	"  --type              f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m (default f32; norms are always f32;\n"
	"                      q4_k_m: q6_k for output, ffn_down and attn_v, q4_k elsewhere)\n"
	"  --vocab GGUF        copy the tokenizer.* keys of GGUF (its token count sets the vocab size);\n"
	"                      without it a synthetic byte-level SentencePiece vocabulary is made\n"
	"  --seed N            weights are a function of the seed (default 1)\n"
	"  --threads N         generate and quantize on N threads (default: online CPUs, at most 64);\n"
	"                      the file does not depend on N\n";

static int parse_u32(const char *opt, const char *v, uint32_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long x = v ? strtoull(v, &end, 0) : 0;
	if (!v || errno || *end || end == v || x > UINT32_MAX || v[0] == '-') {
		fprintf(stderr, "gi-mkmodel: %s: bad value '%s'\n", opt, v ? v : "");
		return -EINVAL;
	}
	*ret = (uint32_t)x;
	return 0;
}

static int set_preset(struct config *c, const char *name)
{
	if (strcmp(name, "small") == 0)
		*c = (struct config){ 256, 2, 8, 4, 768, 512, 512, c->threads, c->type_name,
				      c->vocab_path, c->out, c->name, c->seed, c->vocab_set };
	else if (strcmp(name, "tinyllama") == 0)
		*c = (struct config){ 2048, 22, 32, 4, 5632, 2048, 32000, c->threads, c->type_name,
				      c->vocab_path, c->out, c->name, c->seed, c->vocab_set };
	else {
		fprintf(stderr, "gi-mkmodel: --preset: unknown preset '%s' (small, tinyllama)\n", name);
		return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct config *c)
{
	/* A preset first, so explicit sizes override it wherever they appear. */
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--preset") == 0 && set_preset(c, argv[i + 1]) < 0)
			return -EINVAL;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint32_t *field = NULL;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		}
		if (!v) {
			fprintf(stderr, "gi-mkmodel: %s: missing value\n%s", o, usage);
			return -EINVAL;
		}
		i++;
		if (strcmp(o, "--dim") == 0) field = &c->dim;
		else if (strcmp(o, "--layers") == 0) field = &c->layers;
		else if (strcmp(o, "--heads") == 0) field = &c->heads;
		else if (strcmp(o, "--kv-heads") == 0) field = &c->kv_heads;
		else if (strcmp(o, "--ffn") == 0) field = &c->ffn;
		else if (strcmp(o, "--ctx") == 0) field = &c->ctx;
		else if (strcmp(o, "--threads") == 0) field = &c->threads;
		else if (strcmp(o, "--vocab-size") == 0) {
			field = &c->vocab;
			c->vocab_set = true;
		}
		else if (strcmp(o, "--vocab") == 0) c->vocab_path = v;
		else if (strcmp(o, "--type") == 0) c->type_name = v;
		else if (strcmp(o, "--out") == 0) c->out = v;
		else if (strcmp(o, "--name") == 0) c->name = v;
		else if (strcmp(o, "--preset") == 0) continue;
		else if (strcmp(o, "--seed") == 0) {
			char *end;
			errno = 0;
			c->seed = strtoull(v, &end, 0);
			if (errno || *end || end == v || v[0] == '-') {
				fprintf(stderr, "gi-mkmodel: --seed: bad value '%s'\n", v);
				return -EINVAL;
			}
		} else {
			fprintf(stderr, "gi-mkmodel: unknown option %s\n%s", o, usage);
			return -EINVAL;
		}
		if (field && parse_u32(o, v, field) < 0)
			return -EINVAL;
	}
	if (!c->out) {
		fprintf(stderr, "gi-mkmodel: --out is required\n%s", usage);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct config c = { .type_name = "f32", .seed = 1,
			    .threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (uint32_t)cpus };
	set_preset(&c, "small");
	int r = parse_args(argc, argv, &c);
	if (r != 0)
		return r < 0 ? 2 : 0;
	if (c.threads < 1 || c.threads > MAX_THREADS) {
		fprintf(stderr, "gi-mkmodel: --threads %u: want 1 to %d\n", c.threads, MAX_THREADS);
		return 2;
	}
	const struct type_choice *tc = NULL;
	for (size_t i = 0; i < sizeof(type_choices) / sizeof(type_choices[0]); i++)
		if (strcasecmp(c.type_name, type_choices[i].name) == 0)
			tc = &type_choices[i];
	if (!tc) {
		fprintf(stderr, "gi-mkmodel: --type: unknown type '%s' (f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m)\n",
			c.type_name);
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (write_model(&c, tc) < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct stat st;
	double mib = stat(c.out, &st) == 0 ? (double)st.st_size / (1 << 20) : 0;
	fprintf(stderr, "gi-mkmodel: wrote %s (%s, dim %u, %u layers, vocab %u, %.1f MiB) in %.2f s\n",
		c.out, tc->name, c.dim, c.layers, c.vocab, mib,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return 0;
}
