/* The lost-wakeup stress test has teeth: the same harness, linked against
 * doorbell.c built without its full fences (-DGI_IPC_NO_FULL_FENCE), must
 * observe lost wakeups within its time budget. The definitions below take
 * the place of libgiipc.a's doorbell.o for this program only. */
#define GI_IPC_NO_FULL_FENCE 1
#include "ipc/doorbell.c"

#include "tests/ipc/wakeup_stress.h"
#include "tests/t_util.h"

START_TEST(test_lost_wakeup_detected)
{
	struct ws_ctx x;
	uint64_t lost = 0;
	double spent = 0;
	/* Up to 4 rounds of 2.5 s; stop at the first that catches the bug. */
	for (int round = 0; round < 4 && lost == 0; round++) {
		ws_run(&x, 2.5, 5);
		ck_assert_int_eq(x.client_err, 0);
		ck_assert_int_eq(x.engine_err, 0);
		lost = x.lost_sq + x.lost_cq;
		spent += 2.5;
	}
	printf("no-fence build: %llu lost wakeups detected in %.1f s\n", (unsigned long long)lost, spent);
	ck_assert_msg(lost > 0, "no lost wakeup detected in %.1f s without the full fences: "
		      "the stress test did not show its teeth on this machine", spent);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ipc_wakeup_nofence");
	TCase *tc = tcase_create("teeth");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lost_wakeup_detected);
	suite_add_tcase(s, tc);
	return s;
}
