/* AMX-BF16 matmuls for F16 and BF16 weights when M >= 16 (prefill).
 *
 * x . w with x = XH + XL and w = WH + WL, each a bf16 (XH, XL come with
 * the activation row, see matmul_impl.h; an F16 weight splits exactly
 * into WH + WL, a BF16 weight is WH): XH.WH + XL.WH + XH.WL, the dropped
 * XL.WL being below 2^-16 of the product, products and sums in f32 inside
 * TDPBF16PS. A tiles (16 activation rows x 32 elements) load straight from
 * the activation rows; B tiles (pairs of elements of 16 weight rows) are
 * packed once per 16 weight rows and chunk of K, then reused by every
 * activation tile. Each product has its own C tile (three independent
 * accumulation chains); they are summed into Y per chunk. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"

#define TILE 16
#define TILE_BYTES 1024
#define CHUNK_BLOCKS 32 /* blocks of 32 elements packed at once */

static __thread uint8_t fpack_buf[CHUNK_BLOCKS * 2 * TILE_BYTES] __attribute__((aligned(64)));

/* tmm0..2: C of XH.WH, XL.WH, XH.WL; tmm3, tmm4: A (XH, XL); tmm5, tmm6: B
 * (WH, WL). All 16 rows x 64 bytes. */
static void tile_setup(void)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 7; t++) {
		cfg.rows[t] = TILE;
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
}

/* DST row q (64 bytes) = dword q of each of the 16 rows of IN: a 16 x 16
 * dword transpose in registers (pairs of rows interleaved by dwords, then
 * by qwords, then 128-bit lanes gathered). */
static inline __attribute__((always_inline)) void transpose16(const uint32_t (*in)[TILE], uint8_t *dst)
{
	__m512i t[TILE], u[TILE];

	for (int i = 0; i < TILE; i += 2) {
		const __m512i a = _mm512_load_si512(in[i]), b = _mm512_load_si512(in[i + 1]);
		t[i] = _mm512_unpacklo_epi32(a, b);
		t[i + 1] = _mm512_unpackhi_epi32(a, b);
	}
	/* u[4i + k], 128-bit lane L: rows 4i..4i+3 of dword 4L + k */
	for (int i = 0; i < TILE; i += 4) {
		u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	for (int k = 0; k < 4; k++) {
		const __m512i a0 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x88);
		const __m512i a1 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xdd);
		const __m512i b0 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x88);
		const __m512i b1 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xdd);
		_mm512_store_si512(dst + 64 * k, _mm512_shuffle_i32x4(a0, b0, 0x88));
		_mm512_store_si512(dst + 64 * (4 + k), _mm512_shuffle_i32x4(a1, b1, 0x88));
		_mm512_store_si512(dst + 64 * (8 + k), _mm512_shuffle_i32x4(a0, b0, 0xdd));
		_mm512_store_si512(dst + 64 * (12 + k), _mm512_shuffle_i32x4(a1, b1, 0xdd));
	}
}

/* B tiles of blocks [B0, B1) (32 elements each) of 16 weight rows: per
 * block WH then (F16) WL; row q holds elements 2q, 2q+1 of each weight row. */
static void pack(int f16, const uint8_t *w, size_t wrow, size_t k, size_t b0, size_t b1, uint8_t *dst)
{
	uint32_t hi[TILE][TILE] __attribute__((aligned(64))), lo[TILE][TILE] __attribute__((aligned(64)));

	for (size_t b = b0; b < b1; b++, dst += 2 * TILE_BYTES) {
		const size_t off = 32 * b;
		const __mmask32 mask = off + 32 <= k ? 0xffffffffu : (__mmask32)((1u << (k - off)) - 1);
		for (int n = 0; n < TILE; n++) {
			const __m512i raw = _mm512_maskz_loadu_epi16(mask, w + (size_t)n * wrow + 2 * off);
			if (!f16) {
				_mm512_store_si512(hi[n], raw);
				continue;
			}
			const __m512 a = _mm512_cvtph_ps(_mm512_castsi512_si256(raw));
			const __m512 c = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(raw, 1));
			const __m512bh h = _mm512_cvtne2ps_pbh(c, a);
			const __m512i hv = (__m512i)h;
			const __m512 ha = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hv)), 16));
			const __m512 hc = _mm512_castsi512_ps(
				_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hv, 1)), 16));
			_mm512_store_si512(hi[n], hv);
			_mm512_store_si512(lo[n], (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(c, hc), _mm512_sub_ps(a, ha)));
		}
		transpose16(hi, dst);
		if (f16)
			transpose16(lo, dst + TILE_BYTES);
	}
}

/* 16 activation rows x 16 weight rows over the packed blocks [B0, B1):
 * Y += the three products (Y set first if FIRST). */
static void tile_run(int f16, const uint8_t *x, size_t xs, size_t kp, const uint8_t *packed, size_t b0,
		     size_t b1, float *y, size_t ldy, int first)
{
	float cbuf[3][TILE * TILE] __attribute__((aligned(64)));
	const uint8_t *xh = x + 4 * kp, *xl = x + 6 * kp;

	_tile_zero(0);
	_tile_zero(1);
	_tile_zero(2);
	for (size_t b = b0; b < b1; b++) {
		const uint8_t *pk = packed + (b - b0) * 2 * TILE_BYTES;
		_tile_loadd(3, xh + 64 * b, (long)xs);
		_tile_loadd(4, xl + 64 * b, (long)xs);
		_tile_loadd(5, pk, 64);
		_tile_dpbf16ps(0, 3, 5);
		_tile_dpbf16ps(1, 4, 5);
		if (f16) {
			_tile_loadd(6, pk + TILE_BYTES, 64);
			_tile_dpbf16ps(2, 3, 6);
		}
	}
	_tile_stored(0, cbuf[0], 64);
	_tile_stored(1, cbuf[1], 64);
	_tile_stored(2, cbuf[2], 64);
	for (int i = 0; i < TILE; i++) {
		float *yi = y + (size_t)i * ldy;
		__m512 s = _mm512_add_ps(_mm512_load_ps(cbuf[0] + TILE * i), _mm512_load_ps(cbuf[1] + TILE * i));
		s = _mm512_add_ps(s, _mm512_load_ps(cbuf[2] + TILE * i));
		_mm512_storeu_ps(yi, first ? s : _mm512_add_ps(s, _mm512_loadu_ps(yi)));
	}
}

static void mm_f_amx(int f16, const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
		     size_t ldy, size_t j0, size_t j1)
{
	const enum gi_type t = f16 ? GI_TYPE_F16 : GI_TYPE_BF16;
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm[t];
	const size_t wrow = gi_type_row_bytes(t, k), kp = act_f16w_kp(k), nb = kp / 32, mt = m / TILE * TILE;
	size_t j = j0;

	if (m < TILE) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	tile_setup();
	for (; j + TILE <= j1; j += TILE) {
		const uint8_t *wj = (const uint8_t *)w + j * wrow;
		for (size_t bc = 0; bc < nb; bc += CHUNK_BLOCKS) {
			const size_t be = nb - bc < CHUNK_BLOCKS ? nb : bc + CHUNK_BLOCKS;
			pack(f16, wj, wrow, k, bc, be, fpack_buf);
			for (size_t i = 0; i < mt; i += TILE)
				tile_run(f16, (const uint8_t *)xq + i * xs, xs, kp, fpack_buf, bc, be, y + i * ldy + j,
					 ldy, bc == 0);
		}
		if (mt < m)
			fallback(w, k, (const uint8_t *)xq + mt * xs, xs, m - mt, y + mt * ldy, ldy, j, j + TILE);
	}
	_tile_release();
	if (j < j1)
		fallback(w, k, xq, xs, m, y, ldy, j, j1);
}

void cpu_mm_f16_amx(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, size_t ldy,
		    size_t j0, size_t j1)
{
	mm_f_amx(1, w, k, xq, xs, m, y, ldy, j0, j1);
}

void cpu_mm_bf16_amx(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, size_t ldy,
		     size_t j0, size_t j1)
{
	mm_f_amx(0, w, k, xq, xs, m, y, ldy, j0, j1);
}
