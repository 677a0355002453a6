/* Pair merging shared by the SPM and BPE tokenizers (see tok_merge.h). */
#include "engine/tok_merge.h"

static bool before(const struct tok_bigram *a, const struct tok_bigram *b)
{
	return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(struct tok_merger *m, struct tok_bigram bg)
{
	size_t i = m->n_heap++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&bg, &m->heap[parent]))
			break;
		m->heap[i] = m->heap[parent];
		i = parent;
	}
	m->heap[i] = bg;
}

static struct tok_bigram heap_pop(struct tok_merger *m)
{
	struct tok_bigram top = m->heap[0], last = m->heap[--m->n_heap];
	size_t i = 0, n = m->n_heap;

	for (;;) {
		size_t l = 2 * i + 1, best;
		if (l >= n)
			break;
		best = l + 1 < n && before(&m->heap[l + 1], &m->heap[l]) ? l + 1 : l;
		if (!before(&m->heap[best], &last))
			break;
		m->heap[i] = m->heap[best];
		i = best;
	}
	if (n)
		m->heap[i] = last;
	return top;
}

static void add_bigram(struct tok_merger *m, int32_t left, int32_t right)
{
	if (left < 0 || right < 0)
		return;
	const struct tok_sym *l = &m->sym[left], *r = &m->sym[right];
	float prio;
	if (!m->prio(m->arg, l, r, &prio))
		return;
	heap_push(m, (struct tok_bigram){ left, right, prio, l->n + r->n });
}

void tok_merge_run(struct tok_merger *m, int32_t n)
{
	m->n_heap = 0;
	for (int32_t i = 1; i < n; i++)
		add_bigram(m, i - 1, i);
	while (m->n_heap) {
		struct tok_bigram bg = heap_pop(m);
		struct tok_sym *l = &m->sym[bg.left], *r = &m->sym[bg.right];
		/* Stale if either side changed since the pair was queued. */
		if (!l->n || !r->n || l->n + r->n != bg.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			m->sym[r->next].prev = bg.left;
		add_bigram(m, l->prev, bg.left);
		add_bigram(m, bg.left, l->next);
	}
}
