/* Configuration: file keys, CLI overrides, error messages, tenant matching
 * and the SIGHUP reload function. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "tests/t_util.h"

static const char *write_conf(const char *text)
{
	static char path[512];
	char *d = t_tmpdir();
	ck_assert_ptr_nonnull(d);
	snprintf(path, sizeof(path), "%s/gid.conf", d);
	free(d);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char full_conf[] =
	"; gid test configuration\n"
	"[daemon]\n"
	"model = /models/a.gguf\n"
	"socket = /tmp/gid-test.sock\n"
	"socket_group = gid\n"
	"socket_mode = 0660\n"
	"device = cuda:1\n"
	"threads = 4\n"
	"ctx = 2048\n"
	"kv_mb = 512\n"
	"user = nobody\n"
	"max_sessions = 300\n"
	"max_batch_tokens = 1024\n"
	"max_running = 32\n"
	"shutdown_grace_ms = 100\n"
	"log_level = debug\n"
	"idle_spin_us = 50\n"
	"\n"
	"[tenant alice]\n"
	"match = uid:1000\n"
	"weight = 3\n"
	"max_inflight = 8\n"
	"max_kv_blocks = 100\n"
	"priority = interactive\n"
	"\n"
	"[tenant ci]\n"
	"match = cgroup:/system.slice/ci\n"
	"priority = batch\n"
	"\n"
	"[tenant ci-deep]\n"
	"match = cgroup:/system.slice/ci/job7\n"
	"allowed = no\n"
	"\n"
	"[tenant rest]\n"
	"match = default\n";

START_TEST(file_all_keys)
{
	const char *path = write_conf(full_conf);
	char *argv[] = { "gid", "--config", (char *)path, NULL };
	struct gid_config c;
	char err[512];
	ck_assert_msg(config_load(&c, 3, argv, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.config_path, path);
	ck_assert_str_eq(c.model, "/models/a.gguf");
	ck_assert_str_eq(c.socket, "/tmp/gid-test.sock");
	ck_assert_str_eq(c.socket_group, "gid");
	ck_assert_uint_eq(c.socket_mode, 0660);
	ck_assert_str_eq(c.device, "cuda:1");
	ck_assert_uint_eq(c.threads, 4);
	ck_assert_uint_eq(c.ctx, 2048);
	ck_assert_uint_eq(c.kv_mb, 512);
	ck_assert_str_eq(c.user, "nobody");
	ck_assert_uint_eq(c.max_sessions, 300);
	ck_assert_uint_eq(c.max_batch_tokens, 1024);
	ck_assert_uint_eq(c.max_running, 32);
	ck_assert_uint_eq(c.shutdown_grace_ms, 100);
	ck_assert_int_eq(c.log_level, CONFIG_LOG_DEBUG);
	ck_assert_uint_eq(c.idle_spin_us, 50);
	ck_assert_uint_eq(c.tenants.n, 4);
	const struct tenant_policy *a = &c.tenants.t[0];
	ck_assert_str_eq(a->name, "alice");
	ck_assert_int_eq(a->match, TENANT_MATCH_UID);
	ck_assert_uint_eq(a->uid, 1000);
	ck_assert_uint_eq(a->weight, 3);
	ck_assert_uint_eq(a->max_inflight, 8);
	ck_assert_uint_eq(a->max_kv_blocks, 100);
	ck_assert_int_eq(c.tenants.t[1].priority, TENANT_PRIO_BATCH);
	ck_assert_int_eq(a->priority, TENANT_PRIO_INTERACTIVE);
	ck_assert(!c.tenants.t[2].allowed);

	/* Matching: uid first, then the longest cgroup prefix on whole components, then default. */
	ck_assert_str_eq(tenant_table_match(&c.tenants, 1000, "/system.slice/ci")->name, "alice");
	ck_assert_str_eq(tenant_table_match(&c.tenants, 5, "/system.slice/ci/job3")->name, "ci");
	ck_assert_str_eq(tenant_table_match(&c.tenants, 5, "/system.slice/ci/job7/x")->name, "ci-deep");
	ck_assert_str_eq(tenant_table_match(&c.tenants, 5, "/system.slice/ci2")->name, "rest");
	ck_assert_str_eq(tenant_table_match(&c.tenants, 5, NULL)->name, "rest");
	ck_assert_int_eq(tenant_table_find(&c.tenants, "ci"), 1);
	ck_assert_int_eq(tenant_table_find(&c.tenants, "nope"), -ENOENT);
}
END_TEST

START_TEST(defaults_and_cli_override)
{
	const char *path = write_conf("[daemon]\nmodel = /m.gguf\nthreads = 4\nctx = 100\n");
	char cfgflag[600];
	snprintf(cfgflag, sizeof(cfgflag), "--config=%s", path);
	/* Flags before and after --config, both spellings: all override the file. */
	char *argv[] = { "gid", "--threads", "2", cfgflag, "--device", "cpu", "--ctx=512",
			 "--max-batch-tokens", "256", "--log-level", "err", NULL };
	struct gid_config c;
	char err[512];
	ck_assert_msg(config_load(&c, 11, argv, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.model, "/m.gguf");
	ck_assert_uint_eq(c.threads, 2);
	ck_assert_uint_eq(c.ctx, 512);
	ck_assert_str_eq(c.device, "cpu");
	ck_assert_uint_eq(c.max_batch_tokens, 256);
	ck_assert_int_eq(c.log_level, CONFIG_LOG_ERR);
	/* Untouched keys keep their defaults; no tenant section = one default tenant. */
	ck_assert_uint_eq(c.max_sessions, 256);
	ck_assert_uint_eq(c.max_running, 64);
	ck_assert_uint_eq(c.socket_mode, 0660);
	ck_assert_uint_eq(c.stall_timeout_ms, 30000);
	ck_assert_uint_eq(c.tenants.n, 1);
	ck_assert_str_eq(tenant_table_match(&c.tenants, 42, "/x")->name, "default");

	char *help[] = { "gid", "--help", NULL };
	ck_assert_int_eq(config_load(&c, 2, help, err, sizeof(err)), CONFIG_HELP);
	ck_assert_ptr_nonnull(strstr(config_usage(), "--max-running"));
}
END_TEST

/* Each bad input must fail with a message that contains every fragment. */
static const struct {
	const char *text;
	const char *frag[3];
} bad_files[] = {
	{ "[daemon]\nmodel = /m\nbogus = 1\n", { ":3:", "'bogus'", "unknown key" } },
	{ "[daemon]\nthreads = many\n", { ":2:", "'threads'", "'many'" } },
	{ "[daemon]\nctx = -5\n", { ":2:", "'ctx'", "[0, 1048576]" } },
	{ "[daemon]\nmax_running = 0\n", { ":2:", "max_running", "[1, 1024]" } },
	{ "[daemon]\nsocket_mode = 0999\n", { ":2:", "socket_mode", "octal" } },
	{ "[daemon]\nstall_timeout_ms = 86400001\n", { ":2:", "stall_timeout_ms", "[0, 86400000]" } },
	{ "[daemon]\ndevice = tpu\n", { ":2:", "'tpu'", "cuda:N" } },
	{ "[daemon]\nlog_level = loud\n", { ":2:", "log_level", "'loud'" } },
	{ "[daemon]\nthreads = 1\nthreads = 2\n", { ":3:", "threads", "twice" } },
	{ "\n\n[deamon]\nmodel = x\n", { ":4:", "[deamon]", "unknown section" } },
	{ "model = x\n", { ":1:", "outside a section", "'model'" } },
	{ "[tenant a]\nmatch = gid:5\n", { ":2:", "[tenant a]", "uid:N" } },
	{ "[tenant a]\nmatch = default\nweight = 0\n", { ":3:", "'weight'", "[1, 1000]" } },
	{ "[tenant a]\nmatch = default\npriority = urgent\n", { ":3:", "'urgent'", "batch" } },
	{ "[tenant a]\nmatch = default\nallowed = maybe\n", { ":3:", "allowed", "'maybe'" } },
	{ "[tenant a]\nmatch = default\ncolour = red\n", { ":3:", "colour", "unknown key" } },
	{ "[tenant a b]\nmatch = default\n", { ":2:", "tenant name", "a b" } },
	{ "[tenant a]\nweight = 2\n", { ":2:", "[tenant a]", "no 'match'" } },
	{ "[tenant a]\nmatch = uid:7\n[tenant b]\nmatch = uid:7\n", { ":4:", "[tenant b]", "[tenant a]" } },
	{ "[daemon]\nthis line has no equals sign\n", { ":2:", "syntax error", "" } },
};

START_TEST(bad_values)
{
	const char *path = write_conf(bad_files[_i].text);
	struct gid_config c;
	config_defaults(&c);
	char err[512] = "";
	ck_assert_int_eq(config_parse_file(&c, path, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, path), "no file name in '%s'", err);
	for (int k = 0; k < 3; k++)
		ck_assert_msg(strstr(err, bad_files[_i].frag[k]), "case %d: '%s' lacks '%s'", _i, err,
			      bad_files[_i].frag[k]);
	/* Nothing of a failed file is applied. */
	ck_assert_uint_eq(c.threads, 0);
	ck_assert_str_eq(c.model, "");
	ck_assert_uint_eq(c.tenants.n, 1);
}
END_TEST

START_TEST(bad_cli)
{
	struct gid_config c;
	char err[512];
	char *a1[] = { "gid", "--model", "/m", "--ctx", "lots", NULL };
	ck_assert_int_eq(config_load(&c, 5, a1, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "--ctx value 'lots'"));
	char *a2[] = { "gid", "--model", "/m", "--frobnicate", "1", NULL };
	ck_assert_int_eq(config_load(&c, 5, a2, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "--frobnicate"));
	char *a3[] = { "gid", "--model", NULL };
	ck_assert_int_eq(config_load(&c, 2, a3, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "missing value"));
	char *a4[] = { "gid", "--config", "/nonexistent/gid.conf", "--model", "/m", NULL };
	ck_assert_int_eq(config_load(&c, 5, a4, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/gid.conf"));
	char *a5[] = { "gid", "--max-running", "600", "--max-batch-tokens", "512", "--model", "/m", NULL };
	ck_assert_int_eq(config_load(&c, 7, a5, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "max_batch_tokens"));
}
END_TEST

START_TEST(reload_tenants)
{
	const char *path = write_conf(full_conf);
	struct tenant_table tt;
	char err[512];
	ck_assert_msg(config_reload_tenants(path, &tt, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(tt.n, 4);
	ck_assert_str_eq(tt.t[3].name, "rest");
	/* A broken file leaves the caller's table alone. */
	FILE *f = fopen(path, "a");
	fputs("[tenant x]\nweight = nine\n", f);
	fclose(f);
	struct tenant_table before = tt;
	ck_assert_int_eq(config_reload_tenants(path, &tt, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "'nine'"));
	ck_assert_mem_eq(&before, &tt, sizeof(tt));
}
END_TEST

START_TEST(string_source)
{
	struct gid_config c;
	config_defaults(&c);
	char err[256];
	ck_assert_int_eq(config_parse_string(&c, "inline", "[daemon]\nthreads=3\n[tenant t]\nmatch=uid:0\n",
					     err, sizeof(err)), 0);
	ck_assert_uint_eq(c.threads, 3);
	ck_assert_uint_eq(c.tenants.n, 1);
	ck_assert_str_eq(c.tenants.t[0].name, "t");
	/* Without a default tenant, an unknown peer matches nothing. */
	ck_assert_ptr_null(tenant_table_match(&c.tenants, 1, "/"));
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, file_all_keys);
	tcase_add_test(tc, defaults_and_cli_override);
	tcase_add_loop_test(tc, bad_values, 0, (int)(sizeof(bad_files) / sizeof(bad_files[0])));
	tcase_add_test(tc, bad_cli);
	tcase_add_test(tc, reload_tenants);
	tcase_add_test(tc, string_source);
	suite_add_tcase(s, tc);
	return s;
}
