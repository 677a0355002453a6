/* gi run: one prompt (plain or chat), streamed to stdout or summarised as
 * one JSON object. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/grow.h"
#include "tools/gi/gi.h"

void gen_result_free(struct gen_result *r)
{
	free(r->ids);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static int result_add(struct gen_result *r, const struct gi_event *ev)
{
	int32_t *n = grow_array(r->ids, &r->cap_ids, r->n_ids + 1, sizeof(*n), 64);
	char *t;

	if (!n)
		return -ENOMEM;
	r->ids = n;
	/* Text held back until the end (stop-string prefixes, partial UTF-8)
	 * comes with token -1: it belongs to no token, so only its text counts. */
	if (ev->token >= 0)
		r->ids[r->n_ids++] = ev->token;
	t = grow_array(r->text, &r->cap_text, r->len + ev->text_len + 1, 1, 256);
	if (!t)
		return -ENOMEM;
	r->text = t;
	memcpy(r->text + r->len, ev->text, ev->text_len);
	r->len += ev->text_len;
	r->text[r->len] = 0;
	return 0;
}

int stream_request(const char *cmd, struct gi_conn *c, uint64_t req, FILE *out,
		   struct gen_result *res)
{
	bool cancelled = false;
	struct gi_event ev;
	int r;

	memset(res, 0, sizeof(*res));
	res->start_ns = mono_ns();
	for (;;) {
		r = gi_event_next(c, &ev, -1);
		if (r == -EINTR) {
			if (g_interrupted && !cancelled) {
				gi_req_cancel(c, req);
				cancelled = true;
			}
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "gi %s: %s\n", cmd, gi_strerror(r));
			return GI_EXIT_REQUEST;
		}
		if (ev.req != req)
			continue;
		if (ev.kind == GI_EVENT_TOKEN) {
			if (!res->first_ns)
				res->first_ns = mono_ns();
			if (result_add(res, &ev) < 0) {
				fprintf(stderr, "gi %s: out of memory\n", cmd);
				return GI_EXIT_REQUEST;
			}
			if (out) {
				fwrite(ev.text, 1, ev.text_len, out);
				fflush(out);
			}
			continue;
		}
		res->end_ns = mono_ns();
		if (ev.kind == GI_EVENT_ERROR) {
			fprintf(stderr, "gi %s: request failed: %.*s (%s)\n", cmd, (int)ev.text_len,
				ev.text, gi_strerror(ev.error));
			return GI_EXIT_REQUEST;
		}
		res->finish = ev.finish;
		res->done = ev;
		if (ev.finish == GI_FINISH_REASON_ERROR) {
			fprintf(stderr, "gi %s: the daemon ended the request with an error\n", cmd);
			return GI_EXIT_REQUEST;
		}
		return GI_EXIT_OK;
	}
}

/* Reads all of stdin (for PROMPT "-"). */
static char *read_stdin(void)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	while (buf && (n = read(0, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = 0;
	return buf;
}

static void print_ids_u32(FILE *f, const uint32_t *ids, size_t n)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s%u", i ? ", " : "", ids[i]);
	fputc(']', f);
}

/* Prompt ids of the text PROMPT, or of the chat MSGS when N_MSGS > 0. */
static int prompt_ids(struct gi_conn *c, const char *prompt, const struct gi_chat_msg *msgs,
		      size_t n_msgs, uint32_t *ids, size_t cap)
{
	if (n_msgs)
		return gi_tokenize_chat(c, msgs, n_msgs, GI_TOKENIZE_ADD_BOS, ids, cap);
	return gi_tokenize(c, prompt, strlen(prompt), GI_TOKENIZE_ADD_BOS, ids, cap);
}

static void print_json(const char *prompt, const uint32_t *pids, size_t n_pids,
		       const struct gen_result *res)
{
	const struct gi_event *d = &res->done;
	size_t i;

	printf("{\"prompt\": ");
	json_str(stdout, prompt, strlen(prompt));
	printf(", \"prompt_ids\": ");
	print_ids_u32(stdout, pids, n_pids);
	printf(", \"output_ids\": [");
	for (i = 0; i < res->n_ids; i++)
		printf("%s%d", i ? ", " : "", res->ids[i]);
	printf("], \"text\": ");
	json_str(stdout, res->text ? res->text : "", res->len);
	printf(", \"finish_reason\": \"%s\"", gi_finish_name(res->finish));
	printf(", \"timings\": {\"queue_us\": %u, \"prefill_us\": %u, \"decode_us\": %u, "
	       "\"n_prompt\": %u, \"n_cached\": %u, \"n_gen\": %u, \"ttft_ms\": %.3f, \"total_ms\": %.3f}}\n",
	       d->done.queue_us, d->done.prefill_us, d->done.decode_us, d->done.n_prompt,
	       d->done.n_cached, d->done.n_gen,
	       res->first_ns ? (double)(res->first_ns - res->start_ns) / 1e6 : 0.0,
	       (double)(res->end_ns - res->start_ns) / 1e6);
}

static int usage(FILE *f)
{
	fprintf(f, "usage: gi run [OPTIONS] PROMPT     (PROMPT '-' reads stdin)\n"
		   GEN_USAGE
		   "  --chat                send PROMPT as a user message (the model's chat template applies)\n"
		   "  --system S            system message (implies --chat)\n"
		   "  --json                print one JSON object: prompt_ids, output_ids, text,\n"
		   "                        finish_reason, timings\n");
	return f == stdout ? GI_EXIT_OK : GI_EXIT_USAGE;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		GEN_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gen_args a;
	struct gen_result res = { 0 };
	struct gi_conn *c;
	struct gi_chat_msg msgs[2];
	size_t n_msgs = 0;
	uint32_t *pids = NULL;
	int n_pids = -1, opt, r;
	char *prompt, *from_stdin = NULL;
	uint64_t req;

	gen_args_init(&a);
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
	if (optind != argc - 1) {
		fprintf(stderr, "gi run: expected exactly one PROMPT argument, got %d\n", argc - optind);
		return usage(stderr);
	}
	prompt = argv[optind];
	if (!strcmp(prompt, "-")) {
		prompt = from_stdin = read_stdin();
		if (!prompt) {
			fprintf(stderr, "gi run: reading the prompt from stdin: out of memory\n");
			return GI_EXIT_REQUEST;
		}
	}
	if (!*prompt) {
		fprintf(stderr, "gi run: the prompt is empty\n");
		free(from_stdin);
		return GI_EXIT_USAGE;
	}
	c = cli_connect("run", a.socket, 0);
	if (!c) {
		free(from_stdin);
		return GI_EXIT_CONNECT;
	}
	install_sigint();
	if (a.chat) {
		if (a.system)
			msgs[n_msgs++] = (struct gi_chat_msg){ GI_CHAT_SYSTEM, a.system };
		msgs[n_msgs++] = (struct gi_chat_msg){ GI_CHAT_USER, prompt };
	}
	if (a.json) {
		/* The ids the daemon will see: the text prompt with BOS, or the
		 * chat with the model's template applied. */
		n_pids = prompt_ids(c, prompt, msgs, n_msgs, NULL, 0);
		if (n_pids >= 0) {
			pids = calloc((size_t)n_pids + 1, sizeof(*pids));
			if (pids)
				n_pids = prompt_ids(c, prompt, msgs, n_msgs, pids, (size_t)n_pids);
		}
		if (n_pids < 0 || !pids) {
			fprintf(stderr, "gi run: tokenizing the prompt: %s\n",
				gi_strerror(n_pids < 0 ? n_pids : -ENOMEM));
			r = GI_EXIT_REQUEST;
			goto out;
		}
	}
	if (a.chat) {
		r = gi_gen_chat(c, msgs, n_msgs, &a.opts, 0, &req);
	} else {
		r = gi_gen_text(c, prompt, strlen(prompt), &a.opts, 0, &req);
	}
	if (r < 0) {
		fprintf(stderr, "gi run: submitting the request: %s\n", gi_strerror(r));
		r = GI_EXIT_REQUEST;
		goto out;
	}
	r = stream_request("run", c, req, a.json ? NULL : stdout, &res);
	if (r == GI_EXIT_OK) {
		if (a.json)
			print_json(prompt, pids, (size_t)n_pids, &res);
		else if (res.len && res.text[res.len - 1] != '\n')
			putchar('\n');
	}
out:
	gen_result_free(&res);
	free(pids);
	free(from_stdin);
	gi_conn_close(c);
	return r;
}
