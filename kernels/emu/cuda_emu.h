/* CUDA on the CPU: what a kernels/cuda source needs from the CUDA language
 * and runtime when g++ compiles it instead of nvcc (kernels/cuda/common.cuh
 * picks this header or the CUDA ones).
 *
 * Model. A launch runs the blocks of its grid on a few OS threads, each
 * running one block at a time; the threads of a block are cooperative
 * fibers on that OS thread, switched only inside __syncthreads, __syncwarp
 * and the warp operations. So within a block nothing races, and memory
 * written before a barrier is seen after it; blocks on different OS threads
 * do run at once (atomics are real atomics).
 *  - __shared__ variables are thread_local statics: one copy per OS thread,
 *    which runs one block at a time, so each block has its own. As on a GPU
 *    their contents are undefined at block start. Dynamic shared memory
 *    (GI_DYN_SHARED in common.cuh) is filled with 0xff bytes (NaN) at each
 *    block start, so a kernel reading it before writing it shows up in tests.
 *  - Warp operations exchange values through per-warp slots and a barrier
 *    of the lanes in their mask.
 *  - Misuse that hangs a GPU (a barrier some threads never reach because
 *    they returned, threads at two different __syncthreads, a shuffle whose
 *    mask leaves out the calling lane or the lane it reads) ends the launch
 *    with an error and a message (emu_last_error) instead. */
#pragma once
#ifdef __CUDACC__
#error "kernels/emu/cuda_emu.h is for host compilers; nvcc has the real CUDA headers"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/emu/emu.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static thread_local

struct dim3 {
	unsigned x, y, z;
	constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct uint3 {
	unsigned x, y, z;
};

namespace emu {

struct fiber;

/* What a running CUDA thread sees. */
struct thread_view {
	uint3 thread_idx, block_idx;
	dim3 block_dim, grid_dim;
};

/* The running fiber's view (set by the scheduler before each switch). */
extern thread_local thread_view *cur;

/* Runtime entry points (kernels/emu/launch.cc). */
void syncthreads(const char *file, int line);
void syncwarp(unsigned mask);
enum shfl_mode { SHFL_IDX, SHFL_XOR, SHFL_DOWN, SHFL_UP };
uint64_t shfl(unsigned mask, uint64_t v, shfl_mode mode, int arg, int width);
enum vote_mode { VOTE_BALLOT, VOTE_ANY, VOTE_ALL };
unsigned vote(unsigned mask, int pred, vote_mode mode);
void *dyn_shared(void);

struct launch_cfg {
	dim3 grid, block;
	size_t shared_bytes;
};
/* Runs FN(ARG) as every thread of every block; 0 or a negative errno. */
int launch(const launch_cfg &cfg, void (*fn)(void *), void *arg);

template <typename Tuple> struct kernel_call {
	void (*kernel)(void);
	Tuple args;
};

template <typename... P> static void invoke(void *p)
{
	auto *c = static_cast<kernel_call<std::tuple<P...>> *>(p);
	auto k = reinterpret_cast<void (*)(P...)>(c->kernel);
	std::apply(k, c->args);
}

/* Callee-visible state lives in memory that the fiber switch (an opaque
 * call) may change; this keeps g++ from caching __shared__ statics, whose
 * address never escapes, in registers across a barrier. */
static inline void compiler_barrier(void)
{
	asm volatile("" ::: "memory");
}

template <typename T> static inline uint64_t to_bits(T v)
{
	static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
		      "warp shuffles move values of at most 8 bytes");
	uint64_t u = 0;
	std::memcpy(&u, &v, sizeof(v));
	return u;
}

template <typename T> static inline T from_bits(uint64_t u)
{
	T v;
	std::memcpy(&v, &u, sizeof(v));
	return v;
}

} /* namespace emu */

#define threadIdx (::emu::cur->thread_idx)
#define blockIdx (::emu::cur->block_idx)
#define blockDim (::emu::cur->block_dim)
#define gridDim (::emu::cur->grid_dim)
#define warpSize 32

#define __syncthreads()                                  \
	do {                                             \
		::emu::compiler_barrier();               \
		::emu::syncthreads(__FILE__, __LINE__);  \
		::emu::compiler_barrier();               \
	} while (0)

static inline void __syncwarp(unsigned mask = 0xffffffffu)
{
	emu::compiler_barrier();
	emu::syncwarp(mask);
	emu::compiler_barrier();
}

static inline void __threadfence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
	return emu::from_bits<T>(emu::shfl(mask, emu::to_bits(v), emu::SHFL_IDX, src, width));
}

template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
	return emu::from_bits<T>(emu::shfl(mask, emu::to_bits(v), emu::SHFL_XOR, lane_mask, width));
}

template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
	return emu::from_bits<T>(
		emu::shfl(mask, emu::to_bits(v), emu::SHFL_DOWN, (int)delta, width));
}

template <typename T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
	return emu::from_bits<T>(emu::shfl(mask, emu::to_bits(v), emu::SHFL_UP, (int)delta, width));
}

static inline unsigned __ballot_sync(unsigned mask, int pred)
{
	return emu::vote(mask, pred, emu::VOTE_BALLOT);
}

static inline int __any_sync(unsigned mask, int pred)
{
	return (int)emu::vote(mask, pred, emu::VOTE_ANY);
}

static inline int __all_sync(unsigned mask, int pred)
{
	return (int)emu::vote(mask, pred, emu::VOTE_ALL);
}

/* ---- atomics (blocks on different OS threads run at once) ------------------ */

static inline int atomicAdd(int *p, int v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static inline unsigned atomicAdd(unsigned *p, unsigned v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static inline float atomicAdd(float *p, float v)
{
	float old, nv;
	__atomic_load(p, &old, __ATOMIC_RELAXED);
	do
		nv = old + v;
	while (!__atomic_compare_exchange(p, &old, &nv, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return old;
}

static inline int atomicMax(int *p, int v)
{
	int old = __atomic_load_n(p, __ATOMIC_RELAXED);
	while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
	return old;
}

static inline int atomicCAS(int *p, int cmp, int v)
{
	__atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	return cmp;
}

static inline int atomicExch(int *p, int v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}

/* ---- F16 and BF16 (bit-exact with kernels/types.c, round to nearest even) -- */

extern "C" uint16_t gi_f32_to_f16(float f);
extern "C" float gi_f16_to_f32(uint16_t h);
extern "C" uint16_t gi_f32_to_bf16(float f);

struct __half {
	unsigned short x;
};
struct __nv_bfloat16 {
	unsigned short x;
};

static inline float __half2float(__half h)
{
	return gi_f16_to_f32(h.x);
}
static inline __half __float2half(float f)
{
	return __half{ gi_f32_to_f16(f) };
}
static inline __half __float2half_rn(float f)
{
	return __float2half(f);
}
static inline __half __ushort_as_half(unsigned short u)
{
	return __half{ u };
}
static inline unsigned short __half_as_ushort(__half h)
{
	return h.x;
}
static inline float __bfloat162float(__nv_bfloat16 b)
{
	uint32_t u = (uint32_t)b.x << 16;
	float f;
	std::memcpy(&f, &u, sizeof(f));
	return f;
}
static inline __nv_bfloat16 __float2bfloat16(float f)
{
	return __nv_bfloat16{ gi_f32_to_bf16(f) };
}
static inline float __uint_as_float(unsigned u)
{
	float f;
	std::memcpy(&f, &u, sizeof(f));
	return f;
}
static inline unsigned __float_as_uint(float f)
{
	unsigned u;
	std::memcpy(&u, &f, sizeof(u));
	return u;
}

/* ---- device math the CUDA headers add to <cmath> ---------------------------- */

static inline float rsqrtf(float x)
{
	return 1.0f / sqrtf(x);
}
static inline float __fdividef(float a, float b)
{
	return a / b;
}
template <typename T> static inline T __ldg(const T *p)
{
	return *p;
}

/* ---- launch ------------------------------------------------------------------- */

/* kernel<<<GRID, BLOCK, SHARED_BYTES>>>(ARGS...), synchronously; 0, -EINVAL
 * for a configuration a GPU rejects, -EDEADLK or -EINVAL for a kernel that
 * broke a rule of barriers or warps (message in emu_last_error()). */
template <typename... P, typename... A>
static int emu_launch(dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(P...),
		      A &&...args)
{
	emu::kernel_call<std::tuple<P...>> c{ reinterpret_cast<void (*)(void)>(kernel),
					      std::tuple<P...>(std::forward<A>(args)...) };
	return emu::launch(emu::launch_cfg{ grid, block, shared_bytes }, emu::invoke<P...>, &c);
}
