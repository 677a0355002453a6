/* gi-infer: the engine in one process, no daemon. Loads a model, encodes the
 * prompt, prefills and decodes with the sampler, and streams the text (or
 * prints one JSON object with --json). --batch N decodes N copies of the
 * prompt together, for measurements; the text shown is the first copy's. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

static const char usage[] =
	"usage: gi-infer --model PATH --prompt P [--max-tokens N] [--temp T] [--top-k K]\n"
	"                [--top-p P] [--seed S] [--threads N] [--batch N] [--json]\n";

struct args {
	const char *model, *prompt;
	uint32_t max_tokens, batch;
	int threads;
	bool json;
	struct sampler_params sp;
};

struct seq {
	struct sampler *smp;
	uint32_t *blocks;
	int32_t *hist;      /* prompt then output */
	uint32_t n_hist;
	int32_t next;
	bool done;
	float *logits;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *ret)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= lo && d <= hi)) {
		fprintf(stderr, "gi-infer: %s: invalid value '%s' (%g..%g)\n", opt, v, lo, hi);
		return -EINVAL;
	}
	*ret = d;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	sampler_params_default(&a->sp);
	a->sp.temperature = 0;
	a->max_tokens = 64;
	a->batch = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--json")) {
			a->json = true;
			continue;
		}
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "gi-infer: %s: %s\n%s", o,
				strncmp(o, "--", 2) ? "unknown argument" : "missing value", usage);
			return -EINVAL;
		}
		const char *v = argv[++i];
		double d = 0;
		int r = 0;
		if (!strcmp(o, "--model"))
			a->model = v;
		else if (!strcmp(o, "--prompt"))
			a->prompt = v;
		else if (!strcmp(o, "--max-tokens") && !(r = parse_num(o, v, 0, 1 << 20, &d)))
			a->max_tokens = (uint32_t)d;
		else if (!strcmp(o, "--temp") && !(r = parse_num(o, v, 0, 100, &d)))
			a->sp.temperature = (float)d;
		else if (!strcmp(o, "--top-k") && !(r = parse_num(o, v, 0, 1 << 30, &d)))
			a->sp.top_k = (int32_t)d;
		else if (!strcmp(o, "--top-p") && !(r = parse_num(o, v, 0, 1, &d)))
			a->sp.top_p = (float)d;
		else if (!strcmp(o, "--seed") && !(r = parse_num(o, v, 0, 1.8e19, &d)))
			a->sp.seed = (uint64_t)d;
		else if (!strcmp(o, "--threads") && !(r = parse_num(o, v, 0, 1024, &d)))
			a->threads = (int)d;
		else if (!strcmp(o, "--batch") && !(r = parse_num(o, v, 1, 256, &d)))
			a->batch = (uint32_t)d;
		else if (!r) {
			fprintf(stderr, "gi-infer: unknown option %s\n%s", o, usage);
			return -EINVAL;
		}
		if (r)
			return r;
	}
	if (!a->model || !a->prompt) {
		fprintf(stderr, "gi-infer: --model and --prompt are required\n%s", usage);
		return -EINVAL;
	}
	return 0;
}

static void json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_ids(const char *key, const int32_t *ids, uint32_t n)
{
	printf("\"%s\": [", key);
	for (uint32_t i = 0; i < n; i++)
		printf("%s%" PRId32, i ? ", " : "", ids[i]);
	printf("], ");
}

/* Samples the next token of S from its logits; marks it done at EOG or at
 * the token limit. */
static void take(const struct model *m, const struct args *a, struct seq *s, uint32_t n_prompt)
{
	int32_t id = sampler_sample(s->smp, s->logits, s->hist, s->n_hist, NULL);
	if (tok_is_eog(model_tokenizer(m), id)) {
		s->done = true;
		return;
	}
	s->hist[s->n_hist++] = id;
	s->next = id;
	if (s->n_hist - n_prompt >= a->max_tokens)
		s->done = true;
}

static void emit(struct tok_stream *ts, int32_t id)
{
	char buf[256];
	int n = tok_stream_push(ts, id, buf, sizeof(buf));
	if (n > 0) {
		fwrite(buf, 1, (size_t)n, stdout);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	char err[512];
	if (parse_args(argc, argv, &a))
		return 2;
	if (sampler_params_check(&a.sp, err, sizeof(err))) {
		fprintf(stderr, "gi-infer: %s\n", err);
		return 2;
	}
	double t0 = now_ms();
	struct model_opts mo = { .size = sizeof(mo), .n_threads = a.threads, .max_seqs = a.batch,
				 .max_batch_tokens = a.batch > 512 ? a.batch : 512 };
	struct model *m;
	int r = model_load(a.model, &mo, &m, err, sizeof(err));
	if (r) {
		fprintf(stderr, "gi-infer: %s: %s\n", a.model, err);
		return 1;
	}
	double t_load = now_ms() - t0;
	const struct model_info *in = model_get_info(m);
	const struct tokenizer *tok = model_tokenizer(m);
	size_t plen = strlen(a.prompt), cap = plen + 8;
	int32_t *prompt = malloc(cap * sizeof(*prompt));
	int np = prompt ? tok_encode(tok, a.prompt, plen, true, true, prompt, cap) : -ENOMEM;
	if (np <= 0 || (size_t)np > cap) {
		fprintf(stderr, "gi-infer: cannot encode the prompt (%d)\n", np);
		return 1;
	}
	uint32_t n_prompt = (uint32_t)np, nb = (n_prompt + a.max_tokens + KV_BLOCK_TOKENS) / KV_BLOCK_TOKENS;
	struct kv_cache *kv;
	struct seq *seqs = calloc(a.batch, sizeof(*seqs));
	struct step_seq *steps = calloc(a.batch, sizeof(*steps));
	uint32_t *blocks = calloc((size_t)nb * a.batch, sizeof(*blocks));
	if (!seqs || !steps || !blocks || kv_cache_create(m, nb * a.batch, &kv)) {
		fprintf(stderr, "gi-infer: out of memory for %u KV blocks\n", nb * a.batch);
		return 1;
	}
	for (uint32_t i = 0; i < a.batch; i++) {
		struct seq *s = &seqs[i];
		s->blocks = blocks + (size_t)i * nb;
		for (uint32_t j = 0; j < nb; j++)
			s->blocks[j] = i * nb + j;
		s->hist = malloc((n_prompt + a.max_tokens + 1) * sizeof(*s->hist));
		s->logits = malloc(in->n_vocab * sizeof(float));
		if (!s->hist || !s->logits || sampler_create(&a.sp, in->n_vocab, &s->smp)) {
			fprintf(stderr, "gi-infer: out of memory\n");
			return 1;
		}
		memcpy(s->hist, prompt, n_prompt * sizeof(*prompt));
		s->n_hist = n_prompt;
	}
	struct tok_stream ts;
	tok_stream_init(&ts, tok);

	/* Prefill: every copy of the prompt, in steps of at most 512 tokens. */
	double t1 = now_ms();
	uint32_t total = n_prompt * a.batch, cur = 0, off = 0;
	while (cur < a.batch) {
		uint32_t n = 0, budget = 512;
		while (cur < a.batch && budget) {
			uint32_t cnt = n_prompt - off < budget ? n_prompt - off : budget;
			steps[n++] = (struct step_seq){ .blocks = seqs[cur].blocks, .n_blocks = nb,
							.pos = off, .tokens = prompt + off,
							.n_tokens = cnt,
							.logits = off + cnt == n_prompt ? seqs[cur].logits : NULL };
			budget -= cnt;
			off += cnt;
			if (off == n_prompt) {
				cur++;
				off = 0;
			}
		}
		if ((r = model_step(m, kv, steps, n))) {
			fprintf(stderr, "gi-infer: prefill step failed: %s\n", strerror(-r));
			return 1;
		}
	}
	for (uint32_t i = 0; i < a.batch && a.max_tokens; i++)
		take(m, &a, &seqs[i], n_prompt);
	if (!a.json && a.max_tokens && seqs[0].n_hist > n_prompt)
		emit(&ts, seqs[0].next);
	double t2 = now_ms();

	/* Decode: one token of every running copy per step. */
	uint32_t decoded = 0;
	for (;;) {
		uint32_t n = 0;
		for (uint32_t i = 0; i < a.batch; i++) {
			struct seq *s = &seqs[i];
			if (s->done || s->n_hist == n_prompt)
				continue;
			steps[n++] = (struct step_seq){ .blocks = s->blocks, .n_blocks = nb,
							.pos = s->n_hist - 1, .tokens = &s->next,
							.n_tokens = 1, .logits = s->logits };
		}
		if (!n)
			break;
		if ((r = model_step(m, kv, steps, n))) {
			fprintf(stderr, "gi-infer: decode step failed: %s\n", strerror(-r));
			return 1;
		}
		decoded += n;
		for (uint32_t i = 0, j = 0; i < a.batch && j < n; i++) {
			struct seq *s = &seqs[i];
			if (s->done || s->n_hist == n_prompt)
				continue;
			j++;
			uint32_t before = s->n_hist;
			take(m, &a, s, n_prompt);
			if (!i && !a.json && s->n_hist > before)
				emit(&ts, s->next);
		}
	}
	double t3 = now_ms();
	double pre_ms = t2 - t1, dec_ms = t3 - t2;
	const struct seq *s0 = &seqs[0];
	uint32_t n_out = s0->n_hist - n_prompt;
	const char *finish = n_out >= a.max_tokens ? "length" : "stop";
	if (!a.json) {
		char buf[64];
		int n = tok_stream_flush(&ts, buf, sizeof(buf));
		if (n > 0)
			fwrite(buf, 1, (size_t)n, stdout);
		putchar('\n');
		fprintf(stderr,
			"gi-infer: %s, load %.1f ms, prefill %u x %u tokens %.1f ms (%.1f t/s), "
			"decode %u tokens %.1f ms (%.1f t/s)\n",
			in->backend, t_load, a.batch, n_prompt, pre_ms, total / (pre_ms / 1e3), decoded,
			dec_ms, decoded / (dec_ms / 1e3));
	} else {
		int tl = tok_decode(tok, s0->hist + n_prompt, n_out, false, NULL, 0);
		char *text = malloc(tl > 0 ? (size_t)tl + 1 : 1);
		if (!text)
			return 1;
		tl = tl > 0 ? tok_decode(tok, s0->hist + n_prompt, n_out, false, text, (size_t)tl + 1) : 0;
		printf("{");
		json_ids("prompt_ids", prompt, n_prompt);
		json_ids("output_ids", s0->hist + n_prompt, n_out);
		printf("\"text\": ");
		json_str(text, tl > 0 ? (size_t)tl : 0);
		printf(", \"finish_reason\": \"%s\", \"batch\": %u, \"backend\": ", finish, a.batch);
		json_str(in->backend, strlen(in->backend));
		printf(", \"timings\": {\"load_ms\": %.3f, \"prefill_ms\": %.3f, \"decode_ms\": %.3f, "
		       "\"prefill_tokens\": %u, \"decode_tokens\": %u, \"prefill_tokens_per_s\": %.1f, "
		       "\"decode_tokens_per_s\": %.1f}}\n",
		       t_load, pre_ms, dec_ms, total, decoded, total / (pre_ms / 1e3),
		       decoded ? decoded / (dec_ms / 1e3) : 0.0);
		free(text);
	}
	for (uint32_t i = 0; i < a.batch; i++) {
		sampler_free(seqs[i].smp);
		free(seqs[i].hist);
		free(seqs[i].logits);
	}
	free(seqs);
	free(steps);
	free(blocks);
	free(prompt);
	kv_cache_free(kv);
	model_free(m);
	return 0;
}
