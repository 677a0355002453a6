/* The session region: layout, creation (daemon), attachment (client). */
#include "ipc/session.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc/atomics.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U /* Linux 6.3; glibc headers may lack it */
#endif

#define PAGE 4096u

/* Control words, in line order after the header page. */
enum { CTL_SQ_TAIL, CTL_SQ_HEAD, CTL_CQ_TAIL, CTL_CQ_HEAD, CTL_CQ_WAIT_SEQ, CTL_DFLAGS,
       CTL_HEARTBEAT, CTL_COUNT };
_Static_assert(CTL_COUNT * GI_CTL_LINE <= PAGE, "control lines fit one page");

static uint64_t page_up(uint64_t v)
{
	return (v + PAGE - 1) & ~(uint64_t)(PAGE - 1);
}

static int pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int gi_layout_compute(const struct gi_region_params *p, struct gi_layout *ret_layout)
{
	if (!pow2(p->sq_entries) || p->sq_entries > GI_SQ_ENTRIES_MAX)
		return -EINVAL;
	if (!pow2(p->cq_entries) || p->cq_entries < p->sq_entries || p->cq_entries > GI_CQ_ENTRIES_MAX)
		return -EINVAL;
	if (p->arena_size > GI_ARENA_MAX)
		return -EINVAL;
	struct gi_layout l = {
		.sq_entries = p->sq_entries,
		.cq_entries = p->cq_entries,
		.sqe_size = sizeof(struct gi_sqe),
		.cqe_size = sizeof(struct gi_cqe),
		.arena_size = (p->arena_size + 63u) & ~63u,
	};
	uint64_t ctl = PAGE;
	l.off_sq_tail = ctl + CTL_SQ_TAIL * GI_CTL_LINE;
	l.off_sq_head = ctl + CTL_SQ_HEAD * GI_CTL_LINE;
	l.off_cq_tail = ctl + CTL_CQ_TAIL * GI_CTL_LINE;
	l.off_cq_head = ctl + CTL_CQ_HEAD * GI_CTL_LINE;
	l.off_cq_wait_seq = ctl + CTL_CQ_WAIT_SEQ * GI_CTL_LINE;
	l.off_daemon_flags = ctl + CTL_DFLAGS * GI_CTL_LINE;
	l.off_heartbeat = ctl + CTL_HEARTBEAT * GI_CTL_LINE;
	l.off_sqes = ctl + PAGE;
	l.off_cqes = page_up(l.off_sqes + (uint64_t)l.sq_entries * l.sqe_size);
	l.off_arena = page_up(l.off_cqes + (uint64_t)l.cq_entries * l.cqe_size);
	l.region_size = page_up(l.off_arena + l.arena_size);
	*ret_layout = l;
	return 0;
}

/* Whether [off, off + len) lies inside SIZE (no overflow: len <= size first). */
static int span_in(uint64_t off, uint64_t len, uint64_t size)
{
	return len <= size && off <= size - len;
}

int gi_layout_check(const struct gi_layout *l)
{
	if (l->reserved0 || l->sqe_size != sizeof(struct gi_sqe) || l->cqe_size != sizeof(struct gi_cqe))
		return -EPROTO;
	if (!pow2(l->sq_entries) || l->sq_entries > GI_SQ_ENTRIES_MAX)
		return -EPROTO;
	if (!pow2(l->cq_entries) || l->cq_entries < l->sq_entries || l->cq_entries > GI_CQ_ENTRIES_MAX)
		return -EPROTO;
	if (l->arena_size > GI_ARENA_MAX || (l->arena_size & 63))
		return -EPROTO;
	if (l->region_size % PAGE || l->region_size < 2 * PAGE || l->region_size > (1ull << 32))
		return -EPROTO;
	/* Sections: page-aligned, inside, in order, after the header page. */
	struct { uint64_t off, len; } sec[] = {
		{ l->off_sqes, (uint64_t)l->sq_entries * l->sqe_size },
		{ l->off_cqes, (uint64_t)l->cq_entries * l->cqe_size },
		{ l->off_arena, l->arena_size },
	};
	uint64_t end = PAGE;
	for (size_t i = 0; i < sizeof(sec) / sizeof(sec[0]); i++) {
		if (sec[i].off % PAGE || sec[i].off < end || !span_in(sec[i].off, sec[i].len, l->region_size))
			return -EPROTO;
		end = sec[i].off + sec[i].len;
	}
	/* Control lines: aligned lines after the header page, before the SQ,
	 * pairwise distinct. */
	const uint64_t ctl[CTL_COUNT] = { l->off_sq_tail, l->off_sq_head, l->off_cq_tail, l->off_cq_head,
					  l->off_cq_wait_seq, l->off_daemon_flags, l->off_heartbeat };
	for (int i = 0; i < CTL_COUNT; i++) {
		if (ctl[i] % GI_CTL_LINE || ctl[i] < PAGE || ctl[i] > l->off_sqes - GI_CTL_LINE)
			return -EPROTO;
		for (int j = 0; j < i; j++)
			if (ctl[i] == ctl[j])
				return -EPROTO;
	}
	return 0;
}

void gi_region_bind(struct gi_region *r)
{
	uint8_t *b = r->base;
	const struct gi_layout *l = &r->layout;
	r->sq_tail = (uint32_t *)(b + l->off_sq_tail);
	r->sq_head = (uint32_t *)(b + l->off_sq_head);
	r->cq_tail = (uint32_t *)(b + l->off_cq_tail);
	r->cq_head = (uint32_t *)(b + l->off_cq_head);
	r->cq_wait_seq = (uint32_t *)(b + l->off_cq_wait_seq);
	r->daemon_flags = (uint32_t *)(b + l->off_daemon_flags);
	r->heartbeat = (uint64_t *)(b + l->off_heartbeat);
	r->sqes = (struct gi_sqe *)(b + l->off_sqes);
	r->cqes = (struct gi_cqe *)(b + l->off_cqes);
	r->arena = b + l->off_arena;
}

static int memfd_new(void)
{
	unsigned base = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	/* MFD_NOEXEC_SEAL (6.3+) also seals F_SEAL_EXEC; older kernels say EINVAL. */
	int fd = memfd_create("gid-session", base | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("gid-session", base);
	return fd < 0 ? -errno : fd;
}

int gi_region_create(const struct gi_region_params *p, int *ret_fd, struct gi_region *ret_region)
{
	struct gi_region r = { 0 };
	int err = gi_layout_compute(p, &r.layout);
	if (err)
		return err;
	int fd = memfd_new();
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)r.layout.region_size) < 0)
		goto fail_errno;
	if (fcntl(fd, F_ADD_SEALS, GI_REGION_SEALS) < 0)
		goto fail_errno;
	r.size = r.layout.region_size;
	/* MAP_POPULATE pre-faults every page, so the hot path never faults. */
	r.base = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (r.base == MAP_FAILED)
		goto fail_errno;
	gi_region_bind(&r);
	struct gi_session_hdr *h = r.base;
	*h = (struct gi_session_hdr){
		.magic = GI_SESSION_MAGIC,
		.abi_major = GI_ABI_MAJOR,
		.abi_minor = (uint16_t)p->abi_minor,
		.hdr_size = sizeof(*h),
		.features = p->features,
		.session_id = p->session_id,
		.layout = r.layout,
	};
	/* Written before the fd is handed over; the SCM_RIGHTS send orders them. */
	gi_store_relaxed(r.sq_tail, p->start_index);
	gi_store_relaxed(r.sq_head, p->start_index);
	gi_store_relaxed(r.cq_tail, p->start_index);
	gi_store_relaxed(r.cq_head, p->start_index);
	*ret_fd = fd;
	*ret_region = r;
	return 0;

fail_errno:
	err = -errno;
	close(fd);
	return err;
}

int gi_region_attach(int fd, const struct gi_layout *expected, uint64_t session_id,
		     struct gi_region *ret_region)
{
	int err = gi_layout_check(expected);
	if (err)
		return err;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return errno == EINVAL ? -EPROTO : -errno;
	if ((seals & GI_REGION_SEALS) != GI_REGION_SEALS)
		return -EPROTO;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != expected->region_size)
		return -EPROTO;
	struct gi_region r = { .size = expected->region_size, .layout = *expected };
	r.base = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (r.base == MAP_FAILED)
		return -errno;
	const struct gi_session_hdr *h = r.base;
	if (h->magic != GI_SESSION_MAGIC || h->abi_major != GI_ABI_MAJOR || h->hdr_size != sizeof(*h) ||
	    h->session_id != session_id || memcmp(&h->layout, expected, sizeof(*expected))) {
		munmap(r.base, r.size);
		return -EPROTO;
	}
	/* A forked child must not inherit (and scribble on) the session. */
	if (madvise(r.base, r.size, MADV_DONTFORK) < 0) {
		err = -errno;
		munmap(r.base, r.size);
		return err;
	}
	gi_region_bind(&r);
	*ret_region = r;
	return 0;
}

void gi_region_release(struct gi_region *r)
{
	if (r->base && r->size)
		munmap(r->base, r->size);
	*r = (struct gi_region){ 0 };
}
