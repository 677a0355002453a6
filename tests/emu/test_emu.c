/* The CUDA emulator's runtime (kernels/emu): barriers over divergent work,
 * shared memory per block, warp shuffles and votes against a scalar model
 * of CUDA's rules, atomics across blocks running at once, misuse that
 * would hang a GPU ending the launch with an error instead, and a missing
 * barrier showing up as wrong results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/emu/emu.h"
#include "tests/emu/probe.h"
#include "tests/t_util.h"

static uint64_t rng = 7;

static uint32_t urand(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

static const struct {
	unsigned bx, by, grid, workers;
} bcfg[] = {
	{ 32, 1, 1, 1 }, { 64, 1, 5, 2 }, { 256, 1, 9, 4 }, { 48, 1, 3, 2 },
	{ 16, 8, 4, 3 }, { 1, 1, 3, 1 },  { 1024, 1, 2, 2 }, { 7, 5, 6, 4 },
};

START_TEST(barrier_divergent)
{
	unsigned bx = bcfg[_i].bx, by = bcfg[_i].by, grid = bcfg[_i].grid, n = bx * by, rounds = 5;
	uint32_t *out = calloc((size_t)grid * n, sizeof(*out));
	emu_set_threads((int)bcfg[_i].workers);
	ck_assert_msg(probe_barrier(out, bx, by, grid, rounds) == 0, "%s", emu_last_error());
	for (unsigned b = 0; b < grid; b++)
		for (unsigned t = 0; t < n; t++) {
			uint32_t want = 0, nb = (t + 1) % n;
			for (unsigned r = 0; r < rounds; r++) {
				want += nb * 1000 + r + b;
				if (nb / 32 < n / 32 && (nb / 32 + r) % 2 == 0)
					want += 1024 * (nb / 32) + 496; /* its warp's id sum */
			}
			ck_assert_msg(out[b * n + t] == want, "block %u thread %u: %u, want %u", b, t,
				      out[b * n + t], want);
		}
	free(out);
}
END_TEST

START_TEST(shared_per_block)
{
	enum { GRID = 64 };
	uint32_t out[2 * GRID];
	for (int workers = 1; workers <= 4; workers++) {
		emu_set_threads(workers);
		memset(out, 0, sizeof(out));
		ck_assert_msg(probe_shared(out, GRID, 96) == 0, "%s", emu_last_error());
		for (unsigned b = 0; b < GRID; b++) {
			/* dynamic shared memory starts filled, never with an
			 * earlier block's data */
			ck_assert_msg(out[2 * b] == 0xffffffffu, "block %u saw 0x%x", b, out[2 * b]);
			ck_assert_msg(out[2 * b + 1] == b, "block %u: static shared holds %u", b,
				      out[2 * b + 1]);
		}
	}
}
END_TEST

/* CUDA's rules for the lane a shuffle reads, written out plainly. */
static unsigned shfl_src(int mode, unsigned lane, int arg, int width)
{
	unsigned seg = lane / (unsigned)width * (unsigned)width, end = seg + (unsigned)width;
	switch (mode) {
	case 0:
		return seg + (unsigned)arg % (unsigned)width;
	case 1:
		return (lane ^ (unsigned)arg) < end ? lane ^ (unsigned)arg : lane;
	case 2:
		return lane + (unsigned)arg < end ? lane + (unsigned)arg : lane;
	default:
		return (int)lane - arg >= (int)seg ? lane - (unsigned)arg : lane;
	}
}

START_TEST(shuffles)
{
	enum { N = 256 };
	static const int widths[] = { 32, 16, 8, 4, 2, 1 };
	static const unsigned masks[] = { 0xffffffffu, 0x0000ffffu, 0xff00ff00u };
	uint32_t in[N], out[N];
	int arg[N];
	emu_set_threads(2);
	for (int mode = 0; mode < 4; mode++)
		for (size_t wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++)
			for (size_t mi = 0; mi < sizeof(masks) / sizeof(masks[0]); mi++) {
				int width = widths[wi];
				unsigned mask = masks[mi];
				/* a uniform offset (xor, down, up) or any source (idx) */
				int uni = (int)(urand() % (unsigned)(width > 1 ? width : 2));
				for (unsigned i = 0; i < N; i++) {
					in[i] = urand();
					arg[i] = mode == 0 ? (int)(urand() % 64) : uni;
				}
				/* a partial mask only works where every read stays inside it */
				unsigned ok = 1;
				for (unsigned i = 0; i < N && mask != 0xffffffffu; i++) {
					unsigned lane = i % 32;
					if (mask >> lane & 1)
						ok &= mask >> shfl_src(mode, lane, arg[i], width) & 1;
				}
				if (!ok)
					continue;
				ck_assert_msg(probe_shfl(in, arg, out, N, 64, mode, width, mask) == 0,
					      "mode %d width %d: %s", mode, width, emu_last_error());
				for (unsigned i = 0; i < N; i++) {
					unsigned lane = i % 32, base = i - lane;
					uint32_t want = mask >> lane & 1 ?
								in[base + shfl_src(mode, lane, arg[i], width)] :
								in[i];
					ck_assert_msg(out[i] == want,
						      "mode %d width %d mask %08x arg %d lane %u: %u, want %u",
						      mode, width, mask, arg[i], lane, out[i], want);
				}
			}
}
END_TEST

START_TEST(votes)
{
	enum { N = 128 };
	int pred[N];
	uint32_t out[3 * N];
	for (unsigned i = 0; i < N; i++)
		pred[i] = i < 32 ? (int)(urand() % 2) : i < 64 ? 1 : i < 96 ? 0 : (int)(i == 100);
	ck_assert_msg(probe_vote(pred, out, N) == 0, "%s", emu_last_error());
	for (unsigned w = 0; w < N / 32; w++) {
		uint32_t ballot = 0;
		for (unsigned l = 0; l < 32; l++)
			ballot |= (uint32_t)(pred[32 * w + l] != 0) << l;
		for (unsigned l = 0; l < 32; l++) {
			unsigned i = 32 * w + l;
			ck_assert_uint_eq(out[3 * i], ballot);
			ck_assert_uint_eq(out[3 * i + 1], ballot != 0);
			ck_assert_uint_eq(out[3 * i + 2], ballot == 0xffffffffu);
		}
	}
}
END_TEST

START_TEST(atomics)
{
	int count = 0, max = -1;
	float sum = 0;
	emu_set_threads(4);
	ck_assert_msg(probe_atomics(&count, &sum, &max, 200, 96) == 0, "%s", emu_last_error());
	ck_assert_int_eq(count, 200 * 96);
	ck_assert_msg(sum == 200 * 96 * 0.5f, "sum %g", (double)sum);
	ck_assert_int_eq(max, 200 * 96 - 1);
}
END_TEST

START_TEST(misuse_detected)
{
	static const struct {
		int err;
		const char *says;
	} want[] = {
		{ -EDEADLK, "returned without reaching it" },
		{ -EINVAL, "__syncthreads at" },
		{ -EINVAL, "leaves out the calling lane" },
		{ -EDEADLK, "warp barrier" },
		{ -EINVAL, "wait at a shuffle" },
	};
	emu_set_threads(2);
	for (int kind = 0; kind < 5; kind++) {
		int r = probe_misuse(kind, 64);
		ck_assert_msg(r == want[kind].err, "kind %d: %d (%s)", kind, r, emu_last_error());
		ck_assert_msg(strstr(emu_last_error(), want[kind].says), "kind %d: %s", kind,
			      emu_last_error());
		/* the runtime is usable again right after */
		uint32_t out[2 * 3];
		ck_assert_int_eq(probe_shared(out, 3, 40), 0);
		ck_assert_str_eq(emu_last_error(), "");
	}
}
END_TEST

/* The emulator cannot see a missing barrier, but it runs threads in both
 * orders, so a kernel that depends on one gives wrong results in tests. */
START_TEST(race_exposed)
{
	enum { GRID = 2, T = 64 };
	uint32_t out[GRID * T];
	for (int up = 0; up < 2; up++) {
		ck_assert_int_eq(probe_race(out, GRID, T, up), 0);
		unsigned stale = 0;
		for (unsigned i = 0; i < GRID * T; i++) {
			unsigned t = i % T, nb = up ? (t + 1) % T : (t + T - 1) % T;
			stale += out[i] != nb + 1;
		}
		ck_assert_msg(stale > 0, "reading %s neighbour without a barrier went unnoticed",
			      up ? "the next" : "the previous");
	}
}
END_TEST

START_TEST(bad_config)
{
	ck_assert_int_eq(probe_config(2048, 0), -EINVAL);
	ck_assert_msg(strstr(emu_last_error(), "block (2048"), "%s", emu_last_error());
	ck_assert_int_eq(probe_config(0, 0), -EINVAL);
	ck_assert_int_eq(probe_config(32, 1 << 20), -EINVAL);
	ck_assert_msg(strstr(emu_last_error(), "shared"), "%s", emu_last_error());
	ck_assert_int_eq(probe_config(1024, 48 * 1024), 0);
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("emu");
	TCase *tc = tcase_create("runtime");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, barrier_divergent, 0, (int)(sizeof(bcfg) / sizeof(bcfg[0])));
	tcase_add_test(tc, shared_per_block);
	tcase_add_test(tc, shuffles);
	tcase_add_test(tc, votes);
	tcase_add_test(tc, atomics);
	tcase_add_test(tc, misuse_detected);
	tcase_add_test(tc, race_exposed);
	tcase_add_test(tc, bad_config);
	suite_add_tcase(s, tc);
	return s;
}
