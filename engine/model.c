/* Model loading: architecture and hyper-parameters from GGUF metadata, every
 * weight checked for presence, type and shape, then handed to the backend
 * (zero-copy on the CPU: the weights stay in the file mapping). */
#include "engine/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/model_impl.h"
#include "engine/tokenizer.h"

/* Weight types a matmul or embedding accepts. */
#define MAT_TYPES                                                                           \
	(GGUF_TYPE_BIT(GI_TYPE_F32) | GGUF_TYPE_BIT(GI_TYPE_F16) | GGUF_TYPE_BIT(GI_TYPE_BF16) | \
	 GGUF_TYPE_BIT(GI_TYPE_Q8_0) | GGUF_TYPE_BIT(GI_TYPE_Q4_0) |                           \
	 GGUF_TYPE_BIT(GI_TYPE_Q4_K) | GGUF_TYPE_BIT(GI_TYPE_Q6_K))

struct loader {
	struct model *m;
	char *err;
	size_t errlen;
};

static int key_u32(struct loader *L, const char *suffix, uint32_t def, bool required,
		   uint32_t *ret)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", L->m->arch, suffix);
	int r = gguf_get_u32(L->m->gguf, key, ret, L->err, L->errlen);
	if (r == -ENOENT && !required) {
		*ret = def;
		return 0;
	}
	return r;
}

static int key_f32(struct loader *L, const char *suffix, float def, float *ret)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", L->m->arch, suffix);
	int r = gguf_get_f32(L->m->gguf, key, ret, L->err, L->errlen);
	if (r == -ENOENT) {
		*ret = def;
		return 0;
	}
	return r;
}

static int backend_ptr(struct loader *L, const struct gguf_tensor *t, const void **ret)
{
	int r = gi_backend_map(L->m->be, t->data, t->size, ret);
	if (r)
		snprintf(L->err, L->errlen, "tensor %.*s: cannot map into the backend: %s",
			 (int)t->name.len, t->name.ptr, strerror(-r));
	else
		L->m->info.weight_bytes += t->size;
	return r;
}

/* Matrix NAME of N rows of K elements ([K, N] in ggml order). */
static int get_mat(struct loader *L, const char *name, uint32_t k, uint32_t n, struct gi_mat *ret)
{
	const struct gguf_tensor *t;
	int r = gguf_require_tensor(L->m->gguf, name, MAT_TYPES, 2, (const uint64_t[]){ k, n }, &t,
				    L->err, L->errlen);
	if (r)
		return r;
	if (!gi_type_row_bytes(t->type, k)) {
		snprintf(L->err, L->errlen,
			 "tensor %s: row length %u is not a multiple of the %s block size %zu", name,
			 k, gi_type_name(t->type), gi_type_block_elems(t->type));
		return -EINVAL;
	}
	*ret = (struct gi_mat){ .type = t->type, .k = k, .n = n };
	return backend_ptr(L, t, &ret->data);
}

/* F32 vector NAME of N elements; absent optional ones give NULL. */
static int get_vec(struct loader *L, const char *name, uint32_t n, bool optional,
		   const float **ret)
{
	const struct gguf_tensor *t;
	if (optional && !gguf_find_tensor(L->m->gguf, name)) {
		*ret = NULL;
		return 0;
	}
	int r = gguf_require_tensor(L->m->gguf, name, GGUF_TYPE_BIT(GI_TYPE_F32), 1,
				    (const uint64_t[]){ n }, &t, L->err, L->errlen);
	if (r)
		return r;
	const void *p;
	r = backend_ptr(L, t, &p);
	*ret = p;
	return r;
}

static int load_arch(struct loader *L)
{
	struct model *m = L->m;
	struct gguf_str s;
	char show[64];
	int r = gguf_get_str(m->gguf, "general.architecture", &s, L->err, L->errlen);
	if (r)
		return r;
	if (!gguf_str_eq(s, "llama") && !gguf_str_eq(s, "qwen2")) {
		snprintf(L->err, L->errlen,
			 "architecture \"%s\" is not supported (supported: llama, qwen2)",
			 gguf_str_show(s, show, sizeof(show)));
		return -EINVAL;
	}
	snprintf(m->arch, sizeof(m->arch), "%.*s", (int)s.len, s.ptr);
	if (!gguf_get_str(m->gguf, "general.name", &s, NULL, 0))
		gguf_str_show(s, m->name, sizeof(m->name));
	return 0;
}

static int load_hparams(struct loader *L)
{
	struct model *m = L->m;
	struct model_info *in = &m->info;
	int r;
	if ((r = key_u32(L, "embedding_length", 0, true, &in->n_embd)) ||
	    (r = key_u32(L, "block_count", 0, true, &in->n_layer)) ||
	    (r = key_u32(L, "feed_forward_length", 0, true, &in->n_ff)) ||
	    (r = key_u32(L, "attention.head_count", 0, true, &in->n_head)) ||
	    (r = key_u32(L, "attention.head_count_kv", in->n_head, false, &in->n_head_kv)) ||
	    (r = key_u32(L, "context_length", 2048, false, &in->n_ctx_train)))
		return r;
	if (!in->n_embd || !in->n_layer || in->n_layer > 1024 || !in->n_ff || !in->n_head ||
	    !in->n_head_kv || in->n_head % in->n_head_kv || in->n_embd % in->n_head) {
		snprintf(L->err, L->errlen,
			 "%s hyper-parameters are inconsistent: embedding_length %u, block_count %u, "
			 "feed_forward_length %u, head_count %u, head_count_kv %u",
			 m->arch, in->n_embd, in->n_layer, in->n_ff, in->n_head, in->n_head_kv);
		return -EINVAL;
	}
	if ((r = key_u32(L, "attention.key_length", in->n_embd / in->n_head, false, &in->head_dim)))
		return r;
	uint32_t vlen, n_rot;
	if ((r = key_u32(L, "attention.value_length", in->head_dim, false, &vlen)) ||
	    (r = key_u32(L, "rope.dimension_count", in->head_dim, false, &n_rot)))
		return r;
	if (!in->head_dim || in->head_dim > 1024 || vlen != in->head_dim || n_rot % 2 ||
	    n_rot > in->head_dim) {
		snprintf(L->err, L->errlen,
			 "%s attention geometry unsupported: key_length %u, value_length %u, "
			 "rope.dimension_count %u",
			 m->arch, in->head_dim, vlen, n_rot);
		return -EINVAL;
	}
	float eps_def = strcmp(m->arch, "qwen2") ? 1e-5f : 1e-6f, base, factor = 1;
	if ((r = key_f32(L, "attention.layer_norm_rms_epsilon", eps_def, &m->eps)) ||
	    (r = key_f32(L, "rope.freq_base", 10000.0f, &base)) ||
	    (r = key_f32(L, "rope.scale_linear", 1.0f, &factor)))
		return r;
	char key[128];
	struct gguf_str st;
	snprintf(key, sizeof(key), "%s.rope.scaling.type", m->arch);
	r = gguf_get_str(m->gguf, key, &st, L->err, L->errlen);
	if (r && r != -ENOENT)
		return r;
	if (!r && gguf_str_eq(st, "linear")) {
		if ((r = key_f32(L, "rope.scaling.factor", 1.0f, &factor)))
			return r;
	} else if (!r && !gguf_str_eq(st, "none")) {
		char show[64];
		snprintf(L->err, L->errlen, "key %s: rope scaling \"%s\" is not supported (none, linear)",
			 key, gguf_str_show(st, show, sizeof(show)));
		return -EINVAL;
	}
	if (!(m->eps > 0 && m->eps < 1) || !(base > 1) || !(factor > 0) || !isfinite(factor)) {
		snprintf(L->err, L->errlen,
			 "%s: rms epsilon %g, rope freq_base %g or scaling factor %g out of range",
			 m->arch, (double)m->eps, (double)base, (double)factor);
		return -EINVAL;
	}
	if (gguf_find_tensor(m->gguf, "rope_freqs.weight")) {
		snprintf(L->err, L->errlen,
			 "tensor rope_freqs.weight: per-frequency rope scaling is not supported");
		return -EINVAL;
	}
	m->q_dim = in->n_head * in->head_dim;
	m->kv_dim = in->n_head_kv * in->head_dim;
	m->attn = (struct gi_attn_params){
		.n_head = in->n_head,
		.n_head_kv = in->n_head_kv,
		.head_dim = in->head_dim,
		.n_rot = n_rot,
		.rope_style = strcmp(m->arch, "qwen2") ? GI_ROPE_NORM : GI_ROPE_NEOX,
		.freq_base = base,
		.freq_scale = 1.0f / factor,
		.scale = 1.0f / sqrtf((float)in->head_dim),
	};
	return 0;
}

static int load_layer(struct loader *L, uint32_t i)
{
	struct model *m = L->m;
	struct layer_weights *w = &m->layers[i];
	uint32_t e = m->info.n_embd, ff = m->info.n_ff;
	bool bias = !strcmp(m->arch, "qwen2");
	char n[14][64];
	static const char *const names[] = {
		"attn_norm.weight", "ffn_norm.weight", "attn_q.weight", "attn_k.weight",
		"attn_v.weight",    "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
		"ffn_down.weight",  "attn_q.bias",      "attn_k.bias",   "attn_v.bias",
	};
	for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++)
		snprintf(n[j], sizeof(n[j]), "blk.%u.%s", i, names[j]);
	int r;
	if ((r = get_vec(L, n[0], e, false, &w->attn_norm)) ||
	    (r = get_vec(L, n[1], e, false, &w->ffn_norm)) ||
	    (r = get_mat(L, n[2], e, m->q_dim, &w->wq)) ||
	    (r = get_mat(L, n[3], e, m->kv_dim, &w->wk)) ||
	    (r = get_mat(L, n[4], e, m->kv_dim, &w->wv)) ||
	    (r = get_mat(L, n[5], m->q_dim, e, &w->wo)) ||
	    (r = get_mat(L, n[6], e, ff, &w->gate)) || (r = get_mat(L, n[7], e, ff, &w->up)) ||
	    (r = get_mat(L, n[8], ff, e, &w->down)) ||
	    (r = get_vec(L, n[9], m->q_dim, !bias, &w->bq)) ||
	    (r = get_vec(L, n[10], m->kv_dim, !bias, &w->bk)) ||
	    (r = get_vec(L, n[11], m->kv_dim, !bias, &w->bv)))
		return r;
	return 0;
}

static int load_weights(struct loader *L)
{
	struct model *m = L->m;
	const struct gguf_tensor *t = gguf_find_tensor(m->gguf, "token_embd.weight");
	if (!t || t->n_dims != 2 || t->ne[1] == 0 || t->ne[1] > INT32_MAX) {
		snprintf(L->err, L->errlen, "tensor token_embd.weight: %s",
			 t ? "expected 2 dimensions with a vocabulary below 2^31" : "missing");
		return t ? -EINVAL : -ENOENT;
	}
	m->info.n_vocab = (uint32_t)t->ne[1];
	int r = get_mat(L, "token_embd.weight", m->info.n_embd, m->info.n_vocab, &m->tok_embd);
	if (r)
		return r;
	if (gguf_find_tensor(m->gguf, "output.weight"))
		r = get_mat(L, "output.weight", m->info.n_embd, m->info.n_vocab, &m->output);
	else
		m->output = m->tok_embd;
	if (r || (r = get_vec(L, "output_norm.weight", m->info.n_embd, false, &m->out_norm)))
		return r;
	m->layers = calloc(m->info.n_layer, sizeof(*m->layers));
	if (!m->layers)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->info.n_layer; i++)
		if ((r = load_layer(L, i)))
			return r;
	return 0;
}

static int load_tokenizer(struct loader *L)
{
	struct model *m = L->m;
	int r = tok_create(m->gguf, &m->tok, L->err, L->errlen);
	if (r)
		return r;
	if (tok_n_vocab(m->tok) > m->info.n_vocab) {
		snprintf(L->err, L->errlen,
			 "tokenizer has %u tokens but token_embd.weight only %u rows",
			 tok_n_vocab(m->tok), m->info.n_vocab);
		return -EINVAL;
	}
	struct gguf_str tmpl = { 0 };
	gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl, NULL, 0);
	m->info.chat = chat_detect(tmpl.ptr, tmpl.len, &m->info.chat_known);
	return 0;
}

int model_load(const char *path, const struct model_opts *o, struct model **ret, char *err,
	       size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (o && o->size < sizeof(*o)) {
		snprintf(err, errlen, "model_opts: size %zu is smaller than %zu", o->size, sizeof(*o));
		return -EINVAL;
	}
	/* a newer caller's options: fields this version does not know must be zero */
	for (size_t i = sizeof(*o); o && i < o->size; i++)
		if (((const uint8_t *)o)[i]) {
			snprintf(err, errlen, "model_opts: unknown non-zero byte at offset %zu", i);
			return -EINVAL;
		}
	struct model *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct loader L = { m, err, errlen };
	m->max_tokens = o && o->max_batch_tokens ? o->max_batch_tokens : 512;
	m->max_seqs = o && o->max_seqs ? o->max_seqs : 256;
	/* F16 KV: half the memory, and the numerics llama.cpp's reference
	 * outputs were made with (with an F32 pool stories260K's first-token
	 * probabilities drift by up to 3e-4 from the golden ones). */
	m->kv_type = GI_TYPE_F16;
	int r = -EINVAL;
	if (m->max_tokens > 65536 || m->max_seqs > 65536) {
		snprintf(err, errlen, "max_batch_tokens %u / max_seqs %u above 65536", m->max_tokens,
			 m->max_seqs);
		goto fail;
	}
	m->max_out = m->max_seqs < m->max_tokens ? m->max_seqs : m->max_tokens;
	struct gi_backend_opts bo = {
		.size = sizeof(bo),
		.device = o ? o->device : NULL,
		.n_threads = o ? o->n_threads : 0,
	};
	if ((r = gguf_open(path, &m->gguf, err, errlen)) || (r = load_arch(&L)) ||
	    (r = load_hparams(&L)) || (r = gi_backend_create(&bo, &m->be, err, errlen)) ||
	    (r = load_weights(&L)) || (r = load_tokenizer(&L)) ||
	    (r = model_graph_create(m, err, errlen)))
		goto fail;
	struct model_info *in = &m->info;
	in->arch = m->arch;
	in->name = m->name;
	in->backend = gi_backend_name(m->be);
	struct gi_kv_pool pool;
	in->kv_bytes_per_block =
		2 * gi_kv_pool_layout(&pool, m->kv_type, in->n_layer, 1, KV_BLOCK_TOKENS,
				      in->n_head_kv, in->head_dim);
	*ret = m;
	return 0;
fail:
	if (r == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory loading %s", path);
	model_free(m);
	return r;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	model_graph_free(m);
	gi_backend_free(m->be);
	tok_destroy(m->tok);
	free(m->layers);
	gguf_close(m->gguf);
	free(m);
}

const struct model_info *model_get_info(const struct model *m)
{
	return &m->info;
}

const struct tokenizer *model_tokenizer(const struct model *m)
{
	return m->tok;
}
