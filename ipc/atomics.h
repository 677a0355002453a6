/* The only memory-ordering primitives gid uses on shared memory. Everything
 * else (rings, doorbells, session code) goes through these names, so the
 * ordering of every access is visible at the call site and each call there
 * carries a comment naming the access on the other side it pairs with.
 *
 * Shared control words are plain uint32_t/uint64_t in the memfd; both
 * processes access them only through these functions. */
#pragma once
#include <stdint.h>

/* Load that later loads and stores of this thread cannot move above; pairs
 * with a gi_store_release of the same word by the peer. */
static inline uint32_t gi_load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Store that earlier loads and stores of this thread cannot move below;
 * publishes everything written before it to a gi_load_acquire reader. */
static inline void gi_store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Untorn access with no ordering: for words only this side writes (reading
 * back its own value) or whose ordering a nearby fence provides. */
static inline uint32_t gi_load_relaxed(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void gi_store_relaxed(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t gi_load_relaxed64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void gi_store_relaxed64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Full (store-load) fence: no store before it may become visible after a load
 * that follows it. Needed by the need-wakeup handshake, where each side
 * stores one word and then loads the other's (Dekker); acquire/release alone
 * allows both loads to see old values, and a wakeup is lost. */
static inline void gi_fence_full(void)
{
#ifdef __SANITIZE_THREAD__
	/* TSan does not model stand-alone fences (GCC warns); a seq_cst
	 * read-modify-write is one it understands, and is a full barrier on the
	 * CPUs we build TSan tests for. */
	static uint32_t tsan_fence_word;
	__atomic_fetch_add(&tsan_fence_word, 0, __ATOMIC_SEQ_CST);
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/* Compiler-only barrier: keeps the compiler from merging or hoisting shared
 * accesses across it; orders nothing between CPUs. */
static inline void gi_barrier_compiler(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Spin-wait hint (PAUSE on x86, YIELD on arm64). */
static inline void gi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	gi_barrier_compiler();
#endif
}
