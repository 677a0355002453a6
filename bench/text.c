/* bench-text: the text side of a request, which the forward pass does not
 * include — loading a tokenizer, encoding about 1 KB of prose, and one
 * sampler call over a 32000-token vocabulary.
 *
 *   bench-text
 *
 * Vocabularies come from $GI_SHARED/models/vocab/ (default ../shared). Each
 * figure is the best of several rounds, so load from other processes hardly
 * shows. Moved here from the tokenizer and sampler tests: speed is measured,
 * not asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Tokenizer of vocab file NAME: best tok_create time of 5 and best encode
 * time of 20 for TEXT. Returns 0, or -1 after printing why. */
static int bench_tokenizer(const char *shared, const char *name, bool add_special,
			   const char *text)
{
	char path[512], err[256];
	struct gguf *g;
	struct tokenizer *t = NULL;
	double create = 1e30, enc = 1e30;
	size_t len = strlen(text);
	int32_t ids[1024];
	int n = 0, r;

	snprintf(path, sizeof(path), "%s/models/vocab/ggml-vocab-%s.gguf", shared, name);
	r = gguf_open(path, &g, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "bench-text: %s: %s\n", path, err);
		return -1;
	}
	for (int i = 0; i < 5; i++) {
		double t0 = now_ms();

		tok_destroy(t);
		t = NULL;
		r = tok_create(g, &t, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "bench-text: tok_create %s: %s\n", name, err);
			gguf_close(g);
			return -1;
		}
		double dt = now_ms() - t0;

		create = dt < create ? dt : create;
	}
	for (int i = 0; i < 20; i++) {
		double t0 = now_ms();

		n = tok_encode(t, text, len, add_special, false, ids, 1024);
		double dt = now_ms() - t0;

		enc = dt < enc ? dt : enc;
	}
	printf("%-12s %5u tokens  tok_create %7.2f ms  encode %zu bytes -> %d ids %7.3f ms\n",
	       name, tok_n_vocab(t), create, len, n, enc);
	tok_destroy(t);
	gguf_close(g);
	return n < 0 ? -1 : 0;
}

/* Deterministic pseudo-normal logits. */
static void fill_logits(float *l, uint32_t n, uint64_t seed)
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

/* Time of one sampler_sample call in microseconds, the best of 10 rounds of
 * 200; penalties are off, so LOGITS stay unmodified between calls. */
static double sample_us(float temp, int32_t top_k, float top_p, float min_p, bool logprob,
			const float *logits, uint32_t n)
{
	struct sampler_params p;
	struct sampler *s;
	float *l = malloc(n * sizeof(*l));
	double best = 1e30;
	float v;

	sampler_params_default(&p);
	p.temperature = temp;
	p.top_k = top_k;
	p.top_p = top_p;
	p.min_p = min_p;
	p.seed = 1;
	if (!l || sampler_create(&p, n, &s) < 0) {
		free(l);
		return -1;
	}
	memcpy(l, logits, n * sizeof(*l));
	for (int r = 0; r < 10; r++) {
		double t0 = now_ms();

		for (int i = 0; i < 200; i++)
			sampler_sample(s, l, NULL, 0, logprob ? &v : NULL);
		double us = (now_ms() - t0) * 1e3 / 200;

		best = us < best ? us : best;
	}
	sampler_free(s);
	free(l);
	return best;
}

int main(void)
{
	static const char para[] = "Once upon a time, there was a little girl named Lily. She "
				   "loved to play outside in the park with her friends. ";
	const char *shared = getenv("GI_SHARED") ? getenv("GI_SHARED") : "../shared";
	char text[1024 + sizeof(para)] = "";
	const uint32_t n = 32000;
	float *logits = malloc(n * sizeof(*logits));
	int status = 0;

	while (strlen(text) < 1000)
		strcat(text, para);
	printf("tokenizer (best of 5 loads, 20 encodes):\n");
	if (bench_tokenizer(shared, "llama-spm", true, text) < 0)
		status = 1;
	if (bench_tokenizer(shared, "gpt-2", false, text) < 0)
		status = 1;

	if (!logits)
		return 1;
	fill_logits(logits, n, 77);
	printf("sampler over %u logits (best of 10 x 200 calls):\n", n);
	printf("  top-k 40, top-p 0.95, min-p 0.05  %7.2f us\n",
	       sample_us(0.8f, 40, 0.95f, 0.05f, false, logits, n));
	printf("  the same with logprob             %7.2f us\n",
	       sample_us(0.8f, 40, 0.95f, 0.05f, true, logits, n));
	printf("  greedy                            %7.2f us\n",
	       sample_us(0.0f, 0, 1.0f, 0.0f, false, logits, n));
	printf("  top-p 0.95 alone                  %7.2f us\n",
	       sample_us(0.8f, 0, 0.95f, 0.0f, false, logits, n));
	free(logits);
	return status;
}
