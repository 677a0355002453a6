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

/* tmm0, tmm1: C of the pair's two blocks; tmm2: A; tmm3, tmm4: B; for
 * tiles of 8 activation rows tmm5, tmm7: C and tmm6: A. */
static void tile_setup(void)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.palette = 1;
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = t < 5 ? TILE : TILE / 2;
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
}

static __thread uint8_t pack_buf[CHUNK_PAIRS * PAIR_BYTES] __attribute__((aligned(64)));

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

/* acc[i] += C[i] * d_w * d_x[i] for the two blocks of the pair at PK. */
static inline __attribute__((always_inline)) void tile_scale(__m512 *acc, int rows, const int32_t *c,
							     const uint8_t *pk, const float *const *dx, size_t b)
{
	const __m512 dw0 = _mm512_load_ps(pk + 2 * TILE_BYTES);
	const __m512 dw1 = _mm512_load_ps(pk + 2 * TILE_BYTES + 64);
#pragma GCC unroll 16
	for (int i = 0; i < rows; i++) {
		const __m512 c0 = _mm512_cvtepi32_ps(_mm512_load_si512(c + TILE * i));
		const __m512 c1 = _mm512_cvtepi32_ps(_mm512_load_si512(c + TILE * TILE + TILE * i));
		acc[i] = _mm512_fmadd_ps(c0, _mm512_mul_ps(dw0, _mm512_set1_ps(dx[i][b])), acc[i]);
		acc[i] = _mm512_fmadd_ps(c1, _mm512_mul_ps(dw1, _mm512_set1_ps(dx[i][b + 1])), acc[i]);
	}
}

/* ROWS (16 or 8) activation rows x 16 weight rows over the packed pairs
 * [P0, P1). The float scaling of pair p runs after the tile ops of pair
 * p + 1 were issued: reading a tile store back at once would stall on it. */
static inline __attribute__((always_inline)) void tile_run(int rows, const uint8_t *x, size_t xs, size_t k,
							   const uint8_t *packed, size_t p0, size_t p1,
							   float *y, size_t ldy, int first)
{
	int32_t cbuf[2][2 * TILE * TILE] __attribute__((aligned(64)));
	const float *dx[TILE];
	__m512 acc[TILE];

	for (int i = 0; i < rows; i++) {
		dx[i] = act_d_of(x + (size_t)i * xs, k);
		acc[i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)i * ldy);
	}
	for (size_t p = p0; p < p1; p++) {
		const uint8_t *pk = packed + (p - p0) * PAIR_BYTES;
		int32_t *c = cbuf[(p - p0) & 1];
		_tile_loadd(3, pk, 64);
		_tile_loadd(4, pk + TILE_BYTES, 64);
		if (rows == TILE) {
			_tile_loadd(2, x + 64 * p, (long)xs);
			_tile_zero(0);
			_tile_zero(1);
			_tile_dpbssd(0, 2, 3);
			_tile_dpbssd(1, 2, 4);
			_tile_stored(0, c, 64);
			_tile_stored(1, c + TILE * TILE, 64);
		} else {
			_tile_loadd(6, x + 64 * p, (long)xs);
			_tile_zero(5);
			_tile_zero(7);
			_tile_dpbssd(5, 6, 3);
			_tile_dpbssd(7, 6, 4);
			_tile_stored(5, c, 64);
			_tile_stored(7, c + TILE * TILE, 64);
		}
		if (p > p0)
			tile_scale(acc, rows, cbuf[(p - 1 - p0) & 1], pk - PAIR_BYTES, dx, 2 * (p - 1));
	}
	tile_scale(acc, rows, cbuf[(p1 - 1 - p0) & 1], packed + (p1 - 1 - p0) * PAIR_BYTES, dx, 2 * (p1 - 1));
	for (int i = 0; i < rows; i++)
		_mm512_storeu_ps(y + (size_t)i * ldy, acc[i]);
}

static void tile_run16(const uint8_t *x, size_t xs, size_t k, const uint8_t *packed, size_t p0, size_t p1,
		       float *y, size_t ldy, int first)
{
	tile_run(TILE, x, xs, k, packed, p0, p1, y, ldy, first);
}

static void tile_run8(const uint8_t *x, size_t xs, size_t k, const uint8_t *packed, size_t p0, size_t p1,
		      float *y, size_t ldy, int first)
{
	tile_run(TILE / 2, x, xs, k, packed, p0, p1, y, ldy, first);
}

static void mm_pair_amx(int q4, enum gi_type t, const void *w, size_t k, const void *xq, size_t xs,
			size_t m, float *y, size_t ldy, size_t j0, size_t j1)
{
	const cpu_mm_fn fallback = cpu_kernels_avx512.mm[t];
	const size_t wrow = gi_type_row_bytes(t, k), nb = k / 32, np = act_pairs(k);
	/* rows on AMX: 16-row tiles, then one 8-row tile if 8 or more are left */
	const size_t m16 = m / TILE * TILE, mt = m - m16 >= TILE / 2 ? m16 + TILE / 2 : m16;
	size_t j = j0;

	if (m < TILE / 2) {
		fallback(w, k, xq, xs, m, y, ldy, j0, j1);
		return;
	}
	tile_setup();
	for (; j + TILE <= j1; j += TILE) {
		const uint8_t *wj = (const uint8_t *)w + j * wrow;
		for (size_t pc = 0; pc < np; pc += CHUNK_PAIRS) {
			const size_t pe = np - pc < CHUNK_PAIRS ? np : pc + CHUNK_PAIRS;
			for (size_t p = pc; p < pe; p++)
				pack_pair(wj, wrow, 2 * p, 2 * p + 1 < nb, q4, pack_buf + (p - pc) * PAIR_BYTES);
			for (size_t i = 0; i < m16; i += TILE)
				tile_run16((const uint8_t *)xq + i * xs, xs, k, pack_buf, pc, pe, y + i * ldy + j, ldy,
					   pc == 0);
			if (mt > m16)
				tile_run8((const uint8_t *)xq + m16 * xs, xs, k, pack_buf, pc, pe, y + m16 * ldy + j,
					  ldy, pc == 0);
		}
		if (mt < m)
			fallback(w, k, (const uint8_t *)xq + mt * xs, xs, m - mt, y + mt * ldy, ldy, j, j + TILE);
	}
	_tile_release();
	if (j < j1)
		fallback(w, k, xq, xs, m, y, ldy, j, j1);
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
};
