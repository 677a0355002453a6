/* Chat templates: detection from real tokenizer.chat_template strings (as
 * published on the model cards) and formatting compared with what llama.cpp's
 * llama_chat_apply_template writes for the same conversation (the expected
 * strings of its test-chat-template). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/gguf.h"
#include "tests/t_util.h"

static const struct chat_msg conv[] = {
	{ "system", "You are a helpful assistant" },
	{ "user", "Hello" },
	{ "assistant", "Hi there" },
	{ "user", "Who are you" },
	{ "assistant", "   I am an assistant   " },
	{ "user", "Another question" },
};
#define N_CONV (sizeof(conv) / sizeof(conv[0]))

static const struct {
	const char *name;     /* model card the template comes from */
	const char *tmpl;     /* its tokenizer.chat_template */
	enum chat_tmpl want;
	const char *expected; /* llama.cpp's output, add_assistant = true */
} cases[] = {
	{ "teknium/OpenHermes-2.5-Mistral-7B",
	  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
	  CHAT_CHATML,
	  "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n" },
	{ "mistralai/Mistral-7B-Instruct-v0.2 (old, no system prompt)",
	  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
	  CHAT_MISTRAL,
	  "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]" },
	{ "TheBloke/Llama-2-7B-Chat-GGML prompt format (<<SYS>>)",
	  "[INST] <<SYS>>\n{{ system_message }}\n<</SYS>>\n\n{{ prompt }} [/INST]",
	  CHAT_LLAMA2,
	  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]" },
	{ "TheBloke/FusionNet_34Bx2_MoE-AWQ",
	  "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == 'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif %}\n{% endfor %}",
	  CHAT_LLAMA2_SYS_BOS,
	  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]" },
	{ "meta-llama/Llama-2-7b-chat-hf",
	  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
	  CHAT_LLAMA2_SYS_STRIP,
	  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]" },
	{ "meta-llama/Meta-Llama-3-8B-Instruct",
	  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
	  CHAT_LLAMA3,
	  "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
	{ "HuggingFaceH4/zephyr-7b-beta",
	  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
	  CHAT_ZEPHYR,
	  "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n<|assistant|>\n" },
	{ "microsoft/Phi-3-small",
	  "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
	  CHAT_PHI3,
	  "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n" },
	{ "google/gemma-7b-it",
	  "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
	  CHAT_GEMMA,
	  "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n" },
	{ "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template, excerpt)",
	  "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- endif %}\n{%- endfor %}\n",
	  CHAT_MISTRAL_V1,
	  " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]    I am an assistant   </s> [INST] Another question [/INST]" },
	{ "mistralai/Mistral-Large-Instruct-2407 ('v3' template, excerpt)",
	  "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- \"[AVAILABLE_TOOLS] [\" }}\n        {%- endif %}\n        {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n    {%- endif %}\n{%- endfor %}\n",
	  CHAT_MISTRAL_V3,
	  "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who are you[/INST] I am an assistant</s>[INST] Another question[/INST]" },
	{ "mistralai/Mistral-Nemo-Instruct-2407 ('v3-tekken' template, excerpt)",
	  "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- \"[AVAILABLE_TOOLS][\" }}\n        {%- endif %}\n        {{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- message[\"content\"] + eos_token}}\n    {%- endif %}\n{%- endfor %}\n",
	  CHAT_MISTRAL_V3_TEKKEN,
	  "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an assistant   </s>[INST]Another question[/INST]" },
	{ "mistralai/Mistral-Large-Instruct-2411 ('v7' template)",
	  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}{% endfor %}",
	  CHAT_MISTRAL_V7,
	  "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST]    I am an assistant   </s>[INST] Another question[/INST]" },
};
#define N_CASES (int)(sizeof(cases) / sizeof(cases[0]))

START_TEST(detect_and_format)
{
	bool known = false;
	enum chat_tmpl t = chat_detect(cases[_i].tmpl, strlen(cases[_i].tmpl), &known);
	ck_assert_msg(known && t == cases[_i].want, "%s: detected %s (known %d), want %s",
		      cases[_i].name, chat_tmpl_name(t), known, chat_tmpl_name(cases[_i].want));

	const char *eos = t == CHAT_ZEPHYR ? "<|endoftext|>" : "</s>";
	char out[2048];
	int n = chat_apply(t, conv, N_CONV, true, "<s>", eos, out, sizeof(out));
	ck_assert_msg(n == (int)strlen(cases[_i].expected) && !strcmp(out, cases[_i].expected),
		      "%s:\n got: '%s'\nwant: '%s'", cases[_i].name, out, cases[_i].expected);

	/* without the assistant opening: the same minus a suffix only
	 * templates that have one add it */
	char no_ass[2048];
	int m = chat_apply(t, conv, N_CONV, false, "<s>", eos, no_ass, sizeof(no_ass));
	ck_assert_int_ge(m, 0);
	ck_assert_int_le(m, n);
	ck_assert(!memcmp(out, no_ass, (size_t)m));

	/* snprintf contract: truncated but NUL-terminated, full length returned */
	char small[8];
	ck_assert_int_eq(chat_apply(t, conv, N_CONV, true, "<s>", eos, small, sizeof(small)), n);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert(!memcmp(small, out, sizeof(small) - 1));
	ck_assert_int_eq(chat_apply(t, conv, N_CONV, true, "<s>", eos, NULL, 0), n);
}
END_TEST

START_TEST(add_assistant_suffix)
{
	static const struct {
		enum chat_tmpl t;
		const char *suffix;
	} s[] = {
		{ CHAT_CHATML, "<|im_start|>assistant\n" },
		{ CHAT_LLAMA3, "<|start_header_id|>assistant<|end_header_id|>\n\n" },
		{ CHAT_ZEPHYR, "<|assistant|>\n" },
		{ CHAT_PHI3, "<|assistant|>\n" },
		{ CHAT_GEMMA, "<start_of_turn>model\n" },
		{ CHAT_MISTRAL, "" },
		{ CHAT_LLAMA2, "" },
	};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		char a[2048], b[2048];
		int n = chat_apply(s[i].t, conv, N_CONV, true, NULL, NULL, a, sizeof(a));
		int m = chat_apply(s[i].t, conv, N_CONV, false, NULL, NULL, b, sizeof(b));
		ck_assert_int_eq(n - m, (int)strlen(s[i].suffix));
		ck_assert_str_eq(a + m, s[i].suffix);
	}
}
END_TEST

/* The phi-3 vocab file carries Phi-3-mini's real template. */
START_TEST(detect_from_gguf)
{
	struct gguf *g;
	struct gguf_str tmpl;
	char err[256];
	bool known;
	ck_assert_int_eq(gguf_open(t_shared("models/vocab/ggml-vocab-phi-3.gguf"), &g, err,
				   sizeof(err)), 0);
	ck_assert_int_eq(gguf_get_str(g, "tokenizer.chat_template", &tmpl, err, sizeof(err)), 0);
	ck_assert_int_eq(chat_detect(tmpl.ptr, tmpl.len, &known), CHAT_PHI3);
	ck_assert(known);
	gguf_close(g);
}
END_TEST

START_TEST(unknown_falls_back)
{
	bool known = true;
	static const char vicuna[] =
		"{%- for message in messages %}{%- if message['role'] == 'system' -%}{{- '' + message['content'] + '\n\n' -}}{%- else -%}{%- if message['role'] == 'user' -%}{{-'USER: ' + message['content'] + '\n'-}}{%- else -%}{{-'ASSISTANT: ' + message['content'] + '</s>\n' -}}{%- endif -%}{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}{{-'ASSISTANT:'-}}{%- endif -%}";
	static const char phi4[] =
		"{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}";

	ck_assert_int_eq(chat_detect(vicuna, strlen(vicuna), &known), CHAT_CHATML);
	ck_assert(!known);
	known = true;
	ck_assert_int_eq(chat_detect(phi4, strlen(phi4), &known), CHAT_CHATML);
	ck_assert(!known);
	known = true;
	ck_assert_int_eq(chat_detect(NULL, 0, &known), CHAT_CHATML);
	ck_assert(!known);
	/* a template that is just a name */
	ck_assert_int_eq(chat_detect("llama3", 6, &known), CHAT_LLAMA3);
	ck_assert(known);
}
END_TEST

START_TEST(names_and_errors)
{
	bool known;
	/* a template that is just a name (as llama.cpp accepts) names its format */
	for (int i = 0; i < CHAT_TMPL_COUNT_; i++) {
		const char *name = chat_tmpl_name((enum chat_tmpl)i);

		ck_assert_int_eq(chat_detect(name, strlen(name), &known), i);
		ck_assert_msg(known, "%s", name);
	}
	ck_assert_int_eq(chat_detect("llama2-sys", 10, &known), CHAT_LLAMA2);
	ck_assert(known);
	ck_assert_int_eq(chat_detect("jinja", 5, &known), CHAT_CHATML);
	ck_assert(!known);
	ck_assert_str_eq(chat_tmpl_name(CHAT_TMPL_COUNT_), "unknown");

	const struct chat_msg bad[] = { { "user", "hi" }, { "tool", "x" } };
	char out[64];
	ck_assert_int_eq(chat_apply(CHAT_CHATML, bad, 2, true, NULL, NULL, out, sizeof(out)), -EINVAL);
	const struct chat_msg null_content[] = { { "user", NULL } };
	ck_assert_int_eq(chat_apply(CHAT_CHATML, null_content, 1, true, NULL, NULL, out, sizeof(out)),
			 -EINVAL);
	ck_assert_int_eq(chat_apply(CHAT_TMPL_COUNT_, conv, 1, true, NULL, NULL, out, sizeof(out)),
			 -EINVAL);
	/* no messages: just the assistant opening */
	ck_assert_int_eq(chat_apply(CHAT_CHATML, NULL, 0, true, NULL, NULL, out, sizeof(out)), 22);
	ck_assert_str_eq(out, "<|im_start|>assistant\n");
}
END_TEST

Suite *t_suite(void)
{
	Suite *s = suite_create("chat");
	TCase *tc = tcase_create("templates");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, detect_and_format, 0, N_CASES);
	tcase_add_test(tc, add_assistant_suffix);
	tcase_add_test(tc, detect_from_gguf);
	tcase_add_test(tc, unknown_falls_back);
	tcase_add_test(tc, names_and_errors);
	suite_add_tcase(s, tc);
	return s;
}
