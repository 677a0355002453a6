/* Token sampling: greedy, temperature, top-k, top-p, min-p, repetition /
 * frequency / presence penalties, seeded RNG (same seed and request, same
 * output). One sampler per sequence; allocation-free after creation. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sampler_params {
	float temperature;     /* <= 0: greedy */
	int32_t top_k;         /* <= 0: off */
	float top_p;           /* >= 1: off */
	float min_p;           /* <= 0: off */
	float repeat_penalty;  /* 1: off */
	float frequency_penalty, presence_penalty; /* 0: off */
	uint32_t penalty_last_n; /* window of past tokens the penalties see; 0 = 64 */
	uint64_t seed;
};

void sampler_params_default(struct sampler_params *p);
/* Checks ranges; -EINVAL with a message naming the parameter. */
int sampler_params_check(const struct sampler_params *p, char *err, size_t errlen);

struct sampler;
int sampler_create(const struct sampler_params *p, uint32_t n_vocab, struct sampler **ret);
void sampler_free(struct sampler *s); /* accepts NULL */
/* Picks the next token from LOGITS (n_vocab, modified in place) given the
 * tokens so far (HISTORY, N, prompt included); writes the chosen token's
 * log-probability under the unmodified distribution to *RET_LOGPROB if non-NULL. */
int32_t sampler_sample(struct sampler *s, float *logits, const int32_t *history, size_t n,
		       float *ret_logprob);
