/* CPU backend internals shared by its files. */
#pragma once
#include <stdbool.h>

#include "kernels/backend_impl.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/pool.h"

/* A range of file-mapped weights handed to gi_backend_map. */
struct cpu_mapped {
	const void *host;
	size_t bytes;
};

struct cpu_backend {
	struct gi_backend base;
	struct cpu_pool *pool;
	const struct cpu_ops *ops;
	int n_threads;
	struct cpu_mapped *mapped; /* every gi_backend_map range */
	size_t n_mapped, cap_mapped;
};

/* backend.c: true if [P, P + BYTES) lies in one range given to
 * gi_backend_map (a read-only file mapping, whose pages may be dropped). */
bool cpu_backend_is_mapped(const struct cpu_backend *b, const void *p, size_t bytes);

/* graph_pack.c: packs the matmul weights of NODES (the graph's own copy)
 * that have a packed layout (repack.h) when this CPU's kernels gain from it:
 * each packed weight's data then points at its copy and bit I of
 * PACKED[node] is set for weight I. The copies share one mapping, *ARENA of
 * *ARENA_LEN bytes (munmap it; untouched when nothing is packed). Pages of
 * the source weights in a gi_backend_map range are dropped from memory once
 * copied, so resident memory holds one copy. -ENOMEM with a message. */
int cpu_graph_pack(struct cpu_backend *b, struct gi_node *nodes, uint32_t n_nodes, uint8_t *packed,
		   void **arena, size_t *arena_len, char *err, size_t errlen);

/* graph.c: the graph half of the backend table. */
int cpu_graph_create(struct gi_backend *b, const struct gi_graph_desc *d, struct gi_graph **ret,
		     char *err, size_t errlen);
void cpu_graph_free(struct gi_graph *g);
int cpu_graph_run(struct gi_graph *g, const struct gi_step *s);
