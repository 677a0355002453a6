/* JSON and OpenMetrics renderings of struct gid_stats (see stats_json.h). */
#include "daemon/stats_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

/* A JSON string; names come from config and model metadata, so escape. */
static void put_str(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

static int finish(struct out *o)
{
	if (o->full || o->cap == 0)
		return -ENOSPC;
	o->buf[o->len] = 0;
	return (int)o->len;
}

int stats_format_json(const struct gid_stats *s, char *buf, size_t cap)
{
	struct out o = { .buf = buf, .cap = cap };
	put(&o, "{\"model\":");
	put_str(&o, s->model);
	put(&o, ",\"backend\":");
	put_str(&o, s->backend);
	put(&o, ",\"uptime_ms\":%" PRIu64 ",\"sessions\":%u,\"sessions_total\":%" PRIu64
		",\"protocol_errors\":%" PRIu64 ",\"requests_total\":%" PRIu64
		",\"requests_rejected\":%" PRIu64 ",\"requests_done\":%" PRIu64
		",\"requests_cancelled\":%" PRIu64 ",\"requests_stalled\":%" PRIu64 ",\"requests_running\":%u,\"requests_waiting\":%u"
		",\"tokens_prompt\":%" PRIu64 ",\"tokens_generated\":%" PRIu64
		",\"prefix_hit_tokens\":%" PRIu64 ",\"preemptions\":%" PRIu64 ",\"steps\":%" PRIu64
		",\"kv_block_tokens\":%u,\"kv_blocks_total\":%u,\"kv_blocks_used\":%u"
		",\"kv_blocks_cached\":%u,\"kv_blocks_free\":%u,\"tenants\":[",
	    s->uptime_ms, s->sessions, s->sessions_total, s->protocol_errors, s->requests_total,
	    s->requests_rejected, s->requests_done, s->requests_cancelled, s->requests_stalled,
	    s->requests_running,
	    s->requests_waiting, s->tokens_prompt, s->tokens_generated, s->prefix_hit_tokens,
	    s->preemptions, s->steps, s->kv_block_tokens, s->kv_blocks_total, s->kv_blocks_used,
	    s->kv_blocks_cached, s->kv_blocks_free);
	for (uint32_t i = 0; i < s->n_tenants && i < TENANT_MAX; i++) {
		const struct gid_tenant_stats *t = &s->tenants[i];
		put(&o, "%s{\"name\":", i ? "," : "");
		put_str(&o, t->name);
		put(&o, ",\"weight\":%u,\"sessions\":%u,\"requests_running\":%u,\"requests_waiting\":%u"
			",\"requests_total\":%" PRIu64 ",\"tokens_prompt\":%" PRIu64
			",\"tokens_generated\":%" PRIu64 ",\"kv_blocks\":%u}",
		    t->weight, t->sessions, t->requests_running, t->requests_waiting, t->requests_total,
		    t->tokens_prompt, t->tokens_generated, t->kv_blocks);
	}
	put(&o, "]}\n");
	return finish(&o);
}

static void metric(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
	const char *suffix = type[0] == 'c' ? "_total" : "";
	put(o, "# TYPE gid_%s %s\n# HELP gid_%s %s\ngid_%s%s %" PRIu64 "\n", name, type, name, help,
	    name, suffix, v);
}

/* Label values: escape backslash, quote and newline as OpenMetrics asks. */
static void put_label(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			put(o, "\\%c", *s);
		else if (*s == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *s);
	}
}

static void tenant_metric(struct out *o, const struct gid_stats *s, const char *name,
			  const char *type, const char *help, size_t field_off, bool wide)
{
	const char *suffix = type[0] == 'c' ? "_total" : "";
	put(o, "# TYPE gid_tenant_%s %s\n# HELP gid_tenant_%s %s\n", name, type, name, help);
	for (uint32_t i = 0; i < s->n_tenants && i < TENANT_MAX; i++) {
		const char *base = (const char *)&s->tenants[i];
		uint64_t v;
		if (wide)
			v = *(const uint64_t *)(const void *)(base + field_off);
		else
			v = *(const uint32_t *)(const void *)(base + field_off);
		put(o, "gid_tenant_%s%s{tenant=\"", name, suffix);
		put_label(o, s->tenants[i].name);
		put(o, "\"} %" PRIu64 "\n", v);
	}
}

int stats_format_openmetrics(const struct gid_stats *s, char *buf, size_t cap)
{
	struct out o = { .buf = buf, .cap = cap };
	metric(&o, "uptime_seconds", "gauge", "Seconds since gid started.", s->uptime_ms / 1000);
	metric(&o, "sessions", "gauge", "Connected client sessions.", s->sessions);
	metric(&o, "sessions_accepted", "counter", "Client sessions accepted.", s->sessions_total);
	metric(&o, "protocol_errors", "counter", "Sessions dropped for protocol violations.", s->protocol_errors);
	metric(&o, "requests", "counter", "Requests accepted by the scheduler.", s->requests_total);
	metric(&o, "requests_rejected", "counter", "Requests answered with an error event.", s->requests_rejected);
	metric(&o, "requests_done", "counter", "Requests finished (any reason).", s->requests_done);
	metric(&o, "requests_cancelled", "counter", "Requests cancelled.", s->requests_cancelled);
	metric(&o, "requests_stalled", "counter", "Requests ended because their client stopped reading events.",
	       s->requests_stalled);
	metric(&o, "requests_running", "gauge", "Sequences in the running batch.", s->requests_running);
	metric(&o, "requests_waiting", "gauge", "Requests queued for admission.", s->requests_waiting);
	metric(&o, "tokens_prompt", "counter", "Prompt tokens prefilled.", s->tokens_prompt);
	metric(&o, "tokens_generated", "counter", "Tokens generated.", s->tokens_generated);
	metric(&o, "prefix_hit_tokens", "counter", "Prompt tokens served from the prefix cache.", s->prefix_hit_tokens);
	metric(&o, "preemptions", "counter", "Sequences preempted for KV blocks.", s->preemptions);
	metric(&o, "engine_steps", "counter", "Engine forward steps.", s->steps);
	metric(&o, "kv_blocks_capacity", "gauge", "KV cache blocks in the pool.", s->kv_blocks_total);
	metric(&o, "kv_blocks_used", "gauge", "KV cache blocks held by sequences.", s->kv_blocks_used);
	metric(&o, "kv_blocks_cached", "gauge", "Free KV blocks still holding a cached prefix.", s->kv_blocks_cached);
	metric(&o, "kv_blocks_free", "gauge", "Free KV blocks.", s->kv_blocks_free);
	tenant_metric(&o, s, "sessions", "gauge", "Sessions per tenant.",
		      offsetof(struct gid_tenant_stats, sessions), false);
	tenant_metric(&o, s, "requests_running", "gauge", "Running sequences per tenant.",
		      offsetof(struct gid_tenant_stats, requests_running), false);
	tenant_metric(&o, s, "requests_waiting", "gauge", "Queued requests per tenant.",
		      offsetof(struct gid_tenant_stats, requests_waiting), false);
	tenant_metric(&o, s, "requests", "counter", "Requests per tenant.",
		      offsetof(struct gid_tenant_stats, requests_total), true);
	tenant_metric(&o, s, "tokens_generated", "counter", "Tokens generated per tenant.",
		      offsetof(struct gid_tenant_stats, tokens_generated), true);
	tenant_metric(&o, s, "kv_blocks", "gauge", "KV blocks held per tenant.",
		      offsetof(struct gid_tenant_stats, kv_blocks), false);
	put(&o, "# EOF\n");
	return finish(&o);
}
