/*
 * cli_util.h - private to src/cli: what the subcommands share (messages,
 * usage, options, opening the configuration and the database, checking
 * addresses typed by the operator).
 */
#ifndef TERN_CLI_UTIL_H
#define TERN_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "smtp/smtp_limits.h"
#include "store/store_admin.h"

struct smtp_path;

/* Longest address the CLI takes: a path without its angle brackets. */
#define CLI_ADDRESS_MAX (SMTP_PATH_MAX - 2)

/* cli_fail - "tern: MESSAGE" on stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_usage - the usage lines of command ("user", "queue", ...); returns CLI_USAGE. */
int cli_usage(const char *command);

/* cli_flush - flush stdout; rc, or CLI_FAIL with a message if writing failed. */
int cli_flush(int rc);

/* cli_take_flag - remove every argv[1..] equal to flag, shifting the rest; true if one was there. */
bool cli_take_flag(int *argc, char **argv, const char *flag);

/* cli_take_option - remove "option VALUE" from argv[1..]: 1 (value set), 0 (absent), -1 (after a message). */
int cli_take_option(int *argc, char **argv, const char *option, const char **value);

/* cli_unknown_option - true (after a message) if argv[1..] still holds a "--..." word. */
bool cli_unknown_option(int argc, char **argv);

/* cli_who - the user running the command, and who became them through sudo, for the record. */
void cli_who(char *out, size_t size);

/* cli_time - ms since the epoch as "2026-11-23T11:20:00Z" (UTC). */
#define CLI_TIME_MAX 32
const char *cli_time(char buf[CLI_TIME_MAX], int64_t ms);

/* cli_print_safe - s on stdout, with control bytes, DEL, and bytes of broken UTF-8 shown as \xNN. */
void cli_print_safe(const char *s);

/* cli_queue_table - every message in the queue as the table of `queue list` (and mailq); CLI_OK or CLI_FAIL. */
int cli_queue_table(const struct config *config);

/* cli_admin_open - open the database of config's data_dir, or NULL after a message. */
struct store_admin *cli_admin_open(const struct config *config);

/*
 * cli_address_copy - arg lower-cased into out, or false after a message.
 * Enough for removing an entry: what was once added must stay removable
 * after local_domains changed.
 */
bool cli_address_copy(const char *arg, char *out, size_t size);

/*
 * cli_mailbox_parse - arg as a user's address, lower-cased into out: its
 * local part becomes a directory name, so it is 1..64 of [a-z0-9._-], not
 * starting or ending with '.', without "..", and its domain is local.
 * False after a message.
 */
bool cli_mailbox_parse(const struct config *config, const char *arg, char *out, size_t size);

/*
 * cli_address_syntax - arg as a mailbox (RFC 5321 4.1.2), lower-cased into
 * out, its parts in parsed. False after a message.
 */
bool cli_address_syntax(const char *arg, char *out, size_t size, struct smtp_path *parsed);

/*
 * cli_address_parse - arg as an alias or alias target, lower-cased into
 * out: a valid RFC 5321 mailbox (dot-string local part, no quoting, no
 * address literal) in a local domain. False after a message.
 */
bool cli_address_parse(const struct config *config, const char *arg, char *out, size_t size);

#endif
