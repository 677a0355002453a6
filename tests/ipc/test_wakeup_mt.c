/* Lost-wakeup stress with the real doorbell protocol: seconds of racing
 * through both sleep paths must never lose a wakeup (also run under TSan). */
#include "tests/ipc/wakeup_stress.h"
#include "tests/t_util.h"

START_TEST(test_no_lost_wakeup)
{
	struct ws_ctx x;
	/* TSan slows everything ~10x; the race count matters, not the duration. */
#ifdef GI_TSAN
	ck_assert_int_eq(ws_run(&x, 4.0, 1000), 0);
#else
	ck_assert_int_eq(ws_run(&x, 5.0, 20), 0);
#endif
	ck_assert_int_eq(x.client_err, 0);
	ck_assert_int_eq(x.engine_err, 0);
	ck_assert_uint_gt(x.round_trips, 1000);
	ck_assert_uint_gt(x.engine_sleeps + x.client_sleeps, 100);
	ck_assert_msg(x.lost_sq == 0 && x.lost_cq == 0, "lost wakeups: %llu submit, %llu completion",
		      (unsigned long long)x.lost_sq, (unsigned long long)x.lost_cq);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ipc_wakeup");
	TCase *tc = tcase_create("stress");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_no_lost_wakeup);
	suite_add_tcase(s, tc);
	return s;
}
