/* One main for every Check suite: each test_*.c under tests/ defines t_suite().
 * Tests run forked (a crash or hang fails one test, not the run) with the
 * suite's own timeouts; the summary line is Check's. */
#include <check.h>
#include <stdlib.h>

#include "tests/t_util.h"

int main(void)
{
	SRunner *sr = srunner_create(t_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
