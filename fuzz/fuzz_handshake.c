/* libFuzzer target: the control-socket parsers, on both sides. Input is one
 * received datagram, tried as a HELLO (daemon side) and as a WELCOME or
 * ERROR (client side). Invariants (checked with __builtin_trap): an accepted
 * HELLO negotiates to a layout that can be created; an accepted WELCOME has
 * a layout whose every section and control line lies inside the region. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ipc/handshake.h"
#include "ipc/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct gi_hs_policy policy = {
	.features = GI_FEAT_ALL,
	.limits = { .max_prompt_bytes = 4096, .max_tokens = 256 },
	.model_name = "fuzz",
};

static int inside(uint64_t off, uint64_t len, uint64_t size)
{
	return len <= size && off <= size - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct gi_hello h;
	if (gi_hs_parse_hello(data, size, &h, err, sizeof(err)) == 0) {
		struct gi_region_params p;
		struct gi_welcome w;
		int r = gi_hs_negotiate(&h, &policy, 1, &p, &w, err, sizeof(err));
		if (r == 0) {
			struct gi_layout l;
			if (gi_layout_compute(&p, &l) || gi_layout_check(&l))
				__builtin_trap();
		} else if (r != -EPROTONOSUPPORT) {
			__builtin_trap();
		}
	}
	struct gi_welcome w;
	int r = gi_hs_parse_welcome(data, size, &w, err, sizeof(err));
	if (r == 0) {
		const struct gi_layout *l = &w.layout;
		uint64_t rs = l->region_size;
		if (!inside(l->off_sqes, (uint64_t)l->sq_entries * l->sqe_size, rs) ||
		    !inside(l->off_cqes, (uint64_t)l->cq_entries * l->cqe_size, rs) ||
		    !inside(l->off_arena, l->arena_size, rs) || !inside(l->off_sq_tail, 4, rs) ||
		    !inside(l->off_sq_head, 4, rs) || !inside(l->off_cq_tail, 4, rs) ||
		    !inside(l->off_cq_head, 4, rs) || !inside(l->off_cq_wait_seq, 4, rs) ||
		    !inside(l->off_daemon_flags, 4, rs) || !inside(l->off_heartbeat, 8, rs) ||
		    memchr(w.model_name, 0, sizeof(w.model_name)) == NULL)
			__builtin_trap();
	} else if (r > 0 || r < -4095) {
		__builtin_trap();
	}
	struct gi_msg_hdr m;
	if (gi_msg_check(data, size, GI_MSG_STATS_REQ, sizeof(struct gi_stats_req), &m, err, sizeof(err)) == 0 &&
	    (m.len != size || size > GI_MSG_MAX))
		__builtin_trap();
	return 0;
}
