/*
 * cli_util.c - what the administrative subcommands share: messages in the
 * "tern: ..." form, the usage table, option words, opening the
 * configuration and the database, and the checks on addresses an operator
 * types.
 *
 * Addresses are lower-cased here once, so the database only ever holds
 * lower-case keys (the server lower-cases before it looks up). A user's
 * local part becomes a directory name under DATA_DIR/mail/DOMAIN/, which
 * is why its alphabet is narrower than RFC 5321 allows.
 */
#include "cli/cli_util.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "smtp/smtp_address.h"
#include "util/util_str.h"

/* Every subcommand's usage; the first word names the command it belongs to. */
static const struct {
	const char *command;
	const char *line;
} cli_usages[] = {
        {"serve", "serve [-c FILE]"},
        {"config", "config check [-c FILE]"},
        {"config", "config defaults [--markdown]"},
        {"user", "[-c FILE] user add EMAIL [--password-stdin [--scram] [--cram-md5]]"},
        {"user", "[-c FILE] user passwd EMAIL [--scram] [--cram-md5]"},
        {"user", "[-c FILE] user senders EMAIL [ADDRESS|@DOMAIN ...]"},
        {"user", "[-c FILE] user del EMAIL"},
        {"user", "[-c FILE] user list"},
        {"alias", "[-c FILE] alias add ALIAS TARGET [TARGET...]"},
        {"alias", "[-c FILE] alias del ALIAS"},
        {"alias", "[-c FILE] alias list"},
        {"queue", "[-c FILE] queue list [--json] [--state STATE] [--domain DOMAIN] [--older-than AGE] "
                  "[--newer-than AGE]"},
        {"queue", "[-c FILE] queue show ID [--json]"},
        {"queue", "[-c FILE] queue flush [ID|DOMAIN]"},
        {"queue", "[-c FILE] queue retry|hold|release|delete ID"},
        {"suppression", "[-c FILE] suppression list [--domain DOMAIN]"},
        {"suppression", "[-c FILE] suppression add ADDRESS [REASON...]"},
        {"suppression", "[-c FILE] suppression delete ADDRESS"},
        {"suppression", "[-c FILE] suppression clear"},
        {"sendmail", "[-c FILE] sendmail [-t] [-i] [-f SENDER] [-F NAME] [-bm|-bs|-bp|-bi] [RECIPIENT...] (also as "
                     "sendmail, mailq, newaliases)"},
};

#define CLI_USAGE_COUNT (sizeof cli_usages / sizeof cli_usages[0])

int cli_fail(const char *fmt, ...)
{
	fputs("tern: ", stderr);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_FAIL;
}

int cli_usage(const char *command)
{
	const char *lead = "usage:";
	for (size_t i = 0; i < CLI_USAGE_COUNT; i++) {
		if (strcmp(cli_usages[i].command, command) != 0)
			continue;
		fprintf(stderr, "%s tern %s\n", lead, cli_usages[i].line);
		lead = "      ";
	}
	return CLI_USAGE;
}

void cli_usage_all(FILE *out)
{
	for (size_t i = 0; i < CLI_USAGE_COUNT; i++)
		fprintf(out, "  tern %s\n", cli_usages[i].line);
}

int cli_flush(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_fail("cannot write to standard output: %s", strerror(errno));
	return rc;
}

bool cli_take_flag(int *argc, char **argv, const char *flag)
{
	bool seen = false;
	int kept = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], flag) == 0)
			seen = true;
		else
			argv[kept++] = argv[i];
	}
	if (*argc > 0)
		*argc = kept;
	return seen;
}

int cli_take_option(int *argc, char **argv, const char *option, const char **value)
{
	int found = 0;
	int kept = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], option) != 0) {
			argv[kept++] = argv[i];
			continue;
		}
		if (i + 1 >= *argc || found) {
			cli_fail(found ? "%s given twice" : "%s needs a value", option);
			return -1;
		}
		*value = argv[++i];
		found = 1;
	}
	if (*argc > 0)
		*argc = kept;
	return found;
}

bool cli_unknown_option(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--", 2) == 0) {
			cli_fail("unknown option %s", argv[i]);
			return true;
		}
	return false;
}

void cli_who(char *out, size_t size)
{
	struct passwd *pw = getpwuid(getuid());
	char name[64];
	if (pw)
		str_copy(name, sizeof name, pw->pw_name);
	else
		str_format(name, sizeof name, "uid %u", (unsigned)getuid());
	const char *sudo = getuid() == 0 ? getenv("SUDO_USER") : NULL;
	if (sudo && *sudo)
		str_format(out, size, "%s (sudo from %.64s)", name, sudo);
	else
		str_copy(out, size, name);
}

const char *cli_time(char buf[CLI_TIME_MAX], int64_t ms)
{
	time_t when = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&when, &tm) || !str_format(buf, CLI_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	                                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec))
		str_copy(buf, CLI_TIME_MAX, "?");
	return buf;
}

void cli_print_safe(const char *s)
{
	bool utf8 = smtp_utf8_valid(s, strlen(s));
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

struct store_admin *cli_admin_open(const struct config *config)
{
	char err[512];
	struct store_admin *admin = store_admin_open(config->data_dir, err, sizeof err);
	if (!admin)
		cli_fail("%s", err);
	return admin;
}

/* ---- Addresses ---- */

/* cli_local_domain - domain is local, or false after naming the local ones. */
static bool cli_local_domain(const struct config *config, const char *address, const char *domain)
{
	if (config_is_local_domain(config, domain, strlen(domain)))
		return true;
	fprintf(stderr, "tern: %s: %s is not a local domain (local_domains:", address, domain);
	for (size_t i = 0; i < config->local_domain_count; i++)
		fprintf(stderr, "%s %s", i ? "," : "", config->local_domains[i]);
	fputs(")\n", stderr);
	return false;
}

/* cli_mailbox_local_ok - local[0..len) may name a mailbox directory. */
static bool cli_mailbox_local_ok(const char *local, size_t len)
{
	if (len == 0 || len > SMTP_LOCAL_PART_MAX || local[0] == '.' || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = local[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok || (c == '.' && i + 1 < len && local[i + 1] == '.'))
			return false;
	}
	return true;
}

bool cli_address_copy(const char *arg, char *out, size_t size)
{
	if (strlen(arg) > CLI_ADDRESS_MAX || !str_copy(out, size, arg)) {
		cli_fail("%.40s...: address too long (at most %d characters)", arg, CLI_ADDRESS_MAX);
		return false;
	}
	str_lower(out);
	return true;
}

bool cli_mailbox_parse(const struct config *config, const char *arg, char *out, size_t size)
{
	if (!cli_address_copy(arg, out, size))
		return false;
	const char *at = strchr(out, '@');
	if (!at || at == out || at[1] == '\0') {
		cli_fail("%s: not an address (want local@domain)", out);
		return false;
	}
	if (!cli_mailbox_local_ok(out, (size_t)(at - out))) {
		cli_fail("%s: a user name may hold only a-z, 0-9, '.', '_' and '-' (1 to %d of them, "
		         "no '.' first, last or twice in a row)",
		         out, SMTP_LOCAL_PART_MAX);
		return false;
	}
	return cli_local_domain(config, out, at + 1);
}

bool cli_address_syntax(const char *arg, char *out, size_t size, struct smtp_path *parsed)
{
	char path[SMTP_PATH_MAX + 1];
	if (!cli_address_copy(arg, out, size) || !str_format(path, sizeof path, "<%s>", out))
		return false;
	size_t used = 0, len = strlen(path);
	bool too_long = false;
	const char *why = NULL;
	if (!smtp_path_parse(path, len, SMTP_PATH_FORWARD, parsed, &used, &too_long, &why) || used != len ||
	    parsed->is_bare_postmaster || parsed->has_source_route || parsed->domain_len == 0) {
		cli_fail("%s: not a valid address (%s)", out, why ? why : "want local@domain");
		return false;
	}
	return true;
}

bool cli_address_parse(const struct config *config, const char *arg, char *out, size_t size)
{
	struct smtp_path parsed;
	if (!cli_address_syntax(arg, out, size, &parsed))
		return false;
	if (parsed.local_quoted || parsed.domain_literal) {
		cli_fail("%s: quoted local parts and address literals are not supported here", out);
		return false;
	}
	return cli_local_domain(config, out, smtp_path_domain(&parsed));
}
