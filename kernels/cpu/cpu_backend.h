/* CPU backend internals shared by its files. */
#pragma once
#include "kernels/backend_impl.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/pool.h"

struct cpu_backend {
	struct gi_backend base;
	struct cpu_pool *pool;
	const struct cpu_ops *ops;
	int n_threads;
};

/* graph.c: the graph half of the backend table. */
int cpu_graph_create(struct gi_backend *b, const struct gi_graph_desc *d, struct gi_graph **ret,
		     char *err, size_t errlen);
void cpu_graph_free(struct gi_graph *g);
int cpu_graph_run(struct gi_graph *g, const struct gi_step *s);
