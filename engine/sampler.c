/* Token sampling with llama.cpp's semantics and default order: penalties,
 * top-k, top-p, min-p, temperature, then a draw from the softmax (or argmax
 * when the temperature is <= 0). Every buffer is allocated at creation and
 * nothing sorts the whole vocabulary: top-k reads only the blocks that can
 * hold a winner, top-p sorts only the histogram bucket where its mass is
 * reached. The vocabulary-wide passes are SIMD (sampler_vec.c). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "engine/sampler_vec.h"

#define MAX_LAST_N (1u << 20)
#define TOPP_SCALE 64.0f  /* top-p histogram buckets per nat */
#define TOPP_BUCKETS 4096 /* logits below max - 64 share the last bucket */
#define DEFAULT_LAST_N 64

struct cand {
	float logit, e; /* e = exp(logit - max) */
	int32_t id;
};

struct sampler {
	struct sampler_params p;
	uint32_t n_vocab, last_n;
	uint64_t rng[4];
	int32_t *cand_id;   /* [n_vocab] candidates kept so far */
	float *cand_logit;  /* [n_vocab] */
	float *prob;        /* [n_vocab] unnormalised probabilities */
	struct cand *tmp;   /* [n_vocab] top-k buffer, top-p's boundary bucket */
	double *mass;       /* [TOPP_BUCKETS] top-p histogram */
	uint32_t *count;    /* [n_vocab] occurrences in the window; all zero between calls */
	int32_t *pen_id;    /* [last_n] distinct tokens of the window */
	float *pen_raw;     /* [last_n] their logits before the penalties */
	uint32_t n_pen;
};

void sampler_params_default(struct sampler_params *p)
{
	*p = (struct sampler_params){
		.temperature = 0.8f,
		.top_k = 40,
		.top_p = 0.95f,
		.min_p = 0.05f,
		.repeat_penalty = 1.0f,
		.frequency_penalty = 0.0f,
		.presence_penalty = 0.0f,
		.penalty_last_n = DEFAULT_LAST_N,
		.seed = 0,
	};
}

#define CHECK(cond, ...)                                         \
	do {                                                     \
		if (!(cond)) {                                   \
			snprintf(err, err ? errlen : 0, __VA_ARGS__); \
			return -EINVAL;                          \
		}                                                \
	} while (0)

int sampler_params_check(const struct sampler_params *p, char *err, size_t errlen)
{
	CHECK(p, "sampler params: NULL");
	CHECK(isfinite(p->temperature), "temperature: %g is not a finite number", p->temperature);
	CHECK(isfinite(p->top_p) && p->top_p >= 0.0f, "top_p: %g is not >= 0", p->top_p);
	CHECK(isfinite(p->min_p) && p->min_p <= 1.0f, "min_p: %g is not <= 1", p->min_p);
	CHECK(isfinite(p->repeat_penalty) && p->repeat_penalty > 0.0f,
	      "repeat_penalty: %g is not > 0", p->repeat_penalty);
	CHECK(isfinite(p->frequency_penalty) && fabsf(p->frequency_penalty) <= 2.0f,
	      "frequency_penalty: %g is not in [-2, 2]", p->frequency_penalty);
	CHECK(isfinite(p->presence_penalty) && fabsf(p->presence_penalty) <= 2.0f,
	      "presence_penalty: %g is not in [-2, 2]", p->presence_penalty);
	CHECK(p->penalty_last_n <= MAX_LAST_N, "penalty_last_n: %u is above %u", p->penalty_last_n,
	      MAX_LAST_N);
	return 0;
}

/* xoshiro256** seeded through splitmix64. */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

int sampler_create(const struct sampler_params *p, uint32_t n_vocab, struct sampler **ret)
{
	struct sampler *s;

	if (!ret || !n_vocab || n_vocab > INT32_MAX || sampler_params_check(p, NULL, 0) < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = *p;
	s->n_vocab = n_vocab;
	s->last_n = p->penalty_last_n ? p->penalty_last_n : DEFAULT_LAST_N;
	uint64_t x = p->seed;
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	s->cand_id = malloc(n_vocab * sizeof(*s->cand_id));
	s->cand_logit = malloc(n_vocab * sizeof(*s->cand_logit));
	s->prob = malloc(n_vocab * sizeof(*s->prob));
	s->tmp = malloc(n_vocab * sizeof(*s->tmp));
	s->mass = malloc(TOPP_BUCKETS * sizeof(*s->mass));
	s->count = calloc(n_vocab, sizeof(*s->count));
	s->pen_id = malloc(s->last_n * sizeof(*s->pen_id));
	s->pen_raw = malloc(s->last_n * sizeof(*s->pen_raw));
	if (!s->cand_id || !s->cand_logit || !s->prob || !s->tmp || !s->mass || !s->count ||
	    !s->pen_id || !s->pen_raw) {
		sampler_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	free(s->cand_id);
	free(s->cand_logit);
	free(s->prob);
	free(s->tmp);
	free(s->mass);
	free(s->count);
	free(s->pen_id);
	free(s->pen_raw);
	free(s);
}

/* ---- penalties ------------------------------------------------------------ */

static bool penalties_on(const struct sampler_params *p)
{
	return p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
}

/* llama.cpp: a token seen C times in the window has its logit divided by the
 * repeat penalty (multiplied if <= 0), then C * frequency + presence taken off. */
static void apply_penalties(struct sampler *s, float *logits, const int32_t *hist, size_t n)
{
	size_t from = n > s->last_n ? n - s->last_n : 0;

	s->n_pen = 0;
	for (size_t i = from; i < n; i++) {
		int32_t id = hist[i];
		if (id < 0 || (uint32_t)id >= s->n_vocab)
			continue;
		if (s->count[id]++ == 0) {
			s->pen_id[s->n_pen] = id;
			s->pen_raw[s->n_pen++] = logits[id];
		}
	}
	for (uint32_t k = 0; k < s->n_pen; k++) {
		int32_t id = s->pen_id[k];
		float l = logits[id], c = (float)s->count[id];
		if (l <= 0.0f)
			l *= s->p.repeat_penalty;
		else
			l /= s->p.repeat_penalty;
		logits[id] = l - c * s->p.frequency_penalty - s->p.presence_penalty;
		s->count[id] = 0;
	}
}

static float raw_logit(const struct sampler *s, const float *logits, int32_t id)
{
	for (uint32_t k = 0; k < s->n_pen; k++)
		if (s->pen_id[k] == id)
			return s->pen_raw[k];
	return logits[id];
}

/* ---- candidate selection ---------------------------------------------------- */

/* Better: higher logit, or the same logit and a lower id. */
static bool better(const struct cand *a, const struct cand *b)
{
	return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void swap_cand(struct cand *a, struct cand *b)
{
	struct cand t = *a;
	*a = *b;
	*b = t;
}

/* Reorders V[0..n) so that its K best come first (in no order). */
static void select_best(struct cand *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		/* median of three as pivot, moved to lo */
		size_t mid = lo + (hi - lo) / 2;
		if (better(&v[mid], &v[lo]))
			swap_cand(&v[mid], &v[lo]);
		if (better(&v[hi - 1], &v[lo]))
			swap_cand(&v[hi - 1], &v[lo]);
		if (better(&v[hi - 1], &v[mid]))
			swap_cand(&v[hi - 1], &v[mid]);
		swap_cand(&v[lo], &v[mid]);
		struct cand pivot = v[lo];
		size_t store = lo + 1;
		for (size_t i = lo + 1; i < hi; i++)
			if (better(&v[i], &pivot))
				swap_cand(&v[i], &v[store++]);
		swap_cand(&v[lo], &v[store - 1]);
		size_t pos = store - 1; /* pivot's rank */
		if (pos == k || pos + 1 == k)
			return;
		if (pos > k)
			hi = pos;
		else
			lo = pos + 1;
	}
}

/* In-place heap sort, best first (glibc's qsort may allocate). */
static void sift_worst(struct cand *v, size_t n, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && better(&v[c], &v[c + 1]))
			c++;
		if (!better(&v[i], &v[c]))
			return;
		swap_cand(&v[i], &v[c]);
		i = c;
	}
}

static void sort_best_first(struct cand *v, size_t n)
{
	/* a heap with the worst at the root; move it to the end each time */
	for (size_t i = n / 2; i-- > 0;)
		sift_worst(v, n, i);
	for (size_t m = n; m > 1; m--) {
		swap_cand(&v[0], &v[m - 1]);
		sift_worst(v, m - 1, 0);
	}
}

/* The K-th largest of A[0..n) (reorders A). */
static float kth_largest(float *a, size_t n, size_t k)
{
	size_t lo = 0, hi = n, want = k - 1;

	while (hi - lo > 1) {
		float pivot = a[lo + (hi - lo) / 2];
		size_t i = lo, j = hi - 1;
		while (i <= j) {
			while (a[i] > pivot)
				i++;
			while (a[j] < pivot)
				j--;
			if (i <= j) {
				float t = a[i];
				a[i] = a[j], a[j] = t;
				i++;
				if (j-- == 0)
					break;
			}
		}
		if (want <= j && j + 1 > lo)
			hi = j + 1;
		else if (want >= i)
			lo = i;
		else
			return a[want];
	}
	return a[want];
}

/* The K best of LOGITS into the candidates, best first. The K-th largest of
 * the 64-token block maxima is a floor for the K-th best token, so only the
 * blocks reaching it are read. Their tokens above the bar go to a buffer of
 * 2K; when it fills, a selection keeps the best K and raises the bar. In id
 * order a later token equal to the bar loses the tie, so after the first
 * selection only strictly greater logits get in. */
static size_t top_k(struct sampler *s, const float *logits, size_t k)
{
	struct cand *v = s->tmp;
	size_t n = s->n_vocab, cap = 2 * k < n ? 2 * k : n, m = 0;
	size_t nb = (n + SMP_BLOCK - 1) / SMP_BLOCK;
	float *bmax = s->prob, cut = -INFINITY;

	smp_block_max(logits, n, bmax);
	if (nb > k) {
		/* tokens equal to the floor may still belong: admit >= floor */
		memcpy(s->cand_logit, bmax, nb * sizeof(*bmax));
		cut = nextafterf(kth_largest(s->cand_logit, nb, k), -INFINITY);
	}
	for (size_t b = 0; b < nb; b++) {
		if (!(bmax[b] > cut))
			continue;
		size_t end = (b + 1) * SMP_BLOCK < n ? (b + 1) * SMP_BLOCK : n;
		for (size_t i = b * SMP_BLOCK; (i = smp_find(logits, end, i, cut, false)) < end; i++) {
			v[m++] = (struct cand){ logits[i], 0.0f, (int32_t)i };
			if (m < cap)
				continue;
			select_best(v, m, k);
			m = k;
			cut = v[0].logit;
			for (size_t j = 1; j < k; j++)
				cut = v[j].logit < cut ? v[j].logit : cut;
		}
	}
	if (m > k) {
		select_best(v, m, k);
		m = k;
	}
	sort_best_first(v, m);
	for (size_t j = 0; j < m; j++) {
		s->cand_logit[j] = v[j].logit;
		s->cand_id[j] = v[j].id;
	}
	return m;
}

/* Top-p over sorted candidates: the shortest prefix reaching mass P. */
static size_t top_p_sorted(struct sampler *s, size_t n, float max, float p)
{
	const float *l = s->cand_logit;
	double target = (double)p * smp_sum_exp(l, n, max, 1.0f, s->prob), cum = 0.0;

	for (size_t i = 0; i < n; i++) {
		cum += s->prob[i];
		if (cum >= target)
			return i + 1;
	}
	return n;
}


static int bucket_of(float max, float l)
{
	float d = (max - l) * TOPP_SCALE;
	if (d < TOPP_BUCKETS - 1) /* false for NaN */
		return d > 0.0f ? (int)d : 0;
	return TOPP_BUCKETS - 1;
}

/* Candidates with a logit of at least TH, in id order. */
static size_t gather(struct sampler *s, const float *logits, float th)
{
	return smp_gather(logits, s->n_vocab, th, s->cand_logit, s->cand_id);
}

/* Top-p over the whole vocabulary without sorting it: histogram the mass by
 * distance to the max (1/64 nat buckets), keep every bucket before the one
 * where the cumulative mass crosses P and sort only that bucket to find the
 * cut. The kept set is the sorted prefix llama.cpp keeps; its order is not. */
static size_t top_p_unsorted(struct sampler *s, const float *logits, float max, float p)
{
	float *l = s->cand_logit, *e = s->prob;
	int32_t *id = s->cand_id;
	double target = (double)p * smp_sum_exp(logits, s->n_vocab, max, 1.0f, e), cum = 0.0;
	int cut = TOPP_BUCKETS - 1;

	memset(s->mass, 0, TOPP_BUCKETS * sizeof(*s->mass));
	for (size_t i = 0; i < s->n_vocab; i++)
		s->mass[bucket_of(max, logits[i])] += e[i];
	for (int b = 0; b < TOPP_BUCKETS; b++) {
		if (cum + s->mass[b] >= target) {
			cut = b;
			break;
		}
		cum += s->mass[b];
	}
	/* Everything up to the cut bucket, with a bucket of margin for rounding;
	 * bucket_of then decides exactly as in the histogram. */
	float floor = cut < TOPP_BUCKETS - 2 ? max - (float)(cut + 2) / TOPP_SCALE : -INFINITY;
	size_t n = gather(s, logits, floor), k = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		int b = bucket_of(max, l[i]);
		if (b < cut) {
			l[k] = l[i];
			id[k++] = id[i];
		} else if (b == cut) {
			s->tmp[m++] = (struct cand){ l[i], e[id[i]], id[i] };
		}
	}
	sort_best_first(s->tmp, m);
	for (size_t j = 0; j < m; j++) {
		l[k] = s->tmp[j].logit;
		id[k++] = s->tmp[j].id;
		cum += s->tmp[j].e;
		if (cum >= target)
			break;
	}
	return k;
}

/* Draws from softmax(L / T) over N logits with ids ID (NULL: 0..N-1). */
static int32_t draw(struct sampler *s, const float *l, const int32_t *id, size_t n, float max)
{
	double total = smp_sum_exp(l, n, max, 1.0f / s->p.temperature, s->prob);
	double u = rng_uniform(s->rng) * total, cum = 0.0;
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		cum += s->prob[i];
		if (u < cum)
			break;
	}
	return id ? id[i] : (int32_t)i;
}

int32_t sampler_sample(struct sampler *s, float *logits, const int32_t *history, size_t n,
		       float *ret_logprob)
{
	const struct sampler_params *p;
	double lse = 0.0;
	size_t nc;
	int32_t tok;

	if (!s || !logits || (!history && n))
		return -EINVAL;
	p = &s->p;
	if (ret_logprob) {
		float m = smp_max(logits, s->n_vocab);
		lse = m + log(smp_sum_exp(logits, s->n_vocab, m, 1.0f, NULL));
	}
	s->n_pen = 0;
	if (penalties_on(p) && n)
		apply_penalties(s, logits, history, n);

	if (p->temperature <= 0.0f || p->top_k == 1) {
		tok = smp_argmax(logits, s->n_vocab);
		goto done;
	}
	bool min_p = p->min_p > 0.0f, top_p = p->top_p < 1.0f;
	float max;
	if (p->top_k > 0 && (uint32_t)p->top_k < s->n_vocab) {
		nc = top_k(s, logits, (size_t)p->top_k);
		max = s->cand_logit[0];
		if (top_p)
			nc = top_p_sorted(s, nc, max, p->top_p);
	} else {
		max = smp_max(logits, s->n_vocab);
		if (!top_p && !min_p) {
			/* Plain softmax over the whole vocabulary. */
			tok = draw(s, logits, NULL, s->n_vocab, max);
			goto done;
		}
		if (top_p)
			nc = top_p_unsorted(s, logits, max, p->top_p);
		else /* min-p alone: gather only its survivors */
			nc = gather(s, logits, max > -INFINITY ? max + logf(p->min_p) : -INFINITY);
	}
	if (min_p) {
		/* keep p >= min_p * p_max, i.e. logit >= max + log(min_p) */
		float th = max + logf(p->min_p);
		size_t k = 0;
		for (size_t i = 0; i < nc; i++)
			if (s->cand_logit[i] >= th) {
				s->cand_logit[k] = s->cand_logit[i];
				s->cand_id[k++] = s->cand_id[i];
			}
		nc = k;
	}
	if (!nc) { /* only when the logits are NaN */
		tok = smp_argmax(logits, s->n_vocab);
		goto done;
	}
	tok = draw(s, s->cand_logit, s->cand_id, nc, max);
done:
	if (ret_logprob)
		*ret_logprob = (float)(raw_logit(s, logits, tok) - lse);
	return tok;
}
