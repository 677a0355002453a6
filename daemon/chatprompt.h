/* Prompt token ids from text or from a chat list (the GI_SQE_F_CHAT arena
 * encoding, ipc/wire.h): the model's chat template is applied, the
 * assistant's turn opened, and the result tokenized with special tokens.
 * Shared by SUBMIT (engine thread) and TOKENIZE (I/O thread); each thread
 * keeps its own buffers, so nothing here is shared state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/chat.h"
#include "engine/tokenizer.h"

/* Growable work buffers of one caller; zero-initialise, free with
 * prompt_buf_free. */
struct prompt_buf {
	int32_t *ids;
	uint32_t ids_cap;
	char *text;                /* the rendered template */
	uint32_t text_cap;
};

void prompt_buf_free(struct prompt_buf *b);

/* Makes room for N ids in b->ids. 0 or -ENOMEM. */
int prompt_reserve(struct prompt_buf *b, uint32_t n);

/* Tokenizes TEXT (LEN bytes) into b->ids; returns the count or -ENOMEM. */
int prompt_tokenize(const struct tokenizer *tok, struct prompt_buf *b, const char *text, size_t len,
		    bool add_special, bool special);

/* Parses the chat list LIST (LEN bytes), renders it with template TMPL and
 * tokenizes it into b->ids (BOS first unless NO_BOS or the template spells
 * it). Returns the count, or a negative errno with the cause in ERR:
 * -EINVAL a malformed list, -E2BIG too many messages, -ENOMEM. */
int prompt_chat(enum chat_tmpl tmpl, const struct tokenizer *tok, struct prompt_buf *b,
		const uint8_t *list, uint32_t len, bool no_bos, char *err, size_t errlen);
