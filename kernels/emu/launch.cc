/* The CUDA emulator's runtime: launches, the per-block fiber scheduler,
 * __syncthreads, warp barriers, shuffles and votes.
 *
 * A launch hands block indices to a few OS threads (an atomic counter);
 * each runs its blocks one at a time. For a block it starts one fiber per
 * CUDA thread and runs them round-robin (alternately up and down the thread
 * index): a fiber runs until it waits at a barrier or returns. A barrier counts arrivals; the last thread to arrive
 * opens it (bumps its generation) and goes on, the others see the new
 * generation on their next turn. A round of the scheduler in which no fiber
 * arrived anywhere, passed a barrier or returned is a deadlock: some thread
 * waits for a thread that returned or waits elsewhere. The block then ends
 * with a message instead of hanging, and its fibers are abandoned (their
 * stacks go back to the pool; kernel code owns nothing that needs freeing).
 *
 * A fiber waiting at a barrier records the generation it waits to see
 * change; the scheduler passes over it without a switch until then.
 *
 * Warp operations write the lane's value (and a shuffle's source lane) to
 * per-warp slots and meet at a barrier of the lanes in the mask; the last
 * lane to arrive computes every lane's result into a result slot, so one
 * barrier per operation suffices. */
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/emu/cuda_emu.h"
#include "kernels/emu/fiber.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace emu {

thread_local thread_view *cur;

static const unsigned MAX_THREADS = 1024;
static const size_t MAX_SHARED = 48 * 1024; /* dynamic shared memory without opt-in */

struct fiber {
	thread_view view;
	context ctx;
	stack st;
	unsigned warp, lane;
	bool done;
	/* blocked at a barrier until *wait_gen != wait_val (NULL: runnable);
	 * the scheduler checks without switching to the fiber */
	const unsigned *wait_gen;
	unsigned wait_val;
	void *asan_fake;
};

struct warp_state {
	unsigned exists;  /* lanes of this warp the block has */
	unsigned pending; /* lanes of the barrier being gathered, 0 = none */
	unsigned arrived;
	unsigned gen;
	int op;           /* enum warp_op being gathered */
	uint64_t val[32]; /* each lane's value */
	uint8_t src[32];  /* shuffles: the lane each lane reads (32: none) */
	uint64_t res[32]; /* each lane's result, written by the last to arrive */
};

struct job {
	launch_cfg cfg;
	void (*fn)(void *);
	void *arg;
	unsigned n_blocks;
	std::atomic<unsigned> next{ 0 };
	std::atomic<bool> failed{ false };
	std::mutex lock; /* err, msg */
	int err = 0;
	char msg[512] = "";
};

/* One OS thread's state while it runs blocks. */
struct worker {
	job *j;
	context sched;
	std::vector<fiber> fibers;
	std::vector<warp_state> warps;
	std::vector<uint64_t> shared; /* dynamic shared memory, 8-byte aligned */
	fiber *f;                     /* the running fiber */
	unsigned n;                   /* threads per block */
	unsigned bar_arrived, bar_gen;
	const char *bar_file;
	int bar_line;
	bool progress;
	int err;
	char msg[384];
	const void *asan_bottom;
	size_t asan_size;
};

static thread_local worker *self;

static std::mutex error_lock;
static char last_error[512];
static int n_workers; /* 0 = default */

/* ---- switching ----------------------------------------------------------------- */

static void to_fiber(worker *w, fiber *f)
{
	w->f = f;
	cur = &f->view;
#if defined(__SANITIZE_ADDRESS__)
	void *fake = nullptr;
	__sanitizer_start_switch_fiber(&fake, f->st.base, f->st.size);
	ctx_switch(&w->sched, &f->ctx);
	__sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
	ctx_switch(&w->sched, &f->ctx);
#endif
}

/* From the running fiber back to the scheduler; DYING when it never resumes. */
static void to_sched(worker *w, bool dying)
{
	fiber *f = w->f;
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_start_switch_fiber(dying ? nullptr : &f->asan_fake, w->asan_bottom,
				       w->asan_size);
	ctx_switch(&f->ctx, &w->sched);
	__sanitizer_finish_switch_fiber(f->asan_fake, &w->asan_bottom, &w->asan_size);
#else
	(void)dying;
	ctx_switch(&f->ctx, &w->sched);
#endif
}

static void fiber_main(void *arg)
{
	fiber *f = static_cast<fiber *>(arg);
	worker *w = self;
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_finish_switch_fiber(nullptr, &w->asan_bottom, &w->asan_size);
#endif
	w->j->fn(w->j->arg);
	f->done = true;
	w->progress = true;
	to_sched(w, true);
}

/* Ends the block with a message (the scheduler never resumes this fiber). */
[[noreturn]] static void misuse(worker *w, int err, const char *fmt, ...)
{
	const uint3 &b = w->f->view.block_idx, &t = w->f->view.thread_idx;
	int n = snprintf(w->msg, sizeof(w->msg), "block (%u,%u,%u) thread (%u,%u,%u): ", b.x, b.y,
			 b.z, t.x, t.y, t.z);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->msg + n, sizeof(w->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	w->err = err;
	to_sched(w, true);
	__builtin_unreachable();
}

/* ---- barriers ------------------------------------------------------------------ */

void syncthreads(const char *file, int line)
{
	worker *w = self;
	if (w->bar_arrived == 0) {
		w->bar_file = file;
		w->bar_line = line;
	} else if (line != w->bar_line || strcmp(file, w->bar_file)) {
		misuse(w, -EINVAL, "__syncthreads at %s:%d while other threads wait at %s:%d", file,
		       line, w->bar_file, w->bar_line);
	}
	w->progress = true;
	unsigned g = w->bar_gen;
	if (++w->bar_arrived == w->n) {
		w->bar_arrived = 0;
		w->bar_gen++;
		return;
	}
	w->f->wait_gen = &w->bar_gen;
	w->f->wait_val = g;
	to_sched(w, false);
}

/* The operation a warp barrier gathers for; the last lane to arrive
 * computes every lane's result, so a lane never reads another's slot after
 * the barrier (where a faster lane may already be writing its next value). */
enum warp_op { OP_SYNC, OP_SHFL, OP_VOTE };

static const char *const op_name[] = { "__syncwarp", "shuffle", "vote" };

/* Results of the gathering that the last lane closes. */
static void warp_close(worker *w, warp_state *ws)
{
	unsigned need = ws->pending, ballot = 0;
	for (unsigned l = 0; l < 32; l++) {
		if (!(need & 1u << l))
			continue;
		if (ws->op == OP_SHFL) {
			unsigned src = ws->src[l];
			if (src >= 32 || !(need & 1u << src))
				misuse(w, -EINVAL,
				       "shuffle (mask 0x%08x): lane %u reads lane %u, which does not take part",
				       need, l, src);
			ws->res[l] = ws->val[src];
		} else if (ws->op == OP_VOTE && ws->val[l]) {
			ballot |= 1u << l;
		}
	}
	if (ws->op == OP_VOTE)
		for (unsigned l = 0; l < 32; l++)
			ws->res[l] = ballot;
	ws->pending = 0;
	ws->gen++;
}

/* The caller's lane joins OP over the lanes of MASK in its warp (its value
 * already in val[lane], its source lane in src[lane]) and returns its
 * result once every lane of the mask has joined. */
static uint64_t warp_gather(worker *w, unsigned mask, warp_op op)
{
	fiber *f = w->f;
	warp_state *ws = &w->warps[f->warp];
	unsigned need = mask & ws->exists, me = 1u << f->lane;
	if (!(mask & me))
		misuse(w, -EINVAL, "%s with mask 0x%08x that leaves out the calling lane %u",
		       op_name[op], mask, f->lane);
	/* another group of lanes (another mask) is gathering: let it finish */
	while (ws->pending && ws->pending != need)
		to_sched(w, false);
	if (!ws->pending) {
		ws->pending = need;
		ws->arrived = 0;
		ws->op = op;
	} else if (ws->op != op) {
		misuse(w, -EINVAL, "%s of lane %u while lanes 0x%08x wait at a %s", op_name[op],
		       f->lane, ws->arrived, op_name[ws->op]);
	}
	ws->arrived |= me;
	w->progress = true;
	if (ws->arrived == need) {
		warp_close(w, ws);
		return ws->res[f->lane];
	}
	f->wait_gen = &ws->gen;
	f->wait_val = ws->gen;
	to_sched(w, false);
	return ws->res[f->lane];
}

void syncwarp(unsigned mask)
{
	warp_gather(self, mask, OP_SYNC);
}

uint64_t shfl(unsigned mask, uint64_t v, shfl_mode mode, int arg, int width)
{
	worker *w = self;
	fiber *f = w->f;
	if (width <= 0 || width > 32 || (width & (width - 1)))
		misuse(w, -EINVAL, "shuffle width %d is not a power of two up to 32", width);
	warp_state *ws = &w->warps[f->warp];
	unsigned lane = f->lane, base = lane & ~(unsigned)(width - 1), src = lane;
	switch (mode) {
	case SHFL_IDX:
		src = base + ((unsigned)arg & (unsigned)(width - 1));
		break;
	case SHFL_XOR:
		src = lane ^ (unsigned)arg;
		src = src >= base + (unsigned)width ? lane : src;
		break;
	case SHFL_DOWN:
		src = lane + (unsigned)arg < base + (unsigned)width ? lane + (unsigned)arg : lane;
		break;
	case SHFL_UP:
		src = lane >= base + (unsigned)arg ? lane - (unsigned)arg : lane;
		break;
	}
	ws->val[lane] = v;
	ws->src[lane] = (uint8_t)(src < 32 ? src : 32);
	return warp_gather(w, mask, OP_SHFL);
}

unsigned vote(unsigned mask, int pred, vote_mode mode)
{
	worker *w = self;
	warp_state *ws = &w->warps[w->f->warp];
	ws->val[w->f->lane] = pred != 0;
	unsigned need = mask & ws->exists, ballot = (unsigned)warp_gather(w, mask, OP_VOTE);
	if (mode == VOTE_ANY)
		return ballot != 0;
	if (mode == VOTE_ALL)
		return ballot == need;
	return ballot;
}

void *dyn_shared(void)
{
	return self->shared.data();
}

/* ---- blocks -------------------------------------------------------------------- */

/* Who waits where, for the message of a deadlocked block. */
static void explain_deadlock(worker *w)
{
	unsigned done = 0, first_done = 0;
	for (unsigned i = 0; i < w->n; i++)
		if (w->fibers[i].done && !done++)
			first_done = i;
	const uint3 &b = w->fibers[0].view.block_idx;
	int n = snprintf(w->msg, sizeof(w->msg), "block (%u,%u,%u): deadlock: ", b.x, b.y, b.z);
	size_t left = sizeof(w->msg) - (size_t)n;
	if (w->bar_arrived) {
		n += snprintf(w->msg + n, left, "%u of %u threads wait at __syncthreads %s:%d",
			      w->bar_arrived, w->n, w->bar_file, w->bar_line);
	} else {
		for (unsigned i = 0; i < w->warps.size(); i++)
			if (w->warps[i].pending) {
				n += snprintf(w->msg + n, left,
					      "warp %u: lanes 0x%08x wait at a warp barrier for lanes 0x%08x",
					      i, w->warps[i].arrived, w->warps[i].pending);
				break;
			}
	}
	if (done && (size_t)n < sizeof(w->msg))
		snprintf(w->msg + n, sizeof(w->msg) - (size_t)n,
			 "; %u threads returned without reaching it (first: thread %u)", done,
			 first_done);
	w->err = -EDEADLK;
}

static int run_block(worker *w, unsigned idx)
{
	const launch_cfg &c = w->j->cfg;
	uint3 bi = { idx % c.grid.x, idx / c.grid.x % c.grid.y, idx / (c.grid.x * c.grid.y) };
	for (unsigned i = 0; i < w->n; i++) {
		fiber *f = &w->fibers[i];
		f->view.thread_idx = { i % c.block.x, i / c.block.x % c.block.y,
				       i / (c.block.x * c.block.y) };
		f->view.block_idx = bi;
		f->view.block_dim = c.block;
		f->view.grid_dim = c.grid;
		f->warp = i / 32;
		f->lane = i % 32;
		f->done = false;
		f->wait_gen = nullptr;
		f->asan_fake = nullptr;
#if defined(__SANITIZE_ADDRESS__)
		/* a fiber abandoned in an earlier block left its frames' redzones
		 * poisoned anywhere on its stack; one that returned, only those
		 * of fiber_main near the top */
		size_t top = f->st.size < 16384 ? f->st.size : 16384;
		if (f->st.abandoned)
			ASAN_UNPOISON_MEMORY_REGION(f->st.base, f->st.size);
		else
			ASAN_UNPOISON_MEMORY_REGION(f->st.base + f->st.size - top, top);
#endif
		f->st.abandoned = false;
		ctx_init(&f->ctx, f->st, fiber_main, f);
	}
	for (unsigned i = 0; i < w->warps.size(); i++) {
		unsigned lanes = std::min(32u, w->n - 32 * i);
		w->warps[i] = warp_state{};
		w->warps[i].exists = lanes == 32 ? ~0u : (1u << lanes) - 1;
	}
	std::fill(w->shared.begin(), w->shared.end(), ~(uint64_t)0);
	w->bar_arrived = 0;
	w->bar_gen = 0;
	w->err = 0;
	unsigned live = w->n;
	/* rounds alternate direction, starting forward in even blocks and
	 * backward in odd ones, so a read of another thread's shared write
	 * without a barrier between them sees stale data in some block */
	for (unsigned round = idx % 2; live; round++) {
		w->progress = false;
		for (unsigned k = 0; k < w->n && !w->err; k++) {
			fiber *f = &w->fibers[round % 2 ? w->n - 1 - k : k];
			if (f->done)
				continue;
			if (f->wait_gen) {
				if (*f->wait_gen == f->wait_val)
					continue;
				f->wait_gen = nullptr;
				w->progress = true; /* it passes its barrier */
			}
			to_fiber(w, f);
			live -= f->done;
		}
		if (w->err)
			break;
		if (live && !w->progress) {
			explain_deadlock(w);
			break;
		}
	}
	for (unsigned i = 0; i < w->n; i++)
		w->fibers[i].st.abandoned |= !w->fibers[i].done;
	cur = nullptr;
	return w->err;
}

static void fail(job *j, int err, const char *msg)
{
	std::lock_guard<std::mutex> g(j->lock);
	if (!j->err) {
		j->err = err;
		snprintf(j->msg, sizeof(j->msg), "%s", msg);
	}
	j->failed.store(true, std::memory_order_relaxed);
}

static void work(job *j)
{
	worker w{};
	w.j = j;
	w.n = j->cfg.block.x * j->cfg.block.y * j->cfg.block.z;
	w.fibers.resize(w.n);
	w.warps.resize((w.n + 31) / 32);
	w.shared.resize((j->cfg.shared_bytes + 7) / 8);
	unsigned have = 0;
	for (; have < w.n; have++)
		if (!stack_get(&w.fibers[have].st))
			break;
	self = &w;
	if (have < w.n) {
		fail(j, -ENOMEM, "out of memory for fiber stacks");
	} else {
		for (;;) {
			if (j->failed.load(std::memory_order_relaxed))
				break;
			unsigned b = j->next.fetch_add(1, std::memory_order_relaxed);
			if (b >= j->n_blocks)
				break;
			if (run_block(&w, b)) {
				fail(j, w.err, w.msg);
				break;
			}
		}
	}
	self = nullptr;
	for (unsigned i = 0; i < have; i++) {
		ctx_release(&w.fibers[i].ctx);
		stack_put(w.fibers[i].st);
	}
	ctx_release(&w.sched);
}

static int bad_config(const launch_cfg &c)
{
	const dim3 &g = c.grid, &b = c.block;
	uint64_t threads = (uint64_t)b.x * b.y * b.z;
	std::lock_guard<std::mutex> l(error_lock);
	if (!g.x || !g.y || !g.z || g.y > 65535 || g.z > 65535)
		snprintf(last_error, sizeof(last_error), "launch: grid (%u,%u,%u) is not valid", g.x,
			 g.y, g.z);
	else if (!threads || threads > MAX_THREADS || b.z > 64)
		snprintf(last_error, sizeof(last_error), "launch: block (%u,%u,%u) is not valid",
			 b.x, b.y, b.z);
	else if (c.shared_bytes > MAX_SHARED)
		snprintf(last_error, sizeof(last_error),
			 "launch: %zu bytes of dynamic shared memory, more than %zu", c.shared_bytes,
			 MAX_SHARED);
	else
		return 0;
	return -EINVAL;
}

static unsigned default_workers(void)
{
	const char *e = getenv("GI_EMU_THREADS");
	if (e && *e) {
		long v = strtol(e, nullptr, 10);
		if (v > 0 && v <= 64)
			return (unsigned)v;
	}
	unsigned hw = std::thread::hardware_concurrency();
	return std::max(1u, std::min(hw, 4u));
}

int launch(const launch_cfg &cfg, void (*fn)(void *), void *arg)
{
	if (int r = bad_config(cfg))
		return r;
	job j;
	j.cfg = cfg;
	j.fn = fn;
	j.arg = arg;
	uint64_t nb = (uint64_t)cfg.grid.x * cfg.grid.y * cfg.grid.z;
	if (nb > UINT32_MAX / 2) {
		std::lock_guard<std::mutex> l(error_lock);
		snprintf(last_error, sizeof(last_error), "launch: %llu blocks, too many to emulate",
			 (unsigned long long)nb);
		return -EINVAL;
	}
	j.n_blocks = (unsigned)nb;
	unsigned nw = n_workers > 0 ? (unsigned)n_workers : default_workers();
	nw = std::min(nw, j.n_blocks);
	std::vector<std::thread> helpers;
	for (unsigned i = 1; i < nw; i++)
		helpers.emplace_back(work, &j);
	work(&j);
	for (auto &t : helpers)
		t.join();
	std::lock_guard<std::mutex> l(error_lock);
	snprintf(last_error, sizeof(last_error), "%s", j.msg);
	return j.err;
}

} /* namespace emu */

extern "C" void emu_set_threads(int n)
{
	emu::n_workers = n > 0 ? n : 0;
}

extern "C" const char *emu_last_error(void)
{
	static char copy[512];
	std::lock_guard<std::mutex> l(emu::error_lock);
	memcpy(copy, emu::last_error, sizeof(copy));
	return copy;
}
