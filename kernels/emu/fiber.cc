/* Fiber stacks and context switches for the CUDA emulator.
 *
 * x86-64: the switch pushes the callee-saved registers (rbp, rbx, r12-r15)
 * and the SSE and x87 control words on the running stack, stores the stack
 * pointer, loads the other one and pops the same. A new fiber's stack is
 * built to look like one that switched away: its saved r12 and r13 hold the
 * argument and the entry function, its return address the start stub that
 * calls entry(arg) with the stack 16-byte aligned. Elsewhere: ucontext. */
#include "kernels/emu/fiber.h"

#include <cstdint>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu {

/* Kernel frames are small (a few local arrays); ASan's redzones triple them. */
#if defined(__SANITIZE_ADDRESS__)
static const size_t STACK_BYTES = 512 * 1024;
#else
static const size_t STACK_BYTES = 128 * 1024;
#endif

static std::mutex pool_lock;
static std::vector<stack> pool;

bool stack_get(stack *ret)
{
	{
		std::lock_guard<std::mutex> g(pool_lock);
		if (!pool.empty()) {
			*ret = pool.back();
			pool.pop_back();
			return true;
		}
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (p == MAP_FAILED)
		return false;
	if (mprotect(p, page, PROT_NONE)) {
		munmap(p, STACK_BYTES + page);
		return false;
	}
	*ret = stack{ static_cast<char *>(p) + page, STACK_BYTES, false };
	return true;
}

void stack_put(const stack &s)
{
	std::lock_guard<std::mutex> g(pool_lock);
	pool.push_back(s);
}

#if defined(__x86_64__)

extern "C" void emu_ctx_swap(void **save_sp, void *to_sp);
extern "C" void emu_ctx_start(void);

asm(R"(
	.text
	.globl emu_ctx_swap
	.hidden emu_ctx_swap
	.type emu_ctx_swap, @function
emu_ctx_swap:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $8, %rsp
	stmxcsr (%rsp)
	fnstcw 4(%rsp)
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	ldmxcsr (%rsp)
	fldcw 4(%rsp)
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size emu_ctx_swap, .-emu_ctx_swap

	.globl emu_ctx_start
	.hidden emu_ctx_start
	.type emu_ctx_start, @function
emu_ctx_start:
	movq %r12, %rdi
	callq *%r13
	ud2
	.size emu_ctx_start, .-emu_ctx_start
)");

void ctx_init(context *c, const stack &s, void (*entry)(void *), void *arg)
{
	/* top 16-aligned; the start stub's address at top - 8, so after the
	 * switch's ret the stack pointer is top, aligned for its call */
	uintptr_t top = ((uintptr_t)s.base + s.size) & ~(uintptr_t)15;
	uint64_t *f = reinterpret_cast<uint64_t *>(top - 64);
	uint32_t mxcsr;
	uint16_t fcw;
	asm volatile("stmxcsr %0" : "=m"(mxcsr));
	asm volatile("fnstcw %0" : "=m"(fcw));
	f[0] = mxcsr | (uint64_t)fcw << 32;
	f[1] = 0;                        /* r15 */
	f[2] = 0;                        /* r14 */
	f[3] = (uint64_t)(uintptr_t)entry; /* r13 */
	f[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
	f[5] = 0;                        /* rbx */
	f[6] = 0;                        /* rbp */
	f[7] = (uint64_t)(uintptr_t)emu_ctx_start;
	c->sp = f;
}

void ctx_switch(context *from, context *to)
{
	emu_ctx_swap(&from->sp, to->sp);
}

void ctx_release(context *)
{
}

#else

static void uc_start(unsigned hi, unsigned lo, unsigned ehi, unsigned elo)
{
	void *arg = reinterpret_cast<void *>((uintptr_t)hi << 32 | lo);
	auto entry = reinterpret_cast<void (*)(void *)>((uintptr_t)ehi << 32 | elo);
	entry(arg);
	__builtin_unreachable(); /* entry switches away for good */
}

static ucontext_t *uc_of(context *c)
{
	if (!c->uc)
		c->uc = new ucontext_t();
	return static_cast<ucontext_t *>(c->uc);
}

void ctx_init(context *c, const stack &s, void (*entry)(void *), void *arg)
{
	ucontext_t *uc = uc_of(c);
	getcontext(uc);
	uc->uc_stack.ss_sp = s.base;
	uc->uc_stack.ss_size = s.size;
	uc->uc_link = nullptr;
	uintptr_t a = (uintptr_t)arg, e = (uintptr_t)entry;
	makecontext(uc, reinterpret_cast<void (*)()>(uc_start), 4, (unsigned)(a >> 32), (unsigned)a,
		    (unsigned)(e >> 32), (unsigned)e);
}

void ctx_switch(context *from, context *to)
{
	swapcontext(uc_of(from), uc_of(to));
}

void ctx_release(context *c)
{
	delete static_cast<ucontext_t *>(c->uc);
	c->uc = nullptr;
}

#endif

} /* namespace emu */
