/* Model loading and weight formats on generated models: every weight type
 * runs and agrees with the F32 model it was quantized from (top-1 on most
 * positions, logits close); qwen2 (biases, NEOX rope) runs; malformed models
 * (unknown architecture, missing or misshapen tensors, missing keys,
 * unsupported rope scaling) fail with a message naming what is wrong. */
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/model.h"
#include "kernels/cpu/matmul.h"
#include "tests/t_util.h"

#define V 512 /* stories260K's vocabulary, copied in */

struct spec {
	const char *arch;
	uint32_t e, layers, heads, kv_heads, ff;
	enum gi_type type;
	const char *omit_tensor;  /* leave this tensor out */
	const char *bad_tensor;   /* give this tensor one row too many */
	const char *omit_key;     /* leave this key out */
	const char *rope_scaling; /* rope.scaling.type value, or NULL */
	bool output_as_embd;      /* output.weight holds token_embd's values */
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

/* Same values for a tensor name whatever the file's type. */
static void gen(const char *name, float *x, size_t n, float std, float mean)
{
	uint64_t s = hash(name);
	for (size_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		double u = ((s >> 11) & ((1ull << 52) - 1)) / (double)(1ull << 52);
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		double w = ((s >> 11) & ((1ull << 52) - 1)) / (double)(1ull << 52);
		x[i] = mean + std * (float)(sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * w));
	}
}

struct tdef {
	char name[64];
	uint32_t k, n; /* n = 1: vector */
	float std, mean;
	int bias;
};

static int add_u32(struct gguf_writer *w, const struct spec *sp, const char *suffix, uint32_t v)
{
	char key[96];
	snprintf(key, sizeof(key), "%s.%s", sp->arch, suffix);
	if (sp->omit_key && !strcmp(sp->omit_key, key))
		return 0;
	return gguf_writer_add_u32(w, key, v);
}

/* Writes the model described by SP to PATH. */
static void write_model(const char *path, const struct spec *sp)
{
	struct gguf_writer *w;
	ck_assert_int_eq(gguf_writer_new(&w), 0);
	ck_assert_int_eq(gguf_writer_add_str(w, "general.architecture", sp->arch), 0);
	uint32_t hd = sp->e / sp->heads, kvd = hd * sp->kv_heads;
	add_u32(w, sp, "embedding_length", sp->e);
	add_u32(w, sp, "block_count", sp->layers);
	add_u32(w, sp, "feed_forward_length", sp->ff);
	add_u32(w, sp, "attention.head_count", sp->heads);
	add_u32(w, sp, "attention.head_count_kv", sp->kv_heads);
	add_u32(w, sp, "context_length", 256);
	char key[96];
	snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", sp->arch);
	gguf_writer_add_f32(w, key, 1e-5f);
	if (sp->rope_scaling) {
		snprintf(key, sizeof(key), "%s.rope.scaling.type", sp->arch);
		gguf_writer_add_str(w, key, sp->rope_scaling);
		snprintf(key, sizeof(key), "%s.rope.scaling.factor", sp->arch);
		gguf_writer_add_f32(w, key, 2.0f);
	}
	struct gguf *src;
	char err[256];
	ck_assert_int_eq(gguf_open(t_shared("models/stories260K.gguf"), &src, err, sizeof(err)), 0);
	for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
		const struct gguf_kv *kv = gguf_kv_at(src, i);
		if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10))
			ck_assert_int_eq(gguf_writer_copy_kv(w, kv), 0);
	}

	/* tensor list */
	struct tdef *t = calloc(4 + 12 * sp->layers, sizeof(*t));
	uint32_t nt = 0;
	float ws = 1.0f / sqrtf((float)sp->e);
	t[nt++] = (struct tdef){ .name = "token_embd.weight", .k = sp->e, .n = V, .std = 1.0f };
	t[nt++] = (struct tdef){ .name = "output_norm.weight", .k = sp->e, .n = 1, .std = 0.1f,
				 .mean = 1 };
	t[nt++] = (struct tdef){ .name = "output.weight", .k = sp->e, .n = V, .std = 0.15f };
	if (sp->output_as_embd)
		t[nt - 1].std = 1.0f;
	int qwen = !strcmp(sp->arch, "qwen2");
	for (uint32_t l = 0; l < sp->layers; l++) {
		struct {
			const char *n;
			uint32_t k, rows;
			float std, mean;
			int bias;
		} L[] = {
			{ "attn_norm.weight", sp->e, 1, 0.1f, 1, 0 },
			{ "attn_q.weight", sp->e, sp->e, ws, 0, 0 },
			{ "attn_k.weight", sp->e, kvd, ws, 0, 0 },
			{ "attn_v.weight", sp->e, kvd, ws, 0, 0 },
			{ "attn_output.weight", sp->e, sp->e, ws, 0, 0 },
			{ "ffn_norm.weight", sp->e, 1, 0.1f, 1, 0 },
			{ "ffn_gate.weight", sp->e, sp->ff, ws, 0, 0 },
			{ "ffn_up.weight", sp->e, sp->ff, ws, 0, 0 },
			{ "ffn_down.weight", sp->ff, sp->e, 1.0f / sqrtf((float)sp->ff), 0, 0 },
			{ "attn_q.bias", sp->e, 1, 0.2f, 0, 1 },
			{ "attn_k.bias", kvd, 1, 0.2f, 0, 1 },
			{ "attn_v.bias", kvd, 1, 0.2f, 0, 1 },
		};
		for (size_t j = 0; j < sizeof(L) / sizeof(L[0]); j++) {
			if (L[j].bias && !qwen)
				continue;
			struct tdef *d = &t[nt++];
			snprintf(d->name, sizeof(d->name), "blk.%u.%s", l, L[j].n);
			d->k = L[j].k;
			d->n = L[j].rows;
			d->std = L[j].std;
			d->mean = L[j].mean;
			d->bias = L[j].bias;
		}
	}
	uint32_t keep = 0;
	for (uint32_t i = 0; i < nt; i++) {
		if (sp->omit_tensor && !strcmp(t[i].name, sp->omit_tensor))
			continue;
		if (sp->bad_tensor && !strcmp(t[i].name, sp->bad_tensor))
			t[i].n += 1;
		t[keep++] = t[i];
	}
	nt = keep;
	for (uint32_t i = 0; i < nt; i++) {
		enum gi_type ty = t[i].n == 1 ? GI_TYPE_F32 : sp->type;
		if (t[i].n == 1)
			ck_assert_int_eq(gguf_writer_add_tensor(w, t[i].name, ty, 1,
								(const uint64_t[]){ t[i].k }), 0);
		else
			ck_assert_int_eq(gguf_writer_add_tensor(w, t[i].name, ty, 2,
								(const uint64_t[]){ t[i].k, t[i].n }), 0);
	}
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(gguf_writer_write_header(w, f), 0);
	for (uint32_t i = 0; i < nt; i++) {
		enum gi_type ty = t[i].n == 1 ? GI_TYPE_F32 : sp->type;
		size_t n = (size_t)t[i].k * t[i].n, rb = gi_type_row_bytes(ty, t[i].k);
		float *x = malloc(n * sizeof(float));
		uint8_t *q = malloc(rb * t[i].n);
		bool as_embd = sp->output_as_embd && !strcmp(t[i].name, "output.weight");
		gen(as_embd ? "token_embd.weight" : t[i].name, x, n, t[i].std, t[i].mean);
		for (uint32_t r = 0; r < t[i].n; r++)
			gi_quantize_row(ty, x + (size_t)r * t[i].k, q + r * rb, t[i].k);
		ck_assert_int_eq(gguf_writer_write_data(w, f, q, rb * t[i].n), 0);
		free(x);
		free(q);
	}
	ck_assert_int_eq(gguf_writer_finish(w, f), 0);
	fclose(f);
	gguf_writer_free(w);
	gguf_close(src);
	free(t);
}

#define POS 24

#define SPEC(a, l, kvh, t) .arch = a, .e = 256, .layers = l, .heads = 8, .kv_heads = kvh, .ff = 512, .type = t

static const struct spec base_spec = { SPEC("llama", 2, 4, GI_TYPE_F32) };

/* Logits at each of POS positions of a fixed token sequence, decoded one
 * token per step; the last position again from one prefill step must agree
 * within TOL (relative RMS: the matmul kernels may switch with the row count,
 * e.g. to AMX tiles, and quantize activations differently). */
static void run_positions(const char *path, int threads, double tol, float *out)
{
	struct model_opts o = { .size = sizeof(o), .n_threads = threads };
	struct model *m;
	char err[256];
	int r = model_load(path, &o, &m, err, sizeof(err));
	ck_assert_msg(r == 0, "model_load %s: %s", path, err);
	struct kv_cache *kv;
	ck_assert_int_eq(kv_cache_create(m, 4, &kv), 0);
	uint32_t blocks[4] = { 2, 0, 3, 1 };
	int32_t ids[POS];
	for (int p = 0; p < POS; p++)
		ids[p] = 3 + (p * 97 + 11) % (V - 3);
	for (int p = 0; p < POS; p++) {
		struct step_seq s = { .blocks = blocks, .n_blocks = 4, .pos = (uint32_t)p,
				      .tokens = &ids[p], .n_tokens = 1, .logits = out + p * V };
		ck_assert_int_eq(model_step(m, kv, &s, 1), 0);
	}
	for (int i = 0; i < POS * V; i++)
		ck_assert_msg(isfinite(out[i]), "%s: logit %d is %g", path, i, out[i]);
	float *last = malloc(V * sizeof(float));
	struct step_seq s = { .blocks = blocks, .n_blocks = 4, .tokens = ids, .n_tokens = POS,
			      .logits = last };
	ck_assert_int_eq(model_step(m, kv, &s, 1), 0);
	double d2 = 0, r2 = 0;
	for (int i = 0; i < V; i++) {
		double d = last[i] - out[(POS - 1) * V + i];
		d2 += d * d;
		r2 += (double)last[i] * last[i];
	}
	ck_assert_msg(sqrt(d2 / r2) <= tol, "%s: prefill and decode logits differ by %.4f (rel)",
		      path, sqrt(d2 / r2));
	free(last);
	kv_cache_free(kv);
	model_free(m);
}

static int argmax(const float *l)
{
	int b = 0;
	for (int i = 1; i < V; i++)
		if (l[i] > l[b])
			b = i;
	return b;
}

static const struct {
	enum gi_type type;
	int threads;
	int min_agree;  /* of POS positions */
	double max_rel; /* rms(logit error) / rms(logit) */
	/* measured: F16 24/24 0.0006, BF16 24/24 0.004, Q8_0 24/24 0.017,
	 * Q6_K 20/24 0.048, Q4_K 16/24 0.17, Q4_0 17/24 0.20 (Gaussian weights
	 * at 4 bits are that noisy) */
} qcfg[] = {
	{ GI_TYPE_F16, 1, POS, 0.005 },       { GI_TYPE_BF16, 2, POS - 2, 0.02 },
	{ GI_TYPE_Q8_0, 1, POS - 2, 0.03 },  { GI_TYPE_Q6_K, 2, POS * 3 / 4, 0.07 },
	{ GI_TYPE_Q4_K, 1, POS * 7 / 12, 0.25 }, { GI_TYPE_Q4_0, 2, POS * 7 / 12, 0.28 },
};

START_TEST(weight_types)
{
	char *dir = t_tmpdir(), ref_path[512], q_path[512];
	snprintf(ref_path, sizeof(ref_path), "%s/f32.gguf", dir);
	snprintf(q_path, sizeof(q_path), "%s/q.gguf", dir);
	struct spec sp = base_spec;
	write_model(ref_path, &sp);
	sp.type = qcfg[_i].type;
	write_model(q_path, &sp);
	float *ref = malloc(POS * V * sizeof(float)), *got = malloc(POS * V * sizeof(float));
	run_positions(ref_path, 1, 1e-4, ref);
	run_positions(q_path, qcfg[_i].threads, qcfg[_i].max_rel / 2, got);
	int agree = 0;
	double err2 = 0, ref2 = 0;
	for (int p = 0; p < POS; p++) {
		agree += argmax(ref + p * V) == argmax(got + p * V);
		for (int i = 0; i < V; i++) {
			double d = got[p * V + i] - ref[p * V + i];
			err2 += d * d;
			ref2 += (double)ref[p * V + i] * ref[p * V + i];
		}
	}
	double rel = sqrt(err2 / ref2);
	fprintf(stderr, "weight_types %s: top-1 agreement %d/%d, relative logit error %.4f\n",
		gi_type_name(qcfg[_i].type), agree, POS, rel);
	ck_assert_msg(agree >= qcfg[_i].min_agree, "%s: top-1 agrees on %d of %d positions",
		      gi_type_name(qcfg[_i].type), agree, POS);
	ck_assert_msg(rel <= qcfg[_i].max_rel, "%s: relative logit error %.4f above %.4f",
		      gi_type_name(qcfg[_i].type), rel, qcfg[_i].max_rel);
	unlink(ref_path);
	unlink(q_path);
	rmdir(dir);
	free(dir);
	free(ref);
	free(got);
}
END_TEST

START_TEST(qwen2_runs)
{
	char *dir = t_tmpdir(), path[512];
	snprintf(path, sizeof(path), "%s/qwen2.gguf", dir);
	struct spec sp = base_spec;
	sp.arch = "qwen2";
	sp.type = GI_TYPE_Q8_0;
	write_model(path, &sp);
	float *out = malloc(POS * V * sizeof(float));
	run_positions(path, 2, 0.05, out);
	struct model *m;
	char err[256];
	ck_assert_int_eq(model_load(path, NULL, &m, err, sizeof(err)), 0);
	ck_assert_str_eq(model_get_info(m)->arch, "qwen2");
	ck_assert_uint_eq(model_get_info(m)->n_head_kv, 4);
	model_free(m);
	free(out);
	unlink(path);
	rmdir(dir);
	free(dir);
}
END_TEST

/* Without output.weight the output reuses token_embd: the same logits as a
 * file whose output.weight is a copy of it, and fewer weight bytes. */
START_TEST(tied_output)
{
	char *dir = t_tmpdir(), tied[512], copy[512];
	snprintf(tied, sizeof(tied), "%s/tied.gguf", dir);
	snprintf(copy, sizeof(copy), "%s/copy.gguf", dir);
	struct spec sp = base_spec;
	sp.type = GI_TYPE_Q8_0;
	sp.output_as_embd = true;
	write_model(copy, &sp);
	sp.omit_tensor = "output.weight";
	write_model(tied, &sp);
	float *a = malloc(POS * V * sizeof(float)), *b = malloc(POS * V * sizeof(float));
	run_positions(tied, 1, 0.05, a);
	run_positions(copy, 1, 0.05, b);
	ck_assert_msg(!memcmp(a, b, POS * V * sizeof(float)), "tied and copied output differ");
	struct model *mt, *mc;
	char err[256];
	ck_assert_int_eq(model_load(tied, NULL, &mt, err, sizeof(err)), 0);
	ck_assert_int_eq(model_load(copy, NULL, &mc, err, sizeof(err)), 0);
	ck_assert_uint_lt(model_get_info(mt)->weight_bytes, model_get_info(mc)->weight_bytes);
	model_free(mt);
	model_free(mc);
	free(a);
	free(b);
	unlink(tied);
	unlink(copy);
	rmdir(dir);
	free(dir);
}
END_TEST

static const struct {
	struct spec sp;
	const char *want1, *want2; /* substrings of the error */
} bad[] = {
	{ { SPEC("gpt9", 1, 4, GI_TYPE_F32) }, "architecture", "gpt9" },
	{ { SPEC("llama", 2, 4, GI_TYPE_F32), .omit_tensor = "blk.1.ffn_up.weight" },
	  "blk.1.ffn_up.weight", "missing" },
	{ { SPEC("llama", 1, 4, GI_TYPE_F32), .bad_tensor = "blk.0.attn_k.weight" },
	  "blk.0.attn_k.weight", "129" },
	{ { SPEC("llama", 1, 4, GI_TYPE_Q8_0), .omit_tensor = "output_norm.weight" },
	  "output_norm.weight", "missing" },
	{ { SPEC("llama", 1, 4, GI_TYPE_F32), .omit_key = "llama.embedding_length" },
	  "llama.embedding_length", "missing" },
	{ { SPEC("qwen2", 1, 4, GI_TYPE_F32), .omit_tensor = "blk.0.attn_v.bias" },
	  "blk.0.attn_v.bias", "missing" },
	{ { SPEC("llama", 1, 4, GI_TYPE_F32), .rope_scaling = "yarn" }, "rope", "yarn" },
	{ { SPEC("llama", 1, 3, GI_TYPE_F32) }, "head_count_kv", "3" },
};

START_TEST(bad_models)
{
	char *dir = t_tmpdir(), path[512];
	snprintf(path, sizeof(path), "%s/bad.gguf", dir);
	write_model(path, &bad[_i].sp);
	struct model *m = NULL;
	char err[256] = "";
	int r = model_load(path, NULL, &m, err, sizeof(err));
	ck_assert_msg(r < 0, "case %d loaded", _i);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(err, bad[_i].want1) && strstr(err, bad[_i].want2),
		      "case %d: error \"%s\" does not name \"%s\" and \"%s\"", _i, err, bad[_i].want1,
		      bad[_i].want2);
	unlink(path);
	rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(missing_file)
{
	struct model *m = NULL;
	char err[256] = "";
	ck_assert_int_eq(model_load("/nonexistent/model.gguf", NULL, &m, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "/nonexistent/model.gguf") || strstr(err, "No such"), "%s", err);
	struct model_opts o = { .size = sizeof(o), .device = "cuda:0" };
	ck_assert_int_lt(model_load(t_shared("models/stories260K.gguf"), &o, &m, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "cuda:0"), "%s", err);
	model_free(NULL);

	/* size-prefixed options: too small, or a longer struct with unknown bytes */
	struct {
		struct model_opts o;
		uint64_t future;
	} big = { .o = { .size = sizeof(big), .n_threads = 1 } };
	o = (struct model_opts){ .size = sizeof(o) - 1 };
	ck_assert_int_eq(model_load(t_shared("models/stories260K.gguf"), &o, &m, err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(model_load(t_shared("models/stories260K.gguf"), &big.o, &m, err,
				    sizeof(err)), 0);
	model_free(m);
	big.future = 1;
	ck_assert_int_eq(model_load(t_shared("models/stories260K.gguf"), &big.o, &m, err,
				    sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "offset"), "%s", err);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("generated");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, weight_types, 0, (int)(sizeof(qcfg) / sizeof(qcfg[0])));
	tcase_add_test(tc, qwen2_runs);
	tcase_add_test(tc, tied_output);
	tcase_add_loop_test(tc, bad_models, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, missing_file);
	suite_add_tcase(s, tc);
	return s;
}
