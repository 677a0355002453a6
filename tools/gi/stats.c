/* gi stats: the daemon's statistics, as JSON, OpenMetrics text, or (by
 * default) one "key value" line per scalar of the JSON, nested keys joined
 * with dots and list items numbered: tenants.0.uid 1000. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tools/gi/gi.h"

enum { OPT_OPENMETRICS = OPT_OWN_ };

struct flat {
	const char *p, *end;
	char key[256];
	int depth;
};

static void skip_ws(struct flat *f)
{
	while (f->p < f->end && isspace((unsigned char)*f->p))
		f->p++;
}

/* Copies the string at f->p (after its quote) to OUT, unescaped minimally. */
static int read_string(struct flat *f, char *out, size_t cap)
{
	size_t n = 0;

	f->p++;
	while (f->p < f->end && *f->p != '"') {
		if (*f->p == '\\' && f->p + 1 < f->end)
			f->p++;
		if (n + 1 < cap)
			out[n++] = *f->p;
		f->p++;
	}
	out[n] = 0;
	if (f->p >= f->end)
		return -1;
	f->p++;
	return 0;
}

static int value(struct flat *f);

static int member(struct flat *f, const char *name)
{
	size_t keep = strlen(f->key);
	int r;

	snprintf(f->key + keep, sizeof(f->key) - keep, "%s%s", keep ? "." : "", name);
	r = value(f);
	f->key[keep] = 0;
	return r;
}

static int value(struct flat *f)
{
	char buf[256];
	int i = 0;

	if (++f->depth > 32)
		return -1;
	skip_ws(f);
	if (f->p >= f->end)
		return -1;
	if (*f->p == '{' || *f->p == '[') {
		char close = *f->p == '{' ? '}' : ']';
		bool obj = close == '}';

		f->p++;
		for (;;) {
			skip_ws(f);
			if (f->p < f->end && *f->p == close) {
				f->p++;
				break;
			}
			if (obj) {
				if (f->p >= f->end || *f->p != '"' || read_string(f, buf, sizeof(buf)) < 0)
					return -1;
				skip_ws(f);
				if (f->p >= f->end || *f->p++ != ':')
					return -1;
			} else {
				snprintf(buf, sizeof(buf), "%d", i++);
			}
			if (member(f, buf) < 0)
				return -1;
			skip_ws(f);
			if (f->p < f->end && *f->p == ',')
				f->p++;
		}
	} else if (*f->p == '"') {
		if (read_string(f, buf, sizeof(buf)) < 0)
			return -1;
		printf("%s %s\n", f->key, buf);
	} else {
		const char *s = f->p;

		while (f->p < f->end && !strchr(",}] \t\r\n", *f->p))
			f->p++;
		printf("%s %.*s\n", f->key, (int)(f->p - s), s);
	}
	f->depth--;
	return 0;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: gi stats [--json | --openmetrics] [--socket PATH]\n");
	return f == stdout ? GI_EXIT_OK : GI_EXIT_USAGE;
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "openmetrics", no_argument, NULL, OPT_OPENMETRICS },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket = NULL;
	int mode = -1, opt, r;
	struct gi_conn *c;
	char *text;
	size_t len;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			return usage(stdout);
		case OPT_JSON:
			mode = GI_STATS_JSON;
			break;
		case OPT_OPENMETRICS:
			mode = GI_STATS_OPENMETRICS;
			break;
		case OPT_SOCKET:
			socket = optarg;
			break;
		default:
			return usage(stderr);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gi stats: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr);
	}
	c = cli_connect("stats", socket, 0);
	if (!c)
		return GI_EXIT_CONNECT;
	r = gi_stats(c, mode < 0 ? GI_STATS_JSON : mode, &text, &len);
	gi_conn_close(c);
	if (r < 0) {
		fprintf(stderr, "gi stats: %s\n", gi_strerror(r));
		return GI_EXIT_REQUEST;
	}
	if (mode >= 0) {
		fwrite(text, 1, len, stdout);
		if (len && text[len - 1] != '\n')
			putchar('\n');
	} else {
		struct flat f = { .p = text, .end = text + len };

		if (value(&f) < 0) {
			fprintf(stderr, "gi stats: the daemon's JSON does not parse; raw text follows\n");
			fwrite(text, 1, len, stdout);
			putchar('\n');
		}
	}
	free(text);
	return GI_EXIT_OK;
}
