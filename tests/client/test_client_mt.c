/* The thread-safety contract of giclient.h: different connections are
 * independent, so threads that each own one may stream at the same time.
 * Run under TSan by `make check SANITIZE=1`. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "client/giclient.h"
#include "tests/client/fake_gid.h"
#include "tests/t_util.h"

#define N_THREADS 4
#define N_REQS 50

struct worker {
	struct fake_gid g;
	int ok;
	char why[256];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct gi_conn_opts o = { .size = sizeof(o), .socket_path = w->g.path };
	struct gi_conn *c;
	int r = gi_conn_open(&o, &c);

	if (r < 0) {
		snprintf(w->why, sizeof(w->why), "gi_conn_open: %s", gi_strerror(r));
		return NULL;
	}
	for (int i = 0; i < N_REQS; i++) {
		char prompt[64], got[64] = "";
		struct gi_event ev;
		uint64_t req;

		snprintf(prompt, sizeof(prompt), "thread %p says %d", (void *)w, i);
		r = gi_gen_text(c, prompt, strlen(prompt), NULL, (uint64_t)i, &req);
		while (r == 0 && (r = gi_event_next(c, &ev, 5000)) == 1 && ev.kind == GI_EVENT_TOKEN) {
			strncat(got, ev.text, ev.text_len);
			r = 0;
		}
		if (r != 1 || ev.kind != GI_EVENT_DONE || ev.req != req || strcmp(got, prompt)) {
			snprintf(w->why, sizeof(w->why), "request %d: r %d kind %u text '%s'", i, r,
				 r == 1 ? ev.kind : 0, got);
			gi_conn_close(c);
			return NULL;
		}
	}
	gi_conn_close(c);
	w->ok = 1;
	return NULL;
}

START_TEST(connections_in_parallel_threads)
{
	static const struct fake_gid_cfg cfg;
	struct worker w[N_THREADS];
	pthread_t t[N_THREADS];

	memset(w, 0, sizeof(w));
	/* Fakes are forked before any thread exists. */
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(fake_gid_start(&cfg, &w[i].g), 0);
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N_THREADS; i++) {
		fake_gid_cleanup(&w[i].g);
		ck_assert_msg(w[i].ok, "thread %d: %s", i, w[i].why);
	}
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("client_mt");
	TCase *tc = tcase_create("mt");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, connections_in_parallel_threads);
	suite_add_tcase(s, tc);
	return s;
}
