/* Sampler: greedy and top-k=1 are argmax, seeds reproduce, draws follow the
 * softmax, penalties change logits as llama.cpp does, top-p / min-p keep the
 * right sets, bad parameters are named, and a 32000-token draw is fast. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "tests/t_util.h"

static struct sampler *make(float temp, int32_t top_k, float top_p, float min_p, uint64_t seed,
			    uint32_t n_vocab)
{
	struct sampler_params p;
	struct sampler *s;

	sampler_params_default(&p);
	p.temperature = temp;
	p.top_k = top_k;
	p.top_p = top_p;
	p.min_p = min_p;
	p.seed = seed;
	ck_assert_int_eq(sampler_create(&p, n_vocab, &s), 0);
	return s;
}

/* Deterministic pseudo-normal logits. */
static void fill_logits(float *l, uint32_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < n; i++) {
		double u = 0;
		for (int k = 0; k < 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			u += (double)(x >> 11) * 0x1.0p-53;
		}
		l[i] = (float)((u - 2.0) * 3.0);
	}
}

static int32_t argmax_ref(const float *l, uint32_t n)
{
	int32_t b = 0;
	for (uint32_t i = 1; i < n; i++)
		if (l[i] > l[b])
			b = (int32_t)i;
	return b;
}

START_TEST(greedy_is_argmax)
{
	const uint32_t n = 32000;
	float *l = malloc(n * sizeof(*l));
	struct sampler *s = make(0.0f, 40, 0.95f, 0.05f, 1, n);
	for (uint32_t k = 0; k < 20; k++) {
		fill_logits(l, n, k);
		ck_assert_int_eq(sampler_sample(s, l, NULL, 0, NULL), argmax_ref(l, n));
	}
	/* ties go to the lowest id */
	for (uint32_t i = 0; i < n; i++)
		l[i] = 0.0f;
	l[7] = l[300] = l[31999] = 5.0f;
	ck_assert_int_eq(sampler_sample(s, l, NULL, 0, NULL), 7);
	sampler_free(s);
	free(l);
}
END_TEST

START_TEST(top_k_1_is_greedy)
{
	const uint32_t n = 32000;
	float *l = malloc(n * sizeof(*l));
	const float temps[] = { 0.1f, 0.8f, 1.0f, 2.0f, 50.0f };
	for (size_t t = 0; t < sizeof(temps) / sizeof(temps[0]); t++) {
		struct sampler *s = make(temps[t], 1, 1.0f, 0.0f, 42 + t, n);
		for (uint32_t k = 0; k < 10; k++) {
			fill_logits(l, n, 100 + k);
			ck_assert_int_eq(sampler_sample(s, l, NULL, 0, NULL), argmax_ref(l, n));
		}
		sampler_free(s);
	}
	free(l);
}
END_TEST

static int cmp_ref(const void *a, const void *b, void *arg)
{
	const float *l = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	if (l[x] != l[y])
		return l[x] > l[y] ? -1 : 1;
	return x < y ? -1 : 1;
}

/* On a full vocabulary, with and without ties, top-k keeps exactly the K
 * best (ties to the lowest id): a flat temperature draws each of them. */
START_TEST(top_k_exact_set)
{
	const uint32_t n = 32000, k = 40;
	float *l = malloc(n * sizeof(*l));
	int32_t *order = malloc(n * sizeof(*order));
	bool *in = calloc(n, sizeof(*in));
	int *seen = calloc(n, sizeof(*seen));

	fill_logits(l, n, 900 + (uint32_t)_i);
	if (_i == 1)
		for (uint32_t i = 0; i < n; i++)
			l[i] = floorf(l[i]); /* many ties at the boundary */
	for (uint32_t i = 0; i < n; i++)
		order[i] = (int32_t)i;
	qsort_r(order, n, sizeof(*order), cmp_ref, l);
	for (uint32_t i = 0; i < k; i++)
		in[order[i]] = true;
	struct sampler *s = make(1000.0f, (int32_t)k, 1.0f, 0.0f, 3, n);
	for (int d = 0; d < 4000; d++) {
		int32_t t = sampler_sample(s, l, NULL, 0, NULL);
		ck_assert_msg(t >= 0 && in[t], "draw %d: token %d (logit %g) is not in the top %u", d,
			      t, t >= 0 ? l[t] : 0.0f, k);
		seen[t]++;
	}
	for (uint32_t i = 0; i < k; i++)
		ck_assert_msg(seen[order[i]] > 0, "top token %d never drawn", order[i]);
	sampler_free(s);
	free(l);
	free(order);
	free(in);
	free(seen);
}
END_TEST

/* NaN logits (a broken model) give some in-range token, never a crash. */
START_TEST(nan_logits)
{
	const uint32_t n = 5000;
	float *l = malloc(n * sizeof(*l));
	const struct {
		float temp, top_p, min_p;
		int32_t top_k;
	} c[] = { { 0, 1, 0, 0 }, { 1, 1, 0, 0 }, { 1, 1, 0, 40 }, { 1, 0.9f, 0, 0 },
		  { 1, 1, 0.1f, 0 }, { 0.7f, 0.9f, 0.05f, 40 } };
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sampler *s = make(c[i].temp, c[i].top_k, c[i].top_p, c[i].min_p, 1, n);
		for (int pass = 0; pass < 3; pass++) {
			fill_logits(l, n, (uint32_t)pass);
			for (uint32_t j = 0; j < n; j += pass == 2 ? 1 : 7)
				l[j] = NAN;
			float lp;
			int32_t t = sampler_sample(s, l, NULL, 0, &lp);
			ck_assert_msg(t >= 0 && (uint32_t)t < n, "config %zu pass %d: token %d", i, pass, t);
		}
		sampler_free(s);
	}
	free(l);
}
END_TEST

START_TEST(seed_reproducible)
{
	const uint32_t n = 1000;
	float *l = malloc(n * sizeof(*l));
	int32_t a[200], b[200], c[200];
	struct sampler *s1 = make(1.0f, 0, 1.0f, 0.0f, 1234, n);
	struct sampler *s2 = make(1.0f, 0, 1.0f, 0.0f, 1234, n);
	struct sampler *s3 = make(1.0f, 0, 1.0f, 0.0f, 1235, n);
	for (int i = 0; i < 200; i++) {
		fill_logits(l, n, (uint32_t)i);
		a[i] = sampler_sample(s1, l, NULL, 0, NULL);
		b[i] = sampler_sample(s2, l, NULL, 0, NULL);
		c[i] = sampler_sample(s3, l, NULL, 0, NULL);
	}
	ck_assert(!memcmp(a, b, sizeof(a)));
	ck_assert(memcmp(a, c, sizeof(a)));
	sampler_free(s1);
	sampler_free(s2);
	sampler_free(s3);
	free(l);
}
END_TEST

/* Frequencies of N draws against probabilities P (5 sigma per token). */
static void check_distribution(struct sampler *s, const float *logits, uint32_t nv, const double *p,
			       int n)
{
	int count[16] = { 0 };
	float l[16];
	for (int i = 0; i < n; i++) {
		memcpy(l, logits, nv * sizeof(*l));
		int32_t t = sampler_sample(s, l, NULL, 0, NULL);
		ck_assert(t >= 0 && (uint32_t)t < nv);
		count[t]++;
	}
	for (uint32_t k = 0; k < nv; k++) {
		double f = (double)count[k] / n, sd = sqrt(p[k] * (1 - p[k]) / n);
		if (p[k] == 0.0)
			ck_assert_msg(count[k] == 0, "token %u drawn %d times, want never", k, count[k]);
		else
			ck_assert_msg(fabs(f - p[k]) <= 5 * sd + 1e-9, "token %u: %.4f, want %.4f", k,
				      f, p[k]);
	}
}

static void softmax_ref(const float *l, uint32_t n, float temp, double *p)
{
	double m = -INFINITY, sum = 0;
	for (uint32_t i = 0; i < n; i++)
		m = l[i] > m ? l[i] : m;
	for (uint32_t i = 0; i < n; i++)
		sum += (p[i] = exp((l[i] - m) / temp));
	for (uint32_t i = 0; i < n; i++)
		p[i] /= sum;
}

START_TEST(distribution)
{
	const float l[8] = { 1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -2.0f };
	double p[8];

	struct sampler *s = make(1.0f, 0, 1.0f, 0.0f, 7, 8);
	softmax_ref(l, 8, 1.0f, p);
	check_distribution(s, l, 8, p, 200000);
	sampler_free(s);

	s = make(2.0f, 0, 1.0f, 0.0f, 8, 8);
	softmax_ref(l, 8, 2.0f, p);
	check_distribution(s, l, 8, p, 200000);
	sampler_free(s);

	/* top-k 3 renormalises over ids 4, 6, 1 */
	s = make(1.0f, 3, 1.0f, 0.0f, 9, 8);
	const float l3[3] = { l[4], l[6], l[1] };
	double p3[3];
	softmax_ref(l3, 3, 1.0f, p3);
	double pk[8] = { 0 };
	pk[4] = p3[0], pk[6] = p3[1], pk[1] = p3[2];
	check_distribution(s, l, 8, pk, 200000);
	sampler_free(s);
}
END_TEST

/* Probabilities 0.5, 0.3, 0.15, 0.05 (ids shuffled), as logits. */
static const float q_logits[4] = { -2.9957323f /* .05 */, -0.6931472f /* .5 */,
				   -1.8971200f /* .15 */, -1.2039728f /* .3 */ };

START_TEST(top_p_sets)
{
	const struct {
		int32_t top_k;
		float top_p;
		double p[4];
	} c[] = {
		{ 0, 0.75f, { 0, 0.5 / 0.8, 0, 0.3 / 0.8 } },
		{ 0, 0.85f, { 0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95 } },
		{ 0, 0.4f, { 0, 1, 0, 0 } },
		{ 3, 0.75f, { 0, 0.5 / 0.8, 0, 0.3 / 0.8 } },
		{ 4, 0.85f, { 0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95 } },
		{ 0, 1.0f, { 0.05, 0.5, 0.15, 0.3 } },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sampler *s = make(1.0f, c[i].top_k, c[i].top_p, 0.0f, 11 + i, 4);
		check_distribution(s, q_logits, 4, c[i].p, 50000);
		sampler_free(s);
	}
}
END_TEST

START_TEST(min_p_sets)
{
	/* min_p 0.2: keep p >= 0.1; 0.5: keep p >= 0.25 */
	struct sampler *s = make(1.0f, 0, 1.0f, 0.2f, 21, 4);
	check_distribution(s, q_logits, 4, (const double[]){ 0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95 },
			   50000);
	sampler_free(s);
	s = make(1.0f, 0, 1.0f, 0.5f, 22, 4);
	check_distribution(s, q_logits, 4, (const double[]){ 0, 0.5 / 0.8, 0, 0.3 / 0.8 }, 50000);
	sampler_free(s);
}
END_TEST

START_TEST(penalties)
{
	struct sampler_params p;
	struct sampler *s;
	float l[8] = { 2.0f, -2.0f, 1.0f, 0.0f, 4.0f, -1.0f, 3.0f, 0.5f };
	/* window of 4: the leading 0 and 0 fall out; 2 twice, 1 and 7 once */
	const int32_t hist[] = { 0, 0, 2, 1, 2, 7 };

	sampler_params_default(&p);
	p.temperature = 0.0f;
	p.repeat_penalty = 2.0f;
	p.frequency_penalty = 0.25f;
	p.presence_penalty = 0.5f;
	p.penalty_last_n = 4;
	ck_assert_int_eq(sampler_create(&p, 8, &s), 0);
	float lp;
	int32_t t = sampler_sample(s, l, hist, 6, &lp);
	ck_assert_int_eq(t, 4);
	const float want[8] = {
		2.0f,                       /* outside the window */
		-2.0f * 2 - 0.25f - 0.5f,   /* negative: multiplied */
		1.0f / 2 - 0.5f - 0.5f,     /* twice */
		0.0f, 4.0f, -1.0f, 3.0f,
		0.5f / 2 - 0.25f - 0.5f,
	};
	for (int i = 0; i < 8; i++)
		ck_assert_msg(fabsf(l[i] - want[i]) < 1e-6f, "logit %d: %g, want %g", i, l[i], want[i]);
	/* logprob under the raw logits */
	const float raw[8] = { 2.0f, -2.0f, 1.0f, 0.0f, 4.0f, -1.0f, 3.0f, 0.5f };
	double pr[8];
	softmax_ref(raw, 8, 1.0f, pr);
	ck_assert_msg(fabs(lp - log(pr[4])) < 1e-5, "logprob %g, want %g", lp, log(pr[4]));

	/* the penalised token's logprob uses its raw logit too */
	float l2[8] = { 5.0f, 0, 0, 0, 0, 0, 0, 0 };
	const int32_t h2[] = { 0 };
	t = sampler_sample(s, l2, h2, 1, &lp);
	ck_assert_int_eq(t, 0); /* 5 / 2 - 0.25 - 0.5 is still the max */
	const float raw2[8] = { 5.0f, 0, 0, 0, 0, 0, 0, 0 };
	softmax_ref(raw2, 8, 1.0f, pr);
	ck_assert(fabs(lp - log(pr[0])) < 1e-5);
	/* history ids out of range are ignored */
	const int32_t h3[] = { -5, 99 };
	float l3[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	ck_assert_int_eq(sampler_sample(s, l3, h3, 2, NULL), 7);
	ck_assert(l3[7] == 8.0f);
	sampler_free(s);
}
END_TEST

START_TEST(logprob_sampled)
{
	const uint32_t n = 32000;
	float *l = malloc(n * sizeof(*l)), *raw = malloc(n * sizeof(*raw));
	double *p = malloc(n * sizeof(*p));
	struct sampler *s = make(0.8f, 40, 0.95f, 0.05f, 5, n);
	for (uint32_t k = 0; k < 10; k++) {
		fill_logits(l, n, 500 + k);
		memcpy(raw, l, n * sizeof(*l));
		float lp;
		int32_t t = sampler_sample(s, l, NULL, 0, &lp);
		softmax_ref(raw, n, 1.0f, p);
		ck_assert_msg(fabs(lp - log(p[t])) < 1e-4, "logprob %g, want %g", lp, log(p[t]));
	}
	sampler_free(s);
	free(l);
	free(raw);
	free(p);
}
END_TEST

static void expect_bad(void (*set)(struct sampler_params *), const char *name)
{
	struct sampler_params p;
	struct sampler *s = NULL;
	char err[128] = "";

	sampler_params_default(&p);
	set(&p);
	ck_assert_int_eq(sampler_params_check(&p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(!strncmp(err, name, strlen(name)), "'%s' does not name %s", err, name);
	ck_assert_int_eq(sampler_create(&p, 100, &s), -EINVAL);
	ck_assert_ptr_null(s);
}

static void bad_temp(struct sampler_params *p) { p->temperature = NAN; }
static void bad_top_p(struct sampler_params *p) { p->top_p = -0.5f; }
static void bad_min_p(struct sampler_params *p) { p->min_p = 1.5f; }
static void bad_repeat(struct sampler_params *p) { p->repeat_penalty = 0.0f; }
static void bad_freq(struct sampler_params *p) { p->frequency_penalty = 3.0f; }
static void bad_presence(struct sampler_params *p) { p->presence_penalty = -INFINITY; }
static void bad_last_n(struct sampler_params *p) { p->penalty_last_n = 1u << 30; }

START_TEST(invalid_params)
{
	struct sampler_params p;
	struct sampler *s = NULL;

	expect_bad(bad_temp, "temperature");
	expect_bad(bad_top_p, "top_p");
	expect_bad(bad_min_p, "min_p");
	expect_bad(bad_repeat, "repeat_penalty");
	expect_bad(bad_freq, "frequency_penalty");
	expect_bad(bad_presence, "presence_penalty");
	expect_bad(bad_last_n, "penalty_last_n");
	sampler_params_default(&p);
	ck_assert_int_eq(sampler_params_check(&p, NULL, 0), 0);
	ck_assert_int_eq(sampler_create(&p, 0, &s), -EINVAL);
	ck_assert_int_eq(sampler_create(&p, 10, &s), 0);
	ck_assert_int_eq(sampler_sample(s, NULL, NULL, 0, NULL), -EINVAL);
	sampler_free(s);
	sampler_free(NULL);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("sampler");
	TCase *tc = tcase_create("sampling");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, greedy_is_argmax);
	tcase_add_test(tc, top_k_1_is_greedy);
	tcase_add_loop_test(tc, top_k_exact_set, 0, 2);
	tcase_add_test(tc, nan_logits);
	tcase_add_test(tc, seed_reproducible);
	tcase_add_test(tc, distribution);
	tcase_add_test(tc, top_p_sets);
	tcase_add_test(tc, min_p_sets);
	tcase_add_test(tc, penalties);
	tcase_add_test(tc, logprob_sampled);
	tcase_add_test(tc, invalid_params);
	suite_add_tcase(s, tc);
	return s;
}
