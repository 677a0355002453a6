/* Packing Q4_K / Q6_K matrices into their x16 layouts (repack_k.h), and
 * the plain C matmul over them. */
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_k.h"

size_t cpu_xk_block_bytes(enum gi_type t)
{
	return t == GI_TYPE_Q4_K ? XK_Q4K_BLOCK : t == GI_TYPE_Q6_K ? XK_Q6K_BLOCK : 0;
}

size_t cpu_xk_group_bytes(enum gi_type t, size_t k)
{
	const size_t qb = cpu_xk_block_bytes(t);
	if (!qb || !k || k % QK_K || k / QK_K > SIZE_MAX / qb)
		return 0;
	return k / QK_K * qb;
}

/* Scale and min of sub-block J (< 8) from a Q4_K block's 12 packed bytes. */
static void q4k_scale_min(const uint8_t *sc, int j, uint8_t *ret_scale, uint8_t *ret_min)
{
	if (j < 4) {
		*ret_scale = sc[j] & 63;
		*ret_min = sc[j + 4] & 63;
	} else {
		*ret_scale = (uint8_t)((sc[j + 4] & 0xf) | ((sc[j - 4] >> 6) << 4));
		*ret_min = (uint8_t)((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
	}
}

/* Row R of a Q4_K group's super-block at DST from GGUF block BLK. */
static void pack_q4k_row(const struct block_q4_K *blk, size_t r, uint8_t *dst)
{
	gi_f16 *d = (gi_f16 *)dst;
	d[r] = blk->d;
	d[X16_ROWS + r] = blk->dmin;
	for (int s = 0; s < 8; s++)
		q4k_scale_min(blk->scales, s, dst + XK_Q4K_SCALE + 16 * s + r, dst + XK_Q4K_MIN + 16 * s + r);
	for (size_t p = 0; p < 4; p++)
		for (size_t j = 0; j < 8; j++)
			memcpy(dst + XK_Q4K_QS + 512 * p + 64 * j + 4 * r, blk->qs + 32 * p + 4 * j, 4);
}

/* Unsigned quant (0..63) of element E of row R of a packed Q6_K
 * super-block (repack_k.h). */
static int q6k_quant(const uint8_t *blk, size_t r, size_t e)
{
	const size_t f = e % 64, j = f / 16, v = f % 16 / 4;
	const uint8_t *u = blk + XK_Q6K_QS + XK_Q6K_QUARTER * (e / 64) + 192 * v + 4 * r + e % 4;
	switch (j) {
	case 0:
		return u[0] & 63;
	case 1:
		return (u[128] & 15) | (u[0] >> 6) << 4;
	case 2:
		return u[64] & 63;
	default:
		return (u[128] >> 4) | (u[64] >> 6) << 4;
	}
}

/* Low 4 bits (*ret_lo) and top 2 bits (*ret_hi) of the 4 quants of step
 * ST (elements 4ST .. 4ST + 3) of a Q6_K block, one per byte. GGUF element
 * 128n + 32g + l has its low 4 bits in ql[64n + 32(g & 1) + l] at bit
 * 4(g >> 1), its top 2 in qh[32n + l] at bit 2g. */
static void q6k_step(const struct block_q6_K *blk, size_t st, uint32_t *ret_lo, uint32_t *ret_hi)
{
	const size_t e = 4 * st, n = e / 128, g = e % 128 / 32, l = e % 32;
	uint32_t lo, hi;
	memcpy(&lo, blk->ql + 64 * n + 32 * (g & 1) + l, sizeof(lo));
	memcpy(&hi, blk->qh + 32 * n + l, sizeof(hi));
	*ret_lo = lo >> (4 * (g >> 1)) & 0x0f0f0f0fu;
	*ret_hi = hi >> (2 * g) & 0x03030303u;
}

/* Row R of a Q6_K group's super-block at DST from BLK, each 4-byte word of
 * the row written once. */
static void pack_q6k_row(const struct block_q6_K *blk, size_t r, uint8_t *dst)
{
	float d = gi_f16_to_f32(blk->d);
	memcpy(dst + sizeof(float) * r, &d, sizeof(d));
	for (size_t s = 0; s < 16; s++)
		dst[XK_Q6K_SCALE + 16 * s + r] = (uint8_t)blk->scales[s];
	for (size_t a = 0; a < 4; a++) {
		for (size_t v = 0; v < 4; v++) {
			uint8_t *u = dst + XK_Q6K_QS + XK_Q6K_QUARTER * a + 192 * v + 4 * r;
			uint32_t lo[4], hi[4];
			for (size_t j = 0; j < 4; j++)
				q6k_step(blk, 16 * a + 4 * j + v, &lo[j], &hi[j]);
			const uint32_t w[3] = {
				lo[0] | hi[0] << 4 | hi[1] << 6,
				lo[2] | hi[2] << 4 | hi[3] << 6,
				lo[1] | lo[3] << 4,
			};
			for (size_t i = 0; i < 3; i++)
				memcpy(u + 64 * i, &w[i], sizeof(w[i]));
		}
	}
}

void cpu_xk_pack(enum gi_type t, const void *w, size_t k, size_t g0, size_t g1, void *dst)
{
	const size_t nb = k / QK_K, qb = cpu_xk_block_bytes(t), gb = cpu_xk_group_bytes(t, k);
	const size_t wrow = gi_type_row_bytes(t, k);

	for (size_t g = g0; g < g1; g++) {
		uint8_t *grp = (uint8_t *)dst + g * gb;
		for (size_t r = 0; r < X16_ROWS; r++) {
			const uint8_t *row = (const uint8_t *)w + (g * X16_ROWS + r) * wrow;
			for (size_t b = 0; b < nb; b++) {
				if (t == GI_TYPE_Q4_K)
					pack_q4k_row((const struct block_q4_K *)row + b, r, grp + b * qb);
				else
					pack_q6k_row((const struct block_q6_K *)row + b, r, grp + b * qb);
			}
		}
	}
}

/* Row R's dot product with activation block X of packed super-block BLK. */
static float dot_q4k(const uint8_t *blk, size_t r, const struct block_q8_K *x)
{
	const gi_f16 *d = (const gi_f16 *)blk;
	int32_t sum = 0, msum = 0;
	for (size_t s = 0; s < 8; s++) {
		const uint8_t *q = blk + XK_Q4K_QS + 512 * (s / 2) + 4 * r;
		int32_t dot = 0;
		for (size_t e = 0; e < 32; e++) {
			const uint8_t v = q[64 * (e / 4) + e % 4];
			dot += ((s & 1) ? v >> 4 : v & 0xf) * x->qs[32 * s + e];
		}
		sum += blk[XK_Q4K_SCALE + 16 * s + r] * dot;
		msum += blk[XK_Q4K_MIN + 16 * s + r] * (x->bsums[2 * s] + x->bsums[2 * s + 1]);
	}
	return x->d * (gi_f16_to_f32(d[r]) * (float)sum - gi_f16_to_f32(d[X16_ROWS + r]) * (float)msum);
}

static float dot_q6k(const uint8_t *blk, size_t r, const struct block_q8_K *x)
{
	int32_t sum = 0;
	float d;
	memcpy(&d, blk + sizeof(float) * r, sizeof(d));
	for (size_t s = 0; s < 16; s++) {
		int32_t dot = 0;
		for (size_t e = 16 * s; e < 16 * s + 16; e++) {
			const int q = q6k_quant(blk, r, e);
			dot += (q - 32) * x->qs[e];
		}
		sum += (int8_t)blk[XK_Q6K_SCALE + 16 * s + r] * dot;
	}
	return x->d * d * (float)sum;
}

void cpu_mm_xk_scalar(enum gi_type t, const void *w, size_t k, const void *xq, size_t xstride,
		      size_t m, float *y, size_t ldy, size_t j0, size_t j1)
{
	const size_t nb = k / QK_K, qb = cpu_xk_block_bytes(t), gb = cpu_xk_group_bytes(t, k);

	for (size_t i = 0; i < m; i++) {
		const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)xq + i * xstride);
		for (size_t j = j0; j < j1; j++) {
			const uint8_t *grp = (const uint8_t *)w + j / X16_ROWS * gb;
			float acc = 0;
			for (size_t b = 0; b < nb; b++)
				acc += t == GI_TYPE_Q4_K ? dot_q4k(grp + b * qb, j % X16_ROWS, x + b)
							 : dot_q6k(grp + b * qb, j % X16_ROWS, x + b);
			y[i * ldy + j] = acc;
		}
	}
}

void cpu_mm_x16_q4_K_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_xk_scalar(GI_TYPE_Q4_K, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q6_K_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_xk_scalar(GI_TYPE_Q6_K, w, k, xq, xstride, m, y, ldy, j0, j1);
}
