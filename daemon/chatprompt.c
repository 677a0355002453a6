/* Prompt token ids from text or a chat list (see chatprompt.h). */
#include "daemon/chatprompt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/validate.h"
#include "ipc/wire.h"

#define MAX_CHAT_ITEMS 256

void prompt_buf_free(struct prompt_buf *b)
{
	free(b->ids);
	free(b->text);
	memset(b, 0, sizeof(*b));
}

int prompt_reserve(struct prompt_buf *b, uint32_t n)
{
	if (n <= b->ids_cap)
		return 0;
	int32_t *p = realloc(b->ids, (size_t)n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	b->ids = p;
	b->ids_cap = n;
	return 0;
}

int prompt_tokenize(const struct tokenizer *tok, struct prompt_buf *b, const char *text, size_t len,
		    bool add_special, bool special)
{
	for (;;) {
		int n = tok_encode(tok, text, len, add_special, special, b->ids, b->ids_cap);
		if (n < 0 || (uint32_t)n <= b->ids_cap)
			return n;
		if (prompt_reserve(b, (uint32_t)n) < 0)
			return -ENOMEM;
	}
}

static const char *const role_names[GI_ROLE_COUNT_] = { "system", "user", "assistant" };

/* Renders MSGS into b->text; returns the length or a negative errno. */
static int render(enum chat_tmpl tmpl, struct prompt_buf *b, const struct chat_msg *msgs, size_t n,
		  const char *bos, const char *eos)
{
	int len = chat_apply(tmpl, msgs, n, true, bos, eos, b->text, b->text_cap);
	if (len >= 0 && (uint32_t)len >= b->text_cap) {
		char *t = realloc(b->text, (size_t)len + 1);
		if (!t)
			return -ENOMEM;
		b->text = t;
		b->text_cap = (uint32_t)len + 1;
		len = chat_apply(tmpl, msgs, n, true, bos, eos, b->text, b->text_cap);
	}
	return len;
}

int prompt_chat(enum chat_tmpl tmpl, const struct tokenizer *tok, struct prompt_buf *b,
		const uint8_t *list, uint32_t len, bool no_bos, char *err, size_t errlen)
{
	struct gi_chat_item items[MAX_CHAT_ITEMS];
	struct chat_msg msgs[MAX_CHAT_ITEMS];
	int n = gi_chat_parse(list, len, items, MAX_CHAT_ITEMS, err, errlen);
	if (n < 0)
		return n;
	/* The parsed contents are not NUL-terminated: copy them out, each
	 * followed by a NUL, into one buffer. */
	char *buf = malloc((size_t)len + (size_t)n);
	if (!buf)
		return -ENOMEM;
	char *p = buf;
	for (int i = 0; i < n; i++) {
		memcpy(p, list + items[i].content.off, items[i].content.len);
		msgs[i].content = p;
		msgs[i].role = role_names[items[i].role];
		p += items[i].content.len;
		*p++ = 0;
	}
	size_t bl = 0, el = 0;
	int32_t bos = tok_bos(tok), eos = tok_eos(tok);
	const char *bt = bos >= 0 ? tok_text(tok, bos, &bl) : "";
	const char *et = eos >= 0 ? tok_text(tok, eos, &el) : "";
	char bos_s[64] = "", eos_s[64] = "";
	snprintf(bos_s, sizeof(bos_s), "%.*s", (int)bl, bt);
	snprintf(eos_s, sizeof(eos_s), "%.*s", (int)el, et);
	int tl = render(tmpl, b, msgs, (size_t)n, bos_s, eos_s);
	free(buf);
	if (tl < 0) {
		snprintf(err, errlen, "chat template %s: %s", chat_tmpl_name(tmpl), strerror(-tl));
		return tl;
	}
	/* Templates that spell BOS themselves must not get a second one. */
	bool add = !no_bos && !(bos_s[0] && !strncmp(b->text, bos_s, strlen(bos_s)));
	return prompt_tokenize(tok, b, b->text, (size_t)tl, add, true);
}
