/* GGUF v3 writer (see engine/gguf_write.h and the layout in engine/gguf.c). */
#include "common/grow.h"
#include "engine/gguf_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bytes {
	uint8_t *p;
	size_t len, cap;
	int err; /* first allocation failure, sticky: later puts do nothing */
};

struct placed {
	uint64_t offset, size;
};

struct gguf_writer {
	uint32_t alignment;
	uint64_t n_kv, n_tensors;
	struct bytes kvs, infos;
	struct placed *placed; /* tensors added with gguf_writer_add_tensor, in order */
	size_t n_placed, cap_placed;
	uint64_t data_end;     /* unaligned end of the last placed tensor */
	/* streaming state */
	uint64_t pos;          /* bytes of the data section written */
	size_t cur;            /* placed tensor being written */
	bool header_done;
};

static int put(struct bytes *b, const void *p, size_t n)
{
	if (b->err)
		return b->err;
	if (n > SIZE_MAX - b->len)
		return b->err = -ENOMEM;
	uint8_t *q = grow_array(b->p, &b->cap, b->len + n, 1, 256);
	if (!q)
		return b->err = -ENOMEM;
	b->p = q;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int put_u32(struct bytes *b, uint32_t v)
{
	return put(b, &v, sizeof(v));
}

static int put_u64(struct bytes *b, uint64_t v)
{
	return put(b, &v, sizeof(v));
}

static int put_str(struct bytes *b, const char *s, uint64_t len)
{
	put_u64(b, len);
	return put(b, s, len);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

int gguf_writer_new(struct gguf_writer **ret)
{
	struct gguf_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->alignment = 32;
	*ret = w;
	return 0;
}

void gguf_writer_free(struct gguf_writer *w)
{
	if (!w)
		return;
	free(w->kvs.p);
	free(w->infos.p);
	free(w->placed);
	free(w);
}

int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment)
{
	if (alignment == 0 || (alignment & (alignment - 1)) || w->n_placed)
		return -EINVAL;
	w->alignment = alignment;
	return 0;
}

/* ---- metadata ------------------------------------------------------------------ */

static int put_key(struct gguf_writer *w, const char *key, uint32_t type)
{
	put_str(&w->kvs, key, strlen(key));
	int r = put_u32(&w->kvs, type);
	if (r == 0)
		w->n_kv++;
	return r;
}

int gguf_writer_add(struct gguf_writer *w, const char *key, enum gguf_vtype t, const void *val)
{
	if (t == GGUF_STRING) {
		put_key(w, key, t);
		return put_str(&w->kvs, val, strlen(val));
	}
	size_t n = gguf_vtype_size(t);
	if (!n)
		return -EINVAL;
	uint8_t b;
	if (t == GGUF_BOOL) {
		b = *(const bool *)val;
		val = &b;
	}
	put_key(w, key, t);
	return put(&w->kvs, val, n);
}

int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
	return gguf_writer_add(w, key, GGUF_U32, &v);
}

int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v)
{
	return gguf_writer_add(w, key, GGUF_F32, &v);
}

int gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v)
{
	return gguf_writer_add(w, key, GGUF_BOOL, &v);
}

int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v)
{
	return gguf_writer_add(w, key, GGUF_STRING, v);
}

static int put_arr_head(struct gguf_writer *w, const char *key, enum gguf_vtype elem, uint64_t n)
{
	put_key(w, key, GGUF_ARRAY);
	put_u32(&w->kvs, elem);
	return put_u64(&w->kvs, n);
}

int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem,
			const void *data, uint64_t n)
{
	if (elem == GGUF_STRING) {
		const char *const *s = data;
		put_arr_head(w, key, elem, n);
		for (uint64_t i = 0; i < n; i++)
			put_str(&w->kvs, s[i], strlen(s[i]));
		return w->kvs.err;
	}
	size_t es = gguf_vtype_size(elem);
	if (!es || n > SIZE_MAX / es)
		return -EINVAL;
	put_arr_head(w, key, elem, n);
	if (elem != GGUF_BOOL)
		return put(&w->kvs, data, n * es);
	const bool *b = data;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t v = b[i];
		put(&w->kvs, &v, 1);
	}
	return w->kvs.err;
}

int gguf_writer_add_strs(struct gguf_writer *w, const char *key, const struct gguf_str *strs,
			 uint64_t n)
{
	put_arr_head(w, key, GGUF_STRING, n);
	for (uint64_t i = 0; i < n; i++)
		put_str(&w->kvs, strs[i].ptr, strs[i].len);
	return w->kvs.err;
}

int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv)
{
	char key[4096];
	if (kv->key.len >= sizeof(key) || memchr(kv->key.ptr, 0, kv->key.len))
		return -EINVAL;
	memcpy(key, kv->key.ptr, kv->key.len);
	key[kv->key.len] = 0;
	if (kv->type == GGUF_STRING) {
		put_key(w, key, GGUF_STRING);
		return put_str(&w->kvs, kv->v.str.ptr, kv->v.str.len);
	}
	if (kv->type == GGUF_ARRAY) {
		if (kv->v.arr.type == GGUF_STRING)
			return gguf_writer_add_strs(w, key, kv->v.arr.strs, kv->v.arr.n);
		put_arr_head(w, key, kv->v.arr.type, kv->v.arr.n);
		return put(&w->kvs, kv->v.arr.data, kv->v.arr.n * gguf_vtype_size(kv->v.arr.type));
	}
	/* Scalars are stored widened in the kv; narrow them back. */
	union {
		uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
		float f32; uint64_t u64; int64_t i64; double f64; bool b;
	} v;
	switch (kv->type) {
	case GGUF_U8: v.u8 = (uint8_t)kv->v.u64; break;
	case GGUF_I8: v.i8 = (int8_t)kv->v.i64; break;
	case GGUF_U16: v.u16 = (uint16_t)kv->v.u64; break;
	case GGUF_I16: v.i16 = (int16_t)kv->v.i64; break;
	case GGUF_U32: v.u32 = (uint32_t)kv->v.u64; break;
	case GGUF_I32: v.i32 = (int32_t)kv->v.i64; break;
	case GGUF_F32: v.f32 = (float)kv->v.f64; break;
	case GGUF_U64: v.u64 = kv->v.u64; break;
	case GGUF_I64: v.i64 = kv->v.i64; break;
	case GGUF_F64: v.f64 = kv->v.f64; break;
	case GGUF_BOOL: v.b = kv->v.b; break;
	default: return -EINVAL;
	}
	return gguf_writer_add(w, key, kv->type, &v);
}

int gguf_writer_add_raw_kv(struct gguf_writer *w, const char *key, uint32_t type,
			   const void *payload, size_t n)
{
	put_key(w, key, type);
	return put(&w->kvs, payload, n);
}

/* ---- tensor infos -------------------------------------------------------------- */

int gguf_writer_add_tensor_raw(struct gguf_writer *w, const char *name, uint32_t type,
			       uint32_t n_dims, const uint64_t *ne, uint64_t offset)
{
	put_str(&w->infos, name, strlen(name));
	put_u32(&w->infos, n_dims);
	for (uint32_t d = 0; d < n_dims; d++)
		put_u64(&w->infos, ne[d]);
	put_u32(&w->infos, type);
	int r = put_u64(&w->infos, offset);
	if (r == 0)
		w->n_tensors++;
	return r;
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum gi_type type,
			   uint32_t n_dims, const uint64_t *ne)
{
	if (n_dims > GGUF_MAX_DIMS || !gi_type_valid(type) || w->header_done)
		return -EINVAL;
	uint64_t rows = 1;
	for (uint32_t d = 1; d < n_dims; d++) {
		if (ne[d] && rows > UINT64_MAX / ne[d])
			return -EINVAL;
		rows *= ne[d];
	}
	uint64_t row = n_dims ? gi_type_row_bytes(type, ne[0]) : gi_type_row_bytes(type, 1);
	if (n_dims && ne[0] && !row)
		return -EINVAL;
	if (rows && row > UINT64_MAX / 2 / rows)
		return -EINVAL;
	struct placed *p = grow_array(w->placed, &w->cap_placed, w->n_placed + 1, sizeof(*p), 64);
	if (!p)
		return -ENOMEM;
	w->placed = p;
	uint64_t offset = align_up(w->data_end, w->alignment);
	int r = gguf_writer_add_tensor_raw(w, name, type, n_dims, ne, offset);
	if (r < 0)
		return r;
	w->placed[w->n_placed++] = (struct placed){ offset, row * rows };
	w->data_end = offset + row * rows;
	return 0;
}

uint64_t gguf_writer_data_size(const struct gguf_writer *w)
{
	return align_up(w->data_end, w->alignment);
}

uint64_t gguf_writer_header_size(const struct gguf_writer *w)
{
	return align_up(4 + 4 + 8 + 8 + w->kvs.len + w->infos.len, w->alignment);
}

/* ---- output ---------------------------------------------------------------------- */

static int build_header(const struct gguf_writer *w, struct bytes *h)
{
	uint64_t size = gguf_writer_header_size(w);
	put(h, "GGUF", 4);
	put_u32(h, 3); /* GGUF version */
	put_u64(h, w->n_tensors);
	put_u64(h, w->n_kv);
	put(h, w->kvs.p, w->kvs.len);
	put(h, w->infos.p, w->infos.len);
	while (!h->err && h->len < size)
		put(h, "", 1);
	return h->err ? h->err : w->kvs.err ? w->kvs.err : w->infos.err;
}

int gguf_writer_to_buffer(const struct gguf_writer *w, const void *data, size_t data_len,
			  void **ret_buf, size_t *ret_len)
{
	struct bytes h = { 0 };
	int r = build_header(w, &h);
	if (r < 0) {
		free(h.p);
		return r;
	}
	uint8_t *buf = malloc(h.len + data_len + 1);
	if (!buf) {
		free(h.p);
		return -ENOMEM;
	}
	memcpy(buf, h.p, h.len);
	if (data)
		memcpy(buf + h.len, data, data_len);
	else
		memset(buf + h.len, 0, data_len);
	*ret_len = h.len + data_len;
	*ret_buf = buf;
	free(h.p);
	return 0;
}

static int write_all(FILE *f, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, f) != n)
		return errno ? -errno : -EIO;
	return 0;
}

static int write_zeros(FILE *f, uint64_t n)
{
	static const uint8_t zeros[256];
	while (n) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
		int r = write_all(f, zeros, k);
		if (r < 0)
			return r;
		n -= k;
	}
	return 0;
}

int gguf_writer_write_header(struct gguf_writer *w, FILE *f)
{
	struct bytes h = { 0 };
	int r = build_header(w, &h);
	if (r == 0)
		r = write_all(f, h.p, h.len);
	free(h.p);
	w->header_done = r == 0;
	w->pos = 0;
	w->cur = 0;
	return r;
}

int gguf_writer_write_data(struct gguf_writer *w, FILE *f, const void *data, size_t n)
{
	const uint8_t *p = data;
	if (!w->header_done)
		return -EINVAL;
	while (n) {
		while (w->cur < w->n_placed &&
		       w->pos >= w->placed[w->cur].offset + w->placed[w->cur].size)
			w->cur++;
		if (w->cur == w->n_placed)
			return -EINVAL;
		const struct placed *t = &w->placed[w->cur];
		int r;
		if (w->pos < t->offset) {
			if ((r = write_zeros(f, t->offset - w->pos)) < 0)
				return r;
			w->pos = t->offset;
		}
		uint64_t room = t->offset + t->size - w->pos;
		size_t k = n < room ? n : (size_t)room;
		if ((r = write_all(f, p, k)) < 0)
			return r;
		w->pos += k;
		p += k;
		n -= k;
	}
	return 0;
}

int gguf_writer_finish(struct gguf_writer *w, FILE *f)
{
	if (!w->header_done || w->pos != w->data_end)
		return -EINVAL;
	int r = write_zeros(f, gguf_writer_data_size(w) - w->pos);
	if (r == 0 && fflush(f) != 0)
		r = errno ? -errno : -EIO;
	if (r == 0)
		w->pos = gguf_writer_data_size(w);
	return r;
}
