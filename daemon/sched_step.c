/* One engine iteration: decodes first, then prefill chunks and admissions
 * shared between tenants by weight, then the forward step, sampling and
 * events. No allocation here: every array was sized at sched_create() or
 * sched_submit(). */
#include "daemon/sched_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/tokenizer.h"

static uint32_t blocks_for(uint32_t tokens)
{
	return (tokens + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
}

/* Tokens of R already put in this step's batch. */
static uint32_t in_batch(const struct sched *s, const struct sreq *r)
{
	return r->batch_idx == NIL ? 0 : s->batch[r->batch_idx].n_tokens;
}

static bool can_emit(struct sched *s, struct sreq *r)
{
	if (r->seen_step != s->steps) {
		r->seen_step = s->steps;
		r->emit_ok = !s->ev.can_emit || s->ev.can_emit(s->ev_ctx, r->session);
	}
	return r->emit_ok;
}

static void batch_remove(struct sched *s, struct sreq *r)
{
	uint32_t k = r->batch_idx;
	if (k == NIL)
		return;
	s->batch_tokens -= s->batch[k].n_tokens;
	uint32_t last = --s->n_batch;
	if (k != last) {
		s->batch[k] = s->batch[last];
		s->batch_req[k] = s->batch_req[last];
		s->rq[s->batch_req[k]].batch_idx = k;
	}
	r->batch_idx = NIL;
}

static void batch_add(struct sched *s, struct sreq *r, uint32_t n)
{
	if (r->batch_idx == NIL) {
		r->batch_idx = s->n_batch++;
		s->batch_req[r->batch_idx] = req_slot(s, r);
		s->batch[r->batch_idx].n_tokens = 0;
	}
	s->batch[r->batch_idx].n_tokens += n;
	s->batch_tokens += n;
}

/* Frees R's blocks and puts it back at the front of its queue; it will be
 * recomputed from its prompt + generated tokens. */
static void preempt(struct sched *s, struct sreq *r)
{
	batch_remove(s, r);
	sched_pl_unlink(s, r);
	sched_run_remove(s, r);
	sched_release_blocks(s, r);
	sched_q_push(s, r, true);
	r->n_preempt++;
	s->ten[r->tenant].preempt++;
	s->preemptions++;
}

/* Preemption order: batch before interactive, then the most recently admitted. */
static bool ranks_after(const struct sreq *a, const struct sreq *b)
{
	return a->cls != b->cls ? a->cls > b->cls : a->admit_seq > b->admit_seq;
}

/* The running sequence to preempt first (optionally only of tenant ONLY). */
static struct sreq *worst_running(struct sched *s, uint32_t only)
{
	struct sreq *w = NULL;
	for (uint32_t i = 0; i < s->n_run; i++) {
		struct sreq *r = &s->rq[s->run[i]];
		if ((only == NIL || r->tenant == only) && (!w || ranks_after(r, w)))
			w = r;
	}
	return w;
}

/* Sum of the weights of tenants with requests in flight. */
static uint64_t active_weight(const struct sched *s)
{
	uint64_t w = 0;
	for (uint32_t i = 0; i < s->n_tslots; i++)
		if (s->ten[i].used && (s->ten[i].n_run || s->ten[i].n_wait))
			w += s->ten[i].pol.weight;
	return w;
}

/* True if tenant T holds more than its weighted share of running slots or KV. */
static bool over_share(const struct sched *s, const struct stenant *t, uint64_t w_all)
{
	uint64_t w = t->pol.weight;
	return (uint64_t)t->n_run * w_all > (uint64_t)s->max_run * w ||
	       (uint64_t)t->kv_blocks * w_all > (uint64_t)s->n_pool * w;
}

/* A victim that makes room for waiting request R: a lower-class sequence,
 * or, if FAIR (R's tenant stays within its share once R runs), a same-class
 * one of another tenant above its share. NULL if none. */
static struct sreq *fair_victim(struct sched *s, const struct sreq *r, bool fair)
{
	uint64_t w_all = active_weight(s);
	struct sreq *w = NULL;
	for (uint32_t i = 0; i < s->n_run; i++) {
		struct sreq *v = &s->rq[s->run[i]];
		bool ok = v->cls > r->cls ||
			  (fair && v->cls == r->cls && v->tenant != r->tenant &&
			   over_share(s, &s->ten[v->tenant], w_all));
		if (ok && (!w || ranks_after(v, w)))
			w = v;
	}
	return w;
}

/* True if tenant T, running one more sequence with NEED more blocks, stays
 * within its weighted share of slots and KV: only then may it preempt
 * another tenant's sequence, so two tenants never take turns preempting
 * each other. */
static bool within_share(const struct sched *s, const struct stenant *t, uint32_t need)
{
	uint64_t w_all = active_weight(s), w = t->pol.weight;
	return (uint64_t)(t->n_run + 1) * w_all <= (uint64_t)s->max_run * w &&
	       (uint64_t)(t->kv_blocks + need) * w_all <= (uint64_t)s->n_pool * w;
}

/* Grows R's block table to cover UPTO positions. -ENOSPC: pool empty;
 * -EDQUOT: the tenant's max_kv_blocks. */
static int grow(struct sched *s, struct sreq *r, uint32_t upto)
{
	struct stenant *t = &s->ten[r->tenant];
	while (r->n_blk * KV_BLOCK_TOKENS < upto) {
		if (t->pol.max_kv_blocks && t->kv_blocks >= t->pol.max_kv_blocks)
			return -EDQUOT;
		int e = kvm_alloc(s->kvm, &r->blk[r->n_blk]);
		if (e)
			return e;
		r->n_blk++;
		t->kv_blocks++;
	}
	return 0;
}

/* Takes the cached full blocks R's tokens start with. */
static uint32_t take_prefix(struct sched *s, struct sreq *r)
{
	uint64_t parent = KVM_HASH_ROOT;
	uint32_t i = 0;
	while ((i + 1) * KV_BLOCK_TOKENS <= r->n_tok) {
		const int32_t *t = r->tok + i * KV_BLOCK_TOKENS;
		uint64_t key = kvm_hash(parent, t);
		if (kvm_lookup(s->kvm, key, parent, t, &r->blk[i]))
			break;
		r->bkey[i++] = key;
		parent = key;
	}
	/* The last token must be computed for its logits: never share the block it lands in. */
	if (i && i * KV_BLOCK_TOKENS == r->n_tok)
		kvm_release(s->kvm, r->blk[--i]);
	r->n_blk = r->n_key = i;
	s->ten[r->tenant].kv_blocks += i;
	return i * KV_BLOCK_TOKENS;
}

/* Moves the head of its queue, R, to running if a slot, KV blocks and quota
 * allow (preempting fairly if needed). */
static bool admit(struct sched *s, struct sreq *r)
{
	struct stenant *t = &s->ten[r->tenant];
	uint32_t total = blocks_for(r->n_tok + 1);
	if (t->pol.max_kv_blocks && t->kv_blocks + total > t->pol.max_kv_blocks) {
		/* Alone it would still not fit: a preempted sequence that grew to its quota. */
		if (!t->n_run) {
			char msg[160];
			snprintf(msg, sizeof(msg), "tenant '%s': sequence needs %u KV blocks, max_kv_blocks %u",
				 t->pol.name, total, t->pol.max_kv_blocks);
			sched_fail(s, r, -EDQUOT, msg);
		}
		return false;
	}
	bool fair = within_share(s, t, total);
	while (s->n_run == s->max_run) {
		struct sreq *v = fair_victim(s, r, fair);
		if (!v)
			return false;
		preempt(s, v);
	}
	/* Blocks for the whole pending prompt are taken now, so its prefill
	 * never waits for KV; one more must be available for the first decode. */
	uint32_t hit = take_prefix(s, r);
	while (kvm_available(s->kvm) < total - r->n_blk) {
		struct sreq *v = fair_victim(s, r, fair);
		if (!v) {
			sched_release_blocks(s, r);
			return false;
		}
		preempt(s, v);
	}
	if (grow(s, r, r->n_tok)) {
		sched_release_blocks(s, r);
		return false;
	}
	sched_q_unlink(s, r);
	sched_run_add(s, r);
	r->n_done = hit;
	r->admit_seq = ++s->admit_counter;
	if (!r->admitted_once) {
		r->admitted_once = true;
		r->t_admit = s->now;
		r->n_cached = hit;
	}
	s->prefix_hits += hit;
	if (r->n_tok - r->n_done > 1)
		sched_pl_push(s, r);
	return true;
}

/* Schedules up to MAX more tokens of R's pending prompt. Returns how many. */
static uint32_t prefill_chunk(struct sched *s, struct sreq *r, uint32_t max)
{
	uint32_t start = r->n_done + in_batch(s, r);
	uint32_t pending = r->n_tok - start;
	uint32_t room = s->max_batch - s->batch_tokens;
	uint32_t n = pending < max ? pending : max;
	if (n > room)
		n = room;
	if (n == 0)
		return 0;
	if (n == pending && !can_emit(s, r) && --n == 0)
		return 0;
	batch_add(s, r, n);
	return n;
}

/* Gives tenant T up to ALLOW prefill tokens of class CLS: its sequences
 * being prefilled first (oldest first), then admissions from its queue. */
static uint32_t serve(struct sched *s, uint32_t ti, int cls, uint32_t allow)
{
	struct stenant *t = &s->ten[ti];
	uint32_t spent = 0;
	for (uint32_t i = t->phead[cls]; i != NIL && spent < allow; i = s->rq[i].qnext)
		spent += prefill_chunk(s, &s->rq[i], allow - spent);
	while (spent < allow && t->qhead[cls] != NIL && s->batch_tokens < s->max_batch) {
		struct sreq *r = &s->rq[t->qhead[cls]];
		if (!admit(s, r))
			break;
		spent += prefill_chunk(s, r, allow - spent);
	}
	return spent;
}

static bool has_work(const struct stenant *t, int cls)
{
	return t->used && (t->phead[cls] != NIL || t->qhead[cls] != NIL);
}

/* Weighted round robin over tenants with prefill work of class CLS. Each
 * gets a quantum of the remaining budget proportional to its weight; what
 * a tenant cannot use goes round again to the others (work conserving). The
 * starting tenant rotates every step. */
static void share_prefill(struct sched *s, int cls)
{
	uint32_t n = s->n_tslots, start = s->rr[cls] % n;
	uint64_t w_sum = 0;
	for (uint32_t i = 0; i < n; i++)
		if (has_work(&s->ten[i], cls))
			w_sum += s->ten[i].pol.weight;
	if (!w_sum)
		return;
	uint32_t budget0 = s->max_batch - s->batch_tokens;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t q = (uint64_t)budget0 * s->ten[i].pol.weight / w_sum;
		s->ten[i].deficit = q ? (int64_t)q : 1;
	}
	/* Each round must grow the batch (preemptions may also shrink it), so
	 * this ends within max_batch rounds. */
	for (int round = 0; s->batch_tokens < s->max_batch; round++) {
		uint32_t before = s->batch_tokens;
		for (uint32_t k = 0; k < n && s->batch_tokens < s->max_batch; k++) {
			uint32_t ti = (start + k) % n;
			struct stenant *t = &s->ten[ti];
			if (!has_work(t, cls))
				continue;
			if (round > 0)
				t->deficit = s->max_batch - s->batch_tokens;
			uint32_t got = serve(s, ti, cls, (uint32_t)t->deficit);
			t->deficit -= got;
			t->prefilled += got;
		}
		if (s->batch_tokens <= before)
			break;
	}
	s->rr[cls] = (start + 1) % n;
}

/* Every running sequence with one token pending (a decode) gets it, unless
 * its session cannot take events. */
static void schedule_decodes(struct sched *s)
{
	for (uint32_t i = s->n_run; i-- > 0;) {
		if (i >= s->n_run)
			continue;
		struct sreq *r = &s->rq[s->run[i]];
		if (r->n_tok - r->n_done != 1 || r->batch_idx != NIL || r->seen_step == s->steps)
			continue;
		if (!can_emit(s, r))
			continue;
		int e;
		while ((e = grow(s, r, r->n_done + 1))) {
			struct sreq *v = worst_running(s, e == -EDQUOT ? r->tenant : NIL);
			if (e == -EDQUOT && v == r) {
				char msg[160];
				snprintf(msg, sizeof(msg), "tenant '%s': sequence outgrew max_kv_blocks %u",
					 s->ten[r->tenant].pol.name, s->ten[r->tenant].pol.max_kv_blocks);
				sched_fail(s, r, -EDQUOT, msg);
				break;
			}
			preempt(s, v);
			if (v == r)
				break;
		}
		if (!e)
			batch_add(s, r, 1);
	}
}

/* Commits the blocks R has filled to the prefix cache. */
static void commit_blocks(struct sched *s, struct sreq *r)
{
	while ((r->n_key + 1) * KV_BLOCK_TOKENS <= r->n_done) {
		uint64_t parent = r->n_key ? r->bkey[r->n_key - 1] : KVM_HASH_ROOT;
		const int32_t *t = r->tok + r->n_key * KV_BLOCK_TOKENS;
		uint64_t key = kvm_hash(parent, t);
		kvm_commit(s->kvm, r->blk[r->n_key], key, parent, t);
		r->bkey[r->n_key++] = key;
	}
}

/* Samples R's next token from LOGITS and reports it. */
static void emit_token(struct sched *s, struct sreq *r, float *logits)
{
	float lp = 0;
	if (r->ignore_eos)
		for (uint32_t i = 0; i < s->n_eog; i++)
			logits[s->eog[i]] = -INFINITY;
	int32_t id = sampler_sample(r->smp, logits, r->tok, r->n_tok, &lp);
	if (!r->t_first)
		r->t_first = sched_now_us();
	if (tok_is_eog(s->tok, id)) {
		sched_finish(s, r, SCHED_FINISH_EOS);
		return;
	}
	r->tok[r->n_tok++] = id;
	r->n_gen++;
	s->generated++;
	s->ten[r->tenant].generated++;
	bool stopped = false;
	int n = textout_push(r->to, id, s->text, sizeof(s->text), &stopped);
	if (s->ev.on_token)
		s->ev.on_token(s->ev_ctx, r->user_data, r->session, id, s->text, n > 0 ? (uint32_t)n : 0, lp);
	if (stopped)
		sched_finish(s, r, SCHED_FINISH_STOP);
	else if (r->n_tok >= r->limit)
		sched_finish(s, r, SCHED_FINISH_LENGTH);
}

static int run_batch(struct sched *s)
{
	for (uint32_t k = 0; k < s->n_batch; k++) {
		struct sreq *r = &s->rq[s->batch_req[k]];
		struct step_seq *q = &s->batch[k];
		q->blocks = r->blk;
		q->n_blocks = r->n_blk;
		q->pos = r->n_done;
		q->tokens = r->tok + r->n_done;
		q->logits = r->n_done + q->n_tokens == r->n_tok ? s->logits + (size_t)k * s->n_vocab : NULL;
	}
	int e = model_step(s->m, s->kv, s->batch, s->n_batch);
	uint32_t n = s->n_batch, tokens = s->batch_tokens;
	s->n_batch = 0;
	s->batch_tokens = 0;
	for (uint32_t k = 0; k < n; k++) {
		struct sreq *r = &s->rq[s->batch_req[k]];
		struct step_seq *q = &s->batch[k];
		r->batch_idx = NIL;
		if (e) {
			char msg[96];
			snprintf(msg, sizeof(msg), "model step failed (%d)", e);
			sched_fail(s, r, -EIO, msg);
			continue;
		}
		if (!(q->n_tokens == 1 && r->n_done + 1 == r->n_tok && r->n_gen))
			s->prefilled += q->n_tokens;
		r->n_done += q->n_tokens;
		commit_blocks(s, r);
		if (r->n_tok - r->n_done <= 1)
			sched_pl_unlink(s, r);
		if (q->logits)
			emit_token(s, r, q->logits);
	}
	return e ? e : (int)tokens;
}

int sched_step(struct sched *s)
{
	s->steps++;
	s->now = sched_now_us();
	sched_apply_tenants(s);
	sched_reap(s);
	schedule_decodes(s);
	for (int cls = 0; cls < TENANT_N_PRIO; cls++)
		share_prefill(s, cls);
	if (!s->n_batch)
		return 0;
	return run_batch(s);
}
