/* The engine thread's side of the I/O thread's requests: the locked
 * command queue and the public entry points (engine_loop.h), and the
 * session bookkeeping the commands drive (add, drop, fail, sweep, tenant
 * re-matching, shutdown). Everything below "engine thread only" runs on the
 * engine thread. */
#include "daemon/engine_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "daemon/log.h"
#include "ipc/doorbell.h"

enum cmd_kind { CMD_ADD, CMD_DROP, CMD_CANCEL, CMD_SHUTDOWN };

struct engine_cmd {
	enum cmd_kind kind;
	struct session *s;       /* CMD_ADD */
	uint64_t id;             /* session id */
	uint64_t user_data;
	bool flag;               /* CMD_DROP: violation; CMD_CANCEL: all */
	uint32_t grace_ms;
	struct engine_cmd *next;
};

/* ---- command queue (any thread -> engine) ---- */

static void push_cmd(struct engine *e, struct engine_cmd *c)
{
	pthread_mutex_lock(&e->lock);
	*e->cmds_tail = c;
	e->cmds_tail = &c->next;
	pthread_mutex_unlock(&e->lock);
	/* Set after the command is queued; pairs with the clear that
	 * engine_run_cmds does before it takes the queue, so a command is
	 * either taken now or flagged for the next iteration. A busy engine
	 * sees the flag without a syscall, a sleeping one wakes on the eventfd. */
	atomic_store(&e->cmd_pending, true);
	gi_db_ring(e->wake_efd);
}

static struct engine_cmd *new_cmd(enum cmd_kind k)
{
	struct engine_cmd *c = calloc(1, sizeof(*c));
	if (c)
		c->kind = k;
	return c;
}

int engine_add_session(struct engine *e, struct session *s)
{
	struct engine_cmd *c = new_cmd(CMD_ADD);
	if (!c)
		return -ENOMEM;
	c->s = s;
	push_cmd(e, c);
	return 0;
}

void engine_drop_session(struct engine *e, uint64_t session_id, bool violation)
{
	/* Dropping must not be lost: retry the allocation rather than leak a session. */
	struct engine_cmd *c;
	while (!(c = new_cmd(CMD_DROP)))
		usleep(1000);
	c->id = session_id;
	c->flag = violation;
	push_cmd(e, c);
}

void engine_cancel(struct engine *e, uint64_t session_id, uint64_t user_data, bool all)
{
	struct engine_cmd *c = new_cmd(CMD_CANCEL);
	if (!c)
		return;
	c->id = session_id;
	c->user_data = user_data;
	c->flag = all;
	push_cmd(e, c);
}

void engine_set_tenants(struct engine *e, const struct tenant_table *t)
{
	/* A mailbox, not a queued command: only the latest table matters, and
	 * the submit path can take it without running the command queue. */
	pthread_mutex_lock(&e->lock);
	e->tnext = *t;
	atomic_store(&e->tenants_pending, true);
	pthread_mutex_unlock(&e->lock);
	atomic_store(&e->cmd_pending, true);
	gi_db_ring(e->wake_efd);
}

void engine_shutdown(struct engine *e, uint32_t grace_ms)
{
	struct engine_cmd *c;
	while (!(c = new_cmd(CMD_SHUTDOWN)))
		usleep(1000);
	c->grace_ms = grace_ms;
	push_cmd(e, c);
}

int engine_event_fd(const struct engine *e)
{
	return e->event_efd;
}

int engine_take_failed(struct engine *e, uint64_t *ret_id, char *reason, size_t len)
{
	pthread_mutex_lock(&e->lock);
	struct engine_failed *f = e->failed;
	if (f)
		e->failed = f->next;
	pthread_mutex_unlock(&e->lock);
	if (!f)
		return 0;
	*ret_id = f->id;
	snprintf(reason, len, "%s", f->reason);
	free(f);
	return 1;
}

bool engine_stopped(struct engine *e)
{
	return atomic_load(&e->stopped);
}

void engine_limits(const struct engine *e, struct gi_limits *ret)
{
	*ret = e->limits;
}

uint64_t engine_alive_ms(struct engine *e)
{
	return atomic_load(&e->alive_ms);
}

void engine_stats(struct engine *e, struct gid_stats *ret)
{
	pthread_mutex_lock(&e->lock);
	*ret = e->stats;
	pthread_mutex_unlock(&e->lock);
	ret->uptime_ms = gid_now_ms() - e->started_ms;
}

/* ---- sessions (engine thread only) ---- */

static struct session *find_session(struct engine *e, uint64_t id)
{
	for (uint32_t i = 0; i < e->n_sess; i++)
		if (e->sess[i]->id == id)
			return e->sess[i];
	return NULL;
}

void engine_epoll_del(struct engine *e, struct session *s)
{
	if (!s->muted)
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->submit_efd, NULL);
	s->muted = true;
}

int engine_epoll_add(struct engine *e, struct session *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s->submit_efd, &ev) < 0)
		return -errno;
	s->muted = false;
	return 0;
}

void engine_fail_session(struct engine *e, struct session *s)
{
	if (s->dead)
		return;
	s->dead = true;
	e->protocol_errors++;
	engine_epoll_del(e, s);
	sched_cancel_session(e->sched, (uint64_t)(uintptr_t)s);
	struct engine_failed *f = calloc(1, sizeof(*f));
	log_notice("session %llu (pid %d): protocol violation: %s", (unsigned long long)s->id,
		   (int)s->peer.pid, s->srv.error ? s->srv.why : "doorbell flood");
	if (!f)
		return; /* the I/O thread still notices the hangup when the client goes */
	f->id = s->id;
	snprintf(f->reason, sizeof(f->reason), "%s", s->srv.error ? s->srv.why : "doorbell flood");
	pthread_mutex_lock(&e->lock);
	f->next = e->failed;
	e->failed = f;
	pthread_mutex_unlock(&e->lock);
	gi_db_ring(e->event_efd);
}

static void add_session(struct engine *e, struct session *s)
{
	if (e->n_sess == e->cap_sess) {
		uint32_t cap = e->cap_sess ? 2 * e->cap_sess : 64;
		struct session **p = realloc(e->sess, cap * sizeof(*p));
		if (!p)
			goto fail;
		e->sess = p;
		e->cap_sess = cap;
	}
	s->muted = true;
	if (engine_epoll_add(e, s) < 0)
		goto fail;
	e->sess[e->n_sess++] = s;
	e->sessions_total++;
	if (e->shutting_down) {
		gi_srv_set_shutdown(&s->srv);
		s->shutdown_flagged = true;
	}
	return;
fail:
	/* Keep the invariant "the I/O thread drops what it added": a session
	 * we could not take is failed, and freed when the drop arrives. */
	log_err("session %llu: cannot track it (out of memory)", (unsigned long long)s->id);
	s->dead = true;
	s->dropped = false;
	if (e->n_sess < e->cap_sess) {
		e->sess[e->n_sess++] = s;
		engine_fail_session(e, s);
	}
}

static void drop_session(struct engine *e, uint64_t id, bool violation)
{
	struct session *s = find_session(e, id);
	if (!s)
		return;
	if (violation && !s->dead)
		e->protocol_errors++;
	if (!s->dead) {
		s->dead = true;
		engine_epoll_del(e, s);
		sched_cancel_session(e->sched, (uint64_t)(uintptr_t)s);
	}
	s->dropped = true;
}

/* Frees sessions whose socket is gone and whose requests have all ended. */
void engine_sweep_sessions(struct engine *e)
{
	for (uint32_t i = 0; i < e->n_sess;) {
		struct session *s = e->sess[i];
		if (s->dropped && s->n_reqs == 0) {
			e->sess[i] = e->sess[--e->n_sess];
			session_free(s);
		} else {
			i++;
		}
	}
}

static void set_tenants(struct engine *e, const struct tenant_table *t)
{
	int r = sched_set_tenants(e->sched, t);
	if (r < 0) {
		log_err("new tenant table refused by the scheduler: %s", strerror(-r));
		return;
	}
	e->tenants = *t;
	log_debug("engine: new tenant table (%u tenants) handed to the scheduler", t->n);
	/* Sessions keep their peer; they move to whatever tenant now matches. */
	for (uint32_t i = 0; i < e->n_sess; i++) {
		struct session *s = e->sess[i];
		const struct tenant_policy *p = tenant_table_match(t, s->peer.uid, s->peer.cgroup);
		snprintf(s->tenant, sizeof(s->tenant), "%s", p ? p->name : "");
	}
}

void engine_take_tenants(struct engine *e)
{
	if (!atomic_load(&e->tenants_pending))
		return;
	struct tenant_table t;
	pthread_mutex_lock(&e->lock);
	t = e->tnext;
	atomic_store(&e->tenants_pending, false);
	pthread_mutex_unlock(&e->lock);
	set_tenants(e, &t);
}

void engine_run_cmds(struct engine *e)
{
	atomic_store(&e->cmd_pending, false);
	engine_take_tenants(e);
	pthread_mutex_lock(&e->lock);
	struct engine_cmd *c = e->cmds;
	e->cmds = NULL;
	e->cmds_tail = &e->cmds;
	pthread_mutex_unlock(&e->lock);
	while (c) {
		struct engine_cmd *next = c->next;
		struct session *s;
		switch (c->kind) {
		case CMD_ADD:
			add_session(e, c->s);
			break;
		case CMD_DROP:
			drop_session(e, c->id, c->flag);
			break;
		case CMD_CANCEL:
			s = find_session(e, c->id);
			if (s && !s->dead)
				for (struct session_req *q = s->reqs; q; q = q->next)
					if (!q->cancelled && (c->flag || q->user_data == c->user_data) &&
					    sched_cancel(e->sched, q->sched_id) == 0)
						q->cancelled = true;
			break;
		case CMD_SHUTDOWN:
			if (!e->shutting_down) {
				e->shutting_down = true;
				sched_shutdown(e->sched, c->grace_ms);
				for (uint32_t i = 0; i < e->n_sess; i++)
					if (!e->sess[i]->dead) {
						gi_srv_set_shutdown(&e->sess[i]->srv);
						e->sess[i]->shutdown_flagged = true;
					}
			}
			break;
		}
		free(c);
		c = next;
	}
}

void engine_cmds_free(struct engine *e)
{
	while (e->cmds) {
		struct engine_cmd *c = e->cmds;
		e->cmds = c->next;
		if (c->kind == CMD_ADD)
			session_free(c->s);
		free(c);
	}
	while (e->failed) {
		struct engine_failed *f = e->failed;
		e->failed = f->next;
		free(f);
	}
}
