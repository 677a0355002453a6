/* GGUF v2/v3 reader: memory-mapped, every count and offset bounded against
 * the file before use. The file is hostile input: errors name the field and
 * the value, and nothing here aborts or reads outside the mapping. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

enum gguf_vtype {
	GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4,
	GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8,
	GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
};

struct gguf_str {
	const char *ptr; /* points into the mapping; NOT NUL-terminated */
	uint64_t len;
};

/* One metadata value. Scalars are widened: unsigned integers in v.u64,
 * signed ones in v.i64, f32 and f64 in v.f64, bool in v.b (the file's byte
 * is 0 or 1), strings in v.str. For arrays, `arr` describes the elements in
 * place in the mapping; read them with gguf_arr_*(). */
struct gguf_kv {
	struct gguf_str key;
	enum gguf_vtype type;
	union {
		uint64_t u64;
		int64_t i64;
		double f64;
		bool b;
		struct gguf_str str;
		struct {
			enum gguf_vtype type;
			uint64_t n;
			const uint8_t *data; /* first element in the mapping */
			const struct gguf_str *strs; /* decoded string elements (type STRING) */
		} arr;
	} v;
};

#define GGUF_MAX_DIMS 4

struct gguf_tensor {
	struct gguf_str name;
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS]; /* ggml order: ne[0] is the row length */
	enum gi_type type;
	uint64_t offset;            /* relative to the data section */
	uint64_t size;              /* bytes */
	const void *data;           /* in the mapping */
};

struct gguf;

/* Opens and validates PATH (mapped read-only). On failure returns a negative
 * errno and writes a message naming the field and value to ERR (if non-NULL);
 * messages from gguf_open start with PATH. Errors: -EINVAL malformed or
 * hostile file, -ENOTSUP well-formed but unsupported (version 1, arrays of
 * arrays, unknown tensor type), -ENOMEM, or open/mmap's errno. Validated:
 * magic, version 2/3, every count and string against the bytes left, value
 * and element types, duplicate keys and tensor names, general.alignment (u32,
 * power of two), n_dims <= 4, element-count overflow, rows a multiple of the
 * type's block, offsets aligned, data inside the file, no overlapping data.
 * The gguf is immutable: any thread may read it. */
int gguf_open(const char *path, struct gguf **ret, char *err, size_t errlen);
/* The same over a caller-owned buffer (used by the fuzzer); BUF must outlive the gguf. */
int gguf_open_buffer(const void *buf, size_t len, struct gguf **ret, char *err, size_t errlen);
void gguf_close(struct gguf *g); /* accepts NULL */

uint32_t gguf_version(const struct gguf *g);
uint64_t gguf_n_kv(const struct gguf *g);
const struct gguf_kv *gguf_kv_at(const struct gguf *g, uint64_t i);
const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key);
uint64_t gguf_n_tensors(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, uint64_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);
size_t gguf_file_size(const struct gguf *g);

/* Typed getters: 0 on success, -ENOENT if absent ("key K: missing" in ERR),
 * -EINVAL (message in ERR) if present with an incompatible type or a value
 * that does not fit. Integer getters accept any integer type whose value
 * fits; gguf_get_f32 accepts f32 and f64. */
int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *ret, char *err, size_t errlen);
int gguf_get_f32(const struct gguf *g, const char *key, float *ret, char *err, size_t errlen);
int gguf_get_bool(const struct gguf *g, const char *key, bool *ret, char *err, size_t errlen);
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *ret, char *err, size_t errlen);
/* Array getter: checks that KEY is an array of ELEM (exactly); the kv's
 * v.arr.n holds the element count. */
int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype elem,
		 const struct gguf_kv **ret, char *err, size_t errlen);
/* Element I of a numeric or bool array as double / int64 (caller bounds I by
 * arr.n; 0 for string arrays). u64 values above INT64_MAX wrap. */
double gguf_arr_f64(const struct gguf_kv *kv, uint64_t i);
int64_t gguf_arr_i64(const struct gguf_kv *kv, uint64_t i);

/* Compares a gguf_str to a C string. */
bool gguf_str_eq(struct gguf_str s, const char *c);

/* Layout: the alignment in force (general.alignment or 32) and the file
 * offset of the data section (tensor offsets are relative to it). */
uint32_t gguf_alignment(const struct gguf *g);
uint64_t gguf_data_offset(const struct gguf *g);

/* "u32", "string", ... ("unknown" outside the enum); encoded size of a
 * scalar (0 for STRING, ARRAY and unknown types). */
const char *gguf_vtype_name(enum gguf_vtype t);
size_t gguf_vtype_size(enum gguf_vtype t);
bool gguf_vtype_is_int(enum gguf_vtype t);
bool gguf_vtype_is_signed(enum gguf_vtype t);

/* Printable copy of untrusted bytes for messages: non-ASCII and control bytes
 * become '?', long strings end in "...". Returns BUF (CAP >= 8). */
const char *gguf_str_show(struct gguf_str s, char *buf, size_t cap);

/* Getters as above for 64-bit integers (any integer type whose value fits). */
int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *ret, char *err, size_t errlen);
int gguf_get_i64(const struct gguf *g, const char *key, int64_t *ret, char *err, size_t errlen);

/* Set of tensor types for gguf_require_tensor, e.g.
 * GGUF_TYPE_BIT(GI_TYPE_F32) | GGUF_TYPE_BIT(GI_TYPE_F16). */
#define GGUF_TYPE_BIT(t) (1ull << (t))
#define GGUF_TYPES_ANY UINT64_MAX

/* The model loader's check of one tensor: present, of a type in TYPES, and of
 * shape NE[0..N_DIMS) (ggml order; dimensions past N_DIMS must be 1 in the
 * file). Returns 0 and the tensor in *RET (if non-NULL); -ENOENT with
 * "tensor NAME: missing"; -EINVAL with e.g.
 * "tensor blk.3.attn_q.weight: expected shape [2048, 2048], got [2048, 1024]"
 * or "tensor X: type Q4_0 not allowed here (F32, F16)". A shape inline:
 * gguf_require_tensor(g, name, types, 2, (const uint64_t[]){ n_embd, n_vocab }, ...). */
int gguf_require_tensor(const struct gguf *g, const char *name, uint64_t types,
			uint32_t n_dims, const uint64_t *ne, const struct gguf_tensor **ret,
			char *err, size_t errlen);

