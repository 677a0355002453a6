/* CPU thread pool with a spin barrier and futex sleep.
 *
 * Pairings:
 *  - run:    caller stores fn/arg/nth, then fetch_add(gen, seq_cst)  <->
 *            worker load_acquire(gen) sees the new value, then reads fn/arg.
 *  - sleep:  worker fetch_add(n_sleep, seq_cst), re-loads gen (seq_cst),
 *            futex_wait(gen, old)  <->  caller fetch_add(gen, seq_cst), then
 *            load(n_sleep, seq_cst) and futex_wake if non-zero. In the single
 *            total order either the caller sees the sleeper, or the sleeper's
 *            re-load sees the new gen (and futex_wait itself rechecks gen).
 *  - barrier: every arrival is fetch_add(bar_count, acq_rel); the last one
 *            resets the count and bumps bar_sense (seq_cst)  <->  the others'
 *            load_acquire(bar_sense) in their wait.
 *  - done:   worker fetch_add(done, seq_cst) after FN  <->  caller's
 *            load_acquire(done) in its wait before returning.
 *  - long waits (barrier and done) end on a futex: the waiter does
 *            fetch_add(sleepers, seq_cst), re-loads the word, futex_wait(word,
 *            old)  <->  the changer changes the word (seq_cst), then
 *            load(sleepers, seq_cst) and futex_wake if non-zero: the same
 *            Dekker argument as for sleep above.
 */
#include "kernels/cpu/pool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 300000 /* how long an idle worker spins before sleeping */
#define SPIN_PAUSES 4000 /* pauses before a barrier or done waiter sleeps */

struct cpu_pool {
	int n;
	pthread_t *th;
	cpu_pool_fn *fn;
	void *arg;
	_Alignas(64) atomic_uint gen;
	_Alignas(64) atomic_uint n_sleep;
	_Alignas(64) atomic_uint bar_count;
	_Alignas(64) atomic_uint bar_sense;
	_Alignas(64) atomic_uint done;
	_Alignas(64) atomic_uint bar_sleepers;
	_Alignas(64) atomic_uint done_sleepers;
	atomic_bool stop;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wait(atomic_uint *addr, unsigned val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Waits while *WORD == OLD (OLD itself for DONE-style counters: the value
 * last seen): spins, then sleeps on the futex, counted in *SLEEPERS so the
 * changer knows to wake it (pairs with wake_sleepers). So a peer preempted on
 * an oversubscribed machine does not cost the waiter's time slice. */
static void wait_change(atomic_uint *word, unsigned old, atomic_uint *sleepers)
{
	for (unsigned i = 0; atomic_load_explicit(word, memory_order_acquire) == old; i++) {
		if (i < SPIN_PAUSES) {
			cpu_relax();
			continue;
		}
		atomic_fetch_add(sleepers, 1);
		if (atomic_load(word) == old)
			futex_wait(word, old);
		atomic_fetch_sub(sleepers, 1);
	}
}

/* After changing *WORD (seq_cst): wakes its sleepers, if any. */
static void wake_sleepers(atomic_uint *word, atomic_uint *sleepers)
{
	if (atomic_load(sleepers))
		futex_wake_all(word);
}

/* Waits until gen differs from SEEN and returns the new value. */
static unsigned wait_gen(struct cpu_pool *p, unsigned seen)
{
	uint64_t t0 = 0;
	for (unsigned i = 0;; i++) {
		unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
		if (g != seen)
			return g;
		cpu_relax();
		if ((i & 255) != 255)
			continue;
		uint64_t t = now_ns();
		if (!t0) {
			t0 = t;
			continue;
		}
		if (t - t0 < SPIN_NS)
			continue;
		atomic_fetch_add(&p->n_sleep, 1);
		if (atomic_load(&p->gen) == seen)
			futex_wait(&p->gen, seen);
		atomic_fetch_sub(&p->n_sleep, 1);
		t0 = 0;
	}
}

struct worker_arg {
	struct cpu_pool *p;
	int ith;
};

static void *worker(void *v)
{
	struct worker_arg wa = *(struct worker_arg *)v;
	struct cpu_pool *p = wa.p;
	free(v);
	unsigned seen = 0;
	for (;;) {
		seen = wait_gen(p, seen);
		if (atomic_load_explicit(&p->stop, memory_order_relaxed))
			return NULL;
		p->fn(p->arg, wa.ith, p->n);
		atomic_fetch_add(&p->done, 1);
		wake_sleepers(&p->done, &p->done_sleepers);
	}
}

int cpu_pool_create(int n_threads, struct cpu_pool **ret)
{
	if (n_threads < 1)
		return -EINVAL;
	struct cpu_pool *p = aligned_alloc(64, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct cpu_pool){ .n = 1 };
	p->th = calloc((size_t)n_threads, sizeof(*p->th));
	if (!p->th) {
		free(p);
		return -ENOMEM;
	}
	for (int i = 1; i < n_threads; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		if (wa)
			*wa = (struct worker_arg){ p, i };
		int r = wa ? pthread_create(&p->th[i], NULL, worker, wa) : ENOMEM;
		if (r) {
			free(wa);
			cpu_pool_free(p);
			return -r;
		}
		p->n++;
	}
	*ret = p;
	return 0;
}

void cpu_pool_free(struct cpu_pool *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	atomic_fetch_add(&p->gen, 1);
	futex_wake_all(&p->gen);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	free(p);
}

int cpu_pool_threads(const struct cpu_pool *p)
{
	return p->n;
}

void cpu_pool_run(struct cpu_pool *p, int all, cpu_pool_fn *fn, void *arg)
{
	if (!all || p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	atomic_fetch_add(&p->gen, 1);
	if (atomic_load(&p->n_sleep))
		futex_wake_all(&p->gen);
	fn(arg, 0, p->n);
	for (;;) {
		unsigned d = atomic_load_explicit(&p->done, memory_order_acquire);
		if (d == (unsigned)(p->n - 1))
			break;
		wait_change(&p->done, d, &p->done_sleepers);
	}
}

void cpu_pool_barrier(struct cpu_pool *p, int nth)
{
	if (nth == 1)
		return;
	unsigned sense = atomic_load_explicit(&p->bar_sense, memory_order_relaxed);
	if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == (unsigned)nth - 1) {
		atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
		atomic_store(&p->bar_sense, sense + 1);
		wake_sleepers(&p->bar_sense, &p->bar_sleepers);
		return;
	}
	wait_change(&p->bar_sense, sense, &p->bar_sleepers);
}
