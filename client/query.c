/* Synchronous control-socket queries (tokenize, stats) and error names. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "client/conn.h"

#define QUERY_TIMEOUT_MS 5000

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the reply of TYPE to the message with SEQ. Returns its length
 * (the message is in c->msgbuf) or a negative code. A session ERROR or a
 * hang-up ends the connection; other messages are stale and dropped. */
static int await_reply(struct gi_conn *c, uint16_t type, uint32_t seq, size_t min_len)
{
	int64_t deadline = now_ms() + QUERY_TIMEOUT_MS;

	for (;;) {
		struct pollfd p = { .fd = c->s.sock, .events = POLLIN };
		int64_t left = deadline - now_ms();
		struct gi_msg_hdr h;
		ssize_t n;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = recv(c->s.sock, c->msgbuf, GI_MSG_MAX, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			gi_conn_set_dead(c, -ECONNRESET);
			return -ECONNRESET;
		}
		if ((size_t)n < sizeof(h))
			continue;
		memcpy(&h, c->msgbuf, sizeof(h));
		if (h.magic != GI_MSG_MAGIC)
			continue;
		if (h.type == GI_MSG_ERROR) {
			struct gi_error_msg e = { 0 };

			memcpy(&e, c->msgbuf, (size_t)n < sizeof(e) ? (size_t)n : sizeof(e));
			e.reason[sizeof(e.reason) - 1] = 0;
			gi_clog(c, GI_LOG_ERROR, "daemon ended the session: %s (%d)", e.reason, e.error);
			gi_conn_set_dead(c, gi_map_daemon_error(e.error < 0 ? e.error : -EIO));
			return c->dead_err;
		}
		if (h.type != type || h.seq != seq)
			continue;
		if (h.len != (size_t)n || (size_t)n < min_len) {
			gi_clog(c, GI_LOG_ERROR, "daemon reply type %u: header says %u bytes, got %zd",
				type, h.len, n);
			return -GI_ERR_PROTOCOL;
		}
		return (int)n;
	}
}

/* Sends a TOKENIZE request for PAYLOAD (LEN bytes, already checked) with
 * wire flags WFLAGS and reads the reply into IDS (CAP). FN names the caller. */
static int tokenize_req(struct gi_conn *c, const char *fn, const void *payload, size_t len,
			uint16_t wflags, uint32_t *ids, size_t cap)
{
	struct gi_tokenize_req q;
	struct gi_tokenize_reply rep;
	uint8_t *msg;
	uint32_t seq;
	int n, r;

	if (len > GI_MSG_MAX - sizeof(q)) {
		gi_clog(c, GI_LOG_ERROR, "%s: %zu bytes of text, over the %zu-byte message limit", fn,
			len, GI_MSG_MAX - sizeof(q));
		return -E2BIG;
	}
	if (c->dead)
		return c->dead_err;
	seq = c->ctl_seq++;
	memset(&q, 0, sizeof(q));
	gi_msg_init(&q.hdr, GI_MSG_TOKENIZE_REQ, (uint32_t)(sizeof(q) + len), seq);
	q.hdr.flags = wflags;
	q.text_len = (uint32_t)len;
	msg = malloc(sizeof(q) + len);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, &q, sizeof(q));
	if (len)
		memcpy(msg + sizeof(q), payload, len);
	r = gi_conn_send(c, msg, sizeof(q) + len);
	free(msg);
	if (r < 0)
		return r;
	n = await_reply(c, GI_MSG_TOKENIZE_REPLY, seq, sizeof(rep));
	if (n < 0)
		return n;
	memcpy(&rep, c->msgbuf, sizeof(rep));
	if (rep.result < 0) {
		gi_clog(c, GI_LOG_ERROR, "%s: daemon says %s", fn, strerror(-rep.result));
		return gi_map_daemon_error(rep.result);
	}
	if ((size_t)n != sizeof(rep) + (size_t)rep.n_tokens * 4) {
		gi_clog(c, GI_LOG_ERROR, "tokenize reply: %u tokens do not fill %d bytes", rep.n_tokens, n);
		return -GI_ERR_PROTOCOL;
	}
	if (cap)
		memcpy(ids, c->msgbuf + sizeof(rep), 4 * (cap < rep.n_tokens ? cap : rep.n_tokens));
	return (int)rep.n_tokens;
}

int gi_tokenize(struct gi_conn *c, const char *text, size_t len, uint32_t flags, uint32_t *ids,
		size_t cap)
{
	if (!c || (!text && len) || (!ids && cap))
		return -EINVAL;
	if (flags & ~(GI_TOKENIZE_ADD_BOS | GI_TOKENIZE_SPECIAL)) {
		gi_clog(c, GI_LOG_ERROR, "gi_tokenize: flags 0x%x has unknown bits", flags);
		return -EINVAL;
	}
	return tokenize_req(c, "gi_tokenize", text, len,
			    (uint16_t)((flags & GI_TOKENIZE_ADD_BOS ? GI_TOKENIZE_F_ADD_BOS : 0) |
				       (flags & GI_TOKENIZE_SPECIAL ? GI_TOKENIZE_F_SPECIAL : 0)),
			    ids, cap);
}

int gi_tokenize_chat(struct gi_conn *c, const struct gi_chat_msg *msgs, size_t n_msgs, uint32_t flags,
		     uint32_t *ids, size_t cap)
{
	uint32_t len;
	uint8_t *list;
	int r;

	if (!c || (!ids && cap))
		return -EINVAL;
	if (flags & ~GI_TOKENIZE_ADD_BOS) {
		gi_clog(c, GI_LOG_ERROR, "gi_tokenize_chat: flags 0x%x (only GI_TOKENIZE_ADD_BOS is allowed)",
			flags);
		return -EINVAL;
	}
	r = gi_chat_list_len(c, "gi_tokenize_chat", msgs, n_msgs, &len);
	if (r < 0)
		return r;
	if (len > GI_MSG_MAX - sizeof(struct gi_tokenize_req)) {
		gi_clog(c, GI_LOG_ERROR, "gi_tokenize_chat: %u bytes of messages, over the %zu-byte message limit",
			len, GI_MSG_MAX - sizeof(struct gi_tokenize_req));
		return -E2BIG;
	}
	list = malloc(len);
	if (!list)
		return -ENOMEM;
	gi_chat_list_write(list, msgs, n_msgs);
	r = tokenize_req(c, "gi_tokenize_chat", list, len,
			 (uint16_t)(GI_TOKENIZE_F_CHAT | (flags & GI_TOKENIZE_ADD_BOS ? GI_TOKENIZE_F_ADD_BOS : 0)),
			 ids, cap);
	free(list);
	return r;
}

int gi_stats(struct gi_conn *c, int format, char **ret_text, size_t *ret_len)
{
	struct gi_stats_req q;
	uint32_t seq;
	size_t len;
	char *text;
	int n, r;

	if (!c || !ret_text)
		return -EINVAL;
	if (format != GI_STATS_JSON && format != GI_STATS_OPENMETRICS) {
		gi_clog(c, GI_LOG_ERROR, "gi_stats: format %d is not a gi_stats_format", format);
		return -EINVAL;
	}
	if (c->dead)
		return c->dead_err;
	seq = c->ctl_seq++;
	memset(&q, 0, sizeof(q));
	gi_msg_init(&q.hdr, GI_MSG_STATS_REQ, sizeof(q), seq);
	q.hdr.flags = format == GI_STATS_JSON ? GI_STATS_F_JSON : GI_STATS_F_OPENMETRICS;
	r = gi_conn_send(c, &q, sizeof(q));
	if (r < 0)
		return r;
	n = await_reply(c, GI_MSG_STATS_REPLY, seq, sizeof(struct gi_msg_hdr));
	if (n < 0)
		return n;
	len = (size_t)n - sizeof(struct gi_msg_hdr);
	text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, c->msgbuf + sizeof(struct gi_msg_hdr), len);
	text[len] = 0;
	*ret_text = text;
	if (ret_len)
		*ret_len = len;
	return 0;
}

const char *gi_strerror(int code)
{
	static const char *const own[] = {
		[GI_ERR_PROTOCOL - GI_ERR_BASE] = "gid broke the wire protocol",
		[GI_ERR_VERSION - GI_ERR_BASE] = "gid speaks another protocol version",
		[GI_ERR_SHUTDOWN - GI_ERR_BASE] = "gid is shutting down",
	};

	if (code == INT_MIN)
		return "unknown error"; /* -INT_MIN does not exist */
	if (code < 0)
		code = -code;
	if (code == 0)
		return "success";
	if (code >= GI_ERR_BASE && code < GI_ERR_MAX_)
		return own[code - GI_ERR_BASE];
	if (code == ECONNRESET)
		return "connection to gid lost (the daemon went away)";
	if (code < GI_ERR_BASE)
		return strerrordesc_np(code) ?: "unknown error";
	return "unknown error";
}
