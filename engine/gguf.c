/* GGUF v2/v3 reader. Layout of a file (all little-endian):
 *
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x      { str key, u32 type, value }
 *   n_tensors x { str name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   zero padding to general.alignment (default 32)
 *   tensor data; each offset is relative to here and aligned
 *
 * where str is { u64 len, len bytes } and an array value is
 * { u32 elem_type, u64 n, n elements }. Every read goes through a cursor
 * that checks the bytes left first, every count is bounded by the bytes it
 * needs before anything is allocated, and every error names the field. */
#include "engine/gguf.h"
#include "common/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
/* Far above any real model (llama 405B has ~1300 tensors and ~40 keys);
 * keeps index arithmetic in 32 bits. */
#define GGUF_MAX_COUNT (1u << 24)
/* Smallest encodings: a key/value (empty key, u8 value) and a tensor info
 * (empty name, no dims). Counts are bounded by bytes left / these. */
#define KV_MIN_BYTES (8 + 4 + 1)
#define TENSOR_MIN_BYTES (8 + 4 + 4 + 8)

struct gguf {
	const uint8_t *base;
	size_t size;
	bool mapped;
	uint32_t version;
	uint32_t alignment;
	uint64_t data_offset;
	uint64_t n_kv, n_tensors;
	struct gguf_kv *kvs;
	struct gguf_tensor *tensors;
	/* open-addressing name indexes: slot holds index + 1, 0 = empty */
	uint32_t *kv_index, *tensor_index;
	uint32_t kv_mask, tensor_mask;
};

struct cursor {
	const uint8_t *base;
	size_t size, pos;
	char *err;
	size_t errlen;
};


const char *gguf_str_show(struct gguf_str s, char *buf, size_t cap)
{
	size_t n = 0;
	for (uint64_t i = 0; i < s.len && n + 4 < cap; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (s.len > n && n + 4 >= cap) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = 0;
	return buf;
}

static const size_t vtype_size[] = {
	[GGUF_U8] = 1, [GGUF_I8] = 1, [GGUF_U16] = 2, [GGUF_I16] = 2,
	[GGUF_U32] = 4, [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1,
	[GGUF_U64] = 8, [GGUF_I64] = 8, [GGUF_F64] = 8,
};

static const char *const vtype_names[] = {
	[GGUF_U8] = "u8", [GGUF_I8] = "i8", [GGUF_U16] = "u16", [GGUF_I16] = "i16",
	[GGUF_U32] = "u32", [GGUF_I32] = "i32", [GGUF_F32] = "f32", [GGUF_BOOL] = "bool",
	[GGUF_STRING] = "string", [GGUF_ARRAY] = "array", [GGUF_U64] = "u64",
	[GGUF_I64] = "i64", [GGUF_F64] = "f64",
};

const char *gguf_vtype_name(enum gguf_vtype t)
{
	return (unsigned)t <= GGUF_F64 ? vtype_names[t] : "unknown";
}

bool gguf_vtype_is_int(enum gguf_vtype t)
{
	return t <= GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

bool gguf_vtype_is_signed(enum gguf_vtype t)
{
	return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}

/* ---- cursor --------------------------------------------------------------- */

static size_t left(const struct cursor *c)
{
	return c->size - c->pos;
}

static int need(struct cursor *c, uint64_t n, const char *what)
{
	if (n <= left(c))
		return 0;
	return errmsg(c->err, c->errlen, -EINVAL,
		    "%s: truncated: needs %llu bytes at offset %zu, file has %zu",
		    what, (unsigned long long)n, c->pos, c->size);
}

static int rd(struct cursor *c, void *out, size_t n, const char *what)
{
	int r = need(c, n, what);
	if (r < 0)
		return r;
	memcpy(out, c->base + c->pos, n);
	c->pos += n;
	return 0;
}

static int rd_u32(struct cursor *c, uint32_t *v, const char *what)
{
	return rd(c, v, sizeof(*v), what);
}

static int rd_u64(struct cursor *c, uint64_t *v, const char *what)
{
	return rd(c, v, sizeof(*v), what);
}

static int rd_str(struct cursor *c, struct gguf_str *s, const char *what)
{
	uint64_t len;
	int r = rd_u64(c, &len, what);
	if (r < 0)
		return r;
	if (len > left(c))
		return errmsg(c->err, c->errlen, -EINVAL,
			    "%s: string length %llu exceeds the %zu bytes left at offset %zu",
			    what, (unsigned long long)len, left(c), c->pos);
	s->ptr = (const char *)c->base + c->pos;
	s->len = len;
	c->pos += len;
	return 0;
}

/* ---- name index ------------------------------------------------------------ */

static uint64_t hash_bytes(const char *p, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h;
}

static bool str_eq(struct gguf_str a, struct gguf_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static uint32_t *index_new(uint64_t n, uint32_t *ret_mask)
{
	uint64_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	*ret_mask = (uint32_t)(cap - 1);
	return calloc(cap, sizeof(uint32_t));
}

/* Looks KEY up; returns the index + 1 or 0, and where it would go. */
static uint32_t index_find(const uint32_t *idx, uint32_t mask, const void *items, size_t stride,
			   size_t name_off, struct gguf_str key, uint32_t *ret_slot)
{
	uint32_t slot = (uint32_t)hash_bytes(key.ptr, key.len) & mask;
	for (; idx[slot]; slot = (slot + 1) & mask) {
		const struct gguf_str *name = (const struct gguf_str *)
			((const char *)items + (idx[slot] - 1) * stride + name_off);
		if (str_eq(*name, key))
			break;
	}
	if (ret_slot)
		*ret_slot = slot;
	return idx[slot];
}

/* ---- metadata -------------------------------------------------------------- */

static int rd_scalar(struct cursor *c, enum gguf_vtype t, struct gguf_kv *kv, const char *what)
{
	union {
		uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
		float f32; uint64_t u64; int64_t i64; double f64;
	} v;
	int r = rd(c, &v, vtype_size[t], what);
	if (r < 0)
		return r;
	switch (t) {
	case GGUF_U8: kv->v.u64 = v.u8; break;
	case GGUF_I8: kv->v.i64 = v.i8; break;
	case GGUF_U16: kv->v.u64 = v.u16; break;
	case GGUF_I16: kv->v.i64 = v.i16; break;
	case GGUF_U32: kv->v.u64 = v.u32; break;
	case GGUF_I32: kv->v.i64 = v.i32; break;
	case GGUF_F32: kv->v.f64 = v.f32; break;
	case GGUF_U64: kv->v.u64 = v.u64; break;
	case GGUF_I64: kv->v.i64 = v.i64; break;
	case GGUF_F64: kv->v.f64 = v.f64; break;
	case GGUF_BOOL:
		if (v.u8 > 1)
			return errmsg(c->err, c->errlen, -EINVAL, "%s: bool value %u is not 0 or 1",
				    what, v.u8);
		kv->v.b = v.u8;
		break;
	default:
		break;
	}
	return 0;
}

static int rd_array(struct cursor *c, struct gguf_kv *kv, const char *what)
{
	uint32_t et;
	uint64_t n;
	int r = rd_u32(c, &et, what);
	if (r < 0 || (r = rd_u64(c, &n, what)) < 0)
		return r;
	if (et == GGUF_ARRAY)
		return errmsg(c->err, c->errlen, -ENOTSUP,
			    "%s: arrays of arrays are not supported", what);
	if (et > GGUF_F64)
		return errmsg(c->err, c->errlen, -EINVAL, "%s: unknown array element type %u",
			    what, et);
	size_t esize = et == GGUF_STRING ? 8 : vtype_size[et];
	if (n > left(c) / esize)
		return errmsg(c->err, c->errlen, -EINVAL,
			    "%s: array count %llu of %s exceeds the %zu bytes left at offset %zu",
			    what, (unsigned long long)n, vtype_names[et], left(c), c->pos);
	kv->v.arr.type = (enum gguf_vtype)et;
	kv->v.arr.n = n;
	kv->v.arr.data = c->base + c->pos;
	kv->v.arr.strs = NULL;
	if (et == GGUF_BOOL) {
		for (uint64_t i = 0; i < n; i++)
			if (c->base[c->pos + i] > 1)
				return errmsg(c->err, c->errlen, -EINVAL,
					    "%s: element %llu: bool value %u is not 0 or 1", what,
					    (unsigned long long)i, c->base[c->pos + i]);
	}
	if (et != GGUF_STRING) {
		c->pos += n * esize;
		return 0;
	}
	struct gguf_str *strs = malloc((n ? n : 1) * sizeof(*strs));
	if (!strs)
		return errmsg(c->err, c->errlen, -ENOMEM, "%s: out of memory for %llu strings",
			    what, (unsigned long long)n);
	kv->v.arr.strs = strs;
	for (uint64_t i = 0; i < n; i++) {
		char ewhat[352];
		snprintf(ewhat, sizeof(ewhat), "%s element %llu", what, (unsigned long long)i);
		if ((r = rd_str(c, &strs[i], ewhat)) < 0)
			return r;
	}
	return 0;
}

static int parse_kvs(struct gguf *g, struct cursor *c)
{
	g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof(*g->kvs));
	g->kv_index = index_new(g->n_kv, &g->kv_mask);
	if (!g->kvs || !g->kv_index)
		return errmsg(c->err, c->errlen, -ENOMEM, "n_kv: out of memory for %llu keys",
			    (unsigned long long)g->n_kv);
	for (uint64_t i = 0; i < g->n_kv; i++) {
		struct gguf_kv *kv = &g->kvs[i];
		char what[300], name[200];
		uint32_t t, slot;
		int r;
		snprintf(what, sizeof(what), "kv[%llu].key", (unsigned long long)i);
		if ((r = rd_str(c, &kv->key, what)) < 0)
			return r;
		snprintf(what, sizeof(what), "key %s", gguf_str_show(kv->key, name, sizeof(name)));
		if (index_find(g->kv_index, g->kv_mask, g->kvs, sizeof(*kv),
			       offsetof(struct gguf_kv, key), kv->key, &slot))
			return errmsg(c->err, c->errlen, -EINVAL, "%s: duplicate key", what);
		if ((r = rd_u32(c, &t, what)) < 0)
			return r;
		if (t > GGUF_F64)
			return errmsg(c->err, c->errlen, -EINVAL, "%s: unknown value type %u", what, t);
		kv->type = (enum gguf_vtype)t;
		if (t == GGUF_STRING)
			r = rd_str(c, &kv->v.str, what);
		else if (t == GGUF_ARRAY)
			r = rd_array(c, kv, what);
		else
			r = rd_scalar(c, kv->type, kv, what);
		if (r < 0)
			return r;
		g->kv_index[slot] = (uint32_t)i + 1;
	}
	return 0;
}

static int read_alignment(struct gguf *g, char *err, size_t errlen)
{
	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	const struct gguf_kv *kv = gguf_find_kv(g, "general.alignment");
	if (!kv)
		return 0;
	if (kv->type != GGUF_U32)
		return errmsg(err, errlen, -EINVAL, "general.alignment: type %s, want u32",
			    gguf_vtype_name(kv->type));
	uint64_t a = kv->v.u64;
	if (a == 0 || (a & (a - 1)))
		return errmsg(err, errlen, -EINVAL,
			    "general.alignment: %llu is not a power of two",
			    (unsigned long long)a);
	g->alignment = (uint32_t)a;
	return 0;
}

/* ---- tensors ----------------------------------------------------------------- */

static int parse_tensor(struct gguf *g, struct cursor *c, uint64_t i)
{
	struct gguf_tensor *t = &g->tensors[i];
	char what[300], name[200];
	uint32_t n_dims, type, slot;
	int r;

	snprintf(what, sizeof(what), "tensor[%llu].name", (unsigned long long)i);
	if ((r = rd_str(c, &t->name, what)) < 0)
		return r;
	snprintf(what, sizeof(what), "tensor %s", gguf_str_show(t->name, name, sizeof(name)));
	if (index_find(g->tensor_index, g->tensor_mask, g->tensors, sizeof(*t),
		       offsetof(struct gguf_tensor, name), t->name, &slot))
		return errmsg(c->err, c->errlen, -EINVAL, "%s: duplicate tensor name", what);
	if ((r = rd_u32(c, &n_dims, what)) < 0)
		return r;
	if (n_dims > GGUF_MAX_DIMS)
		return errmsg(c->err, c->errlen, -EINVAL, "%s: n_dims %u exceeds %d", what, n_dims,
			    GGUF_MAX_DIMS);
	t->n_dims = n_dims;
	uint64_t nelem = 1;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
		t->ne[d] = 1;
		if (d < n_dims && (r = rd_u64(c, &t->ne[d], what)) < 0)
			return r;
		if (t->ne[d] > INT64_MAX ||
		    (t->ne[d] && nelem > (uint64_t)INT64_MAX / t->ne[d]))
			return errmsg(c->err, c->errlen, -EINVAL,
				    "%s: ne[%u] = %llu overflows the element count", what, d,
				    (unsigned long long)t->ne[d]);
		nelem *= t->ne[d];
	}
	if ((r = rd_u32(c, &type, what)) < 0)
		return r;
	if (!gi_type_valid(type))
		return errmsg(c->err, c->errlen, -ENOTSUP, "%s: unknown type %u", what, type);
	t->type = (enum gi_type)type;
	if ((r = rd_u64(c, &t->offset, what)) < 0)
		return r;

	size_t be = gi_type_block_elems(t->type);
	if (t->ne[0] % be)
		return errmsg(c->err, c->errlen, -EINVAL,
			    "%s: row length ne[0] = %llu is not a multiple of the block size %zu of type %s",
			    what, (unsigned long long)t->ne[0], be, gi_type_name(t->type));
	uint64_t row = t->ne[0] / be * gi_type_block_bytes(t->type);
	uint64_t rows = nelem && t->ne[0] ? nelem / t->ne[0] : 0;
	if (rows && row > UINT64_MAX / rows)
		return errmsg(c->err, c->errlen, -EINVAL, "%s: byte size overflows", what);
	t->size = row * rows;
	if (t->offset % g->alignment)
		return errmsg(c->err, c->errlen, -EINVAL,
			    "%s: offset %llu is not a multiple of the alignment %u", what,
			    (unsigned long long)t->offset, g->alignment);
	g->tensor_index[slot] = (uint32_t)i + 1;
	return 0;
}

struct extent {
	uint64_t off, end;
	uint32_t i;
};

static int cmp_extent(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* Every tensor inside the data section, none overlapping another. */
static int check_extents(struct gguf *g, char *err, size_t errlen)
{
	uint64_t avail = g->size - g->data_offset;
	struct extent *ex = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof(*ex));
	if (!ex)
		return errmsg(err, errlen, -ENOMEM, "n_tensors: out of memory");
	uint64_t n = 0;
	int r = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		char name[200];
		if (t->offset > avail || t->size > avail - t->offset) {
			r = errmsg(err, errlen, -EINVAL,
				 "tensor %s: data at offset %llu, %llu bytes, is out of bounds (the data section has %llu bytes)",
				 gguf_str_show(t->name, name, sizeof(name)), (unsigned long long)t->offset,
				 (unsigned long long)t->size, (unsigned long long)avail);
			goto out;
		}
		t->data = g->base + g->data_offset + t->offset;
		if (t->size)
			ex[n++] = (struct extent){ t->offset, t->offset + t->size, (uint32_t)i };
	}
	qsort(ex, n, sizeof(*ex), cmp_extent);
	for (uint64_t k = 1; k < n; k++) {
		if (ex[k].off >= ex[k - 1].end)
			continue;
		char a[200], b[200];
		r = errmsg(err, errlen, -EINVAL,
			 "tensor %s: data [%llu, %llu) overlaps tensor %s [%llu, %llu)",
			 gguf_str_show(g->tensors[ex[k].i].name, a, sizeof(a)),
			 (unsigned long long)ex[k].off, (unsigned long long)ex[k].end,
			 gguf_str_show(g->tensors[ex[k - 1].i].name, b, sizeof(b)),
			 (unsigned long long)ex[k - 1].off, (unsigned long long)ex[k - 1].end);
		break;
	}
out:
	free(ex);
	return r;
}

static int parse_tensors(struct gguf *g, struct cursor *c)
{
	g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*g->tensors));
	g->tensor_index = index_new(g->n_tensors, &g->tensor_mask);
	if (!g->tensors || !g->tensor_index)
		return errmsg(c->err, c->errlen, -ENOMEM, "n_tensors: out of memory for %llu tensors",
			    (unsigned long long)g->n_tensors);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		int r = parse_tensor(g, c, i);
		if (r < 0)
			return r;
	}
	uint64_t a = g->alignment;
	g->data_offset = (c->pos + a - 1) / a * a;
	/* A file without tensors (a vocabulary) may end before the padding. */
	if (g->n_tensors == 0)
		return 0;
	if (g->data_offset > g->size)
		return errmsg(c->err, c->errlen, -EINVAL,
			    "data section: truncated: starts at offset %llu, file has %zu",
			    (unsigned long long)g->data_offset, g->size);
	return check_extents(g, c->err, c->errlen);
}

/* ---- open / close -------------------------------------------------------------- */

static int check_count(struct cursor *c, const char *field, uint64_t n, size_t min_bytes)
{
	if (n > GGUF_MAX_COUNT)
		return errmsg(c->err, c->errlen, -EINVAL, "%s: %llu exceeds the limit %u", field,
			    (unsigned long long)n, GGUF_MAX_COUNT);
	if (n > left(c) / min_bytes)
		return errmsg(c->err, c->errlen, -EINVAL,
			    "%s: %llu entries cannot fit in the %zu bytes left", field,
			    (unsigned long long)n, left(c));
	return 0;
}

static int parse(struct gguf *g, char *err, size_t errlen)
{
	struct cursor c = { .base = g->base, .size = g->size, .err = err, .errlen = errlen };
	char magic[4];
	int r;

	if ((r = rd(&c, magic, 4, "magic")) < 0)
		return r;
	if (memcmp(magic, GGUF_MAGIC, 4) != 0)
		return errmsg(err, errlen, -EINVAL, "magic: %02x %02x %02x %02x is not \"GGUF\"",
			    (uint8_t)magic[0], (uint8_t)magic[1], (uint8_t)magic[2],
			    (uint8_t)magic[3]);
	if ((r = rd_u32(&c, &g->version, "version")) < 0)
		return r;
	if (g->version == 1)
		return errmsg(err, errlen, -ENOTSUP,
			    "version: 1 (GGUF v1, 32-bit counts) is not supported; convert to v3");
	if (g->version != 2 && g->version != 3) {
		uint32_t swapped = __builtin_bswap32(g->version);
		return errmsg(err, errlen, -ENOTSUP, "version: %u is not supported (2 or 3)%s",
			    g->version, swapped == 2 || swapped == 3 ? "; a big-endian file?" : "");
	}
	uint64_t n_tensors, n_kv;
	if ((r = rd_u64(&c, &n_tensors, "n_tensors")) < 0 ||
	    (r = rd_u64(&c, &n_kv, "n_kv")) < 0)
		return r;
	if (n_tensors > GGUF_MAX_COUNT)
		return errmsg(err, errlen, -EINVAL, "n_tensors: %llu exceeds the limit %u",
			    (unsigned long long)n_tensors, GGUF_MAX_COUNT);
	if ((r = check_count(&c, "n_kv", n_kv, KV_MIN_BYTES)) < 0)
		return r;
	g->n_kv = n_kv;
	if ((r = parse_kvs(g, &c)) < 0)
		return r;
	if ((r = read_alignment(g, err, errlen)) < 0)
		return r;
	if ((r = check_count(&c, "n_tensors", n_tensors, TENSOR_MIN_BYTES)) < 0)
		return r;
	g->n_tensors = n_tensors;
	return parse_tensors(g, &c);
}

int gguf_open_buffer(const void *buf, size_t len, struct gguf **ret, char *err, size_t errlen)
{
	struct gguf *g = calloc(1, sizeof(*g));
	if (!g)
		return errmsg(err, errlen, -ENOMEM, "out of memory");
	g->base = buf;
	g->size = len;
	int r = parse(g, err, errlen);
	if (r < 0) {
		gguf_close(g);
		return r;
	}
	*ret = g;
	return 0;
}

int gguf_open(const char *path, struct gguf **ret, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg(err, errlen, -EINVAL, "%s: not a regular file", path);
	}
	size_t size = (size_t)st.st_size;
	void *map = NULL;
	if (size) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			int e = errno;
			close(fd);
			return errmsg(err, errlen, -e, "%s: mmap: %s", path, strerror(e));
		}
	}
	close(fd);
	char msg[512] = "";
	struct gguf *g;
	int r = gguf_open_buffer(size ? map : "", size, &g, msg, sizeof(msg));
	if (r < 0) {
		if (map)
			munmap(map, size);
		return errmsg(err, errlen, r, "%s: %s", path, msg);
	}
	g->mapped = map != NULL;
	*ret = g;
	return 0;
}

void gguf_close(struct gguf *g)
{
	if (!g)
		return;
	for (uint64_t i = 0; g->kvs && i < g->n_kv; i++)
		if (g->kvs[i].type == GGUF_ARRAY)
			free((void *)g->kvs[i].v.arr.strs);
	free(g->kvs);
	free(g->kv_index);
	free(g->tensors);
	free(g->tensor_index);
	if (g->mapped)
		munmap((void *)g->base, g->size);
	free(g);
}

/* ---- accessors -------------------------------------------------------------------- */

uint32_t gguf_version(const struct gguf *g)
{
	return g->version;
}

uint32_t gguf_alignment(const struct gguf *g)
{
	return g->alignment;
}

uint64_t gguf_data_offset(const struct gguf *g)
{
	return g->data_offset;
}

size_t gguf_file_size(const struct gguf *g)
{
	return g->size;
}

uint64_t gguf_n_kv(const struct gguf *g)
{
	return g->n_kv;
}

const struct gguf_kv *gguf_kv_at(const struct gguf *g, uint64_t i)
{
	return i < g->n_kv ? &g->kvs[i] : NULL;
}

const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key)
{
	struct gguf_str k = { key, strlen(key) };
	uint32_t i = index_find(g->kv_index, g->kv_mask, g->kvs, sizeof(*g->kvs),
				offsetof(struct gguf_kv, key), k, NULL);
	return i ? &g->kvs[i - 1] : NULL;
}

uint64_t gguf_n_tensors(const struct gguf *g)
{
	return g->n_tensors;
}

const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, uint64_t i)
{
	return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
	struct gguf_str k = { name, strlen(name) };
	uint32_t i = index_find(g->tensor_index, g->tensor_mask, g->tensors, sizeof(*g->tensors),
				offsetof(struct gguf_tensor, name), k, NULL);
	return i ? &g->tensors[i - 1] : NULL;
}

bool gguf_str_eq(struct gguf_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

size_t gguf_vtype_size(enum gguf_vtype t)
{
	return (unsigned)t <= GGUF_F64 ? vtype_size[t] : 0;
}
