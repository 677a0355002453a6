/* libFuzzer target for the GGUF reader: any input either fails with a
 * message or opens with every key, string, array element and tensor inside
 * the input (ASan reports any read outside it). Seeds in
 * build/fuzz/corpus/fuzz_gguf/ are small files gi-mkmodel makes at build time (scripts/fuzz-seeds.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const void *p, uint64_t n, const uint8_t *lo, const uint8_t *hi,
		  volatile unsigned *sum)
{
	const uint8_t *q = p;
	if (!n)
		return;
	if (q < lo || q > hi || n > (uint64_t)(hi - q))
		abort(); /* the reader handed out memory outside the input */
	*sum += q[0] + q[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct gguf *g;
	if (gguf_open_buffer(data, size, &g, err, sizeof(err)) < 0) {
		if (!err[0])
			abort(); /* every failure names its cause */
		return 0;
	}
	const uint8_t *end = data + size;
	volatile unsigned sum = 0;
	for (uint64_t i = 0; i < gguf_n_kv(g); i++) {
		const struct gguf_kv *kv = gguf_kv_at(g, i);
		touch(kv->key.ptr, kv->key.len, data, end, &sum);
		char key[128];
		if (kv->key.len < sizeof(key) && !memchr(kv->key.ptr, 0, kv->key.len)) {
			memcpy(key, kv->key.ptr, kv->key.len);
			key[kv->key.len] = 0;
			if (gguf_find_kv(g, key) != kv)
				abort(); /* keys are unique, so lookup finds this one */
		}
		if (kv->type == GGUF_STRING)
			touch(kv->v.str.ptr, kv->v.str.len, data, end, &sum);
		if (kv->type != GGUF_ARRAY)
			continue;
		if (kv->v.arr.type == GGUF_STRING) {
			for (uint64_t k = 0; k < kv->v.arr.n; k++)
				touch(kv->v.arr.strs[k].ptr, kv->v.arr.strs[k].len, data, end, &sum);
		} else {
			touch(kv->v.arr.data, kv->v.arr.n * gguf_vtype_size(kv->v.arr.type), data,
			      end, &sum);
			for (uint64_t k = 0; k < kv->v.arr.n && k < 64; k++)
				sum += (unsigned)gguf_arr_i64(kv, k) + (unsigned)gguf_arr_f64(kv, k);
		}
	}
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		touch(t->name.ptr, t->name.len, data, end, &sum);
		touch(t->data, t->size, data, end, &sum);
		if (t->n_dims > GGUF_MAX_DIMS || t->offset % gguf_alignment(g))
			abort();
	}
	gguf_close(g);
	return 0;
}
