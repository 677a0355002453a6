/* KV block manager: free list, refcounts, prefix-cache hash table and the LRU
 * of cached blocks. All lists are intrusive over the block array. */
#include "daemon/kvmgr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

struct kvm_block {
	uint64_t key, parent;           /* valid when keyed */
	int32_t tokens[KV_BLOCK_TOKENS]; /* valid when keyed */
	uint32_t ref;
	uint32_t hnext;                 /* hash bucket chain */
	uint32_t prev, next;            /* LRU list (cached) or free list (next only) */
	bool keyed;
};

struct kvmgr {
	struct kvm_block *b;
	uint32_t n;
	uint32_t *bucket;               /* head block of each chain, NIL if empty */
	uint32_t mask;
	uint32_t free_head;             /* stack of unkeyed free blocks */
	uint32_t lru_head, lru_tail;    /* keyed blocks with ref 0: head = oldest */
	uint32_t n_used, n_cached, n_free;
	uint64_t hits, misses, evictions;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t kvm_hash(uint64_t parent, const int32_t *tokens)
{
	uint64_t h = mix64(parent ^ 0x2545f4914f6cdd1dULL);
	for (int i = 0; i < KV_BLOCK_TOKENS; i++)
		h = mix64(h ^ ((uint64_t)(uint32_t)tokens[i] + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)));
	return h;
}

int kvm_create(uint32_t n_blocks, struct kvmgr **ret)
{
	if (n_blocks == 0 || n_blocks > (1u << 24))
		return -EINVAL;
	struct kvmgr *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	uint32_t nb = 1;
	while (nb < 2 * n_blocks)
		nb <<= 1;
	m->b = calloc(n_blocks, sizeof(*m->b));
	m->bucket = malloc(nb * sizeof(*m->bucket));
	if (!m->b || !m->bucket) {
		kvm_free(m);
		return -ENOMEM;
	}
	m->n = n_blocks;
	m->mask = nb - 1;
	for (uint32_t i = 0; i < nb; i++)
		m->bucket[i] = NIL;
	/* Free stack pops block 0 first. */
	m->free_head = NIL;
	for (uint32_t i = n_blocks; i-- > 0;) {
		m->b[i].hnext = NIL;
		m->b[i].prev = NIL;
		m->b[i].next = m->free_head;
		m->free_head = i;
	}
	m->lru_head = m->lru_tail = NIL;
	m->n_free = n_blocks;
	*ret = m;
	return 0;
}

void kvm_free(struct kvmgr *m)
{
	if (!m)
		return;
	free(m->b);
	free(m->bucket);
	free(m);
}

static void lru_unlink(struct kvmgr *m, uint32_t i)
{
	struct kvm_block *b = &m->b[i];
	if (b->prev != NIL)
		m->b[b->prev].next = b->next;
	else
		m->lru_head = b->next;
	if (b->next != NIL)
		m->b[b->next].prev = b->prev;
	else
		m->lru_tail = b->prev;
	b->prev = b->next = NIL;
}

static void lru_push_tail(struct kvmgr *m, uint32_t i)
{
	struct kvm_block *b = &m->b[i];
	b->next = NIL;
	b->prev = m->lru_tail;
	if (m->lru_tail != NIL)
		m->b[m->lru_tail].next = i;
	else
		m->lru_head = i;
	m->lru_tail = i;
}

static void unkey(struct kvmgr *m, uint32_t i)
{
	uint32_t *p = &m->bucket[m->b[i].key & m->mask];
	while (*p != i)
		p = &m->b[*p].hnext;
	*p = m->b[i].hnext;
	m->b[i].hnext = NIL;
	m->b[i].keyed = false;
}

static uint32_t find(const struct kvmgr *m, uint64_t key, uint64_t parent, const int32_t *tokens)
{
	for (uint32_t i = m->bucket[key & m->mask]; i != NIL; i = m->b[i].hnext) {
		const struct kvm_block *b = &m->b[i];
		if (b->key == key && b->parent == parent &&
		    !memcmp(b->tokens, tokens, sizeof(b->tokens)))
			return i;
	}
	return NIL;
}

int kvm_alloc(struct kvmgr *m, uint32_t *ret_block)
{
	uint32_t i = m->free_head;
	if (i != NIL) {
		m->free_head = m->b[i].next;
		m->b[i].next = NIL;
		m->n_free--;
	} else if (m->lru_head != NIL) {
		i = m->lru_head;
		lru_unlink(m, i);
		unkey(m, i);
		m->n_cached--;
		m->evictions++;
	} else {
		return -ENOSPC;
	}
	m->b[i].ref = 1;
	m->n_used++;
	*ret_block = i;
	return 0;
}

int kvm_lookup(struct kvmgr *m, uint64_t key, uint64_t parent, const int32_t *tokens,
	       uint32_t *ret_block)
{
	uint32_t i = find(m, key, parent, tokens);
	if (i == NIL) {
		m->misses++;
		return -ENOENT;
	}
	if (m->b[i].ref++ == 0) {
		lru_unlink(m, i);
		m->n_cached--;
		m->n_used++;
	}
	m->hits++;
	*ret_block = i;
	return 0;
}

int kvm_commit(struct kvmgr *m, uint32_t block, uint64_t key, uint64_t parent,
	       const int32_t *tokens)
{
	if (block >= m->n || m->b[block].ref == 0 || m->b[block].keyed)
		return -EINVAL;
	if (find(m, key, parent, tokens) != NIL)
		return -EEXIST;
	struct kvm_block *b = &m->b[block];
	b->key = key;
	b->parent = parent;
	memcpy(b->tokens, tokens, sizeof(b->tokens));
	b->keyed = true;
	uint32_t *head = &m->bucket[key & m->mask];
	b->hnext = *head;
	*head = block;
	return 0;
}

void kvm_release(struct kvmgr *m, uint32_t block)
{
	struct kvm_block *b = &m->b[block];
	if (b->ref == 0 || --b->ref > 0)
		return;
	m->n_used--;
	if (b->keyed) {
		lru_push_tail(m, block);
		m->n_cached++;
	} else {
		b->next = m->free_head;
		m->free_head = block;
		m->n_free++;
	}
}

uint32_t kvm_refcount(const struct kvmgr *m, uint32_t block)
{
	return block < m->n ? m->b[block].ref : 0;
}

uint32_t kvm_available(const struct kvmgr *m)
{
	return m->n_free + m->n_cached;
}

void kvm_get_stats(const struct kvmgr *m, struct kvm_stats *ret)
{
	ret->total = m->n;
	ret->used = m->n_used;
	ret->cached = m->n_cached;
	ret->free = m->n_free;
	ret->hits = m->hits;
	ret->misses = m->misses;
	ret->evictions = m->evictions;
}
