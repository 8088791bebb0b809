/*
 * msg_address.c - the addresses of an RFC 5322 address list.
 *
 * Two steps per entry. Scanning splits the list at top-level commas,
 * skips comments (nested or not), and collects the entry's text: what is
 * inside angle brackets, or else the bare text, with quoted strings kept
 * as they are and any run of white space or comments outside them kept as
 * one space. Text outside angle brackets is a display name when angle
 * brackets follow, and is then dropped; a group's name ends at ":", the
 * group at ";". Then the collected text is read as an addr-spec (RFC 5322
 * 3.4.1): a dot-atom or a quoted string, "@", a domain of letters, digits,
 * hyphens and dots (or UTF-8, RFC 6532), or an address literal; spaces
 * only next to "." and "@" (the obsolete forms of 4.4). An obsolete source
 * route inside angle brackets ("<@a,@b:user@dom>") is cut.
 *
 * msg_address_list_local also takes an entry that is a local part alone
 * ("root", "Cron <root>"), as sendmail -t must for the To: lines scripts
 * write; everything else is as strict.
 *
 * Failing closed is the point: whatever cannot be read as a list of
 * local@domain makes the whole list malformed, so that a From: checked
 * here is the From: a mail reader shows.
 */
#include "msg/msg_address.h"

#include <string.h>

#include "smtp/smtp_address.h"

/* Collected text may be a little longer than the address it holds (quotes, spaces). */
#define ENTRY_MAX (2 * MSG_ADDRESS_MAX)

struct entry {
	char plain[ENTRY_MAX + 1]; /* outside <>: an addr-spec, or a display name */
	size_t plain_len;
	char angle[ENTRY_MAX + 1]; /* inside <> */
	size_t angle_len;
	bool plain_overflow, angle_overflow; /* longer than ENTRY_MAX: only an error if used */
	bool seen_angle;                     /* a <...> was opened */
	bool angle_closed;                   /* ... and closed: nothing but comments may follow */
};

struct list_scan {
	struct entry e;
	int comment_depth;
	bool in_quote;
	bool in_angle;
	bool in_group;
	bool bare_local; /* msg_address_list_local: "root" alone is an address */
	size_t count;
	msg_address_fn *fn;
	void *ctx;
};

static bool entry_append(struct list_scan *ls, char c)
{
	struct entry *e = &ls->e;
	if (e->angle_closed && !ls->in_angle)
		return c == ' '; /* "<a@b> c" is not one address */
	char *buf = ls->in_angle ? e->angle : e->plain;
	size_t *len = ls->in_angle ? &e->angle_len : &e->plain_len;
	if (c == ' ' && (*len == 0 || buf[*len - 1] == ' '))
		return true;
	if (*len >= ENTRY_MAX) {
		*(ls->in_angle ? &e->angle_overflow : &e->plain_overflow) = true;
		return true;
	}
	buf[(*len)++] = c;
	return true;
}

/* ---- Reading one addr-spec ---- */

/* is_atext - atext, or UTF-8 (RFC 6532 3.2). */
static bool is_atext(unsigned char c)
{
	return c >= 0x80 || smtp_atext(c);
}

static bool is_domain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c >= 0x80;
}

/* drop_spaces - remove the spaces next to "." and "@" (obsolete CFWS); false if another is left. */
static bool drop_spaces(const char *in, size_t len, char *out, size_t *out_len)
{
	bool quoted = false;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (quoted) {
			out[n++] = c;
			if (c == '\\' && i + 1 < len)
				out[n++] = in[++i];
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == '"')
			quoted = true;
		if (c == ' ') {
			char before = n > 0 ? out[n - 1] : '.';
			char after = i + 1 < len ? in[i + 1] : '.';
			if (before != '.' && before != '@' && after != '.' && after != '@')
				return false;
			continue;
		}
		out[n++] = c;
	}
	*out_len = n;
	return true;
}

/* read_word - an atom or a quoted string at s[i], unquoted onto out; the index after it, or 0. */
static size_t read_word(const char *s, size_t len, size_t i, char *out, size_t *n)
{
	size_t start = *n;
	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\' && i + 1 < len)
				i++;
			out[(*n)++] = s[i];
		}
		return i<len && * n> start ? i + 1 : 0;
	}
	for (; i < len && is_atext((unsigned char)s[i]); i++)
		out[(*n)++] = s[i];
	return *n > start ? i : 0;
}

/*
 * read_local - words (atoms or quoted strings) joined by single dots, as in
 * a dot-atom, a quoted string, or the obsolete "john"."doe" (RFC 5322
 * 3.4.1, 4.4), unquoted into out; the index of the "@" after it (len when
 * the text ends there), or 0.
 */
static size_t read_local(const char *s, size_t len, char *out, size_t *out_len)
{
	size_t i = 0, n = 0;
	for (;;) {
		i = read_word(s, len, i, out, &n);
		if (i == 0)
			return 0;
		if (i >= len || s[i] == '@')
			break;
		if (s[i] != '.')
			return 0;
		out[n++] = '.';
		i++;
	}
	*out_len = n;
	return i;
}

/* domain_ok - labels of letters, digits, hyphens (and UTF-8) between dots, or "[...]". */
static bool domain_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	if (s[0] == '[')
		return len > 2 && s[len - 1] == ']' && !memchr(s + 1, '[', len - 2) && !memchr(s + 1, ']', len - 2) &&
		       !memchr(s, '\\', len);
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (is_domain_char((unsigned char)s[i])) {
			label++;
		} else {
			return false;
		}
	}
	return label > 0;
}

/*
 * addr_spec - the collected text as local@domain (unquoted) into out, or
 * with bare_local as a local part alone, the local part's length in
 * *out_local; false if it is neither.
 */
static bool addr_spec(const char *text, size_t len, bool bare_local, char out[MSG_ADDRESS_MAX + 1], size_t *out_local)
{
	char compact[ENTRY_MAX + 1], local[ENTRY_MAX + 1];
	size_t compact_len, local_len = 0;
	if (!drop_spaces(text, len, compact, &compact_len))
		return false;
	size_t at = read_local(compact, compact_len, local, &local_len);
	*out_local = local_len;
	if (bare_local && at > 0 && at == compact_len && local_len <= MSG_ADDRESS_MAX) {
		memcpy(out, local, local_len);
		out[local_len] = '\0';
		return true;
	}
	if (at == 0 || at >= compact_len || compact[at] != '@')
		return false;
	const char *domain = compact + at + 1;
	size_t domain_len = compact_len - at - 1;
	if (!domain_ok(domain, domain_len) || local_len + 1 + domain_len > MSG_ADDRESS_MAX)
		return false;
	memcpy(out, local, local_len);
	out[local_len] = '@';
	memcpy(out + local_len + 1, domain, domain_len);
	out[local_len + 1 + domain_len] = '\0';
	return true;
}

/* entry_finish - hand over the entry's address; false if malformed or stopped. */
static bool entry_finish(struct list_scan *ls)
{
	struct entry *e = &ls->e;
	const char *text = e->seen_angle ? e->angle : e->plain;
	size_t len = e->seen_angle ? e->angle_len : e->plain_len;
	while (len > 0 && text[len - 1] == ' ')
		len--;
	while (len > 0 && text[0] == ' ') {
		text++;
		len--;
	}
	bool ok = !(e->seen_angle ? e->angle_overflow : e->plain_overflow);
	if (ok && e->seen_angle && len > 0 && text[0] == '@') {
		/* RFC 5322 4.4 obs-route: "@a,@b:" before the address. */
		const char *colon = memchr(text, ':', len);
		ok = colon != NULL;
		if (ok) {
			len -= (size_t)(colon + 1 - text);
			text = colon + 1;
		}
	}
	char address[MSG_ADDRESS_MAX + 1];
	size_t local_len = 0;
	if (ok && (len > 0 || e->seen_angle)) {
		/* An empty entry (",," or an empty group) names nobody; "<>" is not an address. */
		ok = addr_spec(text, len, ls->bare_local, address, &local_len) && ls->fn(ls->ctx, address, local_len);
		if (ok)
			ls->count++;
	}
	memset(e, 0, sizeof *e);
	return ok;
}

/* ---- Scanning the list ---- */

/* scan_quoted - one character inside a quoted string, kept with its quoting; returns how many were used. */
static size_t scan_quoted(struct list_scan *ls, const char *s, size_t i, size_t len, bool *ok)
{
	if (s[i] == '\\' && i + 1 < len) {
		*ok = entry_append(ls, s[i]) && entry_append(ls, s[i + 1]);
		return 2;
	}
	if (s[i] == '"')
		ls->in_quote = false;
	*ok = entry_append(ls, s[i]);
	return 1;
}

/* scan_comment - one character inside a comment, which may nest. */
static size_t scan_comment(struct list_scan *ls, const char *s, size_t i, size_t len)
{
	if (s[i] == '\\' && i + 1 < len)
		return 2;
	if (s[i] == '(')
		ls->comment_depth++;
	else if (s[i] == ')' && --ls->comment_depth == 0)
		entry_append(ls, ' '); /* a comment separates like white space */
	return 1;
}

/* scan_plain - one character outside quotes and comments; false if malformed. */
static bool scan_plain(struct list_scan *ls, char c)
{
	switch (c) {
	case '(':
		ls->comment_depth++;
		return true;
	case '"':
		ls->in_quote = true;
		return entry_append(ls, c);
	case '<':
		if (ls->in_angle || ls->e.seen_angle)
			return false;
		ls->in_angle = ls->e.seen_angle = true;
		return true;
	case '>':
		if (!ls->in_angle)
			return false;
		ls->in_angle = false;
		ls->e.angle_closed = true;
		return true;
	case ')':
		return false;
	case ' ':
	case '\t':
		return entry_append(ls, ' ');
	default:
		break;
	}
	if (ls->in_angle)
		return entry_append(ls, c);
	if (c == ',')
		return entry_finish(ls);
	if (c == ':') {
		/* A group: what came before was its name, a phrase (no "@"). */
		if (ls->in_group || ls->e.seen_angle || memchr(ls->e.plain, '@', ls->e.plain_len))
			return false;
		memset(&ls->e, 0, sizeof ls->e);
		ls->in_group = true;
		return true;
	}
	if (c == ';') {
		if (!ls->in_group)
			return false;
		ls->in_group = false;
		return entry_finish(ls);
	}
	return entry_append(ls, c);
}

/* address_list - msg_address_list, with or without bare local parts. */
static bool address_list(const char *value, size_t len, bool bare_local, msg_address_fn *fn, void *ctx, size_t *count)
{
	struct list_scan ls;
	memset(&ls, 0, sizeof ls);
	ls.bare_local = bare_local;
	ls.fn = fn;
	ls.ctx = ctx;
	*count = 0;
	/* Line ends and NUL have no place in a field value, escaped or not. */
	if (memchr(value, '\0', len) || memchr(value, '\r', len) || memchr(value, '\n', len))
		return false;
	bool ok = true;
	size_t i = 0;
	while (ok && i < len) {
		if (ls.in_quote)
			i += scan_quoted(&ls, value, i, len, &ok);
		else if (ls.comment_depth > 0)
			i += scan_comment(&ls, value, i, len);
		else
			ok = scan_plain(&ls, value[i++]);
	}
	if (ok && (ls.in_quote || ls.comment_depth > 0 || ls.in_angle || ls.in_group))
		ok = false;
	if (ok)
		ok = entry_finish(&ls);
	*count = ls.count;
	return ok;
}

bool msg_address_list(const char *value, size_t len, msg_address_fn *fn, void *ctx, size_t *count)
{
	return address_list(value, len, false, fn, ctx, count);
}

bool msg_address_list_local(const char *value, size_t len, msg_address_fn *fn, void *ctx, size_t *count)
{
	return address_list(value, len, true, fn, ctx, count);
}
