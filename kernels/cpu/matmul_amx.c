/* AMX-INT8 matmuls for Q4_0 and Q8_0 weights when M >= 8 (prefill and
 * batched decode), and
 * the AMX kernel table (the K-quants live in matmul_k_amx.c, F16/BF16
 * in matmul_f_amx.c).
 *
 * C[16 act rows x 16 weight rows] = A . B with TDPBSSD (s8 x s8 -> s32):
 * A is 16 activation rows x one 64-byte pair of blocks, loaded straight
 * from the activation buffer; B holds the weights of the same two blocks
 * for 16 weight rows in the VNNI layout (row q = elements 4q..4q+3 of each
 * weight row), one B tile per block with zeros where the other block's
 * elements sit, so each block gets its own C and its own scales. The B
 * tiles are packed by gathers once per 16 weight rows and K chunk, then
 * reused by every 16-row activation tile; the per-block float scaling
 * (C * d_w * d_x accumulated in 16 zmm) runs on AVX-512. Rows that do not
 * fill a 16 x 16 tile go to the AVX-512 kernels. */
#include <errno.h>
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/cpu/matmul_impl.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int cpu_amx_enable(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("amx-int8") || !__builtin_cpu_supports("amx-tile"))
		return -ENOTSUP;
	if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA))
		return -errno;
	return 0;
}

#define TILE 16
#define TILE_BYTES 1024
/* one packed pair: two B tiles and the two blocks' 16 weight scales */
#define PAIR_BYTES (2 * TILE_BYTES + 2 * TILE * (int)sizeof(float))
#define CHUNK_PAIRS 32

/* Activation rows per pass over the weights: their block scales are
 * transposed once per K chunk into dx_buf. */
#define MBLOCK 128

/* tmm0: A (ROWS activation rows, 16 or 8, of one pair); tmm2, tmm3: B of
 * the pair's two blocks; tmm4, tmm5: C of each block (ROWS rows). */
static void tile_setup(int rows)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = (uint8_t)(t == 2 || t == 3 ? TILE : rows);
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
}

static __thread uint8_t pack_buf[CHUNK_PAIRS * PAIR_BYTES] __attribute__((aligned(64)));
/* [row tile][block of the chunk][row in tile]: d_x of MBLOCK rows */
static __thread float dx_buf[MBLOCK / TILE][2 * CHUNK_PAIRS][TILE] __attribute__((aligned(64)));

/* Where each block of a pair sits among the 16 quads of the pair's 64
 * activation bytes: Q8_0 quads 0..7 (block b) and 8..15 (b+1); Q4_0 low
 * nibbles of b at quads 0..3, of b+1 at 4..7, high nibbles at 8..11 and
 * 12..15. */
static void pack_pair(const uint8_t *w, size_t wrow, size_t b, int two, int q4, uint8_t *dst)
{
	const size_t bsz = q4 ? sizeof(struct block_q4_0) : sizeof(struct block_q8_0);
	const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
						_mm512_set1_epi32((int)wrow));
	const __m512i zero = _mm512_setzero_si512();
	for (int h = 0; h < 2; h++) {
		const uint8_t *blk = w + (b + (size_t)h) * bsz;
		uint8_t *bt = dst + (size_t)h * TILE_BYTES;
		if (h && !two) {
			for (int q = 0; q < 16; q++)
				_mm512_store_si512(bt + 64 * q, zero);
			_mm512_store_si512(dst + 2 * TILE_BYTES + 64, zero);
			break;
		}
		/* the other block's quads of this tile are zero */
		for (int q = 0; q < 4; q++) {
			if (q4) {
				_mm512_store_si512(bt + 64 * (4 * (1 - h) + q), zero);
				_mm512_store_si512(bt + 64 * (8 + 4 * (1 - h) + q), zero);
			} else {
				_mm512_store_si512(bt + 64 * (8 * (1 - h) + q), zero);
				_mm512_store_si512(bt + 64 * (8 * (1 - h) + 4 + q), zero);
			}
		}
		const __m512i d = _mm512_i32gather_epi32(rows, blk, 1);
		_mm512_store_ps(dst + 2 * TILE_BYTES + h * 64, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
		if (q4) {
			for (int q = 0; q < 4; q++) {
				const __m512i g = _mm512_i32gather_epi32(rows, blk + 2 + 4 * q, 1);
				const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
				const __m512i lo = _mm512_sub_epi8(_mm512_and_si512(g, m4), eight);
				const __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi32(g, 4), m4), eight);
				_mm512_store_si512(bt + 64 * (4 * h + q), lo);
				_mm512_store_si512(bt + 64 * (8 + 4 * h + q), hi);
			}
		} else {
			for (int q = 0; q < 8; q++)
				_mm512_store_si512(bt + 64 * (8 * h + q), _mm512_i32gather_epi32(rows, blk + 2 + 4 * q, 1));
		}
	}
}

/* One activation row of the float scaling: ACC + C * d_w * d_x for the
 * two blocks of a pair (C of row I in the pair's two stored tiles, DX the
 * blocks' 16 activation scales each). */
static inline __attribute__((always_inline)) __m512 scale_row(__m512 acc, const int32_t *c, __m512 dw0,
							      __m512 dw1, const float *dx, int i)
{
	const __m512 c0 = _mm512_cvtepi32_ps(_mm512_load_si512(c + TILE * i));
	const __m512 c1 = _mm512_cvtepi32_ps(_mm512_load_si512(c + TILE * TILE + TILE * i));
	acc = _mm512_fmadd_ps(c0, _mm512_mul_ps(dw0, _mm512_set1_ps(dx[i])), acc);
	return _mm512_fmadd_ps(c1, _mm512_mul_ps(dw1, _mm512_set1_ps(dx[TILE + i])), acc);
}

/* Named accumulators: an array of 16 vectors would live on the stack. */
#define ACC_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define ACC_ROWS_HI(X) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* The scaling of the pair whose products are in C, packed at PK. */
#define TILE_SCALE(c, pk, dxp)                                                          \
	do {                                                                            \
		const __m512 dw0_ = _mm512_load_ps((pk) + 2 * TILE_BYTES);              \
		const __m512 dw1_ = _mm512_load_ps((pk) + 2 * TILE_BYTES + 64);         \
		ACC_ROWS(SCALE_ROW)                                                     \
		if (rows == TILE) {                                                     \
			ACC_ROWS_HI(SCALE_ROW)                                          \
		}                                                                       \
	} while (0)
#define SCALE_ROW(i) a##i = scale_row(a##i, c_, dw0_, dw1_, dx_, i);

/* The two tile products of one pair, stored to C. */
static inline __attribute__((always_inline)) void tile_pair(const uint8_t *a, size_t xs, const uint8_t *pk,
							    int32_t *c)
{
	_tile_loadd(2, pk, 64);
	_tile_loadd(3, pk + TILE_BYTES, 64);
	_tile_loadd(0, a, (long)xs);
	_tile_zero(4);
	_tile_zero(5);
	_tile_dpbssd(4, 0, 2);
	_tile_dpbssd(5, 0, 3);
	_tile_stored(4, c, 64);
	_tile_stored(5, c + TILE * TILE, 64);
}

/* ROWS (16 or 8) activation rows x 16 weight rows over the NP packed
 * pairs of one chunk starting at activation byte X (DX: the chunk's
 * scales of these rows). The float scaling of pair p runs after the tile
 * products of pair p + 1 were issued: reading a tile store back at once
 * would stall on it. */
static inline __attribute__((always_inline)) void tile_run(int rows, const uint8_t *x, size_t xs,
							   const float (*dx)[TILE], const uint8_t *packed,
							   size_t np, float *y, size_t ldy, int first)
{
	int32_t cbuf[2][2 * TILE * TILE] __attribute__((aligned(64)));
#define ACC_DECL(i) __m512 a##i = first || (i) >= rows ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)(i) * ldy);
	ACC_ROWS(ACC_DECL)
	ACC_ROWS_HI(ACC_DECL)
#undef ACC_DECL

	for (size_t p = 0; p < np; p++) {
		tile_pair(x + 64 * p, xs, packed + p * PAIR_BYTES, cbuf[p & 1]);
		if (p > 0) {
			const int32_t *c_ = cbuf[(p - 1) & 1];
			const float *dx_ = dx[2 * (p - 1)];
			TILE_SCALE(c_, packed + (p - 1) * PAIR_BYTES, dx_);
		}
	}
	{
		const int32_t *c_ = cbuf[(np - 1) & 1];
		const float *dx_ = dx[2 * (np - 1)];
		TILE_SCALE(c_, packed + (np - 1) * PAIR_BYTES, dx_);
	}
#define ACC_STORE(i) if ((i) < rows) _mm512_storeu_ps(y + (size_t)(i) * ldy, a##i);
	ACC_ROWS(ACC_STORE)
	ACC_ROWS_HI(ACC_STORE)
#undef ACC_STORE
}

static void tile_run16(const uint8_t *x, size_t xs, const float (*dx)[TILE], const uint8_t *packed, size_t np,
		       float *y, size_t ldy, int first)
{
	tile_run(TILE, x, xs, dx, packed, np, y, ldy, first);
}

static void tile_run8(const uint8_t *x, size_t xs, const float (*dx)[TILE], const uint8_t *packed, size_t np,
		      float *y, size_t ldy, int first)
{
	tile_run(TILE / 2, x, xs, dx, packed, np, y, ldy, first);
}

/* dx_buf for rows [I0, I1) and blocks [2 PC, 2 PE). */
static void load_dx(const uint8_t *xq, size_t xs, size_t k, size_t i0, size_t i1, size_t pc, size_t pe)
{
	for (size_t i = i0; i < i1; i++) {
		const float *d = act_d_of(xq + i * xs, k) + 2 * pc;
		for (size_t b = 0; b < 2 * (pe - pc); b++)
			dx_buf[(i - i0) / TILE][b][(i - i0) % TILE] = d[b];
	}
}

/* Activation rows in blocks of MBLOCK, K in chunks of CHUNK_PAIRS: per
 * chunk, every 16-row weight tile of [J0, J1) is packed once and
 * multiplied by all row tiles of the block, partial sums accumulating
 * in Y. Rows past the last whole 8 and weight rows past the last whole 16
 * go to the AVX-512 kernel. */
static void mm_pair_amx(int q4, enum gi_type t, const void *w, size_t k, const void *xq, size_t xs,
			size_t m, float *y, size_t ldy, size_t j0, size_t j1)
{
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm[t];
	const size_t wrow = gi_type_row_bytes(t, k), nb = k / 32, np = act_pairs(k);
	const size_t mt = m / (TILE / 2) * (TILE / 2), jt = j0 + (j1 - j0) / TILE * TILE;
	const uint8_t *x = xq;
	int cfg_rows = 0;

	if (mt == 0 || jt == j0) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	for (size_t i0 = 0; i0 < mt; i0 += MBLOCK) {
		const size_t i1 = mt - i0 < MBLOCK ? mt : i0 + MBLOCK, i16 = i0 + (i1 - i0) / TILE * TILE;
		for (size_t pc = 0; pc < np; pc += CHUNK_PAIRS) {
			const size_t pe = np - pc < CHUNK_PAIRS ? np : pc + CHUNK_PAIRS;
			load_dx(x, xs, k, i0, i1, pc, pe);
			for (size_t j = j0; j < jt; j += TILE) {
				const uint8_t *wj = (const uint8_t *)w + j * wrow;
				for (size_t p = pc; p < pe; p++)
					pack_pair(wj, wrow, 2 * p, 2 * p + 1 < nb, q4, pack_buf + (p - pc) * PAIR_BYTES);
				if (i16 > i0 && cfg_rows != TILE) {
					cfg_rows = TILE;
					tile_setup(TILE);
				}
				for (size_t i = i0; i < i16; i += TILE)
					tile_run16(x + i * xs + 64 * pc, xs, dx_buf[(i - i0) / TILE], pack_buf, pe - pc,
						   y + i * ldy + j, ldy, pc == 0);
				if (i16 < i1) {
					if (cfg_rows != TILE / 2) {
						cfg_rows = TILE / 2;
						tile_setup(TILE / 2);
					}
					tile_run8(x + i16 * xs + 64 * pc, xs, dx_buf[(i16 - i0) / TILE], pack_buf,
						  pe - pc, y + i16 * ldy + j, ldy, pc == 0);
				}
			}
		}
	}
	_tile_release();
	if (mt < m)
		fallback(w, k, x + mt * xs, xs, m - mt, y + mt * ldy, ldy, j0, jt);
	if (jt < j1)
		fallback(w, k, xq, xs, m, y, ldy, jt, j1);
}

static void mm_q4_0_amx(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, size_t ldy,
			size_t j0, size_t j1)
{
	mm_pair_amx(1, GI_TYPE_Q4_0, w, k, xq, xs, m, y, ldy, j0, j1);
}

static void mm_q8_0_amx(const void *w, size_t k, const void *xq, size_t xs, size_t m, float *y, size_t ldy,
			size_t j0, size_t j1)
{
	mm_pair_amx(0, GI_TYPE_Q8_0, w, k, xq, xs, m, y, ldy, j0, j1);
}

const struct cpu_kernels cpu_kernels_amx = {
	.name = "amx",
	.mm = {
		[GI_TYPE_Q4_0] = mm_q4_0_amx,
		[GI_TYPE_Q8_0] = mm_q8_0_amx,
		[GI_TYPE_F16] = cpu_mm_f16_amx,
		[GI_TYPE_BF16] = cpu_mm_bf16_amx,
		[GI_TYPE_Q4_K] = cpu_mm_q4_K_amx,
		[GI_TYPE_Q6_K] = cpu_mm_q6_K_amx,
	},
	.mm_x16 = {
		[GI_TYPE_Q4_0] = cpu_mm_x16_q4_0_amx,
		[GI_TYPE_Q8_0] = cpu_mm_x16_q8_0_amx,
		[GI_TYPE_Q4_K] = cpu_mm_x16_q4_K_amx,
		[GI_TYPE_Q6_K] = cpu_mm_x16_q6_K_amx,
		[GI_TYPE_F16] = cpu_mm_x16_f16_amx,
		[GI_TYPE_BF16] = cpu_mm_x16_bf16_amx,
	},
};
