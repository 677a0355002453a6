/* Tokenizers against llama.cpp: its vocab test vectors (tokenize without
 * BOS or special-token parsing, then detokenize back), stories260K's golden
 * prompts and outputs, special tokens, streaming, hostile metadata. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/tokenizer.h"
#include "tests/engine/gguf_craft.h"
#include "tests/engine/golden.h"
#include "tests/t_util.h"

#define MAX_IDS 4096

struct vocab {
	struct gguf *g;
	struct tokenizer *t;
};

static struct vocab vocab_open(const char *rel)
{
	struct vocab v;
	char err[256] = "";

	ck_assert_msg(gguf_open(t_shared(rel), &v.g, err, sizeof(err)) == 0, "%s: %s", rel, err);
	ck_assert_msg(tok_create(v.g, &v.t, err, sizeof(err)) == 0, "%s: %s", rel, err);
	return v;
}

static void vocab_close(struct vocab v)
{
	tok_destroy(v.t);
	gguf_close(v.g);
}

/* ---- llama.cpp vocab test vectors ------------------------------------------ */

/* Runs NAME.inp / NAME.out as llama.cpp's test-tokenizer-0 reads them: inputs
 * separated by "\n__ggml_vocab_test__\n", one line of ids per input. Returns
 * how many inputs give exactly the ids and decode back to the input. */
static int run_vocab(const char *name, bool verbose)
{
	char rel[256];
	size_t ni, no;

	snprintf(rel, sizeof(rel), "models/vocab/ggml-vocab-%s.gguf", name);
	struct vocab v = vocab_open(rel);
	snprintf(rel, sizeof(rel), "models/vocab/ggml-vocab-%s.gguf.inp", name);
	char *inp = t_read_file(t_shared(rel), &ni);
	snprintf(rel, sizeof(rel), "models/vocab/ggml-vocab-%s.gguf.out", name);
	char *out = t_read_file(t_shared(rel), &no);
	ck_assert(inp && out);

	static const char sep[] = "\n__ggml_vocab_test__\n";
	int32_t *ids = malloc(MAX_IDS * sizeof(*ids));
	char *dec = malloc(65536);
	const char *pos = inp, *end = inp + ni, *line = out, *oend = out + no;
	int pass = 0, total = 0;
	while (pos < end) {
		const char *nx = memmem(pos, (size_t)(end - pos), sep, sizeof(sep) - 1);
		size_t len = nx ? (size_t)(nx - pos) : (size_t)(end - pos);
		const char *eol = memchr(line, '\n', (size_t)(oend - line));
		ck_assert_msg(eol, "%s: fewer .out lines than inputs", name);

		int n = tok_encode(v.t, pos, len, false, false, ids, MAX_IDS);
		ck_assert_int_ge(n, 0);
		bool ok = true;
		const char *p = line;
		for (int i = 0; i < n && ok; i++) {
			char *e;
			long want = strtol(p, &e, 10);
			ok = e != p && want == ids[i];
			p = e;
		}
		while (p < eol && *p == ' ')
			p++;
		ok = ok && p == eol;
		int dl = tok_decode(v.t, ids, (size_t)n, false, dec, 65536);
		ok = ok && dl == (int)len && !memcmp(dec, pos, len);
		if (!ok && verbose)
			fprintf(stderr, "%s: input %d '%.*s' fails (ids or round trip)\n", name, total,
				(int)len, pos);
		pass += ok;
		total++;
		line = eol + 1;
		pos = nx ? nx + sizeof(sep) - 1 : end;
	}
	ck_assert_msg(total == 46, "%s: %d inputs, want 46", name, total);
	printf("vocab %-15s %d/%d inputs pass\n", name, pass, total);
	free(ids);
	free(dec);
	free(inp);
	free(out);
	vocab_close(v);
	return pass;
}

static const char *const required[] = { "llama-spm", "phi-3", "gpt-2" };

START_TEST(vocab_required)
{
	ck_assert_int_eq(run_vocab(required[_i], true), 46);
}
END_TEST

/* The other pre-tokenizers. Floors are the counts reached when this test was
 * written (all 46 for each), so any regression fails. */
static const struct {
	const char *name;
	int floor;
} others[] = {
	{ "deepseek-llm", 46 }, { "deepseek-coder", 46 }, { "falcon", 46 },
	{ "starcoder", 46 },    { "mpt", 46 },            { "refact", 46 },
};

START_TEST(vocab_others)
{
	int pass = run_vocab(others[_i].name, true);
	ck_assert_msg(pass >= others[_i].floor, "%s: %d pass, floor %d", others[_i].name, pass,
		      others[_i].floor);
}
END_TEST

/* One tokenizer serves every thread (as llama.cpp's test-tokenizer-0 runs
 * it): concurrent encodes give the single-threaded ids. */
struct mt_arg {
	const struct tokenizer *t;
	const char *text;
	size_t len;
	const int32_t *want;
	int n_want;
	int bad;
};

static void *mt_worker(void *p)
{
	struct mt_arg *a = p;
	int32_t ids[4096];
	for (int r = 0; r < 200; r++) {
		int n = tok_encode(a->t, a->text, a->len, true, true, ids, 4096);
		if (n != a->n_want || memcmp(ids, a->want, (size_t)n * sizeof(*ids)))
			a->bad++;
	}
	return NULL;
}

START_TEST(shared_across_threads)
{
	static const char *const rel[] = { "models/vocab/ggml-vocab-gpt-2.gguf",
					   "models/vocab/ggml-vocab-llama-spm.gguf" };
	struct vocab v = vocab_open(rel[_i]);
	size_t len;
	char *text = t_read_file(t_shared("models/vocab/ggml-vocab-gpt-2.gguf.inp"), &len);
	ck_assert_ptr_nonnull(text);
	int32_t *want = malloc(4096 * sizeof(*want));
	int n = tok_encode(v.t, text, len, true, true, want, 4096);
	ck_assert_int_gt(n, 100);
	ck_assert_int_le(n, 4096);
	pthread_t th[4];
	struct mt_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct mt_arg){ v.t, text, len, want, n, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, mt_worker, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].bad, 0);
	}
	free(want);
	free(text);
	vocab_close(v);
}
END_TEST

/* ---- stories260K ------------------------------------------------------------ */

static void expect_ids(const struct tokenizer *t, const char *text, bool add_special,
		       const int32_t *want, int n_want)
{
	int32_t ids[T_GOLDEN_MAX_IDS];
	int n = tok_encode(t, text, strlen(text), add_special, false, ids, T_GOLDEN_MAX_IDS);
	ck_assert_msg(n == n_want, "\"%s\": %d ids, want %d", text, n, n_want);
	for (int i = 0; i < n; i++)
		ck_assert_msg(ids[i] == want[i], "\"%s\" id %d: %d, want %d", text, i, ids[i], want[i]);
}

START_TEST(stories_prompts)
{
	struct vocab v = vocab_open("models/stories260K.gguf");
	ck_assert_uint_eq(tok_n_vocab(v.t), 512);
	ck_assert_int_eq(tok_bos(v.t), 1);
	ck_assert_int_eq(tok_eos(v.t), 2);
	ck_assert(tok_add_bos(v.t) && !tok_add_eos(v.t));
	ck_assert(tok_is_eog(v.t, 2) && !tok_is_eog(v.t, 1) && !tok_is_eog(v.t, 400));
	ck_assert(!tok_is_eog(v.t, -1) && !tok_is_eog(v.t, 512));

	expect_ids(v.t, "Once upon a time", true, (const int32_t[]){ 1, 403, 407, 261, 378 }, 5);
	expect_ids(v.t, " ", true, (const int32_t[]){ 1, 410, 410 }, 3);
	expect_ids(v.t, "", true, (const int32_t[]){ 1 }, 1);
	expect_ids(v.t, "", false, NULL, 0);

	struct t_golden_case *c = calloc(8, sizeof(*c));
	int nc = t_golden_load(t_shared("golden/stories260K_greedy.json"), c, 8);
	ck_assert_int_eq(nc, 4);
	for (int i = 0; i < nc; i++)
		expect_ids(v.t, c[i].prompt, true, c[i].prompt_ids, (int)c[i].n_prompt);
	free(c);
	vocab_close(v);
}
END_TEST

/* The N-th "output_text" string of the golden JSON, escapes decoded. */
static int golden_text(const char *json, int nth, char *out, size_t cap)
{
	const char *p = json;
	for (int k = 0; k <= nth; k++) {
		p = strstr(p, "\"output_text\"");
		if (!p)
			return -1;
		p += 13;
	}
	p = strchr(p, '"') + 1;
	size_t n = 0;
	while (*p != '"' && n + 4 < cap) {
		if (*p != '\\') {
			out[n++] = *p++;
			continue;
		}
		p++;
		char e = *p++;
		if (e == 'n')
			out[n++] = '\n';
		else if (e == 't')
			out[n++] = '\t';
		else if (e == 'u') {
			unsigned cp = (unsigned)strtoul((char[5]){ p[0], p[1], p[2], p[3], 0 }, NULL, 16);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
				unsigned lo = (unsigned)strtoul((char[5]){ p[2], p[3], p[4], p[5], 0 }, NULL, 16);
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			if (cp < 0x80) {
				out[n++] = (char)cp;
			} else if (cp < 0x800) {
				out[n++] = (char)(0xc0 | cp >> 6);
				out[n++] = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				out[n++] = (char)(0xe0 | cp >> 12);
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			} else {
				out[n++] = (char)(0xf0 | cp >> 18);
				out[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			}
		} else {
			out[n++] = e;
		}
	}
	out[n] = '\0';
	return (int)n;
}

/* Generated ids render to llama-server's content, piece by piece and
 * through the streaming detokenizer. */
START_TEST(stories_outputs)
{
	struct vocab v = vocab_open("models/stories260K.gguf");
	size_t jl;
	char *json = t_read_file(t_shared("golden/stories260K_greedy.json"), &jl);
	struct t_golden_case *c = calloc(8, sizeof(*c));
	int nc = t_golden_load(t_shared("golden/stories260K_greedy.json"), c, 8);
	ck_assert(json && nc == 4);
	for (int i = 0; i < nc; i++) {
		char want[4096], got[4096], streamed[4096];
		int wl = golden_text(json, i, want, sizeof(want));
		ck_assert_int_gt(wl, 0);
		size_t gl = 0, sl = 0;
		struct tok_stream ts;
		tok_stream_init(&ts, v.t);
		for (uint32_t k = 0; k < c[i].n_output; k++) {
			int n = tok_piece(v.t, c[i].output_ids[k], false, got + gl, sizeof(got) - gl);
			ck_assert_int_ge(n, 0);
			gl += (size_t)n;
			n = tok_stream_push(&ts, c[i].output_ids[k], streamed + sl, 64);
			ck_assert_int_ge(n, 0);
			sl += (size_t)n;
		}
		int n = tok_stream_flush(&ts, streamed + sl, 64);
		ck_assert_int_ge(n, 0);
		sl += (size_t)n;
		ck_assert_msg(gl == (size_t)wl && !memcmp(got, want, gl), "case %d: '%.*s', want '%s'",
			      i, (int)gl, got, want);
		ck_assert_msg(sl == (size_t)wl && !memcmp(streamed, want, sl),
			      "case %d streamed: '%.*s'", i, (int)sl, streamed);
	}
	free(c);
	free(json);
	vocab_close(v);
}
END_TEST

/* ---- pieces, specials, streaming -------------------------------------------- */

START_TEST(pieces)
{
	struct vocab v = vocab_open("models/stories260K.gguf");
	char buf[16];
	size_t len;

	ck_assert_int_eq(tok_piece(v.t, 1, false, buf, sizeof(buf)), 0);
	ck_assert_int_eq(tok_piece(v.t, 1, true, buf, sizeof(buf)), 3);
	ck_assert(!memcmp(buf, "<s>", 3));
	ck_assert_int_eq(tok_piece(v.t, 3 + 0x0a, false, buf, sizeof(buf)), 1);
	ck_assert_int_eq(buf[0], '\n');
	ck_assert_int_eq(tok_piece(v.t, 403, false, buf, sizeof(buf)), 5); /* "▁Once" */
	ck_assert(!memcmp(buf, " Once", 5));
	/* too small: the full length, nothing past CAP */
	buf[2] = 'x';
	ck_assert_int_eq(tok_piece(v.t, 403, false, buf, 2), 5);
	ck_assert_int_eq(buf[2], 'x');
	ck_assert_int_eq(tok_piece(v.t, 512, false, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(tok_piece(v.t, -1, false, buf, sizeof(buf)), -EINVAL);
	ck_assert_str_eq(tok_text(v.t, 403, &len), "▁Once");
	ck_assert_uint_eq(len, strlen("▁Once"));
	ck_assert_ptr_null(tok_text(v.t, 600, &len));

	/* decode drops the space prefix only at the start of a sequence */
	int32_t ids[] = { 403, 407 }, with_bos[] = { 1, 403, 407 };
	char out[64];
	ck_assert_int_eq(tok_decode(v.t, ids, 2, false, out, sizeof(out)), 9);
	ck_assert(!memcmp(out, "Once upon", 9));
	ck_assert_int_eq(tok_decode(v.t, with_bos, 3, false, out, sizeof(out)), 10);
	ck_assert(!memcmp(out, " Once upon", 10));
	ck_assert_int_eq(tok_decode(v.t, with_bos, 3, true, out, sizeof(out)), 13);
	ck_assert_int_eq(tok_decode(v.t, (int32_t[]){ 7000 }, 1, false, out, sizeof(out)), -EINVAL);

	/* encode with a small buffer reports the full count */
	int32_t small[2];
	ck_assert_int_eq(tok_encode(v.t, "Once upon a time", 16, true, false, small, 2), 5);
	ck_assert_int_eq(small[0], 1);
	ck_assert_int_eq(small[1], 403);
	ck_assert_int_eq(tok_encode(v.t, "Once", 4, true, false, NULL, 0), 2);
	vocab_close(v);
}
END_TEST

START_TEST(special_tokens)
{
	struct vocab v = vocab_open("models/vocab/ggml-vocab-phi-3.gguf");
	const char *text = "<|user|>\nHi<|end|>\n<|assistant|>";
	int32_t ids[64];

	/* phi-3: <|end|> and <|endoftext|> (its EOS) end generation, </s> does not */
	ck_assert(tok_is_eog(v.t, 32007) && tok_is_eog(v.t, 32000) && !tok_is_eog(v.t, 2));
	int32_t hi;
	ck_assert_int_eq(tok_encode(v.t, "Hi", 2, false, false, &hi, 1), 1); /* "▁Hi" */
	/* as llama.cpp: Phi-3's specials eat the "\n" after them, and text
	 * after a special gets the space prefix */
	int n = tok_encode(v.t, text, strlen(text), true, true, ids, 64);
	const int32_t want[] = { 1, 32010, hi, 32007, 32001 };
	ck_assert_int_eq(n, 5);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(ids[i], want[i]);
	/* without parse_special the same text is plain text */
	n = tok_encode(v.t, text, strlen(text), false, false, ids, 64);
	for (int i = 0; i < n; i++)
		ck_assert_int_lt(ids[i], 32000);
	char out[128];
	ck_assert_int_eq(tok_decode(v.t, ids, (size_t)n, false, out, sizeof(out)), (int)strlen(text));
	ck_assert(!memcmp(out, text, strlen(text)));
	vocab_close(v);
}
END_TEST

/* Byte-fallback pieces of one character never reach the client half done. */
START_TEST(stream_utf8)
{
	struct vocab v = vocab_open("models/stories260K.gguf");
	struct tok_stream ts;
	char out[64];
	const int32_t dragon[] = { 3 + 0xf0, 3 + 0x9f, 3 + 0x90, 3 + 0x89 };

	tok_stream_init(&ts, v.t);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tok_stream_push(&ts, dragon[i], out, sizeof(out)), 0);
	ck_assert_int_eq(tok_stream_push(&ts, dragon[3], out, sizeof(out)), 4);
	ck_assert(!memcmp(out, "\xf0\x9f\x90\x89", 4));
	ck_assert_int_eq(tok_stream_flush(&ts, out, sizeof(out)), 0);

	/* an unfinished tail flushes as U+FFFD */
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0xe2, out, sizeof(out)), 0);
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0x82, out, sizeof(out)), 0);
	ck_assert_int_eq(tok_stream_flush(&ts, out, sizeof(out)), 3);
	ck_assert(!memcmp(out, "\xef\xbf\xbd", 3));

	/* a byte that can start nothing is replaced at once; text continues */
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0xff, out, sizeof(out)), 3);
	ck_assert(!memcmp(out, "\xef\xbf\xbd", 3));
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0xc3, out, sizeof(out)), 0);
	ck_assert_int_eq(tok_stream_push(&ts, 403, out, sizeof(out)), 8); /* FFFD + " Once" */
	ck_assert(!memcmp(out, "\xef\xbf\xbd Once", 8));

	/* too small a buffer: -ENOBUFS and nothing consumed */
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0xc3, out, sizeof(out)), 0);
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0xa9, out, 1), -ENOBUFS);
	ck_assert_int_eq(tok_stream_push(&ts, 3 + 0xa9, out, sizeof(out)), 2);
	ck_assert(!memcmp(out, "\xc3\xa9", 2));
	ck_assert_int_eq(tok_stream_push(&ts, 9999, out, sizeof(out)), -EINVAL);
	vocab_close(v);
}
END_TEST

/* ---- hostile metadata -------------------------------------------------------- */

/* Builds a tokenizer-only GGUF: MODEL (NULL: no key), tokens, optional
 * merges and pre, then expects tok_create to fail naming WANT. */
static void expect_create_fail(const char *model, const char *const *toks, int n_toks,
			       const char *const *merges, int n_merges, const char *pre,
			       const char *want)
{
	struct gguf_writer *w = t_gguf_writer();
	if (model)
		ck_assert_int_eq(gguf_writer_add_str(w, "tokenizer.ggml.model", model), 0);
	if (toks)
		ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.tokens", GGUF_STRING, toks,
						     (uint64_t)n_toks), 0);
	if (merges)
		ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.merges", GGUF_STRING, merges,
						     (uint64_t)n_merges), 0);
	if (pre)
		ck_assert_int_eq(gguf_writer_add_str(w, "tokenizer.ggml.pre", pre), 0);
	size_t len;
	uint8_t *buf = t_gguf_finish(w, &len);
	struct gguf *g;
	struct tokenizer *t = NULL;
	char err[256] = "";
	ck_assert_int_eq(gguf_open_buffer(buf, len, &g, err, sizeof(err)), 0);
	int r = tok_create(g, &t, err, sizeof(err));
	ck_assert_msg(r == -EINVAL, "want -EINVAL naming %s, got %d (%s)", want, r, err);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, want), "error '%s' does not name '%s'", err, want);
	gguf_close(g);
	free(buf);
}

START_TEST(hostile_metadata)
{
	static const char *const toks[] = { "a", "b", "ab" };
	static const char *const dup[] = { "a", "b", "a" };
	static const char *const merges[] = { "a b" };

	expect_create_fail(NULL, toks, 3, NULL, 0, NULL, "tokenizer.ggml.model");
	expect_create_fail("bert", toks, 3, NULL, 0, NULL, "tokenizer.ggml.model");
	expect_create_fail("llama", NULL, 0, NULL, 0, NULL, "tokenizer.ggml.tokens");
	expect_create_fail("llama", toks, 0, NULL, 0, NULL, "tokenizer.ggml.tokens");
	expect_create_fail("llama", dup, 3, NULL, 0, NULL, "duplicate");
	expect_create_fail("gpt2", toks, 3, NULL, 0, "gpt-2", "tokenizer.ggml.merges");
	expect_create_fail("gpt2", toks, 3, merges, 1, "no-such-pre", "tokenizer.ggml.pre");
}
END_TEST

/* A hand-made byte-level BPE: merges apply by rank, leftmost first. */
START_TEST(tiny_bpe)
{
	static const char *const toks[] = { "a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa" };
	static const char *const merges[] = { "b c", "a b", "a bc", "Ġ a" };
	struct gguf_writer *w = t_gguf_writer();
	ck_assert_int_eq(gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2"), 0);
	ck_assert_int_eq(gguf_writer_add_str(w, "tokenizer.ggml.pre", "gpt-2"), 0);
	ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.tokens", GGUF_STRING, toks, 8), 0);
	ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.merges", GGUF_STRING, merges, 4), 0);
	size_t len;
	uint8_t *buf = t_gguf_finish(w, &len);
	struct gguf *g;
	struct tokenizer *t;
	char err[256] = "";
	ck_assert_int_eq(gguf_open_buffer(buf, len, &g, err, sizeof(err)), 0);
	ck_assert_msg(tok_create(g, &t, err, sizeof(err)) == 0, "%s", err);
	/* "b c" ranks first, then "a bc" -> abc; " a" -> Ġa */
	expect_ids(t, "abc", false, (const int32_t[]){ 5 }, 1);
	expect_ids(t, "ab ab", false, (const int32_t[]){ 3, 6, 3 }, 3);
	/* unknown bytes drop as llama.cpp drops them (no byte token) */
	expect_ids(t, "axb", false, (const int32_t[]){ 0, 1 }, 2);
	ck_assert_int_eq(tok_bos(t), -1); /* default 11 is out of range */
	tok_destroy(t);
	gguf_close(g);
	free(buf);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("tokenizer");
	TCase *tc = tcase_create("vocab");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, vocab_required, 0, 3);
	tcase_add_loop_test(tc, vocab_others, 0, (int)(sizeof(others) / sizeof(others[0])));
	tcase_add_loop_test(tc, shared_across_threads, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("stories260K");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stories_prompts);
	tcase_add_test(tc, stories_outputs);
	tcase_add_test(tc, pieces);
	tcase_add_test(tc, special_tokens);
	tcase_add_test(tc, stream_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("metadata");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hostile_metadata);
	tcase_add_test(tc, tiny_bpe);
	suite_add_tcase(s, tc);
	return s;
}
