/* CPU backend: the backend object, its memory (host memory; weights stay in
 * the GGUF mapping) and its thread pool. The graph runner is in graph.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/matmul.h"

int gi_backend_create(const struct gi_backend_opts *o, struct gi_backend **ret, char *err,
		      size_t errlen)
{
	const char *dev = o && o->size >= sizeof(*o) ? o->device : NULL;
	int n = o && o->size >= sizeof(*o) ? o->n_threads : 0;
	if (dev && strcmp(dev, "auto") && strcmp(dev, "cpu")) {
		int cuda = !strncmp(dev, "cuda", 4);
		snprintf(err, errlen, cuda ? "device \"%s\": this build has no GPU backend"
					   : "device \"%s\" is unknown (auto, cpu, cuda[:N])",
			 dev);
		return cuda ? -ENODEV : -EINVAL;
	}
	if (n < 0 || n > 1024) {
		snprintf(err, errlen, "threads %d is out of range (0 = all CPUs, at most 1024)", n);
		return -EINVAL;
	}
	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	struct gi_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->ops = cpu_ops_best();
	int r = cpu_pool_create(n, &b->pool);
	if (r) {
		free(b);
		snprintf(err, errlen, "cannot start %d CPU threads: %s", n, strerror(-r));
		return r;
	}
	b->n_threads = n;
	snprintf(b->name, sizeof(b->name), "cpu (%s, %d thread%s)", cpu_simd_level(), n,
		 n == 1 ? "" : "s");
	*ret = b;
	return 0;
}

void gi_backend_free(struct gi_backend *b)
{
	if (!b)
		return;
	cpu_pool_free(b->pool);
	free(b);
}

const char *gi_backend_name(const struct gi_backend *b)
{
	return b->name;
}

/* Backend memory comes from mmap: zero pages the kernel fills on first touch,
 * so an activation buffer sized for the largest step or a KV pool only
 * costs resident memory for what steps actually use. A 64-byte header holds
 * the mapping's length. */
#define MEM_HDR 64

int gi_backend_alloc(struct gi_backend *b, size_t bytes, void **ret)
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

void gi_backend_release(struct gi_backend *b, void *mem)
{
	if (!mem)
		return;
	uint8_t *p = (uint8_t *)mem - MEM_HDR;
	size_t len;
	memcpy(&len, p, sizeof(len));
	munmap(p, len);
}

int gi_backend_map(struct gi_backend *b, const void *host, size_t bytes, const void **ret)
{
	*ret = host;
	return 0;
}

int gi_backend_read(struct gi_backend *b, void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
	return 0;
}

int gi_backend_sync(struct gi_backend *b)
{
	return 0;
}
