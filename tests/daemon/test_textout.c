/* Per-request text output: UTF-8 assembled across byte tokens, stop strings
 * held back and matched across token boundaries, flush at the end. Uses the
 * stories260K tokenizer (byte tokens <0xNN> are ids NN + 3). */
#include <errno.h>
#include <string.h>

#include "daemon/textout.h"
#include "engine/model.h"
#include "tests/t_util.h"

static struct model *load(void)
{
	struct model_opts o = { .size = sizeof(o), .n_threads = 1 };
	struct model *m;
	char err[256];
	int r = model_load(t_shared("models/stories260K.gguf"), &o, &m, err, sizeof(err));
	ck_assert_msg(r == 0, "model_load: %s", err);
	return m;
}

#define BYTE(b) ((int32_t)(b) + 3)

/* Pushes IDS, concatenating output into OUT; returns the index of the token
 * that stopped the stream, or -1. */
static int feed(struct textout *t, const int32_t *ids, int n, char *out, size_t *len)
{
	char buf[TEXTOUT_OUT_MAX];
	for (int i = 0; i < n; i++) {
		bool stopped;
		int r = textout_push(t, ids[i], buf, sizeof(buf), &stopped);
		ck_assert_int_ge(r, 0);
		memcpy(out + *len, buf, (size_t)r);
		*len += (size_t)r;
		if (stopped)
			return i;
	}
	return -1;
}

START_TEST(utf8_and_stops)
{
	struct model *m = load();
	const struct tokenizer *tok = model_tokenizer(m);
	/* "a🐉b" as byte tokens: the dragon only appears once its 4 bytes are in. */
	const int32_t ids[] = { BYTE('a'), BYTE(0xF0), BYTE(0x9F), BYTE(0x90), BYTE(0x89), BYTE('b') };
	struct textout t;
	char out[256], buf[TEXTOUT_OUT_MAX];
	size_t len = 0;
	bool stopped;
	textout_init(&t, tok, NULL, NULL, 0);
	ck_assert_int_eq(textout_push(&t, ids[0], buf, sizeof(buf), &stopped), 1);
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(textout_push(&t, ids[i], buf, sizeof(buf), &stopped), 0);
	ck_assert_int_eq(textout_push(&t, ids[4], buf, sizeof(buf), &stopped), 4);
	ck_assert_mem_eq(buf, "\xF0\x9F\x90\x89", 4);

	/* Stop string spanning the multi-byte character: text before it only. */
	const char *stop[] = { "\x89" "b", "zz" };
	uint32_t sl[] = { 2, 2 };
	textout_init(&t, tok, stop, sl, 2);
	ck_assert_int_eq(feed(&t, ids, 6, out, &len), 5);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(out, "a\xF0\x9F\x90", 4);

	/* A held-back prefix that does not complete is released. */
	const char *stop2[] = { "\xF0\x9F\x90\x89!" };
	uint32_t sl2[] = { 5 };
	textout_init(&t, tok, stop2, sl2, 1);
	len = 0;
	ck_assert_int_eq(feed(&t, ids, 5, out, &len), -1);
	ck_assert_uint_eq(len, 1); /* "a"; the dragon is held */
	ck_assert_int_eq(feed(&t, ids + 5, 1, out, &len), -1);
	ck_assert_uint_eq(len, 6);
	ck_assert_mem_eq(out, "a\xF0\x9F\x90\x89" "b", 6);

	/* Held text and an incomplete character come out at the end. */
	const char *stop3[] = { "ab!" };
	uint32_t sl3[] = { 3 };
	textout_init(&t, tok, stop3, sl3, 1);
	const int32_t tail[] = { BYTE('a'), BYTE('b'), BYTE(0xE2), BYTE(0x80) };
	len = 0;
	ck_assert_int_eq(feed(&t, tail, 4, out, &len), -1);
	ck_assert_uint_eq(len, 0);
	int n = textout_flush(&t, buf, sizeof(buf));
	ck_assert_int_ge(n, 5);
	ck_assert_mem_eq(buf, "ab\xEF\xBF\xBD", 5); /* then U+FFFD for the partial sequence */
	model_free(m);
}
END_TEST

START_TEST(check_limits)
{
	char err[128];
	const char *s[TEXTOUT_MAX_STOP + 1];
	uint32_t l[TEXTOUT_MAX_STOP + 1];
	for (int i = 0; i <= TEXTOUT_MAX_STOP; i++) {
		s[i] = "x";
		l[i] = 1;
	}
	ck_assert_int_eq(textout_check(s, l, TEXTOUT_MAX_STOP, err, sizeof(err)), 0);
	ck_assert_int_eq(textout_check(s, l, TEXTOUT_MAX_STOP + 1, err, sizeof(err)), -EINVAL);
	l[2] = TEXTOUT_STOP_MAX_LEN + 1;
	ck_assert_int_eq(textout_check(s, l, 3, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "stop[2]"));
	l[2] = 0;
	ck_assert_int_eq(textout_check(s, l, 3, err, sizeof(err)), -EINVAL);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("textout");
	TCase *tc = tcase_create("textout");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, utf8_and_stops);
	tcase_add_test(tc, check_limits);
	suite_add_tcase(s, tc);
	return s;
}
