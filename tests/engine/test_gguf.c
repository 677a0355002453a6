/* GGUF reader and writer: the shared models, a writer -> reader round trip of
 * every metadata and tensor type, the typed getters and tensor checks, and
 * hostile files (each must fail with a message naming the field, and no
 * prefix or bit flip of a valid file may crash or read out of bounds). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "tests/engine/gguf_craft.h"
#include "tests/t_util.h"

static struct gguf *open_shared(const char *rel)
{
	char err[512];
	struct gguf *g = NULL;
	int r = gguf_open(t_shared(rel), &g, err, sizeof(err));
	ck_assert_msg(r == 0, "%s: %d %s", rel, r, err);
	return g;
}

/* ---- shared models ------------------------------------------------------------- */

START_TEST(stories260k)
{
	struct gguf *g = open_shared("models/stories260K.gguf");
	char err[256];
	ck_assert_uint_eq(gguf_version(g), 3);
	ck_assert_uint_eq(gguf_n_kv(g), 19);
	ck_assert_uint_eq(gguf_n_tensors(g), 48);
	ck_assert_uint_eq(gguf_alignment(g), 32);
	ck_assert_uint_eq(gguf_file_size(g), 1185376);
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++)
		ck_assert_int_eq(gguf_tensor_at(g, i)->type, GI_TYPE_F32);
	struct gguf_str s;
	ck_assert_int_eq(gguf_get_str(g, "general.architecture", &s, err, sizeof(err)), 0);
	ck_assert(gguf_str_eq(s, "llama"));
	uint32_t u;
	ck_assert_int_eq(gguf_get_u32(g, "llama.block_count", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 5);
	ck_assert_int_eq(gguf_get_u32(g, "llama.embedding_length", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 64);
	float eps;
	ck_assert_int_eq(gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, err,
				      sizeof(err)), 0);
	ck_assert_float_eq_tol(eps, 1e-5f, 1e-9f);
	const struct gguf_kv *toks, *scores;
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(toks->v.arr.n, 512);
	ck_assert(gguf_str_eq(toks->v.arr.strs[1], "<s>"));
	ck_assert(gguf_str_eq(toks->v.arr.strs[3], "<0x00>"));
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_F32, &scores, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(scores->v.arr.n, 512);

	const struct gguf_tensor *t = NULL;
	uint64_t f32 = GGUF_TYPE_BIT(GI_TYPE_F32);
	ck_assert_int_eq(gguf_require_tensor(g, "token_embd.weight", f32, 2,
					     (const uint64_t[]){ 64, 512 }, &t, err, sizeof(err)), 0);
	ck_assert_uint_eq(t->size, 64 * 512 * 4);
	ck_assert_int_eq(gguf_require_tensor(g, "blk.4.ffn_down.weight", f32, 2,
					     (const uint64_t[]){ 172, 64 }, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(gguf_require_tensor(g, "blk.0.attn_norm.weight", f32, 1,
					     (const uint64_t[]){ 64 }, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(gguf_require_tensor(g, "blk.0.attn_k.weight", f32, 2,
					     (const uint64_t[]){ 64, 64 }, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "tensor blk.0.attn_k.weight: expected shape [64, 64], got [64, 32]");
	ck_assert_int_eq(gguf_require_tensor(g, "blk.0.attn_k.weight",
					     GGUF_TYPE_BIT(GI_TYPE_Q4_0) | GGUF_TYPE_BIT(GI_TYPE_F16), 2,
					     (const uint64_t[]){ 64, 32 }, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "tensor blk.0.attn_k.weight: type F32 not allowed here (F16, Q4_0)");
	ck_assert_int_eq(gguf_require_tensor(g, "blk.5.attn_q.weight", GGUF_TYPES_ANY, 2,
					     (const uint64_t[]){ 64, 64 }, NULL, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "tensor blk.5.attn_q.weight: missing");
	/* output.weight repeats token_embd.weight byte for byte (PROVENANCE.md) */
	const struct gguf_tensor *o = gguf_find_tensor(g, "output.weight");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(memcmp(o->data, t->data, t->size), 0);
	gguf_close(g);
}
END_TEST

START_TEST(llama2_tiny_random)
{
	struct gguf *g = open_shared("models/llama-2-tiny-random.gguf");
	char err[256];
	ck_assert_uint_eq(gguf_n_tensors(g), 12);
	int n_f16 = 0, n_f32 = 0;
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		n_f16 += t->type == GI_TYPE_F16;
		n_f32 += t->type == GI_TYPE_F32 && t->n_dims == 1 && t->ne[0] == 8;
	}
	ck_assert_int_eq(n_f16, 9);
	ck_assert_int_eq(n_f32, 3);
	uint32_t ft;
	ck_assert_int_eq(gguf_get_u32(g, "general.file_type", &ft, err, sizeof(err)), 0);
	ck_assert_uint_eq(ft, 1);
	const struct gguf_tensor *t;
	ck_assert_int_eq(gguf_require_tensor(g, "token_embd.weight", GGUF_TYPE_BIT(GI_TYPE_F16), 2,
					     (const uint64_t[]){ 8, 32000 }, &t, err, sizeof(err)), 0);
	ck_assert_uint_eq(t->size, 8 * 32000 * 2);
	ck_assert_int_eq(gguf_require_tensor(g, "blk.0.ffn_down.weight", GGUF_TYPE_BIT(GI_TYPE_F16),
					     2, (const uint64_t[]){ 32, 8 }, NULL, err, sizeof(err)), 0);
	const struct gguf_kv *toks;
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks, err,
				      sizeof(err)), 0);
	ck_assert_uint_eq(toks->v.arr.n, 32000);
	gguf_close(g);
}
END_TEST

static const char *const vocab_files[] = {
	"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
	"mpt", "refact",
};

START_TEST(vocab_only_files)
{
	char rel[128], err[256];
	snprintf(rel, sizeof(rel), "models/vocab/ggml-vocab-%s.gguf", vocab_files[_i]);
	struct gguf *g = open_shared(rel);
	ck_assert_uint_eq(gguf_n_tensors(g), 0);
	const struct gguf_kv *toks;
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks, err,
				      sizeof(err)), 0);
	ck_assert_uint_gt(toks->v.arr.n, 30000);
	gguf_close(g);
}
END_TEST

START_TEST(open_errors)
{
	char err[512];
	struct gguf *g = (struct gguf *)&err; /* must stay untouched on failure */
	ck_assert_int_eq(gguf_open("/nonexistent/x.gguf", &g, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_eq(g, (struct gguf *)&err);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.gguf"));
	ck_assert_int_lt(gguf_open("/tmp", &g, err, sizeof(err)), 0);
	char *dir = t_tmpdir();
	char path[512];
	snprintf(path, sizeof(path), "%s/empty.gguf", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(gguf_open(path, &g, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "magic"));
	ck_assert_ptr_nonnull(strstr(err, path));
	unlink(path);
	rmdir(dir);
	free(dir);
	int fds = t_count_fds();
	g = open_shared("models/stories260K.gguf");
	ck_assert_int_eq(t_count_fds(), fds); /* the mapping keeps no descriptor */
	gguf_close(g);
	gguf_close(NULL);
}
END_TEST

/* ---- round trip ------------------------------------------------------------------ */

static const struct gguf_kv *arr_kv(const struct gguf *g, enum gguf_vtype t)
{
	char key[32], err[256];
	const struct gguf_kv *kv = NULL;
	snprintf(key, sizeof(key), "arr.%s", gguf_vtype_name(t));
	ck_assert_int_eq(gguf_get_arr(g, key, t, &kv, err, sizeof(err)), 0);
	return kv;
}

START_TEST(round_trip_metadata)
{
	struct gguf_writer *w = t_gguf_writer();
	uint8_t u8 = 200;
	int8_t i8 = -100;
	uint16_t u16 = 60000;
	int16_t i16 = -30000;
	uint32_t u32 = 4000000000u;
	int32_t i32 = -2000000000;
	float f32 = 1.5f;
	bool b = true;
	uint64_t u64 = 1ull << 60;
	int64_t i64 = -(1ll << 60);
	double f64 = 1e300;
	ck_assert_int_eq(gguf_writer_add(w, "u8", GGUF_U8, &u8), 0);
	ck_assert_int_eq(gguf_writer_add(w, "i8", GGUF_I8, &i8), 0);
	ck_assert_int_eq(gguf_writer_add(w, "u16", GGUF_U16, &u16), 0);
	ck_assert_int_eq(gguf_writer_add(w, "i16", GGUF_I16, &i16), 0);
	ck_assert_int_eq(gguf_writer_add(w, "u32", GGUF_U32, &u32), 0);
	ck_assert_int_eq(gguf_writer_add(w, "i32", GGUF_I32, &i32), 0);
	ck_assert_int_eq(gguf_writer_add(w, "f32", GGUF_F32, &f32), 0);
	ck_assert_int_eq(gguf_writer_add(w, "bool", GGUF_BOOL, &b), 0);
	ck_assert_int_eq(gguf_writer_add(w, "str", GGUF_STRING, "h\xc3\xa9llo"), 0);
	ck_assert_int_eq(gguf_writer_add(w, "u64", GGUF_U64, &u64), 0);
	ck_assert_int_eq(gguf_writer_add(w, "i64", GGUF_I64, &i64), 0);
	ck_assert_int_eq(gguf_writer_add(w, "f64", GGUF_F64, &f64), 0);
	ck_assert_int_eq(gguf_writer_add(w, "arr", GGUF_ARRAY, &u8), -EINVAL);

	const uint8_t a_u8[] = { 0, 255 };
	const int8_t a_i8[] = { -128, 127 };
	const uint16_t a_u16[] = { 0, 65535 };
	const int16_t a_i16[] = { -32768, 32767 };
	const uint32_t a_u32[] = { 0, UINT32_MAX };
	const int32_t a_i32[] = { INT32_MIN, INT32_MAX };
	const float a_f32[] = { -0.25f, 3e38f };
	const bool a_bool[] = { false, true };
	const char *const a_str[] = { "", "\xe2\x96\x81the" };
	const uint64_t a_u64[] = { 0, UINT64_MAX };
	const int64_t a_i64[] = { INT64_MIN, INT64_MAX };
	const double a_f64[] = { -1e-300, 0.5 };
	const void *arrs[] = { a_u8, a_i8, a_u16, a_i16, a_u32, a_i32, a_f32, a_bool, a_str,
			       NULL, a_u64, a_i64, a_f64 };
	for (int t = 0; t <= GGUF_F64; t++) {
		char key[32];
		if (t == GGUF_ARRAY)
			continue;
		snprintf(key, sizeof(key), "arr.%s", gguf_vtype_name(t));
		ck_assert_int_eq(gguf_writer_add_arr(w, key, t, arrs[t], 2), 0);
	}
	ck_assert_int_eq(gguf_writer_add_arr(w, "arr.empty", GGUF_U32, NULL, 0), 0);

	size_t len;
	uint8_t *buf = t_gguf_finish(w, &len);
	struct gguf *g;
	char err[256];
	ck_assert_int_eq(gguf_open_buffer(buf, len, &g, err, sizeof(err)), 0);
	ck_assert_uint_eq(gguf_n_kv(g), 12 + 12 + 1);
	ck_assert_uint_eq(gguf_find_kv(g, "u8")->v.u64, 200);
	ck_assert_int_eq(gguf_find_kv(g, "i8")->v.i64, -100);
	ck_assert_uint_eq(gguf_find_kv(g, "u16")->v.u64, 60000);
	ck_assert_int_eq(gguf_find_kv(g, "i16")->v.i64, -30000);
	ck_assert_uint_eq(gguf_find_kv(g, "u32")->v.u64, 4000000000u);
	ck_assert_int_eq(gguf_find_kv(g, "i32")->v.i64, -2000000000);
	ck_assert(gguf_find_kv(g, "f32")->v.f64 == 1.5);
	ck_assert(gguf_find_kv(g, "bool")->v.b);
	ck_assert(gguf_str_eq(gguf_find_kv(g, "str")->v.str, "h\xc3\xa9llo"));
	ck_assert_uint_eq(gguf_find_kv(g, "u64")->v.u64, 1ull << 60);
	ck_assert_int_eq(gguf_find_kv(g, "i64")->v.i64, -(1ll << 60));
	ck_assert(gguf_find_kv(g, "f64")->v.f64 == 1e300);
	for (int t = 0; t <= GGUF_F64; t++) {
		if (t == GGUF_ARRAY)
			continue;
		char key[32];
		snprintf(key, sizeof(key), "arr.%s", gguf_vtype_name(t));
		const struct gguf_kv *kv;
		ck_assert_int_eq(gguf_get_arr(g, key, t, &kv, err, sizeof(err)), 0);
		ck_assert_uint_eq(kv->v.arr.n, 2);
	}
	const struct gguf_kv *kv;
#define ARR(name) (kv = arr_kv(g, GGUF_##name))
	ck_assert_int_eq(gguf_arr_i64(ARR(U8), 1), 255);
	ck_assert_int_eq(gguf_arr_i64(ARR(I8), 0), -128);
	ck_assert_int_eq(gguf_arr_i64(ARR(U16), 1), 65535);
	ck_assert_int_eq(gguf_arr_i64(ARR(I16), 0), -32768);
	ck_assert_int_eq(gguf_arr_i64(ARR(U32), 1), UINT32_MAX);
	ck_assert_int_eq(gguf_arr_i64(ARR(I32), 0), INT32_MIN);
	ck_assert(gguf_arr_f64(ARR(F32), 0) == -0.25 && gguf_arr_f64(kv, 1) == (double)3e38f);
	ck_assert(gguf_arr_i64(ARR(BOOL), 0) == 0 && gguf_arr_i64(kv, 1) == 1);
	ck_assert(gguf_str_eq(ARR(STRING)->v.arr.strs[0], ""));
	ck_assert(gguf_str_eq(kv->v.arr.strs[1], "\xe2\x96\x81the"));
	ck_assert(gguf_arr_f64(ARR(U64), 1) == 18446744073709551615.0);
	ck_assert_int_eq(gguf_arr_i64(ARR(I64), 0), INT64_MIN);
	ck_assert(gguf_arr_f64(ARR(F64), 0) == -1e-300 && gguf_arr_f64(kv, 1) == 0.5);
#undef ARR
	ck_assert_int_eq(gguf_get_arr(g, "arr.empty", GGUF_U32, &kv, err, sizeof(err)), 0);
	ck_assert_uint_eq(kv->v.arr.n, 0);
	gguf_close(g);
	free(buf);
}
END_TEST

static const enum gi_type all_types[] = {
	GI_TYPE_F32, GI_TYPE_F16, GI_TYPE_BF16, GI_TYPE_Q8_0, GI_TYPE_Q4_0, GI_TYPE_Q4_K,
	GI_TYPE_Q6_K, GI_TYPE_Q8_K,
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

/* Tensors of every type, streamed to a file and built in memory: the bytes
 * agree, and the reader finds each tensor's data where it was written. */
START_TEST(round_trip_tensors)
{
	struct gguf_writer *w = t_gguf_writer();
	ck_assert_int_eq(gguf_writer_set_alignment(w, 64), 0);
	ck_assert_int_eq(gguf_writer_add_u32(w, "general.alignment", 64), 0);
	uint64_t total = 0;
	for (size_t i = 0; i < N_TYPES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "t.%s", gi_type_name(all_types[i]));
		ck_assert_int_eq(gguf_writer_add_tensor(w, name, all_types[i], 3,
							(const uint64_t[]){ 256, 3, 2 }), 0);
		total += gi_type_row_bytes(all_types[i], 256) * 6;
	}
	ck_assert_int_eq(gguf_writer_add_tensor(w, "bad", GI_TYPE_Q4_K, 1,
						(const uint64_t[]){ 100 }), -EINVAL);
	ck_assert_int_eq(gguf_writer_add_tensor(w, "bad", 99, 1, (const uint64_t[]){ 1 }), -EINVAL);
	ck_assert_uint_ge(gguf_writer_data_size(w), total);

	char *dir = t_tmpdir(), path[512];
	snprintf(path, sizeof(path), "%s/t.gguf", dir);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(gguf_writer_write_data(w, f, "x", 1), -EINVAL); /* before the header */
	ck_assert_int_eq(gguf_writer_write_header(w, f), 0);
	size_t data_len = (size_t)gguf_writer_data_size(w);
	uint8_t *data = calloc(1, data_len);
	uint64_t pos = 0;
	for (size_t i = 0; i < N_TYPES; i++) {
		size_t n = gi_type_row_bytes(all_types[i], 256) * 6;
		uint8_t *chunk = malloc(n);
		for (size_t k = 0; k < n; k++)
			chunk[k] = (uint8_t)(i * 31 + k);
		pos = (pos + 63) / 64 * 64;
		memcpy(data + pos, chunk, n);
		pos += n;
		ck_assert_int_eq(gguf_writer_finish(w, f), -EINVAL); /* early */
		/* in two pieces, to cross a write boundary */
		ck_assert_int_eq(gguf_writer_write_data(w, f, chunk, n / 3), 0);
		ck_assert_int_eq(gguf_writer_write_data(w, f, chunk + n / 3, n - n / 3), 0);
		free(chunk);
	}
	ck_assert_int_eq(gguf_writer_write_data(w, f, "x", 1), -EINVAL); /* past the end */
	ck_assert_int_eq(gguf_writer_finish(w, f), 0);
	fclose(f);

	void *mem;
	size_t mem_len, file_len;
	ck_assert_int_eq(gguf_writer_to_buffer(w, data, data_len, &mem, &mem_len), 0);
	uint8_t *file = t_read_file(path, &file_len);
	ck_assert_uint_eq(file_len, mem_len);
	ck_assert_int_eq(memcmp(file, mem, mem_len), 0);

	struct gguf *g;
	char err[256];
	ck_assert_int_eq(gguf_open(path, &g, err, sizeof(err)), 0);
	ck_assert_uint_eq(gguf_alignment(g), 64);
	ck_assert_uint_eq(gguf_data_offset(g) % 64, 0);
	ck_assert_uint_eq(gguf_n_tensors(g), N_TYPES);
	for (size_t i = 0; i < N_TYPES; i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		ck_assert_int_eq(t->type, all_types[i]);
		ck_assert_uint_eq(t->n_dims, 3);
		ck_assert(t->ne[0] == 256 && t->ne[1] == 3 && t->ne[2] == 2 && t->ne[3] == 1);
		ck_assert_uint_eq(t->size, gi_type_row_bytes(all_types[i], 256) * 6);
		ck_assert_int_eq(memcmp(t->data, data + t->offset, t->size), 0);
		char name[32];
		snprintf(name, sizeof(name), "t.%s", gi_type_name(all_types[i]));
		ck_assert_ptr_eq(gguf_find_tensor(g, name), t);
	}
	gguf_close(g);
	unlink(path);
	rmdir(dir);
	free(dir);
	free(file);
	free(mem);
	free(data);
	gguf_writer_free(w);
}
END_TEST

/* A file copied key by key through gguf_writer_copy_kv reads back equal. */
START_TEST(copy_kv_round_trip)
{
	struct gguf *src = open_shared("models/stories260K.gguf");
	struct gguf_writer *w = t_gguf_writer();
	for (uint64_t i = 0; i < gguf_n_kv(src); i++)
		ck_assert_int_eq(gguf_writer_copy_kv(w, gguf_kv_at(src, i)), 0);
	size_t len;
	uint8_t *buf = t_gguf_finish(w, &len);
	struct gguf *g;
	char err[256];
	ck_assert_int_eq(gguf_open_buffer(buf, len, &g, err, sizeof(err)), 0);
	ck_assert_uint_eq(gguf_n_kv(g), gguf_n_kv(src));
	for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
		const struct gguf_kv *a = gguf_kv_at(src, i), *b = gguf_kv_at(g, i);
		ck_assert(a->key.len == b->key.len && !memcmp(a->key.ptr, b->key.ptr, a->key.len));
		ck_assert_int_eq(a->type, b->type);
		if (a->type == GGUF_ARRAY) {
			ck_assert_int_eq(a->v.arr.type, b->v.arr.type);
			ck_assert_uint_eq(a->v.arr.n, b->v.arr.n);
			for (uint64_t k = 0; k < a->v.arr.n; k++)
				ck_assert(a->v.arr.type == GGUF_STRING
						  ? a->v.arr.strs[k].len == b->v.arr.strs[k].len
						  : gguf_arr_f64(a, k) == gguf_arr_f64(b, k));
		} else if (a->type == GGUF_STRING) {
			ck_assert(a->v.str.len == b->v.str.len &&
				  !memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len));
		} else {
			ck_assert(a->v.u64 == b->v.u64);
		}
	}
	gguf_close(g);
	gguf_close(src);
	free(buf);
}
END_TEST

/* ---- getters ------------------------------------------------------------------------ */

START_TEST(typed_getters)
{
	struct gguf_writer *w = t_gguf_writer();
	uint8_t u8 = 7;
	int32_t neg = -5;
	uint64_t big = 1ull << 40;
	double d = 0.25;
	gguf_writer_add(w, "small", GGUF_U8, &u8);
	gguf_writer_add(w, "neg", GGUF_I32, &neg);
	gguf_writer_add(w, "big", GGUF_U64, &big);
	gguf_writer_add(w, "d", GGUF_F64, &d);
	gguf_writer_add_str(w, "s", "text");
	gguf_writer_add_arr(w, "a", GGUF_I32, &neg, 1);
	size_t len;
	uint8_t *buf = t_gguf_finish(w, &len);
	struct gguf *g;
	char err[256];
	ck_assert_int_eq(gguf_open_buffer(buf, len, &g, err, sizeof(err)), 0);
	uint32_t u;
	uint64_t u64;
	int64_t i64;
	float f;
	bool b;
	struct gguf_str s;
	const struct gguf_kv *kv;
	ck_assert_int_eq(gguf_get_u32(g, "small", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 7);
	u = 99;
	ck_assert_int_eq(gguf_get_u32(g, "neg", &u, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "key neg: value -5 is negative");
	ck_assert_uint_eq(u, 99); /* untouched on failure */
	ck_assert_int_eq(gguf_get_i64(g, "neg", &i64, err, sizeof(err)), 0);
	ck_assert_int_eq(i64, -5);
	ck_assert_int_eq(gguf_get_u32(g, "big", &u, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "key big: value 1099511627776 does not fit in u32");
	ck_assert_int_eq(gguf_get_u64(g, "big", &u64, err, sizeof(err)), 0);
	ck_assert_uint_eq(u64, 1ull << 40);
	ck_assert_int_eq(gguf_get_f32(g, "d", &f, err, sizeof(err)), 0);
	ck_assert(f == 0.25f);
	ck_assert_int_eq(gguf_get_f32(g, "s", &f, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "key s: type string, want f32");
	ck_assert_int_eq(gguf_get_str(g, "s", &s, err, sizeof(err)), 0);
	ck_assert(gguf_str_eq(s, "text") && !gguf_str_eq(s, "tex") && !gguf_str_eq(s, "texts"));
	ck_assert_int_eq(gguf_get_u32(g, "s", &u, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(gguf_get_bool(g, "small", &b, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "key small: type u8, want bool");
	ck_assert_int_eq(gguf_get_u32(g, "nope", &u, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "key nope: missing");
	ck_assert_int_eq(gguf_get_arr(g, "a", GGUF_F32, &kv, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "key a: array of i32, want array of f32");
	ck_assert_int_eq(gguf_get_arr(g, "s", GGUF_F32, &kv, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(gguf_get_arr(g, "a", GGUF_I32, &kv, err, sizeof(err)), 0);
	ck_assert_int_eq(gguf_arr_i64(kv, 0), -5);
	ck_assert_ptr_null(gguf_kv_at(g, 6));
	ck_assert_ptr_null(gguf_tensor_at(g, 0));
	gguf_close(g);
	free(buf);
}
END_TEST

/* Finishes writer W and expects the file to fail with the given message parts. */
#define EXPECT_FAIL_W(w, ...) do {                                   \
		size_t n_;                                           \
		uint8_t *b_ = t_gguf_finish((w), &n_);               \
		T_GGUF_EXPECT_FAIL(b_, n_, __VA_ARGS__);             \
	} while (0)

/* ---- hostile files -------------------------------------------------------------------- */

START_TEST(small_file_valid)
{
	size_t len;
	uint8_t *buf = t_gguf_small(&len);
	char err[256];
	ck_assert_int_eq(t_gguf_open_walk(buf, len, err, sizeof(err)), 0);
	free(buf);
}
END_TEST

/* Every proper prefix of a valid file is truncated: clean failure, no crash. */
START_TEST(truncated_everywhere)
{
	size_t len;
	uint8_t *buf = t_gguf_small(&len);
	char err[512];
	for (size_t n = 0; n < len; n++) {
		ck_assert_msg(t_gguf_open_walk(buf, n, err, sizeof(err)) < 0, "prefix %zu opened", n);
		ck_assert_msg(strstr(err, "truncated") || strstr(err, "out of bounds") ||
				      strstr(err, "exceeds") || strstr(err, "cannot fit"),
			      "prefix %zu: %s", n, err);
	}
	ck_assert_int_eq(t_gguf_open_walk(buf, len, err, sizeof(err)), 0);
	free(buf);
}
END_TEST

/* Every single-bit flip in the file either fails cleanly or opens with
 * everything inside the buffer (t_gguf_open_walk checks). */
START_TEST(bit_flips)
{
	size_t len;
	uint8_t *buf = t_gguf_small(&len);
	char err[512];
	int failed = 0, opened = 0;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			if (t_gguf_open_walk(buf, len, err, sizeof(err)) < 0)
				failed++;
			else
				opened++;
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_int_gt(failed, 0);
	ck_assert_int_gt(opened, 0); /* flips in tensor data are harmless */
	free(buf);
}
END_TEST

START_TEST(bad_magic_and_version)
{
	size_t len;
	uint8_t *buf = t_gguf_small(&len);
	buf[0] = 'X';
	T_GGUF_EXPECT_FAIL(buf, len, "magic", "58 47 55 46");
	buf = t_gguf_small(&len);
	t_gguf_poke32(buf, 4, 1);
	T_GGUF_EXPECT_FAIL(buf, len, "version: 1", "not supported");
	buf = t_gguf_small(&len);
	t_gguf_poke32(buf, 4, 99);
	T_GGUF_EXPECT_FAIL(buf, len, "version: 99");
	buf = t_gguf_small(&len);
	t_gguf_poke32(buf, 4, 0x03000000);
	T_GGUF_EXPECT_FAIL(buf, len, "version: 50331648", "big-endian");
	buf = t_gguf_small(&len);
	t_gguf_poke32(buf, 4, 2);
	char err[256];
	ck_assert_int_eq(t_gguf_open_walk(buf, len, err, sizeof(err)), 0); /* v2 = v3 layout */
	free(buf);
}
END_TEST

START_TEST(huge_counts)
{
	size_t len;
	uint8_t *buf = t_gguf_small(&len);
	t_gguf_poke64(buf, 16, 1ull << 40);
	T_GGUF_EXPECT_FAIL(buf, len, "n_kv", "1099511627776");
	buf = t_gguf_small(&len);
	t_gguf_poke64(buf, 8, UINT64_MAX);
	T_GGUF_EXPECT_FAIL(buf, len, "n_tensors", "18446744073709551615");
	buf = t_gguf_small(&len);
	t_gguf_poke64(buf, 8, 100); /* fits the limit, not the bytes left */
	T_GGUF_EXPECT_FAIL(buf, len, "n_tensors: 100", "cannot fit");
	buf = t_gguf_small(&len);
	t_gguf_poke64(buf, 24, 1ull << 62); /* length of the first key */
	T_GGUF_EXPECT_FAIL(buf, len, "kv[0].key", "string length 4611686018427387904");
	buf = t_gguf_small(&len);
	size_t at = t_gguf_find(buf, len, "tokenizer.ggml.scores", 21);
	t_gguf_poke64(buf, at + 21 + 4 + 4, 1ull << 61); /* count after type and elem type */
	T_GGUF_EXPECT_FAIL(buf, len, "tokenizer.ggml.scores", "array count 2305843009213693952");
	buf = t_gguf_small(&len);
	at = t_gguf_find(buf, len, "tokenizer.ggml.tokens", 21);
	t_gguf_poke64(buf, at + 21 + 8 + 8 + 8, 1ull << 50); /* length of the second string */
	T_GGUF_EXPECT_FAIL(buf, len, "tokenizer.ggml.tokens", "element 1", "string length");
	buf = t_gguf_small(&len);
	at = t_gguf_find(buf, len, "c.weight", 8);
	t_gguf_poke64(buf, at - 8, 1ull << 40); /* length of a tensor name */
	T_GGUF_EXPECT_FAIL(buf, len, "tensor[2].name", "string length");
}
END_TEST

static uint8_t *one_tensor(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t offset,
			   size_t data_len, size_t *ret_len)
{
	struct gguf_writer *w = t_gguf_writer();
	ck_assert_int_eq(gguf_writer_add_tensor_raw(w, "w.weight", type, n_dims, ne, offset), 0);
	void *buf;
	ck_assert_int_eq(gguf_writer_to_buffer(w, NULL, data_len, &buf, ret_len), 0);
	gguf_writer_free(w);
	return buf;
}

START_TEST(bad_tensors)
{
	size_t len;
	uint8_t *buf = one_tensor(GI_TYPE_F32, 2, (const uint64_t[]){ 8, 8 }, 1 << 20, 256, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "out of bounds", "1048576");
	buf = one_tensor(GI_TYPE_F32, 2, (const uint64_t[]){ 8, 8 }, UINT64_MAX - 31, 256, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "out of bounds"); /* offset + size wraps */
	buf = one_tensor(GI_TYPE_F32, 2, (const uint64_t[]){ 8, 8 }, 0, 255, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "out of bounds");
	buf = one_tensor(GI_TYPE_F32, 2, (const uint64_t[]){ 8, 8 }, 16, 512, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "offset 16", "alignment 32");
	buf = one_tensor(99, 1, (const uint64_t[]){ 8 }, 0, 64, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "unknown type 99");
	buf = one_tensor(GI_TYPE_F32, 3, (const uint64_t[]){ 1ull << 32, 1ull << 32, 1ull << 32 },
			 0, 64, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "ne[1]", "overflows");
	buf = one_tensor(GI_TYPE_F32, 1, (const uint64_t[]){ UINT64_MAX }, 0, 64, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "ne[0]", "overflows");
	buf = one_tensor(GI_TYPE_F32, 5, (const uint64_t[]){ 1, 1, 1, 1, 1 }, 0, 64, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "n_dims 5");
	buf = one_tensor(GI_TYPE_Q4_0, 2, (const uint64_t[]){ 33, 2 }, 0, 256, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight", "ne[0] = 33", "block size 32");
	/* elements fit in 64 bits, bytes do not */
	buf = one_tensor(GI_TYPE_F32, 2, (const uint64_t[]){ 1ull << 31, 1ull << 31 }, 0, 64, &len);
	T_GGUF_EXPECT_FAIL(buf, len, "tensor w.weight");

	struct gguf_writer *w = t_gguf_writer();
	gguf_writer_add_tensor_raw(w, "a", GI_TYPE_F32, 1, (const uint64_t[]){ 32 }, 0);
	gguf_writer_add_tensor_raw(w, "b", GI_TYPE_F32, 1, (const uint64_t[]){ 32 }, 64);
	void *v;
	ck_assert_int_eq(gguf_writer_to_buffer(w, NULL, 256, &v, &len), 0);
	gguf_writer_free(w);
	T_GGUF_EXPECT_FAIL(v, len, "tensor b", "overlaps tensor a", "[64, 192)", "[0, 128)");

	w = t_gguf_writer();
	gguf_writer_add_tensor(w, "a", GI_TYPE_F32, 1, (const uint64_t[]){ 32 });
	gguf_writer_add_tensor(w, "a", GI_TYPE_F32, 1, (const uint64_t[]){ 32 });
	EXPECT_FAIL_W(w, "tensor a", "duplicate tensor name");
}
END_TEST

START_TEST(bad_metadata)
{
	uint32_t a0 = 0, a3 = 3, one = 1;
	struct gguf_writer *w = t_gguf_writer();
	gguf_writer_add(w, "general.alignment", GGUF_U32, &a0);
	EXPECT_FAIL_W(w, "general.alignment", "0 is not a power of two");
	w = t_gguf_writer();
	gguf_writer_add(w, "general.alignment", GGUF_U32, &a3);
	EXPECT_FAIL_W(w, "general.alignment", "3 is not a power of two");
	w = t_gguf_writer();
	gguf_writer_add_str(w, "general.alignment", "32");
	EXPECT_FAIL_W(w, "general.alignment", "type string");

	w = t_gguf_writer();
	gguf_writer_add(w, "k", GGUF_U32, &one);
	gguf_writer_add(w, "k", GGUF_U32, &one);
	EXPECT_FAIL_W(w, "key k: duplicate key");

	w = t_gguf_writer();
	gguf_writer_add_raw_kv(w, "weird", 13, &one, 4);
	EXPECT_FAIL_W(w, "key weird", "unknown value type 13");

	/* arrays of arrays: rejected by name, whatever the depth */
	uint8_t nested[4 + 8 + 4 + 8 + 4];
	t_gguf_poke32(nested, 0, GGUF_ARRAY);
	t_gguf_poke64(nested, 4, 1);
	t_gguf_poke32(nested, 12, GGUF_U32);
	t_gguf_poke64(nested, 16, 1);
	t_gguf_poke32(nested, 24, 5);
	w = t_gguf_writer();
	gguf_writer_add_raw_kv(w, "nested", GGUF_ARRAY, nested, sizeof(nested));
	EXPECT_FAIL_W(w, "key nested", "arrays of arrays");

	uint8_t two = 2;
	w = t_gguf_writer();
	gguf_writer_add_raw_kv(w, "flag", GGUF_BOOL, &two, 1);
	EXPECT_FAIL_W(w, "key flag", "bool value 2");

	uint8_t barr[4 + 8 + 2] = { GGUF_BOOL, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 7 };
	w = t_gguf_writer();
	gguf_writer_add_raw_kv(w, "flags", GGUF_ARRAY, barr, sizeof(barr));
	EXPECT_FAIL_W(w, "key flags", "element 1", "bool value 7");

	/* unprintable key bytes are shown as '?' */
	w = t_gguf_writer();
	gguf_writer_add(w, "a\x01\xff", GGUF_U32, &one);
	gguf_writer_add(w, "a\x01\xff", GGUF_U32, &one);
	EXPECT_FAIL_W(w, "key a?" "?:", "duplicate");
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("gguf");
	TCase *tc = tcase_create("models");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stories260k);
	tcase_add_test(tc, llama2_tiny_random);
	tcase_add_loop_test(tc, vocab_only_files, 0,
			    (int)(sizeof(vocab_files) / sizeof(vocab_files[0])));
	tcase_add_test(tc, open_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("round_trip");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, round_trip_metadata);
	tcase_add_test(tc, round_trip_tensors);
	tcase_add_test(tc, copy_kv_round_trip);
	tcase_add_test(tc, typed_getters);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, small_file_valid);
	tcase_add_test(tc, truncated_everywhere);
	tcase_add_test(tc, bit_flips);
	tcase_add_test(tc, bad_magic_and_version);
	tcase_add_test(tc, huge_counts);
	tcase_add_test(tc, bad_tensors);
	tcase_add_test(tc, bad_metadata);
	suite_add_tcase(s, tc);
	return s;
}
