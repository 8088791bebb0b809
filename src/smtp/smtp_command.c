/*
 * smtp_command.c - the SMTP command line parser (RFC 5321 4.1, 4.1.2;
 * RFC 1870 SIZE; RFC 3030 BDAT; RFC 6531 UTF-8 parameter values).
 *
 * One line in (without its CRLF, as a slice), one struct smtp_command out.
 * A static table gives each verb its argument rule; the rule's function
 * checks the argument. Pointers in the result point into the caller's line
 * (arg, parameter keys and values) or into the result (path), so the result
 * lives as long as the line. Nothing is allocated and nothing is read past
 * len.
 *
 * Limits: SMTP_PARAMS_MAX parameters; path limits as in smtp_address.c. The
 * line length itself is the caller's (SMTP_COMMAND_LINE_MAX).
 *
 * Failure: a status that maps to one reply (see smtp_command.h) and a short
 * static phrase for its text. A peer's mistake is only ever a status.
 */
#include "smtp/smtp_command.h"

#include <string.h>

/* What a verb accepts after it. */
enum arg_rule {
	ARG_NONE,     /* nothing (trailing spaces aside) */
	ARG_ANY,      /* anything, kept in arg */
	ARG_REQUIRED, /* something, kept in arg */
	ARG_DOMAIN,   /* HELO/EHLO: a domain or an address literal */
	ARG_MAIL,     /* "FROM:" reverse-path [parameters] */
	ARG_RCPT,     /* "TO:" forward-path [parameters] */
	ARG_BDAT,     /* chunk size [" LAST"] */
};

struct verb_entry {
	const char *name;
	enum smtp_verb verb;
	enum arg_rule rule;
};

static const struct verb_entry verb_table[] = {
        {"HELO", SMTP_VERB_HELO, ARG_DOMAIN},       {"EHLO", SMTP_VERB_EHLO, ARG_DOMAIN},
        {"MAIL", SMTP_VERB_MAIL, ARG_MAIL},         {"RCPT", SMTP_VERB_RCPT, ARG_RCPT},
        {"DATA", SMTP_VERB_DATA, ARG_NONE},         {"BDAT", SMTP_VERB_BDAT, ARG_BDAT},
        {"RSET", SMTP_VERB_RSET, ARG_NONE},         {"NOOP", SMTP_VERB_NOOP, ARG_ANY},
        {"VRFY", SMTP_VERB_VRFY, ARG_REQUIRED},     {"EXPN", SMTP_VERB_EXPN, ARG_REQUIRED},
        {"HELP", SMTP_VERB_HELP, ARG_ANY},          {"QUIT", SMTP_VERB_QUIT, ARG_NONE},
        {"STARTTLS", SMTP_VERB_STARTTLS, ARG_NONE}, {"AUTH", SMTP_VERB_AUTH, ARG_REQUIRED},
};

#define VERB_TABLE_LEN (sizeof verb_table / sizeof verb_table[0])

/* RFC 1870 and RFC 3030 sizes: at most 20 digits, the width of uint64_t. */
#define SIZE_DIGITS_MAX 20

static int ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* ascii_prefix_equal - s[0..n) equals word[0..n), ignoring ASCII case. */
static bool ascii_prefix_equal(const char *s, const char *word, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)word[i]))
			return false;
	}
	return true;
}

/* ascii_word_equal - s[0..len) equals the NUL-terminated word, ignoring case. */
static bool ascii_word_equal(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && ascii_prefix_equal(s, word, len);
}

static bool is_alnum(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static enum smtp_parse_status fail(enum smtp_parse_status status, const char *reason, const char **why)
{
	if (why != NULL)
		*why = reason;
	return status;
}

/*
 * parse_decimal - 1..20 ASCII digits that fit in uint64_t (RFC 1870 4,
 * RFC 3030 2 size values). Leading zeros are allowed, within the 20.
 */
static bool parse_decimal(const char *s, size_t len, uint64_t *value)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > SIZE_DIGITS_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned digit = (unsigned)(unsigned char)s[i] - '0';

		if (digit > 9 || v > (UINT64_MAX - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	*value = v;
	return true;
}

/* find_verb - the table entry whose name is s[0..len), ignoring case (RFC 5321 2.4). */
static const struct verb_entry *find_verb(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < VERB_TABLE_LEN; i++) {
		if (ascii_word_equal(s, len, verb_table[i].name))
			return &verb_table[i];
	}
	return NULL;
}

/*
 * esmtp_value_ok - 1*(%d33-60 / %d62-126) (RFC 5321 4.1.2 esmtp-value),
 * plus well-formed UTF-8 (RFC 6531 3.3 extends esmtp-value).
 */
static bool esmtp_value_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c == '=' || c == 127)
			return false;
	}
	return smtp_utf8_valid(s, len);
}

/* esmtp_keyword_ok - (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") (RFC 5321 4.1.2). */
static bool esmtp_keyword_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alnum((unsigned char)s[0]))
		return false;
	for (i = 1; i < len; i++) {
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* split_param - "KEY" or "KEY=VALUE" in s[0..len) into param; false if malformed. */
static bool split_param(const char *s, size_t len, struct smtp_param *param)
{
	const char *eq = memchr(s, '=', len);

	param->key = s;
	param->key_len = eq != NULL ? (size_t)(eq - s) : len;
	param->value = NULL;
	param->value_len = 0;
	if (!esmtp_keyword_ok(param->key, param->key_len))
		return false;
	if (eq == NULL)
		return true;
	param->value = eq + 1;
	param->value_len = len - param->key_len - 1;
	return esmtp_value_ok(param->value, param->value_len);
}

/* add_param - parse one parameter into the command, refusing a repeated keyword. */
static enum smtp_parse_status add_param(struct smtp_command *cmd, const char *s, size_t len, const char **why)
{
	struct smtp_param param;
	size_t i;

	if (cmd->param_count == SMTP_PARAMS_MAX)
		return fail(SMTP_PARSE_SYNTAX, "Too many parameters", why);
	if (!split_param(s, len, &param))
		return fail(SMTP_PARSE_SYNTAX, "Syntax error in parameters", why);
	for (i = 0; i < cmd->param_count; i++) {
		if (cmd->params[i].key_len == param.key_len &&
		    ascii_prefix_equal(cmd->params[i].key, param.key, param.key_len))
			return fail(SMTP_PARSE_SYNTAX, "Duplicate parameter", why);
	}
	cmd->params[cmd->param_count++] = param;
	return SMTP_PARSE_OK;
}

/*
 * parse_params - [SP esmtp-param *(SP esmtp-param)] after a path (RFC 5321
 * 4.1.2 Mail-parameters, Rcpt-parameters): one space before each, so two
 * spaces in a row make an empty parameter, which is an error.
 */
static enum smtp_parse_status parse_params(struct smtp_command *cmd, const char *s, size_t len, const char **why)
{
	size_t i = 0;

	while (i < len) {
		const char *space;
		size_t param_len;
		enum smtp_parse_status status;

		if (s[i] != ' ' || i + 1 == len)
			return fail(SMTP_PARSE_SYNTAX, "Syntax error in parameters", why);
		i++;
		space = memchr(s + i, ' ', len - i);
		param_len = space != NULL ? (size_t)(space - (s + i)) : len - i;
		status = add_param(cmd, s + i, param_len, why);
		if (status != SMTP_PARSE_OK)
			return status;
		i += param_len;
	}
	return SMTP_PARSE_OK;
}

/*
 * parse_path_command - MAIL and RCPT: keyword ("FROM:" or "TO:"), the path,
 * then parameters. RFC 5321 4.1.1.2 puts no space after the colon, but many
 * clients send "MAIL FROM: <a@b>"; one space there is tolerated.
 */
static enum smtp_parse_status parse_path_command(struct smtp_command *cmd, const char *keyword,
                                                 enum smtp_path_kind kind, const char *usage, const char **why)
{
	size_t kw_len = strlen(keyword), used = 0;
	const char *p = cmd->arg;
	size_t n = cmd->arg_len;
	const char *path_why = NULL;
	bool too_long = false;

	if (n < kw_len || !ascii_prefix_equal(p, keyword, kw_len))
		return fail(SMTP_PARSE_SYNTAX, usage, why);
	p += kw_len;
	n -= kw_len;
	if (n > 0 && p[0] == ' ') {
		p++;
		n--;
	}
	if (!smtp_path_parse(p, n, kind, &cmd->path, &used, &too_long, &path_why))
		return fail(too_long ? SMTP_PARSE_TOO_LONG : SMTP_PARSE_BAD_ADDRESS, path_why, why);
	return parse_params(cmd, p + used, n - used, why);
}

/* parse_bdat - RFC 3030 2: "BDAT" SP chunk-size [SP end-marker], end-marker = "LAST". */
static enum smtp_parse_status parse_bdat(struct smtp_command *cmd, const char **why)
{
	static const char usage[] = "Syntax: BDAT size [LAST]";
	static const char last[] = " LAST";
	const char *space = memchr(cmd->arg, ' ', cmd->arg_len);
	size_t digits = space != NULL ? (size_t)(space - cmd->arg) : cmd->arg_len;
	size_t rest = cmd->arg_len - digits;

	if (!parse_decimal(cmd->arg, digits, &cmd->chunk_size))
		return fail(SMTP_PARSE_SYNTAX, usage, why);
	if (rest == 0)
		return SMTP_PARSE_OK;
	if (!ascii_word_equal(cmd->arg + digits, rest, last))
		return fail(SMTP_PARSE_SYNTAX, usage, why);
	cmd->chunk_last = true;
	return SMTP_PARSE_OK;
}

/* helo_word_ok - one word: printable ASCII or valid UTF-8, nothing else. */
static bool helo_word_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return smtp_utf8_valid(s, len);
}

/* parse_argument - check cmd->arg against the verb's rule. */
static enum smtp_parse_status parse_argument(struct smtp_command *cmd, enum arg_rule rule, const char **why)
{
	switch (rule) {
	case ARG_NONE:
		if (cmd->arg_len != 0)
			return fail(SMTP_PARSE_SYNTAX, "No parameters allowed", why);
		return SMTP_PARSE_OK;
	case ARG_ANY:
		return SMTP_PARSE_OK;
	case ARG_REQUIRED:
		if (cmd->arg_len == 0)
			return fail(SMTP_PARSE_SYNTAX, "Argument required", why);
		return SMTP_PARSE_OK;
	case ARG_DOMAIN:
		/* RFC 5321 4.1.1.1 asks for a domain or an address literal, but
		 * real clients send names like "my_host" or "host.example.", and
		 * RFC 5321 4.1.4 already forbids refusing mail because the EHLO
		 * name does not check out. So, as Postfix does by default, any one
		 * word of printable ASCII or valid UTF-8 is taken; stricter checks
		 * (smtp_domain_check) are policy. No spaces or control
		 * characters: the argument goes into Received: and the logs. */
		if (cmd->arg_len == 0)
			return fail(SMTP_PARSE_SYNTAX, "Domain name required", why);
		if (!helo_word_ok(cmd->arg, cmd->arg_len))
			return fail(SMTP_PARSE_SYNTAX, "Invalid domain name", why);
		return SMTP_PARSE_OK;
	case ARG_MAIL:
		return parse_path_command(cmd, "FROM:", SMTP_PATH_REVERSE, "Syntax: MAIL FROM:<address>", why);
	case ARG_RCPT:
		return parse_path_command(cmd, "TO:", SMTP_PATH_FORWARD, "Syntax: RCPT TO:<address>", why);
	case ARG_BDAT:
		return parse_bdat(cmd, why);
	}
	return fail(SMTP_PARSE_SYNTAX, "Syntax error", why);
}

/*
 * split_verb - the verb runs to the first space or the end of the line; arg
 * is what follows that one space, with trailing spaces removed.
 */
static size_t split_verb(const char *line, size_t len, struct smtp_command *cmd)
{
	const char *space = len > 0 ? memchr(line, ' ', len) : NULL;
	size_t verb_len = space != NULL ? (size_t)(space - line) : len;

	cmd->arg = len > 0 ? line + len : line;
	cmd->arg_len = 0;
	if (space != NULL) {
		cmd->arg = space + 1;
		cmd->arg_len = len - verb_len - 1;
		while (cmd->arg_len > 0 && cmd->arg[cmd->arg_len - 1] == ' ')
			cmd->arg_len--;
	}
	return verb_len;
}

enum smtp_parse_status smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd, const char **why)
{
	const struct verb_entry *entry;
	size_t verb_len;

	memset(cmd, 0, sizeof *cmd);
	if (why != NULL)
		*why = NULL;
	verb_len = split_verb(line, len, cmd);
	entry = find_verb(line, verb_len);
	if (entry == NULL)
		return fail(SMTP_PARSE_UNKNOWN_VERB, "Command unrecognized", why);
	cmd->verb = entry->verb;
	return parse_argument(cmd, entry->rule, why);
}

const char *smtp_verb_name(enum smtp_verb verb)
{
	size_t i;

	for (i = 0; i < VERB_TABLE_LEN; i++) {
		if (verb_table[i].verb == verb)
			return verb_table[i].name;
	}
	return "UNKNOWN";
}

const struct smtp_param *smtp_param_find(const struct smtp_command *cmd, const char *key)
{
	size_t key_len = strlen(key), i;

	for (i = 0; i < cmd->param_count && i < SMTP_PARAMS_MAX; i++) {
		const struct smtp_param *param = &cmd->params[i];

		if (param->key_len == key_len && ascii_prefix_equal(param->key, key, key_len))
			return param;
	}
	return NULL;
}

bool smtp_param_size(const struct smtp_param *param, uint64_t *size)
{
	if (param == NULL || param->value == NULL)
		return false;
	return parse_decimal(param->value, param->value_len, size);
}
