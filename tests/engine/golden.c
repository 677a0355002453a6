/* Minimal reader for the golden JSON list (see golden.h): finds each case's
 * keys by name and parses their values. */
#include "tests/engine/golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/t_util.h"

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static unsigned hex4(const char *p)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the JSON string at P (after the opening quote) into OUT. */
static const char *parse_string(const char *p, char *out, size_t cap)
{
	size_t n = 0;
	while (*p && *p != '"' && n + 5 < cap) {
		if (*p != '\\') {
			out[n++] = *p++;
			continue;
		}
		p++;
		char c = *p++;
		if (c == 'u') {
			unsigned cp = hex4(p);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(p + 2) - 0xdc00);
				p += 6;
			}
			n += put_utf8(out + n, cp);
		} else {
			out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
		}
	}
	out[n] = 0;
	return *p == '"' ? p + 1 : p;
}

static const char *find_key(const char *p, const char *end, const char *key)
{
	char pat[64];
	size_t n = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (; p + n <= end; p++)
		if (!memcmp(p, pat, n))
			return skip_ws(p + n);
	return NULL;
}

static uint32_t parse_ids(const char *p, int32_t *ids, uint32_t cap)
{
	uint32_t n = 0;
	if (!p || *p != '[')
		return 0;
	p++;
	while (n < cap) {
		p = skip_ws(p);
		if (*p == ']')
			break;
		char *e;
		ids[n++] = (int32_t)strtol(p, &e, 10);
		p = skip_ws(e);
		if (*p == ',')
			p++;
	}
	return n;
}

int t_golden_load(const char *path, struct t_golden_case *cases, int cap)
{
	size_t len;
	char *buf = t_read_file(path, &len);
	if (!buf)
		return -1;
	int n = 0;
	const char *p = buf, *end = buf + len;
	while (n < cap && (p = strchr(p, '{'))) {
		/* a case ends at its last key */
		const char *obj_end = strstr(p, "\"stop_type\"");
		obj_end = obj_end ? obj_end : end;
		struct t_golden_case *c = &cases[n];
		memset(c, 0, sizeof(*c));
		const char *v = find_key(p, obj_end, "prompt");
		if (!v || *v != '"')
			break;
		parse_string(v + 1, c->prompt, sizeof(c->prompt));
		c->n_prompt = parse_ids(find_key(p, obj_end, "prompt_ids"), c->prompt_ids,
					T_GOLDEN_MAX_IDS);
		c->n_output = parse_ids(find_key(p, obj_end, "output_ids"), c->output_ids,
					T_GOLDEN_MAX_IDS);
		v = find_key(p, obj_end, "first_top5");
		if (v && *v == '[') {
			v++;
			while (c->n_top < 5 && (v = strchr(v, '[')) && v < obj_end) {
				char *e;
				c->top_id[c->n_top] = (int32_t)strtol(v + 1, &e, 10);
				e = (char *)skip_ws(e);
				c->top_prob[c->n_top++] = strtod(e + 1, &e);
				v = e;
			}
		}
		n++;
		p = obj_end + 1;
	}
	free(buf);
	return n;
}
