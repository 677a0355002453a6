/* AMX-BF16 matmuls over packed F16 / BF16 weights (repack_f16.h) for M >=
 * MIN_M activation rows (prefill, batched decode).
 *
 * x . w with x = XH + XL (the bf16 halves that come with the activation
 * row, matmul_impl.h) and w = WH + WL: XH.WH + XL.WH + XH.WL, the dropped
 * XL.WL below 2^-17 of the product, products and sums in f32 inside
 * TDPBF16PS (the arithmetic of matmul_f_amx.c). A packed 32-element block
 * of 16 weight rows is a B tile as it is: BF16 weights (WL = 0) are loaded
 * straight from the packed matrix; F16 weights are split per group and K
 * chunk, with no transpose: WH = the f16 value converted to f32 with its
 * low 16 bits cleared (a bf16, exact), WL = the rest (at most 3
 * significant bits, an exact bf16); both taken as the high halves of the
 * floats by one word permutation (11% faster than vcvtne2ps2bf16).
 *
 * Two groups of weights at a time, K in chunks of CHUNK blocks: a chunk's
 * B tiles are prepared once (F16) and every 16-row activation tile of the
 * block of rows takes them, its A tiles XH and XL loaded straight from the
 * activation rows. C0, C1 (one per group, all three products accumulated
 * in it) stay in tiles for the chunk, loaded from and stored to Y in
 * place; per block XH, XL, WH0, WL0, WH1, WL1 (6 tile loads) feed 6
 * TDPBF16PS. The pairs take their chunks in turn within spans of SPAN
 * blocks: the pair's 32 columns of Y stay in cache over a span (chunks
 * outside the pairs sent the 32000-column output matrix to memory and back
 * per chunk), and so do the span's A tiles over the pairs (without spans,
 * K = 5632 read A from L3 for every pair: 0.85x the GGUF-layout kernel,
 * 1.25-1.3x with them). Copying the A tiles into a contiguous scratch first
 * (their rows are a power of two apart for K = 2048, 16 KiB: one L1 set)
 * measured slower: they are not reused from L1 either way. Rows that do
 * not fill a 16-row tile go to the AVX-512 packed kernel. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_f16.h"

#define TILE 16
#define TILE_BYTES 1024
/* blocks of 32 elements per K chunk */
#define CHUNK 8
/* blocks of 32 elements per K span: the pairs of groups are taken in turn
 * per span, so the block of rows' A tiles of one span (MBLOCK x SPAN x 128
 * bytes, 512 KiB) stay in L2 while every pair reads them (K = 5632 in
 * cache, median of interleaved runs: 64 blocks 1.1-1.25x the GGUF-layout
 * kernel, 32 1.25-1.3x, 16 1.3x; fewer spans mean fewer round trips of
 * the output through memory) */
#define SPAN 32
/* activation rows per pass over the weights */
#define MBLOCK 128
/* fewest activation rows worth AMX */
#define MIN_M 16

/* Per-thread scratch, initial-exec (see matmul_x16_amx.c). */
struct xh_work {
	/* [group of the pair][block of the chunk]: WH then WL of F16 weights */
	uint8_t wb[2][CHUNK][2][TILE_BYTES];
};
static __thread struct xh_work xh_work __attribute__((aligned(64), tls_model("initial-exec")));

/* tmm0, tmm1: C of two groups; tmm2, tmm3: A (XH, XL); tmm4, tmm5: B (WH,
 * WL) of group 0; tmm6, tmm7: of group 1. All 16 rows x 64 bytes. */
static void tile_setup(void)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = TILE;
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
}

/* Word i of a vector from two: word 2i + 1 of A:B (the high halves of 32
 * floats, their bf16 when the low halves are zero). */
static const int16_t odd_words[32] = { 1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
				       33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63 };

/* The WH, WL tiles of blocks [B0, B0 + NBC) of the F16 group GRP into DST. */
static void split_f16(const uint8_t *grp, size_t b0, size_t nbc, uint8_t (*dst)[2][TILE_BYTES])
{
	const __m512i mask = _mm512_set1_epi32((int)0xffff0000u), odd = _mm512_loadu_si512(odd_words);

	for (size_t b = 0; b < nbc; b++) {
		const uint8_t *q = grp + (b0 + b) * XH_BLOCK;
		for (int s = 0; s < TILE; s++) {
			const __m512 a = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(q + 64 * s)));
			const __m512 c = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(q + 64 * s + 32)));
			const __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), mask));
			const __m512 ch = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(c), mask));
			const __m512 al = _mm512_sub_ps(a, ah), cl = _mm512_sub_ps(c, ch);
			_mm512_store_si512(dst[b][0] + 64 * s, _mm512_permutex2var_epi16(_mm512_castps_si512(a), odd,
											_mm512_castps_si512(c)));
			_mm512_store_si512(dst[b][1] + 64 * s, _mm512_permutex2var_epi16(_mm512_castps_si512(al), odd,
											_mm512_castps_si512(cl)));
		}
	}
}

/* 16 activation rows (XH of block b at XH + 64 b, rows XS bytes apart,
 * XL 2 KP bytes after XH) x two groups (B tiles of block b at W0 + b * WS
 * and W1 + b * WS, WL 1024 bytes after WH when F16) over NBC blocks, into
 * Y (16 x 32, LDY floats apart): adds to Y unless FIRST. */
static void tile_run2(int f16, const uint8_t *xh, size_t xs, size_t kp, const uint8_t *w0, const uint8_t *w1,
		      size_t ws, size_t nbc, float *y, size_t ldy, int first)
{
	const long ys = (long)(ldy * sizeof(float));

	if (first) {
		_tile_zero(0);
		_tile_zero(1);
	} else {
		_tile_loadd(0, y, ys);
		_tile_loadd(1, y + TILE, ys);
	}
	for (size_t b = 0; b < nbc; b++) {
		const uint8_t *b0 = w0 + b * ws, *b1 = w1 + b * ws;
		_tile_loadd(2, xh + 64 * b, (long)xs);
		_tile_loadd(4, b0, 64);
		_tile_loadd(6, b1, 64);
		_tile_dpbf16ps(0, 2, 4);
		_tile_dpbf16ps(1, 2, 6);
		_tile_loadd(3, xh + 2 * kp + 64 * b, (long)xs);
		_tile_dpbf16ps(0, 3, 4);
		_tile_dpbf16ps(1, 3, 6);
		if (f16) {
			_tile_loadd(5, b0 + TILE_BYTES, 64);
			_tile_loadd(7, b1 + TILE_BYTES, 64);
			_tile_dpbf16ps(0, 2, 5);
			_tile_dpbf16ps(1, 2, 7);
		}
	}
	_tile_stored(0, y, ys);
	_tile_stored(1, y + TILE, ys);
}

/* The same for one group (B tiles at W0), into Y (16 x 16). */
static void tile_run1(int f16, const uint8_t *xh, size_t xs, size_t kp, const uint8_t *w0, size_t ws,
		      size_t nbc, float *y, size_t ldy, int first)
{
	const long ys = (long)(ldy * sizeof(float));

	if (first)
		_tile_zero(0);
	else
		_tile_loadd(0, y, ys);
	for (size_t b = 0; b < nbc; b++) {
		const uint8_t *b0 = w0 + b * ws;
		_tile_loadd(2, xh + 64 * b, (long)xs);
		_tile_loadd(4, b0, 64);
		_tile_dpbf16ps(0, 2, 4);
		_tile_loadd(3, xh + 2 * kp + 64 * b, (long)xs);
		_tile_dpbf16ps(0, 3, 4);
		if (f16) {
			_tile_loadd(5, b0 + TILE_BYTES, 64);
			_tile_dpbf16ps(0, 2, 5);
		}
	}
	_tile_stored(0, y, ys);
}

/* Activation rows in blocks of MBLOCK, K in spans of SPAN blocks; per pair
 * of groups of [J0, J1) and K chunk of the span the B tiles are prepared
 * once (F16) and multiplied by every row tile of the block, partial sums
 * accumulating in Y. */
static void mm_xh_amx(int f16, enum gi_type t, const void *w, size_t k, const void *xq, size_t xs, size_t m,
		      float *y, size_t ldy, size_t j0, size_t j1)
{
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm_x16[t];
	const size_t kp = act_f16w_kp(k), nb = kp / 32, gb = cpu_x16_group_bytes(t, k), mt = m / TILE * TILE;
	const uint8_t *x = xq, *wg = w;
	struct xh_work *wk = &xh_work;

	if (m < MIN_M) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	tile_setup();
	for (size_t i0 = 0; i0 < mt; i0 += MBLOCK) {
		const size_t nt = (mt - i0 < MBLOCK ? mt - i0 : MBLOCK) / TILE;
		for (size_t s0 = 0; s0 < nb; s0 += SPAN) {
			const size_t s1 = nb - s0 < SPAN ? nb : s0 + SPAN;
			for (size_t j = j0; j < j1; j += 2 * TILE) {
				const int two = j + TILE < j1;
				const uint8_t *g0 = wg + j / TILE * gb, *g1 = two ? g0 + gb : g0;
				for (size_t b0 = s0; b0 < s1; b0 += CHUNK) {
					const size_t nbc = s1 - b0 < CHUNK ? s1 - b0 : CHUNK;
					const uint8_t *p0 = g0 + b0 * XH_BLOCK, *p1 = g1 + b0 * XH_BLOCK;
					const size_t ws = f16 ? 2 * TILE_BYTES : XH_BLOCK;
					if (f16) {
						split_f16(g0, b0, nbc, wk->wb[0]);
						if (two)
							split_f16(g1, b0, nbc, wk->wb[1]);
						p0 = wk->wb[0][0][0];
						p1 = wk->wb[1][0][0];
					}
					for (size_t i = 0; i < nt; i++) {
						const size_t r = i0 + TILE * i;
						const uint8_t *xh = x + r * xs + 4 * kp + 64 * b0;
						float *yi = y + r * ldy + j;
						if (two)
							tile_run2(f16, xh, xs, kp, p0, p1, ws, nbc, yi, ldy, b0 == 0);
						else
							tile_run1(f16, xh, xs, kp, p0, ws, nbc, yi, ldy, b0 == 0);
					}
				}
			}
		}
	}
	_tile_release();
	if (mt < m)
		fallback(w, k, x + mt * xs, xs, m - mt, y + mt * ldy, ldy, j0, j1);
}

void cpu_mm_x16_f16_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			size_t ldy, size_t j0, size_t j1)
{
	mm_xh_amx(1, GI_TYPE_F16, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_bf16_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			 size_t ldy, size_t j0, size_t j1)
{
	mm_xh_amx(0, GI_TYPE_BF16, w, k, xq, xstride, m, y, ldy, j0, j1);
}
