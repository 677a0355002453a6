/* Client-side allocator for the request arena (IPC.md "Request arena
 * lifetime"): a ring of bytes, allocated in submission order and released
 * when the engine advances sq.head past the SQE that used them (the engine
 * has copied the bytes out by then). No free call, no shared bookkeeping.
 *
 * Positions are free-running 64-bit byte counters; the offset in the arena
 * is pos % size. An allocation never wraps: if it does not fit before the
 * end, the tail is skipped. Not thread-safe (the client's submit lock covers it). */
#pragma once
#include <stdint.h>

struct gi_arena {
	uint8_t *base;
	uint32_t size;          /* bytes, multiple of 4 */
	uint32_t sq_mask;
	uint64_t alloc_pos;     /* next byte to hand out */
	uint64_t free_pos;      /* everything before it is free */
	uint64_t *end_pos;      /* per SQ slot: alloc_pos when that SQE was committed */
	uint32_t reclaimed;     /* SQ index up to which end_pos was applied */
};

/* BASE/SIZE: the arena section; SQ_ENTRIES and START: the SQ geometry and its
 * initial counter. -ENOMEM, -EINVAL. */
int gi_arena_init(struct gi_arena *a, uint8_t *base, uint32_t size, uint32_t sq_entries,
		  uint32_t start);
void gi_arena_fini(struct gi_arena *a); /* accepts a zeroed arena */

/* Frees the bytes of every SQE before SQ_HEAD (a validated sq.head). */
void gi_arena_reclaim(struct gi_arena *a, uint32_t sq_head);

/* Reserves LEN bytes (rounded up to 4), 4-aligned. Returns the arena offset
 * in *RET_OFF; -EAGAIN if it does not fit until the engine consumes more,
 * -E2BIG if it can never fit. */
int gi_arena_alloc(struct gi_arena *a, uint32_t len, uint32_t *ret_off);

/* Records that the SQE at SQ index IDX is being committed: its slot frees
 * everything allocated so far once the engine consumes it. */
void gi_arena_note_commit(struct gi_arena *a, uint32_t idx);
