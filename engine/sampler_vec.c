/* Vocabulary-wide passes of the sampler. exp() is 2^n * 2^f with f in
 * [-0.5, 0.5] and a degree-6 Taylor polynomial of 2^f (relative error below
 * 2e-7), evaluated 4 (SSE2) or 8 (AVX2+FMA) lanes at a time; the AVX2 path is
 * compiled with a target attribute and picked at run time, so the library
 * still runs on any x86-64. GI_NO_SIMD builds (the fuzzers) use plain C. */
#include <math.h>
#include <stdbool.h>

#include "engine/sampler_vec.h"

#if defined(__x86_64__) && !defined(GI_NO_SIMD)
#define HAVE_X86 1
#include <immintrin.h>
#endif

#define C6 1.5403530e-4f
#define C5 1.3333558e-3f
#define C4 9.6181291e-3f
#define C3 5.5504109e-2f
#define C2 2.4022651e-1f
#define C1 6.9314718e-1f
#define LOG2E 1.44269504f
#define EXP_MIN -86.0f /* keeps 2^n a normal float */

static float scalar_max(const float *x, size_t n, float m)
{
	for (size_t i = 0; i < n; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

static double scalar_sum_exp(const float *x, size_t n, float max, float scale, float *out)
{
	double sum = 0.0;

	for (size_t i = 0; i < n; i++) {
		float e = expf((x[i] - max) * scale);
		if (out)
			out[i] = e;
		sum += e;
	}
	return sum;
}

static size_t scalar_find(const float *x, size_t n, size_t i, float th, bool ge)
{
	for (; i < n; i++)
		if (ge ? x[i] >= th : x[i] > th)
			return i;
	return n;
}

static size_t scalar_gather(const float *x, size_t n, size_t i, float th, float *ox,
			    int32_t *oid, size_t k)
{
	for (; i < n; i++)
		if (x[i] >= th) {
			ox[k] = x[i];
			oid[k++] = (int32_t)i;
		}
	return k;
}

#ifdef HAVE_X86
static bool have_avx2(void)
{
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static float hmax4(__m128 v)
{
	float t[4];
	_mm_storeu_ps(t, v);
	return fmaxf(fmaxf(t[0], t[1]), fmaxf(t[2], t[3]));
}

static float sse_max(const float *x, size_t n)
{
	size_t i = 0;
	/* Four independent chains hide the latency of maxps. */
	/* maxps returns its second operand when either is NaN: the loads go
	 * first so a NaN never enters the accumulators. */
	__m128 m0 = _mm_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
	for (; i + 16 <= n; i += 16) {
		m0 = _mm_max_ps(_mm_loadu_ps(x + i), m0);
		m1 = _mm_max_ps(_mm_loadu_ps(x + i + 4), m1);
		m2 = _mm_max_ps(_mm_loadu_ps(x + i + 8), m2);
		m3 = _mm_max_ps(_mm_loadu_ps(x + i + 12), m3);
	}
	float m = hmax4(_mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
	return scalar_max(x + i, n - i, m);
}

static size_t sse_find(const float *x, size_t n, size_t i, float th, bool ge)
{
	const __m128 vt = _mm_set1_ps(th);
	for (; i + 8 <= n; i += 8) {
		__m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
		__m128 c = ge ? _mm_or_ps(_mm_cmpge_ps(a, vt), _mm_cmpge_ps(b, vt))
			      : _mm_or_ps(_mm_cmpgt_ps(a, vt), _mm_cmpgt_ps(b, vt));
		if (_mm_movemask_ps(c))
			break;
	}
	return scalar_find(x, n, i, th, ge);
}

static size_t sse_gather(const float *x, size_t n, float th, float *ox, int32_t *oid)
{
	const __m128 vt = _mm_set1_ps(th);
	size_t i = 0, k = 0;
	for (; i + 4 <= n; i += 4) {
		int m = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + i), vt));
		for (; m; m &= m - 1) {
			size_t j = i + (size_t)__builtin_ctz((unsigned)m);
			ox[k] = x[j];
			oid[k++] = (int32_t)j;
		}
	}
	return scalar_gather(x, n, i, th, ox, oid, k);
}

static __m128 exp_ps(__m128 x)
{
	__m128 t = _mm_mul_ps(_mm_max_ps(x, _mm_set1_ps(EXP_MIN)), _mm_set1_ps(LOG2E));
	__m128i k = _mm_cvtps_epi32(t);
	__m128 f = _mm_sub_ps(t, _mm_cvtepi32_ps(k));
	__m128 p = _mm_set1_ps(C6);
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(C5));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(C4));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(C3));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(C2));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(C1));
	p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(1.0f));
	return _mm_castsi128_ps(_mm_add_epi32(_mm_castps_si128(p), _mm_slli_epi32(k, 23)));
}

static double sse_sum_exp(const float *x, size_t n, float max, float scale, float *out)
{
	const __m128 vm = _mm_set1_ps(max), vs = _mm_set1_ps(scale);
	__m128 acc = _mm_setzero_ps();
	size_t i = 0;
	float t[4];

	for (; i + 4 <= n; i += 4) {
		__m128 e = exp_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), vm), vs));
		if (out)
			_mm_storeu_ps(out + i, e);
		acc = _mm_add_ps(acc, e);
	}
	_mm_storeu_ps(t, acc);
	return (double)t[0] + t[1] + t[2] + t[3] +
	       scalar_sum_exp(x + i, n - i, max, scale, out ? out + i : NULL);
}

__attribute__((target("avx2,fma"))) static float avx2_max(const float *x, size_t n)
{
	size_t i = 0;
	__m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
	for (; i + 32 <= n; i += 32) {
		m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
		m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
		m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
		m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
	}
	float t[8], r = -INFINITY;
	_mm256_storeu_ps(t, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
	/* The tails stay in this function: calling non-VEX code with the upper
	 * halves dirty would pay the AVX-SSE transition on every call. */
	for (int j = 0; j < 8; j++)
		r = t[j] > r ? t[j] : r;
	for (; i < n; i++)
		r = x[i] > r ? x[i] : r;
	return r;
}

__attribute__((target("avx2,fma"))) static size_t avx2_find(const float *x, size_t n, size_t i,
							    float th, bool ge)
{
	const __m256 vt = _mm256_set1_ps(th);
	for (; i + 32 <= n; i += 32) {
		__m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
		__m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
		__m256 m;
		if (ge)
			m = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a, vt, _CMP_GE_OQ),
						      _mm256_cmp_ps(b, vt, _CMP_GE_OQ)),
					 _mm256_or_ps(_mm256_cmp_ps(c, vt, _CMP_GE_OQ),
						      _mm256_cmp_ps(d, vt, _CMP_GE_OQ)));
		else
			m = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a, vt, _CMP_GT_OQ),
						      _mm256_cmp_ps(b, vt, _CMP_GT_OQ)),
					 _mm256_or_ps(_mm256_cmp_ps(c, vt, _CMP_GT_OQ),
						      _mm256_cmp_ps(d, vt, _CMP_GT_OQ)));
		if (_mm256_movemask_ps(m))
			break;
	}
	for (; i < n; i++)
		if (ge ? x[i] >= th : x[i] > th)
			return i;
	return n;
}

__attribute__((target("avx2,fma"))) static void avx2_block_max(const float *x, size_t n, float *out)
{
	size_t b = 0, i = 0;

	for (; i + SMP_BLOCK <= n; i += SMP_BLOCK, b++) {
		/* two chains from -inf, loads first: NaNs are skipped */
		__m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
		for (size_t j = 0; j < SMP_BLOCK; j += 16) {
			m0 = _mm256_max_ps(_mm256_loadu_ps(x + i + j), m0);
			m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + j + 8), m1);
		}
		__m256 m = _mm256_max_ps(m0, m1);
		__m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		h = _mm_max_ps(h, _mm_movehl_ps(h, h));
		h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
		_mm_store_ss(&out[b], h);
	}
	if (i < n) {
		float r = -INFINITY;
		for (; i < n; i++)
			r = x[i] > r ? x[i] : r;
		out[b] = r;
	}
}

__attribute__((target("avx2,fma"))) static size_t avx2_gather(const float *x, size_t n, float th,
							     float *ox, int32_t *oid)
{
	const __m256 vt = _mm256_set1_ps(th);
	size_t i = 0, k = 0;
	for (; i + 8 <= n; i += 8) {
		int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vt, _CMP_GE_OQ));
		for (; m; m &= m - 1) {
			size_t j = i + (size_t)__builtin_ctz((unsigned)m);
			ox[k] = x[j];
			oid[k++] = (int32_t)j;
		}
	}
	for (; i < n; i++)
		if (x[i] >= th) {
			ox[k] = x[i];
			oid[k++] = (int32_t)i;
		}
	return k;
}

__attribute__((target("avx2,fma"))) static __m256 exp256(__m256 x)
{
	__m256 t = _mm256_mul_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)), _mm256_set1_ps(LOG2E));
	__m256 r = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 f = _mm256_sub_ps(t, r);
	__m256 p = _mm256_set1_ps(C6);
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C5));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C4));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C3));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C2));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(C1));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
	__m256i k = _mm256_slli_epi32(_mm256_cvtps_epi32(r), 23);
	return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), k));
}

__attribute__((target("avx2,fma"))) static double avx2_sum_exp(const float *x, size_t n, float max,
							     float scale, float *out)
{
	const __m256 vm = _mm256_set1_ps(max), vs = _mm256_set1_ps(scale);
	__m256 a0 = _mm256_setzero_ps(), a1 = a0;
	size_t i = 0;
	float t[8];

	for (; i + 16 <= n; i += 16) {
		__m256 e0 = exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vs));
		__m256 e1 = exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm), vs));
		if (out) {
			_mm256_storeu_ps(out + i, e0);
			_mm256_storeu_ps(out + i + 8, e1);
		}
		a0 = _mm256_add_ps(a0, e0);
		a1 = _mm256_add_ps(a1, e1);
	}
	_mm256_storeu_ps(t, _mm256_add_ps(a0, a1));
	double sum = 0.0;
	for (int j = 0; j < 8; j++)
		sum += t[j];
	for (; i < n; i++) {
		float e = expf((x[i] - max) * scale);
		if (out)
			out[i] = e;
		sum += e;
	}
	return sum;
}
#endif

float smp_max(const float *x, size_t n)
{
#ifdef HAVE_X86
	return have_avx2() ? avx2_max(x, n) : sse_max(x, n);
#else
	return scalar_max(x, n, -INFINITY);
#endif
}

int32_t smp_argmax(const float *x, size_t n)
{
	float m = smp_max(x, n);
	size_t i = 0;
#ifdef HAVE_X86
	const __m128 vm = _mm_set1_ps(m);
	for (; i + 4 <= n; i += 4)
		if (_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + i), vm)))
			break;
#endif
	for (; i < n; i++)
		if (x[i] == m)
			return (int32_t)i;
	return 0;
}

double smp_sum_exp(const float *x, size_t n, float max, float scale, float *out)
{
#ifdef HAVE_X86
	if (have_avx2())
		return avx2_sum_exp(x, n, max, scale, out);
	return sse_sum_exp(x, n, max, scale, out);
#else
	return scalar_sum_exp(x, n, max, scale, out);
#endif
}

size_t smp_find(const float *x, size_t n, size_t from, float th, bool ge)
{
#ifdef HAVE_X86
	return have_avx2() ? avx2_find(x, n, from, th, ge) : sse_find(x, n, from, th, ge);
#else
	return scalar_find(x, n, from, th, ge);
#endif
}

void smp_block_max(const float *x, size_t n, float *out)
{
#ifdef HAVE_X86
	if (have_avx2()) {
		avx2_block_max(x, n, out);
		return;
	}
#endif
	for (size_t b = 0, i = 0; i < n; b++, i += SMP_BLOCK)
		out[b] = scalar_max(x + i, n - i < SMP_BLOCK ? n - i : SMP_BLOCK, -INFINITY);
}

size_t smp_gather(const float *x, size_t n, float th, float *out_x, int32_t *out_id)
{
#ifdef HAVE_X86
	if (have_avx2())
		return avx2_gather(x, n, th, out_x, out_id);
	return sse_gather(x, n, th, out_x, out_id);
#else
	return scalar_gather(x, n, 0, th, out_x, out_id, 0);
#endif
}
