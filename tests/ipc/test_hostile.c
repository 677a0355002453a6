/* Hostile peer: a client process writes random and adversarial values into
 * every byte of its session region while the daemon-side reader (gi_srv, the
 * code gid runs) polls it. The reader's mapping has PROT_NONE guard pages on
 * both sides, so a read outside the region faults and fails the test. The
 * reader must never crash or hang, must fail that session with -EPROTO for
 * bad indices, answer bad records with ERROR events, and leave a second,
 * honest session working. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc/atomics.h"
#include "ipc/cli.h"
#include "ipc/doorbell.h"
#include "ipc/session.h"
#include "ipc/srv.h"
#include "ipc/validate.h"
#include "tests/t_util.h"

#define PG 4096u

static const struct gi_limits limits = {
	.max_prompt_bytes = 2048, .max_tokens = 64, .max_stop_strings = 4, .max_stop_len = 16,
	.n_vocab = 512,
};

struct victim {
	int fd, sub, cmp;
	struct gi_region own;     /* from gi_region_create */
	uint8_t *guard;           /* reservation with guard pages */
	struct gi_region view;    /* the reader's guarded view */
	struct gi_srv srv;
	uint32_t start;
};

static void victim_open(struct victim *v, uint32_t start)
{
	struct gi_region_params p = { .sq_entries = 16, .cq_entries = 64, .arena_size = 8192,
				      .session_id = 1, .start_index = start };
	v->start = start;
	ck_assert_int_eq(gi_region_create(&p, &v->fd, &v->own), 0);
	size_t size = v->own.size;
	v->guard = mmap(NULL, size + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(v->guard, MAP_FAILED);
	void *m = mmap(v->guard + PG, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE,
		       v->fd, 0);
	ck_assert_ptr_eq(m, v->guard + PG);
	v->view = (struct gi_region){ .base = m, .size = size, .layout = v->own.layout };
	gi_region_bind(&v->view);
	v->sub = gi_db_create();
	v->cmp = gi_db_create();
	ck_assert_int_eq(gi_srv_init(&v->srv, &v->view, &limits, start, v->sub, v->cmp), 0);
}

static void victim_close(struct victim *v)
{
	gi_srv_fini(&v->srv);
	munmap(v->guard, v->own.size + 2 * PG);
	gi_region_release(&v->own);
	close(v->fd);
	close(v->sub);
	close(v->cmp);
}

/* Callback for SUBMIT/CANCEL: what reaches it must be valid on its private
 * copy, whatever the client does to shared memory meanwhile. */
struct seen {
	uint64_t submits, invalid;
	uint8_t checksum;
};

static int on_req(void *ctx, struct gi_srv *s, const struct gi_srv_req *req)
{
	struct seen *x = ctx;
	char err[160];
	if (gi_sqe_validate(&req->sqe, &s->limits, s->region.layout.arena_size, err, sizeof(err)))
		x->invalid++;
	if (req->sqe.opcode == GI_OP_SUBMIT) {
		if (req->prompt_len != req->sqe.req.prompt_len || req->stop_len != req->sqe.stop_len)
			x->invalid++;
		/* Touch every byte of the private copy (ASan checks the bounds). */
		uint8_t sum = 0;
		for (uint32_t i = 0; i < req->prompt_len; i++)
			sum ^= req->prompt[i];
		for (uint32_t i = 0; i < req->stop_len; i++)
			sum ^= req->stops[i];
		struct gi_span spans[8];
		gi_stop_list_parse(req->stops, req->stop_len, &s->limits, spans, 8, err, sizeof(err));
		struct gi_chat_item items[8];
		if (req->sqe.flags & GI_SQE_F_CHAT)
			gi_chat_parse(req->prompt, req->prompt_len, items, 8, err, sizeof(err));
		if (req->sqe.flags & GI_SQE_F_TOKENS)
			gi_tokens_check(req->prompt, req->prompt_len, s->limits.n_vocab, err, sizeof(err));
		x->checksum ^= sum;
		x->submits++;
	}
	struct gi_cqe done = { .user_data = req->sqe.user_data, .kind = GI_CQE_DONE, .flags = GI_CQE_F_LAST,
			       .result = GI_FINISH_LENGTH };
	return gi_srv_post(s, &done, 1) < 0 ? -EPROTO : 0;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum attack {
	A_RANDOM,       /* random bytes everywhere, all the time */
	A_SQ_TAIL_FAR,  /* sq.tail more than sq_entries ahead */
	A_SQ_TAIL_BACK, /* sq.tail moving backwards */
	A_CQ_HEAD_BACK, /* cq.head moving backwards */
	A_CQ_HEAD_PAST, /* cq.head past cq.tail */
	A_BAD_SQES,     /* valid indices, every kind of bad record */
	A_RACE,         /* valid indices, records and arena rewritten while read */
	A_COUNT_,
};

/* Reader-side outcome the attack must produce. */
static const int expect_fail[A_COUNT_] = {
	[A_RANDOM] = 1, [A_SQ_TAIL_FAR] = 1, [A_SQ_TAIL_BACK] = 1, [A_CQ_HEAD_BACK] = 1,
	[A_CQ_HEAD_PAST] = 1, [A_BAD_SQES] = 0, [A_RACE] = 0,
};

static struct gi_sqe bad_sqe(int k, uint64_t *rng, uint32_t arena)
{
	struct gi_sqe q = { .opcode = GI_OP_SUBMIT, .user_data = 1000 + (uint64_t)k,
			    .req = { .arena_off = 0, .prompt_len = 8 }, .temperature = 1.0f, .top_p = 1.0f };
	switch (k % 12) {
	case 0: q.opcode = (uint8_t)(3 + rnd(rng) % 250); break;
	case 1: q.reserved = 0xdeadbeef; break;
	case 2: q.req.arena_off = arena; break;
	case 3: q.req.arena_off = arena - 4; break;
	case 4: q.req.prompt_len = 0xffffffff; break;
	case 5: q.req.arena_off = 0xfffffff0u; q.req.prompt_len = 0x20; break;
	case 6: q.flags = (uint16_t)(0x40 | rnd(rng)); break;
	case 7: q.opcode = GI_OP_NOP; q.stop_len = 1; break;
	case 8: q.stop_len = 0xffff; break;
	case 9: q.req.arena_off = arena - 8; q.stop_len = 60; break;
	case 10: memcpy(&q.temperature, &(uint32_t){ 0x7fc00000 }, 4); break;
	default: q.priority = 0xff; break;
	}
	return q;
}

/* The hostile client, in a child process: maps the memfd like a real client
 * (after checking the seals can't be undone) and attacks. */
static void attacker(int fd, const struct gi_layout *l, enum attack a, uint32_t start)
{
	/* The memfd cannot be shrunk, grown or re-sealed. */
	if (ftruncate(fd, 0) == 0 || ftruncate(fd, (off_t)l->region_size * 2) == 0 ||
	    fallocate(fd, 0, 0, (off_t)l->region_size * 2) == 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0)
		_exit(40);
	struct gi_region r;
	if (gi_region_attach(fd, l, 1, &r))
		_exit(41);
	uint64_t rng = 0x1234567ull + (uint64_t)a;
	uint8_t *b = r.base;
	uint32_t tail = start, n = l->sq_entries;
	/* The bad-record attack runs until all 240 are consumed (bounded). */
	double end = now_s() + (a == A_BAD_SQES ? 8.0 : 1.5);
	int k = 0;
	while (now_s() < end) {
		if (a == A_BAD_SQES && k >= 240 && gi_load_acquire(r.sq_head) == tail)
			break;
		switch (a) {
		case A_RANDOM:
			for (int i = 0; i < 256; i++) {
				size_t off = rnd(&rng) % (r.size - 8);
				uint64_t v = rnd(&rng);
				memcpy(b + off, &v, 8);
			}
			if ((rnd(&rng) & 63) == 0)
				for (size_t i = 0; i < r.size; i += 8) {
					uint64_t v = rnd(&rng);
					memcpy(b + i, &v, 8);
				}
			break;
		case A_SQ_TAIL_FAR:
			gi_store_release(r.sq_tail, start + n + 1 + (uint32_t)(rnd(&rng) % 1000));
			break;
		case A_SQ_TAIL_BACK:
			if (k++ == 0) {
				r.sqes[start & (n - 1)] = (struct gi_sqe){ .opcode = GI_OP_NOP };
				r.sqes[(start + 1) & (n - 1)] = (struct gi_sqe){ .opcode = GI_OP_NOP };
				gi_store_release(r.sq_tail, start + 2);
				usleep(100000);
			}
			gi_store_release(r.sq_tail, start + 1);
			break;
		case A_CQ_HEAD_BACK:
		case A_CQ_HEAD_PAST: {
			/* NOPs until the CQ is full, then a bad cq.head. */
			uint32_t head = gi_load_acquire(r.sq_head);
			while (tail - head < n) {
				r.sqes[tail & (n - 1)] = (struct gi_sqe){ .opcode = GI_OP_NOP, .user_data = tail };
				tail++;
			}
			gi_store_release(r.sq_tail, tail);
			uint32_t cqt = gi_load_acquire(r.cq_tail);
			if (cqt - start >= l->cq_entries)
				gi_store_release(r.cq_head, a == A_CQ_HEAD_BACK ? start - 3 : cqt + 5);
			break;
		}
		case A_BAD_SQES: {
			uint32_t head = gi_load_acquire(r.sq_head);
			gi_store_release(r.cq_head, gi_load_acquire(r.cq_tail));
			while (tail - head < n && k < 240) {
				r.sqes[tail & (n - 1)] = bad_sqe(k++, &rng, l->arena_size);
				tail++;
			}
			gi_store_release(r.sq_tail, tail);
			break;
		}
		case A_RACE: {
			/* Indices stay valid; contents change under the reader. */
			uint32_t head = gi_load_acquire(r.sq_head);
			uint32_t want = head + (uint32_t)(rnd(&rng) % (n + 1));
			if (want - head > tail - head)
				tail = want;
			for (int i = 0; i < 64; i++) {
				struct gi_sqe *q = &r.sqes[rnd(&rng) % n];
				uint64_t v = rnd(&rng);
				if (v & 1) {
					*q = (struct gi_sqe){ .opcode = GI_OP_SUBMIT, .user_data = v,
							      .req = { .arena_off = (uint32_t)(v >> 8) % 8192 & ~3u,
								       .prompt_len = (uint32_t)(v >> 32) % 300 + 1 },
							      .stop_len = (uint16_t)(v >> 50) % 20,
							      .flags = (uint16_t)((v >> 20) & 3), .top_p = 1.0f };
				} else {
					memcpy((uint8_t *)q + (v >> 8) % 57, &v, 8);
				}
				size_t off = rnd(&rng) % (l->arena_size - 8);
				memcpy(r.arena + off, &v, 8);
			}
			gi_store_release(r.sq_tail, tail);
			gi_store_release(r.cq_head, gi_load_acquire(r.cq_tail));
			/* Daemon-owned words the daemon never reads back. */
			gi_store_relaxed(r.daemon_flags, (uint32_t)rnd(&rng));
			gi_store_relaxed64(r.heartbeat, rnd(&rng));
			memset(b, (int)(rng & 0xff), 256);
			break;
		}
		default:
			_exit(42);
		}
	}
	_exit(0);
}

/* An honest client in this process, on its own session, beside the victim. */
static void honest_roundtrip(struct victim *h, struct gi_cli *c, uint64_t echo)
{
	struct gi_sqe nop = { .opcode = GI_OP_NOP, .user_data = echo, .nop.echo = echo };
	ck_assert_int_eq(gi_cli_submit(c, &nop, 1), 1);
	ck_assert_int_eq(gi_srv_poll(&h->srv, 8, NULL, NULL), 1);
	struct gi_cqe e;
	ck_assert_int_eq(gi_cli_reap(c, &e, 1), 1);
	ck_assert_uint_eq(e.nop.echo, echo);
}

START_TEST(test_attack)
{
	enum attack a = (enum attack)_i;
	struct victim v, honest;
	victim_open(&v, UINT32_MAX - 20);
	victim_open(&honest, 0);
	struct gi_region hc;
	ck_assert_int_eq(gi_region_attach(honest.fd, &honest.own.layout, 1, &hc), 0);
	struct gi_cli cli;
	ck_assert_int_eq(gi_cli_init(&cli, &hc, honest.sub, honest.cmp), 0);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		attacker(v.fd, &v.own.layout, a, v.start);
	struct seen seen = { 0 };
	double end = now_s() + 2.0, hard_end = end + 8.0;
	uint64_t polls = 0, echo = 0;
	int failed = 0;
	while (now_s() < end || (a == A_BAD_SQES && v.srv.n_sqes < 240 && now_s() < hard_end)) {
		int r = gi_srv_poll(&v.srv, 8, on_req, &seen);
		if (r < 0) {
			ck_assert_int_eq(r, -EPROTO);
			failed = 1;
			break;
		}
		gi_srv_kick(&v.srv);
		if (gi_srv_arm(&v.srv) < 0) {
			failed = 1;
			break;
		}
		gi_srv_disarm(&v.srv);
		polls++;
		if ((polls & 255) == 0)
			honest_roundtrip(&honest, &cli, echo++);
	}
	if (!failed && v.srv.error)
		failed = 1;
	int st;
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	ck_assert_msg(!WIFEXITED(st) || WEXITSTATUS(st) == 0, "attacker exit %d (seal or attach check)",
		      WEXITSTATUS(st));
	ck_assert_msg(failed == expect_fail[a], "attack %d: session failed=%d (%s), expected %d", a, failed,
		      v.srv.why, expect_fail[a]);
	if (failed)
		ck_assert_msg(v.srv.why[0], "attack %d: no reason", a);
	ck_assert_uint_eq(seen.invalid, 0);
	if (a == A_BAD_SQES) {
		ck_assert_uint_eq(v.srv.n_sqes, 240);
		ck_assert_uint_eq(seen.submits, 0);
		ck_assert_uint_eq(v.srv.n_bad_sqes, 240);
	}
	if (a == A_RACE)
		ck_assert_uint_gt(v.srv.n_sqes, 0);
	/* The honest session is unaffected. */
	for (int i = 0; i < 10; i++)
		honest_roundtrip(&honest, &cli, echo++);
	ck_assert_int_eq(honest.srv.error, 0);
	gi_cli_fini(&cli);
	gi_region_release(&hc);
	victim_close(&honest);
	victim_close(&v);
}
END_TEST

/* Bad records get ERROR events naming the problem, in order. */
START_TEST(test_error_events)
{
	struct victim v;
	victim_open(&v, 5);
	struct gi_region c;
	ck_assert_int_eq(gi_region_attach(v.fd, &v.own.layout, 1, &c), 0);
	struct gi_cli cli;
	ck_assert_int_eq(gi_cli_init(&cli, &c, v.sub, v.cmp), 0);
	uint64_t rng = 99;
	struct gi_sqe q[12];
	for (int k = 0; k < 12; k++)
		q[k] = bad_sqe(k, &rng, c.layout.arena_size);
	ck_assert_int_eq(gi_cli_submit(&cli, q, 12), 12);
	ck_assert_int_eq(gi_srv_poll(&v.srv, 64, on_req, &(struct seen){ 0 }), 12);
	/* Each record's reason may span several events; the last is LAST. */
	struct gi_cqe e[12 * GI_SRV_REASON_EVENTS];
	int n = gi_cli_reap(&cli, e, 12 * GI_SRV_REASON_EVENTS);
	int k = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(e[i].kind, GI_CQE_ERROR);
		ck_assert_uint_eq(e[i].user_data, 1000 + (uint64_t)k);
		ck_assert(e[i].result == -EINVAL || e[i].result == -E2BIG);
		ck_assert_uint_gt(e[i].text_len, 0);
		ck_assert_uint_le(e[i].text_len, GI_CQE_TEXT_MAX);
		if (e[i].flags & GI_CQE_F_LAST)
			k++;
		else
			ck_assert_uint_eq(e[i].flags, GI_CQE_F_MORE | GI_CQE_F_TEXT_CONT);
	}
	ck_assert_int_eq(k, 12);
	ck_assert_int_eq(v.srv.error, 0);
	gi_cli_fini(&cli);
	gi_region_release(&c);
	victim_close(&v);
}
END_TEST

/* The daemon never reads back its own words: garbage there changes nothing. */
START_TEST(test_daemon_words_ignored)
{
	struct victim v;
	victim_open(&v, UINT32_MAX);
	struct gi_region c;
	ck_assert_int_eq(gi_region_attach(v.fd, &v.own.layout, 1, &c), 0);
	struct gi_cli cli;
	ck_assert_int_eq(gi_cli_init(&cli, &c, v.sub, v.cmp), 0);
	for (uint64_t i = 0; i < 100; i++) {
		struct gi_sqe nop = { .opcode = GI_OP_NOP, .user_data = i, .nop.echo = i * 3 };
		ck_assert_int_eq(gi_cli_submit(&cli, &nop, 1), 1);
		*c.sq_head = (uint32_t)(i * 0x9e3779b9u);
		*c.cq_tail = (uint32_t)(i * 0x7f4a7c15u);
		*c.daemon_flags = 0xffffffffu;
		memset(c.base, (int)i, 200); /* header page */
		ck_assert_int_eq(gi_srv_poll(&v.srv, 8, NULL, NULL), 1);
		struct gi_cqe e;
		ck_assert_int_eq(gi_cli_reap(&cli, &e, 1), 1);
		ck_assert_uint_eq(e.nop.echo, i * 3);
	}
	ck_assert_int_eq(v.srv.error, 0);
	ck_assert_uint_eq(v.srv.sq.local_head, UINT32_MAX + 100u);
	gi_cli_fini(&cli);
	gi_region_release(&c);
	victim_close(&v);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ipc_hostile");
	TCase *tc = tcase_create("hostile");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_attack, 0, A_COUNT_);
	tcase_add_test(tc, test_error_events);
	tcase_add_test(tc, test_daemon_words_ignored);
	suite_add_tcase(s, tc);
	return s;
}
