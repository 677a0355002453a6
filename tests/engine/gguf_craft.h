/* Helpers for tests that build GGUF files in memory and check what the
 * reader makes of them (prefix t_gguf_). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"

/* A new writer (fails the test on error). */
struct gguf_writer *t_gguf_writer(void);

/* The whole file of W with a data section of gguf_writer_data_size(W) bytes
 * filled with a byte pattern; frees W. *RET_LEN gets the size. */
uint8_t *t_gguf_finish(struct gguf_writer *w, size_t *ret_len);

/* A small valid file: a few keys of several types and three tensors (q4_0,
 * f16, f32) whose data ends exactly at the end of the file, so every proper
 * prefix is truncated. */
uint8_t *t_gguf_small(size_t *ret_len);

/* Opens LEN bytes of BUF through an exact-size heap copy (so ASan sees any
 * read past the end); on success walks every key, string, array element and
 * tensor, asserting each lies inside the copy, then closes. Returns the
 * reader's result; its message goes to ERR. */
int t_gguf_open_walk(const void *buf, size_t len, char *err, size_t errlen);

/* Asserts that BUF fails to open with a message containing each of the
 * NULL-terminated substrings, and frees BUF. */
void t_gguf_expect_fail(uint8_t *buf, size_t len, ...);

/* Offset of the first occurrence of the N bytes of NEEDLE in BUF (fails the
 * test when absent). */
size_t t_gguf_find(const uint8_t *buf, size_t len, const void *needle, size_t n);

/* Writes the u64 / u32 V at BUF + OFF. */
void t_gguf_poke64(uint8_t *buf, size_t off, uint64_t v);
void t_gguf_poke32(uint8_t *buf, size_t off, uint32_t v);
#define T_GGUF_EXPECT_FAIL(buf, len, ...) \
	t_gguf_expect_fail((buf), (len), __VA_ARGS__, (const char *)NULL)
