/* Session region (create, seal, attach, checks), layout, arena allocator,
 * SQE/blob validation, and a client/daemon round trip over gi_cli/gi_srv. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc/arena.h"
#include "ipc/cli.h"
#include "ipc/doorbell.h"
#include "ipc/session.h"
#include "ipc/srv.h"
#include "ipc/validate.h"
#include "tests/t_util.h"

static const struct gi_region_params params = {
	.sq_entries = 16, .cq_entries = 64, .arena_size = 8192, .session_id = 42,
};

START_TEST(test_layout)
{
	struct gi_layout l;
	ck_assert_int_eq(gi_layout_compute(&params, &l), 0);
	ck_assert_int_eq(gi_layout_check(&l), 0);
	ck_assert_uint_eq(l.off_sqes % 4096, 0);
	ck_assert_uint_eq(l.off_cqes % 4096, 0);
	ck_assert_uint_eq(l.off_arena % 4096, 0);
	ck_assert_uint_ge(l.region_size, l.off_arena + l.arena_size);
	/* Each control word on its own 128-byte line. */
	ck_assert_uint_eq(l.off_sq_head - l.off_sq_tail, GI_CTL_LINE);
	struct gi_region_params bad = params;
	bad.sq_entries = 12;
	ck_assert_int_eq(gi_layout_compute(&bad, &l), -EINVAL);
	bad = params;
	bad.cq_entries = 8;
	ck_assert_int_eq(gi_layout_compute(&bad, &l), -EINVAL);
	/* Inconsistent layouts are refused. */
	ck_assert_int_eq(gi_layout_compute(&params, &l), 0);
	struct gi_layout x = l;
	x.off_arena = l.region_size - 64;
	ck_assert_int_eq(gi_layout_check(&x), -EPROTO);
	x = l;
	x.off_cq_head = x.off_sq_tail;
	ck_assert_int_eq(gi_layout_check(&x), -EPROTO);
	x = l;
	x.off_cqes = x.off_sqes;
	ck_assert_int_eq(gi_layout_check(&x), -EPROTO);
	x = l;
	x.cq_entries = 1u << 20;
	ck_assert_int_eq(gi_layout_check(&x), -EPROTO);
	x = l;
	x.off_heartbeat = UINT64_MAX - 64;
	ck_assert_int_eq(gi_layout_check(&x), -EPROTO);
}
END_TEST

START_TEST(test_region_seals)
{
	int fds0 = t_count_fds();
	int fd;
	struct gi_region d, c;
	ck_assert_int_eq(gi_region_create(&params, &fd, &d), 0);
	int seals = fcntl(fd, F_GET_SEALS);
	ck_assert_int_eq(seals & GI_REGION_SEALS, GI_REGION_SEALS);
	/* Where the kernel has MFD_NOEXEC_SEAL (6.3+), the region uses it. */
	int probe = memfd_create("probe", MFD_CLOEXEC | 0x0008u /* MFD_NOEXEC_SEAL */);
	if (probe >= 0) {
		ck_assert_int_eq(seals & 0x0020 /* F_SEAL_EXEC */, 0x0020);
		close(probe);
	}
	ck_assert_int_eq(gi_region_attach(fd, &d.layout, 42, &c), 0);
	/* The client cannot resize or re-seal the memfd. */
	ck_assert_int_lt(ftruncate(fd, 4096), 0);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_lt(ftruncate(fd, (off_t)d.size * 2), 0);
	ck_assert_int_lt(fallocate(fd, 0, 0, (off_t)d.size * 2), 0);
	ck_assert_int_lt(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
	ck_assert_int_eq(errno, EPERM);
	/* ...and the mapping stays usable on both sides. */
	*c.sq_tail = 5;
	ck_assert_uint_eq(*d.sq_tail, 5);
	c.arena[100] = 7;
	ck_assert_uint_eq(d.arena[100], 7);
	/* Wrong session id, wrong layout: refused. */
	struct gi_region z;
	ck_assert_int_eq(gi_region_attach(fd, &d.layout, 43, &z), -EPROTO);
	struct gi_layout l2 = d.layout;
	l2.arena_size -= 64;
	ck_assert_int_eq(gi_region_attach(fd, &l2, 42, &z), -EPROTO);
	/* A memfd without the seals is refused. */
	int raw = memfd_create("raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(raw, 0);
	ck_assert_int_eq(ftruncate(raw, (off_t)d.size), 0);
	ck_assert_int_eq(gi_region_attach(raw, &d.layout, 42, &z), -EPROTO);
	close(raw);
	/* Header magic checked. */
	struct gi_session_hdr *h = d.base;
	h->magic ^= 1;
	ck_assert_int_eq(gi_region_attach(fd, &d.layout, 42, &z), -EPROTO);
	h->magic ^= 1;
	gi_region_release(&c);
	gi_region_release(&d);
	gi_region_release(&d); /* twice is fine */
	close(fd);
	ck_assert_int_eq(t_count_fds(), fds0);
}
END_TEST

START_TEST(test_arena)
{
	uint8_t mem[256];
	struct gi_arena a;
	ck_assert_int_eq(gi_arena_init(&a, mem, sizeof(mem), 4, UINT32_MAX - 1), 0);
	uint32_t off, idx = UINT32_MAX - 1;
	ck_assert_int_eq(gi_arena_alloc(&a, 300, &off), -E2BIG);
	ck_assert_int_eq(gi_arena_alloc(&a, 100, &off), 0);
	ck_assert_uint_eq(off, 0);
	gi_arena_note_commit(&a, idx++);
	ck_assert_int_eq(gi_arena_alloc(&a, 101, &off), 0); /* rounded to 104 */
	ck_assert_uint_eq(off, 100);
	gi_arena_note_commit(&a, idx++);
	/* 52 bytes left at the end: 60 does not fit there nor at the start yet. */
	ck_assert_int_eq(gi_arena_alloc(&a, 60, &off), -EAGAIN);
	gi_arena_reclaim(&a, UINT32_MAX); /* first SQE consumed: bytes 0..100 free */
	ck_assert_int_eq(gi_arena_alloc(&a, 60, &off), 0);
	ck_assert_uint_eq(off, 0); /* skipped the tail, wrapped */
	gi_arena_note_commit(&a, idx++);
	ck_assert_int_eq(gi_arena_alloc(&a, 48, &off), -EAGAIN);
	gi_arena_reclaim(&a, idx);
	ck_assert_int_eq(gi_arena_alloc(&a, 256, &off), 0);
	ck_assert_uint_eq(off, 0);
	gi_arena_fini(&a);
}
END_TEST

static const struct gi_limits limits = {
	.max_prompt_bytes = 4096, .max_tokens = 512, .max_stop_strings = 4, .max_stop_len = 16,
	.max_inflight = 16, .n_ctx = 256, .n_vocab = 512,
};

static struct gi_sqe good_submit(void)
{
	return (struct gi_sqe){
		.opcode = GI_OP_SUBMIT, .max_tokens = 10, .user_data = 1,
		.req = { .arena_off = 64, .prompt_len = 5 }, .stop_len = 6,
		.temperature = 0.8f, .top_p = 0.9f, .repeat_penalty = 1.1f,
	};
}

/* The I-th way to break a valid SUBMIT; NULL past the last. */
static const char *break_sqe(int i, struct gi_sqe *q)
{
	switch (i) {
	case 0: q->opcode = 77; return "opcode";
	case 1: q->flags = 0x8000; return "flags";
	case 2: q->flags = GI_SQE_F_TOKENS | GI_SQE_F_CHAT; return "tokens+chat";
	case 3: q->priority = 9; return "priority";
	case 4: q->reserved = 1; return "reserved";
	case 5: q->temperature = NAN; return "nan temperature";
	case 6: q->top_p = INFINITY; return "inf top_p";
	case 7: q->top_p = 1.5f; return "top_p > 1";
	case 8: q->min_p = -0.1f; return "negative min_p";
	case 9: q->max_tokens = 513; return "max_tokens";
	case 10: q->top_k = 600; return "top_k";
	case 11: q->req.prompt_len = 0; return "prompt 0";
	case 12: q->req.prompt_len = 5000; return "prompt big";
	case 13: q->req.arena_off = 65; return "unaligned";
	case 14: q->flags = GI_SQE_F_TOKENS; q->req.prompt_len = 6; return "tokens not x4";
	case 15: q->req.arena_off = 8192 - 12; return "past end";
	case 16: q->req.arena_off = 0xfffffffc; return "huge off";
	case 17: q->stop_len = 1000; return "stop big";
	case 18: q->opcode = GI_OP_NOP; return "nop with submit fields";
	case 19: q->opcode = GI_OP_CANCEL; return "cancel with submit fields";
	case 20: q->frequency_penalty = 3.0f; return "frequency_penalty";
	default: return NULL;
	}
}

START_TEST(test_validate_sqe)
{
	char err[160];
	struct gi_sqe s = good_submit();
	ck_assert_int_eq(gi_sqe_validate(&s, &limits, 8192, err, sizeof(err)), 0);
	ck_assert_uint_eq(gi_sqe_blob_len(&s), 8 + 6);
	for (int i = 0;; i++) {
		struct gi_sqe q = good_submit();
		const char *what = break_sqe(i, &q);
		if (!what)
			break;
		err[0] = 0;
		int r = gi_sqe_validate(&q, &limits, 8192, err, sizeof(err));
		ck_assert_msg(r == -EINVAL || r == -E2BIG, "%s: accepted (%d)", what, r);
		ck_assert_msg(err[0], "%s: no message", what);
	}
	struct gi_sqe nop = { .opcode = GI_OP_NOP, .user_data = 3, .nop.echo = 99 };
	ck_assert_int_eq(gi_sqe_validate(&nop, &limits, 0, err, sizeof(err)), 0);
	struct gi_sqe cancel = { .opcode = GI_OP_CANCEL, .flags = GI_SQE_F_CANCEL_ALL, .cancel.target = 5 };
	ck_assert_int_eq(gi_sqe_validate(&cancel, &limits, 0, err, sizeof(err)), 0);
	ck_assert_str_eq(gi_op_name(GI_OP_SUBMIT), "submit");
	ck_assert_ptr_null(gi_op_name(GI_OP_COUNT_));
}
END_TEST

START_TEST(test_validate_blobs)
{
	char err[160];
	struct gi_span sp[8];
	const uint8_t stops[] = { 2, 0, 'a', 'b', 1, 0, 'c' };
	ck_assert_int_eq(gi_stop_list_parse(stops, sizeof(stops), &limits, sp, 8, err, sizeof(err)), 2);
	ck_assert_uint_eq(sp[1].off, 6);
	ck_assert_uint_eq(sp[1].len, 1);
	const uint8_t trunc[] = { 5, 0, 'a' };
	ck_assert_int_eq(gi_stop_list_parse(trunc, sizeof(trunc), &limits, sp, 8, err, sizeof(err)), -EINVAL);
	const uint8_t zero[] = { 0, 0 };
	ck_assert_int_eq(gi_stop_list_parse(zero, sizeof(zero), &limits, sp, 8, err, sizeof(err)), -EINVAL);
	const uint8_t many[] = { 1, 0, 'a', 1, 0, 'b', 1, 0, 'c', 1, 0, 'd', 1, 0, 'e' };
	ck_assert_int_eq(gi_stop_list_parse(many, sizeof(many), &limits, sp, 8, err, sizeof(err)), -E2BIG);
	const uint8_t badutf[] = { 2, 0, 0xc3, 0x28 };
	ck_assert_int_eq(gi_stop_list_parse(badutf, sizeof(badutf), &limits, sp, 8, err, sizeof(err)), -EINVAL);

	struct gi_chat_item it[4];
	uint8_t chat[] = { 0, 0, 0, 0, 2, 0, 0, 0, 'h', 'i', 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 'y', 'o', '!', '?' };
	ck_assert_int_eq(gi_chat_parse(chat, sizeof(chat), it, 4, err, sizeof(err)), 2);
	ck_assert_uint_eq(it[1].role, GI_ROLE_USER);
	ck_assert_uint_eq(it[1].content.off, 20);
	chat[10] = 1; /* non-zero padding */
	ck_assert_int_eq(gi_chat_parse(chat, sizeof(chat), it, 4, err, sizeof(err)), -EINVAL);
	chat[10] = 0;
	chat[0] = 9; /* unknown role */
	ck_assert_int_eq(gi_chat_parse(chat, sizeof(chat), it, 4, err, sizeof(err)), -EINVAL);
	chat[0] = 0;
	chat[4] = 0xff; /* length past the end */
	ck_assert_int_eq(gi_chat_parse(chat, sizeof(chat), it, 4, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(gi_chat_parse(chat, 0, it, 4, err, sizeof(err)), -EINVAL);

	uint32_t ids[3] = { 1, 511, 512 };
	ck_assert_int_eq(gi_tokens_check((uint8_t *)ids, 8, 512, err, sizeof(err)), 0);
	ck_assert_int_eq(gi_tokens_check((uint8_t *)ids, 12, 512, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(gi_tokens_check((uint8_t *)ids, 7, 512, err, sizeof(err)), -EINVAL);
	ck_assert(gi_utf8_valid((const uint8_t *)"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	ck_assert(!gi_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));  /* surrogate */
	ck_assert(!gi_utf8_valid((const uint8_t *)"\xc0\xaf", 2));      /* overlong */
	ck_assert(!gi_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}
END_TEST

/* Both sides of one session as gid and libgiclient set it up: the
 * daemon's region and gi_srv, the client's attached copy and gi_cli, the
 * two doorbells; ring indices start at START (to cross UINT32_MAX). */
struct sess_pair {
	int fd, sub, cmp;
	struct gi_region d, c;
	struct gi_srv srv;
	struct gi_cli cli;
};

static void sess_pair_open(struct sess_pair *sp, uint32_t start)
{
	struct gi_region_params p = params;

	p.start_index = start;
	ck_assert_int_eq(gi_region_create(&p, &sp->fd, &sp->d), 0);
	ck_assert_int_eq(gi_region_attach(sp->fd, &sp->d.layout, 42, &sp->c), 0);
	sp->sub = gi_db_create();
	sp->cmp = gi_db_create();
	ck_assert_int_ge(sp->sub, 0);
	ck_assert_int_ge(sp->cmp, 0);
	ck_assert_int_eq(gi_srv_init(&sp->srv, &sp->d, &limits, start, sp->sub, sp->cmp), 0);
	ck_assert_int_eq(gi_cli_init(&sp->cli, &sp->c, sp->sub, sp->cmp), 0);
}

static void sess_pair_close(struct sess_pair *sp)
{
	gi_cli_fini(&sp->cli);
	gi_srv_fini(&sp->srv);
	gi_region_release(&sp->c);
	gi_region_release(&sp->d);
	close(sp->fd);
	close(sp->sub);
	close(sp->cmp);
}

struct seen {
	int n;
	struct gi_sqe sqe;
	char prompt[64];
	uint32_t stop_len;
};

static int on_req(void *ctx, struct gi_srv *s, const struct gi_srv_req *req)
{
	struct seen *v = ctx;
	v->n++;
	v->sqe = req->sqe;
	if (req->prompt) {
		memcpy(v->prompt, req->prompt, req->prompt_len < 63 ? req->prompt_len : 63);
		v->stop_len = req->stop_len;
	}
	if (req->sqe.opcode == GI_OP_CANCEL)
		return -ENOENT;
	struct gi_cqe tok = { .user_data = req->sqe.user_data, .kind = GI_CQE_TOKEN,
			      .flags = GI_CQE_F_MORE, .token = 7, .text_len = 2, .text = "hi" };
	struct gi_cqe done = { .user_data = req->sqe.user_data, .kind = GI_CQE_DONE,
			       .flags = GI_CQE_F_LAST, .result = GI_FINISH_EOS, .done.n_gen = 1 };
	gi_srv_post(s, &tok, 1);
	gi_srv_post(s, &done, 1);
	return 0;
}

START_TEST(test_cli_srv_roundtrip)
{
	struct sess_pair sp;

	sess_pair_open(&sp, UINT32_MAX - 2);

	/* Engine idles: NEED_WAKEUP set, so the submit rings the doorbell. */
	ck_assert_int_eq(gi_srv_arm(&sp.srv), 0);
	uint32_t off;
	uint8_t *blob;
	const char text[] = "hello";
	const uint8_t stops[] = { 2, 0, '\n', '\n' };
	ck_assert_int_eq(gi_cli_arena_alloc(&sp.cli, 8 + sizeof(stops), &off, &blob), 0);
	memcpy(blob, text, 5);
	memset(blob + 5, 0, 3);
	memcpy(blob + 8, stops, sizeof(stops));
	struct gi_sqe *sqe = gi_cli_sqe(&sp.cli, 0);
	*sqe = (struct gi_sqe){ .opcode = GI_OP_SUBMIT, .user_data = 11, .max_tokens = 4,
				.req = { .arena_off = off, .prompt_len = 5 }, .stop_len = sizeof(stops) };
	struct gi_sqe nop = { .opcode = GI_OP_NOP, .user_data = 12, .nop.echo = 0xabcdef };
	struct gi_sqe junk = { .opcode = 200, .user_data = 13 };
	struct gi_sqe cancel = { .opcode = GI_OP_CANCEL, .user_data = 14, .cancel.target = 99 };
	ck_assert_int_eq(gi_cli_commit(&sp.cli, 1), 0);
	ck_assert_uint_eq(sp.cli.n_kicks, 1);
	ck_assert_int_eq(gi_db_drain(sp.sub), 1);
	gi_srv_disarm(&sp.srv);
	ck_assert_int_eq(gi_cli_submit(&sp.cli, &nop, 1), 1);
	ck_assert_int_eq(gi_cli_submit(&sp.cli, &junk, 1), 1);
	ck_assert_int_eq(gi_cli_submit(&sp.cli, &cancel, 1), 1);
	ck_assert_uint_eq(sp.cli.n_kicks, 1); /* engine awake: no syscall */

	/* Client goes to sleep on the CQ. */
	ck_assert_int_eq(gi_cli_prepare_sleep(&sp.cli), 0);
	struct seen v = { 0 };
	ck_assert_int_eq(gi_srv_poll(&sp.srv, 16, on_req, &v), 4);
	ck_assert_int_eq(v.n, 2);
	ck_assert_str_eq(v.prompt, "hello");
	ck_assert_uint_eq(v.stop_len, sizeof(stops));
	ck_assert_uint_eq(sp.srv.n_bad_sqes, 1);
	/* The poll answered the NOP and the bad SQE itself, and kicked: the
	 * sleeping client was rung, once. */
	ck_assert_int_eq(gi_db_wait(sp.cmp, 0), 1);
	ck_assert_int_eq(gi_srv_kick(&sp.srv), 0);
	struct gi_cqe more = { .user_data = 99, .kind = GI_CQE_NOP, .flags = GI_CQE_F_LAST };
	ck_assert_int_eq(gi_srv_post(&sp.srv, &more, 1), 1);
	ck_assert_int_eq(gi_srv_kick(&sp.srv), 0); /* at most one ring per sleep */
	ck_assert_int_eq(gi_cli_wait(&sp.cli, 0, 1000), 1);
	struct gi_cqe ev[8];
	ck_assert_int_eq(gi_cli_reap(&sp.cli, ev, 8), 6);
	ck_assert_int_eq(ev[0].kind, GI_CQE_TOKEN);
	ck_assert_int_eq(ev[1].kind, GI_CQE_DONE);
	ck_assert_int_eq(ev[2].kind, GI_CQE_NOP);
	ck_assert_uint_eq(ev[2].nop.echo, 0xabcdef);
	ck_assert_int_eq(ev[3].kind, GI_CQE_ERROR);
	ck_assert_int_eq(ev[3].result, -EINVAL);
	ck_assert_uint_eq(ev[3].user_data, 13);
	ck_assert_int_eq(ev[4].kind, GI_CQE_ERROR);
	ck_assert_int_eq(ev[4].result, -ENOENT);
	ck_assert_int_eq(gi_cli_after_wake(&sp.cli), 0);
	/* Nothing more: spin 1 ms, sleep 10 ms, time out. */
	ck_assert_int_eq(gi_cli_wait(&sp.cli, 1000000, 10), 0);

	/* The arena bytes of the consumed SQE are free again. */
	ck_assert_int_eq(gi_cli_arena_alloc(&sp.cli, 8192, &off, &blob), 0);
	gi_srv_heartbeat(&sp.srv, 1234);
	ck_assert_uint_eq(gi_cli_heartbeat(&sp.cli), 1234);
	gi_srv_set_shutdown(&sp.srv);
	ck_assert_uint_eq(gi_cli_daemon_flags(&sp.cli) & GI_DFLAG_SHUTDOWN, GI_DFLAG_SHUTDOWN);

	sess_pair_close(&sp);
}
END_TEST

/* A validator reason longer than one event arrives in TEXT_CONT pieces; with
 * one CQ slot left, its head arrives alone, flagged LAST. */
START_TEST(test_long_error_reason)
{
	struct sess_pair sp;

	sess_pair_open(&sp, 0);

	struct gi_sqe big = good_submit();
	big.user_data = 7;
	big.max_tokens = 999999;
	ck_assert_int_eq(gi_cli_submit(&sp.cli, &big, 1), 1);
	ck_assert_int_eq(gi_srv_poll(&sp.srv, 16, NULL, NULL), 1);
	struct gi_cqe ev[GI_SRV_REASON_EVENTS + 1];
	int n = gi_cli_reap(&sp.cli, ev, GI_SRV_REASON_EVENTS + 1);
	ck_assert_int_ge(n, 2);
	char reason[GI_SRV_REASON_MAX + 1];
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(ev[i].kind, GI_CQE_ERROR);
		ck_assert_int_eq(ev[i].result, -E2BIG);
		ck_assert_uint_eq(ev[i].flags, i + 1 < n ? GI_CQE_F_MORE | GI_CQE_F_TEXT_CONT
							  : GI_CQE_F_LAST);
		memcpy(reason + len, ev[i].reason, ev[i].text_len);
		len += ev[i].text_len;
	}
	reason[len] = 0;
	ck_assert_str_eq(reason, "sqe submit: max_tokens 999999 above limit 512");

	/* Fill the CQ to one free slot, then the same bad SQE. */
	struct gi_cqe nop = { .kind = GI_CQE_NOP, .flags = GI_CQE_F_LAST };
	for (uint32_t i = 0; i + 1 < params.cq_entries; i++)
		ck_assert_int_eq(gi_srv_post(&sp.srv, &nop, 1), 1);
	ck_assert_int_eq(gi_cli_submit(&sp.cli, &big, 1), 1);
	ck_assert_int_eq(gi_srv_poll(&sp.srv, 16, NULL, NULL), 1);
	struct gi_cqe all[64];
	ck_assert_int_eq(gi_cli_reap(&sp.cli, all, 64), 64);
	ck_assert_int_eq(all[63].kind, GI_CQE_ERROR);
	ck_assert_uint_eq(all[63].flags, GI_CQE_F_LAST);
	ck_assert_uint_eq(all[63].text_len, GI_CQE_TEXT_MAX);

	sess_pair_close(&sp);
}
END_TEST

/* SQEs stuck behind a full CQ: the engine may sleep (no spinning on work it
 * cannot take), and the client's reap from the full CQ rings it. */
START_TEST(test_cq_full_sleep)
{
	struct sess_pair sp;

	sess_pair_open(&sp, 0);
	struct gi_sqe nop[16];
	for (int i = 0; i < 16; i++)
		nop[i] = (struct gi_sqe){ .opcode = GI_OP_NOP, .user_data = (uint64_t)i };
	for (int k = 0; k < 4; k++) { /* 64 answers fill the 64-entry CQ */
		ck_assert_int_eq(gi_cli_submit(&sp.cli, nop, 16), 16);
		ck_assert_int_eq(gi_srv_poll(&sp.srv, 16, NULL, NULL), 16);
	}
	ck_assert_int_eq(gi_cli_submit(&sp.cli, nop, 3), 3);
	ck_assert_int_eq(gi_srv_poll(&sp.srv, 16, NULL, NULL), 0);
	ck_assert_int_eq(gi_srv_arm(&sp.srv), 0); /* nothing it can take: sleep */
	uint64_t kicks = sp.cli.n_kicks;
	struct gi_cqe e[8];
	ck_assert_int_eq(gi_cli_reap(&sp.cli, e, 8), 8);
	ck_assert_uint_eq(sp.cli.n_kicks, kicks + 1);
	ck_assert_int_eq(gi_db_drain(sp.sub), 1);
	ck_assert_int_eq(gi_srv_arm(&sp.srv), 1); /* room again: work */
	gi_srv_disarm(&sp.srv);
	ck_assert_int_eq(gi_srv_poll(&sp.srv, 16, NULL, NULL), 3);
	/* Reaping from a CQ that was not full does not ring. */
	ck_assert_int_eq(gi_cli_reap(&sp.cli, e, 8), 8);
	ck_assert_uint_eq(sp.cli.n_kicks, kicks + 1);
	ck_assert_int_eq(sp.srv.error, 0);
	sess_pair_close(&sp);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ipc_session");
	TCase *tc = tcase_create("session");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_region_seals);
	tcase_add_test(tc, test_arena);
	tcase_add_test(tc, test_validate_sqe);
	tcase_add_test(tc, test_validate_blobs);
	tcase_add_test(tc, test_cli_srv_roundtrip);
	tcase_add_test(tc, test_long_error_reason);
	tcase_add_test(tc, test_cq_full_sleep);
	suite_add_tcase(s, tc);
	return s;
}
