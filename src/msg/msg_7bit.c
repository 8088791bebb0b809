/*
 * msg_7bit.c - 8-bit content to 7-bit for peers without 8BITMIME (RFC 6152
 * 3, RFC 1652 3): walk the MIME structure (RFC 2045, RFC 2046) and re-encode
 * as quoted-printable (RFC 2045 6.7) the leaf parts whose bodies are not
 * 7bit data (RFC 2045 2.7).
 *
 * The walk. An entity is a header, an empty line and a body. Its header must
 * be 7bit data: 8-bit bytes there would need RFC 2047 or RFC 2231 encoding
 * (which means guessing a charset) or SMTPUTF8 (RFC 6532), so they are
 * refused. A body that already is 7bit data is copied as it is, whatever
 * the entity's type: a part is only looked into when it has to be. Then:
 *   - multipart (with a boundary): the body is cut at its delimiter lines
 *     (RFC 2046 5.1.1) and each part is an entity one level down. The
 *     preamble, the epilogue and the delimiter lines are copied and must be
 *     7bit data already: readers ignore preamble and epilogue, but changing
 *     or dropping them is not ours to do, so 8-bit bytes there are refused;
 *   - message/rfc822: the body is a message, an entity one level down;
 *   - other message/ types may not be encoded (RFC 2046 5.2.2-5.2.4), so
 *     they are refused, except message/global and its kin (RFC 6532 3.5,
 *     RFC 6533 6), which may be and are leaves;
 *   - anything else is a leaf: quoted-printable if its encoding is 7bit,
 *     8bit or none; refused if it is binary, base64, quoted-printable or
 *     unknown (their bodies cannot hold such bytes, the part is broken).
 * On multipart and message/rfc822 parts an 8bit encoding becomes 7bit; a
 * binary one is refused (RFC 2045 6.4: a binary container may hold lines of
 * any length, which we would not know how to cut).
 *
 * Non-MIME messages. A message (or part) with no Content-Type is text/plain
 * in US-ASCII (RFC 2045 5.2), which its 8-bit bytes contradict. Labelling the
 * quoted-printable result US-ASCII would be wrong and guessing a charset
 * (UTF-8 when the bytes happen to decode) would be inventing, so it gets
 * "Content-Type: text/plain; charset=unknown-8bit", as RFC 1428 3 asks of a
 * gateway that knows nothing of the charset. A message whose header we change
 * gets "MIME-Version: 1.0" if it has none, so the fields we add count (RFC
 * 2045 4). A Content-Type is taken as meant even without MIME-Version, as
 * readers do. A text/plain Content-Type without charset is left alone: the
 * label was as wrong before.
 *
 * Quoted-printable. =, controls other than TAB, DEL and bytes >= 0x80 become
 * =XX (upper case); CRLF stays a hard line break; a CR or LF on its own is
 * encoded; a space or tab before a line break or the end is encoded (RFC 2045
 * 6.7 (3)); soft line breaks keep every line within 76 characters and never
 * cut an =XX; "From " at the start of a line is written "=46rom " so that mbox
 * files do not mangle it (RFC 2049 3 (8)). A leading "." needs nothing: SMTP
 * dot-stuffs on the way out.
 *
 * Bounds. Recursion goes at most MSG_7BIT_DEPTH_MAX levels; each level reads
 * its bytes a constant number of times, so the work is linear in the size
 * times the depth. The input is read in place (one evbuffer_pullup); the
 * output goes through a 4 KiB staging buffer into a scratch evbuffer that is
 * moved into out only on success. A boundary is kept up to BOUNDARY_MAX
 * bytes. Nothing is fatal: a reason comes back instead.
 *
 * Signatures: a DKIM signature over a part we re-encode no longer verifies
 * (RFC 6376 5.3 asks signers to send 7-bit for that reason).
 */
#include "msg/msg_7bit.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5322 2.1.1, RFC 2045 2.7: octets in a line, without its CRLF. */
#define LINE_MAX_OCTETS 998
/* RFC 2045 6.7 (5): characters in an encoded line, without its CRLF. */
#define QP_LINE_MAX 76
/* RFC 2046 5.1.1 allows 70 characters; a longer one is taken, up to this. */
#define BOUNDARY_MAX  200
#define NAME_MAX_KEPT 40
#define STAGE_SIZE    4096

enum dirt {
	CLEAN = 0,
	DIRT_8BIT,
	DIRT_NUL,
	DIRT_BARE,
	DIRT_LONG,
};

enum ct_kind {
	KIND_LEAF,
	KIND_MULTIPART,
	KIND_RFC822,
	KIND_MESSAGE_OTHER, /* message/ that may not be encoded */
};

enum cte {
	CTE_NONE,
	CTE_7BIT,
	CTE_8BIT,
	CTE_BINARY,
	CTE_QP,
	CTE_BASE64,
	CTE_OTHER,
};

/* What an entity is, for convert_entity */
#define IS_MESSAGE   1u /* a message: MIME-Version belongs in its header */
#define DIGEST_CHILD 2u /* a part of multipart/digest: message/rfc822 by default (RFC 2046 5.1.5) */

struct entity {
	size_t start, end; /* the entity in the message */
	size_t head_end;   /* the header fields end here (before the empty line) */
	size_t body;       /* the body starts here; end when there is no empty line */
	bool ct_present, mime_version;
	enum ct_kind kind;
	bool digest;
	char subtype[NAME_MAX_KEPT + 1]; /* for a refused message/ type */
	bool cte_present;
	enum cte cte;
	char cte_name[NAME_MAX_KEPT + 1];
	char boundary[BOUNDARY_MAX + 1];
	size_t boundary_len; /* 0: none usable */
};

struct conv {
	const char *m;        /* the whole message */
	struct evbuffer *out; /* scratch: becomes the caller's on success */
	char stage[STAGE_SIZE];
	size_t staged;
	bool no_memory;
	char *why;
	size_t why_size;
};

static const char hex[] = "0123456789ABCDEF";

/* ---- output ---- */

static void flush(struct conv *c)
{
	if (c->staged > 0 && evbuffer_add(c->out, c->stage, c->staged) != 0)
		c->no_memory = true;
	c->staged = 0;
}

static void put(struct conv *c, const char *s, size_t n)
{
	if (n > sizeof c->stage - c->staged) {
		flush(c);
		if (n > sizeof c->stage) {
			if (evbuffer_add(c->out, s, n) != 0)
				c->no_memory = true;
			return;
		}
	}
	memcpy(c->stage + c->staged, s, n);
	c->staged += n;
}

static void put_str(struct conv *c, const char *s)
{
	put(c, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static bool refuse(struct conv *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why_size > 0) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->why_size, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* ---- bytes ---- */

/* dirt_of - the first reason s[0..len), which starts a line, is not 7bit data (RFC 2045 2.7). */
static enum dirt dirt_of(const char *s, size_t len)
{
	size_t line = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x80)
			return DIRT_8BIT;
		if (ch == '\0')
			return DIRT_NUL;
		if (ch == '\r' || ch == '\n') {
			if (ch == '\n' || i + 1 == len || s[i + 1] != '\n')
				return DIRT_BARE;
			i++;
			line = 0;
		} else if (++line > LINE_MAX_OCTETS) {
			return DIRT_LONG;
		}
	}
	return CLEAN;
}

static const char *dirt_text(enum dirt d)
{
	switch (d) {
	case DIRT_8BIT:
		return "8-bit bytes";
	case DIRT_NUL:
		return "a NUL byte";
	case DIRT_BARE:
		return "a bare CR or LF";
	case DIRT_LONG:
		return "a line longer than 998 octets";
	case CLEAN:
		break;
	}
	return "nothing";
}

static bool has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

static int ascii_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* ieq - s[0..len) is word, ignoring ASCII case. */
static bool ieq(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);

	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != word[i])
			return false;
	return true;
}

static void keep_name(char *dst, const char *s, size_t len)
{
	if (len > NAME_MAX_KEPT)
		len = NAME_MAX_KEPT;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* ---- structured field values (RFC 2045 5.1, 6.1; RFC 5322 3.2.2) ---- */

static bool is_fws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* skip_cfws - white space, folding and (nested) comments. */
static void skip_cfws(const char *s, size_t len, size_t *i)
{
	size_t depth = 0;

	while (*i < len) {
		char ch = s[*i];

		if (ch == '(') {
			depth++;
		} else if (depth > 0 && ch == ')') {
			depth--;
		} else if (depth > 0 && ch == '\\') {
			if (*i + 1 < len)
				(*i)++;
		} else if (depth == 0 && !is_fws(ch)) {
			return;
		}
		(*i)++;
	}
}

/* token - RFC 2045 5.1: printable US-ASCII but tspecials; returns its length. */
static size_t token(const char *s, size_t len, size_t *i)
{
	size_t start = *i;

	while (*i < len) {
		unsigned char ch = (unsigned char)s[*i];

		if (ch <= ' ' || ch >= 0x7F || strchr("()<>@,;:\\\"/[]?=", ch) != NULL)
			break;
		(*i)++;
	}
	return *i - start;
}

/*
 * value - a parameter value: a token or a quoted-string, unquoted into
 * dst[0..size) (folding CRLFs dropped, RFC 5322 3.2.4). Returns its length,
 * or 0 when it is empty, unterminated or longer than size - 1.
 */
static size_t value(const char *s, size_t len, size_t *i, char *dst, size_t size)
{
	size_t n = 0, start = *i;
	bool fits = true;

	if (*i >= len || s[*i] != '"') {
		n = token(s, len, i);
		if (n == 0 || n >= size)
			return 0;
		memcpy(dst, s + start, n);
		dst[n] = '\0';
		return n;
	}
	for ((*i)++; *i < len; (*i)++) {
		char ch = s[*i];

		if (ch == '"') {
			(*i)++;
			if (!fits || n == 0)
				return 0;
			dst[n] = '\0';
			return n;
		}
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == '\\' && *i + 1 < len)
			ch = s[++(*i)];
		if (n + 1 < size)
			dst[n++] = ch;
		else
			fits = false;
	}
	return 0;
}

/* parse_content_type - type/subtype and the boundary; a value that does not parse is text/plain (RFC 2045 5.2). */
static void parse_content_type(const char *s, size_t len, struct entity *e)
{
	size_t i = 0, type, type_at, sub, sub_at;
	char scratch[BOUNDARY_MAX + 1];

	e->kind = KIND_LEAF;
	skip_cfws(s, len, &i);
	type_at = i;
	type = token(s, len, &i);
	skip_cfws(s, len, &i);
	if (type == 0 || i >= len || s[i] != '/')
		return;
	i++;
	skip_cfws(s, len, &i);
	sub_at = i;
	sub = token(s, len, &i);
	if (sub == 0)
		return;
	if (ieq(s + type_at, type, "multipart")) {
		e->kind = KIND_MULTIPART;
		e->digest = ieq(s + sub_at, sub, "digest");
	} else if (ieq(s + type_at, type, "message")) {
		/* RFC 6532 3.5, RFC 6533 6: the global types may be encoded. */
		if (ieq(s + sub_at, sub, "rfc822"))
			e->kind = KIND_RFC822;
		else if (!ieq(s + sub_at, sub, "global") && !(sub > 7 && ieq(s + sub_at, 7, "global-")))
			e->kind = KIND_MESSAGE_OTHER;
		keep_name(e->subtype, s + sub_at, sub);
	}
	/* parameters: ";" attribute "=" value, until one does not parse */
	for (;;) {
		size_t attr, attr_at, n;

		skip_cfws(s, len, &i);
		if (i >= len || s[i] != ';')
			return;
		i++;
		skip_cfws(s, len, &i);
		attr_at = i;
		attr = token(s, len, &i);
		if (attr == 0)
			continue;
		skip_cfws(s, len, &i);
		if (i >= len || s[i] != '=')
			return;
		i++;
		skip_cfws(s, len, &i);
		n = value(s, len, &i, scratch, sizeof scratch);
		if (n == 0)
			return;
		/* RFC 2045 5.1: parameter names are case-insensitive; the first boundary counts. */
		if (e->boundary_len == 0 && ieq(s + attr_at, attr, "boundary")) {
			memcpy(e->boundary, scratch, n + 1);
			e->boundary_len = n;
		}
	}
}

static void parse_cte(const char *s, size_t len, struct entity *e)
{
	static const struct {
		const char *name;
		enum cte cte;
	} known[] = {
	        {"7bit", CTE_7BIT},     {"8bit", CTE_8BIT},           {"binary", CTE_BINARY},
	        {"base64", CTE_BASE64}, {"quoted-printable", CTE_QP},
	};
	size_t i = 0, at, n;

	skip_cfws(s, len, &i);
	at = i;
	n = token(s, len, &i);
	keep_name(e->cte_name, s + at, n);
	e->cte = CTE_OTHER;
	for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
		if (ieq(s + at, n, known[k].name))
			e->cte = known[k].cte;
}

/* ---- header ---- */

/* field_end - just past the field starting at at, its continuation lines included (RFC 5322 2.2.3). */
static size_t field_end(const char *m, size_t at, size_t head_end)
{
	do {
		const char *lf = memchr(m + at, '\n', head_end - at);

		at = lf ? (size_t)(lf - m) + 1 : head_end;
	} while (at < head_end && (m[at] == ' ' || m[at] == '\t'));
	return at;
}

enum field_name {
	FIELD_OTHER,
	FIELD_CONTENT_TYPE,
	FIELD_CTE,
	FIELD_MIME_VERSION,
};

/* field_name - which field [at, end) is; *value_at: just past its colon. */
static enum field_name field_name(const char *m, size_t at, size_t end, size_t *value_at)
{
	const char *colon = memchr(m + at, ':', end - at);
	const char *lf = memchr(m + at, '\n', end - at);
	size_t n;

	if (colon == NULL || (lf != NULL && lf < colon))
		return FIELD_OTHER;
	n = (size_t)(colon - (m + at));
	/* RFC 5322 4.5.1: obsolete white space before the colon */
	while (n > 0 && (m[at + n - 1] == ' ' || m[at + n - 1] == '\t'))
		n--;
	*value_at = (size_t)(colon - m) + 1;
	if (ieq(m + at, n, "content-type"))
		return FIELD_CONTENT_TYPE;
	if (ieq(m + at, n, "content-transfer-encoding"))
		return FIELD_CTE;
	if (ieq(m + at, n, "mime-version"))
		return FIELD_MIME_VERSION;
	return FIELD_OTHER;
}

/* entity_split - where the header ends and the body starts (RFC 5322 2.1, RFC 2045 3). */
static void entity_split(const char *m, size_t start, size_t end, struct entity *e)
{
	const char *blank;

	memset(e, 0, sizeof *e);
	e->start = start;
	e->end = end;
	if (end - start >= 2 && m[start] == '\r' && m[start + 1] == '\n') {
		e->head_end = start;
		e->body = start + 2;
	} else if ((blank = memmem(m + start, end - start, "\r\n\r\n", 4)) != NULL) {
		e->head_end = (size_t)(blank - m) + 2;
		e->body = e->head_end + 2;
	} else {
		e->head_end = end;
		e->body = end;
	}
}

/* entity_fields - what the header says; the first Content-Type and Content-Transfer-Encoding count. */
static void entity_fields(const char *m, struct entity *e)
{
	size_t at, next, value_at = 0;

	for (at = e->start; at < e->head_end; at = next) {
		next = field_end(m, at, e->head_end);
		switch (field_name(m, at, next, &value_at)) {
		case FIELD_CONTENT_TYPE:
			if (!e->ct_present)
				parse_content_type(m + value_at, next - value_at, e);
			e->ct_present = true;
			break;
		case FIELD_CTE:
			if (!e->cte_present)
				parse_cte(m + value_at, next - value_at, e);
			e->cte_present = true;
			break;
		case FIELD_MIME_VERSION:
			e->mime_version = true;
			break;
		case FIELD_OTHER:
			break;
		}
	}
}

/*
 * put_header - the header and the empty line, with every Content-Transfer-
 * Encoding field (continuation lines and all) replaced by one saying cte, in
 * the first one's place or at the end; MIME-Version and Content-Type added
 * as asked. A NULL cte copies the header unchanged.
 */
static void put_header(struct conv *c, const struct entity *e, const char *cte, bool add_mime_version,
                       bool add_content_type)
{
	size_t at, next, value_at;
	bool replaced = false;

	if (cte == NULL) {
		put(c, c->m + e->start, e->body - e->start);
		return;
	}
	for (at = e->start; at < e->head_end; at = next) {
		next = field_end(c->m, at, e->head_end);
		if (field_name(c->m, at, next, &value_at) != FIELD_CTE) {
			put(c, c->m + at, next - at);
		} else if (!replaced) {
			put_str(c, "Content-Transfer-Encoding: ");
			put_str(c, cte);
			put_str(c, "\r\n");
			replaced = true;
		}
	}
	if (add_mime_version)
		put_str(c, "MIME-Version: 1.0\r\n");
	if (add_content_type)
		put_str(c, "Content-Type: text/plain; charset=unknown-8bit\r\n");
	if (!replaced) {
		put_str(c, "Content-Transfer-Encoding: ");
		put_str(c, cte);
		put_str(c, "\r\n");
	}
	put_str(c, "\r\n");
}

/* verbatim - copy m[from..to), which starts a line, if it is 7bit data; where names it for the reason. */
static bool verbatim(struct conv *c, size_t from, size_t to, const char *where)
{
	enum dirt d = dirt_of(c->m + from, to - from);

	if (d != CLEAN)
		return refuse(c, "5.6.3 %s in %s cannot be made 7-bit", dirt_text(d), where);
	put(c, c->m + from, to - from);
	return true;
}

/* ---- quoted-printable (RFC 2045 6.7) ---- */

/*
 * qp_encode - s[0..len) as quoted-printable, ending where it ends (a hard
 * line break or none). Writes straight into the staging buffer, which has
 * room for the most one input byte can make: "=" CRLF "=XX".
 */
static void qp_encode(struct conv *c, const char *s, size_t len)
{
	size_t col = 0; /* characters on the output line so far */

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool at_eol, literal;
		size_t width;
		char *w;

		if (sizeof c->stage - c->staged < 6)
			flush(c);
		w = c->stage + c->staged;
		if (ch == '\r' && i + 1 < len && s[i + 1] == '\n') {
			*w++ = '\r', *w++ = '\n';
			c->staged += 2;
			i++;
			col = 0;
			continue;
		}
		/* a hard line break or the end comes next: this character ends its line */
		at_eol = i + 1 == len || (s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n');
		for (;;) {
			literal = (ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !at_eol);
			if (col == 0 && ch == 'F' && len - i >= 5 && memcmp(s + i, "From ", 5) == 0)
				literal = false;
			width = literal ? 1 : 3;
			/* a soft line break "=" must fit after it unless the line ends here */
			if (col + width <= (at_eol ? QP_LINE_MAX : QP_LINE_MAX - 1))
				break;
			*w++ = '=', *w++ = '\r', *w++ = '\n';
			col = 0;
		}
		if (literal) {
			*w++ = (char)ch;
		} else {
			*w++ = '=', *w++ = hex[ch >> 4], *w++ = hex[ch & 15];
		}
		c->staged = (size_t)(w - c->stage);
		col += width;
	}
}

/* ---- the walk ---- */

static bool convert_entity(struct conv *c, size_t start, size_t end, unsigned flags, unsigned depth);

struct delimiter {
	size_t start;    /* the line's first byte */
	size_t line_end; /* just past its CRLF, or the end of the body */
	bool close;      /* "--boundary--" */
};

/* is_delimiter - line[0..len) is "--" boundary ["--"] *LWSP [CRLF] (RFC 2046 5.1.1). */
static bool is_delimiter(const char *line, size_t len, const struct entity *e, bool *close)
{
	size_t i = 2 + e->boundary_len;

	if (len < i || line[0] != '-' || line[1] != '-' || memcmp(line + 2, e->boundary, e->boundary_len) != 0)
		return false;
	if (len >= i + 2 && line[len - 2] == '\r' && line[len - 1] == '\n')
		len -= 2;
	*close = len - i >= 2 && line[i] == '-' && line[i + 1] == '-';
	if (*close)
		i += 2;
	for (; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t')
			return false;
	return true;
}

/* find_delimiter - the first delimiter line at or after at (a line start) before end; lines end at CRLF only. */
static bool find_delimiter(const char *m, size_t at, size_t end, const struct entity *e, struct delimiter *d)
{
	while (at < end) {
		size_t line_end = end, from = at;
		const char *lf;

		while (from < end && (lf = memchr(m + from, '\n', end - from)) != NULL) {
			size_t i = (size_t)(lf - m);

			if (i > at && m[i - 1] == '\r') {
				line_end = i + 1;
				break;
			}
			from = i + 1;
		}
		if (is_delimiter(m + at, line_end - at, e, &d->close)) {
			d->start = at;
			d->line_end = line_end;
			return true;
		}
		at = line_end;
	}
	return false;
}

static bool convert_multipart(struct conv *c, const struct entity *e, unsigned flags, unsigned depth, enum dirt dirt)
{
	struct delimiter d, next;
	unsigned child = e->digest ? DIGEST_CHILD : 0;

	if (e->cte != CTE_NONE && e->cte != CTE_7BIT && e->cte != CTE_8BIT)
		return refuse(c, "5.6.3 a multipart part encoded as \"%s\", which RFC 2045 6.4 does not allow",
		              e->cte_name);
	if (e->boundary_len == 0)
		return refuse(c, "5.6.3 %s in a multipart part without a usable boundary parameter", dirt_text(dirt));
	if (depth >= MSG_7BIT_DEPTH_MAX)
		return refuse(c, "5.6.3 MIME parts nested more than %d levels deep", MSG_7BIT_DEPTH_MAX);
	put_header(c, e, e->cte == CTE_8BIT ? "7bit" : NULL, (flags & IS_MESSAGE) && !e->mime_version, false);
	if (!find_delimiter(c->m, e->body, e->end, e, &d))
		return verbatim(c, e->body, e->end, "the preamble of a multipart without parts");
	/* the preamble, the CRLF that belongs to the delimiter, the delimiter line */
	if (!verbatim(c, e->body, d.line_end, "the preamble of a multipart"))
		return false;
	while (!d.close) {
		size_t part = d.line_end, part_end;
		bool found = find_delimiter(c->m, part, e->end, e, &next);

		/* RFC 2046 5.1.1: the CRLF before a delimiter is part of the delimiter */
		part_end = !found ? e->end : next.start >= part + 2 ? next.start - 2 : part;
		if (!convert_entity(c, part, part_end, child, depth + 1))
			return false;
		if (!found)
			return true; /* no close delimiter: the last part ran to the end, as readers take it */
		if (!verbatim(c, part_end, next.line_end, "a multipart delimiter line"))
			return false;
		d = next;
	}
	return verbatim(c, d.line_end, e->end, "the epilogue of a multipart");
}

static bool convert_rfc822(struct conv *c, const struct entity *e, unsigned flags, unsigned depth)
{
	/* RFC 2046 5.2.1: no other encoding is allowed */
	if (e->cte != CTE_NONE && e->cte != CTE_7BIT && e->cte != CTE_8BIT)
		return refuse(c, "5.6.3 a message/rfc822 part encoded as \"%s\", which RFC 2046 5.2.1 does not allow",
		              e->cte_name);
	if (depth >= MSG_7BIT_DEPTH_MAX)
		return refuse(c, "5.6.3 MIME parts nested more than %d levels deep", MSG_7BIT_DEPTH_MAX);
	put_header(c, e, e->cte == CTE_8BIT ? "7bit" : NULL, (flags & IS_MESSAGE) && !e->mime_version, false);
	return convert_entity(c, e->body, e->end, IS_MESSAGE, depth + 1);
}

static bool convert_leaf(struct conv *c, const struct entity *e, unsigned flags, enum dirt d)
{
	bool unlabelled;

	if (e->cte != CTE_NONE && e->cte != CTE_7BIT && e->cte != CTE_8BIT)
		return refuse(c, "5.6.3 %s in a part encoded as \"%s\"", dirt_text(d), e->cte_name);
	unlabelled = !e->ct_present && has_8bit(c->m + e->body, e->end - e->body);
	put_header(c, e, "quoted-printable", (flags & IS_MESSAGE) && !e->mime_version, unlabelled);
	qp_encode(c, c->m + e->body, e->end - e->body);
	return true;
}

/* convert_entity - m[start..end) (header, empty line, body) to the output, made 7-bit; depth 0 is the message. */
static bool convert_entity(struct conv *c, size_t start, size_t end, unsigned flags, unsigned depth)
{
	struct entity e;
	enum dirt d;

	entity_split(c->m, start, end, &e);
	d = dirt_of(c->m + start, e.head_end - start);
	if (d != CLEAN) {
		if (d == DIRT_8BIT)
			return refuse(c, "5.6.3 8-bit bytes in a header field cannot be made 7-bit without "
			                 "knowing their charset");
		return refuse(c, "5.6.3 %s in a header field", dirt_text(d));
	}
	d = dirt_of(c->m + e.body, end - e.body);
	if (d == CLEAN) {
		put(c, c->m + start, end - start);
		return true;
	}
	entity_fields(c->m, &e);
	if (!e.ct_present && (flags & DIGEST_CHILD))
		e.kind = KIND_RFC822;
	if (e.cte == CTE_BINARY)
		return refuse(c, "5.6.3 %s in a part declared binary", dirt_text(d));
	switch (e.kind) {
	case KIND_MULTIPART:
		return convert_multipart(c, &e, flags, depth, d);
	case KIND_RFC822:
		return convert_rfc822(c, &e, flags, depth);
	case KIND_MESSAGE_OTHER:
		return refuse(c, "5.6.3 %s in a message/%s part, which may not be encoded (RFC 2046 5.2)", dirt_text(d),
		              e.subtype);
	case KIND_LEAF:
		break;
	}
	return convert_leaf(c, &e, flags, d);
}

bool msg_to_7bit(struct evbuffer *in, struct evbuffer *out, char *why, size_t why_size)
{
	size_t len = evbuffer_get_length(in);
	struct conv *c;
	bool ok;

	if (why_size > 0)
		why[0] = '\0';
	if (len == 0)
		return true;
	c = calloc(1, sizeof *c); /* check-alloc: handled (the message waits, 4.3.0) */
	if (c == NULL || (c->m = (const char *)evbuffer_pullup(in, -1)) == NULL || (c->out = evbuffer_new()) == NULL) {
		free(c);
		if (why_size > 0)
			snprintf(why, why_size, "4.3.0 out of memory converting the message to 7-bit");
		return false;
	}
	c->why = why;
	c->why_size = why_size;
	ok = convert_entity(c, 0, len, IS_MESSAGE, 0);
	flush(c);
	if (ok && c->no_memory)
		ok = refuse(c, "4.3.0 out of memory converting the message to 7-bit");
	if (ok && evbuffer_add_buffer(out, c->out) != 0)
		ok = refuse(c, "4.3.0 out of memory converting the message to 7-bit");
	evbuffer_free(c->out);
	free(c);
	return ok;
}
