/* SPSC rings of fixed-size records in shared memory.
 *
 * Protocol. Counters are free-running uint32_t; slot = counter & mask; the
 * ring holds tail - head records (unsigned wrap-around arithmetic), which is
 * always in [0, entries]. Each counter has one writer.
 *
 * Pairing table (every barrier below names its partner):
 *
 *  producer                                consumer
 *  --------                                --------
 *  P1 write records into slots             C1 load-acquire tail   (pairs P2)
 *  P2 store-release tail  (pairs C1)       C2 read records from slots
 *                                          C3 store-release head  (pairs P3)
 *  P3 load-acquire head   (pairs C3)
 *  P4 reuse the slots below head
 *
 *  P2/C1: records written before the tail store are visible to a consumer
 *  that sees the new tail. C3/P3: the consumer's reads of a slot complete
 *  before the producer, seeing the new head, overwrites that slot.
 *
 * The need-wakeup handshake adds full fences on top of this; see doorbell.c.
 *
 * Hostile peers: a head or tail read from shared memory is checked against
 * our shadow before use. Consumer: tail - local_head <= entries. Producer:
 * head - cached_head <= local_tail - cached_head (monotonic, never past our
 * tail). A violation marks the ring broken and returns -EPROTO forever. */
#include "ipc/ring.h"

#include <errno.h>
#include <string.h>

#include "ipc/atomics.h"

static int geometry_ok(uint32_t entries, uint32_t rec_size)
{
	if (entries == 0 || entries > (1u << 31) || (entries & (entries - 1)))
		return 0;
	return rec_size > 0;
}

int gi_ring_prod_init(struct gi_ring_prod *p, uint32_t *tail, const uint32_t *head, void *recs,
		      uint32_t entries, uint32_t rec_size, uint32_t start)
{
	if (!geometry_ok(entries, rec_size) || !tail || !head || !recs)
		return -EINVAL;
	*p = (struct gi_ring_prod){
		.tail = tail,
		.head = head,
		.recs = recs,
		.mask = entries - 1,
		.rec_size = rec_size,
		.local_tail = start,
		.cached_head = start,
	};
	return 0;
}

int gi_ring_cons_init(struct gi_ring_cons *c, uint32_t *head, const uint32_t *tail, const void *recs,
		      uint32_t entries, uint32_t rec_size, uint32_t start)
{
	if (!geometry_ok(entries, rec_size) || !tail || !head || !recs)
		return -EINVAL;
	*c = (struct gi_ring_cons){
		.head = head,
		.tail = tail,
		.recs = recs,
		.mask = entries - 1,
		.rec_size = rec_size,
		.local_head = start,
		.cached_tail = start,
	};
	return 0;
}

/* ---- producer ---- */

int gi_ring_prod_space(struct gi_ring_prod *p, uint32_t want)
{
	if (p->broken)
		return -EPROTO;
	uint32_t size = p->mask + 1;
	uint32_t free_slots = size - (p->local_tail - p->cached_head);
	if (free_slots >= want)
		return (int)free_slots;
	/* P3: pairs with the consumer's store-release of head (C3), so its reads
	 * of the slots we are about to reuse are complete. */
	uint32_t head = gi_load_acquire(p->head);
	if (head - p->cached_head > p->local_tail - p->cached_head) {
		p->broken = true;
		return -EPROTO;
	}
	p->cached_head = head;
	return (int)(size - (p->local_tail - head));
}

void *gi_ring_prod_slot(struct gi_ring_prod *p, uint32_t i)
{
	return p->recs + (size_t)((p->local_tail + i) & p->mask) * p->rec_size;
}

void gi_ring_prod_commit(struct gi_ring_prod *p, uint32_t n)
{
	p->local_tail += n;
	/* P2: pairs with the consumer's load-acquire of tail (C1): the records
	 * written into the slots become visible no later than the new tail. */
	gi_store_release(p->tail, p->local_tail);
}

int gi_ring_push(struct gi_ring_prod *p, const void *recs, uint32_t n)
{
	int space = gi_ring_prod_space(p, n);
	if (space < 0)
		return space;
	if ((uint32_t)space < n)
		n = (uint32_t)space;
	if (n == 0)
		return 0;
	const uint8_t *src = recs;
	uint32_t first = (p->local_tail & p->mask);
	uint32_t run = p->mask + 1 - first;
	if (run > n)
		run = n;
	memcpy(p->recs + (size_t)first * p->rec_size, src, (size_t)run * p->rec_size);
	if (run < n)
		memcpy(p->recs, src + (size_t)run * p->rec_size, (size_t)(n - run) * p->rec_size);
	gi_ring_prod_commit(p, n);
	return (int)n;
}

uint32_t gi_ring_prod_pending(const struct gi_ring_prod *p)
{
	return p->local_tail - p->cached_head;
}

/* ---- consumer ---- */

int gi_ring_cons_avail(struct gi_ring_cons *c, uint32_t want)
{
	if (c->broken)
		return -EPROTO;
	uint32_t have = c->cached_tail - c->local_head;
	if (have >= want)
		return (int)have;
	/* The next record usually arrives in the same round of cache traffic
	 * as the tail: ask for both at once rather than one after the other. */
	__builtin_prefetch(c->recs + (size_t)((c->local_head + have) & c->mask) * c->rec_size);
	/* C1: pairs with the producer's store-release of tail (P2): the records
	 * below the tail we read are fully written. */
	uint32_t tail = gi_load_acquire(c->tail);
	if (tail - c->local_head > c->mask + 1) {
		c->broken = true;
		return -EPROTO;
	}
	/* A producer may not un-publish records: tail must not fall below the
	 * tail we already validated. */
	if (tail - c->local_head < have) {
		c->broken = true;
		return -EPROTO;
	}
	c->cached_tail = tail;
	return (int)(tail - c->local_head);
}

const void *gi_ring_cons_peek(const struct gi_ring_cons *c, uint32_t i)
{
	return c->recs + (size_t)((c->local_head + i) & c->mask) * c->rec_size;
}

void gi_ring_cons_release(struct gi_ring_cons *c, uint32_t n)
{
	c->local_head += n;
	/* C3: pairs with the producer's load-acquire of head (P3): our reads of
	 * the released slots happen before the producer may overwrite them. */
	gi_store_release(c->head, c->local_head);
}

int gi_ring_pop(struct gi_ring_cons *c, void *out, uint32_t max)
{
	int avail = gi_ring_cons_avail(c, max);
	if (avail < 0)
		return avail;
	uint32_t n = (uint32_t)avail < max ? (uint32_t)avail : max;
	if (n == 0)
		return 0;
	uint8_t *dst = out;
	uint32_t first = c->local_head & c->mask;
	uint32_t run = c->mask + 1 - first;
	if (run > n)
		run = n;
	memcpy(dst, c->recs + (size_t)first * c->rec_size, (size_t)run * c->rec_size);
	if (run < n)
		memcpy(dst + (size_t)run * c->rec_size, c->recs, (size_t)(n - run) * c->rec_size);
	gi_ring_cons_release(c, n);
	return (int)n;
}
