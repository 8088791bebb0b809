/*
 * cli_sendmail.h - private to src/cli: the sendmail-compatible command's
 * flags, read without any I/O so that they can be tested alone
 * (cli_sendmail_args.c); the command itself is cli_sendmail (cli.h).
 */
#ifndef TERN_CLI_SENDMAIL_H
#define TERN_CLI_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_dsn.h"

enum sendmail_mode {
	SENDMAIL_MAIL,    /* -bm (the default): read a message, submit it */
	SENDMAIL_SMTP,    /* -bs: SMTP on standard input and output */
	SENDMAIL_QUEUE,   /* -bp, mailq: list the queue */
	SENDMAIL_ALIASES, /* -bi, newaliases: nothing to rebuild */
};

struct sendmail_options {
	enum sendmail_mode mode;
	bool extract;                   /* -t: recipients from the header too */
	bool ignore_dots;               /* -i, -oi: a "." line does not end the input */
	bool eight_bit;                 /* -B 8BITMIME */
	const char *sender;             /* -f, -r: the envelope sender as given, or NULL */
	const char *full_name;          /* -F */
	const char *config;             /* -C, -c: the configuration file, or NULL */
	unsigned notify;                /* -N: SMTP_NOTIFY_* bits, 0 when not given */
	const char *ret;                /* -R: "FULL" or "HDRS" as given, or NULL */
	char envid[SMTP_ENVID_MAX + 1]; /* -V: as xtext (RFC 3461 4), "" when not given */
	char **rcpts;                   /* the arguments that are not flags (pointers into argv) */
	size_t rcpt_count;
};

/*
 * sendmail_args_parse - argv[0..argc) (the words after the command name)
 * into o, as sendmail reads them: flags may be grouped ("-ti") and take
 * their value glued or as the next word ("-fuser@x", "-f user@x"); flags
 * and recipients may come in any order; "--" ends the flags. False with a
 * message in err for an unknown flag, a missing or bad value, or a mode
 * tern does not have (usage: exit EX_USAGE). Free o with
 * sendmail_args_free, whatever the result.
 */
bool sendmail_args_parse(int argc, char **argv, struct sendmail_options *o, char *err, size_t errlen);

void sendmail_args_free(struct sendmail_options *o);

/* sendmail_args_xtext - s as xtext (RFC 3461 4: "+XX" for "+", "=" and bytes outside "!".."~"); false if it does not
 * fit. */
bool sendmail_args_xtext(const char *s, char *out, size_t size);

#endif
