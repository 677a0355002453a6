/* gi-mkmodel: every weight type yields a file the reader accepts, with the
 * llama tensor set, the Q4_K_M mix, sane weight statistics, a synthetic or
 * copied vocabulary, output that depends only on the seed, and clear errors
 * for impossible shapes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "kernels/cpu/matmul.h"
#include "tests/t_util.h"

/* Runs gi-mkmodel with the NULL-terminated ARGS; its stderr goes to ERR.
 * Returns the exit status. */
static int run_mkmodel(const char *const *args, char *err, size_t errlen)
{
	char path[] = "/tmp/gi-mkmodel-err-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	const char *argv[32] = { t_build("bin/gi-mkmodel") };
	size_t n = 1;
	while (args[n - 1] && n < 31) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd, 2);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ssize_t k = pread(fd, err, errlen - 1, 0);
	err[k > 0 ? k : 0] = 0;
	close(fd);
	ck_assert_msg(WIFEXITED(st), "gi-mkmodel died");
	ck_assert_msg(WEXITSTATUS(st) != 127, "cannot run %s", argv[0]);
	return WEXITSTATUS(st);
}

static struct gguf *open_ok(const char *path)
{
	char err[512];
	struct gguf *g = NULL;
	int r = gguf_open(path, &g, err, sizeof(err));
	ck_assert_msg(r == 0, "%s", err);
	return g;
}

static const char *const types[] = { "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m" };
static const enum gi_type base_type[] = { GI_TYPE_F32, GI_TYPE_F16, GI_TYPE_BF16, GI_TYPE_Q8_0,
					  GI_TYPE_Q4_0, GI_TYPE_Q4_K, GI_TYPE_Q6_K, GI_TYPE_Q4_K };

static void check_stats(const struct gguf_tensor *t, bool norm)
{
	uint64_t n = t->ne[0] * t->ne[1];
	float *x = malloc(n * sizeof(float));
	gi_dequantize_row(t->type, t->data, x, n);
	double s = 0, s2 = 0;
	for (uint64_t i = 0; i < n; i++) {
		ck_assert(isfinite(x[i]));
		s += x[i];
		s2 += (double)x[i] * x[i];
	}
	double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
	if (norm) {
		ck_assert(mean == 1.0 && sd == 0.0);
	} else {
		ck_assert_msg(fabs(mean) < 0.002, "%.*s mean %g", (int)t->name.len, t->name.ptr, mean);
		ck_assert_msg(sd > 0.017 && sd < 0.023, "%.*s std %g", (int)t->name.len, t->name.ptr, sd);
	}
	free(x);
}

START_TEST(every_type)
{
	char *dir = t_tmpdir(), out[512], err[2048];
	snprintf(out, sizeof(out), "%s/m.gguf", dir);
	const char *args[] = { "--dim", "256", "--layers", "2", "--heads", "4", "--kv-heads", "2",
			       "--ffn", "512", "--ctx", "128", "--vocab-size", "300", "--type",
			       types[_i], "--seed", "7", "--out", out, NULL };
	ck_assert_msg(run_mkmodel(args, err, sizeof(err)) == 0, "%s", err);
	struct gguf *g = open_ok(out);
	ck_assert_uint_eq(gguf_n_tensors(g), 3 + 9 * 2);
	uint32_t u;
	struct gguf_str s;
	ck_assert_int_eq(gguf_get_str(g, "general.architecture", &s, err, sizeof(err)), 0);
	ck_assert(gguf_str_eq(s, "llama"));
	ck_assert_int_eq(gguf_get_u32(g, "llama.embedding_length", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 256);
	ck_assert_int_eq(gguf_get_u32(g, "llama.attention.head_count_kv", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 2);
	ck_assert_int_eq(gguf_get_u32(g, "llama.rope.dimension_count", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 64);
	ck_assert_int_eq(gguf_get_u32(g, "llama.vocab_size", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 300);

	bool mix = strcmp(types[_i], "q4_k_m") == 0;
	static const struct { const char *name; uint64_t ne0, ne1; bool q6; } want[] = {
		{ "token_embd.weight", 256, 300, false }, { "output.weight", 256, 300, true },
		{ "blk.1.attn_q.weight", 256, 256, false }, { "blk.1.attn_k.weight", 256, 128, false },
		{ "blk.1.attn_v.weight", 256, 128, true }, { "blk.0.attn_output.weight", 256, 256, false },
		{ "blk.0.ffn_gate.weight", 256, 512, false }, { "blk.0.ffn_down.weight", 512, 256, true },
		{ "blk.1.ffn_up.weight", 256, 512, false },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		enum gi_type t = mix && want[i].q6 ? GI_TYPE_Q6_K : base_type[_i];
		const struct gguf_tensor *ten;
		int r = gguf_require_tensor(g, want[i].name, GGUF_TYPE_BIT(t), 2,
					    (const uint64_t[]){ want[i].ne0, want[i].ne1 }, &ten, err,
					    sizeof(err));
		ck_assert_msg(r == 0, "%s", err);
		check_stats(ten, false);
	}
	static const char *const norms[] = { "output_norm.weight", "blk.0.attn_norm.weight",
					     "blk.1.ffn_norm.weight" };
	for (size_t i = 0; i < 3; i++) {
		const struct gguf_tensor *ten;
		ck_assert_int_eq(gguf_require_tensor(g, norms[i], GGUF_TYPE_BIT(GI_TYPE_F32), 1,
						     (const uint64_t[]){ 256 }, &ten, err, sizeof(err)), 0);
		check_stats(ten, true);
	}
	gguf_close(g);
	unlink(out);
	rmdir(dir);
	free(dir);
}
END_TEST

static void *slurp(const char *path, size_t *len)
{
	void *p = t_read_file(path, len);
	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(seeded_output)
{
	char *dir = t_tmpdir(), a[512], b[512], c[512], err[2048];
	snprintf(a, sizeof(a), "%s/a.gguf", dir);
	snprintf(b, sizeof(b), "%s/b.gguf", dir);
	snprintf(c, sizeof(c), "%s/c.gguf", dir);
	const char *args[] = { "--type", "q4_0", "--seed", "5", "--out", a, NULL };
	ck_assert_msg(run_mkmodel(args, err, sizeof(err)) == 0, "%s", err);
	args[5] = b;
	ck_assert_msg(run_mkmodel(args, err, sizeof(err)) == 0, "%s", err);
	args[3] = "6";
	args[5] = c;
	ck_assert_msg(run_mkmodel(args, err, sizeof(err)) == 0, "%s", err);
	size_t la, lb, lc;
	uint8_t *pa = slurp(a, &la), *pb = slurp(b, &lb), *pc = slurp(c, &lc);
	ck_assert_uint_eq(la, lb);
	ck_assert_int_eq(memcmp(pa, pb, la), 0);
	ck_assert_uint_eq(la, lc);
	ck_assert_int_ne(memcmp(pa, pc, la), 0);
	/* threads change nothing: tensors of several chunks, made on 1 and 3 threads */
	const char *big[] = { "--dim", "512", "--ffn", "1024", "--heads", "8", "--kv-heads", "2",
			      "--layers", "1", "--vocab-size", "1200", "--type", "q8_0",
			      "--threads", "1", "--out", b, NULL };
	ck_assert_msg(run_mkmodel(big, err, sizeof(err)) == 0, "%s", err);
	big[15] = "3";
	big[17] = c;
	ck_assert_msg(run_mkmodel(big, err, sizeof(err)) == 0, "%s", err);
	free(pb);
	free(pc);
	pb = slurp(b, &lb);
	pc = slurp(c, &lc);
	ck_assert_uint_eq(lb, lc);
	ck_assert_int_eq(memcmp(pb, pc, lb), 0);
	/* the default preset is "small" */
	struct gguf *g = open_ok(a);
	ck_assert_int_eq(gguf_require_tensor(g, "blk.1.ffn_down.weight", GGUF_TYPE_BIT(GI_TYPE_Q4_0),
					     2, (const uint64_t[]){ 768, 256 }, NULL, err, sizeof(err)), 0);
	gguf_close(g);
	free(pa);
	free(pb);
	free(pc);
	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(synthetic_vocab)
{
	char *dir = t_tmpdir(), out[512], err[2048];
	snprintf(out, sizeof(out), "%s/v.gguf", dir);
	const char *args[] = { "--dim", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1",
			       "--ffn", "64", "--vocab-size", "2000", "--out", out, NULL };
	ck_assert_msg(run_mkmodel(args, err, sizeof(err)) == 0, "%s", err);
	struct gguf *g = open_ok(out);
	const struct gguf_kv *toks, *types_kv, *scores;
	struct gguf_str model;
	ck_assert_int_eq(gguf_get_str(g, "tokenizer.ggml.model", &model, err, sizeof(err)), 0);
	ck_assert(gguf_str_eq(model, "llama"));
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks, err, sizeof(err)), 0);
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &types_kv, err, sizeof(err)), 0);
	ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_F32, &scores, err, sizeof(err)), 0);
	ck_assert_uint_eq(toks->v.arr.n, 2000);
	ck_assert(gguf_str_eq(toks->v.arr.strs[0], "<unk>") && gguf_str_eq(toks->v.arr.strs[2], "</s>"));
	ck_assert(gguf_str_eq(toks->v.arr.strs[3], "<0x00>") && gguf_str_eq(toks->v.arr.strs[258], "<0xFF>"));
	ck_assert(gguf_str_eq(toks->v.arr.strs[259], "\xe2\x96\x81"));
	ck_assert_int_eq(gguf_arr_i64(types_kv, 1), 3);
	ck_assert_int_eq(gguf_arr_i64(types_kv, 100), 6);
	ck_assert_int_eq(gguf_arr_i64(types_kv, 1999), 1);
	for (uint64_t i = 260; i < 2000; i++)
		ck_assert(gguf_arr_f64(scores, i) < gguf_arr_f64(scores, i - 1));
	/* all distinct */
	for (uint64_t i = 0; i < 2000; i++)
		for (uint64_t j = i + 1; j < 2000; j++)
			ck_assert(toks->v.arr.strs[i].len != toks->v.arr.strs[j].len ||
				  memcmp(toks->v.arr.strs[i].ptr, toks->v.arr.strs[j].ptr,
					 toks->v.arr.strs[i].len) != 0);
	const struct gguf_tensor *t;
	ck_assert_int_eq(gguf_require_tensor(g, "token_embd.weight", GGUF_TYPE_BIT(GI_TYPE_F32), 2,
					     (const uint64_t[]){ 32, 2000 }, &t, err, sizeof(err)), 0);
	gguf_close(g);
	unlink(out);
	rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(copied_vocab)
{
	char *dir = t_tmpdir(), out[512], err[2048];
	char vocab[1024];
	snprintf(vocab, sizeof(vocab), "%s", t_shared("models/vocab/ggml-vocab-llama-spm.gguf"));
	snprintf(out, sizeof(out), "%s/v.gguf", dir);
	const char *args[] = { "--dim", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1",
			       "--ffn", "64", "--type", "f16", "--vocab", vocab, "--out", out, NULL };
	ck_assert_msg(run_mkmodel(args, err, sizeof(err)) == 0, "%s", err);
	struct gguf *g = open_ok(out), *src = open_ok(vocab);
	uint64_t n_tok_keys = 0;
	for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
		const struct gguf_kv *a = gguf_kv_at(src, i);
		char key[256];
		if (a->key.len < 10 || memcmp(a->key.ptr, "tokenizer.", 10) || a->key.len >= sizeof(key))
			continue;
		n_tok_keys++;
		memcpy(key, a->key.ptr, a->key.len);
		key[a->key.len] = 0;
		const struct gguf_kv *b = gguf_find_kv(g, key);
		ck_assert_msg(b != NULL, "%s not copied", key);
		ck_assert_int_eq(a->type, b->type);
		if (a->type != GGUF_ARRAY)
			continue;
		ck_assert_uint_eq(a->v.arr.n, b->v.arr.n);
		for (uint64_t k = 0; k < a->v.arr.n; k++)
			ck_assert(a->v.arr.type == GGUF_STRING
					  ? a->v.arr.strs[k].len == b->v.arr.strs[k].len &&
						    !memcmp(a->v.arr.strs[k].ptr, b->v.arr.strs[k].ptr,
							    a->v.arr.strs[k].len)
					  : gguf_arr_f64(a, k) == gguf_arr_f64(b, k));
	}
	ck_assert_uint_ge(n_tok_keys, 5);
	uint32_t u;
	ck_assert_int_eq(gguf_get_u32(g, "llama.vocab_size", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(u, 32000);
	ck_assert_int_eq(gguf_require_tensor(g, "output.weight", GGUF_TYPE_BIT(GI_TYPE_F16), 2,
					     (const uint64_t[]){ 32, 32000 }, NULL, err, sizeof(err)), 0);
	gguf_close(g);
	gguf_close(src);
	unlink(out);

	const char *mismatch[] = { "--vocab", vocab, "--vocab-size", "1000", "--out", out, NULL };
	ck_assert_int_ne(run_mkmodel(mismatch, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "--vocab-size 1000"));
	ck_assert_int_ne(access(out, F_OK), 0);
	rmdir(dir);
	free(dir);
}
END_TEST

static const struct {
	const char *args[8];
	const char *msg;
} bad_args[] = {
	{ { "--type", "q4_k", "--dim", "64", "--heads", "2", "--kv-heads", "1" }, "not a multiple of 256" },
	{ { "--vocab-size", "100" }, "--vocab-size 100" },
	{ { "--heads", "3" }, "--heads 3" },
	{ { "--heads", "8", "--kv-heads", "3" }, "--kv-heads 3" },
	{ { "--type", "q5_k" }, "unknown type 'q5_k'" },
	{ { "--preset", "huge" }, "unknown preset 'huge'" },
	{ { "--dim", "-5" }, "--dim: bad value '-5'" },
	{ { "--layers", "0" }, "must be > 0" },
	{ { "--threads", "0" }, "--threads 0" },
	{ { "--vocab", "/nonexistent.gguf" }, "/nonexistent.gguf" },
};

START_TEST(bad_options)
{
	char *dir = t_tmpdir(), out[512], err[2048];
	snprintf(out, sizeof(out), "%s/bad.gguf", dir);
	const char *args[16];
	size_t n = 0;
	for (; n < 8 && bad_args[_i].args[n]; n++)
		args[n] = bad_args[_i].args[n];
	args[n++] = "--out";
	args[n++] = out;
	args[n] = NULL;
	ck_assert_int_ne(run_mkmodel(args, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, bad_args[_i].msg), "stderr \"%s\" lacks \"%s\"", err, bad_args[_i].msg);
	ck_assert_int_ne(access(out, F_OK), 0);
	const char *no_out[] = { "--dim", "64", NULL };
	ck_assert_int_eq(run_mkmodel(no_out, err, sizeof(err)), 2);
	ck_assert_ptr_nonnull(strstr(err, "--out is required"));
	rmdir(dir);
	free(dir);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("mkmodel");
	TCase *tc = tcase_create("mkmodel");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, every_type, 0, (int)(sizeof(types) / sizeof(types[0])));
	tcase_add_test(tc, seeded_output);
	tcase_add_test(tc, synthetic_vocab);
	tcase_add_test(tc, copied_vocab);
	tcase_add_loop_test(tc, bad_options, 0, (int)(sizeof(bad_args) / sizeof(bad_args[0])));
	suite_add_tcase(s, tc);
	return s;
}
