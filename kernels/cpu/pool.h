/* CPU backend thread pool: the caller is thread 0 and N-1 workers join it
 * for each run. Inside a run the threads meet at a spin barrier; between
 * runs the workers spin briefly, then sleep on a futex, so a busy engine
 * loop never pays a wake-up and an idle daemon burns no CPU. */
#pragma once

struct cpu_pool;

typedef void cpu_pool_fn(void *arg, int ith, int nth);

/* N_THREADS >= 1 (the caller included). -ENOMEM, or -errno of pthread_create. */
int cpu_pool_create(int n_threads, struct cpu_pool **ret);
void cpu_pool_free(struct cpu_pool *p); /* accepts NULL; joins the workers */
int cpu_pool_threads(const struct cpu_pool *p);

/* Runs FN(ARG, ith, nth) on every thread of the pool (nth = the pool's size)
 * when ALL is true, else only on the caller (nth = 1); returns when every
 * thread has returned from FN. One caller at a time. */
void cpu_pool_run(struct cpu_pool *p, int all, cpu_pool_fn *fn, void *arg);

/* Inside FN: returns when all NTH threads of the run have called it; memory
 * written before the barrier by any thread is visible after it to all. */
void cpu_pool_barrier(struct cpu_pool *p, int nth);
