/* Minimal libgiclient app: stream the continuation of one prompt.
 *
 *   example-stream "Once upon a time"        (gid at $GI_SOCKET or /run/gid/gid.sock)
 *
 * Against an installed libgiclient: include <giclient.h> and build with
 *   cc stream.c $(pkg-config --cflags --libs giclient) */
#include <stdio.h>
#include <string.h>

#include "client/giclient.h" /* installed: <giclient.h> */

int main(int argc, char **argv)
{
	struct gi_gen_opts opts = { .size = sizeof(opts), .max_tokens = 64 };
	struct gi_conn *conn;
	struct gi_event ev;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PROMPT\n", argv[0]);
		return 2;
	}
	r = gi_conn_open(NULL, &conn);
	if (r < 0) {
		fprintf(stderr, "cannot connect to gid: %s\n", gi_strerror(r));
		return 3;
	}
	r = gi_gen_text(conn, argv[1], strlen(argv[1]), &opts, 0, NULL);
	if (r < 0) {
		fprintf(stderr, "submit: %s\n", gi_strerror(r));
		gi_conn_close(conn);
		return 1;
	}
	/* Blocking reads: each TOKEN event carries one whole token's text. */
	while ((r = gi_event_next(conn, &ev, -1)) == 1 && ev.kind == GI_EVENT_TOKEN) {
		fwrite(ev.text, 1, ev.text_len, stdout);
		fflush(stdout);
	}
	if (r == 1 && ev.kind == GI_EVENT_DONE)
		printf("\n[%s, %u tokens]\n", gi_finish_name(ev.finish), ev.done.n_gen);
	else
		fprintf(stderr, "\nrequest failed: %s\n",
			gi_strerror(r < 0 ? r : ev.error));
	gi_conn_close(conn);
	return r == 1 && ev.kind == GI_EVENT_DONE ? 0 : 1;
}
