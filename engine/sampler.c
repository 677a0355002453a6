/* Token sampling with llama.cpp's semantics and default order: penalties,
 * top-k, top-p, min-p, temperature, then a draw from the softmax (or argmax
 * when the temperature is <= 0). Every buffer is allocated at creation; a
 * call only touches the candidates it keeps, and the full-vocabulary passes
 * (max, threshold scan, exp-sum) use SSE2 four floats at a time. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "engine/sampler.h"

#define MAX_LAST_N (1u << 20)
#define DEFAULT_LAST_N 64

struct sampler {
	struct sampler_params p;
	uint32_t n_vocab, last_n;
	uint64_t rng[4];
	int32_t *cand_id;   /* [n_vocab] candidates kept so far */
	float *cand_logit;  /* [n_vocab] */
	float *prob;        /* [n_vocab] unnormalised probabilities */
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
	s->count = calloc(n_vocab, sizeof(*s->count));
	s->pen_id = malloc(s->last_n * sizeof(*s->pen_id));
	s->pen_raw = malloc(s->last_n * sizeof(*s->pen_raw));
	if (!s->cand_id || !s->cand_logit || !s->prob || !s->count || !s->pen_id || !s->pen_raw) {
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
	free(s->count);
	free(s->pen_id);
	free(s->pen_raw);
	free(s);
}

/* ---- vector helpers ------------------------------------------------------ */

static float max_of(const float *x, size_t n)
{
	size_t i = 0;
	float m = -INFINITY;
#ifdef __SSE2__
	__m128 vm = _mm_set1_ps(-INFINITY);
	for (; i + 4 <= n; i += 4)
		vm = _mm_max_ps(vm, _mm_loadu_ps(x + i));
	float t[4];
	_mm_storeu_ps(t, vm);
	m = fmaxf(fmaxf(t[0], t[1]), fmaxf(t[2], t[3]));
#endif
	for (; i < n; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

/* Lowest index of the largest value (0 if all are NaN). */
static int32_t argmax(const float *x, size_t n)
{
	float m = max_of(x, n);

	for (size_t i = 0; i < n; i++)
		if (x[i] == m)
			return (int32_t)i;
	return 0;
}

#ifdef __SSE2__
/* exp(x) for x <= 0: 2^n * 2^f with f in [-0.5, 0.5] and a degree-6 Taylor
 * polynomial of 2^f (relative error below 2e-7). */
static __m128 exp_ps(__m128 x)
{
	const __m128 log2e = _mm_set1_ps(1.44269504f);
	x = _mm_max_ps(x, _mm_set1_ps(-86.0f));
	__m128 t = _mm_mul_ps(x, log2e);
	__m128i n = _mm_cvtps_epi32(t);
	__m128 f = _mm_sub_ps(t, _mm_cvtepi32_ps(n));
	__m128 p = _mm_set1_ps(1.5403530e-4f);
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(1.3333558e-3f));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(9.6181291e-3f));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(5.5504109e-2f));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(2.4022651e-1f));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(6.9314718e-1f));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(1.0f));
	__m128i e = _mm_slli_epi32(n, 23);
	return _mm_castsi128_ps(_mm_add_epi32(_mm_castps_si128(p), e));
}
#endif

/* Sum of exp((x[i] - max) * scale); stores the terms in OUT if non-NULL. */
static double sum_exp(const float *x, size_t n, float max, float scale, float *out)
{
	size_t i = 0;
	double sum = 0.0;
#ifdef __SSE2__
	const __m128 vm = _mm_set1_ps(max), vs = _mm_set1_ps(scale);
	__m128 acc = _mm_setzero_ps();
	for (; i + 4 <= n; i += 4) {
		__m128 e = exp_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), vm), vs));
		if (out)
			_mm_storeu_ps(out + i, e);
		acc = _mm_add_ps(acc, e);
	}
	float t[4];
	_mm_storeu_ps(t, acc);
	sum = (double)t[0] + t[1] + t[2] + t[3];
#endif
	for (; i < n; i++) {
		float e = expf((x[i] - max) * scale);
		if (out)
			out[i] = e;
		sum += e;
	}
	return sum;
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

/* Worse: lower logit, or the same logit and a higher id. */
static bool worse(float la, int32_t a, float lb, int32_t b)
{
	return la < lb || (la == lb && a > b);
}

static void sift_down(float *l, int32_t *id, size_t n, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && worse(l[c + 1], id[c + 1], l[c], id[c]))
			c++;
		if (!worse(l[c], id[c], l[i], id[i]))
			return;
		float tl = l[i];
		int32_t ti = id[i];
		l[i] = l[c], id[i] = id[c];
		l[c] = tl, id[c] = ti;
		i = c;
	}
}

/* The K best of LOGITS into the candidates, best first (min-heap scan). */
static size_t top_k(struct sampler *s, const float *logits, size_t k)
{
	float *l = s->cand_logit;
	int32_t *id = s->cand_id;
	size_t n = s->n_vocab, i;

	for (i = 0; i < k; i++)
		l[i] = logits[i], id[i] = (int32_t)i;
	for (size_t j = k / 2; j-- > 0;)
		sift_down(l, id, k, j);
	/* Scanning in id order, a later token with the heap minimum's logit
	 * loses the tie, so only strictly greater logits get in. */
	while (i < n) {
#ifdef __SSE2__
		const __m128 th = _mm_set1_ps(l[0]);
		while (i + 8 <= n) {
			__m128 a = _mm_cmpgt_ps(_mm_loadu_ps(logits + i), th);
			__m128 b = _mm_cmpgt_ps(_mm_loadu_ps(logits + i + 4), th);
			if (_mm_movemask_ps(_mm_or_ps(a, b)))
				break;
			i += 8;
		}
		for (size_t e = i + 8 < n ? i + 8 : n; i < e; i++)
#else
		for (; i < n; i++)
#endif
			if (logits[i] > l[0]) {
				l[0] = logits[i], id[0] = (int32_t)i;
				sift_down(l, id, k, 0);
			}
	}
	/* Heap sort: repeatedly move the worst to the end. */
	for (size_t m = k; m > 1; m--) {
		float tl = l[0];
		int32_t ti = id[0];
		l[0] = l[m - 1], id[0] = id[m - 1];
		l[m - 1] = tl, id[m - 1] = ti;
		sift_down(l, id, m - 1, 0);
	}
	return k;
}

/* Max-heap order for the lazy sort of top-p. */
static void sift_down_max(float *l, int32_t *id, size_t n, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && worse(l[c], id[c], l[c + 1], id[c + 1]))
			c++;
		if (!worse(l[i], id[i], l[c], id[c]))
			return;
		float tl = l[i];
		int32_t ti = id[i];
		l[i] = l[c], id[i] = id[c];
		l[c] = tl, id[c] = ti;
		i = c;
	}
}

/* Keeps the smallest best-first prefix whose probability reaches P. Sorts
 * only as far as needed: pops a max-heap until the mass is reached. */
static size_t top_p(struct sampler *s, size_t n, bool sorted, float max, float p)
{
	float *l = s->cand_logit;
	int32_t *id = s->cand_id;
	double total = sum_exp(l, n, max, 1.0f, NULL), target = (double)p * total, cum = 0.0;

	if (sorted) {
		for (size_t i = 0; i < n; i++) {
			cum += exp((double)l[i] - max);
			if (cum >= target)
				return i + 1;
		}
		return n;
	}
	for (size_t j = n / 2; j-- > 0;)
		sift_down_max(l, id, n, j);
	size_t m = n;
	while (m > 0) {
		cum += exp((double)l[0] - max);
		float tl = l[0];
		int32_t ti = id[0];
		l[0] = l[m - 1], id[0] = id[m - 1];
		l[m - 1] = tl, id[m - 1] = ti;
		m--;
		sift_down_max(l, id, m, 0);
		if (cum >= target)
			break;
	}
	/* The popped best sit at l[m..n) worst first: reverse, move to front. */
	size_t kept = n - m;
	for (size_t a = m, b = n - 1; a < b; a++, b--) {
		float tl = l[a];
		int32_t ti = id[a];
		l[a] = l[b], id[a] = id[b];
		l[b] = tl, id[b] = ti;
	}
	memmove(l, l + m, kept * sizeof(*l));
	memmove(id, id + m, kept * sizeof(*id));
	return kept;
}

int32_t sampler_sample(struct sampler *s, float *logits, const int32_t *history, size_t n,
		       float *ret_logprob)
{
	double lse = 0.0;
	size_t nc;
	bool sorted = false;
	int32_t tok;

	if (!s || !logits || (!history && n))
		return -EINVAL;
	if (ret_logprob) {
		float m = max_of(logits, s->n_vocab);
		lse = m + log(sum_exp(logits, s->n_vocab, m, 1.0f, NULL));
	}
	s->n_pen = 0;
	if (penalties_on(&s->p) && n)
		apply_penalties(s, logits, history, n);

	if (s->p.temperature <= 0.0f || s->p.top_k == 1) {
		tok = argmax(logits, s->n_vocab);
		goto done;
	}
	if (s->p.top_k > 0 && (uint32_t)s->p.top_k < s->n_vocab) {
		nc = top_k(s, logits, (size_t)s->p.top_k);
		sorted = true;
	} else {
		nc = s->n_vocab;
		memcpy(s->cand_logit, logits, nc * sizeof(*logits));
		for (size_t i = 0; i < nc; i++)
			s->cand_id[i] = (int32_t)i;
	}
	float max = sorted ? s->cand_logit[0] : max_of(s->cand_logit, nc);
	if (s->p.top_p < 1.0f) {
		nc = top_p(s, nc, sorted, max, s->p.top_p);
		sorted = true;
	}
	if (s->p.min_p > 0.0f) {
		float th = max + logf(s->p.min_p);
		size_t k = 0;
		for (size_t i = 0; i < nc; i++)
			if (s->cand_logit[i] >= th) {
				s->cand_logit[k] = s->cand_logit[i];
				s->cand_id[k++] = s->cand_id[i];
			}
		nc = k;
	}
	if (!nc) { /* only when the logits are NaN */
		tok = argmax(logits, s->n_vocab);
		goto done;
	}
	/* Temperature then softmax: exp((l - max) / T). */
	double total = sum_exp(s->cand_logit, nc, max, 1.0f / s->p.temperature, s->prob);
	double u = rng_uniform(s->rng) * total, cum = 0.0;
	tok = s->cand_id[nc - 1];
	for (size_t i = 0; i < nc; i++) {
		cum += s->prob[i];
		if (u < cum) {
			tok = s->cand_id[i];
			break;
		}
	}
done:
	if (ret_logprob)
		*ret_logprob = (float)(raw_logit(s, logits, tok) - lse);
	return tok;
}
