/* gid's counters as served over the control socket (GI_MSG_STATS_REPLY):
 * a plain snapshot the engine thread fills, and its JSON and OpenMetrics
 * renderings. `gi stats --json` relies on the JSON keys named in DESIGN.md. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "daemon/tenant.h"

struct gid_tenant_stats {
	char name[TENANT_NAME_MAX];
	uint32_t sessions;
	uint32_t requests_running, requests_waiting;
	uint64_t requests_total;
	uint64_t tokens_prompt, tokens_generated;
	uint32_t kv_blocks;
	uint32_t weight;
};

struct gid_stats {
	char model[64];
	char backend[64];
	uint64_t uptime_ms;
	uint32_t sessions;
	uint64_t sessions_total;
	uint64_t protocol_errors;     /* sessions dropped for a violation */
	uint64_t requests_total;      /* SUBMITs accepted by the scheduler */
	uint64_t requests_rejected;   /* SUBMITs answered with an ERROR event */
	uint64_t requests_done;       /* ended with a DONE event, any reason */
	uint64_t requests_cancelled;
	uint64_t requests_stalled;    /* ended because the client stopped reading events */
	uint32_t requests_running, requests_waiting;
	uint64_t tokens_prompt, tokens_generated;
	uint64_t prefix_hit_tokens;
	uint64_t preemptions;
	uint64_t steps;
	uint32_t kv_blocks_total, kv_blocks_used, kv_blocks_cached, kv_blocks_free;
	uint32_t kv_block_tokens;
	uint32_t n_tenants;
	struct gid_tenant_stats tenants[TENANT_MAX];
};

/* Render S into BUF (CAP bytes, NUL-terminated). Return the length, or
 * -ENOSPC if it did not fit. */
int stats_format_json(const struct gid_stats *s, char *buf, size_t cap);
int stats_format_openmetrics(const struct gid_stats *s, char *buf, size_t cap);
