/* AMX-INT8 matmuls for Q4_K and Q6_K weights when M >= 16 (prefill).
 *
 * One tile product per sub-block: A = 16 activation rows x the sub-block's
 * bytes of their Q8_K blocks (32 for Q4_K, in the slot order of
 * act_q4k_slot; 16 for Q6_K), B = the sub-block's quants of 16 weight rows
 * in the VNNI layout, packed by gathers once per 16 weight rows and chunk
 * of super-blocks: Q4_K nibbles as unsigned bytes (TDPBSUD), Q6_K as
 * q - 32 (TDPBSSD). The float epilogue applies d * scale per sub-block
 * and weight row, the activation scale per row, and for Q4_K subtracts
 * dmin * min times the activation sums of the sub-block. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"

#define TILE 16
#define CHUNK_SB 8
/* a packed super-block: B tiles, then per sub-block 16 floats d * scale,
 * then (Q4_K) 16 floats dmin * min */
#define SB_BYTES (8 * 512 + 2 * 8 * 64)
_Static_assert(16 * 256 + 16 * 64 <= SB_BYTES, "Q6_K packing fits");

/* Sub-blocks go two at a time: tmm0, tmm3: C (16 x 16 int32); tmm1, tmm4:
 * A (16 rows x SUB bytes); tmm2, tmm5: B. */
static void tile_setup(int sub)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	cfg.rows[0] = TILE;
	cfg.colsb[0] = 64;
	cfg.rows[1] = TILE;
	cfg.colsb[1] = (uint16_t)sub;
	cfg.rows[2] = (uint8_t)(sub / 4);
	cfg.colsb[2] = 64;
	cfg.rows[3] = TILE;
	cfg.colsb[3] = 64;
	cfg.rows[4] = TILE;
	cfg.colsb[4] = (uint16_t)sub;
	cfg.rows[5] = (uint8_t)(sub / 4);
	cfg.colsb[5] = 64;
	_tile_loadconfig(&cfg);
}

static __thread uint8_t kpack_buf[CHUNK_SB * SB_BYTES] __attribute__((aligned(64)));

static inline __m512i row_offsets(size_t wrow)
{
	return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
				  _mm512_set1_epi32((int)wrow));
}

/* B tile of act slot t = sub-block act_q4k_slot(t): row q holds elements
 * 4q..4q+3 of each weight row. */
static void pack_q4k(const uint8_t *w, size_t wrow, size_t sb, uint8_t *dst)
{
	const __m512i rows = row_offsets(wrow);
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const uint8_t *blk = w + sb * sizeof(struct block_q4_K);
	float *dsc = (float *)(dst + 8 * 512), *dm = dsc + 8 * TILE;

	for (int c = 0; c < 4; c++) {
		for (int q = 0; q < 8; q++) {
			const __m512i g = _mm512_i32gather_epi32(rows, blk + 16 + 32 * c + 4 * q, 1);
			_mm512_store_si512(dst + 512 * act_q4k_slot(2 * c) + 64 * q, _mm512_and_si512(g, m4));
			_mm512_store_si512(dst + 512 * act_q4k_slot(2 * c + 1) + 64 * q,
					   _mm512_and_si512(_mm512_srli_epi32(g, 4), m4));
		}
	}
	for (int n = 0; n < TILE; n++) {
		const struct block_q4_K *b = (const struct block_q4_K *)(w + (size_t)n * wrow) + sb;
		const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
		const uint8_t *s = b->scales;
		for (int j = 0; j < 8; j++) {
			int sc, m;
			if (j < 4) {
				sc = s[j] & 63;
				m = s[j + 4] & 63;
			} else {
				sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
				m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
			}
			dsc[act_q4k_slot(j) * TILE + n] = d * (float)sc;
			dm[j * TILE + n] = dmin * (float)m;
		}
	}
}

/* B tile of 16-element sub-block s: row q holds elements 16s + 4q..4q+3 as
 * q - 32. In a 128-element half, element 32g + l has its low bits in
 * ql[64h + 32(g & 1) + l] (high nibble if g >= 2) and its top bits in
 * qh[32h + l] at bit 2g. */
static void pack_q6k(const uint8_t *w, size_t wrow, size_t sb, uint8_t *dst)
{
	const __m512i rows = row_offsets(wrow);
	const uint8_t *blk = w + sb * sizeof(struct block_q6_K);
	float *dsc = (float *)(dst + 16 * 256);

	for (int s = 0; s < 16; s++) {
		const int h = s / 8, g = (s % 8) / 2, l0 = 16 * (s & 1);
		for (int q = 0; q < 4; q++) {
			const int l = l0 + 4 * q;
			const __m512i lo = _mm512_i32gather_epi32(rows, blk + 64 * h + 32 * (g & 1) + l, 1);
			const __m512i hi = _mm512_i32gather_epi32(rows, blk + 128 + 32 * h + l, 1);
			const __m512i lo4 = _mm512_and_si512(g & 2 ? _mm512_srli_epi32(lo, 4) : lo, _mm512_set1_epi8(0x0f));
			const __m512i hi2 = _mm512_and_si512(_mm512_srli_epi32(hi, 2 * g), _mm512_set1_epi8(3));
			const __m512i v = _mm512_or_si512(lo4, _mm512_slli_epi32(hi2, 4));
			_mm512_store_si512(dst + 256 * s + 64 * q, _mm512_sub_epi8(v, _mm512_set1_epi8(32)));
		}
	}
	for (int n = 0; n < TILE; n++) {
		const struct block_q6_K *b = (const struct block_q6_K *)(w + (size_t)n * wrow) + sb;
		const float d = _cvtsh_ss(b->d);
		for (int s = 0; s < 16; s++)
			dsc[s * TILE + n] = d * (float)b->scales[s];
	}
}

/* Named per-row sums: an array of 16 vectors would live on the stack. */
#define ROWS(X)                                                                                    \
	X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* t_i += C[i] * dsc for the sub-block whose C is at C_ (dsc: d * scale
 * per weight row, at DSC_). */
#define SCALE_ROW(i) t##i = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c_ + TILE * (i))), s_, t##i);
#define SCALE_SUB(c, dsc)                                  \
	do {                                               \
		const int32_t *c_ = (c);                   \
		const __m512 s_ = _mm512_load_ps(dsc);     \
		ROWS(SCALE_ROW)                            \
	} while (0)

/* Q4_K: t_i -= sum_j dmin * m_j * (bsums[2j] + bsums[2j + 1]) of row i
 * (the sums as floats in BSF[i][j], dmin * m_j per weight row at DM_). */
#define MIN_ROW(i)                                                                                 \
	for (int j = 0; j < 8; j++)                                                                \
		t##i = _mm512_fnmadd_ps(_mm512_load_ps(dm_ + TILE * j), _mm512_set1_ps(bsf[i][j]), t##i);

/* acc[i] += t_i * d_x of row i */
#define ACC_ROW(i) \
	_mm512_store_ps(acc[i], _mm512_fmadd_ps(t##i, _mm512_set1_ps(dxs[i]), _mm512_load_ps(acc[i])));

/* 16 activation rows x 16 weight rows over the packed super-blocks
 * [S0, S1); NSUB sub-blocks of SUB bytes each, accumulated into Y (set to
 * zero first if FIRST). Per super-block, t_i sums the sub-blocks' scaled
 * products (the scaling of sub-block s runs after the tile product of
 * s + 1 was issued), then acc gets t_i * d_x once; Y is written at the
 * end. */
static void tile_run(int q4k, const uint8_t *x, size_t xs, const uint8_t *packed, size_t s0, size_t s1,
		     float *y, size_t ldy, int first)
{
	const int nsub = q4k ? 8 : 16, sub = q4k ? 32 : 16;
	int32_t cbuf[4][TILE * TILE] __attribute__((aligned(64)));
	float acc[TILE][TILE] __attribute__((aligned(64)));
	float bsf[TILE][8] __attribute__((aligned(32)));
	float dxs[TILE];

	for (int i = 0; i < TILE; i++)
		_mm512_store_ps(acc[i], first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)i * ldy));
	for (size_t sb = s0; sb < s1; sb++) {
		const uint8_t *pk = packed + (sb - s0) * SB_BYTES;
		const float *dsc = (const float *)(pk + (size_t)nsub * 64 * (size_t)(sub / 4));
		const uint8_t *xa = x + sb * sizeof(struct block_q8_K) + offsetof(struct block_q8_K, qs);
#define T_DECL(i) __m512 t##i = _mm512_setzero_ps();
		ROWS(T_DECL)
#undef T_DECL
		for (int s = 0; s < nsub; s += 2) {
			_tile_loadd(1, xa + sub * s, (long)xs);
			_tile_loadd(2, pk + 64 * (sub / 4) * s, 64);
			_tile_loadd(4, xa + sub * (s + 1), (long)xs);
			_tile_loadd(5, pk + 64 * (sub / 4) * (s + 1), 64);
			_tile_zero(0);
			_tile_zero(3);
			if (q4k) {
				_tile_dpbsud(0, 1, 2);
				_tile_dpbsud(3, 4, 5);
			} else {
				_tile_dpbssd(0, 1, 2);
				_tile_dpbssd(3, 4, 5);
			}
			_tile_stored(0, cbuf[s & 2], 64);
			_tile_stored(3, cbuf[(s & 2) + 1], 64);
			if (s > 0) {
				SCALE_SUB(cbuf[(s - 2) & 2], dsc + TILE * (s - 2));
				SCALE_SUB(cbuf[((s - 2) & 2) + 1], dsc + TILE * (s - 1));
			}
		}
		SCALE_SUB(cbuf[(nsub - 2) & 2], dsc + TILE * (nsub - 2));
		/* the tile products are under way; row scales and sums meanwhile */
		for (int i = 0; i < TILE; i++) {
			const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)i * xs) + sb;
			dxs[i] = xb->d;
			if (q4k) {
				const __m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);
				_mm256_store_ps(bsf[i], _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, _mm256_set1_epi16(1))));
			}
		}
		SCALE_SUB(cbuf[((nsub - 2) & 2) + 1], dsc + TILE * (nsub - 1));
		if (q4k) {
			const float *dm_ = dsc + 8 * TILE;
			ROWS(MIN_ROW)
		}
		ROWS(ACC_ROW)
	}
	for (int i = 0; i < TILE; i++)
		_mm512_storeu_ps(y + (size_t)i * ldy, _mm512_load_ps(acc[i]));
}

static void mm_k_amx(int q4k, const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
		     size_t ldy, size_t j0, size_t j1)
{
	const enum gi_type t = q4k ? GI_TYPE_Q4_K : GI_TYPE_Q6_K;
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm[t];
	const size_t wrow = gi_type_row_bytes(t, k), nsb = k / QK_K, mt = m / TILE * TILE;
	size_t j = j0;

	if (m < TILE) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	tile_setup(q4k ? 32 : 16);
	for (; j + TILE <= j1; j += TILE) {
		const uint8_t *wj = (const uint8_t *)w + j * wrow;
		for (size_t sc = 0; sc < nsb; sc += CHUNK_SB) {
			const size_t se = nsb - sc < CHUNK_SB ? nsb : sc + CHUNK_SB;
			for (size_t sb = sc; sb < se; sb++) {
				if (q4k)
					pack_q4k(wj, wrow, sb, kpack_buf + (sb - sc) * SB_BYTES);
				else
					pack_q6k(wj, wrow, sb, kpack_buf + (sb - sc) * SB_BYTES);
			}
			for (size_t i = 0; i < mt; i += TILE)
				tile_run(q4k, (const uint8_t *)xq + i * xs, xs, kpack_buf, sc, se, y + i * ldy + j, ldy,
					 sc == 0);
		}
		if (mt < m)
			fallback(w, k, (const uint8_t *)xq + mt * xs, xs, m - mt, y + mt * ldy, ldy, j, j + TILE);
	}
	_tile_release();
	if (j < j1)
		fallback(w, k, xq, xs, m, y, ldy, j, j1);
}

void cpu_mm_q4_K_amx(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, size_t ldy,
		     size_t j0, size_t j1)
{
	mm_k_amx(1, w, k, xq, xs, m, y, ldy, j0, j1);
}

void cpu_mm_q6_K_amx(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, size_t ldy,
		     size_t j0, size_t j1)
{
	mm_k_amx(0, w, k, xq, xs, m, y, ldy, j0, j1);
}
