/* KV block manager: refcounts, prefix hash chain, LRU eviction, exhaustion. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "daemon/kvmgr.h"
#include "tests/t_util.h"

static struct kvmgr *mk(uint32_t n)
{
	struct kvmgr *m = NULL;
	ck_assert_int_eq(kvm_create(n, &m), 0);
	return m;
}

static void fill(int32_t *t, int seed)
{
	for (int i = 0; i < KV_BLOCK_TOKENS; i++)
		t[i] = seed * 100 + i;
}

START_TEST(alloc_free_refcount)
{
	struct kvmgr *m = mk(4);
	struct kvm_stats st;
	uint32_t a, b, got;
	ck_assert_int_eq(kvm_alloc(m, &a), 0);
	ck_assert_int_eq(kvm_alloc(m, &b), 0);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_eq(kvm_refcount(m, a), 1);
	/* A second owner of A: through a prefix hit. */
	int32_t t[KV_BLOCK_TOKENS];
	fill(t, 3);
	uint64_t k = kvm_hash(KVM_HASH_ROOT, t);
	ck_assert_int_eq(kvm_commit(m, a, k, KVM_HASH_ROOT, t), 0);
	ck_assert_int_eq(kvm_lookup(m, k, KVM_HASH_ROOT, t, &got), 0);
	ck_assert_uint_eq(got, a);
	ck_assert_uint_eq(kvm_refcount(m, a), 2);
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.used, 2);
	ck_assert_uint_eq(st.free, 2);
	kvm_release(m, a);
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.used, 2);
	kvm_release(m, a);
	kvm_release(m, b);
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.used, 0);
	ck_assert_uint_eq(st.free, 3);
	ck_assert_uint_eq(st.cached, 1);
	ck_assert_uint_eq(kvm_available(m), 4);
	ck_assert_int_eq(kvm_create(0, &m), -EINVAL);
	kvm_free(m);
	kvm_free(NULL);
}
END_TEST

START_TEST(hash_chain_hit_miss)
{
	struct kvmgr *m = mk(8);
	int32_t t0[KV_BLOCK_TOKENS], t1[KV_BLOCK_TOKENS];
	fill(t0, 1);
	fill(t1, 2);
	uint64_t k0 = kvm_hash(KVM_HASH_ROOT, t0);
	uint64_t k1 = kvm_hash(k0, t1);
	/* The key depends on the prefix: t1 after another parent is a different key. */
	ck_assert(kvm_hash(KVM_HASH_ROOT, t1) != k1);
	ck_assert(kvm_hash(k0, t0) != k0);

	uint32_t b0, b1, got;
	ck_assert_int_eq(kvm_lookup(m, k0, KVM_HASH_ROOT, t0, &got), -ENOENT);
	ck_assert_int_eq(kvm_alloc(m, &b0), 0);
	ck_assert_int_eq(kvm_alloc(m, &b1), 0);
	ck_assert_int_eq(kvm_commit(m, b0, k0, KVM_HASH_ROOT, t0), 0);
	ck_assert_int_eq(kvm_commit(m, b1, k1, k0, t1), 0);
	ck_assert_int_eq(kvm_commit(m, b1, k1, k0, t1), -EINVAL); /* already keyed */

	/* A hit while still in use shares the block. */
	ck_assert_int_eq(kvm_lookup(m, k0, KVM_HASH_ROOT, t0, &got), 0);
	ck_assert_uint_eq(got, b0);
	ck_assert_uint_eq(kvm_refcount(m, b0), 2);
	kvm_release(m, got);

	/* Same key, other tokens (a forged collision) is a miss. */
	int32_t bad[KV_BLOCK_TOKENS];
	fill(bad, 1);
	bad[15]++;
	ck_assert_int_eq(kvm_lookup(m, k0, KVM_HASH_ROOT, bad, &got), -ENOENT);
	ck_assert_int_eq(kvm_lookup(m, k1, KVM_HASH_ROOT, t1, &got), -ENOENT);

	/* A second block with the same content stays private. */
	uint32_t dup;
	ck_assert_int_eq(kvm_alloc(m, &dup), 0);
	ck_assert_int_eq(kvm_commit(m, dup, k0, KVM_HASH_ROOT, t0), -EEXIST);
	kvm_release(m, dup);

	/* Released keyed blocks are cached, and hits bring them back. */
	kvm_release(m, b1);
	kvm_release(m, b0);
	struct kvm_stats st;
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.cached, 2);
	ck_assert_uint_eq(st.used, 0);
	ck_assert_int_eq(kvm_lookup(m, k0, KVM_HASH_ROOT, t0, &got), 0);
	ck_assert_uint_eq(got, b0);
	ck_assert_int_eq(kvm_lookup(m, k1, k0, t1, &got), 0);
	ck_assert_uint_eq(got, b1);
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.cached, 0);
	ck_assert_uint_eq(st.used, 2);
	kvm_free(m);
}
END_TEST

START_TEST(lru_eviction_order)
{
	struct kvmgr *m = mk(3);
	int32_t t[3][KV_BLOCK_TOKENS];
	uint64_t k[3];
	uint32_t b[3], got;
	for (int i = 0; i < 3; i++) {
		fill(t[i], i + 1);
		k[i] = kvm_hash(KVM_HASH_ROOT, t[i]);
		ck_assert_int_eq(kvm_alloc(m, &b[i]), 0);
		ck_assert_int_eq(kvm_commit(m, b[i], k[i], KVM_HASH_ROOT, t[i]), 0);
	}
	/* Release order 1, 0, 2: LRU order is 1, 0, 2. */
	kvm_release(m, b[1]);
	kvm_release(m, b[0]);
	kvm_release(m, b[2]);
	/* A hit on 1 makes it most recent again: order 0, 2, 1. */
	ck_assert_int_eq(kvm_lookup(m, k[1], KVM_HASH_ROOT, t[1], &got), 0);
	kvm_release(m, got);

	uint32_t n;
	ck_assert_int_eq(kvm_alloc(m, &n), 0);
	ck_assert_uint_eq(n, b[0]);
	ck_assert_int_eq(kvm_lookup(m, k[0], KVM_HASH_ROOT, t[0], &got), -ENOENT);
	ck_assert_int_eq(kvm_alloc(m, &n), 0);
	ck_assert_uint_eq(n, b[2]);
	ck_assert_int_eq(kvm_lookup(m, k[1], KVM_HASH_ROOT, t[1], &got), 0);
	ck_assert_uint_eq(got, b[1]);
	struct kvm_stats st;
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.evictions, 2);
	ck_assert_uint_eq(st.used, 3);
	kvm_free(m);
}
END_TEST

/* Registers the full blocks of TOKENS as one sequence would; returns the
 * number of blocks committed and stores them in BLOCKS. */
static uint32_t run_seq(struct kvmgr *m, const int32_t *tokens, uint32_t n, uint32_t *blocks,
			uint32_t *ret_hits)
{
	uint64_t parent = KVM_HASH_ROOT;
	uint32_t nb = 0, hits = 0;
	bool hitting = true;
	for (uint32_t i = 0; i + KV_BLOCK_TOKENS <= n; i += KV_BLOCK_TOKENS) {
		uint64_t key = kvm_hash(parent, tokens + i);
		if (hitting && kvm_lookup(m, key, parent, tokens + i, &blocks[nb]) == 0) {
			hits++;
		} else {
			hitting = false;
			ck_assert_int_eq(kvm_alloc(m, &blocks[nb]), 0);
			ck_assert_int_eq(kvm_commit(m, blocks[nb], key, parent, tokens + i), 0);
		}
		parent = key;
		nb++;
	}
	*ret_hits = hits;
	return nb;
}

START_TEST(shared_prefix_200)
{
	struct kvmgr *m = mk(64);
	int32_t a[232], b[232];
	for (int i = 0; i < 200; i++)
		a[i] = b[i] = (i * 7) % 500 + 3;
	for (int i = 200; i < 232; i++) {
		a[i] = 1000 + i;
		b[i] = 2000 + i;
	}
	uint32_t ba[16], bb[16], hits;
	ck_assert_uint_eq(run_seq(m, a, 232, ba, &hits), 14);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(run_seq(m, b, 232, bb, &hits), 14);
	/* 200 shared tokens = 12 full blocks (192 tokens) reused. */
	ck_assert_uint_eq(hits, 12);
	for (int i = 0; i < 12; i++) {
		ck_assert_uint_eq(ba[i], bb[i]);
		ck_assert_uint_eq(kvm_refcount(m, ba[i]), 2);
	}
	ck_assert_uint_ne(ba[12], bb[12]);
	struct kvm_stats st;
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.used, 16);
	ck_assert_uint_eq(st.hits, 12);
	kvm_free(m);
}
END_TEST

START_TEST(exhaust_pool)
{
	struct kvmgr *m = mk(5);
	uint32_t b[5], x;
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(kvm_alloc(m, &b[i]), 0);
	ck_assert_int_eq(kvm_alloc(m, &x), -ENOSPC);
	ck_assert_uint_eq(kvm_available(m), 0);
	/* A keyed block released becomes evictable. */
	int32_t t[KV_BLOCK_TOKENS];
	fill(t, 9);
	ck_assert_int_eq(kvm_commit(m, b[3], kvm_hash(KVM_HASH_ROOT, t), KVM_HASH_ROOT, t), 0);
	kvm_release(m, b[3]);
	ck_assert_uint_eq(kvm_available(m), 1);
	ck_assert_int_eq(kvm_alloc(m, &x), 0);
	ck_assert_uint_eq(x, b[3]);
	ck_assert_int_eq(kvm_alloc(m, &x), -ENOSPC);
	for (int i = 0; i < 5; i++)
		kvm_release(m, b[i]);
	struct kvm_stats st;
	kvm_get_stats(m, &st);
	ck_assert_uint_eq(st.free, 5);
	ck_assert_uint_eq(st.used, 0);
	kvm_free(m);
}
END_TEST

/* Random operations against a plain model of the pool: refcounts, which
 * blocks are keyed, and the LRU order of cached blocks (evicted oldest first). */
START_TEST(random_against_model)
{
	enum { N = 16, KEYS = 24 };
	struct kvmgr *m = mk(N);
	uint32_t ref[N] = { 0 };
	int key_of[N];          /* key index a block holds, -1 if none */
	int block_of[KEYS];     /* block holding a key, -1 if none */
	uint64_t lru_stamp[N] = { 0 }, clock = 0;
	int32_t tok[KEYS][KV_BLOCK_TOKENS];
	uint64_t keys[KEYS];
	for (int k = 0; k < KEYS; k++) {
		fill(tok[k], k + 1);
		keys[k] = kvm_hash(KVM_HASH_ROOT, tok[k]);
		block_of[k] = -1;
	}
	for (int i = 0; i < N; i++)
		key_of[i] = -1;
	uint64_t rs = 42;
	for (int step = 0; step < 20000; step++) {
		rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
		uint32_t op = (uint32_t)(rs >> 33) % 4, k = (uint32_t)(rs >> 40) % KEYS;
		uint32_t b = (uint32_t)(rs >> 50) % N, got;
		if (op == 0) {
			/* Expected victim: a never-keyed free block first, else the LRU-oldest cached one. */
			int want = -1;
			bool any_free = false;
			for (int i = 0; i < N; i++)
				if (!ref[i] && key_of[i] < 0)
					any_free = true;
			if (!any_free)
				for (int i = 0; i < N; i++)
					if (!ref[i] && key_of[i] >= 0 && (want < 0 || lru_stamp[i] < lru_stamp[want]))
						want = i;
			int r = kvm_alloc(m, &got);
			if (!any_free && want < 0) {
				ck_assert_int_eq(r, -ENOSPC);
				continue;
			}
			ck_assert_int_eq(r, 0);
			ck_assert_uint_eq(ref[got], 0);
			if (want >= 0)
				ck_assert_uint_eq(got, (uint32_t)want);
			if (key_of[got] >= 0) {
				block_of[key_of[got]] = -1;
				key_of[got] = -1;
			}
			ref[got] = 1;
		} else if (op == 1) {
			int r = kvm_lookup(m, keys[k], KVM_HASH_ROOT, tok[k], &got);
			ck_assert_int_eq(r, block_of[k] >= 0 ? 0 : -ENOENT);
			if (!r) {
				ck_assert_uint_eq(got, (uint32_t)block_of[k]);
				ref[got]++;
			}
		} else if (op == 2 && ref[b]) {
			int r = kvm_commit(m, b, keys[k], KVM_HASH_ROOT, tok[k]);
			if (key_of[b] >= 0)
				ck_assert_int_eq(r, -EINVAL);
			else if (block_of[k] >= 0)
				ck_assert_int_eq(r, -EEXIST);
			else {
				ck_assert_int_eq(r, 0);
				key_of[b] = (int)k;
				block_of[k] = (int)b;
			}
		} else if (op == 3 && ref[b]) {
			kvm_release(m, b);
			if (--ref[b] == 0)
				lru_stamp[b] = ++clock;
		}
		struct kvm_stats st;
		kvm_get_stats(m, &st);
		uint32_t used = 0, cached = 0;
		for (int i = 0; i < N; i++) {
			ck_assert_uint_eq(kvm_refcount(m, (uint32_t)i), ref[i]);
			used += ref[i] > 0;
			cached += !ref[i] && key_of[i] >= 0;
		}
		ck_assert_uint_eq(st.used, used);
		ck_assert_uint_eq(st.cached, cached);
		ck_assert_uint_eq(st.used + st.cached + st.free, N);
	}
	kvm_free(m);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("kvmgr");
	TCase *tc = tcase_create("kvmgr");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, alloc_free_refcount);
	tcase_add_test(tc, hash_chain_hit_miss);
	tcase_add_test(tc, lru_eviction_order);
	tcase_add_test(tc, shared_prefix_200);
	tcase_add_test(tc, exhaust_pool);
	tcase_add_test(tc, random_against_model);
	suite_add_tcase(s, tc);
	return s;
}
