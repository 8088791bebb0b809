/*
 * cli_config.c - `tern config check|defaults`: validate a configuration
 * file, or list every parameter with its default.
 *
 * Both come from the one parameter table in src/config: check runs the same
 * loader as `tern serve` (which prints every problem as FILE:LINE: PARAM:
 * message), and defaults prints the table as a commented configuration
 * file or, with --markdown, as docs/CONFIG.md.
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/cli_util.h"

static int config_check(const char *config_path)
{
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	printf("%s: ok\n", config_path ? config_path : "(defaults)");
	config_unref(config);
	return cli_flush(CLI_OK);
}

int cli_config(int argc, char **argv, const char *config_path)
{
	bool markdown = cli_take_flag(&argc, argv, "--markdown");
	if (cli_unknown_option(argc, argv) || argc != 1)
		return cli_usage("config");
	if (strcmp(argv[0], "check") == 0 && !markdown)
		return config_check(config_path);
	if (strcmp(argv[0], "defaults") == 0) {
		config_print_defaults(stdout, markdown);
		return cli_flush(CLI_OK);
	}
	return cli_usage("config");
}
