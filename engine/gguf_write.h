/* A small GGUF v3 writer: metadata and tensor infos are built in memory, the
 * tensor data is streamed after them (the model generator writes gigabytes
 * without holding them) or appended into one buffer (tests crafting files).
 *
 * It checks only what it needs to lay a file out. Duplicate keys, odd
 * versions, raw tensor infos with any type, shape or offset are written as
 * asked, so tests can build hostile files with it. Not thread-safe; one
 * writer per thread. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/gguf.h"

struct gguf_writer;

int gguf_writer_new(struct gguf_writer **ret);
void gguf_writer_free(struct gguf_writer *w); /* accepts NULL */

/* Data alignment (default 32, must be a power of two; -EINVAL otherwise).
 * Files are written as GGUF version 3. The alignment only lays out the file: add a
 * general.alignment key yourself when it is not 32. Call before adding
 * tensors. */
int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment);

/* Adds a scalar. VAL points to the value in its C type: uint8_t, int8_t, ...,
 * float, double, bool; for GGUF_STRING, VAL is the NUL-terminated string
 * itself (const char *). -EINVAL for GGUF_ARRAY or an unknown type. */
int gguf_writer_add(struct gguf_writer *w, const char *key, enum gguf_vtype t, const void *val);
int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v);
int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v);

/* Adds an array of N elements of type ELEM, packed in their C types at DATA;
 * for GGUF_STRING, DATA is an array of N NUL-terminated strings (const char
 * *const *), or of N struct gguf_str with gguf_writer_add_strs. */
int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem,
			const void *data, uint64_t n);
int gguf_writer_add_strs(struct gguf_writer *w, const char *key, const struct gguf_str *strs,
			 uint64_t n);

/* Copies a key/value read from another file (any type, arrays included). */
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv);

/* Adds a key with value type TYPE (any number) followed by the N raw bytes
 * at PAYLOAD as its value (e.g. an array of arrays). */
int gguf_writer_add_raw_kv(struct gguf_writer *w, const char *key, uint32_t type,
			   const void *payload, size_t n);

/* Adds a tensor info placed after the previous one at the next aligned
 * offset; its size follows from TYPE and NE. Returns -EINVAL (n_dims > 4,
 * unknown type, row not a multiple of the block, size overflow). */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum gi_type type,
			   uint32_t n_dims, const uint64_t *ne);
/* Adds a tensor info exactly as given (N_DIMS entries of NE). It takes no
 * room in the data section. */
int gguf_writer_add_tensor_raw(struct gguf_writer *w, const char *name, uint32_t type,
			       uint32_t n_dims, const uint64_t *ne, uint64_t offset);

/* Bytes of the data section the added tensors need (aligned end of the last). */
uint64_t gguf_writer_data_size(const struct gguf_writer *w);
/* Bytes before the data section (header, metadata, tensor infos, padding). */
uint64_t gguf_writer_header_size(const struct gguf_writer *w);

/* Whole file in one malloc'd buffer: the header, then DATA_LEN bytes of DATA
 * (zeros if DATA is NULL) as the data section. The caller frees *RET_BUF. */
int gguf_writer_to_buffer(const struct gguf_writer *w, const void *data, size_t data_len,
			  void **ret_buf, size_t *ret_len);

/* Streaming: write the header, then each tensor's bytes in the order the
 * tensors were added (gguf_writer_write_data, in as many pieces as wanted),
 * then gguf_writer_finish. Padding between tensors is inserted when data for
 * the next tensor begins. -EINVAL when more data is written than the tensors
 * need or finish comes early; -EIO (errno) when the stream fails. */
int gguf_writer_write_header(struct gguf_writer *w, FILE *f);
int gguf_writer_write_data(struct gguf_writer *w, FILE *f, const void *data, size_t n);
int gguf_writer_finish(struct gguf_writer *w, FILE *f);
