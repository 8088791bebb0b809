/*
 * smtp_address.h - SMTP paths and mailboxes (RFC 5321 4.1.2, RFC 6531 3.3).
 *
 * Pure: parse and check, never allocate. A parsed path is copied into the
 * struct, so it outlives the input line.
 */
#ifndef TERN_SMTP_ADDRESS_H
#define TERN_SMTP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_limits.h"

struct smtp_path {
	/* "local@domain", NUL-terminated, local part exactly as sent (quotes
	 * kept when the local part was a quoted string), domain as sent. Empty
	 * string for the null path "<>", and "Postmaster" (as sent) for the
	 * bare "<Postmaster>" form of RCPT. Any source route is not part of it. */
	char addr[SMTP_PATH_MAX + 1];
	size_t local_len;        /* bytes of the local part at addr[0] */
	size_t domain_len;       /* bytes of the domain at addr[local_len + 1]; 0 if none */
	bool is_null;            /* "<>" */
	bool is_bare_postmaster; /* "<Postmaster>" without a domain (RCPT only) */
	bool has_source_route;   /* "<@a,@b:user@d>" was given (route dropped) */
	bool local_quoted;       /* the local part is a quoted-string */
	bool domain_literal;     /* the domain is an address literal "[...]" */
	bool has_utf8;           /* bytes >= 0x80 appear (needs SMTPUTF8) */
};

enum smtp_path_kind {
	SMTP_PATH_REVERSE, /* MAIL FROM: "<>" allowed */
	SMTP_PATH_FORWARD, /* RCPT TO: "<Postmaster>" allowed, "<>" refused */
};

/*
 * smtp_path_parse - parse a path at the start of s[0..len).
 *
 * The path must start with '<' and end with '>' (RFC 5321 4.1.2 Path).
 * On success returns true and sets *consumed to the bytes used (through the
 * closing '>'). Accepted syntax: optional source route ("@dom,@dom:" - kept
 * out of addr, has_source_route set), then Mailbox = Local-part "@"
 * ( Domain / address-literal ). Local-part is Dot-string (atext runs
 * separated by single dots, RFC 5322 atext) or Quoted-string (qtextSMTP and
 * quoted-pairSMTP). Domain is sub-domains (Let-dig [Ldh-str]) separated by
 * dots; an address literal is "[" IPv4 "]" or "[IPv6:" ... "]" checked with
 * inet_pton, or "[tag:dcontent]". Bytes >= 0x80 are accepted in the local
 * part and domain and set has_utf8 (the caller refuses them without
 * SMTPUTF8; the parser checks they form valid UTF-8). Limits: local part
 * SMTP_LOCAL_PART_MAX, domain SMTP_DOMAIN_MAX, whole path SMTP_PATH_MAX
 * (over a limit: *too_long set, returns false). Control characters, spaces
 * outside quotes, and missing brackets fail. *why (if not NULL) gets a short
 * static phrase for the reply on failure.
 */
bool smtp_path_parse(const char *s, size_t len, enum smtp_path_kind kind, struct smtp_path *path, size_t *consumed,
                     bool *too_long, const char **why);

/*
 * smtp_path_local / smtp_path_domain - pointers into path->addr. The local
 * part is local_len bytes at smtp_path_local() and is NOT NUL-terminated
 * there (the "@" follows); the domain is NUL-terminated ("" when none).
 */
const char *smtp_path_local(const struct smtp_path *path);
const char *smtp_path_domain(const struct smtp_path *path);

/*
 * smtp_domain_check - true if s[0..len) is a syntactically valid domain
 * (RFC 5321 Domain, or with allow_utf8 a U-label domain) or, with
 * allow_literal, an address literal. Used for EHLO/HELO arguments and for
 * configured local domains.
 */
bool smtp_domain_check(const char *s, size_t len, bool allow_literal, bool allow_utf8);

/*
 * smtp_atext - c is RFC 5322 3.2.3 atext in ASCII: a letter, a digit or one
 * of !#$%&'*+-/=?^_`{|}~, what the atoms of a Dot-string local part are
 * made of (RFC 5321 4.1.2). Bytes >= 0x80 and negative values are not
 * (RFC 6531 and RFC 6532 add UTF-8: the caller decides).
 */
bool smtp_atext(int c);

/*
 * smtp_dot_string - s[0..len) is a Dot-string (RFC 5321 4.1.2), an
 * unquoted local part: runs of atext joined by single dots, no dot at
 * either end, not empty. With utf8, bytes >= 0x80 count as atext too
 * (RFC 6531 3.3; whether they form UTF-8 is not checked here). The length
 * is not checked against SMTP_LOCAL_PART_MAX.
 */
bool smtp_dot_string(const char *s, size_t len, bool utf8);

/*
 * smtp_utf8_valid - true if s[0..len) is well-formed UTF-8 (RFC 3629 4:
 * no overlong forms, no surrogates, nothing above U+10FFFF). Used for
 * SMTPUTF8 (RFC 6531) paths and parameter values.
 */
bool smtp_utf8_valid(const char *s, size_t len);

#endif
