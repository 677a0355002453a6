/* common/grow.h: growth from nothing and from a size, NEED 0, overflow. */
#include <stdint.h>
#include <stdlib.h>

#include "common/grow.h"
#include "tests/t_util.h"

START_TEST(grows_by_doubling_and_keeps_contents)
{
	uint32_t *v = NULL, *n;
	size_t cap = 0;

	for (uint32_t i = 0; i < 1000; i++) {
		n = grow_array(v, &cap, i + 1, sizeof(*n), 16);
		ck_assert_ptr_nonnull(n);
		ck_assert_uint_ge(cap, i + 1);
		ck_assert_uint_eq(cap & (cap - 1), 0); /* 16 doubled */
		v = n;
		v[i] = i * 7;
	}
	ck_assert_uint_eq(cap, 1024);
	for (uint32_t i = 0; i < 1000; i++)
		ck_assert_uint_eq(v[i], i * 7);
	/* room already there: the same array, capacity untouched */
	ck_assert_ptr_eq(grow_array(v, &cap, 1024, sizeof(*v), 16), v);
	ck_assert_uint_eq(cap, 1024);
	/* a jump past twice the capacity doubles until it fits */
	v = grow_array(v, &cap, 5000, sizeof(*v), 16);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(cap, 8192);
	free(v);
}
END_TEST

START_TEST(need_zero_still_allocates)
{
	size_t cap = 0;
	char *p = grow_array(NULL, &cap, 0, 1, 64);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(cap, 64);
	free(p);
	cap = 0;
	p = grow_array(NULL, &cap, 3, 1, 0); /* MIN 0 starts at 1 */
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(cap, 4);
	free(p);
}
END_TEST

START_TEST(overflow_fails_and_keeps_the_array)
{
	size_t cap = 0;
	uint64_t *v = grow_array(NULL, &cap, 4, sizeof(*v), 4), *n;

	ck_assert_ptr_nonnull(v);
	v[3] = 42;
	n = grow_array(v, &cap, SIZE_MAX / 4, sizeof(*v), 4); /* elements * 8 overflows */
	ck_assert_ptr_null(n);
	ck_assert_uint_eq(cap, 4);
	n = grow_array(v, &cap, SIZE_MAX, 1, 4); /* doubling would overflow */
	ck_assert_ptr_null(n);
	ck_assert_uint_eq(cap, 4);
	ck_assert_uint_eq(v[3], 42);
	free(v);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("grow");
	TCase *tc = tcase_create("grow_array");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, grows_by_doubling_and_keeps_contents);
	tcase_add_test(tc, need_zero_still_allocates);
	tcase_add_test(tc, overflow_fails_and_keeps_the_array);
	suite_add_tcase(s, tc);
	return s;
}
