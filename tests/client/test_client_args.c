/* libgiclient without a daemon: argument validation, size-prefixed options,
 * error names, connect failures that leak nothing and say why. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/giclient.h"
#include "tests/t_util.h"

static char logged[1024];

static void log_cb(void *user, int level, const char *msg)
{
	(void)user;
	(void)level;
	snprintf(logged, sizeof(logged), "%s", msg);
}

static struct gi_conn_opts opts_missing(void)
{
	struct gi_conn_opts o = {
		.size = sizeof(o),
		.socket_path = "/nonexistent/gid-test.sock",
		.log = log_cb,
	};
	return o;
}

START_TEST(strerror_names_every_code)
{
	for (int c = GI_ERR_BASE; c < GI_ERR_MAX_; c++) {
		ck_assert_str_ne(gi_strerror(-c), "unknown error");
		ck_assert_str_eq(gi_strerror(-c), gi_strerror(c));
	}
	ck_assert_str_eq(gi_strerror(0), "success");
	ck_assert_ptr_nonnull(strstr(gi_strerror(-ECONNRESET), "daemon"));
	ck_assert_str_eq(gi_strerror(-ENOENT), "No such file or directory");
	ck_assert_str_eq(gi_strerror(-GI_ERR_MAX_), "unknown error");
	ck_assert_str_eq(gi_strerror(-100000), "unknown error");
	ck_assert_str_eq(gi_strerror(INT_MIN), "unknown error");
	ck_assert_str_eq(gi_strerror(INT_MAX), "unknown error");
	ck_assert_str_eq(gi_finish_name(GI_FINISH_REASON_LENGTH), "length");
	ck_assert_str_eq(gi_finish_name(GI_FINISH_REASON_STOP), "stop");
	ck_assert_str_eq(gi_finish_name(0), "unknown");
	ck_assert_str_eq(gi_finish_name(99), "unknown");
}
END_TEST

START_TEST(null_arguments)
{
	struct gi_event ev;
	struct gi_model_info mi;
	char *text;

	ck_assert_int_eq(gi_conn_open(NULL, NULL), -EINVAL);
	gi_conn_close(NULL);
	ck_assert_int_eq(gi_conn_fd(NULL), -EINVAL);
	ck_assert_int_eq(gi_conn_process(NULL), -EINVAL);
	ck_assert_uint_eq(gi_conn_inflight(NULL), 0);
	ck_assert_int_eq(gi_model_info(NULL, &mi), -EINVAL);
	ck_assert_int_eq(gi_event_next(NULL, &ev, 0), -EINVAL);
	ck_assert_int_eq(gi_gen_text(NULL, "x", 1, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_gen_chat(NULL, NULL, 0, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_gen_tokens(NULL, NULL, 0, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_req_nop(NULL, 0, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(gi_req_cancel(NULL, 1), -EINVAL);
	ck_assert_int_eq(gi_tokenize(NULL, "x", 1, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(gi_tokenize_chat(NULL, NULL, 0, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(gi_stats(NULL, GI_STATS_JSON, &text, NULL), -EINVAL);
}
END_TEST

START_TEST(missing_socket_is_enoent_and_named)
{
	struct gi_conn_opts o = opts_missing();
	struct gi_conn *c = (struct gi_conn *)0x1;
	int fds = t_count_fds();

	logged[0] = 0;
	ck_assert_int_eq(gi_conn_open(&o, &c), -ENOENT);
	ck_assert_ptr_eq(c, (struct gi_conn *)0x1); /* ret_ written only on success */
	ck_assert_ptr_nonnull(strstr(logged, "/nonexistent/gid-test.sock"));
	ck_assert_int_eq(t_count_fds(), fds);
}
END_TEST

START_TEST(socket_from_environment)
{
	struct gi_conn_opts o = opts_missing();
	struct gi_conn *c;

	o.socket_path = NULL;
	setenv("GI_SOCKET", "/nonexistent/from-env.sock", 1);
	logged[0] = 0;
	ck_assert_int_eq(gi_conn_open(&o, &c), -ENOENT);
	ck_assert_ptr_nonnull(strstr(logged, "/nonexistent/from-env.sock"));
	unsetenv("GI_SOCKET");
}
END_TEST

/* The conn options as a newer caller would pass them: ours plus a tail. */
struct newer_opts {
	struct gi_conn_opts o;
	uint64_t future_field;
};

START_TEST(conn_opts_size_rules)
{
	struct gi_conn_opts o = opts_missing();
	struct newer_opts n = { .o = opts_missing() };
	struct gi_conn *c;

	o.size = 0;
	ck_assert_int_eq(gi_conn_open(&o, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(logged, "size"));

	/* An older caller's smaller struct: the fields it lacks read as zero. */
	o = opts_missing();
	o.size = offsetof(struct gi_conn_opts, sq_entries);
	ck_assert_int_eq(gi_conn_open(&o, &c), -ENOENT);

	/* A newer caller: a zero tail is fine, a non-zero one is refused. */
	n.o.size = sizeof(n);
	ck_assert_int_eq(gi_conn_open(&n.o, &c), -ENOENT);
	n.future_field = 1;
	logged[0] = 0;
	ck_assert_int_eq(gi_conn_open(&n.o, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(logged, "not zero"));
}
END_TEST

START_TEST(conn_opts_values)
{
	struct gi_conn_opts o = opts_missing();
	struct gi_conn *c;

	o.flags = 1;
	ck_assert_int_eq(gi_conn_open(&o, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(logged, "flags"));
	o = opts_missing();
	o.sq_entries = 3;
	ck_assert_int_eq(gi_conn_open(&o, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(logged, "sq_entries 3"));
	o = opts_missing();
	o.cq_entries = 100;
	ck_assert_int_eq(gi_conn_open(&o, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(logged, "cq_entries 100"));
}
END_TEST

START_TEST(opts_struct_layout_is_stable)
{
	/* The size field comes first in every options struct (the size-prefix
	 * rule), and the structs only ever grow at the end. */
	ck_assert_uint_eq(offsetof(struct gi_conn_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct gi_gen_opts, size), 0);
	ck_assert_uint_eq(sizeof(((struct gi_gen_opts *)0)->size), sizeof(size_t));
	ck_assert_uint_ge(sizeof(struct gi_event), 88);
	ck_assert_uint_eq(sizeof(((struct gi_model_info *)0)->name), 64);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("client_args");
	TCase *tc = tcase_create("args");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, strerror_names_every_code);
	tcase_add_test(tc, null_arguments);
	tcase_add_test(tc, missing_socket_is_enoent_and_named);
	tcase_add_test(tc, socket_from_environment);
	tcase_add_test(tc, conn_opts_size_rules);
	tcase_add_test(tc, conn_opts_values);
	tcase_add_test(tc, opts_struct_layout_is_stable);
	suite_add_tcase(s, tc);
	return s;
}
