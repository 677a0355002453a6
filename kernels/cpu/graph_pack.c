/* Packing a graph's Q4_0 / Q8_0 matmul weights into the x16 layout
 * (repack.h) once, at graph creation: every step then streams the packed
 * copy, and the pages of the GGUF mapping it came from are dropped so the
 * process holds the weights once. GI_CPU_REPACK=0 in the environment keeps
 * the GGUF layout (for measuring one against the other). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/errmsg.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/repack.h"

struct pack_job {
	const struct gi_mat *w;
	void *dst;
};

static void pack_part(void *arg, int ith, int nth)
{
	const struct pack_job *j = arg;
	size_t groups = (j->w->n + X16_ROWS - 1) / X16_ROWS;
	size_t g0 = groups * (size_t)ith / (size_t)nth, g1 = groups * (size_t)(ith + 1) / (size_t)nth;
	cpu_x16_pack(j->w->type, j->w->data, j->w->k, j->w->n, g0, g1, j->dst);
}

/* The x16 kernels exist for every level, but only the AVX-512 and AMX
 * ones beat the GGUF-layout kernels. */
static bool pack_wanted(void)
{
	const char *env = getenv("GI_CPU_REPACK"), *lvl = cpu_simd_level();
	if (env && !strcmp(env, "0"))
		return false;
	return !strcmp(lvl, "avx512") || !strcmp(lvl, "amx");
}

/* Drops the whole pages of [P, P + BYTES) from this process; they are read
 * back from the file should anything touch them again. */
static void drop_pages(const void *p, size_t bytes)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), e = ((uintptr_t)p + bytes) & ~(pg - 1);
	if (a < e)
		madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Weight I of matmul node N can be packed: a type with a packed layout for
 * its shape and, but for F32 (whose kernels take any column range), columns
 * that start at a multiple of 16 of the node's concatenated output, so every
 * column chunk the runner cuts (multiples of 16) stays group-aligned. */
static bool packable(const struct gi_node *n, uint32_t i)
{
	uint32_t off = 0;
	for (uint32_t j = 0; j < i; j++)
		off += n->matmul.w[j].n;
	const struct gi_mat *w = &n->matmul.w[i];
	return (off % X16_ROWS == 0 || w->type == GI_TYPE_F32) && cpu_x16_bytes(w->type, w->k, w->n) > 0;
}

/* Anonymous memory for the packed copies, on transparent huge pages where
 * the system allows them (fewer faults while packing, fewer TLB misses
 * while streaming the weights every step). */
static void *arena_map(size_t bytes, size_t *ret_len)
{
	const size_t huge = (size_t)2 << 20;
	size_t len = (bytes + huge - 1) / huge * huge + huge;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint8_t *a = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	len -= (size_t)(a - p);
	madvise(a, len, MADV_HUGEPAGE);
	*ret_len = len;
	return a;
}

int cpu_graph_pack(struct cpu_backend *b, struct gi_node *nodes, uint32_t n_nodes, uint8_t *packed,
		   void **arena, size_t *arena_len, char *err, size_t errlen)
{
	size_t total = 0;
	memset(packed, 0, n_nodes);
	if (!pack_wanted())
		return 0;
	for (uint32_t i = 0; i < n_nodes; i++) {
		const struct gi_node *n = &nodes[i];
		for (uint32_t j = 0; n->op == GI_OP_MATMUL && j < n->matmul.n_mat; j++) {
			if (!packable(n, j))
				continue;
			const struct gi_mat *w = &n->matmul.w[j];
			size_t bytes = (cpu_x16_bytes(w->type, w->k, w->n) + 63) & ~(size_t)63;
			if (total + bytes < total)
				return errmsg(err, errlen, -ENOMEM, "graph: packed weights overflow");
			total += bytes;
			packed[i] |= (uint8_t)(1u << j);
		}
	}
	if (!total)
		return 0;
	uint8_t *dst = arena_map(total, arena_len);
	if (!dst) {
		memset(packed, 0, n_nodes);
		return errmsg(err, errlen, -ENOMEM, "graph: out of memory for %zu bytes of packed weights",
			      total);
	}
	*arena = dst;
	for (uint32_t i = 0; i < n_nodes; i++) {
		struct gi_node *n = &nodes[i];
		for (uint32_t j = 0; n->op == GI_OP_MATMUL && j < n->matmul.n_mat; j++) {
			if (!(packed[i] >> j & 1))
				continue;
			struct gi_mat *w = &n->matmul.w[j];
			size_t src_bytes = gi_type_row_bytes(w->type, w->k) * w->n;
			struct pack_job job = { w, dst };
			cpu_pool_run(b->pool, 1, pack_part, &job);
			if (cpu_backend_is_mapped(b, w->data, src_bytes))
				drop_pages(w->data, src_bytes);
			w->data = dst;
			dst += (cpu_x16_bytes(w->type, w->k, w->n) + 63) & ~(size_t)63;
		}
	}
	return 0;
}
