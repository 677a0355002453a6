/* Reader for the golden greedy outputs (the shared/golden JSON files): only the
 * fields the engine tests compare. Self-contained (no engine code), as every
 * test program links it. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define T_GOLDEN_MAX_IDS 256

struct t_golden_case {
	char prompt[4096];  /* UTF-8, JSON escapes decoded */
	int32_t prompt_ids[T_GOLDEN_MAX_IDS];
	uint32_t n_prompt;
	int32_t output_ids[T_GOLDEN_MAX_IDS];
	uint32_t n_output;
	int32_t top_id[5];
	double top_prob[5];
	uint32_t n_top;
};

/* Parses PATH; returns the number of cases (at most CAP written), or -1. */
int t_golden_load(const char *path, struct t_golden_case *cases, int cap);
