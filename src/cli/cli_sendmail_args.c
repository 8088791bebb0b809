/*
 * cli_sendmail_args.c - the flags of `tern sendmail`, read as the
 * traditional sendmail command reads them, so that programs written for
 * /usr/sbin/sendmail (PHP's mail(), cron, mailx, git send-email) can call
 * tern as they are.
 *
 * Flags tern acts on: -t, -i/-oi, -f/-r, -F, -C/-c, -B, -N, -R, -V and the
 * modes -bm, -bs, -bp, -bi. Flags that make no sense for tern (it queues
 * and delivers at once, it has no aliases file or syslog label) are taken
 * and ignored, with their values: -v -U -G -m -n, -h N, -L X, -X FILE,
 * -O OPTION, and every -oXX but -oi. Anything else is a usage error, as
 * are the modes tern does not have (-bd, -bv, -bt, ...): a caller is told
 * rather than given a wrong result.
 *
 * Pure: argv in, options out (pointing into argv); no I/O.
 */
#include "cli/cli_sendmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util_str.h"

/* A flag without a value: what it sets, if anything. */
static bool args_switch(char flag, struct sendmail_options *o)
{
	switch (flag) {
	case 't':
		o->extract = true;
		return true;
	case 'i':
		o->ignore_dots = true;
		return true;
	case 'v': /* verbose */
	case 'U': /* initial user submission */
	case 'G': /* gateway submission */
	case 'm': /* send to me too */
	case 'n': /* no aliasing */
		return true;
	default:
		return false;
	}
}

static bool args_mode(const char *v, struct sendmail_options *o, char *err, size_t errlen)
{
	static const struct {
		const char *word;
		enum sendmail_mode mode;
	} modes[] = {{"m", SENDMAIL_MAIL}, {"s", SENDMAIL_SMTP}, {"p", SENDMAIL_QUEUE}, {"i", SENDMAIL_ALIASES}};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (strcmp(v, modes[i].word) == 0) {
			o->mode = modes[i].mode;
			return true;
		}
	return str_fail(err, errlen, "-b%s is not supported (tern has -bm, -bs, -bp and -bi)", v);
}

static bool args_body(const char *v, struct sendmail_options *o, char *err, size_t errlen)
{
	if (str_ieq(v, strlen(v), "8BITMIME"))
		o->eight_bit = true;
	else if (str_ieq(v, strlen(v), "7BIT"))
		o->eight_bit = false;
	else
		return str_fail(err, errlen, "-B takes 8BITMIME or 7BIT, not \"%s\"", v);
	return true;
}

static bool args_dsn(char flag, const char *v, struct sendmail_options *o, char *err, size_t errlen)
{
	bool hdrs;
	if (flag == 'N' && smtp_dsn_notify(v, strlen(v), &o->notify))
		return true;
	if (flag == 'N')
		return str_fail(err, errlen, "-N takes never, or success, failure and delay joined by commas");
	if (flag == 'R' && smtp_dsn_ret(v, strlen(v), &hdrs)) {
		o->ret = hdrs ? "HDRS" : "FULL";
		return true;
	}
	if (flag == 'R')
		return str_fail(err, errlen, "-R takes full or hdrs");
	if (sendmail_args_xtext(v, o->envid, sizeof o->envid) && o->envid[0])
		return true;
	return str_fail(err, errlen, "-V takes an envelope id of at most %d characters", SMTP_ENVID_MAX);
}

/* args_value - a flag with its value; false (with err set) if the flag is unknown or the value bad. */
static bool args_value(char flag, const char *v, struct sendmail_options *o, char *err, size_t errlen)
{
	switch (flag) {
	case 'b':
		return args_mode(v, o, err, errlen);
	case 'B':
		return args_body(v, o, err, errlen);
	case 'f':
	case 'r':
		o->sender = v;
		return true;
	case 'F':
		o->full_name = v;
		return true;
	case 'C':
	case 'c':
		o->config = v;
		return true;
	case 'o':
		o->ignore_dots |= strcmp(v, "i") == 0;
		return true;
	case 'N':
	case 'R':
	case 'V':
		return args_dsn(flag, v, o, err, errlen);
	default: /* h, L, O, X: taken, not used */
		return true;
	}
}

static bool takes_value(char flag)
{
	return flag != '\0' && strchr("bBfrFCcoNRVhLOX", flag) != NULL;
}

/* args_flags - one word of flags at argv[*i]; may take the next word as a value. */
static bool args_flags(int argc, char **argv, int *i, struct sendmail_options *o, char *err, size_t errlen)
{
	const char *word = argv[*i];
	for (size_t j = 1; word[j]; j++) {
		char flag = word[j];
		if (args_switch(flag, o))
			continue;
		if (!takes_value(flag))
			return str_fail(err, errlen, "unknown flag -%c", flag);
		const char *v = word + j + 1;
		if (*v == '\0') {
			if (*i + 1 >= argc)
				return str_fail(err, errlen, "-%c needs a value", flag);
			v = argv[++*i];
		}
		return args_value(flag, v, o, err, errlen);
	}
	return true;
}

bool sendmail_args_parse(int argc, char **argv, struct sendmail_options *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	o->rcpts = xcalloc((size_t)argc + 1, sizeof *o->rcpts);
	err[0] = '\0';
	bool flags = true;
	for (int i = 0; i < argc; i++) {
		const char *word = argv[i];
		if (flags && strcmp(word, "--") == 0)
			flags = false;
		else if (flags && word[0] == '-' && word[1] != '\0') {
			if (!args_flags(argc, argv, &i, o, err, errlen))
				return false;
		} else
			o->rcpts[o->rcpt_count++] = argv[i];
	}
	return true;
}

void sendmail_args_free(struct sendmail_options *o)
{
	free(o->rcpts);
	o->rcpts = NULL;
	o->rcpt_count = 0;
}

bool sendmail_args_xtext(const char *s, char *out, size_t size)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = *p >= '!' && *p <= '~' && *p != '+' && *p != '=';
		if (n + (plain ? 1 : 3) >= size)
			return false;
		if (plain)
			out[n++] = (char)*p;
		else
			n += (size_t)snprintf(out + n, size - n, "+%02X", *p);
	}
	out[n] = '\0';
	return true;
}
