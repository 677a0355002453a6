/* Helpers for tests that craft GGUF files (see gguf_craft.h). */
#include "tests/engine/gguf_craft.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tests/t_util.h"

struct gguf_writer *t_gguf_writer(void)
{
	struct gguf_writer *w = NULL;
	ck_assert_int_eq(gguf_writer_new(&w), 0);
	return w;
}

uint8_t *t_gguf_finish(struct gguf_writer *w, size_t *ret_len)
{
	size_t n = (size_t)gguf_writer_data_size(w);
	uint8_t *data = malloc(n + 1);
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	void *buf = NULL;
	ck_assert_int_eq(gguf_writer_to_buffer(w, data, n, &buf, ret_len), 0);
	free(data);
	gguf_writer_free(w);
	return buf;
}

uint8_t *t_gguf_small(size_t *ret_len)
{
	struct gguf_writer *w = t_gguf_writer();
	static const char *const toks[] = { "<unk>", "a", "" };
	static const float scores[] = { 0.0f, -1.0f, -2.0f };
	ck_assert_int_eq(gguf_writer_add_str(w, "general.architecture", "llama"), 0);
	ck_assert_int_eq(gguf_writer_add_u32(w, "llama.block_count", 1), 0);
	ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.tokens", GGUF_STRING, toks, 3), 0);
	ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, 3), 0);
	ck_assert_int_eq(gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true), 0);
	ck_assert_int_eq(gguf_writer_add_tensor(w, "a.weight", GI_TYPE_Q4_0, 2,
						(const uint64_t[]){ 32, 2 }), 0);
	ck_assert_int_eq(gguf_writer_add_tensor(w, "b.weight", GI_TYPE_F16, 2,
						(const uint64_t[]){ 16, 2 }), 0);
	ck_assert_int_eq(gguf_writer_add_tensor(w, "c.weight", GI_TYPE_F32, 2,
						(const uint64_t[]){ 8, 4 }), 0);
	return t_gguf_finish(w, ret_len);
}

static void check_in(const uint8_t *lo, const uint8_t *hi, const void *p, uint64_t n)
{
	const uint8_t *q = p;
	if (n == 0)
		return;
	ck_assert(q >= lo && q <= hi && n <= (uint64_t)(hi - q));
}

int t_gguf_open_walk(const void *buf, size_t len, char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf, len);
	const uint8_t *end = copy + len;
	struct gguf *g = NULL;
	err[0] = 0;
	int r = gguf_open_buffer(copy, len, &g, err, errlen);
	if (r < 0) {
		ck_assert_msg(err[0], "failure %d without a message", r);
		free(copy);
		return r;
	}
	volatile unsigned sum = 0;
	for (uint64_t i = 0; i < gguf_n_kv(g); i++) {
		const struct gguf_kv *kv = gguf_kv_at(g, i);
		check_in(copy, end, kv->key.ptr, kv->key.len);
		for (uint64_t k = 0; k < kv->key.len; k++)
			sum += (unsigned char)kv->key.ptr[k];
		if (kv->type == GGUF_STRING)
			check_in(copy, end, kv->v.str.ptr, kv->v.str.len);
		if (kv->type != GGUF_ARRAY)
			continue;
		if (kv->v.arr.type == GGUF_STRING) {
			for (uint64_t k = 0; k < kv->v.arr.n; k++)
				check_in(copy, end, kv->v.arr.strs[k].ptr, kv->v.arr.strs[k].len);
			continue;
		}
		check_in(copy, end, kv->v.arr.data, kv->v.arr.n * gguf_vtype_size(kv->v.arr.type));
		for (uint64_t k = 0; k < kv->v.arr.n; k++)
			sum += (unsigned)gguf_arr_i64(kv, k) + (unsigned)gguf_arr_f64(kv, k);
	}
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		check_in(copy, end, t->name.ptr, t->name.len);
		check_in(copy, end, t->data, t->size);
		ck_assert_uint_le(gguf_data_offset(g) + t->offset + t->size, len);
		if (t->size)
			sum += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
	}
	(void)sum;
	gguf_close(g);
	free(copy);
	return 0;
}

void t_gguf_expect_fail(uint8_t *buf, size_t len, ...)
{
	char err[512];
	int r = t_gguf_open_walk(buf, len, err, sizeof(err));
	ck_assert_msg(r < 0, "hostile file opened");
	va_list ap;
	va_start(ap, len);
	for (const char *s; (s = va_arg(ap, const char *));)
		ck_assert_msg(strstr(err, s), "message \"%s\" lacks \"%s\"", err, s);
	va_end(ap);
	free(buf);
}

size_t t_gguf_find(const uint8_t *buf, size_t len, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(buf + i, needle, n) == 0)
			return i;
	ck_abort_msg("pattern not found");
	return 0;
}

void t_gguf_poke64(uint8_t *buf, size_t off, uint64_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

void t_gguf_poke32(uint8_t *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}
