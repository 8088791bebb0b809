/*
 * msg_address.c - the addresses of an RFC 5322 address list.
 *
 * One pass over the value. Outside angle brackets, text is collected as a
 * bare addr-spec (in case no angle brackets follow) and dropped if they
 * do: it was a display name. Comments, nested or not, are skipped; quoted
 * strings keep their spaces and lose their quotes and backslashes; other
 * white space is dropped (RFC 5322 allows CFWS around the "@" and dots in
 * its obsolete forms). A group's name ends at ":", the group at ";". An
 * obsolete source route inside angle brackets ("<@a,@b:user@dom>") is cut.
 *
 * Failing closed is the point: whatever cannot be read as a list of
 * local@domain makes the whole list malformed.
 */
#include "msg/msg_address.h"

#include <string.h>

struct entry {
	char plain[MSG_ADDRESS_MAX + 1]; /* outside <>: an addr-spec, or a display name */
	size_t plain_len;
	bool plain_overflow;
	char angle[MSG_ADDRESS_MAX + 1]; /* inside <> */
	size_t angle_len;
	bool angle_overflow;
	bool seen_angle;
};

struct list_scan {
	struct entry e;
	int comment_depth;
	bool in_quote;
	bool in_angle;
	bool in_group;
	size_t count;
	msg_address_fn *fn;
	void *ctx;
};

static void entry_append(struct list_scan *ls, char c)
{
	struct entry *e = &ls->e;
	if (ls->in_angle) {
		if (e->angle_len < MSG_ADDRESS_MAX)
			e->angle[e->angle_len++] = c;
		else
			e->angle_overflow = true;
	} else {
		if (e->plain_len < MSG_ADDRESS_MAX)
			e->plain[e->plain_len++] = c;
		else
			e->plain_overflow = true;
	}
}

/* entry_finish - hand over the entry's address; false if malformed or stopped. */
static bool entry_finish(struct list_scan *ls)
{
	struct entry *e = &ls->e;
	char *addr = e->seen_angle ? e->angle : e->plain;
	size_t len = e->seen_angle ? e->angle_len : e->plain_len;
	bool overflow = e->seen_angle ? e->angle_overflow : e->plain_overflow;
	bool ok = true;
	addr[len] = '\0';
	if (overflow) {
		ok = false;
	} else if (len > 0) {
		if (addr[0] == '@') {
			/* RFC 5322 4.4 obs-route: "@a,@b:" before the address. */
			char *colon = strchr(addr, ':');
			addr = colon ? colon + 1 : addr + len;
		}
		const char *at = strrchr(addr, '@');
		if (!at || at == addr || at[1] == '\0')
			ok = false;
		else if (!ls->fn(ls->ctx, addr))
			ok = false;
		else
			ls->count++;
	}
	memset(e, 0, sizeof *e);
	return ok;
}

/* scan_quoted - one character inside a quoted string; returns how many were used. */
static size_t scan_quoted(struct list_scan *ls, const char *s, size_t i, size_t len)
{
	if (s[i] == '\\' && i + 1 < len) {
		entry_append(ls, s[i + 1]);
		return 2;
	}
	if (s[i] == '"')
		ls->in_quote = false;
	else
		entry_append(ls, s[i]);
	return 1;
}

/* scan_comment - one character inside a comment, which may nest. */
static size_t scan_comment(struct list_scan *ls, const char *s, size_t i, size_t len)
{
	if (s[i] == '\\' && i + 1 < len)
		return 2;
	if (s[i] == '(')
		ls->comment_depth++;
	else if (s[i] == ')')
		ls->comment_depth--;
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
		return true;
	case '<':
		if (ls->in_angle || ls->e.seen_angle)
			return false;
		ls->in_angle = ls->e.seen_angle = true;
		return true;
	case '>':
		if (!ls->in_angle)
			return false;
		ls->in_angle = false;
		return true;
	case ')':
		return false;
	case ' ':
	case '\t':
		return true;
	default:
		break;
	}
	if (ls->in_angle) {
		entry_append(ls, c);
		return true;
	}
	if (c == ',')
		return entry_finish(ls);
	if (c == ':') {
		/* A group: what came before was its name. */
		if (ls->in_group || ls->e.seen_angle)
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
	entry_append(ls, c);
	return true;
}

bool msg_address_list(const char *value, size_t len, msg_address_fn *fn, void *ctx, size_t *count)
{
	struct list_scan ls;
	memset(&ls, 0, sizeof ls);
	ls.fn = fn;
	ls.ctx = ctx;
	bool ok = true;
	size_t i = 0;
	while (ok && i < len) {
		if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n')
			ok = false;
		else if (ls.in_quote)
			i += scan_quoted(&ls, value, i, len);
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
