/* KV block manager: which blocks of the paged KV pool are free, owned by
 * sequences (refcounted, a block may be shared by several), or free but still
 * holding the KV of a known token prefix (the prefix cache).
 *
 * Prefix caching: a full block of KV_BLOCK_TOKENS tokens is keyed by a hash
 * chain, key(i) = hash(key(i-1), tokens of block i), key(-1) = KVM_HASH_ROOT,
 * so a key names the whole prefix up to the end of its block, not just the
 * block's own tokens. Lookups also compare the parent key and the 16 tokens,
 * so a hash collision is a miss, never wrong KV. Blocks whose refcount drops
 * to zero keep their key and go to the tail of an LRU list; kvm_alloc() takes
 * never-used blocks first, then evicts from the LRU head.
 *
 * Every operation is O(1) (expected, for the hash table). Not thread-safe:
 * the engine thread owns it. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "engine/model.h"

#define KVM_HASH_ROOT 0x9e3779b97f4a7c15ULL

struct kvmgr;

struct kvm_stats {
	uint32_t total;   /* blocks in the pool */
	uint32_t used;    /* refcount > 0 */
	uint32_t cached;  /* refcount 0, still keyed (reusable on a hit, evictable) */
	uint32_t free;    /* refcount 0, no key */
	uint64_t hits, misses, evictions;
};

/* Creates a manager for N_BLOCKS blocks (1 .. 2^24). -EINVAL, -ENOMEM. */
int kvm_create(uint32_t n_blocks, struct kvmgr **ret);
void kvm_free(struct kvmgr *m); /* accepts NULL */

/* The key of a full block whose prefix before it has key PARENT. */
uint64_t kvm_hash(uint64_t parent, const int32_t *tokens);

/* Takes a block with refcount 1 and no key: a never-keyed free block, else
 * the least recently released cached block (its key is dropped). -ENOSPC
 * when every block is in use. */
int kvm_alloc(struct kvmgr *m, uint32_t *ret_block);

/* Looks up the full block with key KEY (= kvm_hash(PARENT, TOKENS)). On a hit
 * takes a reference (a cached block leaves the LRU) and returns 0 with the
 * block in *RET_BLOCK; -ENOENT on a miss. */
int kvm_lookup(struct kvmgr *m, uint64_t key, uint64_t parent, const int32_t *tokens,
	       uint32_t *ret_block);

/* Records that BLOCK (owned by the caller, filled with the KV of TOKENS after
 * the prefix PARENT) is full, so later lookups of KEY find it. If another
 * block already has this key, nothing changes (the caller's block stays
 * private) and -EEXIST is returned. -EINVAL if the block is not in use or
 * already keyed. */
int kvm_commit(struct kvmgr *m, uint32_t block, uint64_t key, uint64_t parent,
	       const int32_t *tokens);

/* Drops a reference. At zero a keyed block goes to the LRU tail (most
 * recently used), an unkeyed one to the free list. */
void kvm_release(struct kvmgr *m, uint32_t block);

uint32_t kvm_refcount(const struct kvmgr *m, uint32_t block);
/* Blocks kvm_alloc() can still hand out (free + cached). */
uint32_t kvm_available(const struct kvmgr *m);
void kvm_get_stats(const struct kvmgr *m, struct kvm_stats *ret);
