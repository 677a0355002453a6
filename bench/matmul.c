/* bench-matmul: CPU matmul throughput per weight type at TinyLlama shapes
 * (dim 2048, FFN 5632, vocab 32000) for M = 1 (decode), 8 (batched
 * decode) and 128 (prefill) activation rows, on 1 and 2 threads that split
 * the output rows as the backend's pool does. Each call includes the
 * activation conversion (rows split among the threads, then a barrier).
 * M = 1 and 8 cycle through enough copies of the weights to defeat the
 * last-level cache, so GB/s is weight streaming from memory.
 *
 *   bench-matmul [--json] [--type NAME] [--threads N] [--time SECONDS]
 *
 * The summary estimates a whole TinyLlama forward pass per token (22
 * layers of q, k, v, o, gate, up, down + the output matrix) from the
 * measured shapes. Before each type's M = 1 runs, a plain streaming read
 * (8 streams per thread) of the same footprint on the same threads
 * measures the memory roofline of the moment; "%roof" is the kernel's
 * weight bandwidth against it (on a shared, busy machine the absolute
 * numbers move, the ratio less so).
 * "Q4_0x16", "Q8_0x16", "Q4_Kx16", "Q6_Kx16" and "F16x16" are the same
 * weights packed by cpu_x16_pack (kernels/cpu/repack.h) and multiplied by
 * cpu_matmul_x16_rows, so packed and GGUF layout compare in one run; their
 * GB/s counts the packed bytes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/repack.h"

#define MAX_THREADS 8
#define CACHE_DEFEAT (384u << 20)

struct shape {
	size_t n, k;
};
static const struct shape shapes[] = { { 2048, 2048 }, { 5632, 2048 }, { 2048, 5632 }, { 32000, 2048 } };
#define NSHAPES 4
static const size_t ms[] = { 1, 8, 128 };
#define NMS 3
/* a weight type, in the GGUF layout or packed (x16); --type matches the
 * name in any case */
struct kind {
	const char *name;
	enum gi_type t;
	int packed;
};
static const struct kind kinds[] = {
	{ "Q4_0", GI_TYPE_Q4_0, 0 }, { "Q4_0x16", GI_TYPE_Q4_0, 1 }, { "Q8_0", GI_TYPE_Q8_0, 0 },
	{ "Q8_0x16", GI_TYPE_Q8_0, 1 }, { "Q4_K", GI_TYPE_Q4_K, 0 }, { "Q4_Kx16", GI_TYPE_Q4_K, 1 },
	{ "Q6_K", GI_TYPE_Q6_K, 0 },   { "Q6_Kx16", GI_TYPE_Q6_K, 1 },
	{ "F16", GI_TYPE_F16, 0 },     { "F16x16", GI_TYPE_F16, 1 },  { "BF16", GI_TYPE_BF16, 0 },
	{ "F32", GI_TYPE_F32, 0 },
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

struct job {
	int stream; /* 1: read the weight bytes instead of multiplying */
	enum gi_type t;
	int packed;
	const uint8_t *w; /* current weight copy */
	size_t n, k, m;
	const float *x;
	void *xq;
	float *y;
};

struct pool {
	int nthreads;
	pthread_barrier_t start, mid, done;
	struct job job;
	int quit;
	pthread_t tid[MAX_THREADS];
};

static uint64_t stream_sink[MAX_THREADS * 8];

/* Concurrent streams the roofline read takes per thread: one core reads 4
 * to 8 streams side by side ~50% faster than one (20 vs 13 GB/s measured
 * here), and the packed kernels read up to 8 weight groups at once, so a
 * single stream would understate the roof. */
#define ROOF_STREAMS 8

/* Sums this thread's share of BYTES at W (the roofline reference), cut in
 * ROOF_STREAMS parts read side by side, with the software prefetch the
 * packed kernels use at M = 1 (2 KiB ahead). */
static void stream_part(const struct job *j, int id, int n)
{
	size_t words = j->n / 8, w0 = words * (size_t)id / (size_t)n, w1 = words * (size_t)(id + 1) / (size_t)n;
	size_t len = (w1 - w0) / ROOF_STREAMS & ~(size_t)7;
	const uint64_t *w = (const uint64_t *)j->w + w0;
	uint64_t acc[ROOF_STREAMS] = { 0 }, sum = 0;
	for (size_t i = 0; i < len; i += 8) {
		for (int s = 0; s < ROOF_STREAMS; s++) {
			const uint64_t *p = w + (size_t)s * len + i;
			__builtin_prefetch(p + 256);
			acc[s] += p[0] + p[1] + p[2] + p[3] + p[4] + p[5] + p[6] + p[7];
		}
	}
	for (int s = 0; s < ROOF_STREAMS; s++)
		sum += acc[s];
	stream_sink[id * 8] += sum;
}

static void run_part(struct pool *p, int id)
{
	const struct job *j = &p->job;
	if (j->stream) {
		stream_part(j, id, p->nthreads);
		return;
	}
	size_t r0 = j->m * (size_t)id / (size_t)p->nthreads, r1 = j->m * (size_t)(id + 1) / (size_t)p->nthreads;
	const enum gi_type at = j->packed ? cpu_x16_act_type(j->t) : j->t;
	cpu_act_convert(at, j->x, j->k, r0, r1, j->xq);
	pthread_barrier_wait(&p->mid);
	/* split output rows on 64-row boundaries */
	size_t chunks = (j->n + 63) / 64;
	size_t c0 = chunks * (size_t)id / (size_t)p->nthreads, c1 = chunks * (size_t)(id + 1) / (size_t)p->nthreads;
	size_t j0 = c0 * 64, j1 = c1 * 64 < j->n ? c1 * 64 : j->n;
	if (j0 < j1 && j->packed)
		cpu_matmul_x16_rows(j->t, j->w, j->k, j->xq, j->m, j->y, j->n, j0, j1);
	else if (j0 < j1)
		cpu_matmul_rows(j->t, j->w, j->k, j->xq, j->m, j->y, j->n, j0, j1);
}

struct worker_arg {
	struct pool *p;
	int id;
};

static void *worker(void *arg)
{
	struct worker_arg *a = arg;
	for (;;) {
		pthread_barrier_wait(&a->p->start);
		if (a->p->quit)
			return NULL;
		run_part(a->p, a->id);
		pthread_barrier_wait(&a->p->done);
	}
}

static void pool_run(struct pool *p)
{
	pthread_barrier_wait(&p->start);
	run_part(p, 0);
	pthread_barrier_wait(&p->done);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct result {
	const struct kind *kd;
	size_t n, k, m;
	int threads;
	double sec; /* per call */
};

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)(rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

/* Bytes of one N x K weight matrix of kind KD as the kernels read it. */
static size_t matrix_bytes(const struct kind *kd, size_t n, size_t k)
{
	return kd->packed ? cpu_x16_bytes(kd->t, k, n) : gi_type_row_bytes(kd->t, k) * n;
}

/* Copies of an N x K weight matrix of type T: the first 64 rows are real
 * quantized data, the rest repeat them (speed does not depend on values). */
static uint8_t *make_weights(enum gi_type t, size_t n, size_t k, size_t copies)
{
	size_t row = gi_type_row_bytes(t, k), seed_rows = 64;
	uint8_t *w = aligned_alloc(64, (row * n * copies + 63) & ~(size_t)63);
	float *tmp = malloc(k * sizeof(float));
	if (!w || !tmp) {
		free(w);
		free(tmp);
		return NULL;
	}
	for (size_t r = 0; r < seed_rows; r++) {
		for (size_t i = 0; i < k; i++)
			tmp[i] = frand() * 0.05f;
		gi_quantize_row(t, tmp, w + r * row, k);
	}
	for (size_t r = seed_rows; r < n * copies; r++)
		memcpy(w + r * row, w + (r % seed_rows) * row, row);
	free(tmp);
	return w;
}

/* The same copies packed into the x16 layout (the packer runs once, the
 * copies repeat its output). */
static uint8_t *make_packed(enum gi_type t, size_t n, size_t k, size_t copies)
{
	size_t bytes = cpu_x16_bytes(t, k, n);
	uint8_t *src = make_weights(t, n, k, 1), *w = aligned_alloc(64, bytes * copies);
	if (!src || !w) {
		free(src);
		free(w);
		return NULL;
	}
	cpu_x16_pack(t, src, k, n, 0, n / 16, w);
	for (size_t c = 1; c < copies; c++)
		memcpy(w + c * bytes, w, bytes);
	free(src);
	return w;
}

static int measure(struct pool *p, const struct kind *kd, struct shape s, size_t m, double min_time,
		   struct result *ret)
{
	const enum gi_type t = kd->t, at = kd->packed ? cpu_x16_act_type(t) : t;
	size_t bytes = matrix_bytes(kd, s.n, s.k);
	size_t copies = m <= 8 ? (CACHE_DEFEAT + bytes - 1) / bytes : 1;
	uint8_t *w = kd->packed ? make_packed(t, s.n, s.k, copies) : make_weights(t, s.n, s.k, copies);
	float *x = malloc(m * s.k * sizeof(float)), *y = malloc(m * s.n * sizeof(float));
	void *xq = aligned_alloc(64, m * cpu_act_row_bytes(at, s.k));
	if (!w || !x || !y || !xq) {
		free(w);
		free(x);
		free(y);
		free(xq);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m * s.k; i++)
		x[i] = frand();
	p->job = (struct job){ .t = t, .packed = kd->packed, .n = s.n, .k = s.k, .m = m, .x = x, .xq = xq, .y = y };
	size_t calls = 0;
	p->job.w = w;
	pool_run(p); /* warm up */
	double t0 = now(), t1;
	do {
		p->job.w = w + (calls % copies) * bytes;
		pool_run(p);
		calls++;
		t1 = now();
	} while (t1 - t0 < min_time || calls < 3);
	*ret = (struct result){ kd, s.n, s.k, m, p->nthreads, (t1 - t0) / (double)calls };
	free(w);
	free(x);
	free(y);
	free(xq);
	return 0;
}

/* Streaming read bandwidth in GB/s over BYTES per call, cycling through
 * enough copies to miss the last-level cache, like the M = 1 runs. */
static double measure_stream(struct pool *p, size_t bytes, double min_time)
{
	size_t copies = (CACHE_DEFEAT + bytes - 1) / bytes;
	uint8_t *buf = aligned_alloc(64, (bytes * copies + 63) & ~(size_t)63);
	if (!buf)
		return 0.0;
	memset(buf, 1, bytes * copies);
	p->job = (struct job){ .stream = 1, .n = bytes };
	size_t calls = 0;
	double t0 = now(), t1;
	do {
		p->job.w = buf + (calls % copies) * bytes;
		pool_run(p);
		calls++;
		t1 = now();
	} while (t1 - t0 < min_time || calls < 3);
	free(buf);
	return (double)bytes * (double)calls / (t1 - t0) * 1e-9;
}

static int pool_start(struct pool *p, int n, struct worker_arg *args)
{
	p->nthreads = n;
	p->quit = 0;
	pthread_barrier_init(&p->start, NULL, (unsigned)n);
	pthread_barrier_init(&p->mid, NULL, (unsigned)n);
	pthread_barrier_init(&p->done, NULL, (unsigned)n);
	for (int i = 1; i < n; i++) {
		args[i] = (struct worker_arg){ p, i };
		if (pthread_create(&p->tid[i], NULL, worker, &args[i]))
			return -EAGAIN;
	}
	return 0;
}

static void pool_stop(struct pool *p)
{
	p->quit = 1;
	pthread_barrier_wait(&p->start);
	for (int i = 1; i < p->nthreads; i++)
		pthread_join(p->tid[i], NULL);
	pthread_barrier_destroy(&p->start);
	pthread_barrier_destroy(&p->mid);
	pthread_barrier_destroy(&p->done);
}

/* Seconds per token of a TinyLlama forward pass from the four measured
 * shapes (k and v are 256 x 2048: scaled from 2048 x 2048). */
static double tinyllama_sec(const struct result *r4)
{
	double sq = r4[0].sec, gate = r4[1].sec, down = r4[2].sec, out = r4[3].sec;
	double layer = 2 * sq + 2 * sq * (256.0 / 2048.0) + 2 * gate + down;
	return (22 * layer + out) / (double)r4[0].m;
}

int main(int argc, char **argv)
{
	int json = 0, max_threads = 2;
	double min_time = 0.25;
	const char *only = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--type") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			max_threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--time") && i + 1 < argc)
			min_time = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--json] [--type NAME] [--threads N] [--time SECONDS]\n", argv[0]);
			return 2;
		}
	}
	int known = !only;
	for (int ti = 0; ti < NKINDS; ti++)
		known |= only && !strcasecmp(only, kinds[ti].name);
	if (!known) {
		fprintf(stderr, "bench-matmul: --type %s: unknown (Q4_0, Q4_0x16, Q8_0, Q8_0x16, Q4_K, Q4_Kx16, Q6_K, Q6_Kx16, F16, F16x16, BF16, F32)\n",
			only);
		return 2;
	}
	if (max_threads < 1 || max_threads > MAX_THREADS) {
		fprintf(stderr, "bench-matmul: --threads %d: must be 1..%d\n", max_threads, MAX_THREADS);
		return 2;
	}

	static struct result res[NKINDS][2][NMS][NSHAPES];
	static double roof[NKINDS][2];
	int have[NKINDS] = { 0 };
	struct pool pool;
	struct worker_arg args[MAX_THREADS];
	int nthr[2] = { 1, max_threads }, nruns = max_threads > 1 ? 2 : 1;

	if (!json)
		printf("simd level: %s\n%-7s %-11s %4s %3s %10s %9s %9s %6s\n", cpu_simd_level(), "type", "NxK",
		       "M", "thr", "us/call", "GB/s", "GFLOP/s", "%roof");
	else
		printf("{\"simd\":\"%s\",\"results\":[", cpu_simd_level());
	int first = 1;
	for (int ti = 0; ti < NKINDS; ti++) {
		const struct kind *kd = &kinds[ti];
		if (only && strcasecmp(only, kd->name))
			continue;
		have[ti] = 1;
		for (int th = 0; th < nruns; th++) {
			if (pool_start(&pool, nthr[th], args)) {
				fprintf(stderr, "bench-matmul: cannot start %d threads\n", nthr[th]);
				return 1;
			}
			roof[ti][th] = measure_stream(&pool, matrix_bytes(kd, 5632, 2048), min_time);
			if (!json)
				printf("%-7s stream read %.2f GB/s on %d thread(s)\n", kd->name,
				       roof[ti][th], nthr[th]);
			for (int mi = 0; mi < NMS; mi++) {
				for (int si = 0; si < NSHAPES; si++) {
					struct result *r = &res[ti][th][mi][si];
					if (measure(&pool, kd, shapes[si], ms[mi], min_time, r)) {
						fprintf(stderr, "bench-matmul: out of memory\n");
						return 1;
					}
					double gb = (double)matrix_bytes(kd, r->n, r->k) / r->sec * 1e-9;
					double gf = 2.0 * (double)r->m * (double)r->n * (double)r->k / r->sec * 1e-9;
					double pct = roof[ti][th] > 0 ? 100.0 * gb / roof[ti][th] : 0.0;
					if (json) {
						printf("%s{\"type\":\"%s\",\"n\":%zu,\"k\":%zu,\"m\":%zu,\"threads\":%d,"
						       "\"us\":%.1f,\"gbps\":%.2f,\"gflops\":%.1f,\"stream_gbps\":%.2f}",
						       first ? "" : ",", kd->name, r->n, r->k, r->m, r->threads,
						       r->sec * 1e6, gb, gf, roof[ti][th]);
						first = 0;
					} else if (r->m == 1) {
						printf("%-7s %5zux%-5zu %4zu %3d %10.1f %9.2f %9.1f %5.0f%%\n",
						       kd->name, r->n, r->k, r->m, r->threads, r->sec * 1e6, gb, gf,
						       pct);
					} else {
						printf("%-7s %5zux%-5zu %4zu %3d %10.1f %9.2f %9.1f %6s\n", kd->name,
						       r->n, r->k, r->m, r->threads, r->sec * 1e6, gb, gf, "-");
					}
					fflush(stdout);
				}
			}
			pool_stop(&pool);
		}
	}

	if (json)
		printf("],\"tinyllama\":[");
	else
		printf("\nTinyLlama layer stack (22 layers + output), tokens/s from the shapes above\n"
		       "(roof: decode if every weight byte streamed at the measured read bandwidth):\n"
		       "%-7s %3s %12s %8s %14s %12s\n", "type", "thr", "decode M=1", "roof", "batch M=8",
		       "prefill M=128");
	first = 1;
	for (int ti = 0; ti < NKINDS; ti++) {
		if (!have[ti])
			continue;
		for (int th = 0; th < nruns; th++) {
			double tps[NMS];
			for (int mi = 0; mi < NMS; mi++)
				tps[mi] = 1.0 / tinyllama_sec(res[ti][th][mi]);
			const struct kind *kd = &kinds[ti];
			double row = (double)matrix_bytes(kd, 16, 2048) / 16, down = (double)matrix_bytes(kd, 16, 5632) / 16;
			double token_bytes = 22 * (row * (2048 * 2 + 256 * 2 + 5632 * 2) + down * 2048) + row * 32000;
			double roof_tps = roof[ti][th] * 1e9 / token_bytes;
			if (json) {
				printf("%s{\"type\":\"%s\",\"threads\":%d,\"decode_tps\":%.1f,\"roof_tps\":%.1f,"
				       "\"batch8_tps\":%.1f,\"prefill_tps\":%.1f}",
				       first ? "" : ",", kd->name, nthr[th], tps[0], roof_tps, tps[1], tps[2]);
				first = 0;
			} else {
				printf("%-7s %3d %12.1f %8.1f %14.1f %12.1f\n", kd->name, nthr[th], tps[0],
				       roof_tps, tps[1], tps[2]);
			}
		}
	}
	if (json)
		printf("]}\n");
	return 0;
}
