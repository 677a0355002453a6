/* AMX-INT8 matmuls over the packed x16 Q4_K / Q6_K layouts (repack_k.h)
 * against plain Q8_K activation rows, for M >= MIN_M (prefill, batched
 * decode).
 *
 * The sub-block scales are folded into the weights, so one C tile covers
 * a whole super-block instead of one sub-block: per group of 16 weight
 * rows and super-block, the weights become w = scale * q (Q4_K, 0 .. 945)
 * or scale * (q - 32) (Q6_K, -4096 .. 4096), split into bytes w = 256 hi +
 * lo (lo unsigned, hi 0 .. 3 or signed -16 .. 16). Each byte plane is four
 * B tiles of K = 64 (16 weight rows, VNNI order), and with A = 16
 * activation rows x 64 quants, TDPBSUD (lo, Q4_K hi) and TDPBSSD (Q6_K hi)
 * accumulate the super-block's exact sum_s scale_s * dot_s in two C tiles,
 * as int32 256 C_hi + C_lo (|sum| < 256 * 127 * 4096 < 2^31): 8 K = 64
 * products and two C stores per 16 x 16 x 256, where a tile per sub-block
 * would take 8 (Q4_K) or 16 (Q6_K) stores and as many half-used products.
 * The float epilogue on AVX-512, per activation row, converts that sum
 * once, times d of the 16 weight rows and d_x of the row; Q4_K subtracts
 * dmin * sum_s min_s * bsum_s, four vpdpwssd on the mins paired as int16
 * and the activation's sub-block sums paired likewise.
 *
 * Loop order: per block of MBLOCK activation rows and chunk of CHUNK
 * super-blocks, the rows' quants are copied into A tiles once (in L2),
 * then group by group each super-block is prepared into B tiles (8 KB)
 * and multiplied by every pair of row tiles, the group's float sums kept
 * in an 8 KB buffer and written to Y once per chunk. The AVX-512 work
 * overlaps the tile products where it can: the epilogue of a pair runs
 * after the next pair's products are issued, and the next super-block's
 * B tiles are prepared a quarter at a time between them. Rows that do
 * not fill a 16-row tile go to the AVX-512 packed kernel, as does all of
 * an M below MIN_M.
 *
 * Where the time goes (M = 128, N = 256, K = 2048, one thread, parts
 * switched off): the tile products with their loads and stores about half,
 * the epilogue about a third (the Q4_K mins term the largest part of it),
 * the B preparation about a sixth; they overlap partly. Measured and
 * dropped: sums in Y after every super-block (Y of a large N lives in L3:
 * 3x slower at N = 2048), A tiles loaded from the Q8_K blocks in place
 * (rows straddle cache lines), one row tile per B load (1.3x the tile
 * time), software prefetch of the A tiles into L1. */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"
#include "kernels/cpu/repack_k.h"

#define TILE 16
/* activation rows per pass over the weights: each prepared B tile serves
 * MBLOCK / 16 row tiles (64 was 1.15x slower at M = 128) */
#define MBLOCK 128
/* super-blocks per K chunk: the A tiles of the block's rows (MBLOCK * 256
 * bytes each, 256 KB in L2), Y written once per chunk (4 was 1.05x slower
 * at M = 128, N = 2048) */
#define CHUNK 8
#define RT_MAX (MBLOCK / TILE)
/* fewest activation rows worth AMX: at M = 16 it was 1.05-1.1x the
 * AVX-512 packed kernel, at M = 32 1.5x */
#define MIN_M 16

/* tmm0, tmm1: A of two row tiles (16 activation rows x 64 quants each);
 * tmm2, tmm3: B of the high and low byte planes (16 x 64 bytes, K = 64),
 * shared by both row tiles; tmm4, tmm5: C (high, low) of the first row
 * tile, tmm6, tmm7 of the second. */
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

/* A tile store holds back the tile loads after it whose addresses match
 * its rows in the low 12 bits (measured: the products ran 1.3x faster
 * without such matches), so each 4 KB page of scratch takes C stores in
 * its first KB only and A and B tiles in the other three. */
#define PAGE_TILES 3
#define NB_TILES (2 * 2 * 4)
#define NA_TILES (RT_MAX * CHUNK * 4)
#define NPAGES ((NB_TILES + NA_TILES + PAGE_TILES - 1) / PAGE_TILES)
struct xk_page {
	int32_t c[TILE * TILE];
	int8_t t[PAGE_TILES][TILE * 64];
};
_Static_assert(sizeof(struct xk_page) == 4096, "one page");
_Static_assert(NPAGES >= 8, "C slots of two pairs x four tiles");

/* Per-thread scratch, initial-exec (see matmul_x16_amx.c: a
 * general-dynamic access may be a call inside the loops). */
struct xk_work {
	struct xk_page pg[NPAGES];
	/* where the tiles are in PG: B [buffer][plane: 0 high, 1 low][K = 64
	 * step] (two buffers: the super-block being multiplied and the next
	 * one), A copies [row tile][super-block of the chunk][K step] (16 rows
	 * 64 bytes apart), C [pair parity][row tile of the pair][plane] */
	int8_t *bt[2][2][4];
	int8_t *at[RT_MAX][CHUNK][4];
	int32_t *ct[2][2][2];
	/* per B buffer: d (Q4_K, Q6_K) and dmin (Q4_K) of the 16 weight
	 * rows; Q4_K: lane r of vector p = min_2p | min_2p+1 << 16 of row r */
	float dw[2][TILE];
	float dm[2][TILE];
	int32_t mins[2][4][TILE];
	/* [row tile][super-block][row in tile]: d_x, and (Q4_K) word pairs
	 * of the activation sums of sub-blocks 2p, 2p + 1 */
	float xd[RT_MAX][CHUNK][TILE];
	int32_t xb[RT_MAX][CHUNK][TILE][4];
	/* one group's sums of the block's rows within a chunk */
	float acc[RT_MAX * TILE][TILE];
};
static __thread struct xk_work xk_work __attribute__((aligned(4096), tls_model("initial-exec")));

/* This thread's scratch, its address taken once per matmul: GCC 12, short
 * of registers, rematerialized the address as a form of the TLS access
 * the linker cannot relax. */
static __attribute__((noinline)) struct xk_work *xk_work_get(void)
{
	return &xk_work;
}

/* Fills the tile pointers of WK. */
static void xk_layout(struct xk_work *wk)
{
	size_t n = 0;

	for (size_t u = 0; u < 2; u++)
		for (size_t p = 0; p < 2; p++)
			for (size_t c = 0; c < 4; c++, n++)
				wk->bt[u][p][c] = wk->pg[n / PAGE_TILES].t[n % PAGE_TILES];
	for (size_t t = 0; t < RT_MAX; t++)
		for (size_t b = 0; b < CHUNK; b++)
			for (size_t c = 0; c < 4; c++, n++)
				wk->at[t][b][c] = wk->pg[n / PAGE_TILES].t[n % PAGE_TILES];
	for (size_t i = 0; i < 8; i++)
		wk->ct[i / 4][i / 2 % 2][i % 2] = wk->pg[i].c;
}

/* Bytes lo and hi of the 32 int16 products PE (even bytes) and PO (odd
 * bytes) into one vector each: LO = (pe & 255) | po << 8, HI = pe >> 8 |
 * (po & 0xff00). */
static inline __attribute__((always_inline)) void split_store(__m512i pe, __m512i po, int8_t *hi, int8_t *lo)
{
	const __m512i low = _mm512_set1_epi16(0x00ff);
	/* (A & C) | (B & ~C) */
	_mm512_store_si512(lo, _mm512_ternarylogic_epi32(pe, _mm512_slli_epi16(po, 8), low, 0xe4));
	_mm512_store_si512(hi, _mm512_ternarylogic_epi32(_mm512_srli_epi16(pe, 8), po, low, 0xe4));
}

/* The maddubs multipliers of 16 unsigned bytes at P (one per weight row):
 * *RET_E has the byte at the even positions of its dword (words (s, 0)),
 * *RET_O at the odd ones. */
static inline __attribute__((always_inline)) void row_mults(const uint8_t *p, __m512i *ret_e, __m512i *ret_o)
{
	const __m512i s = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
	const __m512i e = _mm512_or_si512(s, _mm512_slli_epi32(s, 16));
	*ret_e = e;
	*ret_o = _mm512_slli_epi32(e, 8);
}

/* Quarter P of packed Q4_K super-block BLK into B buffer U: tile p holds
 * sub-block 2p (K rows 0..7, the low nibbles of quant vectors (p, 0..7))
 * and 2p + 1 (rows 8..15, the high nibbles), times the scales. */
static void prep_q4k(struct xk_work *wk, const uint8_t *blk, int u, int p)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const uint8_t *q = blk + XK_Q4K_QS + 512 * p;
	const __m512i m0 = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(blk + XK_Q4K_MIN + 32 * p)));
	const __m512i m1 = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(blk + XK_Q4K_MIN + 32 * p + 16)));
	__m512i ae, ao, be, bo;

	if (p == 0) {
		_mm512_store_ps(wk->dw[u], _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)blk)));
		_mm512_store_ps(wk->dm[u], _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(blk + 32))));
	}
	_mm512_store_si512(wk->mins[u][p], _mm512_or_si512(m0, _mm512_slli_epi32(m1, 16)));
	row_mults(blk + XK_Q4K_SCALE + 32 * p, &ae, &ao);
	row_mults(blk + XK_Q4K_SCALE + 32 * p + 16, &be, &bo);
	for (int j = 0; j < 8; j++) {
		const __m512i v = _mm512_load_si512(q + 64 * j);
		const __m512i nl = _mm512_and_si512(v, m4);
		const __m512i nh = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
		split_store(_mm512_maddubs_epi16(nl, ae), _mm512_maddubs_epi16(nl, ao), wk->bt[u][0][p] + 64 * j,
			    wk->bt[u][1][p] + 64 * j);
		split_store(_mm512_maddubs_epi16(nh, be), _mm512_maddubs_epi16(nh, bo), wk->bt[u][0][p] + 64 * (8 + j),
			    wk->bt[u][1][p] + 64 * (8 + j));
	}
}

/* Quarter A of packed Q6_K super-block BLK into B buffer U: tile a holds
 * quarter a, K row 4j + v = step v of its sub-block j, as scale * (q -
 * 32). */
static void prep_q6k(struct xk_work *wk, const uint8_t *blk, int u, int a)
{
	const __m512i m3f = _mm512_set1_epi8(0x3f), m0f = _mm512_set1_epi8(0x0f);
	const __m512i mc0 = _mm512_set1_epi8((char)0xc0);
	const uint8_t *qa = blk + XK_Q6K_QS + XK_Q6K_QUARTER * a;

	if (a == 0)
		_mm512_store_ps(wk->dw[u], _mm512_load_ps(blk));
	for (int j = 0; j < 4; j++) {
		const uint8_t *sc = blk + XK_Q6K_SCALE + 16 * (4 * a + j);
		/* 32 * scale in both words of a row's dword */
		const __m512i s32 = _mm512_slli_epi32(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)sc)), 5);
		const __m512i bias = _mm512_or_si512(_mm512_and_si512(s32, _mm512_set1_epi32(0xffff)),
						     _mm512_slli_epi32(s32, 16));
		__m512i se, so;

		row_mults(sc, &se, &so);
		for (int v = 0; v < 4; v++) {
			const uint8_t *w = qa + 192 * v;
			__m512i q;
			if (j == 0) {
				q = _mm512_and_si512(_mm512_load_si512(w), m3f);
			} else if (j == 1) {
				/* (V2 & 15) | (V0 & 0xc0) >> 2 */
				const __m512i t = _mm512_srli_epi16(_mm512_and_si512(_mm512_load_si512(w), mc0), 2);
				q = _mm512_ternarylogic_epi32(_mm512_load_si512(w + 128), t, m0f, 0xec);
			} else if (j == 2) {
				q = _mm512_and_si512(_mm512_load_si512(w + 64), m3f);
			} else {
				/* (V2 >> 4 & 15) | (V1 & 0xc0) >> 2 */
				const __m512i t = _mm512_srli_epi16(_mm512_and_si512(_mm512_load_si512(w + 64), mc0), 2);
				q = _mm512_ternarylogic_epi32(_mm512_srli_epi16(_mm512_load_si512(w + 128), 4), t, m0f,
							      0xec);
			}
			split_store(_mm512_sub_epi16(_mm512_maddubs_epi16(q, se), bias),
				    _mm512_sub_epi16(_mm512_maddubs_epi16(q, so), bias), wk->bt[u][0][a] + 64 * (4 * j + v),
				    wk->bt[u][1][a] + 64 * (4 * j + v));
		}
	}
}

static inline __attribute__((always_inline)) void prep(struct xk_work *wk, int q6, const uint8_t *blk, int u,
						       int part)
{
	if (q6)
		prep_q6k(wk, blk, u, part);
	else
		prep_q4k(wk, blk, u, part);
}

/* Asks for the packed super-block at P (QB bytes) that a prep reads next:
 * it sits a group's bytes away from the last one, where the hardware
 * prefetcher does not look. */
static void prefetch_block(const uint8_t *p, size_t qb)
{
	for (size_t o = 0; o < qb; o += 64)
		_mm_prefetch((const char *)p + o, _MM_HINT_T1);
}

/* The A tiles, WK->xd and for Q4_K WK->xb of rows [I0, I1) and
 * super-block B. The quants are copied to tiles of 64-byte rows, 1 KB
 * together: from the Q8_K blocks straight, each A row would straddle two
 * cache lines, and the tiles of the block would not stay in L1 (measured
 * 20% slower at M = 128). */
static void load_x(struct xk_work *wk, int q6, const uint8_t *xq, size_t xs, size_t i0, size_t i1, size_t b0,
		   size_t nsb)
{
	for (size_t i = i0; i < i1; i++) {
		const struct block_q8_K *xb = (const struct block_q8_K *)(xq + i * xs) + b0;
		const size_t t = (i - i0) / TILE, r = (i - i0) % TILE;
		for (size_t b = 0; b < nsb; b++) {
			wk->xd[t][b][r] = xb[b].d;
			for (int c = 0; c < 4; c++)
				_mm512_store_si512(wk->at[t][b][c] + 64 * r, _mm512_loadu_si512(xb[b].qs + 64 * c));
			if (q6)
				continue;
			/* sub-block sums, adjacent pairs of bsums (|sum| <= 4064) */
			const __m128i lo = _mm_loadu_si128((const __m128i *)xb[b].bsums);
			const __m128i hi = _mm_loadu_si128((const __m128i *)(xb[b].bsums + 8));
			_mm_store_si128((__m128i *)wk->xb[t][b][r], _mm_hadd_epi16(lo, hi));
		}
	}
}

/* Where an epilogue reads its partial sums and writes them: row r of a
 * row tile at SRC + r * SS (zeros if SRC is NULL) and DST + r * DS. */
struct xk_sums {
	const float *src;
	size_t ss;
	float *dst;
	size_t ds;
};

/* IO moved to row tile T. */
static inline struct xk_sums sums_at(struct xk_sums io, size_t t)
{
	if (io.src)
		io.src += t * TILE * io.ss;
	io.dst += t * TILE * io.ds;
	return io;
}

/* The epilogue of row tile RT and super-block B of the chunk with B
 * buffer U, C_hi and C_lo stored at CH, CL: row r of the sums in IO gets
 * d_x * (d * (256 C_hi + C_lo) - dmin * sum_p mins_p . xb_p) (Q4_K) or
 * d_x * d * (256 C_hi + C_lo) (Q6_K). */
static inline __attribute__((always_inline)) void epilogue(const struct xk_work *wk, int q6, int u, size_t rt,
							   size_t b, const int32_t *ch, const int32_t *cl,
							   struct xk_sums io)
{
	const __m512 dw = _mm512_load_ps(wk->dw[u]), dm = _mm512_load_ps(wk->dm[u]);
	const __m512i mn0 = _mm512_load_si512(wk->mins[u][0]), mn1 = _mm512_load_si512(wk->mins[u][1]);
	const __m512i mn2 = _mm512_load_si512(wk->mins[u][2]), mn3 = _mm512_load_si512(wk->mins[u][3]);
	const float *xd = wk->xd[rt][b];
	const int32_t(*xb)[4] = wk->xb[rt][b];

#pragma GCC unroll 16
	for (int r = 0; r < TILE; r++) {
		const __m512i c = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(ch + TILE * r), 8),
						   _mm512_load_si512(cl + TILE * r));
		__m512 t;
		if (q6) {
			t = _mm512_mul_ps(_mm512_cvtepi32_ps(c), dw);
		} else {
			__m512i m = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mn0, _mm512_set1_epi32(xb[r][0]));
			m = _mm512_dpwssd_epi32(m, mn1, _mm512_set1_epi32(xb[r][1]));
			m = _mm512_dpwssd_epi32(m, mn2, _mm512_set1_epi32(xb[r][2]));
			m = _mm512_dpwssd_epi32(m, mn3, _mm512_set1_epi32(xb[r][3]));
			t = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), dm, _mm512_mul_ps(_mm512_cvtepi32_ps(c), dw));
		}
		const __m512 acc = io.src ? _mm512_loadu_ps(io.src + (size_t)r * io.ss) : _mm512_setzero_ps();
		_mm512_storeu_ps(io.dst + (size_t)r * io.ds, _mm512_fmadd_ps(t, _mm512_set1_ps(xd[r]), acc));
	}
}

/* The high-plane product: signed weights for Q6_K. */
#define DP_HI(c, a, b)                         \
	do {                                   \
		if (q6)                        \
			_tile_dpbssd(c, a, b); \
		else                           \
			_tile_dpbsud(c, a, b); \
	} while (0)

/* Row tiles RT (and RT + 1 if TWO) x B buffer U, A tiles of super-block
 * B of the chunk, into C tiles 4, 5 (and 6, 7). */
static inline __attribute__((always_inline)) void products(const struct xk_work *wk, int q6, int two, int u,
							   size_t rt, size_t b)
{
	_tile_zero(4);
	_tile_zero(5);
	if (two) {
		_tile_zero(6);
		_tile_zero(7);
	}
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++) {
		_tile_loadd(2, wk->bt[u][0][c], 64);
		_tile_loadd(3, wk->bt[u][1][c], 64);
		_tile_loadd(0, wk->at[rt][b][c], 64);
		if (two)
			_tile_loadd(1, wk->at[rt + 1][b][c], 64);
		DP_HI(4, 0, 2);
		_tile_dpbsud(5, 0, 3);
		if (two) {
			DP_HI(6, 1, 2);
			_tile_dpbsud(7, 1, 3);
		}
	}
}

/* The NRT row tiles of the block (16 activation rows each, their A tiles
 * loaded) x super-block B of the chunk of one group, in B buffer U, into
 * the sums IO (row tile t at IO.src + 16 t IO.ss, IO.dst + 16 t IO.ds).
 * Row tiles go in pairs; the epilogue of a pair runs after the next
 * pair's products are issued, and between the two the packed super-block
 * NEXT (if not NULL) is prepared into buffer U ^ 1, PER quarters at a
 * time. */
static inline __attribute__((always_inline)) void block_run(struct xk_work *wk, int q6, int u, size_t nrt,
							    size_t b, const uint8_t *next, struct xk_sums io)
{
	const size_t np = (nrt + 1) / 2;
	const int per = np >= 4 ? 1 : (int)(4 / np);
	int part = 0;
	size_t rt = 0;

	for (; rt < nrt; rt += 2) {
		const int two = rt + 2 <= nrt, s = (int)(rt / 2) & 1;
		int32_t *const(*ct)[2] = wk->ct[s];

		if (two)
			products(wk, q6, 1, u, rt, b);
		else
			products(wk, q6, 0, u, rt, b);
		for (int k = 0; next && k < per && part < 4; k++)
			prep(wk, q6, next, u ^ 1, part++);
		if (rt) {
			/* only the last row tile can be single */
			int32_t *const(*cp)[2] = wk->ct[s ^ 1];
			for (size_t q = rt - 2; q < rt; q++)
				epilogue(wk, q6, u, q, b, cp[q % 2][0], cp[q % 2][1], sums_at(io, q));
		}
		_tile_stored(4, ct[0][0], 64);
		_tile_stored(5, ct[0][1], 64);
		if (two) {
			_tile_stored(6, ct[1][0], 64);
			_tile_stored(7, ct[1][1], 64);
		}
	}
	rt -= 2;
	int32_t *const(*cp)[2] = wk->ct[(int)(rt / 2) & 1];
	for (size_t q = rt; q < rt + 2 && q < nrt; q++)
		epilogue(wk, q6, u, q, b, cp[q % 2][0], cp[q % 2][1], sums_at(io, q));
	while (next && part < 4)
		prep(wk, q6, next, u ^ 1, part++);
}

static void block_run4(struct xk_work *wk, int u, size_t nrt, size_t b, const uint8_t *next, struct xk_sums io)
{
	block_run(wk, 0, u, nrt, b, next, io);
}

static void block_run6(struct xk_work *wk, int u, size_t nrt, size_t b, const uint8_t *next, struct xk_sums io)
{
	block_run(wk, 1, u, nrt, b, next, io);
}

/* Activation rows in blocks of MBLOCK, K in chunks of CHUNK super-blocks:
 * per chunk, the rows' A tiles are copied once, then group by group each
 * super-block is prepared once and multiplied by every row tile of the
 * block, the group's sums kept in WK->acc and written to Y at the chunk's
 * end (read from Y at its start, after the first chunk). */
static void mm_xk_amx(int q6, const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y,
		      size_t ldy, size_t j0, size_t j1)
{
	const enum gi_type t = q6 ? GI_TYPE_Q6_K : GI_TYPE_Q4_K;
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm_x16[t];
	const size_t nb = k / QK_K, gb = cpu_xk_group_bytes(t, k), qb = cpu_xk_block_bytes(t);
	const size_t mt = m / TILE * TILE, g0 = j0 / TILE, g1 = j1 / TILE;
	const uint8_t *x = xq, *wb = w;
	struct xk_work *wk = xk_work_get();

	if (m < MIN_M) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	xk_layout(wk);
	tile_setup();
	for (size_t i0 = 0; i0 < mt; i0 += MBLOCK) {
		const size_t i1 = mt - i0 < MBLOCK ? mt : i0 + MBLOCK, nrt = (i1 - i0) / TILE;
		for (size_t b0 = 0; b0 < nb; b0 += CHUNK) {
			const size_t nsb = nb - b0 < CHUNK ? nb - b0 : CHUNK, steps = (g1 - g0) * nsb;
			int u = 0;
			load_x(wk, q6, x, xs, i0, i1, b0, nsb);
			for (int part = 0; part < 4; part++)
				prep(wk, q6, wb + g0 * gb + b0 * qb, 0, part);
			/* step s: group g0 + s / nsb, super-block b0 + s % nsb */
			for (size_t s = 0; s < steps; s++, u ^= 1) {
				const size_t g = g0 + s / nsb, b = s % nsb;
				const uint8_t *next = s + 1 < steps ? wb + (g0 + (s + 1) / nsb) * gb + (b0 + (s + 1) % nsb) * qb
								    : NULL;
				float *yg = y + i0 * ldy + g * TILE;
				struct xk_sums io = { wk->acc[0], TILE, wk->acc[0], TILE };

				if (s + 2 < steps)
					prefetch_block(wb + (g0 + (s + 2) / nsb) * gb + (b0 + (s + 2) % nsb) * qb, qb);
				if (b == 0)
					io.src = b0 ? yg : NULL, io.ss = ldy;
				if (b + 1 == nsb)
					io.dst = yg, io.ds = ldy;
				if (q6)
					block_run6(wk, u, nrt, b, next, io);
				else
					block_run4(wk, u, nrt, b, next, io);
			}
		}
	}
	_tile_release();
	if (mt < m)
		fallback(w, k, x + mt * xs, xs, m - mt, y + mt * ldy, ldy, j0, j1);
}

void cpu_mm_x16_q4_K_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			 size_t ldy, size_t j0, size_t j1)
{
	mm_xk_amx(0, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q6_K_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			 size_t ldy, size_t j0, size_t j1)
{
	mm_xk_amx(1, w, k, xq, xstride, m, y, ldy, j0, j1);
}
