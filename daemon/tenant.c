/* Tenant tables: defaults, peer matching, look-up by name. */
#include "daemon/tenant.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void tenant_policy_init(struct tenant_policy *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->match = TENANT_MATCH_DEFAULT;
	p->weight = 1;
	p->priority = TENANT_PRIO_INTERACTIVE;
	p->allowed = true;
}

void tenant_table_init_default(struct tenant_table *tt)
{
	memset(tt, 0, sizeof(*tt));
	tenant_policy_init(&tt->t[0], "default");
	tt->n = 1;
}

/* True if PATH is PREFIX or lies below it ("/a/b" is under "/a", "/ab" is not). */
static bool cgroup_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	while (n > 1 && prefix[n - 1] == '/')
		n--;
	if (strncmp(path, prefix, n))
		return false;
	return path[n] == 0 || path[n] == '/' || (n == 1 && prefix[0] == '/');
}

const struct tenant_policy *tenant_table_match(const struct tenant_table *tt, uint32_t uid,
					       const char *cgroup)
{
	const struct tenant_policy *best_cg = NULL, *def = NULL;
	size_t best_len = 0;
	for (uint32_t i = 0; i < tt->n; i++) {
		const struct tenant_policy *p = &tt->t[i];
		switch (p->match) {
		case TENANT_MATCH_UID:
			if (p->uid == uid)
				return p;
			break;
		case TENANT_MATCH_CGROUP:
			if (cgroup && cgroup_under(cgroup, p->cgroup)) {
				size_t len = strlen(p->cgroup);
				if (!best_cg || len > best_len) {
					best_cg = p;
					best_len = len;
				}
			}
			break;
		case TENANT_MATCH_DEFAULT:
			if (!def)
				def = p;
			break;
		}
	}
	return best_cg ? best_cg : def;
}

int tenant_table_find(const struct tenant_table *tt, const char *name)
{
	for (uint32_t i = 0; i < tt->n; i++)
		if (!strcmp(tt->t[i].name, name))
			return (int)i;
	return -ENOENT;
}

int tenant_prio_parse(const char *s, enum tenant_prio *ret)
{
	if (!strcmp(s, "interactive"))
		*ret = TENANT_PRIO_INTERACTIVE;
	else if (!strcmp(s, "batch"))
		*ret = TENANT_PRIO_BATCH;
	else
		return -EINVAL;
	return 0;
}
