/* SPSC ring: wrap-around from counters near UINT32_MAX, full/empty edges,
 * batch and slot paths, cached-index behaviour, hostile indices, and two
 * processes passing 10 million records with checksums. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/atomics.h"
#include "ipc/ring.h"
#include "tests/t_util.h"

struct rec {
	uint64_t seq;
	uint64_t sum;
	uint8_t pad[48];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static struct rec make_rec(uint64_t seq)
{
	struct rec r = { .seq = seq, .sum = mix(seq) };
	memset(r.pad, (int)(seq & 0xff), sizeof(r.pad));
	return r;
}

static int rec_ok(const struct rec *r, uint64_t seq)
{
	if (r->seq != seq || r->sum != mix(seq))
		return 0;
	for (size_t i = 0; i < sizeof(r->pad); i++)
		if (r->pad[i] != (uint8_t)(seq & 0xff))
			return 0;
	return 1;
}

/* Configurations: ring size x initial counter, iterated by one loop test. */
static const struct {
	uint32_t entries;
	uint32_t start;
} cfgs[] = {
	{ 1, 0 }, { 1, UINT32_MAX }, { 2, UINT32_MAX - 1 }, { 8, 0 }, { 8, UINT32_MAX - 3 },
	{ 64, UINT32_MAX - 63 }, { 64, 0x7ffffff0u }, { 256, UINT32_MAX - 1000 },
};
#define N_CFGS ((int)(sizeof(cfgs) / sizeof(cfgs[0])))

struct pair {
	uint32_t head, tail;
	struct rec *slots;
	struct gi_ring_prod p;
	struct gi_ring_cons c;
};

static void pair_init(struct pair *x, uint32_t entries, uint32_t start)
{
	x->head = x->tail = start;
	x->slots = calloc(entries, sizeof(struct rec));
	ck_assert_ptr_nonnull(x->slots);
	ck_assert_int_eq(gi_ring_prod_init(&x->p, &x->tail, &x->head, x->slots, entries, sizeof(struct rec), start), 0);
	ck_assert_int_eq(gi_ring_cons_init(&x->c, &x->head, &x->tail, x->slots, entries, sizeof(struct rec), start), 0);
}

START_TEST(test_full_empty_edges)
{
	uint32_t n = cfgs[_i].entries;
	struct pair x;
	pair_init(&x, n, cfgs[_i].start);
	struct rec out;
	ck_assert_int_eq(gi_ring_pop(&x.c, &out, 1), 0);
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 1), 0);
	ck_assert_int_eq(gi_ring_prod_space(&x.p, 1), (int)n);
	for (uint32_t i = 0; i < n; i++) {
		struct rec r = make_rec(i);
		ck_assert_int_eq(gi_ring_push(&x.p, &r, 1), 1);
	}
	struct rec extra = make_rec(999);
	ck_assert_int_eq(gi_ring_prod_space(&x.p, 1), 0);
	ck_assert_int_eq(gi_ring_push(&x.p, &extra, 1), 0);
	ck_assert_uint_eq(gi_ring_prod_pending(&x.p), n);
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 1), (int)n);
	for (uint32_t i = 0; i < n; i++) {
		ck_assert_int_eq(gi_ring_pop(&x.c, &out, 1), 1);
		ck_assert(rec_ok(&out, i));
		/* One slot free again: exactly one more push fits. */
		if (i == 0) {
			struct rec r = make_rec(n);
			ck_assert_int_eq(gi_ring_push(&x.p, &r, 1), 1);
			ck_assert_int_eq(gi_ring_push(&x.p, &extra, 1), 0);
		}
	}
	ck_assert_int_eq(gi_ring_pop(&x.c, &out, 1), 1);
	ck_assert(rec_ok(&out, n));
	ck_assert_int_eq(gi_ring_pop(&x.c, &out, 1), 0);
	free(x.slots);
}
END_TEST

/* Batches of varying size through many wraps of the counter and the ring. */
START_TEST(test_batches_wrap)
{
	uint32_t n = cfgs[_i].entries;
	struct pair x;
	pair_init(&x, n, cfgs[_i].start);
	struct rec *buf = calloc(n + 7, sizeof(*buf));
	uint64_t pushed = 0, popped = 0;
	uint64_t rng = 12345;
	const uint64_t total = 20000;
	while (popped < total) {
		rng = mix(rng + 1);
		uint32_t want = 1 + (uint32_t)(rng % (n + 6));
		for (uint32_t i = 0; i < want; i++)
			buf[i] = make_rec(pushed + i);
		if (rng & 0x100) {
			int k = gi_ring_push(&x.p, buf, want);
			ck_assert_int_ge(k, 0);
			ck_assert_int_le(k, (int)want);
			pushed += (uint64_t)k;
		} else {
			/* Slot path: write in place, then commit. */
			int space = gi_ring_prod_space(&x.p, want);
			ck_assert_int_ge(space, 0);
			uint32_t k = (uint32_t)space < want ? (uint32_t)space : want;
			for (uint32_t i = 0; i < k; i++)
				memcpy(gi_ring_prod_slot(&x.p, i), &buf[i], sizeof(struct rec));
			gi_ring_prod_commit(&x.p, k);
			pushed += k;
		}
		ck_assert_uint_le(pushed - popped, n);
		uint32_t take = 1 + (uint32_t)((rng >> 20) % (n + 6));
		if (rng & 0x200) {
			int k = gi_ring_pop(&x.c, buf, take);
			ck_assert_int_ge(k, 0);
			for (int i = 0; i < k; i++)
				ck_assert(rec_ok(&buf[i], popped + (uint64_t)i));
			popped += (uint64_t)k;
		} else {
			int avail = gi_ring_cons_avail(&x.c, take);
			/* The cache may hold fewer than are published, never fewer than asked. */
			uint64_t have = pushed - popped;
			ck_assert_uint_le((uint64_t)avail, have);
			ck_assert_uint_ge((uint64_t)avail, have < take ? have : take);
			uint32_t k = (uint32_t)avail < take ? (uint32_t)avail : take;
			for (uint32_t i = 0; i < k; i++)
				ck_assert(rec_ok(gi_ring_cons_peek(&x.c, i), popped + i));
			gi_ring_cons_release(&x.c, k);
			popped += k;
		}
	}
	ck_assert_uint_eq(x.tail - cfgs[_i].start, (uint32_t)pushed);
	ck_assert_uint_eq(x.head - cfgs[_i].start, (uint32_t)popped);
	free(buf);
	free(x.slots);
}
END_TEST

/* The producer re-reads head only when its cache says "full"; the consumer
 * re-reads tail only when its cache says "empty". */
START_TEST(test_cached_indices)
{
	struct pair x;
	pair_init(&x, 8, UINT32_MAX - 2);
	struct rec r[8];
	for (int i = 0; i < 8; i++)
		r[i] = make_rec((uint64_t)i);
	ck_assert_int_eq(gi_ring_push(&x.p, r, 4), 4);
	/* A garbage head is not looked at while the cache says there is room. */
	uint32_t saved = x.head;
	x.head = saved + 1000;
	ck_assert_int_eq(gi_ring_prod_space(&x.p, 4), 4);
	x.head = saved;
	/* Consumer: cache holds 4, asking for <= 4 does not re-read. */
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 1), 4);
	x.tail += 1000;
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 4), 4);
	x.tail -= 1000;
	free(x.slots);
}
END_TEST

START_TEST(test_hostile_indices)
{
	struct pair x;
	struct rec out[16];
	uint32_t start = UINT32_MAX - 5;
	/* Tail more than entries ahead. */
	pair_init(&x, 8, start);
	x.tail = start + 9;
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 1), -EPROTO);
	x.tail = start + 1;
	ck_assert_int_eq(gi_ring_pop(&x.c, out, 1), -EPROTO); /* sticky */
	free(x.slots);
	/* Tail moving backwards below what was already seen. */
	pair_init(&x, 8, start);
	x.tail = start + 4;
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 1), 4);
	ck_assert_int_eq(gi_ring_pop(&x.c, out, 2), 2);
	x.tail = start + 3;
	ck_assert_int_eq(gi_ring_cons_avail(&x.c, 8), -EPROTO);
	free(x.slots);
	/* Head moving backwards. */
	pair_init(&x, 8, start);
	struct rec r[8] = { 0 };
	ck_assert_int_eq(gi_ring_push(&x.p, r, 8), 8);
	x.head = start + 4;
	ck_assert_int_eq(gi_ring_prod_space(&x.p, 5), 4);
	x.head = start + 2;
	ck_assert_int_eq(gi_ring_prod_space(&x.p, 8), -EPROTO);
	ck_assert_int_eq(gi_ring_push(&x.p, r, 1), -EPROTO);
	free(x.slots);
	/* Head past tail. */
	pair_init(&x, 8, start);
	ck_assert_int_eq(gi_ring_push(&x.p, r, 8), 8);
	x.head = start + 9;
	ck_assert_int_eq(gi_ring_prod_space(&x.p, 1), -EPROTO);
	free(x.slots);
	/* Geometry. */
	uint32_t h = 0, t = 0;
	ck_assert_int_eq(gi_ring_prod_init(&x.p, &t, &h, r, 6, 64, 0), -EINVAL);
	ck_assert_int_eq(gi_ring_cons_init(&x.c, &h, &t, r, 0, 64, 0), -EINVAL);
}
END_TEST

/* Spin while the peer is likely running; yield when it seems not to be (a
 * loaded 2-CPU machine would otherwise burn whole time slices spinning). */
static void backoff(unsigned *idle)
{
	if (++*idle % 256 == 0)
		sched_yield();
	else
		gi_cpu_relax();
}


/* Two processes, 10 million records, checksummed, through a 256-entry ring in
 * a shared mapping, in batches. ASan makes every record check several times
 * slower, so its build passes 2 million. */
#ifdef __SANITIZE_ADDRESS__
#define XPROC_RECORDS 2000000ull
#else
#define XPROC_RECORDS 10000000ull
#endif
START_TEST(test_two_processes)
{
	const uint32_t entries = 256;
	size_t size = 2 * 128 + entries * sizeof(struct rec);
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	uint32_t *head = (uint32_t *)m, *tail = (uint32_t *)(m + 128);
	struct rec *slots = (struct rec *)(m + 256);
	uint32_t start = UINT32_MAX - 12345;
	*head = *tail = start;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		t_pin_nth_cpu(1);
		struct gi_ring_prod p;
		if (gi_ring_prod_init(&p, tail, head, slots, entries, sizeof(struct rec), start))
			_exit(2);
		struct rec buf[32];
		uint64_t seq = 0;
		unsigned idle = 0;
		while (seq < XPROC_RECORDS) {
			uint32_t n = 32;
			if (XPROC_RECORDS - seq < n)
				n = (uint32_t)(XPROC_RECORDS - seq);
			for (uint32_t i = 0; i < n; i++)
				buf[i] = make_rec(seq + i);
			uint32_t off = 0;
			while (off < n) {
				int k = gi_ring_push(&p, buf + off, n - off);
				if (k < 0)
					_exit(3);
				if (k == 0)
					backoff(&idle);
				else
					idle = 0;
				off += (uint32_t)k;
			}
			seq += n;
		}
		_exit(0);
	}
	t_pin_nth_cpu(0);
	struct gi_ring_cons c;
	ck_assert_int_eq(gi_ring_cons_init(&c, head, tail, slots, entries, sizeof(struct rec), start), 0);
	struct rec buf[64];
	uint64_t seq = 0, bad = 0;
	unsigned idle = 0;
	while (seq < XPROC_RECORDS) {
		int k = gi_ring_pop(&c, buf, 64);
		ck_assert_int_ge(k, 0);
		if (k == 0) {
			backoff(&idle);
			continue;
		}
		idle = 0;
		for (int i = 0; i < k; i++)
			bad += !rec_ok(&buf[i], seq + (uint64_t)i);
		seq += (uint64_t)k;
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(*tail - start, (uint32_t)XPROC_RECORDS);
	munmap(m, size);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ipc_ring");
	TCase *tc = tcase_create("unit");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_full_empty_edges, 0, N_CFGS);
	tcase_add_loop_test(tc, test_batches_wrap, 0, N_CFGS);
	tcase_add_test(tc, test_cached_indices);
	tcase_add_test(tc, test_hostile_indices);
	suite_add_tcase(s, tc);
	TCase *tx = tcase_create("xproc");
	tcase_set_timeout(tx, 120); /* ~1.5 s on an idle 2-CPU machine; generous for a loaded one */
	tcase_add_test(tx, test_two_processes);
	suite_add_tcase(s, tx);
	return s;
}
