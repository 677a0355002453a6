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

/* One metadata value. For arrays, `arr` describes the elements in place in
 * the mapping; read them with gguf_arr_*(). */
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

/* Opens and validates PATH. On failure returns a negative errno and writes a
 * message naming the field and value to ERR (if non-NULL). */
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

/* Typed getters: 0 on success, -ENOENT if absent, -EINVAL (message in ERR) if
 * present with an incompatible type. Integer getters accept any integer type
 * whose value fits. */
int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *ret, char *err, size_t errlen);
int gguf_get_f32(const struct gguf *g, const char *key, float *ret, char *err, size_t errlen);
int gguf_get_bool(const struct gguf *g, const char *key, bool *ret, char *err, size_t errlen);
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *ret, char *err, size_t errlen);
/* Array getter: checks the element type; *ret_n elements. */
int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype elem,
		 const struct gguf_kv **ret, char *err, size_t errlen);
/* Element I of a numeric array as double / int64 (caller bounds I by arr.n). */
double gguf_arr_f64(const struct gguf_kv *kv, uint64_t i);
int64_t gguf_arr_i64(const struct gguf_kv *kv, uint64_t i);

/* Compares a gguf_str to a C string. */
bool gguf_str_eq(struct gguf_str s, const char *c);
