/* gid's stall timeout: a client that stops reading its CQ has its requests
 * ended after stall_timeout_ms (KV freed, -ETIMEDOUT queued behind the
 * events already waiting, counted in stats), while a slow but steady
 * reader and other sessions are left alone. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/engine/golden.h"
#include "tests/integration/gidt.h"
#include "tests/t_util.h"

#define STALL_MS 300

static struct t_golden_case golden[8];
static struct gidt_daemon dmn;

static void start(void)
{
	ck_assert_int_ge(t_golden_load(t_shared("golden/stories260K_greedy.json"), golden, 8), 1);
	gidt_start_ok(&dmn, (const char *const[]){ "--stall-timeout-ms", "300", NULL });
}

static void stop(void)
{
	gidt_stop_ok(&dmn);
}

START_TEST(stalled_client_is_ended)
{
	static struct gidt_result res[2];
	static char js[65536];
	start();
	struct gidt_conn c, other;
	ck_assert_int_eq(gidt_connect(&c, dmn.sock), 0);
	ck_assert_int_eq(gidt_connect(&other, dmn.sock), 0);
	/* Far more tokens than the CQ holds, and nobody reads them. */
	struct gidt_params p = { .prompt = golden[0].prompt, .max_tokens = 1500 };
	ck_assert_int_eq(gidt_submit(&c, 0, &p), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_stalled", 1, 10000), 1);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "requests_running", 0, 5000), 0);
	ck_assert_int_eq(gidt_wait_stat(dmn.sock, "kv_blocks_used", 0, 5000), 0);
	/* The other session was never held up. */
	struct gidt_params q = { .prompt = golden[0].prompt, .max_tokens = golden[0].n_output };
	ck_assert_int_eq(gidt_run(&other, &q, &res[1], 10000), 0);
	ck_assert_int_eq(res[1].kind, GI_CQE_DONE);
	ck_assert_int_eq(memcmp(res[1].ids, golden[0].output_ids, golden[0].n_output * 4), 0);
	/* Reading now: the tokens that were waiting, then the reason. */
	memset(res, 0, sizeof(res));
	ck_assert_int_eq(gidt_wait_all(&c, res, 1, 10000), 0);
	ck_assert_int_eq(res[0].kind, GI_CQE_ERROR);
	ck_assert_int_eq(res[0].result, -ETIMEDOUT);
	ck_assert_msg(strstr(res[0].reason, "not read for 300 ms"), "reason '%s'", res[0].reason);
	ck_assert_uint_gt(res[0].n_ids, 0);
	ck_assert_uint_lt(res[0].n_ids, 1500);
	ck_assert_int_eq(memcmp(res[0].ids, golden[0].output_ids,
				(res[0].n_ids < golden[0].n_output ? res[0].n_ids : golden[0].n_output) * 4), 0);
	/* The session goes on. */
	ck_assert_int_eq(gidt_run(&c, &q, &res[1], 10000), 0);
	ck_assert_int_eq(res[1].kind, GI_CQE_DONE);
	ck_assert_int_gt(gidt_stats(dmn.sock, js, sizeof(js)), 0);
	ck_assert_int_eq(gidt_json_num(js, "requests_stalled"), 1);
	gidt_close(&c);
	gidt_close(&other);
	stop();
}
END_TEST

/* A reader that pauses 100 ms (a third of the timeout) between reaps
 * loses nothing: each read makes room, so its stream keeps going. */
START_TEST(slow_reader_is_kept)
{
	static struct gidt_result res;
	static char js[65536];
	start();
	struct gidt_conn c;
	ck_assert_int_eq(gidt_connect(&c, dmn.sock), 0);
	struct gidt_params p = { .prompt = golden[0].prompt, .max_tokens = 600 };
	ck_assert_int_eq(gidt_submit(&c, 0, &p), 0);
	uint64_t end = gidt_now_us() + 60000000;
	struct gi_cqe ev[64];
	memset(&res, 0, sizeof(res));
	while (!res.finished && gidt_now_us() < end) {
		usleep(STALL_MS * 1000 / 3);
		int k = gi_cli_reap(&c.cli, ev, 64);
		ck_assert_int_ge(k, 0);
		for (int i = 0; i < k; i++) {
			res.n_ids += ev[i].kind == GI_CQE_TOKEN && !(ev[i].flags & GI_CQE_F_TEXT_CONT);
			if (ev[i].flags & GI_CQE_F_LAST) {
				res.finished = true;
				res.kind = ev[i].kind;
				res.result = ev[i].result;
			}
		}
	}
	ck_assert(res.finished);
	ck_assert_int_eq(res.kind, GI_CQE_DONE);
	ck_assert_int_eq(res.result, GI_FINISH_LENGTH);
	ck_assert_int_gt(gidt_stats(dmn.sock, js, sizeof(js)), 0);
	ck_assert_int_eq(gidt_json_num(js, "requests_stalled"), 0);
	gidt_close(&c);
	stop();
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("gid_stall");
	TCase *tc = tcase_create("stall");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, stalled_client_is_ended);
	tcase_add_test(tc, slow_reader_is_kept);
	suite_add_tcase(s, tc);
	return s;
}
