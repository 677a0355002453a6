/* Validation of records read from shared memory (IPC.md "Daemon validation
 * rules"). Callers pass a private copy of the SQE (copy, then validate, then
 * use; never re-read) and, for the arena, a private copy of the blob bytes.
 * Every check names the field and the value in ERR and returns -EINVAL (or
 * -E2BIG for a size over a limit); none aborts. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/wire.h"

/* Name of opcode OP ("nop", "submit", "cancel"), or NULL if unknown. */
const char *gi_op_name(unsigned op);

/* Checks a copied SQE: known opcode, only that opcode's flag bits, priority,
 * reserved field and unused-for-this-opcode fields zero, numeric ranges of
 * the sampling fields (finite floats, temperature in [0, 100], top_p/min_p
 * in [0, 1], penalties in their ranges, max_tokens <= limit), and for SUBMIT
 * the arena reference: arena_off 4-aligned, prompt_len and stop_len within
 * limits, the blob inside ARENA_SIZE (checked as len <= size and
 * off <= size - len, never off + len). */
int gi_sqe_validate(const struct gi_sqe *sqe, const struct gi_limits *lim, uint32_t arena_size,
		    char *err, size_t errlen);

/* Bytes of the SUBMIT blob of a validated SQE: prompt, pad to 4, stop list. */
uint32_t gi_sqe_blob_len(const struct gi_sqe *sqe);

/* Offset of the stop list inside the blob (prompt_len rounded up to 4). */
uint32_t gi_sqe_stop_off(const struct gi_sqe *sqe);

/* One stop string inside a copied blob. */
struct gi_span {
	uint32_t off;
	uint32_t len;
};

/* Parses a stop list (LEN bytes at BUF, private copy) into at most MAX spans
 * relative to BUF. Each entry { u16 len; bytes } needs 1 <= len <=
 * lim->max_stop_len, the count <= lim->max_stop_strings, and the entries must
 * end exactly at LEN. Returns the number of entries. */
int gi_stop_list_parse(const uint8_t *buf, uint32_t len, const struct gi_limits *lim,
		       struct gi_span *spans, uint32_t max, char *err, size_t errlen);

/* One chat message inside a copied blob. */
struct gi_chat_item {
	uint32_t role;          /* enum gi_role */
	struct gi_span content;
};

/* Parses a chat list (GI_SQE_F_CHAT prompt) into at most MAX items. Entries
 * { u32 role; u32 len; content; pad to 4 with zeros } must end exactly at
 * LEN; roles known; content valid UTF-8 without NUL. Returns the count (>= 1). */
int gi_chat_parse(const uint8_t *buf, uint32_t len, struct gi_chat_item *items, uint32_t max,
		  char *err, size_t errlen);

/* Checks a GI_SQE_F_TOKENS prompt: LEN a non-zero multiple of 4, every id
 * < N_VOCAB (when N_VOCAB is non-zero). */
int gi_tokens_check(const uint8_t *buf, uint32_t len, uint32_t n_vocab, char *err, size_t errlen);

/* Whether BUF[0..LEN) is well-formed UTF-8 with no NUL byte. */
bool gi_utf8_valid(const uint8_t *buf, uint32_t len);
