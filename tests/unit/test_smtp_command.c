/*
 * test_smtp_command.c - the command line parser (smtp/smtp_command.c).
 *
 * One table row per line a client might send: the status, the verb, the
 * argument and, for MAIL and RCPT, the address and the parameter count.
 * Every input is parsed from a heap copy of exactly its length, so reading
 * past it is an ASan error.
 */
#include <stdlib.h>

#include "smtp/smtp_command.h"
#include "unit.h"

#define OK      SMTP_PARSE_OK
#define UNKNOWN SMTP_PARSE_UNKNOWN_VERB
#define SYNTAX  SMTP_PARSE_SYNTAX
#define BADADDR SMTP_PARSE_BAD_ADDRESS
#define TOOLONG SMTP_PARSE_TOO_LONG

struct command_case {
	const char *line;
	enum smtp_parse_status status;
	enum smtp_verb verb;
	const char *arg;  /* on OK; NULL: not checked */
	const char *addr; /* MAIL/RCPT on OK; NULL: not checked */
	size_t params;    /* MAIL/RCPT on OK */
};

static const struct command_case command_cases[] = {
        /* HELO / EHLO: a domain or an address literal */
        {"HELO example.com", OK, SMTP_VERB_HELO, "example.com", NULL, 0},
        {"helo example.com", OK, SMTP_VERB_HELO, "example.com", NULL, 0},
        {"EHLO mail.example.com", OK, SMTP_VERB_EHLO, "mail.example.com", NULL, 0},
        {"eHlO localhost", OK, SMTP_VERB_EHLO, "localhost", NULL, 0},
        {"EHLO [192.0.2.1]", OK, SMTP_VERB_EHLO, "[192.0.2.1]", NULL, 0},
        {"EHLO [IPv6:2001:db8::1]", OK, SMTP_VERB_EHLO, "[IPv6:2001:db8::1]", NULL, 0},
        {"EHLO example.com  ", OK, SMTP_VERB_EHLO, "example.com", NULL, 0},
        {"EHLO bücher.de", OK, SMTP_VERB_EHLO, "bücher.de", NULL, 0},
        {"EHLO", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        {"EHLO ", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        {"HELO", SYNTAX, SMTP_VERB_HELO, NULL, NULL, 0},
        {"EHLO exa mple.com", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        {"EHLO  example.com", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        /* Lenient as RFC 5321 4.1.4 asks: one printable word is enough. */
        {"EHLO my_host", OK, SMTP_VERB_EHLO, "my_host", NULL, 0},
        {"EHLO example.com.", OK, SMTP_VERB_EHLO, "example.com.", NULL, 0},
        {"EHLO [192.0.2.999]", OK, SMTP_VERB_EHLO, "[192.0.2.999]", NULL, 0},
        {"EHLO a\tb", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        {"EHLO a\x7f", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        {"EHLO \xff", SYNTAX, SMTP_VERB_EHLO, NULL, NULL, 0},
        /* verbs without arguments */
        {"DATA", OK, SMTP_VERB_DATA, "", NULL, 0},
        {"data", OK, SMTP_VERB_DATA, "", NULL, 0},
        {"DATA ", OK, SMTP_VERB_DATA, "", NULL, 0},
        {"DATA x", SYNTAX, SMTP_VERB_DATA, NULL, NULL, 0},
        {"RSET", OK, SMTP_VERB_RSET, "", NULL, 0},
        {"RSET now", SYNTAX, SMTP_VERB_RSET, NULL, NULL, 0},
        {"QUIT", OK, SMTP_VERB_QUIT, "", NULL, 0},
        {"quit  ", OK, SMTP_VERB_QUIT, "", NULL, 0},
        {"QUIT bye", SYNTAX, SMTP_VERB_QUIT, NULL, NULL, 0},
        {"STARTTLS", OK, SMTP_VERB_STARTTLS, "", NULL, 0},
        {"StartTLS", OK, SMTP_VERB_STARTTLS, "", NULL, 0},
        {"STARTTLS x", SYNTAX, SMTP_VERB_STARTTLS, NULL, NULL, 0},
        /* verbs with optional or required arguments */
        {"NOOP", OK, SMTP_VERB_NOOP, "", NULL, 0},
        {"NOOP hello there", OK, SMTP_VERB_NOOP, "hello there", NULL, 0},
        {"NOOP  x ", OK, SMTP_VERB_NOOP, " x", NULL, 0},
        {"HELP", OK, SMTP_VERB_HELP, "", NULL, 0},
        {"HELP MAIL", OK, SMTP_VERB_HELP, "MAIL", NULL, 0},
        {"VRFY", SYNTAX, SMTP_VERB_VRFY, NULL, NULL, 0},
        {"VRFY ", SYNTAX, SMTP_VERB_VRFY, NULL, NULL, 0},
        {"VRFY postmaster", OK, SMTP_VERB_VRFY, "postmaster", NULL, 0},
        {"EXPN", SYNTAX, SMTP_VERB_EXPN, NULL, NULL, 0},
        {"EXPN staff", OK, SMTP_VERB_EXPN, "staff", NULL, 0},
        {"AUTH", SYNTAX, SMTP_VERB_AUTH, NULL, NULL, 0},
        {"AUTH PLAIN", OK, SMTP_VERB_AUTH, "PLAIN", NULL, 0},
        {"AUTH PLAIN AHVzZXIAcGFzcw==", OK, SMTP_VERB_AUTH, "PLAIN AHVzZXIAcGFzcw==", NULL, 0},
        /* unknown verbs: the verb ends at a space or the end of the line */
        {"", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {" ", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {" DATA", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"FOO", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"HEL", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"DATAX", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"STARTTLSX", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"MAILFROM:<a@b>", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"MAIL\tFROM:<a@b>", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"GET / HTTP/1.1", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        {"\xff\xfe", UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, 0},
        /* MAIL (RFC 5321 4.1.1.2) */
        {"MAIL FROM:<a@b>", OK, SMTP_VERB_MAIL, "FROM:<a@b>", "a@b", 0},
        {"mail from:<a@b>", OK, SMTP_VERB_MAIL, NULL, "a@b", 0},
        {"MAIL FROM: <a@b>", OK, SMTP_VERB_MAIL, NULL, "a@b", 0},
        {"MAIL FROM:<>", OK, SMTP_VERB_MAIL, NULL, "", 0},
        {"MAIL FROM:<> ", OK, SMTP_VERB_MAIL, NULL, "", 0},
        {"MAIL FROM:<@relay.example:a@b>", OK, SMTP_VERB_MAIL, NULL, "a@b", 0},
        {"MAIL FROM:<\"a b\"@c>", OK, SMTP_VERB_MAIL, NULL, "\"a b\"@c", 0},
        {"MAIL FROM:<a@b> SIZE=1000", OK, SMTP_VERB_MAIL, NULL, "a@b", 1},
        {"MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8", OK, SMTP_VERB_MAIL, NULL, "a@b", 3},
        {"MAIL FROM:<a@b> SIZE=1 ", OK, SMTP_VERB_MAIL, NULL, "a@b", 1},
        {"MAIL FROM:<a@b> X-Y=1", OK, SMTP_VERB_MAIL, NULL, "a@b", 1},
        {"MAIL FROM:<a@b> 8=x", OK, SMTP_VERB_MAIL, NULL, "a@b", 1},
        {"MAIL FROM:<a@b> ENVID=\xc3\xa9t\xc3\xa9", OK, SMTP_VERB_MAIL, NULL, "a@b", 1},
        {"MAIL FROM:<a@b> AUTH=<>", OK, SMTP_VERB_MAIL, NULL, "a@b", 1},
        {"MAIL FROM:  <a@b>", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM: ", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:a@b", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@@b>", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<Postmaster>", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b\xc3>", BADADDR, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM <a@b>", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL TO:<a@b>", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL  FROM:<a@b>", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b>SIZE=1", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b>  SIZE=1", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> SIZE=1  BODY=7BIT", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> SIZE=", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> =1", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> -X=1", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> X_Y=1", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> A=B=C", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> A=\x01", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> A=\x7f", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> A=\tb", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> ENVID=\xc3", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> size=1 SIZE=2", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        {"MAIL FROM:<a@b> SMTPUTF8 smtputf8", SYNTAX, SMTP_VERB_MAIL, NULL, NULL, 0},
        /* RCPT (RFC 5321 4.1.1.3) */
        {"RCPT TO:<a@b>", OK, SMTP_VERB_RCPT, "TO:<a@b>", "a@b", 0},
        {"rcpt to:<a@b>", OK, SMTP_VERB_RCPT, NULL, "a@b", 0},
        {"RCPT TO: <a@b>", OK, SMTP_VERB_RCPT, NULL, "a@b", 0},
        {"RCPT TO:<Postmaster>", OK, SMTP_VERB_RCPT, NULL, "Postmaster", 0},
        {"RCPT TO:<postmaster@example.com>", OK, SMTP_VERB_RCPT, NULL, "postmaster@example.com", 0},
        {"RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c", OK, SMTP_VERB_RCPT, NULL, "a@b", 2},
        {"RCPT TO:<a@[192.0.2.1]>", OK, SMTP_VERB_RCPT, NULL, "a@[192.0.2.1]", 0},
        {"RCPT TO:<>", BADADDR, SMTP_VERB_RCPT, NULL, NULL, 0},
        {"RCPT TO:<a b@c>", BADADDR, SMTP_VERB_RCPT, NULL, NULL, 0},
        {"RCPT TO:<a@[1.2.3]>", BADADDR, SMTP_VERB_RCPT, NULL, NULL, 0},
        {"RCPT FROM:<a@b>", SYNTAX, SMTP_VERB_RCPT, NULL, NULL, 0},
        {"RCPT TO", SYNTAX, SMTP_VERB_RCPT, NULL, NULL, 0},
        {"RCPT", SYNTAX, SMTP_VERB_RCPT, NULL, NULL, 0},
        {"RCPT TO:<a@b> NOTIFY=NEVER notify=NEVER", SYNTAX, SMTP_VERB_RCPT, NULL, NULL, 0},
        /* BDAT (RFC 3030 2) */
        {"BDAT 0", OK, SMTP_VERB_BDAT, "0", NULL, 0},
        {"BDAT 1 LAST ", OK, SMTP_VERB_BDAT, "1 LAST", NULL, 0},
        {"BDAT", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT ", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT LAST", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT -1", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT +1", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 1x", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 0x10", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 1 LASTX", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 1 LAS", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 1  LAST", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 1 LAST x", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 1 2", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT  1", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 18446744073709551616", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 99999999999999999999", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
        {"BDAT 000000000000000000001", SYNTAX, SMTP_VERB_BDAT, NULL, NULL, 0},
};

/* parse_copy - parse a heap copy of exactly line[0..len). */
static enum smtp_parse_status parse_copy(const char *line, size_t len, struct smtp_command *cmd, const char **why,
                                         char **copy)
{
	*copy = malloc(len ? len : 1);
	if (*copy == NULL)
		abort();
	memcpy(*copy, line, len);
	return smtp_command_parse(*copy, len, cmd, why);
}

/* check_inside - every pointer in the result points into the line. */
static void check_inside(const struct smtp_command *cmd, const char *line, size_t len)
{
	size_t i;

	CHECK(cmd->arg >= line && cmd->arg + cmd->arg_len <= line + len);
	for (i = 0; i < cmd->param_count; i++) {
		const struct smtp_param *p = &cmd->params[i];

		CHECK(p->key >= line && p->key + p->key_len <= line + len && p->key_len > 0);
		if (p->value != NULL)
			CHECK(p->value >= line && p->value + p->value_len <= line + len && p->value_len > 0);
	}
}

static void run_command_case(const struct command_case *c)
{
	size_t len = strlen(c->line);
	struct smtp_command cmd;
	const char *why = "unset";
	char *copy;
	enum smtp_parse_status got = parse_copy(c->line, len, &cmd, &why, &copy);

	if (got != c->status) {
		UNIT_FAIL("\"%s\": got status %d (%s), want %d", c->line, got, why ? why : "-", c->status);
		free(copy);
		return;
	}
	unit_passed++;
	CHECK_INT(cmd.verb, c->verb);
	if (got != OK) {
		CHECK(why != NULL && why[0] != '\0');
		free(copy);
		return;
	}
	CHECK(why == NULL);
	check_inside(&cmd, copy, len);
	if (c->arg != NULL)
		CHECK_MEM(cmd.arg, cmd.arg_len, c->arg);
	if (c->addr != NULL) {
		CHECK_STR(cmd.path.addr, c->addr);
		CHECK_INT(cmd.param_count, c->params);
	}
	free(copy);
}

static void test_command_table(void)
{
	size_t i;

	for (i = 0; i < sizeof command_cases / sizeof command_cases[0]; i++)
		run_command_case(&command_cases[i]);
}

static void test_bdat_sizes(void)
{
	static const struct {
		const char *line;
		uint64_t size;
		bool last;
	} rows[] = {
	        {"BDAT 0", 0, false},
	        {"BDAT 0 LAST", 0, true},
	        {"BDAT 1000 last", 1000, true},
	        {"bdat 1000 LaSt", 1000, true},
	        {"BDAT 00000000000000000001", 1, false},
	        {"BDAT 18446744073709551615", UINT64_MAX, false},
	        {"BDAT 18446744073709551615 LAST", UINT64_MAX, true},
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct smtp_command cmd;

		CHECK_INT(smtp_command_parse(rows[i].line, strlen(rows[i].line), &cmd, NULL), OK);
		CHECK(cmd.chunk_size == rows[i].size);
		CHECK_INT(cmd.chunk_last, rows[i].last);
	}
}

static void test_params(void)
{
	static const char line[] = "MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8";
	struct smtp_command cmd;
	const struct smtp_param *p;
	uint64_t size = 0;

	CHECK_INT(smtp_command_parse(line, strlen(line), &cmd, NULL), OK);
	CHECK_INT(cmd.param_count, 3);
	p = smtp_param_find(&cmd, "size");
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_MEM(p->key, p->key_len, "SIZE");
		CHECK_MEM(p->value, p->value_len, "1000");
		CHECK(smtp_param_size(p, &size));
		CHECK(size == 1000);
	}
	p = smtp_param_find(&cmd, "SMTPUTF8");
	CHECK(p != NULL && p->value == NULL && p->value_len == 0);
	CHECK(!smtp_param_size(p, &size));
	p = smtp_param_find(&cmd, "Body");
	CHECK(p != NULL && p->value_len == 8);
	CHECK(!smtp_param_size(p, &size));
	CHECK(smtp_param_find(&cmd, "SIZ") == NULL);
	CHECK(smtp_param_find(&cmd, "SIZE=1000") == NULL);
	CHECK(smtp_param_find(&cmd, "ENVID") == NULL);
	CHECK(!smtp_param_size(NULL, &size));
}

static void test_param_size(void)
{
	static const struct {
		const char *value;
		bool ok;
		uint64_t size;
	} rows[] = {
	        {"0", true, 0},
	        {"1", true, 1},
	        {"18446744073709551615", true, UINT64_MAX},
	        {"18446744073709551616", false, 0},
	        {"00000000000000000000", true, 0},
	        {"000000000000000000000", false, 0},
	        {"-1", false, 0},
	        {"1k", false, 0},
	        {" 1", false, 0},
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct smtp_param p = {"SIZE", 4, rows[i].value, strlen(rows[i].value)};
		uint64_t size = 7;

		CHECK_INT(smtp_param_size(&p, &size), rows[i].ok);
		if (rows[i].ok)
			CHECK(size == rows[i].size);
	}
}

/* build_params - "MAIL FROM:<a@b>" and n parameters P0=1 ... */
static size_t build_params(char *buf, size_t cap, size_t n)
{
	size_t len = (size_t)snprintf(buf, cap, "MAIL FROM:<a@b>"), i;

	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, " P%zu=1", i);
	return len;
}

static void test_param_count(void)
{
	char buf[512];
	struct smtp_command cmd;
	const char *why = NULL;
	size_t len;

	len = build_params(buf, sizeof buf, SMTP_PARAMS_MAX);
	CHECK_INT(smtp_command_parse(buf, len, &cmd, &why), OK);
	CHECK_INT(cmd.param_count, SMTP_PARAMS_MAX);
	CHECK(smtp_param_find(&cmd, "P15") != NULL);
	len = build_params(buf, sizeof buf, SMTP_PARAMS_MAX + 1);
	CHECK_INT(smtp_command_parse(buf, len, &cmd, &why), SYNTAX);
	CHECK_STR(why, "Too many parameters");
}

/* Path length limits seen through the command: RFC 5321 4.5.3.1. */
static void test_length_limits(void)
{
	char buf[600], local[80], domain[300];
	struct smtp_command cmd;
	int n;

	memset(local, 'l', 64);
	local[64] = '\0';
	memset(domain, 'd', 63);
	domain[63] = '\0';
	n = snprintf(buf, sizeof buf, "RCPT TO:<%s@%s>", local, domain);
	CHECK_INT(smtp_command_parse(buf, (size_t)n, &cmd, NULL), OK);
	CHECK_INT(cmd.path.local_len, 64);
	local[64] = 'l';
	local[65] = '\0';
	n = snprintf(buf, sizeof buf, "RCPT TO:<%s@%s>", local, domain);
	CHECK_INT(smtp_command_parse(buf, (size_t)n, &cmd, NULL), TOOLONG);
	n = snprintf(buf, sizeof buf, "MAIL FROM:<%s@%s>", local, domain);
	CHECK_INT(smtp_command_parse(buf, (size_t)n, &cmd, NULL), TOOLONG);

	/* The whole path: 256 with brackets is fine, 257 is not. */
	memset(local, 'l', 64);
	local[64] = '\0';
	memcpy(domain, "d23456789012345678901234567890123456789012345678901234567890123.", 64);
	memcpy(domain + 64, domain, 64);
	memcpy(domain + 128, domain, 61);
	domain[189] = '\0';
	n = snprintf(buf, sizeof buf, "MAIL FROM:<%s@%s> SIZE=10", local, domain);
	CHECK_INT(smtp_command_parse(buf, (size_t)n, &cmd, NULL), OK);
	CHECK_INT(strlen(cmd.path.addr), 64 + 1 + 189);
	domain[189] = 'x';
	domain[190] = '\0';
	n = snprintf(buf, sizeof buf, "MAIL FROM:<%s@%s> SIZE=10", local, domain);
	CHECK_INT(smtp_command_parse(buf, (size_t)n, &cmd, NULL), TOOLONG);
}

static void test_verb_names(void)
{
	static const char *const names[SMTP_VERB_COUNT] = {
	        "UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA",     "BDAT", "RSET",
	        "NOOP",    "VRFY", "EXPN", "HELP", "QUIT", "STARTTLS", "AUTH",
	};
	int v;

	for (v = 0; v < SMTP_VERB_COUNT; v++) {
		struct smtp_command cmd;

		CHECK_STR(smtp_verb_name((enum smtp_verb)v), names[v]);
		/* Every name parses back to its verb. */
		if (v != SMTP_VERB_UNKNOWN) {
			smtp_command_parse(names[v], strlen(names[v]), &cmd, NULL);
			CHECK_INT(cmd.verb, v);
		}
	}
	CHECK_STR(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
}

/* The parser looks only at line[0..len): what follows in memory is ignored. */
static void test_slice_only(void)
{
	struct smtp_command cmd;

	CHECK_INT(smtp_command_parse("DATA junk", 4, &cmd, NULL), OK);
	CHECK_INT(smtp_command_parse("RCPT TO:<a@b>>>", 13, &cmd, NULL), OK);
	CHECK_INT(smtp_command_parse("BDAT 12345", 6, &cmd, NULL), OK);
	CHECK(cmd.chunk_size == 1);
	CHECK_INT(smtp_command_parse(NULL, 0, &cmd, NULL), UNKNOWN);
}

int main(void)
{
	test_command_table();
	test_bdat_sizes();
	test_params();
	test_param_size();
	test_param_count();
	test_length_limits();
	test_verb_names();
	test_slice_only();
	return unit_finish("smtp_command");
}
