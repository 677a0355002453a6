/* The scripted fake daemon of fake_gid.h. One child process; one session
 * at a time; one engine "step" per loop iteration emits at most one token
 * per running request. */
#include "tests/client/fake_gid.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc/doorbell.h"
#include "ipc/handshake.h"
#include "ipc/srv.h"
#include "ipc/validate.h"

#define FAKE_MAX_REQS 256
#define FAKE_MAX_WORDS 512
#define FAKE_MAX_STOPS 16

struct fake_req {
	bool used, cancelled;
	uint64_t user_data;
	uint32_t max_tokens;
	char *text;              /* what to echo */
	uint32_t len, pos;       /* bytes, next word start */
	uint32_t piece;          /* bytes of the current word already sent */
	uint32_t n_words, n_gen;
	char *stops[FAKE_MAX_STOPS];
	uint32_t n_stops;
};

struct fake_state {
	const struct fake_gid_cfg *cfg;
	struct gi_srv srv;
	struct fake_req reqs[FAKE_MAX_REQS];
	uint32_t tokens_posted;
};

static void req_free(struct fake_req *r)
{
	uint32_t i;

	free(r->text);
	for (i = 0; i < r->n_stops; i++)
		free(r->stops[i]);
	memset(r, 0, sizeof(*r));
}

static struct fake_req *req_find(struct fake_state *st, uint64_t user_data)
{
	int i;

	for (i = 0; i < FAKE_MAX_REQS; i++)
		if (st->reqs[i].used && st->reqs[i].user_data == user_data)
			return &st->reqs[i];
	return NULL;
}

/* Builds the echo text of a validated SUBMIT. */
static int echo_text(const struct gi_srv_req *q, const struct gi_limits *lim, struct fake_req *r)
{
	char err[128];
	char *t;
	uint32_t i, n;

	if (q->sqe.flags & GI_SQE_F_CHAT) {
		struct gi_chat_item items[64];
		int k = gi_chat_parse(q->prompt, q->prompt_len, items, 64, err, sizeof(err));

		if (k < 1)
			return -EINVAL;
		n = items[k - 1].content.len;
		t = malloc(n + 1);
		if (!t)
			return -ENOMEM;
		memcpy(t, q->prompt + items[k - 1].content.off, n);
	} else if (q->sqe.flags & GI_SQE_F_TOKENS) {
		if (gi_tokens_check(q->prompt, q->prompt_len, lim->n_vocab, err, sizeof(err)))
			return -EINVAL;
		t = malloc(q->prompt_len / 4 * 11 + 1);
		if (!t)
			return -ENOMEM;
		for (i = 0, n = 0; i < q->prompt_len / 4; i++) {
			uint32_t id;

			memcpy(&id, q->prompt + 4 * i, 4);
			n += (uint32_t)sprintf(t + n, "%u ", id);
		}
	} else {
		n = q->prompt_len;
		t = malloc(n + 1);
		if (!t)
			return -ENOMEM;
		memcpy(t, q->prompt, n);
	}
	t[n] = 0;
	r->text = t;
	r->len = n;
	return 0;
}

static int on_req(void *ctx, struct gi_srv *s, const struct gi_srv_req *q)
{
	struct fake_state *st = ctx;
	struct fake_req *r;
	int i, k, err;

	if (q->sqe.opcode == GI_OP_CANCEL) {
		struct gi_cqe e = { .user_data = q->sqe.user_data, .kind = GI_CQE_CANCEL,
				    .flags = GI_CQE_F_LAST };

		r = req_find(st, q->sqe.cancel.target);
		if (r)
			r->cancelled = true;
		e.result = r ? 0 : -ENOENT;
		return gi_srv_post(s, &e, 1) < 0 ? -EPROTO : 0;
	}
	for (i = 0; i < FAKE_MAX_REQS && st->reqs[i].used; i++)
		;
	if (i == FAKE_MAX_REQS)
		return -EBUSY;
	r = &st->reqs[i];
	err = echo_text(q, &s->limits, r);
	if (err)
		return err;
	r->used = true;
	r->user_data = q->sqe.user_data;
	r->max_tokens = q->sqe.max_tokens ? q->sqe.max_tokens : s->limits.max_tokens;
	if (q->stop_len) {
		struct gi_span spans[FAKE_MAX_STOPS];
		char err2[128];

		k = gi_stop_list_parse(q->stops, q->stop_len, &s->limits, spans, FAKE_MAX_STOPS, err2,
				       sizeof(err2));
		if (k < 0) {
			req_free(r);
			return k;
		}
		for (i = 0; i < k; i++) {
			r->stops[i] = strndup((const char *)q->stops + spans[i].off, spans[i].len);
			r->n_stops++;
		}
	}
	return 0;
}

/* Length of the word starting at POS: non-spaces then spaces. */
static uint32_t word_len(const struct fake_req *r)
{
	uint32_t e = r->pos;

	while (e < r->len && r->text[e] != ' ')
		e++;
	while (e < r->len && r->text[e] == ' ')
		e++;
	return e - r->pos;
}

static bool is_stop(const struct fake_req *r, uint32_t wl)
{
	uint32_t i, n = wl;

	while (n && r->text[r->pos + n - 1] == ' ')
		n--;
	for (i = 0; i < r->n_stops; i++)
		if (strlen(r->stops[i]) == n && !memcmp(r->stops[i], r->text + r->pos, n))
			return true;
	return false;
}

/* Posts this request's next event. Returns 1 if it ended, 0 if it goes on,
 * -1 if the CQ is full or the session failed. */
static int step_req(struct fake_state *st, struct fake_req *r)
{
	struct gi_cqe e = { .user_data = r->user_data, .flags = GI_CQE_F_MORE };
	int finish = 0;
	uint32_t wl;

	wl = r->pos < r->len ? word_len(r) : 0;
	if (r->cancelled)
		finish = GI_FINISH_CANCELLED;
	else if (r->pos >= r->len)
		finish = GI_FINISH_EOS;
	else if (r->piece == 0 && is_stop(r, wl))
		finish = GI_FINISH_STOP;
	else if (r->piece == 0 && r->max_tokens && r->n_gen >= r->max_tokens)
		finish = GI_FINISH_LENGTH;
	if (finish) {
		e.kind = GI_CQE_DONE;
		e.flags = GI_CQE_F_LAST;
		e.result = finish;
		e.done.n_prompt = r->len;
		e.done.n_gen = r->n_gen;
		e.done.queue_us = 1;
		e.done.prefill_us = 2;
		e.done.decode_us = 3;
		if (gi_srv_post(&st->srv, &e, 1) != 1)
			return -1;
		req_free(r);
		return 1;
	}
	e.kind = GI_CQE_TOKEN;
	e.token = (int32_t)r->n_gen;
	e.text_len = (uint8_t)(wl - r->piece > GI_CQE_TEXT_MAX ? GI_CQE_TEXT_MAX : wl - r->piece);
	memcpy(e.text, r->text + r->pos + r->piece, e.text_len);
	if (r->piece + e.text_len < wl)
		e.flags |= GI_CQE_F_TEXT_CONT;
	if (gi_srv_post(&st->srv, &e, 1) != 1)
		return -1;
	r->piece += e.text_len;
	if (r->piece == wl) {
		r->pos += wl;
		r->piece = 0;
		r->n_gen++;
		if (++st->tokens_posted == st->cfg->die_after_tokens) {
			gi_srv_kick(&st->srv);
			_exit(0);
		}
	}
	return 0;
}

/* Handles one control-socket message. Returns -1 when the client is gone. */
static int on_msg(struct fake_state *st, int sock)
{
	static uint8_t buf[GI_MSG_MAX];
	struct gi_msg_hdr h;
	ssize_t n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	if ((size_t)n < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (h.type == GI_MSG_STATS_REQ) {
		static const char json[] = "{\"sessions\":1,\"requests_running\":0,\"fake\":true}";
		static const char om[] = "# TYPE gid_sessions gauge\ngid_sessions 1\n# EOF\n";
		const char *t = h.flags == GI_STATS_F_JSON ? json : om;
		size_t tl = strlen(t);
		uint8_t out[256];

		gi_msg_init((struct gi_msg_hdr *)out, GI_MSG_STATS_REPLY, (uint32_t)(16 + tl), h.seq);
		memcpy(out + 16, t, tl);
		send(sock, out, 16 + tl, MSG_NOSIGNAL);
	} else if (h.type == GI_MSG_TOKENIZE_REQ && (size_t)n >= sizeof(struct gi_tokenize_req)) {
		uint32_t tl = (uint32_t)n - sizeof(struct gi_tokenize_req), i, k = 0;
		uint8_t *out = malloc(sizeof(struct gi_tokenize_reply) + 4 * (tl + 1));
		struct gi_tokenize_reply rep = { 0 };

		if (!out)
			return -1;
		if (h.flags & GI_TOKENIZE_F_ADD_BOS) {
			uint32_t bos = 1;

			memcpy(out + sizeof(rep) + 4 * k++, &bos, 4);
		}
		for (i = 0; i < tl; i++) {
			uint32_t id = buf[sizeof(struct gi_tokenize_req) + i];

			memcpy(out + sizeof(rep) + 4 * k++, &id, 4);
		}
		gi_msg_init(&rep.hdr, GI_MSG_TOKENIZE_REPLY, (uint32_t)(sizeof(rep) + 4 * k), h.seq);
		rep.n_tokens = k;
		memcpy(out, &rep, sizeof(rep));
		send(sock, out, sizeof(rep) + 4 * k, MSG_NOSIGNAL);
		free(out);
	} else if (h.type == GI_MSG_CANCEL && (size_t)n >= sizeof(struct gi_cancel_msg)) {
		struct gi_cancel_msg m;
		struct fake_req *r;

		memcpy(&m, buf, sizeof(m));
		r = req_find(st, m.user_data);
		if (r)
			r->cancelled = true;
	}
	return 0;
}

/* Serves one accepted connection until the client leaves. */
static void serve(const struct fake_gid_cfg *cfg, int sock, uint64_t session_id)
{
	struct fake_state st = { .cfg = cfg };
	struct gi_hs_policy pol = {
		.features = GI_FEAT_ALL,
		.sq_max = cfg->sq_max,
		.arena_max = cfg->arena_max,
		.limits = cfg->limits,
		.model_name = "fake-model",
	};
	struct gi_region_params params;
	struct gi_region region;
	struct gi_welcome w;
	struct gi_hello hello;
	uint8_t buf[512];
	char err[160];
	int memfd = -1, sefd = -1, cefd = -1, i;
	ssize_t n;

	if (!pol.limits.max_prompt_bytes) {
		pol.limits = (struct gi_limits){ .max_prompt_bytes = 65536, .max_tokens = 4096,
						 .max_stop_strings = 8, .max_stop_len = 64,
						 .max_inflight = 64, .n_ctx = 2048, .n_vocab = 512 };
	}
	n = recv(sock, buf, sizeof(buf), 0);
	if (n <= 0 || gi_hs_parse_hello(buf, (size_t)n, &hello, err, sizeof(err)) < 0)
		return;
	if (cfg->refuse < 0) {
		gi_hs_send_error(sock, hello.hdr.seq, cfg->refuse, "fake gid refuses by configuration");
		return;
	}
	if (gi_hs_negotiate(&hello, &pol, session_id, &params, &w, err, sizeof(err)) < 0 ||
	    gi_region_create(&params, &memfd, &region) < 0)
		return;
	sefd = gi_db_create();
	cefd = gi_db_create();
	if (sefd < 0 || cefd < 0 || gi_hs_send_welcome(sock, &w, &region, memfd, sefd, cefd) < 0 ||
	    gi_srv_init(&st.srv, &region, &pol.limits, params.start_index, sefd, cefd) < 0)
		goto out;
	if (cfg->stall_ms)
		usleep(cfg->stall_ms * 1000);
	for (;;) {
		struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = sefd, .events = POLLIN } };
		struct timespec now;
		bool busy = false;
		int r = 0;

		clock_gettime(CLOCK_MONOTONIC, &now);
		gi_srv_heartbeat(&st.srv, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);

		if (poll(p, 2, 0) > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    on_msg(&st, sock) < 0)
			break;
		if (!cfg->no_consume) {
			r = gi_srv_poll(&st.srv, 16, on_req, &st);
			if (r < 0)
				break;
		}
		for (i = 0; i < FAKE_MAX_REQS; i++) {
			if (st.reqs[i].used) {
				busy = true;
				step_req(&st, &st.reqs[i]);
			}
		}
		gi_srv_kick(&st.srv);
		if (busy || r > 0) {
			if (cfg->token_delay_us)
				usleep(cfg->token_delay_us);
			continue;
		}
		if (!cfg->no_consume && gi_srv_arm(&st.srv) != 0) {
			gi_srv_disarm(&st.srv);
			continue;
		}
		p[0].revents = p[1].revents = 0;
		poll(p, 2, 100);
		if (p[1].revents)
			gi_db_drain(sefd);
		gi_srv_disarm(&st.srv);
	}
out:
	for (i = 0; i < FAKE_MAX_REQS; i++)
		req_free(&st.reqs[i]);
	gi_srv_fini(&st.srv);
	gi_region_release(&region);
	if (memfd >= 0)
		close(memfd);
	if (sefd >= 0)
		close(sefd);
	if (cefd >= 0)
		close(cefd);
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 8) < 0) {
		int e = -errno;

		close(s);
		return e;
	}
	return s;
}

int fake_gid_restart(const struct fake_gid_cfg *cfg, struct fake_gid *g)
{
	uint64_t session_id = 1;
	int ls = listen_on(g->path);
	pid_t pid;

	if (ls < 0)
		return ls;
	pid = fork();
	if (pid < 0) {
		close(ls);
		return -errno;
	}
	if (pid == 0) {
		for (;;) {
			int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);

			if (s < 0)
				_exit(errno == EINTR ? 0 : 2);
			serve(cfg, s, session_id++);
			close(s);
		}
	}
	close(ls);
	g->pid = pid;
	return 0;
}

int fake_gid_start(const struct fake_gid_cfg *cfg, struct fake_gid *ret)
{
	struct fake_gid g = { .pid = -1 };

	snprintf(g.dir, sizeof(g.dir), "/tmp/fake-gid-XXXXXX");
	if (!mkdtemp(g.dir))
		return -errno;
	snprintf(g.path, sizeof(g.path), "%s/gid.sock", g.dir);
	int r = fake_gid_restart(cfg, &g);

	if (r < 0) {
		rmdir(g.dir);
		return r;
	}
	*ret = g;
	return 0;
}

int fake_gid_signal(struct fake_gid *g, int sig)
{
	int status = -1;

	if (g->pid <= 0)
		return -1;
	kill(g->pid, sig);
	waitpid(g->pid, &status, 0);
	g->pid = -1;
	return status;
}

void fake_gid_cleanup(struct fake_gid *g)
{
	if (g->pid > 0)
		fake_gid_signal(g, SIGKILL);
	unlink(g->path);
	rmdir(g->dir);
}
