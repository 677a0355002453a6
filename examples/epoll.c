/* libgiclient in an application's own event loop: gi_conn_fd() sits in an
 * epoll set beside a timerfd that stands for the app's other work, and two
 * requests stream concurrently.
 *
 *   example-epoll ["PROMPT A" ["PROMPT B"]]
 *
 * The pattern: when gi_conn_fd() is readable, call gi_conn_process(), then
 * gi_event_next(conn, &ev, 0) until it returns 0 (which also re-arms the
 * wake-up), and go back to epoll_wait. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "client/giclient.h" /* installed: <giclient.h> */

#define N_REQ 2

int main(int argc, char **argv)
{
	const char *prompts[N_REQ] = { "Once upon a time", "The little dog" };
	struct gi_gen_opts opts = { .size = sizeof(opts), .max_tokens = 24 };
	struct itimerspec every_20ms = { { 0, 20000000 }, { 0, 20000000 } };
	struct epoll_event ev_in = { .events = EPOLLIN };
	char text[N_REQ][4096] = { "", "" };
	size_t len[N_REQ] = { 0, 0 };
	struct gi_conn *conn;
	int ep, tfd, r, i, ended = 0, ticks = 0, status = 0;

	for (i = 0; i < N_REQ && i + 1 < argc; i++)
		prompts[i] = argv[i + 1];
	r = gi_conn_open(NULL, &conn);
	if (r < 0) {
		fprintf(stderr, "cannot connect to gid: %s\n", gi_strerror(r));
		return 3;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &every_20ms, NULL) < 0) {
		perror("epoll/timerfd");
		return 1;
	}
	ev_in.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev_in);
	ev_in.data.fd = gi_conn_fd(conn);
	epoll_ctl(ep, EPOLL_CTL_ADD, gi_conn_fd(conn), &ev_in);

	/* The request's tag is its index: events say which stream they belong to. */
	for (i = 0; i < N_REQ; i++) {
		r = gi_gen_text(conn, prompts[i], strlen(prompts[i]), &opts, (uint64_t)i, NULL);
		if (r < 0) {
			fprintf(stderr, "submit %d: %s\n", i, gi_strerror(r));
			return 1;
		}
	}
	while (ended < N_REQ) {
		struct epoll_event ready[2];
		int n = epoll_wait(ep, ready, 2, 10000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "no progress in 10 s\n");
			status = 1;
			break;
		}
		for (int k = 0; k < n; k++) {
			if (ready[k].data.fd == tfd) {
				uint64_t expirations;

				if (read(tfd, &expirations, sizeof(expirations)) > 0)
					ticks += (int)expirations; /* the app's other work */
				continue;
			}
			struct gi_event ev;

			gi_conn_process(conn);
			while ((r = gi_event_next(conn, &ev, 0)) == 1) {
				size_t t = (size_t)ev.tag;

				if (ev.kind == GI_EVENT_TOKEN) {
					if (len[t] + ev.text_len < sizeof(text[t])) {
						memcpy(text[t] + len[t], ev.text, ev.text_len);
						len[t] += ev.text_len;
					}
					printf("[req %zu] token %d %.*s\n", t, ev.token, (int)ev.text_len, ev.text);
				} else {
					if (ev.kind == GI_EVENT_ERROR) {
						fprintf(stderr, "[req %zu] failed: %.*s (%s)\n", t,
							(int)ev.text_len, ev.text, gi_strerror(ev.error));
						status = 1;
					}
					ended++;
				}
			}
			if (r < 0) {
				fprintf(stderr, "connection: %s\n", gi_strerror(r));
				status = 1;
				ended = N_REQ;
			}
		}
	}
	for (i = 0; i < N_REQ; i++)
		printf("[req %d] %s%.*s\n", i, prompts[i], (int)len[i], text[i]);
	printf("timer ticks meanwhile: %d\n", ticks);
	close(tfd);
	close(ep);
	gi_conn_close(conn);
	return status;
}
