/* UTF-8 decoding and validation for the tokenizers and the streaming
 * detokenizer. Two flavours on purpose: the lenient decoder reproduces
 * llama.cpp's (so token ids match it byte for byte), the strict validator
 * decides what may be shown to a client. */
#include "engine/tok_impl.h"

size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cpt)
{
	uint8_t b = s[0];

	if (!(b & 0x80)) {
		*cpt = b;
		return 1;
	}
	if (!(b & 0x40))
		goto invalid;
	if (!(b & 0x20)) {
		if (n < 2 || (s[1] & 0xc0) != 0x80)
			goto invalid;
		*cpt = ((uint32_t)(b & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if (!(b & 0x10)) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			goto invalid;
		*cpt = ((uint32_t)(b & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		return 3;
	}
	if (!(b & 0x08)) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			goto invalid;
		*cpt = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		       ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		return 4;
	}
invalid:
	*cpt = 0xfffd;
	return 1;
}

size_t tok_utf8_encode(uint32_t cpt, char *out)
{
	uint8_t *o = (uint8_t *)out;

	if (cpt <= 0x7f) {
		o[0] = (uint8_t)cpt;
		return 1;
	}
	if (cpt <= 0x7ff) {
		o[0] = (uint8_t)(0xc0 | (cpt >> 6));
		o[1] = (uint8_t)(0x80 | (cpt & 0x3f));
		return 2;
	}
	if (cpt <= 0xffff) {
		o[0] = (uint8_t)(0xe0 | (cpt >> 12));
		o[1] = (uint8_t)(0x80 | ((cpt >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cpt & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | ((cpt >> 18) & 0x07));
	o[1] = (uint8_t)(0x80 | ((cpt >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cpt >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cpt & 0x3f));
	return 4;
}

/* Strict check of the sequence at S: its length if complete and valid (no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if invalid.
 * *INCOMPLETE is set when the N bytes are a valid start cut short. */
static size_t strict_seq(const uint8_t *s, size_t n, bool *incomplete)
{
	uint8_t b = s[0];
	size_t len;
	uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

	*incomplete = false;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if (i >= n) {
			*incomplete = true;
			return 0;
		}
		uint8_t c = s[i];
		if (i == 1 ? (c < lo || c > hi) : (c & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n, bool *ret_incomplete)
{
	size_t i = 0;
	bool incomplete = false;

	while (i < n) {
		size_t l = strict_seq(s + i, n - i, &incomplete);
		if (!l)
			break;
		i += l;
	}
	*ret_incomplete = incomplete;
	return i;
}

size_t tok_utf8_sanitize(const char *text, size_t len, char *out)
{
	const uint8_t *s = (const uint8_t *)text;
	size_t i = 0, o = 0;

	while (i < len) {
		uint32_t cpt;
		size_t l = tok_utf8_decode(s + i, len - i, &cpt);
		/* PCRE2 rejects surrogates; llama.cpp would keep their bytes. */
		if ((cpt >= 0xd800 && cpt <= 0xdfff) || cpt > 0x10ffff)
			cpt = 0xfffd;
		o += tok_utf8_encode(cpt, out + o);
		i += l;
	}
	return o;
}
