/* Growing arrays: `p = grow_array(v, &cap, n + 1, sizeof(*p), 16)` instead
 * of a hand-written doubling realloc at every push. Header-only; shared by
 * every layer, depends on none. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Returns V (an array of *CAP elements of ELEM bytes, or NULL with *CAP 0)
 * with room for at least NEED elements: V itself when it is allocated and
 * has room, else V reallocated to a capacity that doubles from MIN until it
 * holds NEED, and *CAP set to it (so the result is never NULL on success,
 * even for NEED 0). NULL if the size overflows or memory runs out; V then
 * stays valid and *CAP unchanged. */
__attribute__((unused, warn_unused_result))
static void *grow_array(void *v, size_t *cap, size_t need, size_t elem, size_t min)
{
	size_t c = *cap ? *cap : (min ? min : 1);
	void *n;

	if (v && need <= *cap)
		return v;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return NULL;
		c *= 2;
	}
	if (elem && c > SIZE_MAX / elem)
		return NULL;
	n = realloc(v, c * elem);
	if (!n)
		return NULL;
	*cap = c;
	return n;
}
