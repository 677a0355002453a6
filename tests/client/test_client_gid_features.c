/* libgiclient and the gi CLI against the real daemon for the newer
 * features: an error reason longer than one event (TEXT_CONT pieces joined
 * by the library), TOKENIZE of a chat list (gi_tokenize_chat, gi run --chat
 * --json), and gi bench generating max_tokens per request by default
 * (ignore_eos). The daemon is build/bin/gid on stories260K.gguf. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/giclient.h"
#include "tests/engine/golden.h"
#include "tests/integration/gidt.h"
#include "tests/t_util.h"

#define MAX_IDS 512

static struct gidt_daemon dmn;
static struct t_golden_case golden[8];
static const struct gi_gen_opts greedy32 = { .size = sizeof(struct gi_gen_opts), .max_tokens = 32 };

static struct gi_conn *start(void)
{
	ck_assert_int_ge(t_golden_load(t_shared("golden/stories260K_greedy.json"), golden, 8), 1);
	gidt_start_ok(&dmn, NULL);
	struct gi_conn_opts o = { .size = sizeof(o), .socket_path = dmn.sock };
	struct gi_conn *c = NULL;
	ck_assert_int_eq(gi_conn_open(&o, &c), 0);
	return c;
}

static void stop(struct gi_conn *c)
{
	gi_conn_close(c);
	gidt_stop_ok(&dmn);
}

/* Runs gi with ARGV (NULL-terminated, after "gi"), stdout to a file;
 * returns the file's contents (free()) after checking exit status 0. */
static char *run_gi_output(const char *const *argv)
{
	char path[160], *args[32];
	int n = 0, status;
	args[n++] = "gi";
	while (*argv && n < 31)
		args[n++] = (char *)*argv++;
	args[n] = NULL;
	snprintf(path, sizeof(path), "%s/gi.out", dmn.dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (!freopen(path, "w", stdout))
			_exit(126);
		execv(t_build("bin/gi"), args);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gi %s: exit 0x%x", args[1], status);
	char *out = t_read_file(path, NULL);
	ck_assert_ptr_nonnull(out);
	unlink(path);
	return out;
}

/* Events of request TAG until its last; returns the number of prompt
 * tokens from its DONE (fails the test on an ERROR). */
static uint32_t finish(struct gi_conn *c, uint64_t tag)
{
	struct gi_event ev;
	for (;;) {
		ck_assert_int_eq(gi_event_next(c, &ev, 10000), 1);
		ck_assert_uint_eq(ev.tag, tag);
		if (ev.kind == GI_EVENT_TOKEN)
			continue;
		ck_assert_msg(ev.kind == GI_EVENT_DONE, "request failed: %.*s", (int)ev.text_len, ev.text);
		return ev.done.n_prompt;
	}
}

/* A refusal whose reason is longer than one event's text arrives whole:
 * the daemon sends it in TEXT_CONT pieces and the library joins them. */
START_TEST(long_error_reason)
{
	struct gi_conn *c = start();
	struct gi_model_info mi;
	struct gi_event ev;
	char want[160];

	ck_assert_int_eq(gi_model_info(c, &mi), 0);
	uint32_t n = mi.n_ctx + 10;
	uint32_t *ids = calloc(n, sizeof(*ids));
	ck_assert_ptr_nonnull(ids);
	for (uint32_t i = 0; i < n; i++)
		ids[i] = 300;
	ck_assert_int_eq(gi_gen_tokens(c, ids, n, &greedy32, 7, NULL), 0);
	ck_assert_int_eq(gi_event_next(c, &ev, 10000), 1);
	ck_assert_uint_eq(ev.kind, GI_EVENT_ERROR);
	ck_assert_uint_eq(ev.tag, 7);
	snprintf(want, sizeof(want), "prompt: %u tokens, the context holds %u (room for one generated token needed)",
		 n, mi.n_ctx);
	ck_assert_uint_gt(strlen(want), 80); /* three events of 40 bytes */
	ck_assert_uint_eq(ev.text_len, strlen(want));
	ck_assert_mem_eq(ev.text, want, ev.text_len);
	/* Nothing else for that request; the connection goes on. */
	ck_assert_uint_eq(gi_conn_inflight(c), 0);
	ck_assert_int_eq(gi_gen_text(c, golden[0].prompt, strlen(golden[0].prompt), &greedy32, 8, NULL), 0);
	ck_assert_uint_eq(finish(c, 8), golden[0].n_prompt);
	free(ids);
	stop(c);
}
END_TEST

/* TOKENIZE of a chat list gives the ids a chat request is prefilled with:
 * the template (chatml for stories260K) rendered, the assistant's turn
 * opened, special tokens parsed, BOS first. Also through gi run --chat --json. */
START_TEST(tokenize_chat)
{
	struct gi_conn *c = start();
	const struct gi_chat_msg msgs[2] = { { GI_CHAT_SYSTEM, "Be brief." }, { GI_CHAT_USER, "Tell a story." } };
	const char *text = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTell a story.<|im_end|>\n"
			   "<|im_start|>assistant\n";
	uint32_t ids[MAX_IDS], want[MAX_IDS];

	int n = gi_tokenize_chat(c, msgs, 2, GI_TOKENIZE_ADD_BOS, ids, MAX_IDS);
	ck_assert_int_gt(n, 10);
	ck_assert_int_eq(gi_tokenize(c, text, strlen(text), GI_TOKENIZE_ADD_BOS | GI_TOKENIZE_SPECIAL, want,
				     MAX_IDS), n);
	ck_assert_mem_eq(ids, want, (size_t)n * 4);
	ck_assert_uint_eq(ids[0], 1); /* BOS */
	ck_assert_int_eq(gi_tokenize_chat(c, msgs, 2, 0, ids, MAX_IDS), n - 1);
	ck_assert_mem_eq(ids, want + 1, (size_t)(n - 1) * 4);
	ck_assert_int_eq(gi_tokenize_chat(c, msgs, 0, 0, ids, MAX_IDS), -EINVAL);
	/* The same count as the chat request's prompt. */
	ck_assert_int_eq(gi_gen_chat(c, msgs, 2, &greedy32, 0, NULL), 0);
	ck_assert_uint_eq(finish(c, 0), (uint32_t)n);

	/* gi run --chat --json: prompt_ids is that list, not null. */
	char expect[4096];
	size_t off = (size_t)snprintf(expect, sizeof(expect), "\"prompt_ids\": [");
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(expect + off, sizeof(expect) - off, "%s%u", i ? ", " : "", want[i]);
	snprintf(expect + off, sizeof(expect) - off, "]");
	char *json = run_gi_output((const char *const[]){ "run", "--chat", "--json", "--system", "Be brief.",
							  "--max-tokens", "4", "--socket", dmn.sock,
							  "Tell a story.", NULL });
	ck_assert_msg(strstr(json, expect), "gi run --chat --json:\n%s\nlacks %s", json, expect);
	free(json);
	stop(c);
}
END_TEST

/* gi bench generates max_tokens per request by default (ignore_eos): at
 * near-uniform sampling, which meets EOS within a few hundred tokens, every
 * request still gives its 300; --stop-at-eos lets them end early. */
START_TEST(bench_ignores_eos)
{
	struct gi_conn *c = start();
	const char *args[] = { "bench", "--socket", dmn.sock, "--clients", "2", "--requests", "2",
			       "--max-tokens", "300", "--temp", "100", "--top-k", "0", "--top-p", "1",
			       "--min-p", "0", "--json", NULL, NULL };
	char *json = run_gi_output(args);
	ck_assert_msg(strstr(json, "\"tokens\": 1200,") && strstr(json, "\"errors\": 0,"), "gi bench: %s", json);
	free(json);
	args[18] = "--stop-at-eos";
	json = run_gi_output(args);
	ck_assert_msg(!strstr(json, "\"tokens\": 1200,") && strstr(json, "\"errors\": 0,"),
		      "gi bench --stop-at-eos: %s", json);
	free(json);
	stop(c);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("client_gid_features");
	TCase *tc = tcase_create("features");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, long_error_reason);
	tcase_add_test(tc, tokenize_chat);
	tcase_add_test(tc, bench_ignores_eos);
	suite_add_tcase(s, tc);
	return s;
}
