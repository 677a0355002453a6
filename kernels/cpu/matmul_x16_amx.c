/* AMX-INT8 matmuls over the packed x16 Q4_0 / Q8_0 layout (repack.h), for
 * M >= 16 (Q4_0) or 32 (Q8_0) activation rows (prefill, batched decode).
 *
 * A packed block of 16 weight rows is an AMX B tile with K = 32 (8 rows of
 * 64 bytes, VNNI order). Per group of 16 weight rows and K chunk the
 * blocks are turned into signed B tiles once (Q4_0: nibbles unpacked,
 * minus 8; Q8_0: the bias bit flipped back) with their 16 scales in float,
 * so TDPBSSD (s8 x s8) gives each block's exact dot products and no bias
 * term is left. Every 16-row activation tile then takes the chunk's
 * blocks: A is 16 activation rows x the block's 32 quants straight from
 * the activation buffer, one C tile per block, stored and scaled on
 * AVX-512 into 16 float accumulators (C * d_w * d_x). Rows that do not
 * fill a tile go to the AVX-512 packed kernel.
 *
 * Where the time goes (SPR, measured by switching parts off): the tile
 * work (A and B loads, TDPBSSD, the C store) about 60%, the scaling about
 * 30%, and the two overlap little; a C tile store costs about twice a
 * K = 32 TDPBSSD, and every block needs one, so the multiply itself is
 * not the limit. Storing each C tile later, loading A and B a block ahead,
 * or 2 x 2 tiles (two row tiles x two groups, shared loads) all measured
 * slower than this loop. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"

#define TILE 16
/* blocks per K chunk */
#define CHUNK 64
/* activation rows per pass over the weights */
#define MBLOCK 128

/* tmm0, tmm1: A (16 activation rows x 32 bytes); tmm2, tmm3: B (8 rows x
 * 64 bytes); tmm4 .. tmm7: C of four blocks in flight. */
static void tile_setup(void)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = TILE;
		cfg.colsb[t] = 64;
	}
	cfg.colsb[0] = cfg.colsb[1] = 32;
	cfg.rows[2] = cfg.rows[3] = 8;
	_tile_loadconfig(&cfg);
}

/* Per-thread scratch, initial-exec: a general-dynamic thread-local access
 * is a __tls_get_addr call to the compiler, which it may re-issue inside
 * the loops, clearing the accumulators' upper halves (vzeroupper) and
 * spilling them around it. */
struct x16_work {
	/* signed B tiles and float weight scales of one group's chunk */
	int8_t wq[CHUNK][512];
	float wd[CHUNK][TILE];
	/* [row tile][block of the chunk][row in tile]: d_x of MBLOCK rows */
	float xd[MBLOCK / TILE][CHUNK][TILE];
	/* C tiles of the four blocks in flight */
	int32_t cs[4][TILE * TILE];
};
static __thread struct x16_work x16_work __attribute__((aligned(64), tls_model("initial-exec")));

/* Blocks [B0, B0 + NBC) of group GRP into WK->wq and WK->wd. */
static void prep_group(struct x16_work *wk, int q4, const uint8_t *grp, size_t sb, size_t b0, size_t nbc)
{
	const gi_f16 *d = (const gi_f16 *)grp + b0 * TILE;
	const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
	const __m512i flip = _mm512_set1_epi8((char)0x80);

	for (size_t b = 0; b < nbc; b++) {
		int8_t *wq = wk->wq[b];
		_mm512_store_ps(wk->wd[b], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(d + b * TILE))));
		if (q4) {
			const uint8_t *q = grp + sb + (b0 + b) * 256;
			for (int i = 0; i < 4; i++) {
				const __m512i v = _mm512_load_si512(q + 64 * i);
				const __m512i lo = _mm512_sub_epi8(_mm512_and_si512(v, m4), eight);
				const __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4), eight);
				_mm512_store_si512(wq + 64 * i, lo);
				_mm512_store_si512(wq + 64 * (i + 4), hi);
			}
		} else {
			const uint8_t *q = grp + sb + (b0 + b) * 512;
			for (int j = 0; j < 8; j++)
				_mm512_store_si512(wq + 64 * j, _mm512_xor_si512(_mm512_load_si512(q + 64 * j), flip));
		}
	}
}

/* Asks for the bytes prep_group will read from GRP next (a group's chunk
 * is a few KB in a page of its own, which the hardware prefetcher does not
 * run into by itself). */
static void prefetch_group(const uint8_t *grp, size_t sb, size_t qb, size_t b0, size_t nbc)
{
	for (size_t o = 0; o < nbc * TILE * sizeof(gi_f16); o += 64)
		_mm_prefetch((const char *)grp + b0 * TILE * sizeof(gi_f16) + o, _MM_HINT_T1);
	for (size_t o = 0; o < nbc * qb; o += 64)
		_mm_prefetch((const char *)grp + sb + b0 * qb + o, _MM_HINT_T1);
}

/* WK->xd for rows [I0, I1) and blocks [B0, B0 + NBC). */
static void load_dx(struct x16_work *wk, const uint8_t *xq, size_t xs, size_t k, size_t i0, size_t i1,
		    size_t b0, size_t nbc)
{
	for (size_t i = i0; i < i1; i++) {
		const float *d = act_d_of(xq + i * xs, k) + b0;
		for (size_t b = 0; b < nbc; b++)
			wk->xd[(i - i0) / TILE][b][(i - i0) % TILE] = d[b];
	}
}

/* Named accumulators: an array of 16 vectors would live on the stack. */
#define ACC_ROWS(X)                                                                                  \
	X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* ACC += C * d_w * d_x for block B of the chunk, its C tile in slot S. */
#define SCALE_ROW(r)                                                                    \
	a##r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c_ + TILE * (r))), \
			       _mm512_mul_ps(dw_, _mm512_set1_ps(dx_[r])), a##r);
#define SCALE(s, b)                                                                     \
	do {                                                                            \
		const int32_t *c_ = wk->cs[s];                                          \
		const __m512 dw_ = _mm512_load_ps(wk->wd[b]);                           \
		const float *dx_ = dx[b];                                               \
		ACC_ROWS(SCALE_ROW)                                                     \
	} while (0)

/* Block B of the chunk through A tile AT, B tile BT into C tile CT, stored
 * to C slot S. Tile numbers must be literals. */
#define PRODUCT(at, bt, ct, s, b)                                                       \
	do {                                                                            \
		_tile_loadd(at, x + 32 * (b), (long)xs);                                \
		_tile_loadd(bt, wk->wq[b], 64);                                         \
		_tile_zero(ct);                                                         \
		_tile_dpbssd(ct, at, bt);                                               \
		_tile_stored(ct, wk->cs[s], 64);                                        \
	} while (0)

/* 16 activation rows at X (XS bytes apart, X at the chunk's first block)
 * x one group's NBC prepared blocks into Y (16 x 16, LDY apart): adds to Y
 * unless FIRST. DX: the chunk's d_x of these rows. Block b's scaling runs
 * after the products of b + 1 and b + 2 are issued (four C tiles and
 * slots in a ring), so its tile store has landed when its rows are read. */
static void tile_run(struct x16_work *wk, const uint8_t *x, size_t xs, const float (*dx)[TILE], size_t nbc,
		     float *y, size_t ldy, int first)
{
#define ACC_DECL(r) __m512 a##r = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)(r) * ldy);
	ACC_ROWS(ACC_DECL)
#undef ACC_DECL
	size_t b = 0;

	for (; b + 4 <= nbc; b += 4) {
		PRODUCT(0, 2, 4, 0, b);
		if (b)
			SCALE(2, b - 2);
		PRODUCT(1, 3, 5, 1, b + 1);
		if (b)
			SCALE(3, b - 1);
		PRODUCT(0, 2, 6, 2, b + 2);
		SCALE(0, b);
		PRODUCT(1, 3, 7, 3, b + 3);
		SCALE(1, b + 1);
	}
	/* the last two blocks of a whole ring are still to scale, then up to
	 * three more blocks */
	switch (nbc - b) {
	case 3:
		PRODUCT(0, 2, 4, 0, b);
		if (b)
			SCALE(2, b - 2);
		PRODUCT(1, 3, 5, 1, b + 1);
		if (b)
			SCALE(3, b - 1);
		PRODUCT(0, 2, 6, 2, b + 2);
		SCALE(0, b);
		SCALE(1, b + 1);
		SCALE(2, b + 2);
		break;
	case 2:
		PRODUCT(0, 2, 4, 0, b);
		if (b)
			SCALE(2, b - 2);
		PRODUCT(1, 3, 5, 1, b + 1);
		if (b)
			SCALE(3, b - 1);
		SCALE(0, b);
		SCALE(1, b + 1);
		break;
	case 1:
		PRODUCT(0, 2, 4, 0, b);
		if (b)
			SCALE(2, b - 2);
		if (b)
			SCALE(3, b - 1);
		SCALE(0, b);
		break;
	default:
		SCALE(2, b - 2);
		SCALE(3, b - 1);
		break;
	}
#define ACC_STORE(r) _mm512_storeu_ps(y + (size_t)(r) * ldy, a##r);
	ACC_ROWS(ACC_STORE)
#undef ACC_STORE
}

/* Fewest activation rows worth AMX: below them the AVX-512 packed kernel
 * was as fast (Q4_0) or faster (Q8_0 at M = 16, 10-25%). */
#define MIN_M_Q4_0 16
#define MIN_M_Q8_0 32

/* Activation rows in blocks of MBLOCK, K in chunks of CHUNK blocks: per
 * chunk, each group of [J0, J1) is prepared once and multiplied by every
 * row tile of the block, partial sums accumulating in Y. */
static void mm_x16_amx(int q4, enum gi_type t, const void *w, size_t k, const void *xq, size_t xs, size_t m,
		       float *y, size_t ldy, size_t j0, size_t j1)
{
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm_x16[t];
	const size_t nb = k / 32, gb = cpu_x16_group_bytes(t, k), sb = cpu_x16_scale_bytes(k);
	const size_t qb = cpu_x16_block_bytes(t), mt = m / TILE * TILE;
	const uint8_t *x = xq;
	struct x16_work *wk = &x16_work;

	if (m < (q4 ? MIN_M_Q4_0 : MIN_M_Q8_0)) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	tile_setup();
	for (size_t i0 = 0; i0 < mt; i0 += MBLOCK) {
		const size_t i1 = mt - i0 < MBLOCK ? mt : i0 + MBLOCK;
		for (size_t b0 = 0; b0 < nb; b0 += CHUNK) {
			const size_t nbc = nb - b0 < CHUNK ? nb - b0 : CHUNK;
			load_dx(wk, x, xs, k, i0, i1, b0, nbc);
			for (size_t j = j0; j < j1; j += TILE) {
				prep_group(wk, q4, (const uint8_t *)w + j / TILE * gb, sb, b0, nbc);
				if (j + TILE < j1)
					prefetch_group((const uint8_t *)w + (j / TILE + 1) * gb, sb, qb, b0, nbc);
				else if (b0 + CHUNK < nb)
					prefetch_group((const uint8_t *)w + j0 / TILE * gb, sb, qb, b0 + CHUNK,
						       nb - b0 - CHUNK < CHUNK ? nb - b0 - CHUNK : CHUNK);
				for (size_t i = i0; i < i1; i += TILE)
					tile_run(wk, x + i * xs + 32 * b0, xs, wk->xd[(i - i0) / TILE], nbc,
						 y + i * ldy + j, ldy, b0 == 0);
			}
		}
	}
	_tile_release();
	if (mt < m)
		fallback(w, k, x + mt * xs, xs, m - mt, y + mt * ldy, ldy, j0, j1);
}

void cpu_mm_x16_q4_0_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			 size_t ldy, size_t j0, size_t j1)
{
	mm_x16_amx(1, GI_TYPE_Q4_0, w, k, xq, xstride, m, y, ldy, j0, j1);
}

void cpu_mm_x16_q8_0_amx(const void *w, size_t k, const void *xq, size_t xstride, size_t m, float *y,
			 size_t ldy, size_t j0, size_t j1)
{
	mm_x16_amx(0, GI_TYPE_Q8_0, w, k, xq, xstride, m, y, ldy, j0, j1);
}
