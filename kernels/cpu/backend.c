/* CPU backend: the backend object, its memory (host memory; weights stay in
 * the GGUF mapping unless a graph packs them) and its thread pool. The graph runner is in graph.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/grow.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/matmul.h"

/* Backend memory comes from mmap: zero pages the kernel fills on first touch,
 * so an activation buffer sized for the largest step or a KV pool only
 * costs resident memory for what steps actually use. A 64-byte header holds
 * the mapping's length. */
#define MEM_HDR 64

static int cpu_alloc(struct gi_backend *b, size_t bytes, void **ret)
{
	size_t len = bytes + MEM_HDR;
	if (len < bytes)
		return -ENOMEM;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	memcpy(p, &len, sizeof(len));
	*ret = p + MEM_HDR;
	return 0;
}

static void cpu_release(struct gi_backend *b, void *mem)
{
	uint8_t *p = (uint8_t *)mem - MEM_HDR;
	size_t len;
	memcpy(&len, p, sizeof(len));
	munmap(p, len);
}

static int cpu_map(struct gi_backend *b, const void *host, size_t bytes, const void **ret)
{
	struct cpu_backend *c = (struct cpu_backend *)b;
	struct cpu_mapped *m = grow_array(c->mapped, &c->cap_mapped, c->n_mapped + 1, sizeof(*m), 64);
	if (!m)
		return -ENOMEM;
	c->mapped = m;
	m[c->n_mapped++] = (struct cpu_mapped){ host, bytes };
	*ret = host;
	return 0;
}

bool cpu_backend_is_mapped(const struct cpu_backend *b, const void *p, size_t bytes)
{
	uintptr_t a = (uintptr_t)p;
	for (size_t i = 0; i < b->n_mapped; i++) {
		uintptr_t h = (uintptr_t)b->mapped[i].host;
		if (a >= h && bytes <= b->mapped[i].bytes && a - h <= b->mapped[i].bytes - bytes)
			return true;
	}
	return false;
}

static int cpu_read(struct gi_backend *b, void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
	return 0;
}

/* Steps run synchronously inside gi_graph_run: nothing is ever queued. */
static int cpu_sync(struct gi_backend *b)
{
	return 0;
}

static void cpu_free(struct gi_backend *b)
{
	struct cpu_backend *c = (struct cpu_backend *)b;
	cpu_pool_free(c->pool);
	free(c->mapped);
	free(c);
}

static const struct gi_backend_ops cpu_backend_ops = {
	.free = cpu_free,
	.alloc = cpu_alloc,
	.release = cpu_release,
	.map = cpu_map,
	.read = cpu_read,
	.sync = cpu_sync,
	.graph_create = cpu_graph_create,
	.graph_free = cpu_graph_free,
	.graph_run = cpu_graph_run,
};

int cpu_backend_create(int n_threads, struct gi_backend **ret, char *err, size_t errlen)
{
	struct cpu_backend *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->base.ops = &cpu_backend_ops;
	c->ops = cpu_ops_best();
	int r = cpu_pool_create(n_threads, &c->pool);
	if (r) {
		free(c);
		snprintf(err, errlen, "cannot start %d CPU threads: %s", n_threads, strerror(-r));
		return r;
	}
	c->n_threads = n_threads;
	snprintf(c->base.name, sizeof(c->base.name), "cpu (%s, %d thread%s)", cpu_simd_level(),
		 n_threads, n_threads == 1 ? "" : "s");
	*ret = &c->base;
	return 0;
}
