/* Client-side ring allocator over the request arena. */
#include "ipc/arena.h"

#include <errno.h>
#include <stdlib.h>

int gi_arena_init(struct gi_arena *a, uint8_t *base, uint32_t size, uint32_t sq_entries,
		  uint32_t start)
{
	if (size % 4 || !sq_entries || (sq_entries & (sq_entries - 1)))
		return -EINVAL;
	uint64_t *end = calloc(sq_entries, sizeof(*end));
	if (!end)
		return -ENOMEM;
	*a = (struct gi_arena){
		.base = base,
		.size = size,
		.sq_mask = sq_entries - 1,
		.end_pos = end,
		.reclaimed = start,
	};
	return 0;
}

void gi_arena_fini(struct gi_arena *a)
{
	free(a->end_pos);
	*a = (struct gi_arena){ 0 };
}

void gi_arena_reclaim(struct gi_arena *a, uint32_t sq_head)
{
	/* SQ_HEAD was validated by the ring (monotonic, not past our tail), so
	 * every index below it was committed and has an end_pos. */
	if (sq_head == a->reclaimed)
		return;
	a->free_pos = a->end_pos[(sq_head - 1) & a->sq_mask];
	a->reclaimed = sq_head;
}

int gi_arena_alloc(struct gi_arena *a, uint32_t len, uint32_t *ret_off)
{
	uint64_t need = ((uint64_t)len + 3) & ~3ull;
	if (need > a->size)
		return -E2BIG;
	if (a->size == 0) {
		*ret_off = 0;
		return 0;
	}
	uint64_t pos = a->alloc_pos;
	uint64_t off = pos % a->size;
	/* Empty: restart at the beginning, so any LEN <= size fits. */
	if (pos == a->free_pos && off) {
		pos += a->size - off;
		a->free_pos = pos;
		off = 0;
	}
	/* Never wrap inside an allocation: skip the tail of the arena. */
	if (need > a->size - off)
		pos += a->size - off;
	if (pos + need - a->free_pos > a->size)
		return -EAGAIN;
	a->alloc_pos = pos + need;
	*ret_off = (uint32_t)(pos % a->size);
	return 0;
}

void gi_arena_note_commit(struct gi_arena *a, uint32_t idx)
{
	a->end_pos[idx & a->sq_mask] = a->alloc_pos;
}
