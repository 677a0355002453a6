/* Chat formatting without Jinja: the template family is guessed from
 * substrings of tokenizer.chat_template in llama.cpp's order
 * (llm_chat_detect_template) and each family is written out in C exactly as
 * llama.cpp's llm_chat_apply_template does, except that the BOS/EOS texts
 * come from the caller instead of being spelled "<s>" / "</s>". */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "engine/chat.h"

static const char *const names[CHAT_TMPL_COUNT_] = {
	[CHAT_CHATML] = "chatml",
	[CHAT_LLAMA2] = "llama2",
	[CHAT_LLAMA3] = "llama3",
	[CHAT_MISTRAL] = "mistral",
	[CHAT_ZEPHYR] = "zephyr",
	[CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
	[CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
	[CHAT_MISTRAL_V1] = "mistral-v1",
	[CHAT_MISTRAL_V3] = "mistral-v3",
	[CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
	[CHAT_MISTRAL_V7] = "mistral-v7",
	[CHAT_PHI3] = "phi3",
	[CHAT_GEMMA] = "gemma",
};

const char *chat_tmpl_name(enum chat_tmpl t)
{
	return (unsigned)t < CHAT_TMPL_COUNT_ ? names[t] : "unknown";
}

static int from_name(const char *name, size_t len, enum chat_tmpl *ret)
{
	for (int i = 0; i < CHAT_TMPL_COUNT_; i++) {
		if (strlen(names[i]) == len && !memcmp(names[i], name, len)) {
			*ret = (enum chat_tmpl)i;
			return 0;
		}
	}
	if (len == 10 && !memcmp(name, "llama2-sys", 10)) {
		*ret = CHAT_LLAMA2;
		return 0;
	}
	return -EINVAL;
}

struct src {
	const char *p;
	size_t n;
};

static bool has(struct src s, const char *needle)
{
	return memmem(s.p, s.n, needle, strlen(needle)) != NULL;
}

/* -1 for the families we recognise but do not format. */
static int detect(struct src s)
{
	enum chat_tmpl t;

	if (from_name(s.p, s.n, &t) == 0)
		return t;
	if (has(s, "<|im_start|>"))
		return has(s, "<|im_sep|>") || has(s, "<end_of_utterance>") ? -1 : CHAT_CHATML;
	if ((s.n >= 7 && !memcmp(s.p, "mistral", 7)) || has(s, "[INST]")) {
		if (has(s, "[SYSTEM_PROMPT]"))
			return CHAT_MISTRAL_V7;
		if (has(s, "' [INST] ' + system_message") || has(s, "[AVAILABLE_TOOLS]")) {
			if (has(s, " [INST]"))
				return CHAT_MISTRAL_V1;
			return has(s, "\"[INST]\"") ? CHAT_MISTRAL_V3_TEKKEN : CHAT_MISTRAL_V3;
		}
		if (has(s, "content.strip()"))
			return CHAT_LLAMA2_SYS_STRIP;
		if (has(s, "bos_token + '[INST]"))
			return CHAT_LLAMA2_SYS_BOS;
		return has(s, "<<SYS>>") ? CHAT_LLAMA2 : CHAT_MISTRAL;
	}
	if (has(s, "<|assistant|>") && has(s, "<|end|>"))
		return CHAT_PHI3;
	if (has(s, "[gMASK]"))
		return -1;
	/* llama.cpp sends "<|user|>" + "<|assistant|>" without <|endoftext|>
	 * to falcon3/glmedge; the zephyr format is what those templates mean. */
	if (has(s, "<|user|>"))
		return CHAT_ZEPHYR;
	if (has(s, "<start_of_turn>"))
		return CHAT_GEMMA;
	if (has(s, "<|start_header_id|>") && has(s, "<|end_header_id|>"))
		return CHAT_LLAMA3;
	return -1;
}

enum chat_tmpl chat_detect(const char *src, size_t len, bool *ret_known)
{
	int t = src ? detect((struct src){ src, len }) : -1;

	if (ret_known)
		*ret_known = t >= 0;
	return t >= 0 ? (enum chat_tmpl)t : CHAT_CHATML;
}

/* ---- formatting ------------------------------------------------------------ */

struct out {
	char *buf;
	size_t cap, n;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n < o->cap) {
		size_t room = o->cap - o->n;
		memcpy(o->buf + o->n, s, n < room ? n : room);
	}
	o->n += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static void put_trim(struct out *o, const char *s)
{
	size_t b = 0, e = strlen(s);

	while (b < e && is_space(s[b]))
		b++;
	while (e > b && is_space(s[e - 1]))
		e--;
	put(o, s + b, e - b);
}

static bool trims_empty(const char *s)
{
	for (; *s; s++)
		if (!is_space(*s))
			return false;
	return true;
}

enum role { SYSTEM, USER, ASSISTANT };

static enum role role_of(const struct chat_msg *m)
{
	return !strcmp(m->role, "system") ? SYSTEM : !strcmp(m->role, "user") ? USER : ASSISTANT;
}

static void fmt_mistral(struct out *o, enum chat_tmpl t, const struct chat_msg *m, size_t n,
			const char *eos)
{
	const char *lead = t == CHAT_MISTRAL_V1 ? " " : "";
	const char *trail = t == CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
	bool inside = false;

	for (size_t i = 0; i < n; i++) {
		if (!inside) {
			puts_(o, lead);
			puts_(o, "[INST]");
			puts_(o, trail);
			inside = true;
		}
		switch (role_of(&m[i])) {
		case SYSTEM:
			puts_(o, m[i].content);
			puts_(o, "\n\n");
			break;
		case USER:
			puts_(o, m[i].content);
			puts_(o, lead);
			puts_(o, "[/INST]");
			break;
		case ASSISTANT:
			puts_(o, trail);
			if (t == CHAT_MISTRAL_V3)
				put_trim(o, m[i].content);
			else
				puts_(o, m[i].content);
			puts_(o, eos);
			inside = false;
			break;
		}
	}
}

static void fmt_llama2(struct out *o, enum chat_tmpl t, const struct chat_msg *m, size_t n,
		       const char *bos, const char *eos)
{
	bool inside = true; /* the caller's BOS opens the first turn */

	puts_(o, "[INST] ");
	for (size_t i = 0; i < n; i++) {
		if (!inside) {
			inside = true;
			if (t == CHAT_LLAMA2_SYS_BOS)
				puts_(o, bos);
			puts_(o, "[INST] ");
		}
		enum role r = role_of(&m[i]);
		if (r == SYSTEM)
			puts_(o, t == CHAT_MISTRAL ? "" : "<<SYS>>\n");
		if (t == CHAT_LLAMA2_SYS_STRIP)
			put_trim(o, m[i].content);
		else
			puts_(o, m[i].content);
		if (r == SYSTEM) {
			/* Without system support it still goes first, unwrapped. */
			puts_(o, t == CHAT_MISTRAL ? "\n" : "\n<</SYS>>\n\n");
		} else if (r == USER) {
			puts_(o, " [/INST]");
		} else {
			puts_(o, eos);
			inside = false;
		}
	}
}

static void fmt_gemma(struct out *o, const struct chat_msg *m, size_t n, bool add_assistant)
{
	size_t sys_from = 0; /* system messages from here on are not written yet */
	bool sys_pending = false;

	for (size_t i = 0; i < n; i++) {
		enum role r = role_of(&m[i]);
		if (r == SYSTEM) {
			/* Gemma has no system turn: it goes into the next user turn. */
			sys_pending |= !trims_empty(m[i].content);
			continue;
		}
		puts_(o, "<start_of_turn>");
		puts_(o, r == ASSISTANT ? "model" : "user");
		puts_(o, "\n");
		if (sys_pending && r == USER) {
			for (size_t j = sys_from; j < i; j++)
				if (role_of(&m[j]) == SYSTEM)
					put_trim(o, m[j].content);
			puts_(o, "\n\n");
			sys_pending = false;
			sys_from = i;
		}
		put_trim(o, m[i].content);
		puts_(o, "<end_of_turn>\n");
	}
	if (add_assistant)
		puts_(o, "<start_of_turn>model\n");
}

int chat_apply(enum chat_tmpl t, const struct chat_msg *msgs, size_t n, bool add_assistant,
	       const char *bos, const char *eos, char *buf, size_t cap)
{
	struct out o = { buf, buf && cap ? cap - 1 : 0, 0 };

	if ((unsigned)t >= CHAT_TMPL_COUNT_ || (!msgs && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!msgs[i].role || !msgs[i].content)
			return -EINVAL;
		if (strcmp(msgs[i].role, "system") && strcmp(msgs[i].role, "user") &&
		    strcmp(msgs[i].role, "assistant"))
			return -EINVAL;
	}
	if (!bos)
		bos = "<s>";
	if (!eos)
		eos = t == CHAT_ZEPHYR ? "<|endoftext|>" : "</s>";

	switch (t) {
	case CHAT_CHATML:
		for (size_t i = 0; i < n; i++) {
			puts_(&o, "<|im_start|>");
			puts_(&o, msgs[i].role);
			puts_(&o, "\n");
			puts_(&o, msgs[i].content);
			puts_(&o, "<|im_end|>\n");
		}
		if (add_assistant)
			puts_(&o, "<|im_start|>assistant\n");
		break;
	case CHAT_LLAMA2:
	case CHAT_MISTRAL:
	case CHAT_LLAMA2_SYS_BOS:
	case CHAT_LLAMA2_SYS_STRIP:
		fmt_llama2(&o, t, msgs, n, bos, eos);
		break;
	case CHAT_MISTRAL_V1:
	case CHAT_MISTRAL_V3:
	case CHAT_MISTRAL_V3_TEKKEN:
		fmt_mistral(&o, t, msgs, n, eos);
		break;
	case CHAT_MISTRAL_V7:
		for (size_t i = 0; i < n; i++) {
			enum role r = role_of(&msgs[i]);
			puts_(&o, r == SYSTEM ? "[SYSTEM_PROMPT] " : r == USER ? "[INST] " : " ");
			puts_(&o, msgs[i].content);
			puts_(&o, r == SYSTEM ? "[/SYSTEM_PROMPT]" : r == USER ? "[/INST]" : eos);
		}
		break;
	case CHAT_LLAMA3:
		for (size_t i = 0; i < n; i++) {
			puts_(&o, "<|start_header_id|>");
			puts_(&o, msgs[i].role);
			puts_(&o, "<|end_header_id|>\n\n");
			put_trim(&o, msgs[i].content);
			puts_(&o, "<|eot_id|>");
		}
		if (add_assistant)
			puts_(&o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
		break;
	case CHAT_ZEPHYR:
	case CHAT_PHI3:
		for (size_t i = 0; i < n; i++) {
			puts_(&o, "<|");
			puts_(&o, msgs[i].role);
			puts_(&o, "|>\n");
			puts_(&o, msgs[i].content);
			puts_(&o, t == CHAT_PHI3 ? "<|end|>" : eos);
			puts_(&o, "\n");
		}
		if (add_assistant)
			puts_(&o, "<|assistant|>\n");
		break;
	case CHAT_GEMMA:
		fmt_gemma(&o, msgs, n, add_assistant);
		break;
	case CHAT_TMPL_COUNT_:
		return -EINVAL;
	}
	if (buf && cap)
		buf[o.n < o.cap ? o.n : o.cap] = '\0';
	return o.n > INT32_MAX ? -EOVERFLOW : (int)o.n;
}
