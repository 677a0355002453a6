/* Chat templates, detected from tokenizer.chat_template. We do not run Jinja:
 * we recognise the common families and format them in C. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum chat_tmpl {
	CHAT_CHATML,
	CHAT_LLAMA2,            /* [INST] with <<SYS>> (llama.cpp "llama2-sys") */
	CHAT_LLAMA3,
	CHAT_MISTRAL,           /* [INST] without system support (llama.cpp "llama2") */
	CHAT_ZEPHYR,
	CHAT_LLAMA2_SYS_BOS,    /* <<SYS>>, "<s>[INST]" between turns */
	CHAT_LLAMA2_SYS_STRIP,  /* <<SYS>>, contents trimmed */
	CHAT_MISTRAL_V1,        /* mistralai's " [INST] " templates */
	CHAT_MISTRAL_V3,        /* "[INST] ...[/INST]" with [AVAILABLE_TOOLS] */
	CHAT_MISTRAL_V3_TEKKEN, /* the same without the spaces */
	CHAT_MISTRAL_V7,        /* [SYSTEM_PROMPT] */
	CHAT_PHI3,
	CHAT_GEMMA,
	CHAT_TMPL_COUNT_,
};

struct chat_msg {
	const char *role;    /* "system", "user", "assistant" */
	const char *content;
};

/* Family of template SRC (LEN bytes; NULL when the model has none). Sets
 * *RET_KNOWN to false when it fell back to chatml. */
enum chat_tmpl chat_detect(const char *src, size_t len, bool *ret_known);
const char *chat_tmpl_name(enum chat_tmpl t);

/* Formats N messages as the model expects; ADD_ASSISTANT appends the opening
 * of the assistant's turn. BOS/EOS are the model's token texts (used by
 * templates that spell them, e.g. llama2's "<s>[INST]"; NULL: what llama.cpp
 * spells, "<s>" and "</s>", zephyr's "<|endoftext|>").
 * Like snprintf, writes at most CAP bytes including the terminating NUL and
 * returns the full length without it, or -EINVAL for an unknown role (only
 * "system", "user" and "assistant" exist). */
int chat_apply(enum chat_tmpl t, const struct chat_msg *msgs, size_t n, bool add_assistant,
	       const char *bos, const char *eos, char *out, size_t cap);
