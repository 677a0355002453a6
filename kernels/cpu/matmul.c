/* CPU matmul dispatcher: picks the best kernel set this CPU runs (AMX,
 * AVX-512 VNNI, AVX2/FMA, scalar) once, and routes the public entry points
 * of matmul.h to it. GI_NO_SIMD=1 builds know only the scalar set. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_impl.h"
#include "kernels/cpu/repack.h"

static pthread_once_t pick_once = PTHREAD_ONCE_INIT;
static struct cpu_kernels active;

/* The AMX set overrides only the types it has; the rest run on AVX-512. */
static void install(const struct cpu_kernels *base, const struct cpu_kernels *over)
{
	active = *base;
	if (!over)
		return;
	active.name = over->name;
	for (int t = 0; t < GI_TYPE_COUNT_; t++) {
		if (over->act[t])
			active.act[t] = over->act[t];
		if (over->mm[t])
			active.mm[t] = over->mm[t];
		if (over->mm_x16[t])
			active.mm_x16[t] = over->mm_x16[t];
	}
}

#if !GI_NO_SIMD
static int have_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int have_avx512(void)
{
	return have_avx2() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
}

/* The tile data permission is asked for once; a refusal is final. */
static int amx_state;

static int have_amx(void)
{
	if (!amx_state)
		amx_state = have_avx512() && cpu_amx_enable() == 0 ? 1 : -1;
	return amx_state > 0;
}
#endif

static int select_level(const char *level)
{
	if (!strcmp(level, "scalar")) {
		install(&cpu_kernels_scalar, NULL);
		return 0;
	}
#if !GI_NO_SIMD
	if (!strcmp(level, "avx2")) {
		if (!have_avx2())
			return -ENOTSUP;
		install(&cpu_kernels_avx2, NULL);
		return 0;
	}
	if (!strcmp(level, "avx512")) {
		if (!have_avx512())
			return -ENOTSUP;
		install(&cpu_kernels_avx512, NULL);
		return 0;
	}
	if (!strcmp(level, "amx")) {
		if (!have_amx())
			return -ENOTSUP;
		install(&cpu_kernels_avx512, &cpu_kernels_amx);
		return 0;
	}
#else
	if (!strcmp(level, "avx2") || !strcmp(level, "avx512") || !strcmp(level, "amx"))
		return -ENOTSUP;
#endif
	return -EINVAL;
}

/* The best level, or the one GI_CPU_SIMD names if this CPU has it (the
 * variable the other CPU ops honour too, so a test can run all of them at
 * one level). */
static void pick(void)
{
	static const char *const order[] = { "amx", "avx512", "avx2", "scalar" };
	const char *cap = getenv("GI_CPU_SIMD");
	if (cap && *cap && select_level(cap) == 0)
		return;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (select_level(order[i]) == 0)
			return;
}

static const struct cpu_kernels *kernels(void)
{
	pthread_once(&pick_once, pick);
	return &active;
}

int cpu_simd_force(const char *level)
{
	kernels();
	if (!level) {
		pick();
		return 0;
	}
	return select_level(level);
}

const char *cpu_simd_level(void)
{
	return kernels()->name;
}

static size_t round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

size_t cpu_act_row_bytes(enum gi_type wt, size_t k)
{
	switch (wt) {
	case GI_TYPE_F32:
		return round64(k * sizeof(float));
	case GI_TYPE_F16:
	case GI_TYPE_BF16:
		return act_f16w_kp(k) * (sizeof(float) + 2 * sizeof(gi_bf16));
	case GI_TYPE_Q4_0:
	case GI_TYPE_Q8_0:
		if (k % 32)
			return 0;
		return round64(act_pairs(k) * 64 + act_meta_len(k) * 8);
	case GI_TYPE_Q4_K:
	case GI_TYPE_Q6_K:
		if (k % QK_K)
			return 0;
		return round64(k / QK_K * sizeof(struct block_q8_K));
	default:
		return 0;
	}
}

void cpu_act_convert(enum gi_type wt, const float *x, size_t k, size_t r0, size_t r1, void *xq)
{
	cpu_act_fn fn = gi_type_valid(wt) ? kernels()->act[wt] : NULL;
	size_t stride = cpu_act_row_bytes(wt, k);

	if (!fn || !stride)
		return;
	for (size_t r = r0; r < r1; r++)
		fn(x + r * k, k, (uint8_t *)xq + r * stride);
}

void cpu_matmul_rows(enum gi_type wt, const void *w, size_t k, const void *xq, size_t m,
		     float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_fn fn = gi_type_valid(wt) ? kernels()->mm[wt] : NULL;
	size_t stride = cpu_act_row_bytes(wt, k);

	if (!fn || !stride || j0 >= j1 || !m)
		return;
	fn(w, k, xq, stride, m, y, ldy, j0, j1);
}

void cpu_matmul_x16_rows(enum gi_type wt, const void *wp, size_t k, const void *xq, size_t m,
			 float *y, size_t ldy, size_t j0, size_t j1)
{
	cpu_mm_fn fn = gi_type_valid(wt) ? kernels()->mm_x16[wt] : NULL;
	size_t stride = cpu_act_row_bytes(cpu_x16_act_type(wt), k);

	if (!fn || !stride || j0 >= j1 || !m)
		return;
	fn(wp, k, xq, stride, m, y, ldy, j0, j1);
}
