/* Packing F16 / BF16 matrices into their x16 layout (repack_f16.h), and
 * the plain C matmul over it. */
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_f16.h"

size_t cpu_xh_group_bytes(enum gi_type t, size_t k)
{
	if ((t != GI_TYPE_F16 && t != GI_TYPE_BF16) || !k || k > SIZE_MAX / 64 - 32)
		return 0;
	return act_f16w_kp(k) * X16_ROWS * sizeof(gi_f16);
}

void cpu_xh_pack(enum gi_type t, const void *w, size_t k, size_t g0, size_t g1, void *dst)
{
	const size_t kp = act_f16w_kp(k), gw = cpu_xh_group_bytes(t, k) / sizeof(uint16_t);
	const uint16_t *src = w;

	for (size_t g = g0; g < g1; g++) {
		uint16_t *out = (uint16_t *)dst + g * gw;
		const uint16_t *rows = src + g * X16_ROWS * k;
		/* in the order of the packed words: step by step, row by row */
		for (size_t e = 0; e < kp; e += 2)
			for (size_t r = 0; r < X16_ROWS; r++, out += 2) {
				out[0] = e < k ? rows[r * k + e] : 0;
				out[1] = e + 1 < k ? rows[r * k + e + 1] : 0;
			}
	}
}

void cpu_mm_xh_scalar(enum gi_type t, const void *w, size_t k, const void *xq, size_t xstride,
		      size_t m, float *y, size_t ldy, size_t j0, size_t j1)
{
	const size_t gw = cpu_xh_group_bytes(t, k) / sizeof(uint16_t);

	for (size_t i = 0; i < m; i++) {
		const float *x = (const float *)((const uint8_t *)xq + i * xstride);
		for (size_t j = j0; j < j1; j++) {
			const uint16_t *grp = (const uint16_t *)w + j / X16_ROWS * gw;
			const size_t r = j % X16_ROWS;
			float acc = 0.0f;
			for (size_t e = 0; e < k; e++) {
				const uint16_t h = grp[xh_word(r, e)];
				acc += (t == GI_TYPE_F16 ? gi_f16_to_f32(h) : gi_bf16_to_f32(h)) * x[e];
			}
			y[i * ldy + j] = acc;
		}
	}
}

void cpu_mm_x16_f16_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			   float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_xh_scalar(GI_TYPE_F16, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_bf16_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_xh_scalar(GI_TYPE_BF16, w, k, xq, xstride, m, y, ldy, j0, j1);
}
