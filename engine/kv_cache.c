/* The paged KV pool in backend memory. Block ownership is the caller's
 * (daemon/ or the tools): this file only sizes and holds the memory. */
#include <errno.h>
#include <stdlib.h>

#include "engine/model_impl.h"

int kv_cache_create(struct model *m, uint32_t n_blocks, struct kv_cache **ret)
{
	if (!n_blocks)
		return -EINVAL;
	struct kv_cache *kv = calloc(1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	kv->m = m;
	size_t bytes = gi_kv_pool_layout(&kv->pool, m->kv_type, m->info.n_layer, n_blocks,
					 KV_BLOCK_TOKENS, m->info.n_head_kv, m->info.head_dim);
	if (!bytes ||
	    gi_backend_alloc(m->be, bytes, &kv->pool.k) ||
	    gi_backend_alloc(m->be, bytes, &kv->pool.v)) {
		kv_cache_free(kv);
		return -ENOMEM;
	}
	*ret = kv;
	return 0;
}

void kv_cache_free(struct kv_cache *kv)
{
	if (!kv)
		return;
	gi_backend_release(kv->m->be, kv->pool.k);
	gi_backend_release(kv->m->be, kv->pool.v);
	free(kv);
}

uint32_t kv_cache_n_blocks(const struct kv_cache *kv)
{
	return kv->pool.n_blocks;
}
