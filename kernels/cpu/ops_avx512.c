/* The row kernels for AVX-512F (template in ops_simd.h). */
#include <immintrin.h>
#include <math.h>

typedef __m512 vf;
#define VL 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VLOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VSTOREH(p, v) \
	_mm256_storeu_si256((__m256i *)(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT))
#define VROUND(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(v) \
	_mm512_castsi512_ps(_mm512_slli_epi32( \
		_mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(127)), 23))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VMASK(n) ((__mmask16)((1u << (n)) - 1))
#define VLOADN(p, n) _mm512_maskz_loadu_ps(VMASK(n), p)
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, VMASK(n), v)
#define VLOADHN(p, n) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(VMASK(n), p))
#define VSET2(a, b) _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1)
#define VFOLD_ADD(p, v) \
	_mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), \
					  _mm256_add_ps(_mm512_castps512_ps256(v), \
							_mm512_extractf32x8_ps(v, 1))))
#define OPS_TABLE cpu_ops_avx512
#define OPS_NAME "avx512"

#include "kernels/cpu/ops_simd.h"
