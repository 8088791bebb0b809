/*
 * msg_dsn.c - delivery status notifications: a multipart/report (RFC 6522)
 * with report-type delivery-status (RFC 3464), for a bounce, a delay
 * warning or a success report, the DSN fields RFC 3461 6.3 asks for, and
 * the RFC 6533 types when the original used SMTPUTF8.
 *
 * The notification is:
 *   header: From, To, Subject, Date, Message-ID, Auto-Submitted:
 *           auto-replied (RFC 3834 5), MIME-Version, Content-Type
 *   part 1: text/plain; charset=us-ascii - what happened, in plain words,
 *           each recipient with a reason and the remote server's reply
 *   part 2: message/delivery-status (message/global-delivery-status) - a
 *           per-message block, then a block per recipient (RFC 3464 2.2,
 *           2.3, fields in its ABNF order)
 *   part 3: message/rfc822 (message/global) with the original, or
 *           text/rfc822-headers (message/global-headers) with its header
 *           section; left out when there is no original.
 *
 * Input is not trusted. A remote reply may hold any bytes; addresses and
 * host names come from peers too. Every value goes through one of the
 * makers below into a bounded buffer (cut with "..."), so:
 *   - no CR or LF from an input reaches a header line: in fields they
 *     become a space; in the text part a reply's LF starts a new indented
 *     line of our own;
 *   - control characters, DEL, bytes that are not UTF-8 and (in 7-bit
 *     places) non-ASCII characters are written "\x{HEX}", the notation of
 *     RFC 6533 3;
 *   - header fields are folded at spaces before column 78 and any word that
 *     would run past column 900 is broken with a fold of its own (RFC 5322
 *     2.1.1 allows 998), so a field value may gain a space but no line is
 *     ever long; text lines are wrapped at 76 columns the same way.
 * The boundary ("=_", which quoted-printable never writes, the seed and a
 * hash) must occur nowhere but in Content-Type and the delimiter lines: it
 * is looked for in part 3 and in a dry run of everything else (values from
 * peers could hold it), and changed until it is not found.
 *
 * The original is returned whole only when it is clean (CRLF lines of at
 * most 998 octets, no NUL: what the DATA reader accepts) and fits
 * original_max; else its header section goes, as it is when that is clean
 * 7-bit (or 8-bit with smtputf8), else in quoted-printable.
 *
 * RFC 3461 4 sends ENVID and ORCPT as xtext; their DSN fields carry the
 * decoded value (RFC 3464 2.2.1, 2.3.1 types it as text) when that is
 * printable ASCII, else the value as given.
 *
 * Nothing is emitted until the report has been checked, so a false return
 * means no output at all.
 */
#include "msg/msg_dsn.h"

#include <string.h>

#include "util/util_str.h"
#include "util/util_time.h"

#define FOLD_AT         78   /* RFC 5322 2.1.1: lines SHOULD stay within 78 */
#define HARD_AT         900  /* a longer word is broken here (the limit is 998) */
#define LINE_MAX_OCTETS 998  /* RFC 5322 2.1.1, RFC 5321 4.5.3.1.6: without CRLF */
#define WRAP_AT         76   /* text part */
#define VALUE_MAX       800  /* a made-safe address, host name or id, "..." included */
#define DIAG_MAX        4096 /* a made-safe reply text */
#define SEED_MAX        32   /* characters of the seed in the boundary and Message-ID */
#define QID_MAX         64
#define HOST_MAX        253 /* RFC 1035 2.3.4 as text */
#define TYPE_MAX        32  /* an ORCPT address type ("rfc822", "utf-8") */
#define BOUNDARY_SIZE   72  /* RFC 2046 5.1.1: at most 70 characters */
#define BOUNDARY_TRIES  16
#define DATE_SIZE       64

/* ---- bounded text ---- */

/* A value being made: never more than cap bytes; once something did not
 * fit, "..." ends it and nothing more goes in. */
struct text {
	char *s;
	size_t len, cap;
	bool cut;
};

static void text_init(struct text *t, char *buf, size_t size)
{
	t->s = buf;
	t->cap = size - 4; /* room for "..." and a NUL */
	t->len = 0;
	t->cut = false;
	t->s[0] = '\0';
}

static void text_put(struct text *t, const char *s, size_t n)
{
	if (t->cut)
		return;
	if (n > t->cap - t->len) {
		t->cut = true;
		memcpy(t->s + t->len, "...", 3);
		t->len += 3;
	} else {
		memcpy(t->s + t->len, s, n);
		t->len += n;
	}
	t->s[t->len] = '\0';
}

/* text_put_some - as much of s[0..n) as fits (ASCII text, which may be cut anywhere). */
static void text_put_some(struct text *t, const char *s, size_t n)
{
	size_t room = t->cut ? 0 : t->cap - t->len;

	if (n > room) {
		text_put(t, s, room);
		text_put(t, s + room, n - room); /* does not fit: "..." */
	} else {
		text_put(t, s, n);
	}
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* text_escape - code point (or byte) cp as "\x{HEX}" (RFC 6533 3 EmbeddedUnicodeChar). */
static void text_escape(struct text *t, uint32_t cp)
{
	char buf[16];

	str_format(buf, sizeof buf, "\\x{%02X}", (unsigned)cp);
	text_str(t, buf);
}

/* utf8_char - the length (2 to 4) of the well-formed UTF-8 sequence of a
 * non-ASCII character at s[0..len) (RFC 3629 4), and its code point; 0 if
 * there is none. */
static size_t utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n, i;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2, c &= 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3, c &= 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

#define SAFE_UTF8  1 /* UTF-8 characters stay as they are (message/global* parts) */
#define SAFE_LINES 2 /* LF, or CR LF, stays as one LF (the text part breaks lines there) */

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* text_space - one SP, none at the start and none twice. */
static void text_space(struct text *t)
{
	if (t->len > 0 && t->s[t->len - 1] != ' ' && t->s[t->len - 1] != '\n')
		text_put(t, " ", 1);
}

/*
 * text_safe - s[0..len) as printable text. White space (SP, HTAB, and
 * CR and LF unless SAFE_LINES) becomes single spaces; with SAFE_LINES a LF
 * or CR LF is kept as LF and a lone CR is escaped. Printable ASCII stays;
 * UTF-8 characters stay with SAFE_UTF8 (not C1 controls); everything else
 * is escaped.
 */
static void text_safe(struct text *t, const char *str, size_t len, int flags)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len && !t->cut) {
		size_t j = i, n;
		uint32_t cp;

		while (j < len && s[j] > ' ' && s[j] < 0x7F)
			j++;
		if (j > i) {
			text_put_some(t, str + i, j - i);
			i = j;
			continue;
		}
		if ((flags & SAFE_LINES) && (s[i] == '\n' || (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n'))) {
			while (t->len > 0 && t->s[t->len - 1] == ' ')
				t->len--;
			text_put(t, "\n", 1);
			i += s[i] == '\r' ? 2 : 1;
		} else if (is_space(s[i]) && (s[i] != '\r' || !(flags & SAFE_LINES))) {
			text_space(t);
			i++;
		} else if (s[i] >= 0x80 && (n = utf8_char(s + i, len - i, &cp)) > 0) {
			if ((flags & SAFE_UTF8) && cp >= 0xA0)
				text_put(t, str + i, n);
			else
				text_escape(t, cp);
			i += n;
		} else {
			text_escape(t, s[i]);
			i++;
		}
	}
}

/* text_trim - drop trailing spaces and line breaks. */
static void text_trim(struct text *t)
{
	while (t->len > 0 && (t->s[t->len - 1] == ' ' || t->s[t->len - 1] == '\n'))
		t->len--;
	t->s[t->len] = '\0';
}

/* ---- addresses and xtext ---- */

/* xtext_decode - RFC 3461 4 xtext s[0..len) decoded into out (len bytes
 * suffice); true only if it is well formed ("+" and two upper-case hex
 * digits) and the result is printable ASCII. */
static bool xtext_decode(const char *s, size_t len, char *out, size_t *out_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			const char *hi, *lo;
			if (len - i < 3)
				return false;
			hi = strchr(hex, s[i + 1]);
			lo = strchr(hex, s[i + 2]);
			if (hi == NULL || lo == NULL)
				return false;
			c = (unsigned char)((hi - hex) * 16 + (lo - hex));
			i += 2;
		}
		if (c < 0x20 || c > 0x7E)
			return false;
		out[n++] = (char)c;
	}
	*out_len = n;
	return true;
}

/* text_xtext_value - an xtext value as its decoded text, or else as given, made safe. */
static void text_xtext_value(struct text *t, const char *s, int flags)
{
	char decoded[VALUE_MAX];
	size_t len = strlen(s), n;

	if (len < sizeof decoded && xtext_decode(s, len, decoded, &n))
		text_safe(t, decoded, n, 0);
	else
		text_safe(t, s, len, flags);
}

/* is_qchar - RFC 6533 3 QCHAR: printable ASCII but "+", "=" and "\". */
static bool is_qchar(unsigned char c)
{
	return c > ' ' && c < 0x7F && c != '+' && c != '=' && c != '\\';
}

/*
 * text_address - an address as a typed address (RFC 3464 2.3.2): an ASCII
 * one as "rfc822; addr"; else "utf-8; " (RFC 6533 3) and, in a
 * message/global-delivery-status part, the address itself (utf-8-address)
 * when it is well-formed UTF-8 without controls, spaces or "\", or else
 * its 7-bit utf-8-addr-xtext form (valid in both part types).
 */
static void text_address(struct text *t, const char *addr, bool global)
{
	const unsigned char *s = (const unsigned char *)addr;
	size_t len = strlen(addr), i, n;
	bool ascii = true, plain = true;
	uint32_t cp;

	for (i = 0; i < len; i += n) {
		n = 1;
		if (s[i] >= 0x80) {
			ascii = false;
			n = utf8_char(s + i, len - i, &cp);
			if (n == 0 || cp < 0xA0) {
				plain = false;
				n = 1;
			}
		} else if (s[i] <= ' ' || s[i] == 0x7F || s[i] == '\\') {
			plain = false;
		}
	}
	if (ascii) {
		text_str(t, "rfc822; ");
		text_safe(t, addr, len, 0);
		return;
	}
	text_str(t, "utf-8; ");
	if (global && plain) {
		/* a character at a time, so that a cut never splits one */
		for (i = 0; i < len && !t->cut; i += n) {
			n = s[i] >= 0x80 ? utf8_char(s + i, len - i, &cp) : 1;
			text_put(t, addr + i, n);
		}
		return;
	}
	for (i = 0; i < len && !t->cut; i += n) {
		n = s[i] >= 0x80 ? utf8_char(s + i, len - i, &cp) : 0;
		if (n > 0) {
			text_escape(t, cp);
			continue;
		}
		n = 1;
		if (is_qchar(s[i]))
			text_put(t, addr + i, 1);
		else
			text_escape(t, s[i]);
	}
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* type_ok - s[0..len) is an address type (RFC 3464 2.1.2 atom; in practice letters, digits and "-"). */
static bool type_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TYPE_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* text_orcpt - an ORCPT "type;xtext" as "type; value" (RFC 3461 6.3 d); "unknown; ..." without a valid type. */
static void text_orcpt(struct text *t, const char *orcpt, bool global)
{
	const char *semi = strchr(orcpt, ';'), *value;
	int flags = global ? SAFE_UTF8 : 0;

	if (semi == NULL || !type_ok(orcpt, (size_t)(semi - orcpt))) {
		text_str(t, "unknown; ");
		text_safe(t, orcpt, strlen(orcpt), flags);
		return;
	}
	text_put(t, orcpt, (size_t)(semi - orcpt));
	text_str(t, "; ");
	value = semi + 1;
	while (*value == ' ')
		value++;
	text_xtext_value(t, value, flags);
}

/* ---- small checks ---- */

/* host_ok - a host name: letters, digits, "-" and ".", 1 to HOST_MAX of them. */
static bool host_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return i > 0 && i <= HOST_MAX;
}

/* digits - how many ASCII digits start s (stops at max + 1). */
static size_t digits(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

/* status_len - the length of the RFC 3463 status code "class.subject.detail"
 * at the start of s (class 2, 4 or 5, one to three digits each), or 0. */
static size_t status_len(const char *s)
{
	size_t a, b;

	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	a = digits(s + 2, 3);
	if (a < 1 || a > 3 || s[2 + a] != '.')
		return 0;
	b = digits(s + 3 + a, 3);
	if (b < 1 || b > 3)
		return 0;
	return 3 + a + b;
}

static bool status_ok(const char *s)
{
	size_t n = status_len(s);
	return n > 0 && s[n] == '\0';
}

/* id_clean - letters, digits, "-" and "_" of s, at most max of them: a piece of a Message-ID or boundary. */
static void id_clean(char *out, size_t max, const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s && n < max; s++)
		if (is_alnum(*s) || *s == '-' || *s == '_')
			out[n++] = *s;
	out[n] = '\0';
}

static bool date_of(char buf[DATE_SIZE], int64_t ms)
{
	return ms > 0 && time_rfc5322(buf, DATE_SIZE, (time_t)(ms / 1000));
}

/* ---- output ---- */

/* Output goes to emit in runs of up to OUT_SIZE bytes or, in a dry run
 * (emit NULL), is searched for needle instead: found counts where it is. */
#define OUT_SIZE 4096

struct out {
	dsn_emit *emit;
	void *ctx;
	const char *needle;
	size_t needle_len, found;
	size_t tail_len; /* the last needle_len - 1 bytes searched, which a match may start in */
	char tail[BOUNDARY_SIZE];
	size_t len;
	char buf[OUT_SIZE];
};

static void out_search(struct out *o, const char *s, size_t n)
{
	char joined[BOUNDARY_SIZE + OUT_SIZE];
	const char *at, *end;
	size_t keep;

	while (n > 0) {
		size_t take = n < OUT_SIZE ? n : OUT_SIZE;
		memcpy(joined, o->tail, o->tail_len);
		memcpy(joined + o->tail_len, s, take);
		at = joined;
		end = joined + o->tail_len + take;
		while ((at = memmem(at, (size_t)(end - at), o->needle, o->needle_len)) != NULL) {
			o->found++;
			at += o->needle_len;
		}
		keep = o->needle_len - 1 < (size_t)(end - joined) ? o->needle_len - 1 : (size_t)(end - joined);
		memcpy(o->tail, end - keep, keep);
		o->tail_len = keep;
		s += take;
		n -= take;
	}
}

static void out_flush(struct out *o)
{
	if (o->len > 0 && o->emit)
		o->emit(o->ctx, o->buf, o->len);
	else if (o->len > 0)
		out_search(o, o->buf, o->len);
	o->len = 0;
}

static void out_put(struct out *o, const char *s, size_t n)
{
	if (n > sizeof o->buf - o->len) {
		out_flush(o);
		if (n > sizeof o->buf) {
			if (o->emit)
				o->emit(o->ctx, s, n);
			else
				out_search(o, s, n);
			return;
		}
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_spaces(struct out *o, size_t n)
{
	while (n-- > 0)
		out_put(o, " ", 1);
}

/*
 * field - "Name: value" and CRLF. value is made safe (no CR, LF or HTAB,
 * single spaces); the field is folded at its spaces so lines stay within
 * FOLD_AT where a word allows (RFC 5322 2.2.3), and a word that would pass
 * HARD_AT is broken with a fold (so no line nears 998 octets).
 */
static void field(struct out *o, const char *name, const char *value, size_t len)
{
	size_t start = strlen(name) + 1, col = start, i = 0;

	out_str(o, name);
	out_put(o, ":", 1);
	while (i < len) {
		size_t w, n;

		while (i < len && value[i] == ' ')
			i++;
		for (w = i; w < len && value[w] != ' '; w++)
			;
		if (w == i)
			break;
		if (col > start && col + 1 + (w - i) > FOLD_AT) {
			out_str(o, "\r\n");
			col = 0;
		}
		out_put(o, " ", 1);
		col++;
		while (w - i > HARD_AT - col) {
			n = HARD_AT - col;
			out_put(o, value + i, n);
			out_str(o, "\r\n ");
			col = 1;
			i += n;
		}
		out_put(o, value + i, w - i);
		col += w - i;
		i = w;
	}
	out_str(o, "\r\n");
}

static void field_text(struct out *o, const char *name, const struct text *t)
{
	field(o, name, t->s, t->len);
}

static void field_str(struct out *o, const char *name, const char *value)
{
	field(o, name, value, strlen(value));
}

/* wrap - s[0..len) (printable, single spaces) as lines of at most WRAP_AT
 * columns, each after indent spaces, broken at spaces or, in a word longer
 * than a line, where it must be. */
static void wrap(struct out *o, size_t indent, const char *s, size_t len)
{
	size_t width = WRAP_AT - indent, col = 0, i = 0;
	bool open = false;

	while (i < len) {
		size_t w, n;

		while (i < len && s[i] == ' ')
			i++;
		for (w = i; w < len && s[w] != ' '; w++)
			;
		if (w == i)
			break;
		if (open && col + 1 + (w - i) > width) {
			out_str(o, "\r\n");
			open = false;
		}
		if (!open) {
			out_spaces(o, indent);
			col = 0;
			open = true;
		} else {
			out_put(o, " ", 1);
			col++;
		}
		while (w - i > width - col) {
			n = width - col;
			out_put(o, s + i, n);
			out_str(o, "\r\n");
			out_spaces(o, indent);
			col = 0;
			i += n;
		}
		out_put(o, s + i, w - i);
		col += w - i;
		i = w;
	}
	if (open)
		out_str(o, "\r\n");
}

/* para - a paragraph of the text part and the empty line after it. */
static void para(struct out *o, const char *s)
{
	wrap(o, 0, s, strlen(s));
	out_str(o, "\r\n");
}

/* ---- quoted-printable (RFC 2045 6.7) ---- */

/* qp_line_end - end an encoded line at a hard break: white space before it is encoded (rule 3). */
static void qp_line_end(struct out *o, char *line, size_t n)
{
	char last;

	if (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t')) {
		last = line[n - 1];
		n--;
		if (n + 3 > 76) {
			out_put(o, line, n);
			out_str(o, "=\r\n");
			n = 0;
		}
		out_put(o, line, n);
		out_str(o, last == ' ' ? "=20" : "=09");
	} else {
		out_put(o, line, n);
	}
	out_str(o, "\r\n");
}

/* qp - s[0..len) in quoted-printable: CR LF is a line break, any other
 * byte but printable ASCII (not "=") and inner white space is encoded,
 * lines are at most 76 characters. Ends with CRLF. */
static void qp(struct out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char line[80];
	size_t n = 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char enc[3];
		size_t k = 1;

		if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
			qp_line_end(o, line, n);
			n = 0;
			i++;
			continue;
		}
		if ((c > ' ' && c < 0x7F && c != '=') || c == ' ' || c == '\t') {
			enc[0] = (char)c;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			k = 3;
		}
		if (n + k > 75) {
			out_put(o, line, n);
			out_str(o, "=\r\n");
			n = 0;
		}
		memcpy(line + n, enc, k);
		n += k;
	}
	if (n > 0)
		qp_line_end(o, line, n);
}

/* ---- the plan: everything decided before a byte goes out ---- */

enum kind { KIND_FAILURE, KIND_DELAY, KIND_SUCCESS };
enum part3 { PART3_NONE, PART3_FULL, PART3_HEADERS };
enum cte { CTE_7BIT, CTE_8BIT, CTE_QP };

struct plan {
	enum kind kind;
	enum part3 part3;
	enum cte cte;
	const char *body; /* what part 3 carries, before any encoding */
	size_t body_len;
	bool body_crlf; /* body ends with CRLF */
	char seed[SEED_MAX + 1];
	char qid[QID_MAX + 1];
	char boundary[BOUNDARY_SIZE];
	char date[DATE_SIZE];
};

static int action_kind(enum dsn_action action)
{
	switch (action) {
	case DSN_FAILED:
		return KIND_FAILURE;
	case DSN_DELAYED:
		return KIND_DELAY;
	case DSN_DELIVERED:
	case DSN_RELAYED:
	case DSN_EXPANDED:
		return KIND_SUCCESS;
	}
	return -1;
}

static const char *action_name(enum dsn_action action)
{
	switch (action) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	case DSN_DELIVERED:
		return "delivered";
	case DSN_RELAYED:
		return "relayed";
	case DSN_EXPANDED:
		return "expanded";
	}
	return "failed";
}

/* content_scan - whether s[0..len) is clean (CRLF lines of at most 998 octets, no NUL), and 8-bit. */
static void content_scan(const char *s, size_t len, bool *clean, bool *eight_bit)
{
	size_t i, line = 0;

	*clean = true;
	*eight_bit = false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
			line = 0;
			i++;
			continue;
		}
		if (c == '\r' || c == '\n' || c == '\0')
			*clean = false;
		if (c >= 0x80)
			*eight_bit = true;
		if (++line > LINE_MAX_OCTETS)
			*clean = false;
	}
}

/* header_section - the length of the header section at the start of s,
 * through the CRLF of its last line (RFC 5322 2.1); all of s if it has no
 * empty line; past DSN_HEADERS_MAX, cut before the last field that starts
 * within it. */
static size_t header_section(const char *s, size_t len)
{
	const char *end;
	size_t n, i, line = 0, field_start = 0;

	if (len >= 2 && s[0] == '\r' && s[1] == '\n')
		return 0;
	end = memmem(s, len, "\r\n\r\n", 4);
	n = end ? (size_t)(end - s) + 2 : len;
	if (n <= DSN_HEADERS_MAX)
		return n;
	for (i = 0; i + 2 <= DSN_HEADERS_MAX; i++) {
		if (s[i] != '\r' || s[i + 1] != '\n')
			continue;
		line = i + 2;
		if (s[line] != ' ' && s[line] != '\t')
			field_start = line;
	}
	return field_start ? field_start : line ? line : DSN_HEADERS_MAX;
}

/* plan_part3 - what of the original goes back, and how it is encoded. */
static void plan_part3(struct plan *p, const struct dsn_report *r)
{
	bool clean, eight_bit;

	p->part3 = PART3_NONE;
	p->cte = CTE_7BIT;
	p->body = r->original;
	p->body_len = 0;
	if (r->original == NULL || r->original_len == 0)
		return;
	if (!r->headers_only && r->original_len <= r->original_max) {
		content_scan(r->original, r->original_len, &clean, &eight_bit);
		if (clean) {
			p->part3 = PART3_FULL;
			p->body_len = r->original_len;
			p->cte = eight_bit ? CTE_8BIT : CTE_7BIT;
		}
	}
	if (p->part3 == PART3_NONE) {
		p->part3 = PART3_HEADERS;
		p->body_len = header_section(r->original, r->original_len);
		content_scan(p->body, p->body_len, &clean, &eight_bit);
		if (!clean || (eight_bit && !r->smtputf8))
			p->cte = CTE_QP;
		else
			p->cte = eight_bit ? CTE_8BIT : CTE_7BIT;
	}
	p->body_crlf = p->body_len >= 2 && p->body[p->body_len - 2] == '\r' && p->body[p->body_len - 1] == '\n';
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* plan_make - check the report and decide; false if it is unusable. */
static bool plan_make(struct plan *p, const struct dsn_report *r)
{
	size_t i;
	int kind = -1;

	if (r->reporting_mta == NULL || !host_ok(r->reporting_mta) || r->to == NULL || r->to[0] == '\0' ||
	    r->rcpts == NULL || r->rcpt_count == 0 || !date_of(p->date, r->now_ms))
		return false;
	for (i = 0; i < r->rcpt_count; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		int k = action_kind(rc->action);

		if (k < 0 || (kind >= 0 && k != kind) || rc->address == NULL || rc->address[0] == '\0' ||
		    rc->status == NULL || !status_ok(rc->status))
			return false;
		kind = k;
	}
	p->kind = (enum kind)kind;
	id_clean(p->seed, SEED_MAX, r->boundary_seed);
	id_clean(p->qid, QID_MAX, r->qid);
	if (p->seed[0] == '\0')
		return false;
	plan_part3(p, r);
	return true;
}

/* ---- the text part ---- */

/* Plain words for RFC 3463 status codes: subject.detail, then subject alone. */
static const struct {
	const char *code;
	const char *text;
} reasons[] = {
        {"1.1", "the mailbox does not exist at the receiving system"},
        {"1.2", "the recipient's domain does not exist or cannot receive mail"},
        {"1.3", "the recipient address is not valid"},
        {"1.6", "the mailbox has moved"},
        {"1.10", "the recipient's domain says it accepts no mail"},
        {"2.1", "the mailbox has been disabled"},
        {"2.2", "the mailbox is full"},
        {"2.3", "the message is larger than the mailbox allows"},
        {"3.4", "the message is larger than the receiving system allows"},
        {"4.1", "the receiving server did not answer"},
        {"4.2", "the connection to the receiving server failed"},
        {"4.3", "a temporary problem looking up the recipient's domain"},
        {"4.4", "no mail server could be found for the recipient's domain"},
        {"4.6", "the message was forwarded in a loop"},
        {"4.7", "the message could not be delivered in the time allowed"},
        {"7.1", "the receiving system refused the message by its policy"},
        {"1", "a problem with the recipient address"},
        {"2", "a problem with the recipient's mailbox"},
        {"3", "a problem at the receiving mail system"},
        {"4", "a network or routing problem"},
        {"5", "a problem in the conversation between mail servers"},
        {"6", "a problem with the message's content or format"},
        {"7", "a security or policy restriction"},
};

static const char *reason_for(const char *status)
{
	const char *rest = status + 2; /* "subject.detail" */
	size_t subject = strcspn(rest, "."), i;

	for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strcmp(reasons[i].code, rest) == 0)
			return reasons[i].text;
	for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strlen(reasons[i].code) == subject && strncmp(reasons[i].code, rest, subject) == 0)
			return reasons[i].text;
	return "no further detail was given";
}

/* text_diagnostic - a reply as indented lines, every one made safe and wrapped. */
static void text_diagnostic(struct out *o, const char *reply)
{
	char buf[DIAG_MAX];
	struct text t;
	size_t i = 0;

	text_init(&t, buf, sizeof buf);
	text_safe(&t, reply, strlen(reply), SAFE_LINES);
	text_trim(&t);
	while (i < t.len) {
		const char *lf = memchr(t.s + i, '\n', t.len - i);
		size_t end = lf ? (size_t)(lf - t.s) : t.len;

		wrap(o, 6, t.s + i, end - i);
		i = end + 1;
	}
}

static void text_recipient(struct out *o, const struct dsn_rcpt *rc)
{
	char buf[VALUE_MAX], host[VALUE_MAX], line[2 * VALUE_MAX], date[DATE_SIZE];
	struct text t, h;

	/* the address whole on its line, not wrapped (VALUE_MAX keeps it short of 998) */
	text_init(&t, buf, sizeof buf);
	text_safe(&t, rc->address, strlen(rc->address), 0);
	text_trim(&t);
	out_str(o, "  <");
	out_put(o, t.s, t.len);
	out_str(o, ">\r\n");

	text_init(&h, host, sizeof host);
	if (rc->remote_mta)
		text_safe(&h, rc->remote_mta, strlen(rc->remote_mta), 0);
	text_trim(&h);
	switch (rc->action) {
	case DSN_FAILED:
		str_format(line, sizeof line, "Not delivered: %s (%s).", reason_for(rc->status), rc->status);
		break;
	case DSN_DELAYED:
		if (date_of(date, rc->retry_until_ms))
			str_format(line, sizeof line, "Not delivered yet: %s (%s). Trying until %s.",
			           reason_for(rc->status), rc->status, date);
		else
			str_format(line, sizeof line, "Not delivered yet: %s (%s).", reason_for(rc->status),
			           rc->status);
		break;
	case DSN_DELIVERED:
		str_format(line, sizeof line, "Delivered.");
		break;
	case DSN_RELAYED:
		str_format(line, sizeof line, "Passed on to %s, which does not send delivery reports back.",
		           h.len ? h.s : "another mail system");
		break;
	case DSN_EXPANDED:
		str_format(line, sizeof line, "Delivered to a mailing list or forwarding address, which passes it on.");
		break;
	}
	wrap(o, 4, line, strlen(line));
	if (rc->diagnostic && rc->diagnostic[0]) {
		if (h.len)
			str_format(line, sizeof line, "The receiving server %s answered:", h.s);
		else
			str_format(line, sizeof line, "The receiving server answered:");
		wrap(o, 4, line, strlen(line));
		text_diagnostic(o, rc->diagnostic);
	}
	out_str(o, "\r\n");
}

static void part_text(struct out *o, const struct dsn_report *r, const struct plan *p)
{
	char buf[1024], arrival[DATE_SIZE];
	size_t i;

	out_str(o, "Content-Type: text/plain; charset=us-ascii\r\n");
	out_str(o, "Content-Description: Notification\r\n\r\n");
	str_format(buf, sizeof buf, "This is the mail server at %s.", r->reporting_mta);
	para(o, buf);
	switch (p->kind) {
	case KIND_FAILURE:
		para(o, "Your message could not be delivered to the recipients listed below. The server has "
		        "given up and will not try again for them.");
		break;
	case KIND_DELAY:
		para(o, "Your message has not been delivered yet to the recipients listed below. This is only a "
		        "warning: the server is still trying, and you do not need to send the message again. If it "
		        "cannot be delivered by the time shown, you will get another report.");
		break;
	case KIND_SUCCESS:
		para(o, "As you asked, this report tells you what became of your message for the recipients "
		        "listed below. You do not need to do anything.");
		break;
	}
	if (date_of(arrival, r->arrival_ms) && p->qid[0])
		str_format(buf, sizeof buf, "Your message was received on %s (queue ID %s).", arrival, p->qid);
	else if (date_of(arrival, r->arrival_ms))
		str_format(buf, sizeof buf, "Your message was received on %s.", arrival);
	else if (p->qid[0])
		str_format(buf, sizeof buf, "Your message has queue ID %s.", p->qid);
	else
		buf[0] = '\0';
	if (p->part3 == PART3_FULL)
		str_format(buf + strlen(buf), sizeof buf - strlen(buf), "%sA copy of it is attached at the end.",
		           buf[0] ? " " : "");
	else if (p->part3 == PART3_HEADERS)
		str_format(buf + strlen(buf), sizeof buf - strlen(buf),
		           "%sIts header is attached at the end; the rest was left out.", buf[0] ? " " : "");
	if (buf[0])
		para(o, buf);
	for (i = 0; i < r->rcpt_count; i++)
		text_recipient(o, &r->rcpts[i]);
	if (p->kind == KIND_FAILURE)
		para(o, "Check each address for typing mistakes and try again. If the problem goes on, pass this "
		        "report to your mail administrator: the technical details that follow will help them.");
}

/* ---- the delivery-status part ---- */

static void status_rcpt(struct out *o, const struct dsn_rcpt *rc, bool global)
{
	char buf[DIAG_MAX], date[DATE_SIZE];
	struct text t;

	if (rc->orcpt) {
		text_init(&t, buf, sizeof buf);
		text_orcpt(&t, rc->orcpt, global);
		text_trim(&t);
		field_text(o, "Original-Recipient", &t);
	}
	text_init(&t, buf, VALUE_MAX);
	text_address(&t, rc->address, global);
	text_trim(&t);
	field_text(o, "Final-Recipient", &t);
	field_str(o, "Action", action_name(rc->action));
	field_str(o, "Status", rc->status);
	if (rc->remote_mta && rc->remote_mta[0]) {
		text_init(&t, buf, VALUE_MAX);
		text_str(&t, "dns; ");
		text_safe(&t, rc->remote_mta, strlen(rc->remote_mta), 0);
		text_trim(&t);
		field_text(o, "Remote-MTA", &t);
	}
	if (rc->diagnostic && rc->diagnostic[0]) {
		text_init(&t, buf, sizeof buf);
		text_str(&t, "smtp; ");
		text_safe(&t, rc->diagnostic, strlen(rc->diagnostic), 0);
		text_trim(&t);
		field_text(o, "Diagnostic-Code", &t);
	}
	if (date_of(date, rc->last_attempt_ms))
		field_str(o, "Last-Attempt-Date", date);
	if (rc->action == DSN_DELAYED && date_of(date, rc->retry_until_ms))
		field_str(o, "Will-Retry-Until", date);
}

static void part_status(struct out *o, const struct dsn_report *r)
{
	char buf[VALUE_MAX], date[DATE_SIZE];
	struct text t;
	size_t i;

	if (r->smtputf8) {
		/* RFC 6533 6.2: its fields may hold UTF-8; 8bit it is. */
		out_str(o, "Content-Type: message/global-delivery-status\r\n");
		out_str(o, "Content-Transfer-Encoding: 8bit\r\n");
	} else {
		out_str(o, "Content-Type: message/delivery-status\r\n");
	}
	out_str(o, "Content-Description: Delivery report\r\n\r\n");
	if (r->envid) {
		text_init(&t, buf, sizeof buf);
		text_xtext_value(&t, r->envid, 0);
		text_trim(&t);
		field_text(o, "Original-Envelope-Id", &t);
	}
	text_init(&t, buf, sizeof buf);
	text_str(&t, "dns; ");
	text_str(&t, r->reporting_mta);
	field_text(o, "Reporting-MTA", &t);
	if (date_of(date, r->arrival_ms))
		field_str(o, "Arrival-Date", date);
	for (i = 0; i < r->rcpt_count; i++) {
		out_str(o, "\r\n"); /* an empty line between blocks (RFC 3464 2.1), none after the last */
		status_rcpt(o, &r->rcpts[i], r->smtputf8);
	}
}

/* ---- the returned message ---- */

static void part_original(struct out *o, const struct dsn_report *r, const struct plan *p)
{
	if (p->part3 == PART3_FULL) {
		out_str(o, r->smtputf8 ? "Content-Type: message/global\r\n" : "Content-Type: message/rfc822\r\n");
		out_str(o, "Content-Description: Undelivered message\r\n");
	} else {
		out_str(o, r->smtputf8 ? "Content-Type: message/global-headers\r\n"
		                       : "Content-Type: text/rfc822-headers\r\n");
		out_str(o, "Content-Description: Header of the undelivered message\r\n");
	}
	if (p->cte == CTE_8BIT)
		out_str(o, "Content-Transfer-Encoding: 8bit\r\n");
	else if (p->cte == CTE_QP)
		out_str(o, "Content-Transfer-Encoding: quoted-printable\r\n");
	out_str(o, "\r\n");
	if (p->cte == CTE_QP) {
		qp(o, p->body, p->body_len);
		return;
	}
	out_put(o, p->body, p->body_len);
	if (p->body_len > 0 && !p->body_crlf)
		out_str(o, "\r\n");
}

/* ---- the whole ---- */

static void header(struct out *o, const struct dsn_report *r, const struct plan *p)
{
	static const char *const subjects[] = {
	        [KIND_FAILURE] = "Undelivered Mail Returned to Sender",
	        [KIND_DELAY] = "Delayed Mail (still being retried)",
	        [KIND_SUCCESS] = "Successful Mail Delivery Report",
	};
	char buf[VALUE_MAX + HOST_MAX + 64], to[VALUE_MAX];
	struct text t;

	str_format(buf, sizeof buf, "Mail Delivery System <MAILER-DAEMON@%s>", r->reporting_mta);
	field_str(o, "From", buf);
	text_init(&t, to, sizeof to);
	text_safe(&t, r->to, strlen(r->to), r->smtputf8 ? SAFE_UTF8 : 0);
	text_trim(&t);
	str_format(buf, sizeof buf, "<%s>", t.s);
	field_str(o, "To", buf);
	field_str(o, "Subject", subjects[p->kind]);
	field_str(o, "Date", p->date);
	str_format(buf, sizeof buf, "<%s%s%s@%s>", p->seed, p->qid[0] ? "." : "", p->qid, r->reporting_mta);
	field_str(o, "Message-ID", buf);
	field_str(o, "Auto-Submitted", "auto-replied");
	field_str(o, "MIME-Version", "1.0");
	str_format(buf, sizeof buf, "multipart/report; report-type=%s; boundary=\"%s\"",
	           r->smtputf8 ? "global-delivery-status" : "delivery-status", p->boundary);
	field_str(o, "Content-Type", buf);
	/* RFC 2045 6.4: a multipart holding an 8bit part is 8bit. */
	if (r->smtputf8 || p->cte == CTE_8BIT)
		field_str(o, "Content-Transfer-Encoding", "8bit");
	out_str(o, "\r\n");
}

static void delimiter(struct out *o, const struct plan *p, bool last)
{
	out_str(o, "\r\n--");
	out_str(o, p->boundary);
	out_str(o, last ? "--\r\n" : "\r\n");
}

/* boundary_clear - the boundary is in part 3 nowhere, and in the rest only in Content-Type. */
static bool boundary_clear(const struct dsn_report *r, const struct plan *p)
{
	struct out dry = {.needle = p->boundary, .needle_len = strlen(p->boundary)};

	if (p->body_len > 0 && memmem(p->body, p->body_len, dry.needle, dry.needle_len) != NULL)
		return false;
	header(&dry, r, p);
	part_text(&dry, r, p);
	part_status(&dry, r);
	out_flush(&dry);
	return dry.found == 1;
}

/*
 * plan_boundary - "=_SEED_HASH", HASH from the seed. Should it be found,
 * the next tries mix in a hash of part 3, which its author cannot arrange
 * to contain. false if every try is found (it has not happened).
 */
static bool plan_boundary(struct plan *p, const struct dsn_report *r)
{
	uint64_t h = fnv1a(0xcbf29ce484222325u, p->seed, strlen(p->seed));
	unsigned try;

	for (try = 0; try < BOUNDARY_TRIES; try++) {
		if (try == 1)
			h ^= fnv1a(0xcbf29ce484222325u, p->body, p->body_len);
		str_format(p->boundary, sizeof p->boundary, "=_%s_%016llx", p->seed,
		           (unsigned long long)mix64(h + try * 0x9e3779b97f4a7c15u));
		if (boundary_clear(r, p))
			return true;
	}
	return false;
}

bool msg_dsn_build(const struct dsn_report *report, dsn_emit *emit, void *ctx)
{
	struct plan plan;
	struct out out = {.emit = emit, .ctx = ctx}, *o = &out;

	if (report == NULL || emit == NULL || !plan_make(&plan, report) || !plan_boundary(&plan, report))
		return false;
	header(o, report, &plan);
	out_str(o, "This is a delivery status notification in MIME format.\r\n");
	delimiter(o, &plan, false);
	part_text(o, report, &plan);
	delimiter(o, &plan, false);
	part_status(o, report);
	if (plan.part3 != PART3_NONE) {
		delimiter(o, &plan, false);
		part_original(o, report, &plan);
	}
	delimiter(o, &plan, true);
	out_flush(o);
	return true;
}

void msg_dsn_status_for_reply(const char *reply, char status[DSN_STATUS_SIZE])
{
	const char *fallback = "4.0.0";
	size_t n;

	if (reply != NULL && (reply[0] == '2' || reply[0] == '4' || reply[0] == '5') && digits(reply, 3) == 3 &&
	    (reply[3] == ' ' || reply[3] == '-' || reply[3] == '\0' || reply[3] == '\r')) {
		fallback = reply[0] == '5' ? "5.0.0" : reply[0] == '4' ? "4.0.0" : "2.0.0";
		if (reply[3] == ' ' || reply[3] == '-') {
			const char *code = reply + 4;

			n = status_len(code);
			if (n > 0 && code[0] == reply[0] &&
			    (code[n] == ' ' || code[n] == '\0' || code[n] == '\r' || code[n] == '\n')) {
				str_copy_n(status, DSN_STATUS_SIZE, code, n);
				return;
			}
		}
	}
	str_copy(status, DSN_STATUS_SIZE, fallback);
}
