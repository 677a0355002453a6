/* bench-ipc: round trips between two processes over
 *   (a) the session rings, both sides busy-polling,
 *   (b) the session rings through the need-wakeup path: requests spaced so
 *       the engine side is asleep when each arrives, both sides using the
 *       idle policy (spin SPIN_US, then sleep on the eventfd); (b0) back to
 *       back with no spin at all, so both sides sleep on every message,
 *   (c) a plain AF_UNIX SOCK_SEQPACKET ping-pong of 64 bytes, back to back,
 *       and (c') spaced like (b), for the like-for-like comparison,
 *   (d) a loopback HTTP/1.1 keep-alive request/response with 64-byte bodies,
 * plus one-way 64-byte records per second through the SQ ring in batches.
 * The ring modes run the real code: the echo process is a gi_srv answering
 * NOP SQEs with NOP CQEs, the client a gi_cli on a gi_region_attach mapping.
 * Percentiles come from all samples, sorted. Processes are pinned to two
 * different CPUs when the affinity mask allows it.
 *
 *   bench-ipc [--json] [--no-pin] */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc/atomics.h"
#include "ipc/cli.h"
#include "ipc/doorbell.h"
#include "ipc/session.h"
#include "ipc/srv.h"
#include "ipc/validate.h"

#define SPIN_US 50
#define GAP_US 200

static int cpu_client = -1, cpu_server = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void pick_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (cpu_client < 0)
			cpu_client = i;
		else if (cpu_server < 0)
			cpu_server = i;
	}
	if (cpu_server < 0)
		cpu_client = -1;
}

static void gap(void)
{
	struct timespec ts = { .tv_nsec = GAP_US * 1000 };
	nanosleep(&ts, NULL);
}

/* ---- statistics ---- */

struct stats {
	double p50, p99, p999, mean;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static struct stats summarize(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	return (struct stats){
		.p50 = (double)v[n / 2],
		.p99 = (double)v[(size_t)((double)n * 0.99)],
		.p999 = (double)v[(size_t)((double)n * 0.999)],
		.mean = sum / (double)n,
	};
}

/* ---- ring modes ---- */

struct session {
	int memfd, sub, cmp;
	struct gi_region daemon_view;
};

static int session_new(struct session *s, uint32_t sq, uint32_t cq)
{
	struct gi_region_params p = { .sq_entries = sq, .cq_entries = cq, .arena_size = 4096, .session_id = 1 };
	int r = gi_region_create(&p, &s->memfd, &s->daemon_view);
	if (r)
		return r;
	s->sub = gi_db_create();
	s->cmp = gi_db_create();
	return s->sub < 0 || s->cmp < 0 ? -EMFILE : 0;
}

static void session_free(struct session *s)
{
	gi_region_release(&s->daemon_view);
	close(s->memfd);
	close(s->sub);
	close(s->cmp);
}

/* The engine side answers NOPs itself (gi_srv); a CANCEL SQE means "stop". */
static int on_req(void *ctx, struct gi_srv *s, const struct gi_srv_req *req)
{
	*(int *)ctx = 1;
	return 0;
}

static void echo_server(struct session *ss, int sleepy, uint64_t spin_ns)
{
	pin(cpu_server);
	struct gi_srv srv;
	struct gi_limits lim = { 0 };
	if (gi_srv_init(&srv, &ss->daemon_view, &lim, 0, ss->sub, ss->cmp))
		_exit(1);
	uint64_t last = now_ns();
	unsigned spins = 0;
	int stop = 0;
	for (;;) {
		int r = gi_srv_poll(&srv, 64, on_req, &stop);
		if (r < 0)
			_exit(2);
		if (stop)
			_exit(0);
		if (r > 0) {
			gi_srv_kick(&srv);
			if (sleepy)
				last = now_ns();
			continue;
		}
		if (!sleepy) {
			gi_cpu_relax();
			continue;
		}
		if (now_ns() - last < spin_ns) {
			/* The same courtesy as gi_cli_wait's spin: yield now and
			 * then in case the client shares this CPU. */
			if ((++spins & 63) == 0)
				sched_yield();
			else
				gi_cpu_relax();
			continue;
		}
		r = gi_srv_arm(&srv);
		if (r == 0) {
			gi_db_wait(ss->sub, -1);
			gi_db_drain(ss->sub);
		}
		gi_srv_disarm(&srv);
		last = now_ns();
	}
}

static int rtt_ring(int sleepy, uint64_t spin_ns, int spaced, size_t n, uint64_t *samples)
{
	struct session ss;
	if (session_new(&ss, 64, 256))
		return -1;
	pid_t pid = fork();
	if (pid == 0)
		echo_server(&ss, sleepy, spin_ns);
	pin(cpu_client);
	struct gi_region cr;
	struct gi_cli c;
	if (gi_region_attach(ss.memfd, &ss.daemon_view.layout, 1, &cr) || gi_cli_init(&c, &cr, ss.sub, ss.cmp))
		return -1;
	size_t warm = n / 10;
	for (size_t i = 0; i < n + warm; i++) {
		if (spaced)
			gap();
		struct gi_sqe q = { .opcode = GI_OP_NOP, .user_data = i, .nop.echo = i };
		struct gi_cqe e;
		uint64_t t0 = now_ns();
		if (gi_cli_submit(&c, &q, 1) != 1)
			return -1;
		for (;;) {
			int r = gi_cli_reap(&c, &e, 1);
			if (r < 0)
				return -1;
			if (r == 1)
				break;
			if (sleepy && gi_cli_wait(&c, spin_ns, 5000) < 0)
				return -1;
			if (!sleepy)
				gi_cpu_relax();
		}
		uint64_t t1 = now_ns();
		if (e.nop.echo != i)
			return -1;
		if (i >= warm)
			samples[i - warm] = t1 - t0;
	}
	struct gi_sqe stop = { .opcode = GI_OP_CANCEL };
	gi_cli_submit(&c, &stop, 1);
	waitpid(pid, NULL, 0);
	gi_cli_fini(&c);
	gi_region_release(&cr);
	session_free(&ss);
	return 0;
}

/* One-way: the client pushes 64-byte records in batches into a 4096-entry SQ;
 * the other process pops them in batches (copy out). With VALIDATE it also
 * runs gi_sqe_validate on each copied record, as the daemon does. */
static double oneway(uint64_t total, int validate)
{
	struct session ss;
	if (session_new(&ss, 4096, 4096))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		pin(cpu_server);
		struct gi_ring_cons cons;
		const struct gi_region *r = &ss.daemon_view;
		gi_ring_cons_init(&cons, r->sq_head, r->sq_tail, r->sqes, 4096, sizeof(struct gi_sqe), 0);
		struct gi_sqe buf[256];
		struct gi_limits lim = { 0 };
		uint64_t got = 0, bad = 0;
		while (got < total) {
			int k = gi_ring_pop(&cons, buf, 256);
			if (k < 0)
				_exit(2);
			if (k == 0) {
				gi_cpu_relax();
				continue;
			}
			for (int i = 0; validate && i < k; i++)
				bad += gi_sqe_validate(&buf[i], &lim, 4096, NULL, 0) != 0;
			got += (uint64_t)k;
		}
		_exit(bad ? 3 : 0);
	}
	pin(cpu_client);
	struct gi_region cr;
	if (gi_region_attach(ss.memfd, &ss.daemon_view.layout, 1, &cr))
		return -1;
	struct gi_ring_prod prod;
	gi_ring_prod_init(&prod, cr.sq_tail, cr.sq_head, cr.sqes, 4096, sizeof(struct gi_sqe), 0);
	struct gi_sqe batch[64];
	for (int i = 0; i < 64; i++)
		batch[i] = (struct gi_sqe){ .opcode = GI_OP_NOP, .user_data = (uint64_t)i };
	uint64_t t0 = now_ns(), sent = 0;
	while (sent < total) {
		int k = gi_ring_push(&prod, batch, 64);
		if (k < 0)
			return -1;
		if (k == 0)
			gi_cpu_relax();
		sent += (uint64_t)k;
	}
	int st;
	waitpid(pid, &st, 0);
	uint64_t t1 = now_ns();
	gi_region_release(&cr);
	session_free(&ss);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return (double)sent / ((double)(t1 - t0) * 1e-9);
}

/* ---- sockets ---- */

static int rtt_unix(int spaced, size_t n, uint64_t *samples)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		pin(cpu_server);
		close(sv[0]);
		char b[64];
		for (;;) {
			ssize_t k = recv(sv[1], b, sizeof(b), 0);
			if (k <= 0 || send(sv[1], b, (size_t)k, 0) != k)
				_exit(0);
		}
	}
	close(sv[1]);
	pin(cpu_client);
	char b[64] = { 0 };
	size_t warm = n / 10;
	for (size_t i = 0; i < n + warm; i++) {
		if (spaced)
			gap();
		uint64_t t0 = now_ns();
		if (send(sv[0], b, sizeof(b), 0) != (ssize_t)sizeof(b) || recv(sv[0], b, sizeof(b), 0) != (ssize_t)sizeof(b))
			return -1;
		if (i >= warm)
			samples[i - warm] = now_ns() - t0;
	}
	close(sv[0]);
	waitpid(pid, NULL, 0);
	return 0;
}

static const char http_req_hdr[] = "POST /v1/nop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Type: application/octet-stream\r\nContent-Length: 64\r\n\r\n";
static const char http_resp_hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
				    "Content-Length: 64\r\n\r\n";

/* Reads one HTTP message (headers + Content-Length body) into BUF. Returns
 * its length, or -1. Minimal: enough for this benchmark's fixed messages. */
static ssize_t http_read(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	for (;;) {
		ssize_t k = recv(fd, buf + have, cap - have - 1, 0);
		if (k <= 0)
			return -1;
		have += (size_t)k;
		buf[have] = 0;
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		char *cl = strcasestr(buf, "Content-Length:");
		size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
		size_t total = (size_t)(end + 4 - buf) + body;
		if (total > cap - 1)
			return -1;
		if (have >= total)
			return (ssize_t)total;
	}
}

static int rtt_http(size_t n, uint64_t *samples)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int one = 1;
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		pin(cpu_server);
		int c = accept(ls, NULL, NULL);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		char in[1024], out[512];
		size_t hl = strlen(http_resp_hdr);
		memcpy(out, http_resp_hdr, hl);
		memset(out + hl, 'r', 64);
		for (;;) {
			if (http_read(c, in, sizeof(in)) < 0 || send(c, out, hl + 64, 0) != (ssize_t)(hl + 64))
				_exit(0);
		}
	}
	close(ls);
	pin(cpu_client);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char req[512], in[1024];
	size_t hl = strlen(http_req_hdr);
	memcpy(req, http_req_hdr, hl);
	memset(req + hl, 'q', 64);
	size_t warm = n / 10;
	for (size_t i = 0; i < n + warm; i++) {
		uint64_t t0 = now_ns();
		if (send(fd, req, hl + 64, 0) != (ssize_t)(hl + 64) || http_read(fd, in, sizeof(in)) < 0)
			return -1;
		if (i >= warm)
			samples[i - warm] = now_ns() - t0;
	}
	close(fd);
	waitpid(pid, NULL, 0);
	return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	int json = 0, nopin = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--no-pin"))
			nopin = 1;
		else {
			fprintf(stderr, "usage: %s [--json] [--no-pin]\n", argv[0]);
			return 2;
		}
	}
	if (!nopin)
		pick_cpus();
	signal(SIGPIPE, SIG_IGN);
	const size_t n_poll = 200000, n_wake = 10000, n_unix = 100000, n_http = 50000;
	uint64_t *buf = malloc(sizeof(uint64_t) * n_poll);
	if (!buf)
		return 1;
	struct stats a, b, b0, c, cg, d;
	if (rtt_ring(0, 0, 0, n_poll, buf))
		goto fail;
	a = summarize(buf, n_poll);
	if (rtt_ring(1, SPIN_US * 1000ull, 1, n_wake, buf))
		goto fail;
	b = summarize(buf, n_wake);
	if (rtt_ring(1, 0, 0, n_unix, buf))
		goto fail;
	b0 = summarize(buf, n_unix);
	if (rtt_unix(0, n_unix, buf))
		goto fail;
	c = summarize(buf, n_unix);
	if (rtt_unix(1, n_wake, buf))
		goto fail;
	cg = summarize(buf, n_wake);
	if (rtt_http(n_http, buf))
		goto fail;
	d = summarize(buf, n_http);
	double ow = oneway(200000000ull, 0);
	double owv = oneway(50000000ull, 1);
	if (ow < 0 || owv < 0)
		goto fail;
	free(buf);
	if (json) {
		printf("{\"shm_poll_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		       "\"shm_wake_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		       "\"shm_wake_nospin_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		       "\"unix_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		       "\"unix_spaced_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		       "\"http_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		       "\"oneway_msgs_per_s\":%.0f,\"oneway_validated_msgs_per_s\":%.0f,"
		       "\"cpus\":[%d,%d]}\n",
		       a.p50, a.p99, a.p999, b.p50, b.p99, b.p999, b0.p50, b0.p99, b0.p999, c.p50, c.p99, c.p999,
		       cg.p50, cg.p99, cg.p999, d.p50, d.p99, d.p999, ow, owv, cpu_client, cpu_server);
		return 0;
	}
	char load[64] = "?";
	FILE *lf = fopen("/proc/loadavg", "r");
	if (lf) {
		if (!fgets(load, sizeof(load), lf))
			strcpy(load, "?");
		fclose(lf);
		load[strcspn(load, "\n")] = 0;
	}
	printf("bench-ipc: 64-byte messages between two processes, %s; loadavg after the run: %s\n",
	       cpu_client < 0 ? "not pinned" : "pinned to two CPUs", load);
	if (cpu_client >= 0)
		printf("client on CPU %d, echo side on CPU %d\n", cpu_client, cpu_server);
	printf("%-44s %9s %9s %9s %8s %8s\n", "round trip (us)", "p50", "p99", "p99.9", "p50/(c)", "p99/(c)");
	const struct {
		const char *name;
		struct stats *s;
	} rows[] = {
		{ "(a) shm rings, both busy-poll", &a },
		{ "(b) shm rings, need-wakeup, spaced, idle spin", &b },
		{ "(b0) shm rings, need-wakeup, back-to-back", &b0 },
		{ "(c) AF_UNIX SOCK_SEQPACKET, back-to-back", &c },
		{ "(c') AF_UNIX SOCK_SEQPACKET, spaced", &cg },
		{ "(d) loopback HTTP/1.1 keep-alive", &d },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf("%-44s %9.2f %9.2f %9.2f %8.2f %8.2f\n", rows[i].name, rows[i].s->p50 / 1e3,
		       rows[i].s->p99 / 1e3, rows[i].s->p999 / 1e3, rows[i].s->p50 / c.p50, rows[i].s->p99 / c.p99);
	printf("(d)/(a) at p50: %.1f\n", d.p50 / a.p50);
	printf("one-way records/s, batches of 64 through a 4096-entry SQ: %.1f M (copy out), %.1f M (copy out + validate)\n",
	       ow / 1e6, owv / 1e6);
	printf("spaced: requests %d us apart, so the echo side is asleep at each arrival; (b) uses the idle\n"
	       "policy (spin %d us, then sleep) on both sides; (b0) never spins, so both sides sleep on\n"
	       "every message, as in (c)\n", GAP_US, SPIN_US);
	return 0;
fail:
	fprintf(stderr, "bench-ipc: a measurement failed\n");
	return 1;
}
