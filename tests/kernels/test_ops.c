/* CPU backend ops against plain double-precision references: every row
 * kernel in every SIMD table this CPU runs, over many (odd) sizes, with a
 * per-op tolerance; then graph nodes (matmul with bias and accumulate, rope,
 * paged attention with GQA, F32 and F16 pools, NORM and NEOX rope) through
 * the backend interface. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/ops.h"
#include "tests/t_util.h"

static uint64_t rng = 42;

static float frand(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void fill(float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = frand() * scale;
}

static const size_t sizes[] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 67, 100, 128, 257, 1000 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
#define MAXN 1000

static void close_to(double got, double want, double tol, const char *op, const char *isa,
		     size_t n, size_t i)
{
	ck_assert_msg(fabs(got - want) <= tol * (1 + fabs(want)),
		      "%s (%s, n %zu) [%zu]: %.9g, want %.9g", op, isa, n, i, got, want);
}

static const struct cpu_ops *tables[3];
static int n_tables;

static void setup(void)
{
	static const char *const want[] = { "avx512", "avx2" };

	n_tables = cpu_ops_all(tables, 3);
	/* Levels this CPU (or a GI_NO_SIMD build) lacks are not compared. */
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		bool have = false;

		for (int t = 0; t < n_tables; t++)
			have |= !strcmp(tables[t]->name, want[k]);
		if (!have)
			fprintf(stderr, "test_ops: %s ops skipped: not available here\n", want[k]);
	}
}

START_TEST(row_ops)
{
	static float a[MAXN], b[MAXN], w[MAXN], y[MAXN], e[MAXN];
	static gi_f16 h[MAXN];
	for (int t = 0; t < n_tables; t++) {
		const struct cpu_ops *o = tables[t];
		for (size_t si = 0; si < N_SIZES; si++) {
			size_t n = sizes[si];
			fill(a, n, 3);
			fill(b, n, 2);
			fill(w, n, 1);
			double dot = 0, ss = 0;
			for (size_t i = 0; i < n; i++) {
				dot += (double)a[i] * b[i];
				ss += (double)a[i] * a[i];
			}
			close_to(o->dot_f32(a, b, n), dot, 1e-5 * sqrt((double)n), "dot_f32", o->name, n, 0);

			o->rmsnorm(a, w, y, n, 1e-5f);
			double r = 1 / sqrt(ss / (double)n + 1e-5);
			for (size_t i = 0; i < n; i++)
				close_to(y[i], a[i] * r * w[i], 1e-5, "rmsnorm", o->name, n, i);

			o->silu_mul(a, b, y, n);
			for (size_t i = 0; i < n; i++)
				close_to(y[i], a[i] / (1 + exp(-(double)a[i])) * b[i], 1e-5, "silu_mul",
					 o->name, n, i);

			memcpy(y, a, n * sizeof(float));
			o->add(y, b, n);
			for (size_t i = 0; i < n; i++)
				close_to(y[i], (double)a[i] + b[i], 1e-6, "add", o->name, n, i);

			memcpy(y, a, n * sizeof(float));
			o->scale(y, 0.37f, n);
			for (size_t i = 0; i < n; i++)
				close_to(y[i], a[i] * 0.37, 1e-6, "scale", o->name, n, i);

			float mx = a[0];
			for (size_t i = 1; i < n; i++)
				mx = a[i] > mx ? a[i] : mx;
			ck_assert_msg(o->max(a, n) == mx, "max (%s, n %zu)", o->name, n);

			double sum = 0;
			for (size_t i = 0; i < n; i++)
				sum += exp((double)a[i] - 1.5);
			close_to(o->exp_sum(a, e, n, 1.5f), sum, 2e-6 * sqrt((double)n), "exp_sum",
				 o->name, n, 0);
			for (size_t i = 0; i < n; i++)
				close_to(e[i], exp((double)a[i] - 1.5), 2e-6, "exp_sum e", o->name, n, i);

			/* F16 conversion: exact against the reference converter */
			o->to_f16(a, h, n);
			memcpy(y, a, n * sizeof(float));
			o->round_f16(y, n);
			for (size_t i = 0; i < n; i++) {
				ck_assert_msg(h[i] == gi_f32_to_f16(a[i]), "to_f16 (%s) [%zu]", o->name, i);
				ck_assert_msg(y[i] == gi_f16_to_f32(h[i]), "round_f16 (%s) [%zu]", o->name,
					      i);
			}
		}
	}
}
END_TEST

/* kq and pv of table O for NK keys of HD dims; values STRIDE apart. */
static void check_attn_kernels(const struct cpu_ops *o, uint32_t hd, uint32_t nk, uint32_t stride)
{
	static float q[128], k[16 * 260], sc[16], out[128], ref[128], p[16];
	static gi_f16 kh[16 * 260];
	const uint32_t kstride = 19;
	fill(q, hd, 1);
	fill(k, (size_t)16 * 260, 1);
	fill(p, nk, 1);
	for (size_t i = 0; i < (size_t)16 * 260; i++) {
		kh[i] = gi_f32_to_f16(k[i]);
		k[i] = gi_f16_to_f32(kh[i]);
	}
	for (int f16 = 0; f16 < 2; f16++) {
		if (f16)
			o->kq_f16(q, kh, kstride, nk, hd, 0.3f, sc);
		else
			o->kq_f32(q, k, kstride, nk, hd, 0.3f, sc);
		/* keys transposed: element j of key i at j * kstride + i */
		for (uint32_t i = 0; i < nk; i++) {
			double d = 0;
			for (uint32_t j = 0; j < hd; j++)
				d += (double)q[j] * k[j * kstride + i];
			close_to(sc[i], d * 0.3, 1e-5, f16 ? "kq_f16" : "kq_f32", o->name, hd, i);
		}
		fill(out, hd, 1);
		for (uint32_t j = 0; j < hd; j++) {
			double d = out[j];
			for (uint32_t i = 0; i < nk; i++)
				d += (double)p[i] * k[i * stride + j];
			ref[j] = (float)d;
		}
		if (f16)
			o->pv_f16(out, p, kh, stride, nk, hd);
		else
			o->pv_f32(out, p, k, stride, nk, hd);
		for (uint32_t j = 0; j < hd; j++)
			close_to(out[j], ref[j], 1e-5, f16 ? "pv_f16" : "pv_f32", o->name, hd, j);
	}
}

START_TEST(attention_kernels)
{
	static const uint32_t hds[] = { 1, 4, 7, 8, 16, 24, 32, 64, 80, 128 };
	for (int t = 0; t < n_tables; t++)
		for (size_t hi = 0; hi < sizeof(hds) / sizeof(hds[0]); hi++)
			for (uint32_t nk = 1; nk <= 16; nk++) {
				/* values strided, and packed rows (stride == hd) as in the pool */
				check_attn_kernels(tables[t], hds[hi], nk, hds[hi] * 2 + 3);
				check_attn_kernels(tables[t], hds[hi], nk, hds[hi]);
			}
}
END_TEST

START_TEST(rope)
{
	static float cs[64], sn[64], x[128], y[128];
	for (int neox = 0; neox < 2; neox++) {
		for (uint32_t pos = 0; pos < 3000; pos += 997) {
			uint32_t n_rot = 32, hd = 40;
			cpu_rope_cache(cs, sn, pos, n_rot, 10000.0f, 0.5f);
			fill(x, hd, 1);
			memcpy(y, x, sizeof(x));
			cpu_rope_head(y, cs, sn, n_rot, neox);
			for (uint32_t i = 0; i < n_rot / 2; i++) {
				double th = pos * 0.5 * pow(10000.0, -2.0 * i / n_rot);
				uint32_t a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
				double ra = x[a] * cos(th) - x[b] * sin(th), rb = x[a] * sin(th) + x[b] * cos(th);
				/* float angles at positions in the thousands: 1e-3 */
				close_to(y[a], ra, 2e-3, "rope a", neox ? "neox" : "norm", pos, i);
				close_to(y[b], rb, 2e-3, "rope b", neox ? "neox" : "norm", pos, i);
			}
			for (uint32_t i = n_rot; i < hd; i++)
				ck_assert(y[i] == x[i]);
		}
	}
}
END_TEST

/* ---- graph nodes through the backend ---------------------------------------- */

#define E 64   /* embedding = n_head * hd */
#define NH 4
#define NKV 2
#define HD 16
#define KVD (NKV * HD)
#define MAXT 32
#define LONG 4130 /* past the attention's score cache (4096): the two-pass path */

struct ref_seq {
	double (*k)[KVD], (*v)[KVD]; /* history by position */
};

static void ref_rope(double *x, uint32_t pos, uint32_t n_rot, int neox)
{
	for (uint32_t i = 0; i < n_rot / 2; i++) {
		double th = pos * pow(10000.0, -2.0 * i / n_rot);
		uint32_t a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
		double x0 = x[a], x1 = x[b];
		x[a] = x0 * cos(th) - x1 * sin(th);
		x[b] = x0 * sin(th) + x1 * cos(th);
	}
}

static void matvec(const float *w, const float *x, uint32_t n, uint32_t k, double *y)
{
	for (uint32_t j = 0; j < n; j++) {
		double s = 0;
		for (uint32_t i = 0; i < k; i++)
			s += (double)w[j * k + i] * x[i];
		y[j] = s;
	}
}

/* K and V of one token into the reference history. */
static void ref_kv(const float *wk, const float *wv, const float *x, uint32_t pos, int neox,
		   struct ref_seq *rs)
{
	matvec(wk, x, KVD, E, rs->k[pos]);
	matvec(wv, x, KVD, E, rs->v[pos]);
	for (uint32_t h = 0; h < NKV; h++)
		ref_rope(rs->k[pos] + h * HD, pos, 12, neox);
}

/* One token after ref_kv: returns x + Wo attention(x). */
static void ref_out(const float *wq, const float *bq, const float *wo, const float *x,
		    uint32_t pos, int neox, const struct ref_seq *rs, double *out)
{
	double q[E], att[E] = { 0 };
	matvec(wq, x, E, E, q);
	for (uint32_t h = 0; h < NH; h++) {
		for (uint32_t d = 0; d < HD; d++)
			q[h * HD + d] += bq[h * HD + d];
		ref_rope(q + h * HD, pos, 12, neox);
	}
	double *sc = malloc((pos + 1) * sizeof(double));
	for (uint32_t h = 0; h < NH; h++) {
		uint32_t kh = h / (NH / NKV);
		double mx = -INFINITY, sum = 0;
		for (uint32_t j = 0; j <= pos; j++) {
			sc[j] = 0;
			for (uint32_t d = 0; d < HD; d++)
				sc[j] += q[h * HD + d] * rs->k[j][kh * HD + d];
			sc[j] /= sqrt((double)HD);
			mx = fmax(mx, sc[j]);
		}
		for (uint32_t j = 0; j <= pos; j++)
			sum += sc[j] = exp(sc[j] - mx);
		for (uint32_t j = 0; j <= pos; j++)
			for (uint32_t d = 0; d < HD; d++)
				att[h * HD + d] += sc[j] / sum * rs->v[j][kh * HD + d];
	}
	free(sc);
	float attf[E];
	for (uint32_t i = 0; i < E; i++)
		attf[i] = (float)att[i];
	matvec(wo, attf, E, E, out);
	for (uint32_t i = 0; i < E; i++)
		out[i] += x[i];
}

static const struct {
	enum gi_type kv;
	int neox;
	int threads;
	double tol;
	int long_ctx; /* one sequence past the score cache, blocks of 16 */
} gcfg[] = {
	{ GI_TYPE_F32, 0, 1, 1e-4, 0 }, { GI_TYPE_F32, 1, 2, 1e-4, 0 },
	{ GI_TYPE_F16, 0, 2, 3e-3, 0 }, { GI_TYPE_F16, 1, 1, 3e-3, 0 },
	{ GI_TYPE_F32, 0, 2, 1e-4, 1 }, { GI_TYPE_F16, 1, 2, 3e-3, 1 },
};

START_TEST(graph_attention)
{
	struct gi_backend *be;
	char err[256];
	struct gi_backend_opts bo = { .size = sizeof(bo), .n_threads = gcfg[_i].threads };
	ck_assert_msg(gi_backend_create(&bo, &be, err, sizeof(err)) == 0, "%s", err);
	static float wq[E * E], wk[KVD * E], wv[KVD * E], wo[E * E], bq[E];
	fill(wq, E * E, 0.3f);
	fill(wk, KVD * E, 0.3f);
	fill(wv, KVD * E, 0.3f);
	fill(wo, E * E, 0.3f);
	fill(bq, E, 0.5f);
	float *x, *q, *k, *v, *att;
	ck_assert_int_eq(gi_backend_alloc(be, MAXT * E * sizeof(float), (void **)&x), 0);
	ck_assert_int_eq(gi_backend_alloc(be, MAXT * E * sizeof(float), (void **)&q), 0);
	ck_assert_int_eq(gi_backend_alloc(be, MAXT * KVD * sizeof(float), (void **)&k), 0);
	ck_assert_int_eq(gi_backend_alloc(be, MAXT * KVD * sizeof(float), (void **)&v), 0);
	ck_assert_int_eq(gi_backend_alloc(be, MAXT * E * sizeof(float), (void **)&att), 0);
	struct gi_node nodes[4] = { { .op = GI_OP_MATMUL }, { .op = GI_OP_ROPE_KV },
				    { .op = GI_OP_ATTN }, { .op = GI_OP_MATMUL } };
	nodes[0].matmul.src = x;
	nodes[0].matmul.n_mat = 3;
	nodes[0].matmul.w[0] = (struct gi_mat){ GI_TYPE_F32, E, E, wq };
	nodes[0].matmul.w[1] = (struct gi_mat){ GI_TYPE_F32, E, KVD, wk };
	nodes[0].matmul.w[2] = (struct gi_mat){ GI_TYPE_F32, E, KVD, wv };
	nodes[0].matmul.bias[0] = bq;
	nodes[0].matmul.dst[0] = q;
	nodes[0].matmul.dst[1] = k;
	nodes[0].matmul.dst[2] = v;
	nodes[1].rope_kv.q = q;
	nodes[1].rope_kv.k = k;
	nodes[1].rope_kv.v = v;
	nodes[2].attn.q = q;
	nodes[2].attn.dst = att;
	nodes[3].matmul.src = att;
	nodes[3].matmul.n_mat = 1;
	nodes[3].matmul.w[0] = (struct gi_mat){ GI_TYPE_F32, E, E, wo };
	nodes[3].matmul.dst[0] = x;
	nodes[3].matmul.accumulate = true;
	struct gi_graph_desc d = {
		.size = sizeof(d), .nodes = nodes, .n_nodes = 4, .max_tokens = MAXT, .max_out = 1,
		.attn = { .n_head = NH, .n_head_kv = NKV, .head_dim = HD, .n_rot = 12,
			  .rope_style = gcfg[_i].neox ? GI_ROPE_NEOX : GI_ROPE_NORM,
			  .freq_base = 10000.0f, .freq_scale = 1.0f, .scale = 0.25f },
	};
	struct gi_graph *g;
	ck_assert_msg(gi_graph_create(be, &d, &g, err, sizeof(err)) == 0, "%s", err);
	int lc = gcfg[_i].long_ctx;
	uint32_t bt = lc ? 16 : 4, nblk = lc ? (LONG + 15) / 16 : 12, cap = lc ? LONG : 64;
	struct gi_kv_pool pool;
	size_t bytes = gi_kv_pool_layout(&pool, gcfg[_i].kv, 1, nblk, bt, NKV, HD);
	ck_assert_int_eq(gi_backend_alloc(be, bytes, &pool.k), 0);
	ck_assert_int_eq(gi_backend_alloc(be, bytes, &pool.v), 0);

	/* two sequences, tables interleaved and reversed (one long one when lc) */
	uint32_t *ta = malloc(nblk * sizeof(*ta)), *tb = malloc(nblk * sizeof(*tb));
	for (uint32_t b = 0; b < nblk; b++) {
		ta[b] = lc ? nblk - 1 - b : 11 - 2 * (b % 6);
		tb[b] = 2 * (b % 6);
	}
	struct gi_step_seq seqs[2] = { { ta, lc ? nblk : 6 }, { tb, 6 } };
	struct ref_seq rs[2];
	for (int i = 0; i < 2; i++) {
		rs[i].k = malloc(cap * sizeof(*rs[i].k));
		rs[i].v = malloc(cap * sizeof(*rs[i].v));
	}
	static const uint32_t plan[3][2] = { { 13, 5 }, { 1, 6 }, { 1, 1 } }; /* tokens per step */
	uint32_t at[2] = { 0, 0 };
	for (int st = 0; lc ? at[0] < LONG : st < 3; st++) {
		int32_t toks[MAXT] = { 0 };
		uint32_t pos[MAXT], sq[MAXT], n = 0;
		static float xin[MAXT][E];
		uint32_t want_n[2] = { lc ? (LONG - at[0] < MAXT ? LONG - at[0] : MAXT) : plan[st][0],
				       lc ? 0 : plan[st][1] };
		for (uint32_t s = 0; s < 2; s++)
			for (uint32_t i = 0; i < want_n[s]; i++, n++) {
				pos[n] = at[s] + i;
				sq[n] = s;
				fill(xin[n], E, 1);
			}
		memcpy(x, xin, n * E * sizeof(float));
		struct gi_step step = { .n_tokens = n, .n_seqs = 2, .tokens = toks, .pos = pos,
					.seq = sq, .seqs = seqs, .kv = &pool };
		ck_assert_int_eq(gi_graph_run(g, &step), 0);
		ck_assert_int_eq(gi_backend_sync(be), 0);
		for (uint32_t t = 0; t < n; t++)
			ref_kv(wk, wv, xin[t], pos[t], gcfg[_i].neox, &rs[sq[t]]);
		for (uint32_t t = 0; t < n; t++) {
			if (lc && pos[t] < 4090 && pos[t] % 1000)
				continue; /* the long case checks a few tokens and the tail */
			double want[E];
			ref_out(wq, bq, wo, xin[t], pos[t], gcfg[_i].neox, &rs[sq[t]], want);
			for (uint32_t i = 0; i < E; i++)
				close_to(x[t * E + i], want[i], gcfg[_i].tol, "graph", "attention", pos[t], i);
		}
		at[0] += want_n[0];
		at[1] += want_n[1];
	}
	for (int i = 0; i < 2; i++) {
		free(rs[i].k);
		free(rs[i].v);
	}
	free(ta);
	free(tb);
	gi_graph_free(g);
	gi_backend_release(be, pool.k);
	gi_backend_release(be, pool.v);
	float *bufs[] = { x, q, k, v, att };
	for (int i = 0; i < 5; i++)
		gi_backend_release(be, bufs[i]);
	gi_backend_free(be);
}
END_TEST

START_TEST(graph_rejects)
{
	struct gi_backend *be;
	char err[256];
	ck_assert_int_eq(gi_backend_create(NULL, &be, err, sizeof(err)), 0);
	struct gi_node n = { .op = GI_OP_MATMUL };
	static float buf[64];
	n.matmul.src = buf;
	n.matmul.n_mat = 2;
	n.matmul.w[0] = (struct gi_mat){ GI_TYPE_F32, 8, 8, buf };
	n.matmul.w[1] = (struct gi_mat){ GI_TYPE_F32, 4, 8, buf };
	n.matmul.dst[0] = n.matmul.dst[1] = buf;
	struct gi_graph_desc d = { .size = sizeof(d), .nodes = &n, .n_nodes = 1, .max_tokens = 1,
				   .max_out = 1, .attn = { .n_head = 1, .n_head_kv = 1, .head_dim = 8 } };
	struct gi_graph *g;
	ck_assert_int_eq(gi_graph_create(be, &d, &g, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "node 0"), "%s", err);
	n.matmul.w[1] = (struct gi_mat){ GI_TYPE_Q4_0, 8, 8, buf }; /* 8 is not a block of 32 */
	ck_assert_int_eq(gi_graph_create(be, &d, &g, err, sizeof(err)), -EINVAL);
	n.op = GI_OP_COUNT_;
	ck_assert_int_eq(gi_graph_create(be, &d, &g, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "unknown op"), "%s", err);
	struct gi_backend_opts bo = { .size = sizeof(bo), .device = "tpu" };
	struct gi_backend *b2;
	ck_assert_int_eq(gi_backend_create(&bo, &b2, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "tpu"), "%s", err);
	gi_backend_free(be);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("cpu");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, row_ops);
	tcase_add_test(tc, attention_kernels);
	tcase_add_test(tc, rope);
	tcase_add_loop_test(tc, graph_attention, 0, (int)(sizeof(gcfg) / sizeof(gcfg[0])));
	tcase_add_test(tc, graph_rejects);
	suite_add_tcase(s, tc);
	return s;
}
