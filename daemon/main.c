/* gid: serves one LLM to every process on the machine.
 *
 * Start-up order: configuration (defaults, file, flags) -> file limits ->
 * model and backend -> KV pool sized and the memory plan printed ->
 * listening socket (systemd's or our own) -> scheduler and engine thread ->
 * privilege drop -> READY -> the I/O loop on this thread until SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/engine_loop.h"
#include "daemon/io.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/privs.h"
#include "daemon/textout.h"
#include "engine/model.h"
#include "ipc/handshake.h"
#include "ipc/session.h"

#define MIB (1024.0 * 1024.0)
#define KV_MEM_FRACTION 4        /* automatic KV pool: at most 1/4 of available memory */
#define MAX_INFLIGHT_PER_SESSION 256
#define MAX_PROMPT_BYTES (GI_ARENA_DEFAULT / 2)

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rlim_t old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("RLIMIT_NOFILE: cannot raise %llu to %llu: %s", (unsigned long long)old,
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* Creates the parent directory of PATH if missing (e.g. /run/gid). */
static void make_parent(const char *path)
{
	char dir[CONFIG_SOCKET_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		log_warn("mkdir %s: %s", dir, strerror(errno));
}

/* Binds and listens on PATH. A socket file nobody answers on is stale and
 * replaced; one that answers belongs to a running gid. */
static int bind_socket(const struct gid_config *c, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(c->socket) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "socket path '%s' is too long", c->socket);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, c->socket, strlen(c->socket) + 1);
	make_parent(c->socket);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(fd);
		snprintf(err, errlen, "socket %s: another gid is serving it", c->socket);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(c->socket);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		snprintf(err, errlen, "socket %s: %s", c->socket, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	int r = privs_socket_perms(c->socket, c->socket_group, c->socket_mode, err, errlen);
	if (r < 0) {
		close(fd);
		unlink(c->socket);
		return r;
	}
	return fd;
}

/* KV blocks: --kv-mb, else a full context for every session (max_sessions;
 * what is not held by running sequences serves as prefix cache), within a
 * fraction of the memory available now. */
static uint32_t size_kv(const struct gid_config *c, const struct model_info *mi, uint32_t ctx)
{
	uint64_t per_seq = (ctx + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
	uint64_t n;
	if (c->kv_mb) {
		n = (uint64_t)c->kv_mb * 1024 * 1024 / mi->kv_bytes_per_block;
	} else {
		n = per_seq * c->max_sessions;
		uint64_t cap = mem_available() / KV_MEM_FRACTION / mi->kv_bytes_per_block;
		if (cap && n > cap)
			n = cap > per_seq ? cap : per_seq;
	}
	if (n < 2)
		n = 2;
	if (n > (1u << 24))
		n = 1u << 24;
	return (uint32_t)n;
}

struct daemon {
	struct gid_config cfg;
	struct model *model;
	struct kv_cache *kv;
	struct engine *eng;
	int listen_fd;
	bool own_socket;
};

static int setup(struct daemon *d, char *err, size_t errlen)
{
	struct gid_config *c = &d->cfg;
	struct model_opts mo = {
		.size = sizeof(mo),
		.device = c->device,
		.n_threads = (int)c->threads,
		.max_batch_tokens = c->max_batch_tokens,
		.max_seqs = c->max_running,
	};
	char why[256];
	int r = model_load(c->model, &mo, &d->model, why, sizeof(why));
	if (r < 0) {
		if (!strncmp(c->device, "cuda", 4))
			snprintf(err, errlen, "device '%s': gid was built without CUDA or there is no GPU: %s",
				 c->device, why);
		else
			snprintf(err, errlen, "model %.3000s: %s", c->model, why);
		return r;
	}
	const struct model_info *mi = model_get_info(d->model);
	uint32_t ctx = c->ctx ? c->ctx : mi->n_ctx_train;
	if (ctx > mi->n_ctx_train) {
		log_warn("ctx %u is beyond the model's training context %u; using %u", ctx, mi->n_ctx_train,
			 mi->n_ctx_train);
		ctx = mi->n_ctx_train;
	}
	uint32_t n_blocks = size_kv(c, mi, ctx);
	r = kv_cache_create(d->model, n_blocks, &d->kv);
	if (r < 0) {
		snprintf(err, errlen, "KV pool of %u blocks: %s", n_blocks, strerror(-r));
		return r;
	}
	if ((uint64_t)n_blocks * KV_BLOCK_TOKENS < ctx) {
		log_warn("KV pool holds %u tokens, less than one context of %u: ctx capped",
			 n_blocks * KV_BLOCK_TOKENS, ctx);
		ctx = n_blocks * KV_BLOCK_TOKENS;
	}
	double kv_mib = (double)n_blocks * (double)mi->kv_bytes_per_block / MIB;
	log_info("model %s: %s '%s', %u layers, %u embd, vocab %u, ctx %u, chat template %s%s", c->model,
		 mi->arch, mi->name, mi->n_layer, mi->n_embd, mi->n_vocab, ctx, chat_tmpl_name(mi->chat),
		 mi->chat_known ? "" : " (fallback)");
	log_info("backend: %s", mi->backend);
	log_info("memory plan: weights %.1f MiB, KV %u blocks x %zu B = %.1f MiB (%u tokens), scratch %.1f MiB, total %.1f MiB",
		 (double)mi->weight_bytes / MIB, n_blocks, mi->kv_bytes_per_block, kv_mib,
		 n_blocks * KV_BLOCK_TOKENS, (double)mi->scratch_bytes / MIB,
		 (double)mi->weight_bytes / MIB + kv_mib + (double)mi->scratch_bytes / MIB);

	struct engine_opts eo = {
		.model = d->model,
		.kv = d->kv,
		.cfg = c,
		.limits = {
			.max_prompt_bytes = MAX_PROMPT_BYTES,
			.max_tokens = ctx,
			.max_stop_strings = TEXTOUT_MAX_STOP,
			.max_stop_len = TEXTOUT_STOP_MAX_LEN,
			.max_inflight = MAX_INFLIGHT_PER_SESSION,
			.n_ctx = ctx,
			.n_vocab = mi->n_vocab,
		},
	};
	r = engine_create(&eo, &d->eng, err, errlen);
	if (r < 0)
		return r;

	r = notify_listen_fd(err, errlen);
	if (r < 0)
		return r;
	if (r > 0) {
		d->listen_fd = r;
		log_info("listening on the socket systemd passed (fd %d)", r);
	} else {
		r = bind_socket(c, err, errlen);
		if (r < 0)
			return r;
		d->listen_fd = r;
		d->own_socket = true;
		log_info("listening on %s", c->socket);
	}

	r = privs_drop(c->user, strcmp(c->user, "gid") != 0, err, errlen);
	if (r < 0)
		return r;
	if (r > 0)
		log_warn("user '%s' does not exist: staying root (set --user or [daemon] user)", c->user);
	return engine_start(d->eng);
}

int main(int argc, char **argv)
{
	struct daemon *d = calloc(1, sizeof(*d));
	char err[4096] = "";
	if (!d) {
		fprintf(stderr, "gid: out of memory\n");
		return 1;
	}
	d->listen_fd = -1;
	int r = config_load(&d->cfg, argc, argv, err, sizeof(err));
	if (r == CONFIG_HELP) {
		printf("usage: gid --model PATH [--socket PATH] [--device auto|cpu|cuda[:N]] [--threads N]\n"
		       "           [--ctx N] [--kv-mb N] [--config FILE] [--user NAME] ...\n%s",
		       config_usage());
		free(d);
		return 0;
	}
	log_init(r == 0 ? d->cfg.log_level : CONFIG_LOG_INFO);
	if (r < 0) {
		log_err("%s", err);
		free(d);
		return 2;
	}
	raise_nofile();
	/* Signals go to the I/O thread's signalfd; every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	notify_status("loading %s", d->cfg.model);
	r = setup(d, err, sizeof(err));
	if (r == 0) {
		const struct model_info *mi = model_get_info(d->model);
		struct gi_hs_policy policy = {
			.features = GI_FEAT_ALL,
			.model_name = mi->name,
		};
		engine_limits(d->eng, &policy.limits);
		struct io_opts io = {
			.listen_fd = d->listen_fd,
			.unlink_path = d->own_socket ? d->cfg.socket : NULL,
			.cfg = &d->cfg,
			.eng = d->eng,
			.tok = model_tokenizer(d->model),
			.chat = mi->chat,
			.policy = &policy,
			.watchdog_usec = notify_watchdog_usec(),
		};
		d->listen_fd = -1;
		notify_ready("serving");
		log_notice("ready: pid %d, %s", (int)getpid(), d->own_socket ? d->cfg.socket : "socket from systemd");
		r = io_run(&io, err, sizeof(err));
	}
	if (r < 0)
		log_err("%s", err);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		if (d->own_socket)
			unlink(d->cfg.socket);
	}
	engine_destroy(d->eng);
	kv_cache_free(d->kv);
	model_free(d->model);
	log_info("stopped");
	free(d);
	return r < 0 ? 1 : 0;
}
