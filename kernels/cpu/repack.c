/* Packing F32 / Q4_0 / Q8_0 matrices into the x16 layout (repack.h), and the
 * plain C matmul over it. */
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_f16.h"
#include "kernels/cpu/repack_k.h"

static size_t round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

enum gi_type cpu_x16_act_type(enum gi_type t)
{
	if (cpu_xk_block_bytes(t))
		return GI_TYPE_Q6_K;
	if (cpu_xh_group_bytes(t, 32))
		return t;
	return t == GI_TYPE_F32 ? GI_TYPE_F32 : GI_TYPE_Q8_0;
}

size_t cpu_x16_block_bytes(enum gi_type t)
{
	if (cpu_xk_block_bytes(t))
		return cpu_xk_block_bytes(t);
	if (cpu_xh_group_bytes(t, 32))
		return XH_BLOCK;
	return t == GI_TYPE_Q4_0 ? 256 : t == GI_TYPE_Q8_0 ? 512 : 0;
}

size_t cpu_x16_scale_bytes(size_t k)
{
	return round64(k / 32 * X16_ROWS * sizeof(gi_f16));
}

size_t cpu_x16_group_bytes(enum gi_type t, size_t k)
{
	if (cpu_xk_block_bytes(t))
		return cpu_xk_group_bytes(t, k);
	if (cpu_xh_group_bytes(t, 32))
		return cpu_xh_group_bytes(t, k);
	if (t == GI_TYPE_F32)
		return k && k <= SIZE_MAX / (X16_ROWS * sizeof(float)) ? k * X16_ROWS * sizeof(float) : 0;
	size_t qb = cpu_x16_block_bytes(t);
	if (!qb || !k || k % 32)
		return 0;
	return cpu_x16_scale_bytes(k) + k / 32 * qb;
}

size_t cpu_x16_bytes(enum gi_type t, size_t k, size_t n)
{
	size_t gb = cpu_x16_group_bytes(t, k);
	if (!gb || !n || (n % X16_ROWS && t != GI_TYPE_F32) || n > SIZE_MAX - X16_ROWS)
		return 0;
	size_t groups = (n + X16_ROWS - 1) / X16_ROWS;
	return groups > SIZE_MAX / gb ? 0 : groups * gb;
}

/* Block B of packed row R's quant byte at element group step J, byte T. */
static size_t x16_qpos(size_t b, size_t qb, size_t j, size_t r, size_t t)
{
	return b * qb + j * 64 + 4 * r + t;
}

/* F32: step e of group G holds element e of its 16 rows (zeros past N). */
static void pack_f32(const float *w, size_t k, size_t n, size_t g0, size_t g1, float *dst)
{
	for (size_t g = g0; g < g1; g++) {
		float *grp = dst + g * k * X16_ROWS;
		for (size_t r = 0; r < X16_ROWS; r++) {
			size_t row = g * X16_ROWS + r;
			for (size_t e = 0; e < k; e++)
				grp[e * X16_ROWS + r] = row < n ? w[row * k + e] : 0.0f;
		}
	}
}

void cpu_x16_pack(enum gi_type t, const void *w, size_t k, size_t n, size_t g0, size_t g1,
		  void *dst)
{
	if (t == GI_TYPE_F32) {
		pack_f32(w, k, n, g0, g1, dst);
		return;
	}
	if (cpu_xk_block_bytes(t)) {
		cpu_xk_pack(t, w, k, g0, g1, dst);
		return;
	}
	if (cpu_xh_group_bytes(t, 32)) {
		cpu_xh_pack(t, w, k, g0, g1, dst);
		return;
	}

	const size_t nb = k / 32, gb = cpu_x16_group_bytes(t, k), qb = cpu_x16_block_bytes(t);
	const size_t wrow = gi_type_row_bytes(t, k), sb = cpu_x16_scale_bytes(k);

	for (size_t g = g0; g < g1; g++) {
		uint8_t *grp = (uint8_t *)dst + g * gb;
		gi_f16 *d = (gi_f16 *)grp;
		uint8_t *q = grp + sb;
		const uint8_t *rows = (const uint8_t *)w + g * X16_ROWS * wrow;
		memset(grp + nb * X16_ROWS * sizeof(gi_f16), 0, sb - nb * X16_ROWS * sizeof(gi_f16));
		/* block-major, so the packed bytes are written in order */
		if (t == GI_TYPE_Q4_0) {
			for (size_t b = 0; b < nb; b++, q += qb)
				for (size_t r = 0; r < X16_ROWS; r++) {
					const struct block_q4_0 *blk = (const struct block_q4_0 *)(rows + r * wrow) + b;
					d[b * X16_ROWS + r] = blk->d;
					for (size_t i = 0; i < 4; i++)
						memcpy(q + i * 64 + 4 * r, blk->qs + 4 * i, 4);
				}
		} else {
			for (size_t b = 0; b < nb; b++, q += qb)
				for (size_t r = 0; r < X16_ROWS; r++) {
					const struct block_q8_0 *blk = (const struct block_q8_0 *)(rows + r * wrow) + b;
					d[b * X16_ROWS + r] = blk->d;
					for (size_t j = 0; j < 8; j++) {
						uint32_t v;
						memcpy(&v, blk->qs + 4 * j, 4);
						v ^= 0x80808080u;
						memcpy(q + j * 64 + 4 * r, &v, 4);
					}
				}
		}
	}
}

/* Unsigned quant of element E (< 32) of block B of row R of a packed group. */
static int x16_quant(enum gi_type t, const uint8_t *q, size_t b, size_t r, size_t e)
{
	if (t == GI_TYPE_Q8_0)
		return q[x16_qpos(b, 512, e / 4, r, e % 4)];
	size_t j = e % 16 / 4;
	uint8_t v = q[x16_qpos(b, 256, j, r, e % 4)];
	return e < 16 ? v & 15 : v >> 4;
}

void cpu_mm_x16_scalar(enum gi_type t, const void *w, size_t k, const void *xq, size_t xstride,
		       size_t m, float *y, size_t ldy, size_t j0, size_t j1)
{
	const size_t nb = k / 32, gb = cpu_x16_group_bytes(t, k), sb = cpu_x16_scale_bytes(k);
	const int32_t bias = t == GI_TYPE_Q4_0 ? 8 : 128;

	if (cpu_xk_block_bytes(t)) {
		cpu_mm_xk_scalar(t, w, k, xq, xstride, m, y, ldy, j0, j1);
		return;
	}
	if (cpu_xh_group_bytes(t, 32)) {
		cpu_mm_xh_scalar(t, w, k, xq, xstride, m, y, ldy, j0, j1);
		return;
	}
	if (t == GI_TYPE_F32) {
		for (size_t i = 0; i < m; i++) {
			const float *x = (const float *)((const uint8_t *)xq + i * xstride);
			for (size_t j = j0; j < j1; j++) {
				const float *grp = (const float *)((const uint8_t *)w + j / X16_ROWS * gb);
				float acc = 0;
				for (size_t e = 0; e < k; e++)
					acc += grp[e * X16_ROWS + j % X16_ROWS] * x[e];
				y[i * ldy + j] = acc;
			}
		}
		return;
	}
	for (size_t i = 0; i < m; i++) {
		const uint8_t *x = (const uint8_t *)xq + i * xstride;
		const float *dx = act_d_of(x, k);
		const int32_t *c8 = act_c8_of(x, k);
		for (size_t j = j0; j < j1; j++) {
			const uint8_t *grp = (const uint8_t *)w + j / X16_ROWS * gb;
			const gi_f16 *d = (const gi_f16 *)grp;
			const size_t r = j % X16_ROWS;
			float acc = 0;
			for (size_t b = 0; b < nb; b++) {
				int32_t s = c8[b] * bias / 16;
				for (size_t e = 0; e < 32; e++)
					s += x16_quant(t, grp + sb, b, r, e) * (int8_t)x[32 * b + e];
				acc += (float)s * (gi_f16_to_f32(d[b * X16_ROWS + r]) * dx[b]);
			}
			y[i * ldy + j] = acc;
		}
	}
}

void cpu_mm_x16_f32_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			   float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_x16_scalar(GI_TYPE_F32, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q4_0_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_x16_scalar(GI_TYPE_Q4_0, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q8_0_scalar(const void *w, size_t k, const void *xq, size_t xstride, size_t m,
			    float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_x16_scalar(GI_TYPE_Q8_0, w, k, xq, xstride, m, y, ldy, j0, j1);
}
