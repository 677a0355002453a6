/* Tenants: who a peer is (a uid or a cgroup, per config) and the policy that
 * applies to it. A table is a plain value: built by config.c, copied freely,
 * handed to the scheduler with sched_set_tenants(), which swaps it in at a
 * step boundary. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TENANT_MAX 64
#define TENANT_NAME_MAX 64
#define TENANT_CGROUP_MAX 256
#define TENANT_WEIGHT_MAX 1000

enum tenant_prio {
	TENANT_PRIO_INTERACTIVE = 0,
	TENANT_PRIO_BATCH = 1,
};
#define TENANT_N_PRIO 2

enum tenant_match {
	TENANT_MATCH_DEFAULT = 0, /* every peer no other tenant matches */
	TENANT_MATCH_UID,         /* the peer's uid (SO_PEERCRED) */
	TENANT_MATCH_CGROUP,      /* the peer's cgroup path starts with this prefix (whole components) */
};

struct tenant_policy {
	char name[TENANT_NAME_MAX];
	enum tenant_match match;
	uint32_t uid;                     /* TENANT_MATCH_UID */
	char cgroup[TENANT_CGROUP_MAX];   /* TENANT_MATCH_CGROUP, starts with '/' */
	uint32_t weight;                  /* 1..TENANT_WEIGHT_MAX: share of prefill tokens and running slots */
	uint32_t max_inflight;            /* requests waiting or running; 0 = no limit */
	uint32_t max_kv_blocks;           /* KV blocks held by its running sequences; 0 = no limit */
	enum tenant_prio priority;
	bool allowed;
};

struct tenant_table {
	uint32_t n;
	struct tenant_policy t[TENANT_MAX];
};

/* A table holding one tenant "default" that matches everyone: weight 1,
 * interactive, no limits, allowed. */
void tenant_table_init_default(struct tenant_table *tt);

/* Policy defaults for a new named tenant (weight 1, interactive, no limits,
 * allowed, match unset = default). */
void tenant_policy_init(struct tenant_policy *p, const char *name);

/* The policy for a peer: a uid match first, then the longest cgroup prefix
 * (CGROUP may be NULL), then the default tenant. NULL if nothing matches
 * (a table without a default tenant). */
const struct tenant_policy *tenant_table_match(const struct tenant_table *tt, uint32_t uid,
					       const char *cgroup);

/* Index of the tenant called NAME, or -ENOENT. */
int tenant_table_find(const struct tenant_table *tt, const char *name);

/* Parses "interactive" / "batch". -EINVAL otherwise. */
int tenant_prio_parse(const char *s, enum tenant_prio *ret);
