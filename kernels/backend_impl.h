/* What a backend implements, shared by kernels/backend.c (which dispatches)
 * and the backends (cpu/ now; cuda/ later). Not for the engine. */
#pragma once
#include <stddef.h>

#include "kernels/backend.h"

struct gi_backend_ops {
	void (*free)(struct gi_backend *b);
	int (*alloc)(struct gi_backend *b, size_t bytes, void **ret);
	void (*release)(struct gi_backend *b, void *mem);
	int (*map)(struct gi_backend *b, const void *host, size_t bytes, const void **ret);
	int (*read)(struct gi_backend *b, void *dst, const void *src, size_t bytes);
	int (*sync)(struct gi_backend *b);
	/* D has passed gi_graph_check */
	int (*graph_create)(struct gi_backend *b, const struct gi_graph_desc *d,
			    struct gi_graph **ret, char *err, size_t errlen);
	void (*graph_free)(struct gi_graph *g);
	/* S has passed the size checks of gi_graph_run */
	int (*graph_run)(struct gi_graph *g, const struct gi_step *s);
};

/* The first member of every backend object. */
struct gi_backend {
	const struct gi_backend_ops *ops;
	char name[64];
};

/* The first member of every graph object. */
struct gi_graph {
	struct gi_backend *b;
	uint32_t max_tokens, max_out;
};

/* The CPU backend with N_THREADS threads (>= 1). */
int cpu_backend_create(int n_threads, struct gi_backend **ret, char *err, size_t errlen);
