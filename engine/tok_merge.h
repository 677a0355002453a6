/* The merge loop SentencePiece and byte-level BPE share: symbols in a linked
 * list, candidate pairs in a heap ordered by priority (higher first; ties go
 * to the leftmost pair), merged until no adjacent pair qualifies. The two
 * tokenizers differ only in how they rank a pair. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tok_sym {
	uint32_t start, n; /* bytes of the text the symbols cover; n = 0 once merged away */
	int32_t prev, next;
};

struct tok_bigram {
	int32_t left, right;
	float prio;
	uint32_t size;
};

/* Priority of merging L with R into one symbol; false if they do not merge. */
typedef bool tok_pair_prio_fn(void *arg, const struct tok_sym *l, const struct tok_sym *r,
			      float *ret_prio);

struct tok_merger {
	struct tok_sym *sym;     /* caller-filled, linked 0 -> n-1 */
	struct tok_bigram *heap; /* room for 3 * n entries */
	size_t n_heap;
	tok_pair_prio_fn *prio;
	void *arg;
};

/* Merges the N linked symbols in place; the survivors stay linked from 0. */
void tok_merge_run(struct tok_merger *m, int32_t n);
