/* Typed access to GGUF metadata and the tensor checks the model loader makes.
 * Built on the public reader API only (engine/gguf.h). */
#include "engine/gguf.h"
#include "common/errmsg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/* The kv of KEY, or NULL with "key K: missing" in ERR. */
static const struct gguf_kv *find(const struct gguf *g, const char *key, char *err, size_t errlen)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	if (!kv)
		errmsg(err, errlen, -ENOENT, "key %s: missing", key);
	return kv;
}

static int wrong_type(const struct gguf_kv *kv, const char *key, const char *want,
		      char *err, size_t errlen)
{
	return errmsg(err, errlen, -EINVAL, "key %s: type %s, want %s", key,
		    gguf_vtype_name(kv->type), want);
}

/* An integer value as its 64 bits and whether it is negative. */
static int get_int(const struct gguf *g, const char *key, const char *want, bool *ret_neg,
		   uint64_t *ret_u, char *err, size_t errlen)
{
	const struct gguf_kv *kv = find(g, key, err, errlen);
	if (!kv)
		return -ENOENT;
	if (!gguf_vtype_is_int(kv->type))
		return wrong_type(kv, key, want, err, errlen);
	if (gguf_vtype_is_signed(kv->type)) {
		*ret_neg = kv->v.i64 < 0;
		*ret_u = (uint64_t)kv->v.i64;
	} else {
		*ret_neg = false;
		*ret_u = kv->v.u64;
	}
	return 0;
}

int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *ret, char *err, size_t errlen)
{
	bool neg = false;
	uint64_t u = 0;
	int r = get_int(g, key, "an unsigned integer", &neg, &u, err, errlen);
	if (r < 0)
		return r;
	if (neg)
		return errmsg(err, errlen, -EINVAL, "key %s: value %lld is negative", key,
			    (long long)u);
	*ret = u;
	return 0;
}

int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *ret, char *err, size_t errlen)
{
	uint64_t u = 0;
	int r = gguf_get_u64(g, key, &u, err, errlen);
	if (r < 0)
		return r;
	if (u > UINT32_MAX)
		return errmsg(err, errlen, -EINVAL, "key %s: value %llu does not fit in u32", key,
			    (unsigned long long)u);
	*ret = (uint32_t)u;
	return 0;
}

int gguf_get_i64(const struct gguf *g, const char *key, int64_t *ret, char *err, size_t errlen)
{
	bool neg = false;
	uint64_t u = 0;
	int r = get_int(g, key, "an integer", &neg, &u, err, errlen);
	if (r < 0)
		return r;
	if (!neg && u > INT64_MAX)
		return errmsg(err, errlen, -EINVAL, "key %s: value %llu does not fit in i64", key,
			    (unsigned long long)u);
	*ret = (int64_t)u;
	return 0;
}

int gguf_get_f32(const struct gguf *g, const char *key, float *ret, char *err, size_t errlen)
{
	const struct gguf_kv *kv = find(g, key, err, errlen);
	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_F32 && kv->type != GGUF_F64)
		return wrong_type(kv, key, "f32", err, errlen);
	if (isfinite(kv->v.f64) && fabs(kv->v.f64) > 3.4028234663852886e38)
		return errmsg(err, errlen, -EINVAL, "key %s: value %g does not fit in f32", key,
			    kv->v.f64);
	*ret = (float)kv->v.f64;
	return 0;
}

int gguf_get_bool(const struct gguf *g, const char *key, bool *ret, char *err, size_t errlen)
{
	const struct gguf_kv *kv = find(g, key, err, errlen);
	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_BOOL)
		return wrong_type(kv, key, "bool", err, errlen);
	*ret = kv->v.b;
	return 0;
}

int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *ret, char *err,
		 size_t errlen)
{
	const struct gguf_kv *kv = find(g, key, err, errlen);
	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_STRING)
		return wrong_type(kv, key, "string", err, errlen);
	*ret = kv->v.str;
	return 0;
}

int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype elem,
		 const struct gguf_kv **ret, char *err, size_t errlen)
{
	const struct gguf_kv *kv = find(g, key, err, errlen);
	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_ARRAY)
		return errmsg(err, errlen, -EINVAL, "key %s: type %s, want array of %s", key,
			    gguf_vtype_name(kv->type), gguf_vtype_name(elem));
	if (kv->v.arr.type != elem)
		return errmsg(err, errlen, -EINVAL, "key %s: array of %s, want array of %s", key,
			    gguf_vtype_name(kv->v.arr.type), gguf_vtype_name(elem));
	*ret = kv;
	return 0;
}

int64_t gguf_arr_i64(const struct gguf_kv *kv, uint64_t i)
{
	const uint8_t *p = kv->v.arr.data + i * gguf_vtype_size(kv->v.arr.type);
	union {
		uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
		float f32; uint64_t u64; int64_t i64; double f64;
	} v;
	memcpy(&v, p, gguf_vtype_size(kv->v.arr.type));
	switch (kv->v.arr.type) {
	case GGUF_U8: case GGUF_BOOL: return v.u8;
	case GGUF_I8: return v.i8;
	case GGUF_U16: return v.u16;
	case GGUF_I16: return v.i16;
	case GGUF_U32: return v.u32;
	case GGUF_I32: return v.i32;
	case GGUF_U64: return (int64_t)v.u64;
	case GGUF_I64: return v.i64;
	case GGUF_F32: return isfinite(v.f32) && fabsf(v.f32) < 9.2e18f ? (int64_t)v.f32 : 0;
	case GGUF_F64: return isfinite(v.f64) && fabs(v.f64) < 9.2e18 ? (int64_t)v.f64 : 0;
	default: return 0;
	}
}

double gguf_arr_f64(const struct gguf_kv *kv, uint64_t i)
{
	const uint8_t *p = kv->v.arr.data + i * gguf_vtype_size(kv->v.arr.type);
	float f;
	double d;
	switch (kv->v.arr.type) {
	case GGUF_F32:
		memcpy(&f, p, sizeof(f));
		return f;
	case GGUF_F64:
		memcpy(&d, p, sizeof(d));
		return d;
	case GGUF_U64:
		return (double)(uint64_t)gguf_arr_i64(kv, i);
	default:
		return (double)gguf_arr_i64(kv, i);
	}
}

/* ---- tensors ------------------------------------------------------------------------ */

static void fmt_shape(char *buf, size_t cap, uint32_t n_dims, const uint64_t *ne)
{
	size_t n = (size_t)snprintf(buf, cap, "[");
	for (uint32_t d = 0; d < n_dims && n < cap; d++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%llu", d ? ", " : "",
				      (unsigned long long)ne[d]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

static void fmt_types(char *buf, size_t cap, uint64_t types)
{
	size_t n = 0;
	buf[0] = 0;
	for (uint32_t t = 0; t < 64 && n < cap; t++)
		if ((types >> t) & 1 && gi_type_valid(t))
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "",
					      gi_type_name((enum gi_type)t));
}

int gguf_require_tensor(const struct gguf *g, const char *name, uint64_t types,
			uint32_t n_dims, const uint64_t *ne, const struct gguf_tensor **ret,
			char *err, size_t errlen)
{
	const struct gguf_tensor *t = gguf_find_tensor(g, name);
	if (!t)
		return errmsg(err, errlen, -ENOENT, "tensor %s: missing", name);
	if ((unsigned)t->type >= 64 || !((types >> t->type) & 1)) {
		char want[256];
		fmt_types(want, sizeof(want), types);
		return errmsg(err, errlen, -EINVAL, "tensor %s: type %s not allowed here (%s)", name,
			    gi_type_name(t->type), want);
	}
	bool ok = n_dims <= GGUF_MAX_DIMS;
	for (uint32_t d = 0; ok && d < GGUF_MAX_DIMS; d++)
		ok = t->ne[d] == (d < n_dims ? ne[d] : 1);
	if (!ok) {
		char want[128], got[128];
		fmt_shape(want, sizeof(want), n_dims, ne);
		fmt_shape(got, sizeof(got), t->n_dims, t->ne);
		return errmsg(err, errlen, -EINVAL, "tensor %s: expected shape %s, got %s", name,
			    want, got);
	}
	if (ret)
		*ret = t;
	return 0;
}
