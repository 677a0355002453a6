/* Single-producer single-consumer rings of fixed-size records over shared
 * memory (the session SQ and CQ). The protocol and its barrier pairing table
 * are at the top of ring.c.
 *
 * Each side keeps a private struct: its own index as a shadow (never read
 * back from shared memory) and a cached copy of the peer's index, re-read
 * only when the cache says "full" (producer) or "empty" (consumer). The
 * peer's index is validated on every read: a consumer index that moves
 * backwards or past the tail, or a producer index more than `entries` ahead,
 * is a protocol error (-EPROTO) and the ring refuses further use.
 *
 * Not thread-safe: one thread per side. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gi_ring_prod {
	uint32_t *tail;          /* shared, written by us */
	const uint32_t *head;    /* shared, written by the consumer */
	uint8_t *recs;
	uint32_t mask;           /* entries - 1 */
	uint32_t rec_size;
	uint32_t local_tail;     /* shadow of *tail */
	uint32_t cached_head;    /* last validated value of *head */
	bool broken;             /* peer violated the protocol */
};

struct gi_ring_cons {
	uint32_t *head;          /* shared, written by us */
	const uint32_t *tail;    /* shared, written by the producer */
	const uint8_t *recs;
	uint32_t mask;
	uint32_t rec_size;
	uint32_t local_head;     /* shadow of *head */
	uint32_t cached_tail;    /* last validated value of *tail */
	bool broken;
};

/* Sets up one side over ENTRIES records of REC_SIZE bytes at RECS. ENTRIES
 * must be a power of two (<= 2^31). START is the current value of both
 * counters (the creator writes it to *head and *tail before hand-over; 0 in
 * production, near UINT32_MAX in tests). -EINVAL if the geometry is wrong. */
int gi_ring_prod_init(struct gi_ring_prod *p, uint32_t *tail, const uint32_t *head, void *recs,
		      uint32_t entries, uint32_t rec_size, uint32_t start);
int gi_ring_cons_init(struct gi_ring_cons *c, uint32_t *head, const uint32_t *tail, const void *recs,
		      uint32_t entries, uint32_t rec_size, uint32_t start);

/* Producer: free slots (0..entries), re-reading the consumer's head only if
 * fewer than WANT are free by the cache. -EPROTO if the head is invalid. */
int gi_ring_prod_space(struct gi_ring_prod *p, uint32_t want);
/* Pointer to the I-th free slot (I < a count gi_ring_prod_space returned). */
void *gi_ring_prod_slot(struct gi_ring_prod *p, uint32_t i);
/* Publishes N slots written through gi_ring_prod_slot (store-release tail). */
void gi_ring_prod_commit(struct gi_ring_prod *p, uint32_t n);
/* Copies up to N records from RECS and publishes them with one tail store.
 * Returns how many were pushed (0 when full), or -EPROTO. */
int gi_ring_push(struct gi_ring_prod *p, const void *recs, uint32_t n);
/* Records published and not yet consumed, by the cached head (no shared read). */
uint32_t gi_ring_prod_pending(const struct gi_ring_prod *p);

/* Consumer: records available (0..entries), re-reading the producer's tail
 * only if the cache says fewer than WANT (so WANT = 1 is the "is it empty"
 * re-check after arming a sleep). -EPROTO if the tail is invalid. */
int gi_ring_cons_avail(struct gi_ring_cons *c, uint32_t want);
/* Pointer to the I-th available record. The memory is shared: copy the record
 * out before looking at it if the producer is not trusted. */
const void *gi_ring_cons_peek(const struct gi_ring_cons *c, uint32_t i);
/* Releases N records (store-release head); their slots may be reused. */
void gi_ring_cons_release(struct gi_ring_cons *c, uint32_t n);
/* Copies up to MAX records to OUT and releases them with one head store.
 * Returns how many were popped (0 when empty), or -EPROTO. */
int gi_ring_pop(struct gi_ring_cons *c, void *out, uint32_t max);
