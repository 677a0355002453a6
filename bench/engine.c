/* bench-engine: prefill and decode speed of the forward pass, beside
 * llama.cpp's figures on this machine and the memory-bandwidth roofline.
 *
 *   bench-engine [--quick] [--json] [--threads LIST] [--models DIR]
 *
 * For stories260K and TinyLlama-shaped models in Q4_0, Q8_0, Q4_K_M and F16
 * (generated into build/models/ with gi-mkmodel when missing): prefill of 128
 * tokens (and 512 for stories260K), decode at batch 1 and batch 8 (and 4 and
 * 16 streams for Q4_0, as llama.cpp was measured), at 1 and 2 threads. The
 * roofline is the weight bytes a decode step reads per token divided by the
 * read bandwidth measured just before that model's decode runs on as many
 * threads (8 streams per thread over a buffer much larger than the caches;
 * the header line gives the first such reading). Times are the best of a
 * few runs: on a shared host the best run is the least disturbed one. Each
 * model runs in its own
 * child process so its peak RSS (VmHWM) is its own. The quantized models
 * whose weights the CPU backend packs at load (kernels/cpu/repack.h) run a
 * second time with GI_CPU_REPACK=0 ("unpacked"): the GGUF-layout kernels in
 * the same run, as the baseline of the packing. --quick: stories260K. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"

#define MAX_RESULTS 64

struct model_case {
	const char *label;
	const char *file;   /* under the models dir, or absolute */
	const char *mktype; /* gi-mkmodel --type, NULL = shipped */
	double ref_pp, ref_tg, ref_tg8; /* llama.cpp at 2 threads (0 = not measured) */
	double ref_tg4, ref_tg16;       /* batched decode at 4 and 16 streams; 0 = skip */
	double ref_tg_t1;               /* at 1 thread */
	uint32_t decode_tokens;
	int gguf_layout; /* 1: GI_CPU_REPACK=0, the same model without packed weights */
};

static const struct model_case cases[] = {
	{ "stories260K", NULL, NULL, 0, 5100, 0, 0, 0, 7900, 128, 0 },
	{ "tinyllama Q4_0", "tinyllama-q4_0.gguf", "q4_0", 214, 43.6, 68.3, 53.5, 99.1, 0, 32, 0 },
	{ "  unpacked Q4_0", "tinyllama-q4_0.gguf", "q4_0", 214, 43.6, 68.3, 53.5, 99.1, 0, 32, 1 },
	{ "tinyllama Q8_0", "tinyllama-q8_0.gguf", "q8_0", 241, 25.9, 0, 0, 0, 0, 32, 0 },
	{ "  unpacked Q8_0", "tinyllama-q8_0.gguf", "q8_0", 241, 25.9, 0, 0, 0, 0, 32, 1 },
	{ "tinyllama Q4_K_M", "tinyllama-q4_k_m.gguf", "q4_k_m", 167, 23.0, 0, 0, 0, 0, 32, 0 },
	{ "  unpacked Q4_K_M", "tinyllama-q4_k_m.gguf", "q4_k_m", 167, 23.0, 0, 0, 0, 0, 32, 1 },
	{ "tinyllama F16", "tinyllama-f16.gguf", "f16", 101, 13.1, 0, 0, 0, 0, 16, 0 },
};
#define STORIES_PP512_REF 5900.0

struct result {
	char model[32], metric[16];
	int threads;
	double ours, ref, roof; /* tokens/s; 0 = none */
	double rss_mb, model_mb;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- memory bandwidth ------------------------------------------------------ */

struct bw_arg {
	const uint64_t *p;
	size_t n;
	uint64_t sink;
};

/* Concurrent streams each thread reads side by side: one core reads 4 to 8
 * streams ~50% faster than one, and the packed kernels read up to 8 weight
 * groups at once, so a single stream would understate the roof (as in
 * bench-matmul). */
#define BW_STREAMS 8

/* This thread's share, cut in BW_STREAMS parts read side by side with a
 * software prefetch 2 KiB ahead, as the packed M = 1 kernels do. */
static void *bw_read(void *v)
{
	struct bw_arg *a = v;
	size_t len = a->n / BW_STREAMS & ~(size_t)7;
	uint64_t acc[BW_STREAMS] = { 0 }, sum = 0;
	for (size_t i = 0; i < len; i += 8) {
		for (int s = 0; s < BW_STREAMS; s++) {
			const uint64_t *p = a->p + (size_t)s * len + i;
			__builtin_prefetch(p + 256);
			acc[s] += p[0] + p[1] + p[2] + p[3] + p[4] + p[5] + p[6] + p[7];
		}
	}
	for (int s = 0; s < BW_STREAMS; s++)
		sum += acc[s];
	a->sink = sum;
	return NULL;
}

/* Best of a few passes of THREADS threads each reading its share of 512 MB. */
static double measure_bandwidth(int threads)
{
	size_t bytes = (size_t)512 << 20, n = bytes / sizeof(uint64_t);
	uint64_t *buf = aligned_alloc(64, bytes);
	if (!buf)
		return 0;
	memset(buf, 1, bytes);
	double best = 0;
	for (int rep = 0; rep < 4; rep++) {
		pthread_t th[64];
		struct bw_arg a[64];
		double t0 = now_s();
		for (int i = 0; i < threads; i++) {
			a[i] = (struct bw_arg){ buf + n / (size_t)threads * (size_t)i, n / (size_t)threads, 0 };
			pthread_create(&th[i], NULL, bw_read, &a[i]);
		}
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		double gbs = (double)bytes / (now_s() - t0) / 1e9;
		best = gbs > best ? gbs : best;
	}
	free(buf);
	return best;
}

/* measure_bandwidth in a child process, so its buffer stays out of the
 * caller's peak RSS; 0 on failure. */
static double measure_bandwidth_apart(int threads)
{
	int fds[2];
	double bw = 0;
	if (pipe(fds))
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		bw = measure_bandwidth(threads);
		_exit(write(fds[1], &bw, sizeof(bw)) == sizeof(bw) ? 0 : 1);
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &bw, sizeof(bw)) != sizeof(bw))
		bw = 0;
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return bw;
}

/* ---- measurements ------------------------------------------------------------ */

#define SEQS 16
#define MAX_CTX 640

struct bench {
	struct model *m;
	struct kv_cache *kv;
	uint32_t nv, nb;
	float *logits;               /* [SEQS][nv] */
	uint32_t blocks[SEQS][MAX_CTX / KV_BLOCK_TOKENS];
	int32_t toks[MAX_CTX];
};

static int32_t argmax(const float *l, uint32_t n)
{
	int32_t b = 0;
	for (uint32_t i = 1; i < n; i++)
		if (l[i] > l[b])
			b = (int32_t)i;
	return b;
}

/* Prefill of N tokens in one step from position 0: best tokens/s of REPS. */
static double prefill(struct bench *b, uint32_t n, int reps)
{
	double best = 0;
	for (int r = 0; r < reps; r++) {
		struct step_seq s = { .blocks = b->blocks[0], .n_blocks = b->nb, .tokens = b->toks,
				      .n_tokens = n, .logits = b->logits };
		double t0 = now_s();
		if (model_step(b->m, b->kv, &s, 1))
			return 0;
		double tps = n / (now_s() - t0);
		best = tps > best ? tps : best;
	}
	return best;
}

/* BATCH sequences decode N tokens each, one token of each per step, after a
 * one-token prompt (as llama-bench's tg N): aggregate tokens/s. */
static double decode_once(struct bench *b, uint32_t batch, uint32_t n)
{
	struct step_seq s[SEQS];
	int32_t cur[SEQS];
	for (uint32_t i = 0; i < batch; i++) {
		cur[i] = b->toks[0];
		s[i] = (struct step_seq){ .blocks = b->blocks[i], .n_blocks = b->nb, .pos = 0,
					  .tokens = &cur[i], .n_tokens = 1,
					  .logits = b->logits + (size_t)i * b->nv };
	}
	if (model_step(b->m, b->kv, s, batch))
		return 0;
	double t0 = now_s();
	for (uint32_t k = 1; k <= n; k++) {
		for (uint32_t i = 0; i < batch; i++) {
			cur[i] = argmax(s[i].logits, b->nv);
			s[i].pos = k;
		}
		if (model_step(b->m, b->kv, s, batch))
			return 0;
	}
	return batch * n / (now_s() - t0);
}

/* Best of REPS runs: on a shared machine the best run is the one least
 * disturbed by other processes. */
static double decode(struct bench *b, uint32_t batch, uint32_t n, int reps)
{
	double best = 0;
	for (int r = 0; r < reps; r++) {
		double tps = decode_once(b, batch, n);
		best = tps > best ? tps : best;
	}
	return best;
}

static double vm_hwm_mb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = atof(line + 6);
	if (f)
		fclose(f);
	if (!kb) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		kb = (double)ru.ru_maxrss;
	}
	return kb / 1024;
}

/* Bytes of weights one decode token reads: every tensor but the embedding
 * table (one row of it), unless the output reuses it. */
static double weight_bytes_per_token(const char *path)
{
	struct gguf *g;
	char err[256];
	if (gguf_open(path, &g, err, sizeof(err)))
		return 0;
	double sum = 0;
	bool tied = !gguf_find_tensor(g, "output.weight");
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		if (!tied && gguf_str_eq(t->name, "token_embd.weight"))
			continue;
		sum += (double)t->size;
	}
	gguf_close(g);
	return sum;
}

/* ---- one model, in a child process ---------------------------------------- */

static void emit(int fd, const struct model_case *c, const char *metric, int threads, double ours,
		 double ref, double roof)
{
	struct result r = { .threads = threads, .ours = ours, .ref = ref, .roof = roof };
	snprintf(r.model, sizeof(r.model), "%s", c->label);
	snprintf(r.metric, sizeof(r.metric), "%s", metric);
	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

static int run_model(const struct model_case *c, const char *path, const int *thr, int n_thr,
		     int quick, int fd)
{
	double bpt = weight_bytes_per_token(path);
	int stories = !c->mktype;
	double kv_mb = 0;
	for (int ti = 0; ti < n_thr; ti++) {
		int t = thr[ti];
		struct model_opts o = { .size = sizeof(o), .n_threads = t, .max_batch_tokens = 512,
					.max_seqs = SEQS };
		static struct bench b;
		char err[256];
		if (model_load(path, &o, &b.m, err, sizeof(err))) {
			fprintf(stderr, "bench-engine: %s: %s\n", path, err);
			return 1;
		}
		const struct model_info *in = model_get_info(b.m);
		b.nv = in->n_vocab;
		b.nb = MAX_CTX / KV_BLOCK_TOKENS;
		kv_mb = (double)in->kv_bytes_per_block * b.nb * SEQS / (1 << 20);
		b.logits = malloc((size_t)SEQS * b.nv * sizeof(float));
		if (!b.logits || kv_cache_create(b.m, b.nb * SEQS, &b.kv))
			return 1;
		for (uint32_t i = 0; i < SEQS; i++)
			for (uint32_t j = 0; j < b.nb; j++)
				b.blocks[i][j] = i * b.nb + j;
		b.toks[0] = 1;
		for (uint32_t i = 1; i < MAX_CTX; i++)
			b.toks[i] = (int32_t)(3 + (i * 7919u) % (b.nv - 3));
		decode(&b, 1, 4, 1); /* warm up: fault the weights in */
		emit(fd, c, "pp128", t, prefill(&b, 128, stories ? 20 : 3), t == 2 ? c->ref_pp : 0, 0);
		if (stories)
			emit(fd, c, "pp512", t, prefill(&b, 512, 5), t == 2 ? STORIES_PP512_REF : 0, 0);
		uint32_t n = quick && !stories ? 8 : c->decode_tokens;
		int reps = stories ? 10 : 2;
		/* the roof of this model and thread count, read in the same
		 * minute as its decode runs (this host's bandwidth drifts) */
		double bw_t = measure_bandwidth_apart(t), roof = bpt > 0 ? bw_t * 1e9 / bpt : 0;
		emit(fd, c, "tg b1", t, decode(&b, 1, n, reps), t == 2 ? c->ref_tg : c->ref_tg_t1, roof);
		if (t == 2 && c->ref_tg4 > 0)
			emit(fd, c, "tg b4", t, decode(&b, 4, n / 2, reps), c->ref_tg4, roof * 4);
		emit(fd, c, "tg b8", t, decode(&b, 8, stories ? n : n / 2, reps),
		     t == 2 ? c->ref_tg8 : 0, roof * 8);
		if (t == 2 && c->ref_tg16 > 0)
			emit(fd, c, "tg b16", t, decode(&b, 16, n / 2, reps), c->ref_tg16, roof * 16);
		kv_cache_free(b.kv);
		model_free(b.m);
		free(b.logits);
	}
	struct stat st;
	double model_mb = stat(path, &st) ? 0 : (double)st.st_size / (1 << 20);
	struct result r = { .rss_mb = vm_hwm_mb(), .model_mb = model_mb + kv_mb };
	snprintf(r.model, sizeof(r.model), "%s", c->label);
	snprintf(r.metric, sizeof(r.metric), "peak RSS");
	return write(fd, &r, sizeof(r)) == sizeof(r) ? 0 : 1;
}

static int ensure_model(const char *dir, const struct model_case *c, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", dir, c->file);
	if (!access(path, R_OK))
		return 0;
	const char *b = getenv("GI_BUILD");
	char cmd[4096];
	mkdir(dir, 0755);
	snprintf(cmd, sizeof(cmd),
		 "'%s/bin/gi-mkmodel' --preset tinyllama --type %s --out '%s.tmp' >&2 && mv '%s.tmp' '%s'",
		 b && *b ? b : "build", c->mktype, path, path, path);
	fprintf(stderr, "bench-engine: generating %s\n", path);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- report ------------------------------------------------------------------- */

/* The 1-minute load average: other processes on the machine make every
 * figure here lower, so the table says how busy it was. */
static double load_avg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f && fscanf(f, "%lf", &l) != 1)
		l = -1;
	if (f)
		fclose(f);
	return l;
}

static void print_table(const struct result *r, int n, double bw)
{
	printf("memory read bandwidth: %.1f GB/s; load average %.2f (%ld CPUs)\n", bw, load_avg(),
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-18s %3s %-8s %11s %11s %7s %11s %6s\n", "model", "thr", "metric", "ours t/s",
	       "llama.cpp", "ratio", "roofline", "%roof");
	for (int i = 0; i < n; i++) {
		if (!strcmp(r[i].metric, "peak RSS")) {
			printf("%-18s     %-8s %8.1f MB  (model + KV + 50 MB = %.1f MB)%s\n", r[i].model,
			       r[i].metric, r[i].rss_mb, r[i].model_mb + 50,
			       r[i].rss_mb <= r[i].model_mb + 50 ? "" : "  OVER");
			continue;
		}
		printf("%-18s %3d %-8s %11.1f", r[i].model, r[i].threads, r[i].metric, r[i].ours);
		if (r[i].ref > 0)
			printf(" %11.1f %6.2fx", r[i].ref, r[i].ours / r[i].ref);
		else
			printf(" %11s %7s", "-", "");
		if (r[i].roof > 0)
			printf(" %11.1f %5.0f%%", r[i].roof, 100 * r[i].ours / r[i].roof);
		putchar('\n');
	}
}

static void print_json(const struct result *r, int n, double bw)
{
	printf("{\"bandwidth_gbs\": %.2f, \"load_average\": %.2f, \"results\": [", bw, load_avg());
	for (int i = 0; i < n; i++) {
		printf("%s\n  {\"model\": \"%s\", \"metric\": \"%s\"", i ? "," : "", r[i].model,
		       r[i].metric);
		if (!strcmp(r[i].metric, "peak RSS"))
			printf(", \"rss_mb\": %.1f, \"bound_mb\": %.1f}", r[i].rss_mb,
			       r[i].model_mb + 50);
		else
			printf(", \"threads\": %d, \"tokens_per_s\": %.2f, \"llama_cpp\": %.2f, "
			       "\"roofline\": %.2f}",
			       r[i].threads, r[i].ours, r[i].ref, r[i].roof);
	}
	printf("\n]}\n");
}

int main(int argc, char **argv)
{
	int quick = 0, json = 0, thr[8] = { 1, 2 }, n_thr = 2;
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--models") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			n_thr = 0;
			for (char *p = argv[++i]; *p && n_thr < 8;) {
				char *e;
				long v = strtol(p, &e, 10);
				if (e == p || v < 1 || v > 64) {
					fprintf(stderr, "bench-engine: --threads: bad list '%s'\n", argv[i]);
					return 2;
				}
				thr[n_thr++] = (int)v;
				p = *e == ',' ? e + 1 : e;
			}
		} else {
			fprintf(stderr, "usage: bench-engine [--quick] [--json] [--threads 1,2] "
					"[--models DIR]\n");
			return 2;
		}
	}
	const char *b = getenv("GI_BUILD"), *sh = getenv("GI_SHARED");
	char mdir[1024], stories[1024];
	snprintf(mdir, sizeof(mdir), "%s", dir ? dir : "");
	if (!dir)
		snprintf(mdir, sizeof(mdir), "%s/models", b && *b ? b : "build");
	snprintf(stories, sizeof(stories), "%s/models/stories260K.gguf", sh && *sh ? sh : "../shared");
	int max_thr = 1;
	for (int i = 0; i < n_thr; i++)
		max_thr = thr[i] > max_thr ? thr[i] : max_thr;
	double bw = measure_bandwidth(max_thr);

	static struct result res[MAX_RESULTS];
	int n_res = 0, status = 0;
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const struct model_case *c = &cases[ci];
		char path[1200];
		if (!c->mktype)
			snprintf(path, sizeof(path), "%s", stories);
		else if (quick)
			break;
		else if (ensure_model(mdir, c, path, sizeof(path))) {
			fprintf(stderr, "bench-engine: cannot generate %s, skipped\n", path);
			status = 1;
			continue;
		}
		int fds[2];
		if (pipe(fds))
			return 1;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			if (c->gguf_layout)
				setenv("GI_CPU_REPACK", "0", 1);
			_exit(run_model(c, path, thr, n_thr, quick, fds[1]));
		}
		close(fds[1]);
		while (n_res < MAX_RESULTS && read(fds[0], &res[n_res], sizeof(res[0])) == sizeof(res[0]))
			n_res++;
		close(fds[0]);
		int ws;
		if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws)) {
			fprintf(stderr, "bench-engine: %s failed\n", c->label);
			status = 1;
		}
	}
	if (json)
		print_json(res, n_res, bw);
	else
		print_table(res, n_res, bw);
	return status;
}
