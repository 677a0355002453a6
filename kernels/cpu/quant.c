/* Reference quantizers and dequantizers of the weight types, bit-exact with
 * the GGUF (ggml) block layouts:
 *
 *   Q4_0  x[i] = d * (q[i] - 8); q[i] in qs[i] low nibble, q[i + 16] high.
 *   Q8_0  x[i] = d * qs[i].
 *   Q4_K  256 elements in 8 sub-blocks of 32; x = d * sc[s] * q - dmin * m[s]
 *         with 6-bit sc/m packed in scales[12] (see k4_scale_min); chunk c
 *         of 64 elements: qs[32c + l] low nibble = element 64c + l, high
 *         nibble = element 64c + 32 + l.
 *   Q6_K  256 elements in 16 sub-blocks of 16; x = d * scales[s] * (q - 32),
 *         q = 4 low bits from ql, 2 high bits from qh (see q6k_get).
 *
 * The quantizers choose scales by a small least-squares search; decoders
 * of files made elsewhere only depend on the layout. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- Q4_0 / Q8_0 ---------------------------------------------------------- */

static void quantize_q4_0(const float *x, struct block_q4_0 *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, x += QK4_0) {
		float amax = 0.0f, max = 0.0f;
		for (int i = 0; i < QK4_0; i++) {
			if (fabsf(x[i]) > amax) {
				amax = fabsf(x[i]);
				max = x[i];
			}
		}
		/* the element of largest magnitude maps to -8, the end of the
		 * range with one more step */
		float d = max / -8.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = gi_f32_to_f16(d);
		for (int i = 0; i < QK4_0 / 2; i++) {
			int q0 = clampi((int)floorf(x[i] * id + 8.5f), 0, 15);
			int q1 = clampi((int)floorf(x[i + 16] * id + 8.5f), 0, 15);
			y[b].qs[i] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

static void dequantize_q4_0(const struct block_q4_0 *x, float *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, y += QK4_0) {
		float d = gi_f16_to_f32(x[b].d);
		for (int i = 0; i < QK4_0 / 2; i++) {
			y[i] = d * (float)((x[b].qs[i] & 0xf) - 8);
			y[i + 16] = d * (float)((x[b].qs[i] >> 4) - 8);
		}
	}
}

static void quantize_q8_0(const float *x, struct block_q8_0 *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, x += QK8_0) {
		float amax = 0.0f;
		for (int i = 0; i < QK8_0; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = gi_f32_to_f16(d);
		for (int i = 0; i < QK8_0; i++)
			y[b].qs[i] = (int8_t)clampi((int)roundf(x[i] * id), -127, 127);
	}
}

static void dequantize_q8_0(const struct block_q8_0 *x, float *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, y += QK8_0) {
		float d = gi_f16_to_f32(x[b].d);
		for (int i = 0; i < QK8_0; i++)
			y[i] = d * (float)x[b].qs[i];
	}
}

/* ---- Q4_K ------------------------------------------------------------------ */

/* Scale and min (6 bits each) of sub-block J from the packed 12 bytes. */
static void k4_scale_min(int j, const uint8_t *s, int *ret_sc, int *ret_m)
{
	if (j < 4) {
		*ret_sc = s[j] & 63;
		*ret_m = s[j + 4] & 63;
	} else {
		*ret_sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
		*ret_m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
	}
}

static void k4_pack_scales(const int *sc, const int *m, uint8_t *s)
{
	for (int j = 0; j < 4; j++) {
		s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
		s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
		s[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
	}
}

/* Fits x ~= scale * q - min over N values with q in [0, NMAX], min >= 0:
 * a few rounds of (round q, least-squares scale and offset). */
static void fit_scale_min(const float *x, int n, int nmax, float *ret_scale, float *ret_min)
{
	float lo = 0.0f, hi = x[0];
	for (int i = 0; i < n; i++) {
		lo = fminf(lo, x[i]);
		hi = fmaxf(hi, x[i]);
	}
	if (hi <= lo) {
		*ret_scale = 0.0f;
		*ret_min = -lo;
		return;
	}
	float best_err = INFINITY, best_s = (hi - lo) / nmax, best_lo = lo;
	static const float widen[] = { -0.5f, 0.0f, 0.5f, 1.0f, 2.0f };
	for (size_t t = 0; t < sizeof(widen) / sizeof(widen[0]); t++) {
		float s = (hi - lo) / ((float)nmax + widen[t]);
		float off = lo;
		for (int round = 0; round < 2; round++) {
			double sq = 0, sq2 = 0, sx = 0, sqx = 0;
			for (int i = 0; i < n; i++) {
				int q = clampi((int)lrintf((x[i] - off) / s), 0, nmax);
				sq += q;
				sq2 += (double)q * q;
				sx += x[i];
				sqx += (double)q * x[i];
			}
			double det = n * sq2 - sq * sq;
			if (det <= 0)
				break;
			double ns = (n * sqx - sq * sx) / det;
			double noff = (sx - ns * sq) / n;
			if (noff > 0) { /* offset must stay <= 0: refit the scale alone */
				noff = 0;
				ns = sq2 > 0 ? sqx / sq2 : 0;
			}
			if (ns <= 0)
				break;
			s = (float)ns;
			off = (float)noff;
		}
		float err = 0.0f;
		for (int i = 0; i < n; i++) {
			int q = clampi((int)lrintf((x[i] - off) / s), 0, nmax);
			float e = s * (float)q + off - x[i];
			err += e * e;
		}
		if (err < best_err) {
			best_err = err;
			best_s = s;
			best_lo = off;
		}
	}
	*ret_scale = best_s;
	*ret_min = -best_lo;
}

static void quantize_q4_K(const float *x, struct block_q4_K *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, x += QK_K) {
		float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
		for (int j = 0; j < 8; j++) {
			fit_scale_min(x + 32 * j, 32, 15, &scale[j], &min[j]);
			max_scale = fmaxf(max_scale, scale[j]);
			max_min = fmaxf(max_min, min[j]);
		}
		float d = max_scale / 63.0f, dmin = max_min / 63.0f;
		y[b].d = gi_f32_to_f16(d);
		y[b].dmin = gi_f32_to_f16(dmin);
		/* quantize the sub-block scales against the f16-rounded d, dmin */
		d = gi_f16_to_f32(y[b].d);
		dmin = gi_f16_to_f32(y[b].dmin);
		int sc[8], m[8];
		for (int j = 0; j < 8; j++) {
			sc[j] = d > 0.0f ? clampi((int)lrintf(scale[j] / d), 0, 63) : 0;
			m[j] = dmin > 0.0f ? clampi((int)lrintf(min[j] / dmin), 0, 63) : 0;
		}
		k4_pack_scales(sc, m, y[b].scales);
		uint8_t q[QK_K];
		for (int j = 0; j < 8; j++) {
			float ds = d * (float)sc[j], dm = dmin * (float)m[j];
			for (int i = 0; i < 32; i++) {
				int v = ds > 0.0f ? (int)lrintf((x[32 * j + i] + dm) / ds) : 0;
				q[32 * j + i] = (uint8_t)clampi(v, 0, 15);
			}
		}
		for (int c = 0; c < 4; c++)
			for (int l = 0; l < 32; l++)
				y[b].qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
	}
}

static void dequantize_q4_K(const struct block_q4_K *x, float *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, y += QK_K) {
		float d = gi_f16_to_f32(x[b].d), dmin = gi_f16_to_f32(x[b].dmin);
		for (int c = 0; c < 4; c++) {
			int sc0, m0, sc1, m1;
			k4_scale_min(2 * c, x[b].scales, &sc0, &m0);
			k4_scale_min(2 * c + 1, x[b].scales, &sc1, &m1);
			const uint8_t *q = x[b].qs + 32 * c;
			for (int l = 0; l < 32; l++) {
				y[64 * c + l] = d * (float)sc0 * (float)(q[l] & 0xf) - dmin * (float)m0;
				y[64 * c + 32 + l] = d * (float)sc1 * (float)(q[l] >> 4) - dmin * (float)m1;
			}
		}
	}
}

/* ---- Q6_K ------------------------------------------------------------------ */

/* Unsigned 6-bit quant (0..63, stored +32) of element I of a Q6_K block. */
static int q6k_get(const struct block_q6_K *blk, int i)
{
	int n = i / 128, g = (i % 128) / 32, l = i % 32;
	const uint8_t *ql = blk->ql + 64 * n, *qh = blk->qh + 32 * n;
	int lo = (g & 1) ? ql[l + 32] : ql[l];
	lo = (g & 2) ? lo >> 4 : lo & 0xf;
	return lo | (((qh[l] >> (2 * g)) & 3) << 4);
}

static void quantize_q6_K(const float *x, struct block_q6_K *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, x += QK_K) {
		float scale[16], amax_scale = 0.0f;
		for (int j = 0; j < 16; j++) {
			float amax = 0.0f, max = 0.0f;
			for (int i = 0; i < 16; i++) {
				if (fabsf(x[16 * j + i]) > amax) {
					amax = fabsf(x[16 * j + i]);
					max = x[16 * j + i];
				}
			}
			scale[j] = max / -32.0f;
			amax_scale = fmaxf(amax_scale, fabsf(scale[j]));
		}
		float d = amax_scale / 127.0f;
		y[b].d = gi_f32_to_f16(d);
		d = gi_f16_to_f32(y[b].d);
		uint8_t q[QK_K];
		for (int j = 0; j < 16; j++) {
			int sc = d > 0.0f ? clampi((int)lrintf(scale[j] / d), -127, 127) : 0;
			y[b].scales[j] = (int8_t)sc;
			float ds = d * (float)sc;
			for (int i = 0; i < 16; i++) {
				int v = ds != 0.0f ? (int)lrintf(x[16 * j + i] / ds) : 0;
				q[16 * j + i] = (uint8_t)(clampi(v, -32, 31) + 32);
			}
		}
		memset(y[b].qh, 0, sizeof(y[b].qh));
		for (int n = 0; n < 2; n++) {
			const uint8_t *qq = q + 128 * n;
			uint8_t *ql = y[b].ql + 64 * n, *qh = y[b].qh + 32 * n;
			for (int l = 0; l < 32; l++) {
				ql[l] = (uint8_t)((qq[l] & 0xf) | ((qq[l + 64] & 0xf) << 4));
				ql[l + 32] = (uint8_t)((qq[l + 32] & 0xf) | ((qq[l + 96] & 0xf) << 4));
				qh[l] = (uint8_t)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
						  ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
			}
		}
	}
}

static void dequantize_q6_K(const struct block_q6_K *x, float *y, size_t nb)
{
	for (size_t b = 0; b < nb; b++, y += QK_K) {
		float d = gi_f16_to_f32(x[b].d);
		for (int i = 0; i < QK_K; i++)
			y[i] = d * (float)x[b].scales[i / 16] * (float)(q6k_get(&x[b], i) - 32);
	}
}

/* ---- entry points ------------------------------------------------------------ */

void gi_quantize_row(enum gi_type t, const float *x, void *y, size_t n)
{
	switch (t) {
	case GI_TYPE_F32:
		memcpy(y, x, n * sizeof(float));
		break;
	case GI_TYPE_F16:
		for (size_t i = 0; i < n; i++)
			((gi_f16 *)y)[i] = gi_f32_to_f16(x[i]);
		break;
	case GI_TYPE_BF16:
		for (size_t i = 0; i < n; i++)
			((gi_bf16 *)y)[i] = gi_f32_to_bf16(x[i]);
		break;
	case GI_TYPE_Q4_0:
		quantize_q4_0(x, y, n / QK4_0);
		break;
	case GI_TYPE_Q8_0:
		quantize_q8_0(x, y, n / QK8_0);
		break;
	case GI_TYPE_Q4_K:
		quantize_q4_K(x, y, n / QK_K);
		break;
	case GI_TYPE_Q6_K:
		quantize_q6_K(x, y, n / QK_K);
		break;
	case GI_TYPE_Q8_K:
		cpu_act_q8_K_scalar(x, n, y);
		break;
	default:
		break;
	}
}

void gi_dequantize_row(enum gi_type t, const void *x, float *y, size_t n)
{
	switch (t) {
	case GI_TYPE_F32:
		memcpy(y, x, n * sizeof(float));
		break;
	case GI_TYPE_F16:
		for (size_t i = 0; i < n; i++)
			y[i] = gi_f16_to_f32(((const gi_f16 *)x)[i]);
		break;
	case GI_TYPE_BF16:
		for (size_t i = 0; i < n; i++)
			y[i] = gi_bf16_to_f32(((const gi_bf16 *)x)[i]);
		break;
	case GI_TYPE_Q4_0:
		dequantize_q4_0(x, y, n / QK4_0);
		break;
	case GI_TYPE_Q8_0:
		dequantize_q8_0(x, y, n / QK8_0);
		break;
	case GI_TYPE_Q4_K:
		dequantize_q4_K(x, y, n / QK_K);
		break;
	case GI_TYPE_Q6_K:
		dequantize_q6_K(x, y, n / QK_K);
		break;
	case GI_TYPE_Q8_K:
		for (size_t b = 0; b < n / QK_K; b++) {
			const struct block_q8_K *q = (const struct block_q8_K *)x + b;
			for (int i = 0; i < QK_K; i++)
				y[b * QK_K + i] = q->d * (float)q->qs[i];
		}
		break;
	default:
		break;
	}
}
