/* Configuration: defaults, INI file (inih), command line. One key table
 * drives the file and the flags, so both accept exactly the same values. */
#include "daemon/config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type { K_STR, K_U32, K_MODE, K_LOG, K_DEVICE };

struct key_desc {
	const char *name;
	enum key_type type;
	size_t off;      /* offset in struct gid_config */
	size_t size;     /* K_STR: buffer size */
	uint32_t min, max;
};

#define STR(n, sz) { #n, K_STR, offsetof(struct gid_config, n), sz, 0, 0 }
#define U32(n, lo, hi) { #n, K_U32, offsetof(struct gid_config, n), 0, lo, hi }

static const struct key_desc daemon_keys[] = {
	STR(model, CONFIG_PATH_MAX),
	STR(socket, CONFIG_SOCKET_MAX),
	STR(socket_group, CONFIG_NAME_MAX),
	{ "socket_mode", K_MODE, offsetof(struct gid_config, socket_mode), 0, 0, 0777 },
	{ "device", K_DEVICE, offsetof(struct gid_config, device), CONFIG_NAME_MAX, 0, 0 },
	U32(threads, 0, 1024),
	U32(ctx, 0, 1u << 20),
	U32(kv_mb, 0, 1u << 24),
	STR(user, CONFIG_NAME_MAX),
	U32(max_sessions, 1, 65536),
	U32(max_batch_tokens, 16, 65536),
	U32(max_running, 1, 1024),
	U32(shutdown_grace_ms, 0, 3600000),
	{ "log_level", K_LOG, offsetof(struct gid_config, log_level), 0, 0, 0 },
	U32(idle_spin_us, 0, 1000000),
	U32(stall_timeout_ms, 0, 86400000),
};
#define N_DAEMON_KEYS (sizeof(daemon_keys) / sizeof(daemon_keys[0]))

static const char *const tenant_keys[] = {
	"match", "weight", "max_inflight", "max_kv_blocks", "priority", "allowed",
};
#define N_TENANT_KEYS (sizeof(tenant_keys) / sizeof(tenant_keys[0]))

static const char *const log_names[] = {
	[CONFIG_LOG_ERR] = "err", [CONFIG_LOG_WARNING] = "warning", [CONFIG_LOG_NOTICE] = "notice",
	[CONFIG_LOG_INFO] = "info", [CONFIG_LOG_DEBUG] = "debug",
};

struct parse {
	struct gid_config *c;
	const char *name;         /* file name for messages */
	unsigned line, next_line; /* line of the text being handled, reader bookkeeping */
	FILE *f;                  /* file reader */
	const char *text;         /* string reader */
	char *err;
	size_t errlen;
	bool failed;
	bool tenants_seen;        /* first [tenant] replaces the built-in table */
	uint32_t daemon_seen;     /* bit per daemon key */
	uint32_t tenant_seen[TENANT_MAX];  /* bit per tenant key */
	unsigned tenant_line[TENANT_MAX];  /* first line of each tenant section */
};

void config_defaults(struct gid_config *c)
{
	memset(c, 0, sizeof(*c));
	const char *sock = getenv("GI_SOCKET");
	snprintf(c->socket, sizeof(c->socket), "%s",
		 sock && *sock && strlen(sock) < sizeof(c->socket) ? sock : CONFIG_DEFAULT_SOCKET);
	c->socket_mode = 0660;
	snprintf(c->device, sizeof(c->device), "auto");
	snprintf(c->user, sizeof(c->user), "gid");
	c->max_sessions = 256;
	c->max_batch_tokens = 512;
	c->max_running = 64;
	c->shutdown_grace_ms = 5000;
	c->stall_timeout_ms = 30000;
	c->log_level = CONFIG_LOG_INFO;
	c->idle_spin_us = 20;
	tenant_table_init_default(&c->tenants);
}

static int parse_u32(const char *v, int base, uint32_t *ret)
{
	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, base);
	if (errno || *end || x > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)x;
	return 0;
}

static int parse_bool(const char *v, bool *ret)
{
	static const char *const t[] = { "true", "yes", "on", "1" }, *const f[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(v, t[i])) {
			*ret = true;
			return 0;
		}
		if (!strcmp(v, f[i])) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

static bool valid_device(const char *v)
{
	if (!strcmp(v, "auto") || !strcmp(v, "cpu") || !strcmp(v, "cuda"))
		return true;
	uint32_t n;
	return !strncmp(v, "cuda:", 5) && parse_u32(v + 5, 10, &n) == 0 && n < 64;
}

/* Sets daemon key D from V; on failure writes the reason to WHY. */
static int set_daemon_key(struct gid_config *c, const struct key_desc *d, const char *v,
			  char *why, size_t whylen)
{
	char *p = (char *)c + d->off;
	uint32_t x;
	switch (d->type) {
	case K_STR:
		if (strlen(v) >= d->size) {
			snprintf(why, whylen, "longer than %zu bytes", d->size - 1);
			return -EINVAL;
		}
		snprintf(p, d->size, "%s", v);
		return 0;
	case K_DEVICE:
		if (!valid_device(v)) {
			snprintf(why, whylen, "expected auto, cpu, cuda or cuda:N");
			return -EINVAL;
		}
		snprintf(p, d->size, "%s", v);
		return 0;
	case K_U32:
	case K_MODE:
		if (parse_u32(v, d->type == K_MODE ? 8 : 10, &x) || x < d->min || x > d->max) {
			if (d->type == K_MODE)
				snprintf(why, whylen, "expected an octal mode up to 0777");
			else
				snprintf(why, whylen, "expected an integer in [%u, %u]", d->min, d->max);
			return -EINVAL;
		}
		memcpy(p, &x, sizeof(x));
		return 0;
	case K_LOG:
		for (int l = CONFIG_LOG_ERR; l <= CONFIG_LOG_DEBUG; l++) {
			if (!strcmp(v, log_names[l])) {
				c->log_level = (enum config_log_level)l;
				return 0;
			}
		}
		snprintf(why, whylen, "expected err, warning, notice, info or debug");
		return -EINVAL;
	}
	return -EINVAL;
}

static int set_tenant_key(struct tenant_policy *t, size_t key, const char *v, char *why, size_t whylen)
{
	uint32_t x;
	switch (key) {
	case 0: /* match */
		if (!strcmp(v, "default")) {
			t->match = TENANT_MATCH_DEFAULT;
		} else if (!strncmp(v, "uid:", 4) && parse_u32(v + 4, 10, &x) == 0 && x != UINT32_MAX) {
			t->match = TENANT_MATCH_UID;
			t->uid = x;
		} else if (!strncmp(v, "cgroup:/", 8) && strlen(v + 7) < sizeof(t->cgroup)) {
			t->match = TENANT_MATCH_CGROUP;
			snprintf(t->cgroup, sizeof(t->cgroup), "%s", v + 7);
		} else {
			snprintf(why, whylen, "expected uid:N, cgroup:/PATH (< %zu bytes) or default",
				 sizeof(t->cgroup));
			return -EINVAL;
		}
		return 0;
	case 1: /* weight */
		if (parse_u32(v, 10, &x) || x < 1 || x > TENANT_WEIGHT_MAX) {
			snprintf(why, whylen, "expected an integer in [1, %u]", TENANT_WEIGHT_MAX);
			return -EINVAL;
		}
		t->weight = x;
		return 0;
	case 2: /* max_inflight */
	case 3: /* max_kv_blocks */
		if (parse_u32(v, 10, &x) || x > (1u << 24)) {
			snprintf(why, whylen, "expected an integer in [0, %u] (0 = no limit)", 1u << 24);
			return -EINVAL;
		}
		*(key == 2 ? &t->max_inflight : &t->max_kv_blocks) = x;
		return 0;
	case 4: /* priority */
		if (tenant_prio_parse(v, &t->priority)) {
			snprintf(why, whylen, "expected interactive or batch");
			return -EINVAL;
		}
		return 0;
	case 5: /* allowed */
		if (parse_bool(v, &t->allowed)) {
			snprintf(why, whylen, "expected true or false");
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static bool valid_tenant_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len >= TENANT_NAME_MAX)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
		      *n == '_' || *n == '-' || *n == '.'))
			return false;
	return true;
}

static int fail(struct parse *p, const char *section, const char *key, const char *val,
		const char *why)
{
	if (!p->failed)
		snprintf(p->err, p->errlen, "%s:%u: [%s] key '%s' value '%s': %s", p->name, p->line,
			 section, key, val, why);
	p->failed = true;
	return 0;
}

static int tenant_slot(struct parse *p, const char *name)
{
	struct tenant_table *tt = &p->c->tenants;
	if (!p->tenants_seen) {
		tt->n = 0;
		p->tenants_seen = true;
	}
	int i = tenant_table_find(tt, name);
	if (i >= 0)
		return i;
	if (tt->n == TENANT_MAX)
		return -ENOSPC;
	i = (int)tt->n++;
	tenant_policy_init(&tt->t[i], name);
	p->tenant_seen[i] = 0;
	p->tenant_line[i] = p->line;
	return i;
}

static int handler(void *user, const char *section, const char *key, const char *val)
{
	struct parse *p = user;
	char why[160];
	if (!strcmp(section, "daemon")) {
		for (size_t i = 0; i < N_DAEMON_KEYS; i++) {
			if (strcmp(key, daemon_keys[i].name))
				continue;
			if (p->daemon_seen & (1u << i))
				return fail(p, section, key, val, "key given twice");
			if (set_daemon_key(p->c, &daemon_keys[i], val, why, sizeof(why)))
				return fail(p, section, key, val, why);
			p->daemon_seen |= 1u << i;
			return 1;
		}
		return fail(p, section, key, val, "unknown key");
	}
	if (!strncmp(section, "tenant ", 7)) {
		const char *name = section + 7;
		while (*name == ' ')
			name++;
		if (!valid_tenant_name(name))
			return fail(p, section, key, val,
				    "tenant name must be 1-63 characters of A-Z a-z 0-9 _ - .");
		int t = tenant_slot(p, name);
		if (t < 0)
			return fail(p, section, key, val, "more than 64 tenants");
		for (size_t i = 0; i < N_TENANT_KEYS; i++) {
			if (strcmp(key, tenant_keys[i]))
				continue;
			if (p->tenant_seen[t] & (1u << i))
				return fail(p, section, key, val, "key given twice");
			if (set_tenant_key(&p->c->tenants.t[t], i, val, why, sizeof(why)))
				return fail(p, section, key, val, why);
			p->tenant_seen[t] |= 1u << i;
			return 1;
		}
		return fail(p, section, key, val, "unknown key");
	}
	return fail(p, section, key, val,
		    *section ? "unknown section (expected [daemon] or [tenant NAME])"
			     : "key outside a section");
}

/* Checks what no single key can: every tenant has a match, no two tenants
 * match the same peers. */
static int check_tenants(struct parse *p)
{
	const struct tenant_table *tt = &p->c->tenants;
	if (!p->tenants_seen)
		return 0;
	for (uint32_t i = 0; i < tt->n; i++) {
		const struct tenant_policy *a = &tt->t[i];
		if (!(p->tenant_seen[i] & 1u)) {
			snprintf(p->err, p->errlen, "%s:%u: [tenant %s]: no 'match' key", p->name,
				 p->tenant_line[i], a->name);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			const struct tenant_policy *b = &tt->t[j];
			if (a->match != b->match ||
			    (a->match == TENANT_MATCH_UID && a->uid != b->uid) ||
			    (a->match == TENANT_MATCH_CGROUP && strcmp(a->cgroup, b->cgroup)))
				continue;
			snprintf(p->err, p->errlen, "%s:%u: [tenant %s]: matches the same peers as [tenant %s] (line %u)",
				 p->name, p->tenant_line[i], a->name, b->name, p->tenant_line[j]);
			return -EINVAL;
		}
	}
	return 0;
}

/* fgets-style readers that count lines, so the handler knows its line. */
static char *next_chunk(struct parse *p, char *buf, int num)
{
	if (p->f)
		return fgets(buf, num, p->f);
	if (!*p->text)
		return NULL;
	int n = 0;
	while (n < num - 1 && p->text[n] && (n == 0 || p->text[n - 1] != '\n'))
		n++;
	memcpy(buf, p->text, (size_t)n);
	buf[n] = 0;
	p->text += n;
	return buf;
}

static char *reader(char *buf, int num, void *stream)
{
	struct parse *p = stream;
	char *r = next_chunk(p, buf, num);
	if (!r)
		return NULL;
	p->line = p->next_line;
	size_t len = strlen(r);
	if (len && r[len - 1] == '\n')
		p->next_line++;
	return r;
}

static int run_parse(struct gid_config *c, const char *name, FILE *f, const char *text,
		     char *err, size_t errlen)
{
	struct gid_config *work = malloc(sizeof(*work));
	struct parse *p = calloc(1, sizeof(*p));
	int ret = -ENOMEM;
	if (!work || !p)
		goto out;
	*work = *c;
	p->c = work;
	p->name = name;
	p->next_line = 1;
	p->f = f;
	p->text = text;
	p->err = err;
	p->errlen = errlen;
	int r = ini_parse_stream(reader, p, handler, p);
	if (p->failed) {
		ret = -EINVAL;
	} else if (r > 0) {
		snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", name, r);
		ret = -EINVAL;
	} else if (r < 0) {
		snprintf(err, errlen, "%s: out of memory", name);
	} else if (!(ret = check_tenants(p))) {
		*c = *work;
	}
out:
	free(work);
	free(p);
	return ret;
}

int config_parse_string(struct gid_config *c, const char *name, const char *text,
			char *err, size_t errlen)
{
	return run_parse(c, name, NULL, text, err, errlen);
}

int config_parse_file(struct gid_config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	int ret = run_parse(c, path, f, NULL, err, errlen);
	fclose(f);
	return ret;
}

int config_reload_tenants(const char *path, struct tenant_table *ret, char *err, size_t errlen)
{
	struct gid_config *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	config_defaults(c);
	int r = config_parse_file(c, path, err, errlen);
	if (!r)
		*ret = c->tenants;
	free(c);
	return r;
}

/* "--max-batch-tokens" -> "max_batch_tokens"; NULL if not a daemon key flag. */
static const struct key_desc *flag_key(const char *flag, size_t len)
{
	char name[40];
	if (len >= sizeof(name))
		return NULL;
	for (size_t i = 0; i < len; i++)
		name[i] = flag[i] == '-' ? '_' : flag[i];
	name[len] = 0;
	for (size_t i = 0; i < N_DAEMON_KEYS; i++)
		if (!strcmp(name, daemon_keys[i].name))
			return &daemon_keys[i];
	return NULL;
}

/* Splits "--name=value" / "--name value". Returns the index of the last
 * argument used, or -1 (message in ERR). */
static int split_flag(int argc, char *const *argv, int i, const char **ret_name, size_t *ret_len,
		      const char **ret_val, char *err, size_t errlen)
{
	const char *a = argv[i] + 2, *eq = strchr(a, '=');
	*ret_name = a;
	*ret_len = eq ? (size_t)(eq - a) : strlen(a);
	if (eq) {
		*ret_val = eq + 1;
		return i;
	}
	if (i + 1 >= argc) {
		snprintf(err, errlen, "command line: %s: missing value", argv[i]);
		return -1;
	}
	*ret_val = argv[i + 1];
	return i + 1;
}

int config_load(struct gid_config *c, int argc, char *const *argv, char *err, size_t errlen)
{
	struct gid_config *work = malloc(sizeof(*work));
	if (!work)
		return -ENOMEM;
	config_defaults(work);
	const char *path = NULL, *name, *val;
	size_t len;
	int ret = -EINVAL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			ret = CONFIG_HELP;
			goto out;
		}
		if (strncmp(argv[i], "--", 2)) {
			snprintf(err, errlen, "command line: unexpected argument '%s'", argv[i]);
			goto out;
		}
		int last = split_flag(argc, argv, i, &name, &len, &val, err, errlen);
		if (last < 0)
			goto out;
		if (len == 6 && !strncmp(name, "config", 6))
			path = val;
		else if (!flag_key(name, len)) {
			snprintf(err, errlen, "command line: unknown flag '--%.*s'", (int)len, name);
			goto out;
		}
		i = last;
	}
	if (path) {
		ret = config_parse_file(work, path, err, errlen);
		if (ret)
			goto out;
		snprintf(work->config_path, sizeof(work->config_path), "%s", path);
	} else {
		ret = config_parse_file(work, CONFIG_DEFAULT_PATH, err, errlen);
		if (ret == 0)
			snprintf(work->config_path, sizeof(work->config_path), "%s", CONFIG_DEFAULT_PATH);
		else if (ret != -ENOENT)
			goto out;
	}
	ret = -EINVAL;
	for (int i = 1; i < argc; i++) {
		int last = split_flag(argc, argv, i, &name, &len, &val, err, errlen);
		const struct key_desc *d = flag_key(name, len);
		char why[160];
		if (d && set_daemon_key(work, d, val, why, sizeof(why))) {
			snprintf(err, errlen, "command line: --%.*s value '%s': %s", (int)len, name, val, why);
			goto out;
		}
		i = last;
	}
	if (!work->model[0]) {
		snprintf(err, errlen, "no model: set [daemon] model in %s or pass --model",
			 path ? path : CONFIG_DEFAULT_PATH);
		goto out;
	}
	if (work->max_batch_tokens <= work->max_running) {
		snprintf(err, errlen, "max_batch_tokens %u must exceed max_running %u (each running sequence decodes one token per step)",
			 work->max_batch_tokens, work->max_running);
		goto out;
	}
	*c = *work;
	ret = 0;
out:
	free(work);
	return ret;
}

const char *config_usage(void)
{
	return "  --config FILE           configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	       "  --model PATH            GGUF model to serve\n"
	       "  --socket PATH           control socket (default $GI_SOCKET or " CONFIG_DEFAULT_SOCKET ")\n"
	       "  --socket-group NAME     group owning the socket\n"
	       "  --socket-mode MODE      socket permissions, octal (default 0660)\n"
	       "  --device DEV            auto, cpu, cuda or cuda:N (default auto)\n"
	       "  --threads N             CPU backend threads (0 = all CPUs)\n"
	       "  --ctx N                 context length per sequence (0 = the model's)\n"
	       "  --kv-mb N               KV cache pool size in MiB (0 = automatic)\n"
	       "  --user NAME             user to run as after setup (default gid)\n"
	       "  --max-sessions N        concurrent client sessions (default 256)\n"
	       "  --max-batch-tokens N    tokens per engine step (default 512)\n"
	       "  --max-running N         sequences per engine step (default 64)\n"
	       "  --shutdown-grace-ms N   time running requests get on shutdown (default 5000)\n"
	       "  --log-level LEVEL       err, warning, notice, info or debug (default info)\n"
	       "  --idle-spin-us N        engine spin before sleeping (default 20)\n"
	       "  --stall-timeout-ms N    end requests of a client that stops reading events\n"
	       "                          for this long (default 30000, 0 = never)\n"
	       "  --help                  this text\n";
}
