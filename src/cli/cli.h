/*
 * cli.h - the administrative subcommands of `tern`: user, alias, queue,
 * suppression and config, and the sendmail-compatible command. src/main.c picks the command word, strips
 * "-c FILE" wherever it stood, and calls one of these with argv[0] the word
 * after the command ("add", "list", ...) and argc counting from there (argc
 * may be 0).
 *
 * Each returns the process exit status: 0 done, 1 failed (a message
 * "tern: ..." went to stderr), 2 usage error (a usage line went to stderr).
 * config_path NULL means the built-in defaults.
 */
#ifndef TERN_CLI_H
#define TERN_CLI_H

#include <stdio.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* cli_user - user add EMAIL [--password-stdin], passwd EMAIL, del EMAIL, list. */
int cli_user(int argc, char **argv, const char *config_path);

/* cli_alias - alias add ALIAS TARGET [TARGET...], del ALIAS, list. */
int cli_alias(int argc, char **argv, const char *config_path);

/* cli_queue - queue list [--json], show ID [--json]. */
int cli_queue(int argc, char **argv, const char *config_path);

/* cli_suppression - suppression list [--domain DOMAIN], add ADDRESS [REASON...], delete ADDRESS, clear. */
int cli_suppression(int argc, char **argv, const char *config_path);

/* cli_config - config check, defaults [--markdown]. */
int cli_config(int argc, char **argv, const char *config_path);

/*
 * cli_sendmail - the sendmail-compatible command: `tern sendmail ARGS`, or
 * tern run as name "sendmail", "mailq" (-bp) or "newaliases" (-bi).
 * argv holds the words after the command name. Returns a sysexits.h
 * status, not CLI_*: callers of sendmail read those.
 */
int cli_sendmail(int argc, char **argv, const char *config_path, const char *name);

/* cli_usage_all - every subcommand's synopsis, one "  tern ..." line each, for `tern --help`. */
void cli_usage_all(FILE *out);

#endif
