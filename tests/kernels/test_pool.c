/* The CPU thread pool: every barrier publishes each thread's writes to all
 * the others (checked over many rounds), runs after the workers have gone
 * to sleep on the futex wake them (a lost wake-up hangs and fails on the
 * timeout), and a one-thread run never involves the workers. */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/cpu/pool.h"
#include "tests/t_util.h"

#define ROUNDS 500
#define MAXT 8

struct arg {
	struct cpu_pool *p;
	uint32_t slot[MAXT * 16]; /* one cache line per thread */
	atomic_int bad;
	atomic_int calls;
};

static void rounds(void *v, int ith, int nth)
{
	struct arg *a = v;
	atomic_fetch_add(&a->calls, 1);
	for (uint32_t r = 1; r <= ROUNDS; r++) {
		a->slot[ith * 16] = r;
		cpu_pool_barrier(a->p, nth);
		for (int j = 0; j < nth; j++)
			if (a->slot[j * 16] != r)
				atomic_fetch_add(&a->bad, 1);
		cpu_pool_barrier(a->p, nth);
	}
}

START_TEST(barrier_publishes)
{
	static const int threads[] = { 1, 2, 3, 4 };
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		struct arg *a = calloc(1, sizeof(*a));
		ck_assert_int_eq(cpu_pool_create(threads[i], &a->p), 0);
		ck_assert_int_eq(cpu_pool_threads(a->p), threads[i]);
		for (int run = 0; run < 5; run++)
			cpu_pool_run(a->p, 1, rounds, a);
		ck_assert_int_eq(atomic_load(&a->bad), 0);
		ck_assert_int_eq(atomic_load(&a->calls), 5 * threads[i]);
		cpu_pool_free(a->p);
		free(a);
	}
}
END_TEST

static void count(void *v, int ith, int nth)
{
	struct arg *a = v;
	atomic_fetch_add(&a->calls, 1);
	if (nth > 1)
		cpu_pool_barrier(a->p, nth);
}

START_TEST(wakes_sleeping_workers)
{
	struct arg *a = calloc(1, sizeof(*a));
	ck_assert_int_eq(cpu_pool_create(2, &a->p), 0);
	for (int i = 0; i < 20; i++) {
		/* idle long enough (> the spin time) for the worker to sleep */
		struct timespec ts = { 0, (i % 2 ? 2000 : 10) * 1000 };
		nanosleep(&ts, NULL);
		cpu_pool_run(a->p, 1, count, a);
	}
	ck_assert_int_eq(atomic_load(&a->calls), 40);
	cpu_pool_run(a->p, 0, count, a); /* caller only */
	ck_assert_int_eq(atomic_load(&a->calls), 41);
	cpu_pool_free(a->p);
	cpu_pool_free(NULL);
	free(a);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("cpu");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, barrier_publishes);
	tcase_add_test(tc, wakes_sleeping_workers);
	suite_add_tcase(s, tc);
	return s;
}
