/* Scheduler: creation, request lifecycle (submit, cancel, finish), tenant
 * table swaps, deadlines, shutdown and statistics. The step itself is in
 * sched_step.c. */
#include "daemon/sched_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include <time.h>

#include "engine/tokenizer.h"

uint64_t sched_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- lists ---------------------------------------------------------------- */

static void list_push(struct sched *s, uint32_t *head, uint32_t *tail, struct sreq *r, bool front)
{
	uint32_t i = req_slot(s, r);
	if (front) {
		r->qprev = NIL;
		r->qnext = *head;
		if (*head != NIL)
			s->rq[*head].qprev = i;
		else
			*tail = i;
		*head = i;
	} else {
		r->qnext = NIL;
		r->qprev = *tail;
		if (*tail != NIL)
			s->rq[*tail].qnext = i;
		else
			*head = i;
		*tail = i;
	}
}

static void list_unlink(struct sched *s, uint32_t *head, uint32_t *tail, struct sreq *r)
{
	if (r->qprev != NIL)
		s->rq[r->qprev].qnext = r->qnext;
	else
		*head = r->qnext;
	if (r->qnext != NIL)
		s->rq[r->qnext].qprev = r->qprev;
	else
		*tail = r->qprev;
	r->qprev = r->qnext = NIL;
}

void sched_q_push(struct sched *s, struct sreq *r, bool front)
{
	struct stenant *t = &s->ten[r->tenant];
	list_push(s, &t->qhead[r->cls], &t->qtail[r->cls], r, front);
	r->state = RQ_WAITING;
	t->n_wait++;
	s->n_waiting++;
}

void sched_q_unlink(struct sched *s, struct sreq *r)
{
	struct stenant *t = &s->ten[r->tenant];
	list_unlink(s, &t->qhead[r->cls], &t->qtail[r->cls], r);
	t->n_wait--;
	s->n_waiting--;
}

void sched_pl_push(struct sched *s, struct sreq *r)
{
	struct stenant *t = &s->ten[r->tenant];
	list_push(s, &t->phead[r->cls], &t->ptail[r->cls], r, false);
	r->in_plist = true;
}

void sched_pl_unlink(struct sched *s, struct sreq *r)
{
	if (!r->in_plist)
		return;
	struct stenant *t = &s->ten[r->tenant];
	list_unlink(s, &t->phead[r->cls], &t->ptail[r->cls], r);
	r->in_plist = false;
}

void sched_run_add(struct sched *s, struct sreq *r)
{
	r->run_idx = s->n_run;
	s->run[s->n_run++] = req_slot(s, r);
	r->state = RQ_RUNNING;
	s->ten[r->tenant].n_run++;
}

void sched_run_remove(struct sched *s, struct sreq *r)
{
	uint32_t last = s->run[--s->n_run];
	s->run[r->run_idx] = last;
	s->rq[last].run_idx = r->run_idx;
	r->run_idx = NIL;
	s->ten[r->tenant].n_run--;
}

void sched_release_blocks(struct sched *s, struct sreq *r)
{
	/* Tail first: the LRU then evicts a prefix's last blocks before its first. */
	for (uint32_t i = r->n_blk; i-- > 0;)
		kvm_release(s->kvm, r->blk[i]);
	s->ten[r->tenant].kv_blocks -= r->n_blk;
	r->n_blk = r->n_key = 0;
	r->n_done = 0;
}

/* ---- deadline heap ---------------------------------------------------------- */

static void heap_swap(struct sched *s, uint32_t a, uint32_t b)
{
	uint32_t x = s->heap[a];
	s->heap[a] = s->heap[b];
	s->heap[b] = x;
	s->rq[s->heap[a]].heap_idx = a;
	s->rq[s->heap[b]].heap_idx = b;
}

static uint64_t heap_key(const struct sched *s, uint32_t i)
{
	return s->rq[s->heap[i]].deadline;
}

static void heap_fix(struct sched *s, uint32_t i)
{
	while (i > 0 && heap_key(s, (i - 1) / 2) > heap_key(s, i)) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		if (l < s->n_heap && heap_key(s, l) < heap_key(s, m))
			m = l;
		if (l + 1 < s->n_heap && heap_key(s, l + 1) < heap_key(s, m))
			m = l + 1;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

static void heap_remove(struct sched *s, struct sreq *r)
{
	uint32_t i = r->heap_idx;
	if (i == NIL)
		return;
	r->heap_idx = NIL;
	if (i != --s->n_heap) {
		s->heap[i] = s->heap[s->n_heap];
		s->rq[s->heap[i]].heap_idx = i;
		heap_fix(s, i);
	}
}

/* ---- create / free ---------------------------------------------------------- */

/* A size-prefixed struct from a newer caller: bytes we do not know must be 0. */
static bool tail_is_zero(const void *p, size_t known, size_t size)
{
	for (size_t i = known; i < size; i++)
		if (((const unsigned char *)p)[i])
			return false;
	return true;
}

int sched_create(struct model *m, struct kv_cache *kv, const struct sched_opts *o,
		 struct sched **ret, char *err, size_t errlen)
{
	if (!o || o->size < sizeof(*o) || !tail_is_zero(o, sizeof(*o), o->size)) {
		snprintf(err, errlen, "sched_opts: size %zu (%zu known, unknown bytes must be 0)",
			 o ? o->size : 0, sizeof(*o));
		return -EINVAL;
	}
	if (!o->ev || !o->ev->on_done || !o->ev->on_error) {
		snprintf(err, errlen, "sched_opts: ev, ev->on_done and ev->on_error are required");
		return -EINVAL;
	}
	const struct model_info *mi = model_get_info(m);
	uint32_t max_req = o->max_requests ? o->max_requests : 1024;
	uint32_t max_run = o->max_running ? o->max_running : 64;
	uint32_t max_batch = o->max_batch_tokens ? o->max_batch_tokens : 512;
	uint32_t n_pool = kv_cache_n_blocks(kv);
	uint32_t ctx = o->ctx ? o->ctx : mi->n_ctx_train;
	if (n_pool > (1u << 24)) {
		snprintf(err, errlen, "KV pool of %u blocks, at most %u", n_pool, 1u << 24);
		return -EINVAL;
	}
	if (ctx > n_pool * KV_BLOCK_TOKENS)
		ctx = n_pool * KV_BLOCK_TOKENS;
	if (max_req > (1u << 20) || max_run > 4096 || max_batch <= max_run) {
		snprintf(err, errlen, "sched_opts: max_requests %u (<= 1048576), max_running %u (<= 4096), max_batch_tokens %u (> max_running)",
			 max_req, max_run, max_batch);
		return -EINVAL;
	}
	if (ctx < 2) {
		snprintf(err, errlen, "sched_opts: context of %u tokens (KV pool of %u blocks)", ctx, n_pool);
		return -EINVAL;
	}
	struct sched *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->tlock, NULL);
	s->m = m;
	s->kv = kv;
	s->tok = model_tokenizer(m);
	s->n_vocab = mi->n_vocab;
	s->ctx = ctx;
	s->max_req = max_req;
	s->max_run = max_run;
	s->max_batch = max_batch;
	s->n_pool = n_pool;
	s->ev = *o->ev;
	s->ev_ctx = o->ev_ctx;
	s->rq = calloc(max_req, sizeof(*s->rq));
	s->run = calloc(max_run, sizeof(*s->run));
	s->heap = calloc(max_req, sizeof(*s->heap));
	s->cancel_ids = calloc(max_req, sizeof(*s->cancel_ids));
	s->batch = calloc(max_run, sizeof(*s->batch));
	s->batch_req = calloc(max_run, sizeof(*s->batch_req));
	s->logits = malloc((size_t)max_run * s->n_vocab * sizeof(float));
	for (uint32_t id = 0; id < s->n_vocab; id++)
		s->n_eog += tok_is_eog(s->tok, (int32_t)id);
	s->eog = malloc(((size_t)s->n_eog + 1) * sizeof(*s->eog));
	for (uint32_t id = 0, k = 0; s->eog && id < s->n_vocab; id++)
		if (tok_is_eog(s->tok, (int32_t)id))
			s->eog[k++] = (int32_t)id;
	int r = kvm_create(n_pool, &s->kvm);
	if (r || !s->rq || !s->run || !s->heap || !s->cancel_ids || !s->batch || !s->batch_req ||
	    !s->logits || !s->eog) {
		sched_free(s);
		return r ? r : -ENOMEM;
	}
	s->free_head = NIL;
	for (uint32_t i = max_req; i-- > 0;) {
		s->rq[i].qnext = s->free_head;
		s->free_head = i;
	}
	struct tenant_table def;
	const struct tenant_table *tt = o->tenants;
	if (!tt) {
		tenant_table_init_default(&def);
		tt = &def;
	}
	for (uint32_t i = 0; i < tt->n && i < TENANT_MAX; i++)
		sched_tenant_init(&s->ten[i], &tt->t[i]);
	s->n_tslots = tt->n == 0 ? 1 : tt->n < TENANT_MAX ? tt->n : TENANT_MAX;
	*ret = s;
	return 0;
}

static void req_release(struct sreq *r)
{
	sampler_free(r->smp);
	free(r->tok);
	free(r->blk);
	free(r->bkey);
	free(r->to);
	r->smp = NULL;
	r->tok = NULL;
	r->blk = NULL;
	r->bkey = NULL;
	r->to = NULL;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	if (s->rq)
		for (uint32_t i = 0; i < s->max_req; i++)
			req_release(&s->rq[i]);
	kvm_free(s->kvm);
	free(s->rq);
	free(s->run);
	free(s->heap);
	free(s->cancel_ids);
	free(s->batch);
	free(s->batch_req);
	free(s->logits);
	free(s->eog);
	pthread_mutex_destroy(&s->tlock);
	free(s);
}

/* ---- submit ------------------------------------------------------------------ */

static uint32_t blocks_for(uint32_t tokens)
{
	return (tokens + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
}

static int check_params(const struct sched *s, const struct sched_req_params *p, char *err, size_t errlen)
{
	if (!p || p->size < sizeof(*p) || !tail_is_zero(p, sizeof(*p), p->size)) {
		snprintf(err, errlen, "params: size %zu (%zu known, unknown bytes must be 0)",
			 p ? p->size : 0, sizeof(*p));
		return -EINVAL;
	}
	if (p->n_prompt == 0 || !p->prompt) {
		snprintf(err, errlen, "prompt: empty");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < p->n_prompt; i++) {
		if (p->prompt[i] < 0 || (uint32_t)p->prompt[i] >= s->n_vocab) {
			snprintf(err, errlen, "prompt[%u]: token id %d, vocabulary has %u", i, p->prompt[i],
				 s->n_vocab);
			return -EINVAL;
		}
	}
	if (p->priority > SCHED_PRIO_BATCH) {
		snprintf(err, errlen, "priority: %d unknown", (int)p->priority);
		return -EINVAL;
	}
	int r = sampler_params_check(&p->sampling, err, errlen);
	if (r)
		return r;
	r = textout_check(p->stop, p->stop_len, p->n_stop, err, errlen);
	if (r)
		return r;
	if (p->n_prompt >= s->ctx) {
		snprintf(err, errlen, "prompt: %u tokens, the context holds %u (room for one generated token needed)",
			 p->n_prompt, s->ctx);
		return -E2BIG;
	}
	return 0;
}

int sched_submit(struct sched *s, const struct sched_req_params *p, const char *tenant,
		 uint64_t session, uint64_t user_data, uint64_t *ret_id, char *err, size_t errlen)
{
	if (s->shutting) {
		snprintf(err, errlen, "shutting down");
		return -ESHUTDOWN;
	}
	int ret = check_params(s, p, err, errlen);
	if (ret)
		return ret;
	/* A reload handed over before this submit decides its quota, even
	 * between two steps (the engine checks the table of the moment). */
	if (atomic_load(&s->tpending))
		sched_apply_tenants(s);
	int ti = sched_find_tenant(s, tenant ? tenant : "");
	if (ti < 0) {
		snprintf(err, errlen, "tenant '%s': not in the tenant table", tenant ? tenant : "");
		return -ENOENT;
	}
	struct stenant *t = &s->ten[ti];
	if (!t->pol.allowed) {
		snprintf(err, errlen, "tenant '%s': not allowed", t->pol.name);
		return -EACCES;
	}
	if (t->pol.max_inflight && t->n_wait + t->n_run >= t->pol.max_inflight) {
		snprintf(err, errlen, "tenant '%s': %u requests in flight, max_inflight %u", t->pol.name,
			 t->n_wait + t->n_run, t->pol.max_inflight);
		return -EDQUOT;
	}
	if (t->pol.max_kv_blocks && blocks_for(p->n_prompt + 1) > t->pol.max_kv_blocks) {
		snprintf(err, errlen, "tenant '%s': prompt needs %u KV blocks, max_kv_blocks %u",
			 t->pol.name, blocks_for(p->n_prompt + 1), t->pol.max_kv_blocks);
		return -EDQUOT;
	}
	if (s->free_head == NIL) {
		snprintf(err, errlen, "%u requests in flight, the most this daemon takes", s->max_req);
		return -EAGAIN;
	}
	uint32_t slot = s->free_head;
	struct sreq *r = &s->rq[slot];
	uint32_t limit = s->ctx;
	if (p->max_tokens && p->max_tokens < s->ctx - p->n_prompt)
		limit = p->n_prompt + p->max_tokens;
	r->cap_blk = blocks_for(limit);
	r->tok = malloc((size_t)limit * sizeof(*r->tok));
	r->blk = malloc((size_t)r->cap_blk * sizeof(*r->blk));
	r->bkey = malloc((size_t)r->cap_blk * sizeof(*r->bkey));
	r->to = malloc(sizeof(*r->to));
	ret = r->tok && r->blk && r->bkey && r->to ? sampler_create(&p->sampling, s->n_vocab, &r->smp)
						   : -ENOMEM;
	if (ret) {
		req_release(r);
		snprintf(err, errlen, "out of memory for a request of %u tokens", limit);
		return ret;
	}
	s->free_head = r->qnext;
	textout_init(r->to, s->tok, p->stop, p->stop_len, p->n_stop);
	memcpy(r->tok, p->prompt, (size_t)p->n_prompt * sizeof(*r->tok));
	r->slot_gen++;
	r->id = ((uint64_t)r->slot_gen << 32) | slot;
	r->user_data = user_data;
	r->session = session;
	r->tenant = (uint32_t)ti;
	enum tenant_prio cls = t->pol.priority;
	if (p->priority == SCHED_PRIO_BATCH)
		cls = TENANT_PRIO_BATCH;
	r->cls = (uint8_t)cls;
	r->n_tok = r->n_prompt = p->n_prompt;
	r->limit = limit;
	r->n_gen = r->n_done = r->n_blk = r->n_key = 0;
	r->t_submit = sched_now_us();
	r->t_admit = r->t_first = 0;
	r->deadline = p->deadline_us;
	r->n_cached = r->n_preempt = 0;
	r->admitted_once = r->in_plist = r->cancel_pending = false;
	r->ignore_eos = p->ignore_eos;
	r->run_idx = r->batch_idx = r->heap_idx = NIL;
	r->seen_step = UINT64_MAX;
	sched_q_push(s, r, false);
	s->n_inflight++;
	if (r->deadline) {
		r->heap_idx = s->n_heap;
		s->heap[s->n_heap++] = slot;
		heap_fix(s, r->heap_idx);
	}
	if (ret_id)
		*ret_id = r->id;
	return 0;
}

/* ---- cancel / finish ------------------------------------------------------------ */

static struct sreq *lookup(struct sched *s, uint64_t id)
{
	uint32_t slot = (uint32_t)id;
	if (slot >= s->max_req || s->rq[slot].state == RQ_FREE || s->rq[slot].id != id)
		return NULL;
	return &s->rq[slot];
}

int sched_cancel(struct sched *s, uint64_t id)
{
	struct sreq *r = lookup(s, id);
	if (!r)
		return -ENOENT;
	if (!r->cancel_pending) {
		r->cancel_pending = true;
		s->cancel_ids[s->n_cancel++] = id;
	}
	return 0;
}

uint32_t sched_cancel_session(struct sched *s, uint64_t session)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->max_req; i++) {
		struct sreq *r = &s->rq[i];
		if (r->state != RQ_FREE && r->session == session && sched_cancel(s, r->id) == 0)
			n++;
	}
	return n;
}

/* Takes R out of every structure and gives its slot back. */
static void req_end(struct sched *s, struct sreq *r)
{
	if (r->state == RQ_WAITING) {
		sched_q_unlink(s, r);
	} else if (r->state == RQ_RUNNING) {
		sched_pl_unlink(s, r);
		sched_run_remove(s, r);
		sched_release_blocks(s, r);
	}
	heap_remove(s, r);
	s->ten[r->tenant].done++;
	req_release(r);
	r->state = RQ_FREE;
	r->id = 0;
	r->qnext = s->free_head;
	s->free_head = req_slot(s, r);
	s->n_inflight--;
}

void sched_finish(struct sched *s, struct sreq *r, enum sched_finish why)
{
	uint64_t now = sched_now_us();
	struct sched_done d = {
		.reason = why,
		.n_prompt = r->n_prompt,
		.n_generated = r->n_gen,
		.n_cached = r->n_cached,
		.n_preempted = r->n_preempt,
		.text = s->text,
	};
	if (r->admitted_once) {
		d.queue_us = r->t_admit - r->t_submit;
		d.prefill_us = (r->t_first ? r->t_first : now) - r->t_admit;
		d.decode_us = r->t_first ? now - r->t_first : 0;
	} else {
		d.queue_us = now - r->t_submit;
	}
	if (why != SCHED_FINISH_STOP && why != SCHED_FINISH_CANCEL) {
		int n = textout_flush(r->to, s->text, sizeof(s->text));
		d.text_len = n > 0 ? (uint32_t)n : 0;
	}
	uint64_t ud = r->user_data, session = r->session;
	req_end(s, r);
	s->ev.on_done(s->ev_ctx, ud, session, &d);
}

void sched_fail(struct sched *s, struct sreq *r, int err, const char *msg)
{
	uint64_t ud = r->user_data, session = r->session;
	req_end(s, r);
	s->ev.on_error(s->ev_ctx, ud, session, err, msg);
}

/* Cancellations, deadlines and the end of a shutdown grace, at a step boundary. */
void sched_reap(struct sched *s)
{
	for (uint32_t i = 0; i < s->n_cancel; i++) {
		struct sreq *r = lookup(s, s->cancel_ids[i]);
		if (r)
			sched_finish(s, r, SCHED_FINISH_CANCEL);
	}
	s->n_cancel = 0;
	while (s->n_heap && s->rq[s->heap[0]].deadline <= s->now)
		sched_finish(s, &s->rq[s->heap[0]], SCHED_FINISH_DEADLINE);
	if (s->shutting && s->now >= s->shutdown_at)
		for (uint32_t i = 0; i < s->max_req && s->n_inflight; i++)
			if (s->rq[i].state != RQ_FREE)
				sched_finish(s, &s->rq[i], SCHED_FINISH_SHUTDOWN);
}

void sched_shutdown(struct sched *s, uint32_t grace_ms)
{
	uint64_t now = sched_now_us();
	s->shutting = true;
	s->shutdown_at = now + (uint64_t)grace_ms * 1000u;
	/* Requests that never started are not admitted any more. */
	for (uint32_t i = 0; i < s->max_req && s->n_waiting; i++) {
		struct sreq *r = &s->rq[i];
		if (r->state == RQ_WAITING && !r->admitted_once)
			sched_finish(s, r, SCHED_FINISH_SHUTDOWN);
	}
}

bool sched_idle(const struct sched *s)
{
	return s->n_inflight == 0 && s->n_cancel == 0;
}

uint64_t sched_next_wakeup_us(const struct sched *s)
{
	uint64_t w = s->n_heap ? s->rq[s->heap[0]].deadline : 0;
	if (s->shutting && s->n_inflight && (!w || s->shutdown_at < w))
		w = s->shutdown_at;
	return w;
}
