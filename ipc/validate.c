/* Validation of SQEs and arena blobs copied out of a session's memory. */
#include "ipc/validate.h"
#include "common/errmsg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))


/* ---- opcode table ---- */

typedef int (*op_check_fn)(const struct gi_sqe *sqe, const struct gi_limits *lim, uint32_t arena_size,
			   char *err, size_t errlen);

struct op_desc {
	const char *name;
	uint16_t flags;          /* flag bits valid for the opcode */
	op_check_fn check;
};

/* Fields after user_data that an opcode does not use must be zero, so
 * meaning can be assigned to them later. */
static int tail_zero(const struct gi_sqe *sqe, size_t from, const char *op, char *err, size_t errlen)
{
	const uint8_t *b = (const uint8_t *)sqe;
	for (size_t i = from; i < sizeof(*sqe); i++)
		if (b[i])
			return errmsg(err, errlen, -EINVAL, "sqe %s: byte %zu must be 0, is 0x%02x", op, i, b[i]);
	return 0;
}

/* NOP and CANCEL: only opcode, flags, user_data and the 8-byte argument. */
static int check_no_args(const struct gi_sqe *sqe, const struct gi_limits *lim, uint32_t arena_size,
			 char *err, size_t errlen)
{
	const char *op = gi_op_name(sqe->opcode);
	if (sqe->priority || sqe->max_tokens)
		return errmsg(err, errlen, -EINVAL, "sqe %s: priority %u / max_tokens %u must be 0", op,
			    sqe->priority, sqe->max_tokens);
	return tail_zero(sqe, offsetof(struct gi_sqe, stop_len), op, err, errlen);
}

static int check_float(float v, float lo, float hi, const char *name, char *err, size_t errlen)
{
	if (!isfinite(v) || v < lo || v > hi)
		return errmsg(err, errlen, -EINVAL, "sqe submit: %s %g outside [%g, %g]", name, (double)v,
			    (double)lo, (double)hi);
	return 0;
}

static int check_submit(const struct gi_sqe *sqe, const struct gi_limits *lim, uint32_t arena_size,
			char *err, size_t errlen)
{
	int r;
	if (sqe->priority >= GI_PRIO_COUNT_)
		return errmsg(err, errlen, -EINVAL, "sqe submit: priority %u unknown", sqe->priority);
	if ((sqe->flags & GI_SQE_F_TOKENS) && (sqe->flags & GI_SQE_F_CHAT))
		return errmsg(err, errlen, -EINVAL, "sqe submit: flags 0x%x: TOKENS and CHAT exclusive", sqe->flags);
	if (sqe->reserved)
		return errmsg(err, errlen, -EINVAL, "sqe submit: reserved 0x%x must be 0", sqe->reserved);
	if (lim->max_tokens && sqe->max_tokens > lim->max_tokens)
		return errmsg(err, errlen, -E2BIG, "sqe submit: max_tokens %u above limit %u", sqe->max_tokens,
			    lim->max_tokens);
	if ((r = check_float(sqe->temperature, 0.0f, 100.0f, "temperature", err, errlen)) ||
	    (r = check_float(sqe->top_p, 0.0f, 1.0f, "top_p", err, errlen)) ||
	    (r = check_float(sqe->min_p, 0.0f, 1.0f, "min_p", err, errlen)) ||
	    (r = check_float(sqe->repeat_penalty, 0.0f, 10.0f, "repeat_penalty", err, errlen)) ||
	    (r = check_float(sqe->frequency_penalty, -2.0f, 2.0f, "frequency_penalty", err, errlen)) ||
	    (r = check_float(sqe->presence_penalty, -2.0f, 2.0f, "presence_penalty", err, errlen)))
		return r;
	if (lim->n_vocab && sqe->top_k > lim->n_vocab)
		return errmsg(err, errlen, -EINVAL, "sqe submit: top_k %u above n_vocab %u", sqe->top_k,
			    lim->n_vocab);
	/* Arena reference, in 64-bit arithmetic and without off + len. */
	uint32_t off = sqe->req.arena_off, plen = sqe->req.prompt_len;
	if (plen == 0)
		return errmsg(err, errlen, -EINVAL, "sqe submit: prompt_len 0");
	if (lim->max_prompt_bytes && plen > lim->max_prompt_bytes)
		return errmsg(err, errlen, -E2BIG, "sqe submit: prompt_len %u above limit %u", plen,
			    lim->max_prompt_bytes);
	if ((sqe->flags & GI_SQE_F_TOKENS) && (plen % 4))
		return errmsg(err, errlen, -EINVAL, "sqe submit: prompt_len %u not a multiple of 4 for tokens",
			    plen);
	if (off % 4)
		return errmsg(err, errlen, -EINVAL, "sqe submit: arena_off %u not 4-aligned", off);
	uint64_t stop_cap = (uint64_t)lim->max_stop_strings * (2u + (uint64_t)lim->max_stop_len);
	if (sqe->stop_len > stop_cap)
		return errmsg(err, errlen, -E2BIG, "sqe submit: stop_len %u above limit %llu", sqe->stop_len,
			    (unsigned long long)stop_cap);
	uint64_t blob = (((uint64_t)plen + 3) & ~3ull) + sqe->stop_len;
	if (blob > arena_size || off > arena_size - blob)
		return errmsg(err, errlen, -EINVAL, "sqe submit: arena_off %u + %llu bytes past arena of %u", off,
			    (unsigned long long)blob, arena_size);
	return 0;
}

static const struct op_desc op_table[] = {
	[GI_OP_NOP] = { "nop", 0, check_no_args },
	[GI_OP_SUBMIT] = { "submit", GI_SQE_F_SUBMIT_ALL, check_submit },
	[GI_OP_CANCEL] = { "cancel", GI_SQE_F_CANCEL_ALL, check_no_args },
};
_Static_assert(ARRAY_SIZE(op_table) == GI_OP_COUNT_, "op_table covers every opcode");

const char *gi_op_name(unsigned op)
{
	return op < ARRAY_SIZE(op_table) ? op_table[op].name : NULL;
}

int gi_sqe_validate(const struct gi_sqe *sqe, const struct gi_limits *lim, uint32_t arena_size,
		    char *err, size_t errlen)
{
	if (sqe->opcode >= ARRAY_SIZE(op_table) || !op_table[sqe->opcode].check)
		return errmsg(err, errlen, -EINVAL, "sqe: opcode %u unknown", sqe->opcode);
	const struct op_desc *d = &op_table[sqe->opcode];
	if (sqe->flags & ~d->flags)
		return errmsg(err, errlen, -EINVAL, "sqe %s: flags 0x%x has unknown bits 0x%x", d->name,
			    sqe->flags, sqe->flags & ~d->flags);
	return d->check(sqe, lim, arena_size, err, errlen);
}

uint32_t gi_sqe_stop_off(const struct gi_sqe *sqe)
{
	return (sqe->req.prompt_len + 3u) & ~3u;
}

uint32_t gi_sqe_blob_len(const struct gi_sqe *sqe)
{
	return gi_sqe_stop_off(sqe) + sqe->stop_len;
}

/* ---- blob contents ---- */

bool gi_utf8_valid(const uint8_t *s, uint32_t len)
{
	uint32_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		uint32_t n;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (uint32_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
		if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

int gi_stop_list_parse(const uint8_t *buf, uint32_t len, const struct gi_limits *lim,
		       struct gi_span *spans, uint32_t max, char *err, size_t errlen)
{
	uint32_t pos = 0, n = 0;
	while (pos < len) {
		if (len - pos < 2)
			return errmsg(err, errlen, -EINVAL, "stop list: entry %u header truncated at byte %u", n, pos);
		uint16_t sl;
		memcpy(&sl, buf + pos, 2);
		pos += 2;
		if (sl == 0 || sl > lim->max_stop_len)
			return errmsg(err, errlen, -EINVAL, "stop list: entry %u length %u outside [1, %u]", n, sl,
				    lim->max_stop_len);
		if (sl > len - pos)
			return errmsg(err, errlen, -EINVAL, "stop list: entry %u length %u past end (%u left)", n,
				    sl, len - pos);
		if (n >= lim->max_stop_strings || n >= max)
			return errmsg(err, errlen, -E2BIG, "stop list: more than %u entries",
				    lim->max_stop_strings < max ? lim->max_stop_strings : max);
		if (!gi_utf8_valid(buf + pos, sl))
			return errmsg(err, errlen, -EINVAL, "stop list: entry %u is not valid UTF-8", n);
		spans[n++] = (struct gi_span){ .off = pos, .len = sl };
		pos += sl;
	}
	return (int)n;
}

int gi_chat_parse(const uint8_t *buf, uint32_t len, struct gi_chat_item *items, uint32_t max,
		  char *err, size_t errlen)
{
	uint32_t pos = 0, n = 0;
	while (pos < len) {
		struct gi_chat_entry_hdr h;
		if (len - pos < sizeof(h))
			return errmsg(err, errlen, -EINVAL, "chat: message %u header truncated at byte %u", n, pos);
		memcpy(&h, buf + pos, sizeof(h));
		pos += sizeof(h);
		if (h.role >= GI_ROLE_COUNT_)
			return errmsg(err, errlen, -EINVAL, "chat: message %u role %u unknown", n, h.role);
		if (h.len > len - pos)
			return errmsg(err, errlen, -EINVAL, "chat: message %u length %u past end (%u left)", n, h.len,
				    len - pos);
		if (n >= max)
			return errmsg(err, errlen, -E2BIG, "chat: more than %u messages", max);
		if (!gi_utf8_valid(buf + pos, h.len))
			return errmsg(err, errlen, -EINVAL, "chat: message %u content is not valid UTF-8", n);
		items[n++] = (struct gi_chat_item){ .role = h.role, .content = { .off = pos, .len = h.len } };
		pos += h.len;
		uint32_t pad = (4u - (h.len & 3u)) & 3u;
		if (pad > len - pos)
			return errmsg(err, errlen, -EINVAL, "chat: message %u padding past end", n - 1);
		for (uint32_t k = 0; k < pad; k++)
			if (buf[pos + k])
				return errmsg(err, errlen, -EINVAL, "chat: message %u padding byte not 0", n - 1);
		pos += pad;
	}
	if (n == 0)
		return errmsg(err, errlen, -EINVAL, "chat: no messages");
	return (int)n;
}

int gi_tokens_check(const uint8_t *buf, uint32_t len, uint32_t n_vocab, char *err, size_t errlen)
{
	if (len == 0 || len % 4)
		return errmsg(err, errlen, -EINVAL, "tokens: length %u not a non-zero multiple of 4", len);
	for (uint32_t i = 0; n_vocab && i < len / 4; i++) {
		uint32_t id;
		memcpy(&id, buf + 4 * (size_t)i, 4);
		if (id >= n_vocab)
			return errmsg(err, errlen, -EINVAL, "tokens: id %u at %u not below n_vocab %u", id, i, n_vocab);
	}
	return 0;
}
