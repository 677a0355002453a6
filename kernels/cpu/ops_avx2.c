/* The row kernels for AVX2 + FMA + F16C (template in ops_simd.h). */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef __m256 vf;
#define VL 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VLOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VSTOREH(p, v) \
	_mm_storeu_si128((__m128i *)(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT))
#define VROUND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(v) \
	_mm256_castsi256_ps(_mm256_slli_epi32( \
		_mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(127)), 23))
#define VLOADN(p, n) _mm256_maskload_ps(p, tail_mask(n))
#define VSTOREN(p, v, n) _mm256_maskstore_ps(p, tail_mask(n), v)
#define VLOADHN(p, n) load_halfs(p, n)
#define VSET2(a, b) _mm256_insertf128_ps(_mm256_set1_ps(a), _mm_set1_ps(b), 1)
#define VFOLD_ADD(p, v) \
	_mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), _mm_add_ps(_mm256_castps256_ps128(v), \
								 _mm256_extractf128_ps(v, 1))))
#define OPS_TABLE cpu_ops_avx2
#define OPS_NAME "avx2"

static inline float VHSUM(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* lanes [0, n) set */
static inline __m256i tail_mask(size_t n)
{
	static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

/* AVX2 has no masked 16-bit load: go through a zeroed buffer */
static inline __m256 load_halfs(const uint16_t *p, size_t n)
{
	uint16_t b[8] = { 0 };
	for (size_t i = 0; i < n; i++)
		b[i] = p[i];
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
}

static inline float VHMAX(__m256 v)
{
	__m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

#include "kernels/cpu/ops_simd.h"
