/* gi chat: a line-per-turn conversation. Every turn sends the whole history
 * as a chat request (the daemon applies the model's template, and its prefix
 * cache makes the repeated history cheap). Works with stdin piped: each
 * input line is one user turn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/grow.h"
#include "tools/gi/gi.h"

struct history {
	struct gi_chat_msg *msgs;
	size_t n, cap;
};

static int history_add(struct history *h, uint32_t role, const char *text)
{
	struct gi_chat_msg *m = grow_array(h->msgs, &h->cap, h->n + 1, sizeof(*m), 16);
	char *copy;

	if (!m)
		return -ENOMEM;
	h->msgs = m;
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	h->msgs[h->n++] = (struct gi_chat_msg){ role, copy };
	return 0;
}

static void history_free(struct history *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		free((char *)h->msgs[i].content);
	free(h->msgs);
}

static int usage(FILE *f)
{
	fprintf(f, "usage: gi chat [OPTIONS]\n"
		   "Each line read from stdin is one user turn; the answer streams to stdout.\n"
		   "Ctrl-C stops the current answer; end of input (Ctrl-D) quits; '/reset' clears\n"
		   "the history.\n"
		   GEN_USAGE
		   "  --system S            system message at the start of the conversation\n");
	return f == stdout ? GI_EXIT_OK : GI_EXIT_USAGE;
}

int cmd_chat(int argc, char **argv)
{
	static const struct option longopts[] = {
		GEN_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct history h = { 0 };
	struct gen_args a;
	struct gi_conn *c;
	bool tty = isatty(0);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int opt, r, ret = GI_EXIT_OK;

	gen_args_init(&a);
	a.chat = true;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h')
			return usage(stdout);
		r = gen_args_parse(&a, opt, optarg);
		if (r < 0)
			return GI_EXIT_USAGE;
		if (r == 0)
			return usage(stderr);
	}
	if (optind != argc) {
		fprintf(stderr, "gi chat: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr);
	}
	c = cli_connect("chat", a.socket, 0);
	if (!c)
		return GI_EXIT_CONNECT;
	install_sigint();
	if (a.system && history_add(&h, GI_CHAT_SYSTEM, a.system) < 0)
		goto oom;
	for (;;) {
		struct gen_result res;
		uint64_t req;

		if (tty) {
			fputs("> ", stdout);
			fflush(stdout);
		}
		g_interrupted = 0;
		n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (n == 0)
			continue;
		if (!strcmp(line, "/reset")) {
			history_free(&h);
			memset(&h, 0, sizeof(h));
			if (a.system && history_add(&h, GI_CHAT_SYSTEM, a.system) < 0)
				goto oom;
			continue;
		}
		if (history_add(&h, GI_CHAT_USER, line) < 0)
			goto oom;
		r = gi_gen_chat(c, h.msgs, h.n, &a.opts, 0, &req);
		if (r < 0) {
			fprintf(stderr, "gi chat: submitting the turn: %s\n", gi_strerror(r));
			ret = GI_EXIT_REQUEST;
			break;
		}
		r = stream_request("chat", c, req, stdout, &res);
		if (r != GI_EXIT_OK) {
			gen_result_free(&res);
			ret = r;
			break;
		}
		putchar('\n');
		fflush(stdout);
		r = history_add(&h, GI_CHAT_ASSISTANT, res.text ? res.text : "");
		gen_result_free(&res);
		if (r < 0)
			goto oom;
	}
	free(line);
	history_free(&h);
	gi_conn_close(c);
	return ret;
oom:
	fprintf(stderr, "gi chat: out of memory\n");
	free(line);
	history_free(&h);
	gi_conn_close(c);
	return GI_EXIT_REQUEST;
}
