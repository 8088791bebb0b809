/*
 * smtp_command.h - the SMTP command line parser (RFC 5321 4.1, 4.1.2).
 *
 * Pure: a line in, a parsed command out. No I/O, no allocation, no policy.
 * The caller has already split the input at CRLF, checked it has no bare CR,
 * bare LF or NUL, and removed the CRLF. Every pointer in the result points
 * into the line the caller passed (or into the result itself), so the result
 * lives exactly as long as that line.
 */
#ifndef TERN_SMTP_COMMAND_H
#define TERN_SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_address.h"
#include "smtp/smtp_limits.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_QUIT,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

/* One ESMTP parameter, "KEYWORD" or "KEYWORD=VALUE" (RFC 5321 4.1.2). */
struct smtp_param {
	const char *key; /* not NUL-terminated */
	size_t key_len;
	const char *value; /* NULL when the parameter has no "=VALUE" */
	size_t value_len;
};

struct smtp_command {
	enum smtp_verb verb;
	/* Everything after the verb and the single space that follows it, with
	 * trailing spaces removed; empty (len 0) when there is no argument. */
	const char *arg;
	size_t arg_len;
	/* MAIL and RCPT: the path and the ESMTP parameters after it. */
	struct smtp_path path;
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t param_count;
	/* BDAT: the chunk size and whether LAST was given (RFC 3030 2). */
	uint64_t chunk_size;
	bool chunk_last;
};

enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_UNKNOWN_VERB, /* 500 5.5.1: not a command we know */
	SMTP_PARSE_SYNTAX,       /* 501 5.5.4 (or 5.5.2): arguments malformed */
	SMTP_PARSE_BAD_ADDRESS,  /* 501 5.1.3 (MAIL: 5.1.7): path malformed */
	SMTP_PARSE_TOO_LONG,     /* 501 5.5.4: path or part over its RFC limit */
};

/*
 * smtp_command_parse - parse one command line (without its CRLF).
 *
 * Verbs are matched case-insensitively (RFC 5321 2.4). The verb must be
 * followed by the end of the line or one space. Per verb:
 *   HELO/EHLO  a non-empty argument is required (a domain or an address
 *              literal; checked with smtp_domain_check(arg, len, true,
 *              true), so well-formed U-labels pass: a syntactically bad
 *              EHLO argument is SMTP_PARSE_SYNTAX).
 *   MAIL       "FROM:" (case-insensitive), optional spaces are NOT allowed
 *              by RFC 5321 but real clients send "MAIL FROM: <a@b>"; accept
 *              that one form too. Then a reverse-path (<> allowed), then
 *              zero or more " KEY[=VALUE]" parameters.
 *   RCPT       "TO:" likewise, then a forward-path (<> refused), or
 *              "<Postmaster>" without a domain (RFC 5321 4.1.1.3), then
 *              parameters.
 *   BDAT       "SIZE" or "SIZE LAST": SIZE is 1..20 decimal digits that fit
 *              in uint64_t; anything else is SMTP_PARSE_SYNTAX.
 *   DATA, RSET, QUIT, STARTTLS  no argument allowed (SMTP_PARSE_SYNTAX).
 *   NOOP, HELP  any argument allowed and kept in arg.
 *   VRFY, EXPN  an argument is required.
 *   AUTH       an argument is required (mechanism [initial-response]).
 * Parameter keywords are (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); values are
 * 1*(%d33-60 / %d62-126) (RFC 5321 esmtp-value; with SMTPUTF8, RFC 6531 also
 * allows UTF-8, which the parser accepts: bytes >= 0x80 are allowed in values).
 * More than SMTP_PARAMS_MAX parameters, a duplicated keyword (compared
 * case-insensitively), or an empty parameter is SMTP_PARSE_SYNTAX.
 *
 * On failure *why (if why is not NULL) is set to a short static English
 * phrase fit for the reply text, e.g. "Syntax error in parameters".
 */
enum smtp_parse_status smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd, const char **why);

/* smtp_verb_name - the verb's canonical upper-case name ("MAIL"), or "UNKNOWN". */
const char *smtp_verb_name(enum smtp_verb verb);

/*
 * smtp_param_find - the parameter whose keyword equals key (case-insensitive),
 * or NULL.
 */
const struct smtp_param *smtp_param_find(const struct smtp_command *cmd, const char *key);

/*
 * smtp_param_size - parse a SIZE=value (RFC 1870): 1..20 digits fitting in
 * uint64_t. Returns false if the value is missing or malformed.
 */
bool smtp_param_size(const struct smtp_param *param, uint64_t *size);

#endif
