/* The session region: one sealed memfd holding the header page, the control
 * lines, the SQ, the CQ and the request arena (IPC.md "Memory layout").
 *
 * The daemon creates it (gi_region_create), hands the fd over in WELCOME and
 * keeps its own mapping; the client maps the received fd (gi_region_attach),
 * which checks seals, size, magic, version and that the header agrees with
 * the WELCOME's layout. Both get typed pointers computed from the layout; the
 * daemon never reads the header back. */
#pragma once
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/wire.h"

/* Seals the daemon applies and the client requires. */
#define GI_REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* Defaults and bounds for the geometry (HELLO asks, the daemon clamps). */
#define GI_SQ_ENTRIES_DEFAULT 64u
#define GI_SQ_ENTRIES_MAX     4096u
#define GI_CQ_ENTRIES_MIN_FACTOR 4u  /* cq_entries >= 4 * sq_entries */
#define GI_CQ_ENTRIES_MAX     65536u
#define GI_ARENA_DEFAULT      (1u << 20)
#define GI_ARENA_MAX          (64u << 20)

struct gi_region_params {
	uint32_t sq_entries;    /* power of two, 1..GI_SQ_ENTRIES_MAX */
	uint32_t cq_entries;    /* power of two, sq_entries..GI_CQ_ENTRIES_MAX */
	uint32_t arena_size;    /* 0..GI_ARENA_MAX, rounded up to a multiple of 64 */
	uint32_t features;      /* GI_FEAT_* granted */
	uint64_t session_id;
	uint32_t start_index;   /* initial value of all four ring counters (tests) */
	uint32_t abi_minor;     /* negotiated minor */
};

/* One side's mapping with typed pointers into it. */
struct gi_region {
	void *base;
	size_t size;
	struct gi_layout layout;
	uint32_t *sq_tail, *sq_head, *cq_tail, *cq_head, *cq_wait_seq, *daemon_flags;
	uint64_t *heartbeat;
	struct gi_sqe *sqes;
	struct gi_cqe *cqes;
	uint8_t *arena;
};

/* Computes the layout for P (page-aligned sections, one 128-byte line per
 * control word). -EINVAL naming the field if P is out of range. */
int gi_layout_compute(const struct gi_region_params *p, struct gi_layout *ret_layout);

/* Checks that L is self-consistent: sizes are powers of two within bounds,
 * every section and control line lies inside region_size without overlap.
 * Used by the client on the WELCOME's layout (never trust, even the daemon). */
int gi_layout_check(const struct gi_layout *l);

/* Daemon: creates the memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING, plus
 * MFD_NOEXEC_SEAL when the kernel takes it), sizes it, writes the header and
 * the initial counters, seals SHRINK|GROW|SEAL, maps it and pre-faults every
 * page. On success *RET_FD owns the memfd and *RET_REGION the mapping. */
int gi_region_create(const struct gi_region_params *p, int *ret_fd, struct gi_region *ret_region);

/* Client: maps FD (shared, read/write) after checking its seals and size
 * against EXPECTED (the WELCOME's layout), then checks the header page
 * (magic, ABI major, hdr_size, layout equal to EXPECTED, session id) and sets
 * MADV_DONTFORK. Does not take ownership of FD. -EPROTO if any check fails,
 * -errno if a syscall does. */
int gi_region_attach(int fd, const struct gi_layout *expected, uint64_t session_id,
		     struct gi_region *ret_region);

/* Unmaps; accepts a zeroed or already-released region. */
void gi_region_release(struct gi_region *r);

/* Fills the typed pointers of R from R->base and R->layout. */
void gi_region_bind(struct gi_region *r);
