/* CPU backend internals shared by its files. */
#pragma once
#include "kernels/cpu/ops.h"
#include "kernels/cpu/pool.h"

struct gi_backend {
	struct cpu_pool *pool;
	const struct cpu_ops *ops;
	int n_threads;
	char name[64];
};
