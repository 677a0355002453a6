/* gi: command-line client of gid. Dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "tools/gi/gi.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *what;
} cmds[] = {
	{ "run", cmd_run, "generate from one prompt, streaming the text" },
	{ "chat", cmd_chat, "interactive chat (reads lines from stdin, keeps history)" },
	{ "stats", cmd_stats, "print the daemon's statistics" },
	{ "bench", cmd_bench, "load-test the daemon from several client processes" },
};

static int usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: gi COMMAND [OPTIONS]   (gi COMMAND --help for its options)\n\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-6s %s\n", cmds[i].name, cmds[i].what);
	fprintf(f, "\nexit codes: 0 ok, 1 request failed, 2 usage error, 3 cannot connect to gid\n");
	return f == stdout ? GI_EXIT_OK : GI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		return usage(stdout);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "gi: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
