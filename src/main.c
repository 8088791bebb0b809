/*
 * main.c - the `tern` command: pick the subcommand, in the style of git.
 *
 * "-c FILE" (or "--config FILE") may stand anywhere after "tern"; it is
 * taken out before the subcommand sees its arguments. Without it, tern runs
 * on the built-in development defaults.
 *
 * Run under the name sendmail, mailq or newaliases (a link to tern, as
 * `make install` makes them), tern is the sendmail-compatible command, with
 * sendmail's flags (its own -C FILE, or -c FILE, for the configuration).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_serve.h"

#define TERN_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out, "usage: tern [-c FILE] COMMAND [ARGS]\n\n");
	cli_usage_all(out);
	fprintf(out, "  tern version\n");
}

/* take_config_option - remove "-c FILE" from argv; NULL if absent, "" on a dangling -c. */
static const char *take_config_option(int *argc, char **argv)
{
	const char *path = NULL;
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			path = i + 1 < *argc ? argv[++i] : "";
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return path;
}

/* sendmail_name - the name tern was run under, if it is one the sendmail command answers to; else NULL. */
static const char *sendmail_name(const char *argv0)
{
	static const char *const names[] = {"sendmail", "mailq", "newaliases"};
	const char *slash = strrchr(argv0, '/');
	const char *base = slash ? slash + 1 : argv0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(base, names[i]) == 0)
			return names[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *as = argc > 0 ? sendmail_name(argv[0]) : NULL;
	if (as)
		return cli_sendmail(argc - 1, argv + 1, NULL, as);
	const char *config_path = take_config_option(&argc, argv);
	if (config_path && !config_path[0]) {
		fprintf(stderr, "tern: -c needs a file name\n");
		return 2;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *command = argv[1];
	int sub_argc = argc - 2;
	char **sub_argv = argv + 2;
	if (strcmp(command, "serve") == 0)
		return sub_argc == 0 ? cli_serve(config_path) : (usage(stderr), 2);
	if (strcmp(command, "user") == 0)
		return cli_user(sub_argc, sub_argv, config_path);
	if (strcmp(command, "alias") == 0)
		return cli_alias(sub_argc, sub_argv, config_path);
	if (strcmp(command, "queue") == 0)
		return cli_queue(sub_argc, sub_argv, config_path);
	if (strcmp(command, "suppression") == 0)
		return cli_suppression(sub_argc, sub_argv, config_path);
	if (strcmp(command, "config") == 0)
		return cli_config(sub_argc, sub_argv, config_path);
	if (strcmp(command, "sendmail") == 0)
		return cli_sendmail(sub_argc, sub_argv, config_path, "sendmail");
	if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0) {
		printf("tern %s\n", TERN_VERSION);
		return 0;
	}
	fprintf(stderr, "tern: unknown command '%s'\n", command);
	usage(stderr);
	return 2;
}
