/* libFuzzer target: the daemon's record path. Input = one SQE (64 bytes)
 * followed by arena bytes. Runs the validator and blob parsers on private
 * copies, then the same SQE through gi_srv_poll on a real session region
 * whose arena holds the rest of the input. Invariants (checked with
 * __builtin_trap): whatever passes validation references bytes inside the
 * arena, and the reader never reports success for an invalid record. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ipc/session.h"
#include "ipc/srv.h"
#include "ipc/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct gi_limits limits = {
	.max_prompt_bytes = 4096, .max_tokens = 1024, .max_stop_strings = 8, .max_stop_len = 64,
	.n_vocab = 32000,
};

static struct gi_region region;
static struct gi_srv srv;
static uint64_t n_valid_seen;

static int on_req(void *ctx, struct gi_srv *s, const struct gi_srv_req *req)
{
	char err[160];
	if (gi_sqe_validate(&req->sqe, &s->limits, s->region.layout.arena_size, err, sizeof(err)))
		__builtin_trap();
	n_valid_seen++;
	if (req->sqe.opcode == GI_OP_SUBMIT) {
		struct gi_span sp[8];
		struct gi_chat_item it[16];
		int n = gi_stop_list_parse(req->stops, req->stop_len, &s->limits, sp, 8, err, sizeof(err));
		for (int i = 0; i < n; i++)
			if (sp[i].len > req->stop_len || sp[i].off > req->stop_len - sp[i].len)
				__builtin_trap();
		if (req->sqe.flags & GI_SQE_F_CHAT) {
			n = gi_chat_parse(req->prompt, req->prompt_len, it, 16, err, sizeof(err));
			for (int i = 0; i < n; i++)
				if (it[i].content.len > req->prompt_len ||
				    it[i].content.off > req->prompt_len - it[i].content.len)
					__builtin_trap();
		}
		if (req->sqe.flags & GI_SQE_F_TOKENS)
			gi_tokens_check(req->prompt, req->prompt_len, s->limits.n_vocab, err, sizeof(err));
	}
	return 0;
}

static int setup(void)
{
	struct gi_region_params p = { .sq_entries = 4, .cq_entries = 16, .arena_size = 8192, .session_id = 1 };
	int fd;
	if (gi_region_create(&p, &fd, &region))
		return -1;
	close(fd);
	return gi_srv_init(&srv, &region, &limits, 0, -1, -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (setup())
			__builtin_trap();
		ready = 1;
	}
	if (size < sizeof(struct gi_sqe))
		return 0;
	struct gi_sqe sqe;
	memcpy(&sqe, data, sizeof(sqe));
	const uint8_t *arena = data + sizeof(sqe);
	size_t arena_len = size - sizeof(sqe);
	if (arena_len > region.layout.arena_size)
		arena_len = region.layout.arena_size;

	/* Validator alone, against an arena as long as the input. */
	char err[160];
	if (gi_sqe_validate(&sqe, &limits, (uint32_t)arena_len, err, sizeof(err)) == 0 &&
	    sqe.opcode == GI_OP_SUBMIT) {
		uint32_t blob = gi_sqe_blob_len(&sqe);
		if (blob > arena_len || sqe.req.arena_off > arena_len - blob)
			__builtin_trap();
	}

	/* The reader: one SQE into the ring, arena filled, poll, drain the CQ. */
	memset(region.arena, 0, region.layout.arena_size);
	memcpy(region.arena, arena, arena_len);
	uint32_t tail = srv.sq.local_head;
	region.sqes[tail & (region.layout.sq_entries - 1)] = sqe;
	__atomic_store_n(region.sq_tail, tail + 1, __ATOMIC_RELEASE);
	uint64_t before = n_valid_seen, bad = srv.n_bad_sqes;
	int r = gi_srv_poll(&srv, 4, on_req, NULL);
	if (r != 1 || srv.error)
		__builtin_trap();
	int valid = gi_sqe_validate(&sqe, &limits, region.layout.arena_size, err, sizeof(err)) == 0;
	if (valid && sqe.opcode != GI_OP_NOP && n_valid_seen != before + 1)
		__builtin_trap();
	if (!valid && srv.n_bad_sqes != bad + 1)
		__builtin_trap();
	__atomic_store_n(region.cq_head, srv.cq.local_tail, __ATOMIC_RELEASE);
	return 0;
}
