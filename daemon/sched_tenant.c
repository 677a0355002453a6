/* Scheduler tenants: the runtime slot of each tenant, table swaps at a step
 * boundary (sched_set_tenants may be called from any thread), statistics. */
#include "daemon/sched_impl.h"

#include <errno.h>
#include <string.h>

void sched_tenant_init(struct stenant *t, const struct tenant_policy *p)
{
	memset(t, 0, sizeof(*t));
	t->pol = *p;
	t->used = t->live = true;
	for (int c = 0; c < TENANT_N_PRIO; c++)
		t->qhead[c] = t->qtail[c] = t->phead[c] = t->ptail[c] = NIL;
}

int sched_find_tenant(const struct sched *s, const char *name)
{
	for (uint32_t i = 0; i < s->n_tslots; i++)
		if (s->ten[i].used && s->ten[i].live && !strcmp(s->ten[i].pol.name, name))
			return (int)i;
	return -ENOENT;
}

int sched_set_tenants(struct sched *s, const struct tenant_table *tt)
{
	if (!tt || tt->n > TENANT_MAX)
		return -EINVAL;
	pthread_mutex_lock(&s->tlock);
	s->tnext = *tt;
	s->tpending = true;
	pthread_mutex_unlock(&s->tlock);
	return 0;
}

void sched_apply_tenants(struct sched *s)
{
	bool changed = false;
	/* Free slots of retired tenants whose last request has ended. */
	for (uint32_t i = 0; i < s->n_tslots; i++) {
		struct stenant *t = &s->ten[i];
		if (t->used && !t->live && !t->n_wait && !t->n_run) {
			t->used = false;
			changed = true;
		}
	}
	pthread_mutex_lock(&s->tlock);
	if (s->tpending) {
		for (uint32_t i = 0; i < N_TSLOTS; i++)
			s->ten[i].live = false;
		for (uint32_t k = 0; k < s->tnext.n; k++) {
			const struct tenant_policy *p = &s->tnext.t[k];
			int found = -1, empty = -1;
			for (uint32_t i = 0; i < N_TSLOTS; i++) {
				if (s->ten[i].used && !strcmp(s->ten[i].pol.name, p->name))
					found = (int)i;
				else if (!s->ten[i].used && empty < 0)
					empty = (int)i;
			}
			if (found >= 0) {
				s->ten[found].pol = *p;
				s->ten[found].live = true;
			} else if (empty >= 0) {
				sched_tenant_init(&s->ten[empty], p);
			}
		}
		s->tpending = false;
		changed = true;
	}
	pthread_mutex_unlock(&s->tlock);
	if (changed) {
		s->n_tslots = 1;
		for (uint32_t i = 0; i < N_TSLOTS; i++)
			if (s->ten[i].used)
				s->n_tslots = i + 1;
	}
}

/* ---- stats ---------------------------------------------------------------------- */

void sched_get_stats(const struct sched *s, struct sched_stats *ret)
{
	struct kvm_stats ks;
	kvm_get_stats(s->kvm, &ks);
	memset(ret, 0, sizeof(*ret));
	ret->requests_running = s->n_run;
	ret->requests_waiting = s->n_waiting;
	ret->tokens_prefilled = s->prefilled;
	ret->tokens_generated = s->generated;
	ret->kv_blocks_total = ks.total;
	ret->kv_blocks_used = ks.used;
	ret->kv_blocks_cached = ks.cached;
	ret->prefix_hit_tokens = s->prefix_hits;
	ret->preemptions = s->preemptions;
	ret->steps = s->steps;
	ret->ctx = s->ctx;
	for (uint32_t i = 0; i < s->n_tslots; i++) {
		const struct stenant *t = &s->ten[i];
		if (!t->used)
			continue;
		struct sched_tenant_stats *o = &ret->tenants[ret->n_tenants++];
		memcpy(o->name, t->pol.name, sizeof(o->name));
		o->live = t->live;
		o->running = t->n_run;
		o->waiting = t->n_wait;
		o->kv_blocks = t->kv_blocks;
		o->tokens_prefilled = t->prefilled;
		o->tokens_generated = t->generated;
		o->requests_done = t->done;
		o->preemptions = t->preempt;
	}
}
