/*
 * smtp_address.c - SMTP paths, mailboxes and domains (RFC 5321 4.1.2,
 * 4.1.3, 4.5.3.1; RFC 6531 3.3).
 *
 * A recursive-descent parser over a (pointer, length) slice. Every read goes
 * through a cursor that checks the slice bound, so input need not be
 * NUL-terminated and is never read past its length. Nothing is allocated:
 * the accepted mailbox is copied into struct smtp_path, which then outlives
 * the input line.
 *
 * Invariants on success: path->addr is NUL-terminated and holds exactly
 * local_len bytes of local part, then (if domain_len > 0) "@" and domain_len
 * bytes of domain; it is at most SMTP_PATH_MAX - 2 bytes long, because the
 * whole path, brackets included, is at most SMTP_PATH_MAX. On failure
 * path->addr is the empty string.
 *
 * Limits: local part SMTP_LOCAL_PART_MAX, domain SMTP_DOMAIN_MAX, whole path
 * SMTP_PATH_MAX (RFC 5321 4.5.3.1.1-3), a DNS label 63 octets (RFC 1035
 * 2.3.4; checked on ASCII labels only, as the limit of a U-label applies to
 * its A-label form, which this module does not compute).
 *
 * Failure: a false return with a short static phrase for the reply; when a
 * well-formed part is over its limit *too_long is also set so the session
 * can answer 5.5.4 rather than 5.1.3. Peer data never aborts anything.
 */
#include "smtp/smtp_address.h"

#include <arpa/inet.h>
#include <string.h>

/* Longest text inet_pton is given: an IPv6 address with an IPv4 tail. */
#define LITERAL_TEXT_MAX 45

/* RFC 1035 2.3.4: a DNS label is at most 63 octets. */
#define DNS_LABEL_MAX 63

struct cursor {
	const unsigned char *s;
	size_t len;
	size_t pos;
};

/* Why a parse failed: the reply phrase and whether it was a length limit. */
struct parse_error {
	const char *why;
	bool too_long;
};

static bool fail(struct parse_error *err, const char *why)
{
	err->why = why;
	return false;
}

static bool fail_long(struct parse_error *err, const char *why)
{
	err->too_long = true;
	return fail(err, why);
}

/* cursor_peek - the next byte, or -1 at the end of the slice. */
static int cursor_peek(const struct cursor *c)
{
	return c->pos < c->len ? c->s[c->pos] : -1;
}

/* cursor_take - consume ch if it is the next byte. */
static bool cursor_take(struct cursor *c, int ch)
{
	if (cursor_peek(c) != ch)
		return false;
	c->pos++;
	return true;
}

static bool is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_let_dig(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* ascii_case_equal - s[0..len) equals the NUL-terminated word, ignoring ASCII case. */
static bool ascii_case_equal(const unsigned char *s, size_t len, const char *word)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (word[i] == '\0' || ascii_lower(s[i]) != ascii_lower((unsigned char)word[i]))
			return false;
	}
	return word[i] == '\0';
}

bool smtp_atext(int c)
{
	return is_let_dig(c) || (c > 0 && c < 0x80 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

bool smtp_dot_string(const char *s, size_t len, bool utf8)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !(smtp_atext(c) || (utf8 && c >= 0x80)))
			return false;
	}
	return true;
}

/*
 * utf8_sequence_length - length of the well-formed UTF-8 sequence starting
 * at s[0] (RFC 3629 4: no overlong forms, no surrogates, nothing past
 * U+10FFFF), or 0 if it is malformed or cut short by len.
 */
static size_t utf8_sequence_length(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t need, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		need = 1;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		need = 2;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		need = 3;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (len <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	}
	return need + 1;
}

bool smtp_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_sequence_length(u + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * take_utf8 - consume one UTF8-non-ascii character (RFC 6531 3.3) if the
 * next byte starts one. Returns false with err set if the bytes are not
 * well-formed UTF-8; *taken tells whether anything was consumed.
 */
static bool take_utf8(struct cursor *c, bool *taken, bool *has_utf8, struct parse_error *err)
{
	size_t n;

	*taken = false;
	if (cursor_peek(c) < 0x80)
		return true;
	n = utf8_sequence_length(c->s + c->pos, c->len - c->pos);
	if (n == 0)
		return fail(err, "Invalid UTF-8 in address");
	c->pos += n;
	*taken = true;
	*has_utf8 = true;
	return true;
}

/*
 * parse_label - one sub-domain: Let-dig [Ldh-str] (RFC 5321 4.1.2), so no
 * leading or trailing hyphen; with allow_utf8 also a U-label (RFC 6531 3.3).
 */
static bool parse_label(struct cursor *c, bool allow_utf8, bool *has_utf8, struct parse_error *err)
{
	size_t start = c->pos;
	bool label_utf8 = false;
	int last = -1;

	for (;;) {
		int ch = cursor_peek(c);
		bool taken;

		if (is_let_dig(ch) || (ch == '-' && c->pos > start)) {
			c->pos++;
			last = ch;
			continue;
		}
		if (ch < 0x80 || !allow_utf8)
			break;
		if (!take_utf8(c, &taken, &label_utf8, err))
			return false;
		last = 0x80;
	}
	if (c->pos == start || last == '-')
		return fail(err, "Invalid domain name");
	if (label_utf8)
		*has_utf8 = true;
	else if (c->pos - start > DNS_LABEL_MAX)
		return fail_long(err, "Domain label too long");
	return true;
}

/* parse_domain - sub-domain *("." sub-domain), within SMTP_DOMAIN_MAX. */
static bool parse_domain(struct cursor *c, bool allow_utf8, bool *has_utf8, struct parse_error *err)
{
	size_t start = c->pos;

	do {
		if (!parse_label(c, allow_utf8, has_utf8, err))
			return false;
	} while (cursor_take(c, '.'));
	if (c->pos - start > SMTP_DOMAIN_MAX)
		return fail_long(err, "Domain name too long");
	return true;
}

/* RFC 5321 4.1.3 dcontent: printable ASCII except "[", "\" and "]". */
static bool is_dcontent(int c)
{
	return c >= 33 && c <= 126 && c != '[' && c != '\\' && c != ']';
}

/* inet_pton_slice - inet_pton on a slice, which it cannot take directly. */
static bool inet_pton_slice(int family, const unsigned char *s, size_t len)
{
	char text[LITERAL_TEXT_MAX + 1];
	unsigned char addr[16];

	if (len == 0 || len > LITERAL_TEXT_MAX)
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(family, text, addr) == 1;
}

/*
 * general_literal_ok - Standardized-tag ":" 1*dcontent (RFC 5321 4.1.3).
 * The tag is an Ldh-str: letters, digits and hyphens, ending in a Let-dig.
 */
static bool general_literal_ok(const unsigned char *s, size_t len)
{
	const unsigned char *colon = memchr(s, ':', len);
	size_t tag_len, i;

	if (colon == NULL)
		return false;
	tag_len = (size_t)(colon - s);
	if (tag_len == 0 || tag_len + 1 == len || !is_let_dig(s[tag_len - 1]))
		return false;
	for (i = 0; i < tag_len; i++) {
		if (!is_let_dig(s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/*
 * literal_content_ok - the text between the brackets of an address literal
 * (RFC 5321 4.1.3): "IPv6:" and an IPv6 address, a dotted IPv4 address, or
 * a general literal. inet_pton decides what an IP address is; glibc refuses
 * leading zeros in IPv4 parts, which other software may read as octal.
 */
static bool literal_content_ok(const unsigned char *s, size_t len)
{
	static const char ipv6_tag[] = "IPv6:";
	const size_t tag_len = sizeof ipv6_tag - 1;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!is_dcontent(s[i]))
			return false;
	}
	if (len >= tag_len && ascii_case_equal(s, tag_len, ipv6_tag))
		return inet_pton_slice(AF_INET6, s + tag_len, len - tag_len);
	if (memchr(s, ':', len) != NULL)
		return general_literal_ok(s, len);
	return inet_pton_slice(AF_INET, s, len);
}

/* parse_address_literal - "[" content "]", counted as the domain's length. */
static bool parse_address_literal(struct cursor *c, struct parse_error *err)
{
	const unsigned char *close;
	size_t start = c->pos, content_len;

	if (!cursor_take(c, '['))
		return fail(err, "Invalid address literal");
	close = memchr(c->s + c->pos, ']', c->len - c->pos);
	if (close == NULL)
		return fail(err, "Invalid address literal");
	content_len = (size_t)(close - (c->s + c->pos));
	if (!literal_content_ok(c->s + c->pos, content_len))
		return fail(err, "Invalid address literal");
	c->pos += content_len + 1;
	if (c->pos - start > SMTP_DOMAIN_MAX)
		return fail_long(err, "Domain name too long");
	return true;
}

/* parse_atom - 1*atext, where RFC 6531 3.3 adds UTF8-non-ascii. */
static bool parse_atom(struct cursor *c, bool *has_utf8, struct parse_error *err)
{
	size_t start = c->pos;

	for (;;) {
		bool taken;

		if (smtp_atext(cursor_peek(c))) {
			c->pos++;
			continue;
		}
		if (!take_utf8(c, &taken, has_utf8, err))
			return false;
		if (!taken)
			break;
	}
	if (c->pos == start)
		return fail(err, "Invalid local part");
	return true;
}

/* parse_dot_string - Atom *("." Atom): no leading, trailing or double dot. */
static bool parse_dot_string(struct cursor *c, bool *has_utf8, struct parse_error *err)
{
	do {
		if (!parse_atom(c, has_utf8, err))
			return false;
	} while (cursor_take(c, '.'));
	return true;
}

/*
 * parse_quoted_string - DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE
 * (RFC 5321 4.1.2): qtextSMTP is printable ASCII but '"' and '\' (RFC 6531
 * adds UTF-8); a quoted pair is '\' and any printable ASCII or space.
 */
static bool parse_quoted_string(struct cursor *c, bool *has_utf8, struct parse_error *err)
{
	if (!cursor_take(c, '"'))
		return fail(err, "Invalid local part");
	for (;;) {
		int ch = cursor_peek(c);
		bool taken;

		if (ch == '"') {
			c->pos++;
			return true;
		}
		if (ch == '\\') {
			c->pos++;
			ch = cursor_peek(c);
			if (ch < 32 || ch > 126)
				return fail(err, "Invalid quoted local part");
			c->pos++;
		} else if (ch >= 32 && ch <= 126) {
			c->pos++;
		} else {
			if (!take_utf8(c, &taken, has_utf8, err))
				return false;
			if (!taken)
				return fail(err, "Invalid quoted local part");
		}
	}
}

/*
 * parse_source_route - A-d-l ":" (RFC 5321 4.1.2). Source routes are
 * obsolete and must be ignored (RFC 5321 3.3, C.), but must still parse.
 */
static bool parse_source_route(struct cursor *c, bool *has_utf8, struct parse_error *err)
{
	do {
		if (!cursor_take(c, '@'))
			return fail(err, "Invalid source route");
		if (!parse_domain(c, true, has_utf8, err))
			return false;
	} while (cursor_take(c, ','));
	if (!cursor_take(c, ':'))
		return fail(err, "Invalid source route");
	return true;
}

/* copy_mailbox - local part and domain into addr, which both fit in (see top). */
static void copy_mailbox(struct smtp_path *path, const unsigned char *local, const unsigned char *domain)
{
	memcpy(path->addr, local, path->local_len);
	if (path->domain_len > 0) {
		path->addr[path->local_len] = '@';
		memcpy(path->addr + path->local_len + 1, domain, path->domain_len);
		path->addr[path->local_len + 1 + path->domain_len] = '\0';
	} else {
		path->addr[path->local_len] = '\0';
	}
}

/*
 * parse_mailbox_end - after the local part: either "@" domain ">" or, in
 * RCPT only, the ">" of "<Postmaster>" (RFC 5321 4.1.1.3).
 */
static bool parse_mailbox_end(struct cursor *c, enum smtp_path_kind kind, struct smtp_path *path, size_t local_start,
                              struct parse_error *err)
{
	size_t domain_start;

	if (cursor_peek(c) == '>' && kind == SMTP_PATH_FORWARD && !path->has_source_route &&
	    ascii_case_equal(c->s + local_start, path->local_len, "postmaster")) {
		path->is_bare_postmaster = true;
		c->pos++;
		return true;
	}
	if (!cursor_take(c, '@'))
		return fail(err, "Address needs a domain");
	domain_start = c->pos;
	if (cursor_peek(c) == '[') {
		if (!parse_address_literal(c, err))
			return false;
		path->domain_literal = true;
	} else if (!parse_domain(c, true, &path->has_utf8, err)) {
		return false;
	}
	path->domain_len = c->pos - domain_start;
	if (!cursor_take(c, '>'))
		return fail(err, "Address must end with >");
	return true;
}

/* parse_path - the grammar of smtp_path_parse, filling path but addr. */
static bool parse_path(struct cursor *c, enum smtp_path_kind kind, struct smtp_path *path, size_t *local_start,
                       struct parse_error *err)
{
	if (!cursor_take(c, '<'))
		return fail(err, "Address must be enclosed in <>");
	if (cursor_take(c, '>')) {
		if (kind == SMTP_PATH_FORWARD)
			return fail(err, "Null path not allowed here");
		path->is_null = true;
		return true;
	}
	if (cursor_peek(c) == '@') {
		if (!parse_source_route(c, &path->has_utf8, err))
			return false;
		path->has_source_route = true;
	}
	*local_start = c->pos;
	if (cursor_peek(c) == '"') {
		if (!parse_quoted_string(c, &path->has_utf8, err))
			return false;
		path->local_quoted = true;
	} else if (!parse_dot_string(c, &path->has_utf8, err)) {
		return false;
	}
	path->local_len = c->pos - *local_start;
	if (path->local_len > SMTP_LOCAL_PART_MAX)
		return fail_long(err, "Local part too long");
	return parse_mailbox_end(c, kind, path, *local_start, err);
}

bool smtp_path_parse(const char *s, size_t len, enum smtp_path_kind kind, struct smtp_path *path, size_t *consumed,
                     bool *too_long, const char **why)
{
	struct cursor c = {(const unsigned char *)s, len, 0};
	struct parse_error err = {NULL, false};
	size_t local_start = 0;
	bool ok;

	memset(path, 0, sizeof *path);
	ok = parse_path(&c, kind, path, &local_start, &err);
	if (ok && c.pos > SMTP_PATH_MAX)
		ok = fail_long(&err, "Address too long");
	if (ok)
		copy_mailbox(path, c.s + local_start, c.s + c.pos - 1 - path->domain_len);
	else
		memset(path, 0, sizeof *path);
	if (consumed != NULL)
		*consumed = ok ? c.pos : 0;
	if (too_long != NULL)
		*too_long = err.too_long;
	if (why != NULL)
		*why = ok ? NULL : err.why;
	return ok;
}

const char *smtp_path_local(const struct smtp_path *path)
{
	return path->addr;
}

const char *smtp_path_domain(const struct smtp_path *path)
{
	if (path->domain_len == 0)
		return path->addr + path->local_len;
	return path->addr + path->local_len + 1;
}

bool smtp_domain_check(const char *s, size_t len, bool allow_literal, bool allow_utf8)
{
	struct cursor c = {(const unsigned char *)s, len, 0};
	struct parse_error err = {NULL, false};
	bool has_utf8 = false;

	if (len > 0 && s[0] == '[') {
		if (!allow_literal || !parse_address_literal(&c, &err))
			return false;
	} else if (!parse_domain(&c, allow_utf8, &has_utf8, &err)) {
		return false;
	}
	return c.pos == len;
}
