/* Fibers for the CUDA emulator: small stacks from a shared pool and a
 * context switch (a few instructions on x86-64, ucontext elsewhere). Not
 * for use outside kernels/emu. */
#pragma once
#include <cstddef>

namespace emu {

struct stack {
	char *base; /* lowest usable byte; a guard page sits below it */
	size_t size;
	bool abandoned; /* a fiber on it never returned (ASan poison may remain) */
};

/* A stack from the pool, or a new mapping; false when out of memory. */
bool stack_get(stack *ret);
/* Back to the pool (kept for the next launch). */
void stack_put(const stack &s);

/* A saved context: where a fiber or the scheduler resumes. */
struct context {
	void *sp;
#if !defined(__x86_64__)
	void *uc; /* ucontext_t, allocated by ctx_init or ctx_switch */
#endif
};

/* Prepares C to start running ENTRY(ARG) on stack S at the next switch to
 * it. ENTRY must never return: it ends by switching away for good. */
void ctx_init(context *c, const stack &s, void (*entry)(void *), void *arg);
/* Saves the running context in FROM and resumes TO. */
void ctx_switch(context *from, context *to);
/* Frees what ctx_init or ctx_switch allocated for C (nothing on x86-64). */
void ctx_release(context *c);

} /* namespace emu */
