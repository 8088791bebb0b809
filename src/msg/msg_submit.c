/*
 * msg_submit.c - a message as a local program writes it to sendmail, made
 * ready for SMTP submission (see msg_submit.h).
 *
 * One pass over the lines. A line is what comes before a LF, without one
 * CR just before the LF; the last line may lack its LF. Header fields are
 * kept or dropped whole (with their fold lines); the values of the address
 * fields are unfolded (CR LF taken out, the white space kept, RFC 5322
 * 2.2.3) and read with msg_address_list_local when the field ends.
 *
 * Bcc: goes whether or not the recipients come from the header: the
 * message must not tell its other readers who else got it (Postfix's
 * cleanup does the same).
 *
 * Limits: memory is the input's size plus the added From: and separator;
 * nothing else is bounded here (the caller bounds the input).
 */
#include "msg/msg_submit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg_address.h"
#include "smtp/smtp_address.h"
#include "util/util_base64.h"
#include "util/util_str.h"

/* The display name of an added From: is cut to this many bytes. */
#define FROM_NAME_MAX 128
/* Bytes of text per RFC 2047 encoded word: 60 base64 characters, within the 75 an encoded word may have. */
#define ENCODED_CHUNK 45

struct buf {
	char *p;
	size_t len, cap;
};

/* What a header field is to the submission. */
enum field_kind {
	FIELD_OTHER,
	FIELD_FROM,
	FIELD_ADDRESSES, /* To:, Cc: */
	FIELD_BCC,       /* Bcc: read, then dropped */
	FIELD_RESENT,    /* Resent-To:, Resent-Cc: */
	FIELD_RESENT_BCC,
};

struct prepare {
	const struct msg_submit_options *options;
	struct msg_submit *out;
	struct buf content;
	enum field_kind kind; /* of the field being read */
	char name[MSG_SUBMIT_FIELD_MAX + 1];
	struct buf value;         /* its unfolded value, for address fields */
	struct buf rcpts, resent; /* addresses: local part, NUL, domain ("" for none), NUL */
	bool has_from, has_resent;
	bool failed;
};

static void buf_add(struct buf *b, const char *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

/* next_line - the line at *at into *line (no LF, no CR before it); false at the end. */
static bool next_line(const char *in, size_t len, size_t *at, const char **line, size_t *line_len)
{
	if (*at >= len)
		return false;
	const char *start = in + *at;
	const char *lf = memchr(start, '\n', len - *at);
	size_t n = lf ? (size_t)(lf - start) : len - *at;
	*at += n + (lf ? 1 : 0);
	if (lf && n > 0 && start[n - 1] == '\r')
		n--;
	*line = start;
	*line_len = n;
	return true;
}

/* field_name_len - bytes of the field name if the line starts a field ("Name:", obsolete blanks before ':'), else 0. */
static size_t field_name_len(const char *line, size_t len)
{
	size_t n = 0;
	while (n < len && line[n] > ' ' && line[n] < 0x7f && line[n] != ':')
		n++;
	size_t colon = n;
	while (colon < len && (line[colon] == ' ' || line[colon] == '\t'))
		colon++;
	return n > 0 && colon < len && line[colon] == ':' ? n : 0;
}

static bool is_fold(const char *line, size_t len)
{
	return len > 0 && (line[0] == ' ' || line[0] == '\t');
}

static enum field_kind field_kind_of(const char *name, size_t len)
{
	static const struct {
		const char *name;
		enum field_kind kind;
	} kinds[] = {
	        {"from", FIELD_FROM},
	        {"to", FIELD_ADDRESSES},
	        {"cc", FIELD_ADDRESSES},
	        {"bcc", FIELD_BCC},
	        {"resent-to", FIELD_RESENT},
	        {"resent-cc", FIELD_RESENT},
	        {"resent-bcc", FIELD_RESENT_BCC},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (str_ieq(name, len, kinds[i].name))
			return kinds[i].kind;
	return FIELD_OTHER;
}

static bool field_has_addresses(enum field_kind kind)
{
	return kind == FIELD_ADDRESSES || kind == FIELD_BCC || kind == FIELD_RESENT || kind == FIELD_RESENT_BCC;
}

static bool field_dropped(enum field_kind kind)
{
	return kind == FIELD_BCC || kind == FIELD_RESENT_BCC;
}

/* take_address - msg_address_fn: one recipient into its list, local part and domain apart. */
static bool take_address(void *ctx, const char *address, size_t local_len)
{
	const char *domain = address[local_len] == '@' ? address + local_len + 1 : "";
	buf_add(ctx, address, local_len);
	buf_add(ctx, "", 1);
	buf_add(ctx, domain, strlen(domain) + 1);
	return true;
}

/* field_end - the field being read is complete: read its addresses, if it has any wanted. */
static void field_end(struct prepare *pr)
{
	if (pr->failed || !pr->options->recipients || !field_has_addresses(pr->kind)) {
		pr->value.len = 0;
		return;
	}
	bool resent = pr->kind == FIELD_RESENT || pr->kind == FIELD_RESENT_BCC;
	struct buf *list = resent ? &pr->resent : &pr->rcpts;
	size_t count, before = list->len;
	pr->has_resent |= resent;
	if (!msg_address_list_local(pr->value.p ? pr->value.p : "", pr->value.len, take_address, list, &count)) {
		list->len = before;
		str_copy(pr->out->bad_field, sizeof pr->out->bad_field, pr->name);
		pr->failed = true;
	}
	pr->value.len = 0;
}

/* field_start - a line that starts a field: end the one before, keep or drop this one. */
static void field_start(struct prepare *pr, const char *line, size_t len, size_t name_len)
{
	field_end(pr);
	pr->kind = field_kind_of(line, name_len);
	str_copy_n(pr->name, sizeof pr->name, line, name_len);
	pr->has_from |= pr->kind == FIELD_FROM;
	if (field_has_addresses(pr->kind)) {
		const char *colon = memchr(line, ':', len);
		buf_add(&pr->value, colon + 1, len - (size_t)(colon + 1 - line));
	}
}

/* header_line - one line of the header: a field's first line or a fold line. */
static void header_line(struct prepare *pr, const char *line, size_t len, size_t name_len)
{
	if (name_len > 0)
		field_start(pr, line, len, name_len);
	else if (field_has_addresses(pr->kind))
		buf_add(&pr->value, line, len);
	if (field_dropped(pr->kind))
		return;
	buf_add(&pr->content, line, len);
	buf_add(&pr->content, "\r\n", 2);
}

/* header_end - after the last field: the From: field if none came, then the empty line. */
static void header_end(struct prepare *pr)
{
	field_end(pr);
	if (!pr->has_from && pr->options->from) {
		buf_add(&pr->content, "From: ", 6);
		buf_add(&pr->content, pr->options->from, strlen(pr->options->from));
		buf_add(&pr->content, "\r\n", 2);
	}
	buf_add(&pr->content, "\r\n", 2);
}

/* rcpts_out - the list (local part and domain, each NUL-terminated) as the out array. */
static void rcpts_out(const struct buf *list, struct msg_submit *out)
{
	size_t count = 0;
	for (size_t i = 0; i < list->len; i++)
		count += list->p[i] == '\0';
	out->rcpts = xcalloc(count / 2 + 1, sizeof *out->rcpts);
	for (size_t at = 0; at < list->len;) {
		const char *local = list->p + at, *domain = local + strlen(local) + 1;
		struct msg_submit_rcpt *r = &out->rcpts[out->rcpt_count++];
		size_t local_len = strlen(local), domain_len = strlen(domain);
		r->address = xcalloc(1, local_len + 1 + domain_len + 1);
		memcpy(r->address, local, local_len);
		if (domain_len > 0) {
			r->address[local_len] = '@';
			memcpy(r->address + local_len + 1, domain, domain_len);
		}
		r->local_len = local_len;
		at += local_len + 1 + domain_len + 1;
	}
}

/* read_header - the header's lines from *at; leaves *at at the first body line, the empty line passed. */
static void read_header(struct prepare *pr, const char *in, size_t len, size_t *at)
{
	const char *line;
	size_t line_len, before = *at;
	bool first = true, in_field = false;
	while (next_line(in, len, at, &line, &line_len)) {
		size_t name_len = field_name_len(line, line_len);
		if (first && name_len == 0 && line_len >= 5 && memcmp(line, "From ", 5) == 0) {
			before = *at; /* an mbox separator, not part of the message */
			first = false;
			continue;
		}
		if (line_len == 0)
			return; /* the empty line that ends the header */
		if (name_len == 0 && !(in_field && is_fold(line, line_len))) {
			*at = before; /* not a header line: the body starts here */
			return;
		}
		header_line(pr, line, line_len, name_len);
		before = *at;
		first = false;
		in_field = true;
	}
}

static bool has_high_byte(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

bool msg_submit_prepare(const char *in, size_t len, const struct msg_submit_options *options, struct msg_submit *out)
{
	memset(out, 0, sizeof *out);
	struct prepare pr = {.options = options, .out = out};
	size_t at = 0;
	const char *line;
	size_t line_len;
	read_header(&pr, in, len, &at);
	header_end(&pr);
	while (next_line(in, len, &at, &line, &line_len)) {
		buf_add(&pr.content, line, line_len);
		buf_add(&pr.content, "\r\n", 2);
	}
	out->content = pr.content.p;
	out->len = pr.content.len;
	out->eight_bit = has_high_byte(out->content, out->len);
	if (!pr.failed && options->recipients)
		rcpts_out(pr.has_resent ? &pr.resent : &pr.rcpts, out);
	free(pr.value.p);
	free(pr.rcpts.p);
	free(pr.resent.p);
	return !pr.failed;
}

void msg_submit_free(struct msg_submit *submit)
{
	for (size_t i = 0; i < submit->rcpt_count; i++)
		free(submit->rcpts[i].address);
	free(submit->rcpts);
	free(submit->content);
	memset(submit, 0, sizeof *submit);
}

long msg_submit_dot_end(const char *buf, size_t len, size_t *scan)
{
	size_t at = *scan;
	while (at < len) {
		const char *lf = memchr(buf + at, '\n', len - at);
		if (!lf)
			break;
		size_t n = (size_t)(lf - (buf + at));
		if ((n == 1 && buf[at] == '.') || (n == 2 && buf[at] == '.' && buf[at + 1] == '\r'))
			return (long)at;
		at += n + 1;
	}
	*scan = at;
	return -1;
}

size_t msg_submit_crlf(const char *in, size_t len, bool *cr, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && !*cr)
			out[n++] = '\r';
		out[n++] = in[i];
		*cr = in[i] == '\r';
	}
	return n;
}

/* ---- The From: field sendmail adds ---- */

/* clean_name - name without control characters, blanks at the ends trimmed, cut at FROM_NAME_MAX (not inside UTF-8). */
static size_t clean_name(const char *name, char out[FROM_NAME_MAX + 1])
{
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)name;
	for (; *p && n < FROM_NAME_MAX; p++)
		if (*p >= 0x20 && *p != 0x7f && !(n == 0 && *p == ' '))
			out[n++] = (char)*p;
	if (*p) {
		/* Cut short: do not keep half a UTF-8 character (a lead byte and up to 3 more). */
		size_t back = 0;
		while (back < 3 && back < n && ((unsigned char)out[n - 1 - back] & 0xc0) == 0x80)
			back++;
		if (back < n && (unsigned char)out[n - 1 - back] >= 0xc0)
			n -= back + 1;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

/* encoded_words - RFC 2047 "=?UTF-8?B?...?=" words, split between characters, into b. */
static bool encoded_words(const char *name, size_t len, struct buf *b)
{
	size_t at = 0;
	while (at < len) {
		size_t n = len - at < ENCODED_CHUNK ? len - at : ENCODED_CHUNK, cut = n;
		/* A UTF-8 character has at most 3 continuation bytes; past that the text is not UTF-8. */
		while (at + n < len && cut - n < 3 && ((unsigned char)name[at + n] & 0xc0) == 0x80)
			n--;
		if (at + n < len && ((unsigned char)name[at + n] & 0xc0) == 0x80)
			n = cut;
		char word[128];
		if (base64_encode(name + at, n, word, sizeof word) == 0)
			return false;
		buf_add(b, at ? " =?UTF-8?B?" : "=?UTF-8?B?", at ? 11 : 10);
		buf_add(b, word, strlen(word));
		buf_add(b, "?=", 2);
		at += n;
	}
	return true;
}

/* phrase - the name as a display name: atoms as they are, else a quoted string, else encoded words. */
static bool phrase(const char *name, size_t len, struct buf *b)
{
	if (has_high_byte(name, len))
		return encoded_words(name, len, b);
	bool plain = true;
	for (size_t i = 0; i < len && plain; i++)
		plain = name[i] == ' ' || smtp_atext((unsigned char)name[i]);
	if (plain) {
		buf_add(b, name, len);
		return true;
	}
	buf_add(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '"' || name[i] == '\\')
			buf_add(b, "\\", 1);
		buf_add(b, name + i, 1);
	}
	buf_add(b, "\"", 1);
	return true;
}

bool msg_submit_from_value(const char *name, const char *address, char *out, size_t size)
{
	char clean[FROM_NAME_MAX + 1];
	size_t len = name ? clean_name(name, clean) : 0;
	if (len == 0)
		return str_copy(out, size, address);
	struct buf b = {0};
	bool ok = phrase(clean, len, &b);
	buf_add(&b, " <", 2);
	buf_add(&b, address, strlen(address));
	buf_add(&b, ">", 1);
	ok = ok && str_copy(out, size, b.p);
	free(b.p);
	return ok;
}
