/*
 * test_msg_dsn.c - delivery status notifications (msg/msg_dsn.c).
 *
 * Every notification built here is read back by a small MIME reader of
 * this file's own: every line ends in CRLF and is at most 998 octets, the
 * boundary occurs only in Content-Type and as delimiter lines, the header
 * fields are there once each, and the parts and the delivery-status blocks
 * are split out so each test can check values field by field.
 *
 * With DSN_OUT_DIR set, some of the notifications are also written there
 * (NAME.eml) for tests/e2e/test_dsn_parse.py to read with Python's email
 * package; that test knows what each file must hold, so keep the two in
 * step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include "msg/msg_dsn.h"
#include "unit.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define ARRIVAL_MS 1700000000000 /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define ATTEMPT_MS 1700000100000
#define NOW_MS     1700000200000
#define RETRY_MS   1700400000000

static const char original_7bit[] = "From: Alice <alice@example.org>\r\n"
                                    "To: bob@example.com\r\n"
                                    "Subject: lunch\r\n"
                                    "Message-ID: <m1@example.org>\r\n"
                                    "\r\n"
                                    "Shall we meet at noon?\r\n"
                                    "-- \r\n"
                                    "Alice\r\n";

/* ---- collecting and reading the output ---- */

struct buf {
	char *s;
	size_t len, cap;
	size_t calls;
};

static void collect(void *ctx, const char *bytes, size_t len)
{
	struct buf *b = ctx;

	b->calls++;
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			abort();
	}
	memcpy(b->s + b->len, bytes, len);
	b->len += len;
	b->s[b->len] = '\0';
}

static void buf_reset(struct buf *b)
{
	b->len = 0;
	b->calls = 0;
	if (b->s)
		b->s[0] = '\0';
}

struct span {
	const char *s;
	size_t len;
};

#define PARTS_MAX  4
#define BLOCKS_MAX 64

struct view {
	struct span head, body;
	char boundary[128];
	size_t parts;
	struct span part_head[PARTS_MAX], part_body[PARTS_MAX];
	size_t blocks; /* of the delivery-status part */
	struct span block[BLOCKS_MAX];
};

static bool span_has(struct span sp, const char *needle)
{
	return sp.len >= strlen(needle) && memmem(sp.s, sp.len, needle, strlen(needle)) != NULL;
}

static size_t count_of(const char *s, size_t len, const char *needle)
{
	size_t n = 0, k = strlen(needle);
	const char *p = s, *end = s + len;

	while ((p = memmem(p, (size_t)(end - p), needle, k)) != NULL) {
		n++;
		p += k;
	}
	return n;
}

/* lines_ok - every line ends in CRLF (no bare CR or LF) and holds at most max octets. */
static bool lines_ok(struct span sp, size_t max, const char *what)
{
	size_t i, line = 0;

	if (sp.len < 2 || sp.s[sp.len - 2] != '\r' || sp.s[sp.len - 1] != '\n') {
		UNIT_FAIL("%s: does not end in CRLF", what);
		return false;
	}
	for (i = 0; i < sp.len; i++) {
		if (sp.s[i] == '\r' && i + 1 < sp.len && sp.s[i + 1] == '\n') {
			i++;
			line = 0;
			continue;
		}
		if (sp.s[i] == '\r' || sp.s[i] == '\n') {
			UNIT_FAIL("%s: bare CR or LF at %zu", what, i);
			return false;
		}
		if (++line > max) {
			UNIT_FAIL("%s: line over %zu octets at %zu", what, max, i);
			return false;
		}
	}
	return true;
}

static bool seven_bit(struct span sp)
{
	for (size_t i = 0; i < sp.len; i++)
		if ((unsigned char)sp.s[i] >= 0x80)
			return false;
	return true;
}

/* printable - printable ASCII and CRLF only. */
static bool printable(struct span sp)
{
	for (size_t i = 0; i < sp.len; i++) {
		unsigned char c = (unsigned char)sp.s[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c < 0x20 || c >= 0x7F)
			return false;
	}
	return true;
}

/* split_head - a header section (with its last CRLF) and the body after the empty line. */
static bool split_head(struct span all, struct span *head, struct span *body)
{
	const char *end;

	if (all.len >= 2 && all.s[0] == '\r' && all.s[1] == '\n') {
		*head = (struct span){all.s, 0};
		*body = (struct span){all.s + 2, all.len - 2};
		return true;
	}
	end = memmem(all.s, all.len, "\r\n\r\n", 4);
	if (end == NULL)
		return false;
	*head = (struct span){all.s, (size_t)(end - all.s) + 2};
	*body = (struct span){end + 4, all.len - (size_t)(end - all.s) - 4};
	return true;
}

/*
 * field_get - the value of field name in a header section, unfolded (CRLF
 * before white space removed) and trimmed, into out; returns how many times
 * the field is there.
 */
static size_t field_get(struct span head, const char *name, char *out, size_t size)
{
	size_t i = 0, found = 0, k = strlen(name);

	if (size)
		out[0] = '\0';
	while (i < head.len) {
		const char *line = head.s + i;
		const char *eol = memmem(line, head.len - i, "\r\n", 2);
		size_t line_len = eol ? (size_t)(eol - line) : head.len - i;

		if (line_len > k && line[k] == ':' && strncasecmp(line, name, k) == 0) {
			found++;
			if (found == 1) {
				size_t n = 0, j = k + 1;
				/* this line, then continuation lines */
				for (;;) {
					for (; j < line_len && n + 1 < size; j++)
						out[n++] = line[j];
					i += line_len + 2;
					if (i >= head.len || (head.s[i] != ' ' && head.s[i] != '\t'))
						break;
					line = head.s + i;
					eol = memmem(line, head.len - i, "\r\n", 2);
					line_len = eol ? (size_t)(eol - line) : head.len - i;
					j = 0;
				}
				while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
					n--;
				out[n] = '\0';
				size_t lead = strspn(out, " \t");
				memmove(out, out + lead, n - lead + 1);
				continue;
			}
		}
		i += line_len + 2;
	}
	return found;
}

/* field_is - the field is there once with exactly this value. */
#define FIELD_IS(head, name, want)                                                                      \
	do {                                                                                            \
		char got_[4096];                                                                        \
		size_t n_ = field_get((head), (name), got_, sizeof got_);                               \
		if (n_ == 1 && strcmp(got_, (want)) == 0)                                               \
			unit_passed++;                                                                  \
		else                                                                                    \
			UNIT_FAIL("%s: got \"%s\" (%zu times), want \"%s\"", (name), got_, n_, (want)); \
	} while (0)

#define FIELD_ABSENT(head, name)                                       \
	do {                                                           \
		char got_[64];                                         \
		if (field_get((head), (name), got_, sizeof got_) == 0) \
			unit_passed++;                                 \
		else                                                   \
			UNIT_FAIL("%s: there, want none", (name));     \
	} while (0)

/* blocks_split - a delivery-status body as its blocks of lines (RFC 3464 2.1). */
static size_t blocks_split(struct span body, struct span *blocks, size_t max)
{
	size_t i = 0, n = 0;
	const char *start = NULL;

	while (i < body.len) {
		const char *line = body.s + i;
		const char *eol = memmem(line, body.len - i, "\r\n", 2);
		size_t line_len = eol ? (size_t)(eol - line) : body.len - i;

		if (line_len == 0 && start) {
			if (n < max)
				blocks[n] = (struct span){start, (size_t)(line - start)};
			n++;
			start = NULL;
		} else if (line_len > 0 && start == NULL) {
			start = line;
		}
		i += line_len + 2;
	}
	if (start) {
		if (n < max)
			blocks[n] = (struct span){start, (size_t)(body.s + body.len - start)};
		n++;
	}
	return n;
}

static bool param_boundary(const char *ct, char *out, size_t size)
{
	const char *p = strstr(ct, "boundary=\"");
	const char *end;

	if (p == NULL)
		return false;
	p += 10;
	end = strchr(p, '"');
	if (end == NULL || (size_t)(end - p) >= size)
		return false;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return true;
}

/*
 * parse - read a notification back: the general checks that hold for every
 * one, then the view the tests look into. false (with the failure counted)
 * if it cannot be read.
 */
static bool parse(const struct buf *b, struct view *v)
{
	struct span all = {b->s, b->len};
	char ct[1024], delim[160], close[160];
	size_t i, delims = 0;
	const char *part_start = NULL;
	bool closed = false;
	static const char *const once[] = {"From",           "To",           "Subject",     "Date", "Message-ID",
	                                   "Auto-Submitted", "MIME-Version", "Content-Type"};

	memset(v, 0, sizeof *v);
	if (!lines_ok(all, 998, "notification") || !split_head(all, &v->head, &v->body)) {
		UNIT_FAIL("notification unreadable");
		return false;
	}
	for (i = 0; i < sizeof once / sizeof once[0]; i++) {
		char got[64];
		if (field_get(v->head, once[i], got, sizeof got) != 1)
			UNIT_FAIL("header field %s not there once", once[i]);
	}
	field_get(v->head, "Content-Type", ct, sizeof ct);
	if (!param_boundary(ct, v->boundary, sizeof v->boundary) || strlen(v->boundary) > 70 ||
	    strncmp(ct, "multipart/report; report-type=", 30) != 0) {
		UNIT_FAIL("Content-Type: got \"%s\"", ct);
		return false;
	}
	str_format(delim, sizeof delim, "--%s", v->boundary);
	str_format(close, sizeof close, "--%s--", v->boundary);
	/* walk the body's lines: parts between delimiter lines */
	for (i = 0; i < v->body.len;) {
		const char *line = v->body.s + i;
		const char *eol = memmem(line, v->body.len - i, "\r\n", 2);
		size_t line_len = (size_t)(eol - line);

		if (closed) {
			UNIT_FAIL("text after the close delimiter");
			return false;
		}
		if (line_len >= strlen(delim) && memcmp(line, delim, strlen(delim)) == 0) {
			bool last = line_len == strlen(close) && memcmp(line, close, line_len) == 0;
			if (!last && line_len != strlen(delim)) {
				UNIT_FAIL("a line starts with the boundary but is no delimiter");
				return false;
			}
			if (part_start) {
				/* the CRLF before a delimiter belongs to it (RFC 2046 5.1.1) */
				struct span part = {part_start, (size_t)(line - part_start) - 2};
				if (v->parts >= PARTS_MAX ||
				    !split_head(part, &v->part_head[v->parts], &v->part_body[v->parts])) {
					UNIT_FAIL("part %zu unreadable", v->parts);
					return false;
				}
				v->parts++;
			}
			delims++;
			part_start = eol + 2;
			closed = last;
		}
		i += line_len + 2;
	}
	if (!closed || delims != v->parts + 1 || (v->parts != 2 && v->parts != 3)) {
		UNIT_FAIL("got %zu parts, %zu delimiters, closed %d", v->parts, delims, closed);
		return false;
	}
	/* the boundary: in Content-Type and the delimiter lines, nowhere else */
	if (count_of(b->s, b->len, v->boundary) != delims + 1) {
		UNIT_FAIL("boundary occurs %zu times, want %zu", count_of(b->s, b->len, v->boundary), delims + 1);
		return false;
	}
	{
		char got[256];
		field_get(v->part_head[0], "Content-Type", got, sizeof got);
		CHECK_STR(got, "text/plain; charset=us-ascii");
		CHECK(printable(v->part_body[0]));
		field_get(v->part_head[1], "Content-Type", got, sizeof got);
		CHECK(strcmp(got, "message/delivery-status") == 0 ||
		      strcmp(got, "message/global-delivery-status") == 0);
	}
	v->blocks = blocks_split(v->part_body[1], v->block, BLOCKS_MAX);
	CHECK(v->blocks >= 2);
	unit_passed++;
	return true;
}

/* build - msg_dsn_build into b, then the same again must give the same bytes. */
static bool build(const struct dsn_report *r, struct buf *b)
{
	struct buf again = {0};
	bool ok;

	buf_reset(b);
	ok = msg_dsn_build(r, collect, b);
	if (ok) {
		CHECK(msg_dsn_build(r, collect, &again));
		CHECK(again.len == b->len && memcmp(again.s, b->s, b->len) == 0);
	}
	free(again.s);
	return ok;
}

/* save - with DSN_OUT_DIR set, the notification as DSN_OUT_DIR/NAME.eml. */
static void save(const char *name, const struct buf *b)
{
	const char *dir = getenv("DSN_OUT_DIR");
	char path[1024];
	FILE *f;

	if (dir == NULL || dir[0] == '\0')
		return;
	if (!str_format(path, sizeof path, "%s/%s.eml", dir, name) || (f = fopen(path, "wb")) == NULL) {
		UNIT_FAIL("cannot write %s/%s.eml", dir, name);
		return;
	}
	CHECK_INT(fwrite(b->s, 1, b->len, f), b->len);
	CHECK(fclose(f) == 0);
}

static const char *date_text(int64_t ms)
{
	static char buf[4][64];
	static int next;
	char *d = buf[next++ % 4];

	if (!time_rfc5322(d, 64, (time_t)(ms / 1000)))
		abort();
	return d;
}

/* ---- fixtures ---- */

static struct dsn_rcpt bob(void)
{
	return (struct dsn_rcpt){
	        .address = "bob@example.com",
	        .orcpt = "rfc822;Bob+2Bwork@Example.COM",
	        .action = DSN_FAILED,
	        .status = "5.1.1",
	        .remote_mta = "mx.example.com",
	        .diagnostic = "550 5.1.1 <bob@example.com>: user unknown",
	        .last_attempt_ms = ATTEMPT_MS,
	};
}

static struct dsn_report report_for(const struct dsn_rcpt *rcpts, size_t count)
{
	return (struct dsn_report){
	        .reporting_mta = "mx.example.org",
	        .qid = "0ABCDEFGHJKM",
	        .to = "alice@example.org",
	        .envid = "QQ+2B314159",
	        .arrival_ms = ARRIVAL_MS,
	        .now_ms = NOW_MS,
	        .rcpts = rcpts,
	        .rcpt_count = count,
	        .original = original_7bit,
	        .original_len = sizeof original_7bit - 1,
	        .original_max = 1 << 20,
	        .boundary_seed = "0NEWQUEUEID1",
	};
}

static struct span header_of(const char *s)
{
	const char *end = strstr(s, "\r\n\r\n");
	return (struct span){s, end ? (size_t)(end - s) + 2 : strlen(s)};
}

/* flat_has - the text holds want, with its line breaks and indentation read as single spaces. */
static bool flat_has(struct span sp, const char *want)
{
	char *flat = malloc(sp.len + 1);
	size_t n = 0;
	bool found;

	if (flat == NULL)
		abort();
	for (size_t i = 0; i < sp.len; i++) {
		char c = sp.s[i] == '\r' || sp.s[i] == '\n' ? ' ' : sp.s[i];
		if (c == ' ' && n > 0 && flat[n - 1] == ' ')
			continue;
		flat[n++] = c;
	}
	flat[n] = '\0';
	found = strstr(flat, want) != NULL;
	free(flat);
	return found;
}

static bool span_eq(struct span a, const char *s, size_t len)
{
	return a.len == len && memcmp(a.s, s, len) == 0;
}

/* ---- tests ---- */

static void test_failed_full(void)
{
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;
	char got[256];

	CHECK(build(&r, &b));
	if (!parse(&b, &v))
		goto out;
	save("failed", &b);
	CHECK(seven_bit((struct span){b.s, b.len}));
	FIELD_IS(v.head, "From", "Mail Delivery System <MAILER-DAEMON@mx.example.org>");
	FIELD_IS(v.head, "To", "<alice@example.org>");
	FIELD_IS(v.head, "Subject", "Undelivered Mail Returned to Sender");
	FIELD_IS(v.head, "Date", date_text(NOW_MS));
	FIELD_IS(v.head, "Message-ID", "<0NEWQUEUEID1.0ABCDEFGHJKM@mx.example.org>");
	FIELD_IS(v.head, "Auto-Submitted", "auto-replied");
	FIELD_IS(v.head, "MIME-Version", "1.0");
	FIELD_ABSENT(v.head, "Content-Transfer-Encoding");
	field_get(v.head, "Content-Type", got, sizeof got);
	CHECK(strncmp(got, "multipart/report; report-type=delivery-status; boundary=\"=_0NEWQUEUEID1_", 72) == 0);
	CHECK_INT(v.parts, 3);

	/* the text names the recipient, the reason and the reply */
	CHECK(span_has(v.part_body[0], "  <bob@example.com>\r\n"));
	CHECK(span_has(v.part_body[0], "mailbox does not exist"));
	CHECK(span_has(v.part_body[0], "      550 5.1.1 <bob@example.com>: user unknown\r\n"));
	CHECK(flat_has(v.part_body[0], "(queue ID 0ABCDEFGHJKM). A copy of it is attached at the end."));
	CHECK(lines_ok(v.part_body[0], 76, "text part"));

	FIELD_IS(v.part_head[1], "Content-Type", "message/delivery-status");
	CHECK_INT(v.blocks, 2);
	FIELD_IS(v.block[0], "Original-Envelope-Id", "QQ+314159");
	FIELD_IS(v.block[0], "Reporting-MTA", "dns; mx.example.org");
	FIELD_IS(v.block[0], "Arrival-Date", date_text(ARRIVAL_MS));
	FIELD_IS(v.block[1], "Original-Recipient", "rfc822; Bob+work@Example.COM");
	FIELD_IS(v.block[1], "Final-Recipient", "rfc822; bob@example.com");
	FIELD_IS(v.block[1], "Action", "failed");
	FIELD_IS(v.block[1], "Status", "5.1.1");
	FIELD_IS(v.block[1], "Remote-MTA", "dns; mx.example.com");
	FIELD_IS(v.block[1], "Diagnostic-Code", "smtp; 550 5.1.1 <bob@example.com>: user unknown");
	FIELD_IS(v.block[1], "Last-Attempt-Date", date_text(ATTEMPT_MS));
	FIELD_ABSENT(v.block[1], "Will-Retry-Until");

	FIELD_IS(v.part_head[2], "Content-Type", "message/rfc822");
	FIELD_ABSENT(v.part_head[2], "Content-Transfer-Encoding");
	CHECK(span_eq(v.part_body[2], original_7bit, sizeof original_7bit - 1));

	/* the boundary comes from the seed alone when nothing collides */
	{
		struct buf other = {0};
		struct view w;
		r.original = "Subject: other\r\n\r\nx\r\n";
		r.original_len = strlen(r.original);
		CHECK(build(&r, &other));
		if (parse(&other, &w))
			CHECK_STR(w.boundary, v.boundary);
		free(other.s);
	}
out:
	free(b.s);
}

static void test_headers_only(void)
{
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct span want = header_of(original_7bit);
	struct buf b = {0};
	struct view v;

	/* RET=HDRS */
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("headers-only", &b);
		CHECK_INT(v.parts, 3);
		FIELD_IS(v.part_head[2], "Content-Type", "text/rfc822-headers");
		FIELD_ABSENT(v.part_head[2], "Content-Transfer-Encoding");
		CHECK(span_eq(v.part_body[2], want.s, want.len));
		CHECK(!span_has(v.part_body[2], "noon"));
		CHECK(span_has(v.part_body[0], "Its header is attached"));
	}

	/* larger than original_max: the same */
	r.headers_only = false;
	r.original_max = r.original_len - 1;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		FIELD_IS(v.part_head[2], "Content-Type", "text/rfc822-headers");
		CHECK(span_eq(v.part_body[2], want.s, want.len));
	}

	/* exactly original_max: whole */
	r.original_max = r.original_len;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		FIELD_IS(v.part_head[2], "Content-Type", "message/rfc822");
		CHECK(span_eq(v.part_body[2], original_7bit, r.original_len));
	}

	/* no original: two parts */
	r.original = NULL;
	r.original_len = 0;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("no-original", &b);
		CHECK_INT(v.parts, 2);
		CHECK(!span_has(v.part_body[0], "attached"));
	}
	r.original = "";
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		CHECK_INT(v.parts, 2);

	/* a message without a body: all of it is header */
	r.original = "Subject: only\r\nX: y\r\n";
	r.original_len = strlen(r.original);
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		CHECK(span_eq(v.part_body[2], r.original, r.original_len));

	/* an empty header section */
	r.original = "\r\nbody only\r\n";
	r.original_len = strlen(r.original);
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		CHECK_INT(v.part_body[2].len, 0);
	free(b.s);
}

/* A header section over DSN_HEADERS_MAX is cut before a field that starts within it. */
static void test_huge_header(void)
{
	static const char line[] = "Received: from relay.example.net by mx.example.org; Mon, 1 Jan 2024\r\n"
	                           "\tcontinued for good measure\r\n";
	size_t line_len = sizeof line - 1, n = DSN_HEADERS_MAX / line_len + 10, i;
	char *orig = malloc(n * line_len + 32);
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;

	if (orig == NULL)
		abort();
	for (i = 0; i < n; i++)
		memcpy(orig + i * line_len, line, line_len);
	memcpy(orig + n * line_len, "\r\nbody\r\n", 8);
	r.original = orig;
	r.original_len = n * line_len + 8;
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		struct span h = v.part_body[2];
		CHECK(h.len <= DSN_HEADERS_MAX && h.len > DSN_HEADERS_MAX - 2 * line_len);
		CHECK(h.len % line_len == 0);
		CHECK(memcmp(h.s, orig, h.len) == 0);
	}
	free(orig);
	free(b.s);
}

/* qp_decode - quoted-printable back to bytes (RFC 2045 6.7), in place of out. */
static size_t qp_decode(struct span in, char *out)
{
	size_t i, n = 0;

	for (i = 0; i < in.len; i++) {
		if (in.s[i] == '=' && i + 2 < in.len + 1 && in.s[i + 1] == '\r' && in.s[i + 2] == '\n') {
			i += 2;
		} else if (in.s[i] == '=' && i + 2 < in.len) {
			char hex[3] = {in.s[i + 1], in.s[i + 2], 0};
			out[n++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[n++] = in.s[i];
		}
	}
	return n;
}

static void test_eight_bit(void)
{
	static const char orig[] = "From: =?utf-8?q?Ren=C3=A9?= <rene@example.org>\r\n"
	                           "Subject: caf\xc3\xa9 \xff raw\r\n"
	                           "\r\n"
	                           "Un caf\xc3\xa9?\r\n";
	static const char body_8bit[] = "From: rene@example.org\r\nSubject: plain\r\n\r\nUn caf\xc3\xa9?\r\n";
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct span want = header_of(orig);
	struct buf b = {0};
	struct view v;
	char *decoded = malloc(sizeof orig);

	if (decoded == NULL)
		abort();
	/* whole: 8bit, and so is the notification */
	r.original = orig;
	r.original_len = sizeof orig - 1;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("eight-bit", &b);
		FIELD_IS(v.head, "Content-Transfer-Encoding", "8bit");
		FIELD_IS(v.part_head[2], "Content-Type", "message/rfc822");
		FIELD_IS(v.part_head[2], "Content-Transfer-Encoding", "8bit");
		CHECK(span_eq(v.part_body[2], orig, sizeof orig - 1));
		CHECK(seven_bit(v.part_body[0]) && seven_bit(v.part_body[1]));
	}

	/* its header alone: quoted-printable, and the notification is 7-bit */
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("eight-bit-headers", &b);
		CHECK(seven_bit((struct span){b.s, b.len}));
		FIELD_ABSENT(v.head, "Content-Transfer-Encoding");
		FIELD_IS(v.part_head[2], "Content-Type", "text/rfc822-headers");
		FIELD_IS(v.part_head[2], "Content-Transfer-Encoding", "quoted-printable");
		CHECK(lines_ok(v.part_body[2], 76, "quoted-printable"));
		size_t n = qp_decode(v.part_body[2], decoded);
		/* the encoded text ends with the line break of the last header line */
		CHECK(n == want.len && memcmp(decoded, want.s, n) == 0);
	}

	/* 8-bit only in the body: the header goes as it is */
	r.original = body_8bit;
	r.original_len = sizeof body_8bit - 1;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		CHECK(seven_bit((struct span){b.s, b.len}));
		FIELD_ABSENT(v.part_head[2], "Content-Transfer-Encoding");
	}
	free(decoded);
	free(b.s);
}

/* An original that is not clean (bare LF, a long line, NUL) is not returned whole. */
static void test_unclean_original(void)
{
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;
	size_t long_len = 2000, i;
	char *orig = malloc(long_len + 200), *decoded = malloc(3 * long_len + 200);
	static const char *const bodies[] = {"bare\nLF\r\n", "NUL\0here\r\n", "bare\rCR\r\n"};

	if (orig == NULL || decoded == NULL)
		abort();
	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		memcpy(orig, "Subject: x\r\n\r\n", 14);
		memcpy(orig + 14, bodies[i], 10);
		r.original = orig;
		r.original_len = 14 + 10;
		CHECK(build(&r, &b));
		if (parse(&b, &v)) {
			FIELD_IS(v.part_head[2], "Content-Type", "text/rfc822-headers");
			CHECK(span_eq(v.part_body[2], "Subject: x\r\n", 12));
		}
	}
	/* a long line in the body */
	memcpy(orig, "Subject: x\r\n\r\n", 14);
	memset(orig + 14, 'a', long_len);
	memcpy(orig + 14 + long_len, "\r\n", 2);
	r.original_len = 16 + long_len;
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		FIELD_IS(v.part_head[2], "Content-Type", "text/rfc822-headers");
	/* a long line and a bare LF in the header: quoted-printable */
	memcpy(orig, "X-Long: ", 8);
	memset(orig + 8, 'b', long_len);
	memcpy(orig + 8 + long_len, "\r\nX-Bare: a\nb\r\n\r\nbody\r\n", 23);
	r.original_len = 8 + long_len + 23;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		FIELD_IS(v.part_head[2], "Content-Transfer-Encoding", "quoted-printable");
		size_t n = qp_decode(v.part_body[2], decoded);
		CHECK(n == 8 + long_len + 15 && memcmp(decoded, orig, n) == 0);
	}
	free(orig);
	free(decoded);
	free(b.s);
}

static void test_smtputf8(void)
{
	static const char orig[] =
	        "From: \xe7\x94\xa8\xe6\x88\xb7 <\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test>\r\n"
	        "Subject: \xe4\xbd\xa0\xe5\xa5\xbd\r\n"
	        "\r\n"
	        "\xe4\xbd\xa0\xe5\xa5\xbd\r\n";
	/* "δοκιμή@παράδειγμα.test" and a sender "用户@例子.test" */
	static const char rcpt_addr[] =
	        "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@"
	        "\xcf\x80\xce\xb1\xcf\x81\xce\xac\xce\xb4\xce\xb5\xce\xb9\xce\xb3\xce\xbc\xce\xb1.test";
	static const char sender[] = "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test";
	struct dsn_rcpt rc[2] = {bob(), bob()};
	struct dsn_report r = report_for(rc, 2);
	struct buf b = {0};
	struct view v;
	char want[512];

	rc[0].address = rcpt_addr;
	rc[0].orcpt = "utf-8;\\x{3B4}\\x{3BF}k@example.test";
	r.smtputf8 = true;
	r.to = sender;
	r.original = orig;
	r.original_len = sizeof orig - 1;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("smtputf8", &b);
		str_format(want, sizeof want, "<%s>", sender);
		FIELD_IS(v.head, "To", want);
		FIELD_IS(v.head, "Content-Transfer-Encoding", "8bit");
		field_get(v.head, "Content-Type", want, sizeof want);
		CHECK(strncmp(want, "multipart/report; report-type=global-delivery-status;", 53) == 0);
		FIELD_IS(v.part_head[1], "Content-Type", "message/global-delivery-status");
		FIELD_IS(v.part_head[1], "Content-Transfer-Encoding", "8bit");
		CHECK_INT(v.blocks, 3);
		str_format(want, sizeof want, "utf-8; %s", rcpt_addr);
		FIELD_IS(v.block[1], "Final-Recipient", want);
		FIELD_IS(v.block[1], "Original-Recipient", "utf-8; \\x{3B4}\\x{3BF}k@example.test");
		FIELD_IS(v.block[2], "Final-Recipient", "rfc822; bob@example.com");
		FIELD_IS(v.part_head[2], "Content-Type", "message/global");
		FIELD_IS(v.part_head[2], "Content-Transfer-Encoding", "8bit");
		CHECK(span_eq(v.part_body[2], orig, sizeof orig - 1));
		/* the text part stays US-ASCII: the address is escaped there */
		CHECK(span_has(v.part_body[0], "<\\x{3B4}\\x{3BF}\\x{3BA}\\x{3B9}\\x{3BC}\\x{3AE}@"));
	}

	/* header only: message/global-headers, 8bit (no need for quoted-printable) */
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("smtputf8-headers", &b);
		FIELD_IS(v.part_head[2], "Content-Type", "message/global-headers");
		FIELD_IS(v.part_head[2], "Content-Transfer-Encoding", "8bit");
		struct span h = header_of(orig);
		CHECK(span_eq(v.part_body[2], h.s, h.len));
	}

	/* a UTF-8 address without SMTPUTF8 (and with a space and a "+"): the 7-bit utf-8-addr-xtext form */
	rc[0].address = "\xc3\xa9t\xc3\xa9 x+y@example.test";
	r.smtputf8 = false;
	r.to = "alice@example.org";
	r.original = original_7bit;
	r.original_len = sizeof original_7bit - 1;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		CHECK(seven_bit((struct span){b.s, b.len}));
		FIELD_IS(v.block[1], "Final-Recipient", "utf-8; \\x{E9}t\\x{E9}\\x{20}x\\x{2B}y@example.test");
		FIELD_IS(v.part_head[1], "Content-Type", "message/delivery-status");
	}
	/* the same with SMTPUTF8: still xtext (it holds a space) */
	r.smtputf8 = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		FIELD_IS(v.block[1], "Final-Recipient", "utf-8; \\x{E9}t\\x{E9}\\x{20}x\\x{2B}y@example.test");
	/* and without the space: as it is, "+" and all */
	rc[0].address = "\xc3\xa9t\xc3\xa9+x@example.test";
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		FIELD_IS(v.block[1], "Final-Recipient", "utf-8; \xc3\xa9t\xc3\xa9+x@example.test");
	free(b.s);
}

/* nothing_starts - no line of the notification starts with s. */
static bool nothing_starts(const struct buf *b, const char *s)
{
	char needle[128];

	str_format(needle, sizeof needle, "\r\n%s", s);
	return strncmp(b->s, s, strlen(s)) != 0 && count_of(b->s, b->len, needle) == 0;
}

static void test_hostile(void)
{
	char diag[8192];
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;
	char got[16384];
	size_t n;

	/* a reply with line breaks that try to add fields, controls, 8-bit bytes, long words, and a NUL */
	n = (size_t)snprintf(diag, sizeof diag,
	                     "550 5.1.1 bad\r\nInjected: yes\r\n\r\n--=_0NEWQUEUEID1_x\nX-Bare-LF: 1\rX-Bare-CR: 1"
	                     " \x01\x1b[31mred\x7f \xff\xfe \xc3\xa9t\xc3\xa9 \xe2\x80\xa8 tab\there ");
	memset(diag + n, 'A', 3000);
	n += 3000;
	for (int i = 0; i < 400; i++)
		n += (size_t)snprintf(diag + n, sizeof diag - n, " w%d", i);
	memcpy(diag + n, "\0TAILMARK", 10);
	rc.diagnostic = diag;
	rc.remote_mta = "mx.example.com\r\nX-Evil-Remote: 1";
	rc.address = "bob\r\nX-Evil-Address: 1@example.com";
	rc.orcpt = "rfc822;a+0D+0AX-Evil-Orcpt:+201@example.com";
	r.to = "alice@example.org>\r\nBcc: <eve@example.net";
	r.envid = "abc\r\nX-Evil-Envid: 1";
	CHECK(build(&r, &b));
	if (!parse(&b, &v))
		goto out;
	save("hostile", &b);
	CHECK(seven_bit((struct span){b.s, b.len}));
	CHECK(nothing_starts(&b, "Injected"));
	CHECK(nothing_starts(&b, "X-Bare"));
	CHECK(nothing_starts(&b, "X-Evil"));
	CHECK(nothing_starts(&b, "Bcc"));
	CHECK(nothing_starts(&b, "--=_0NEWQUEUEID1_x"));
	CHECK(!memmem(b.s, b.len, "TAILMARK", 8));
	CHECK(lines_ok(v.part_body[0], 78, "text part"));
	CHECK(lines_ok(v.head, 78, "header"));

	FIELD_IS(v.head, "To", "<alice@example.org> Bcc: <eve@example.net>");
	FIELD_IS(v.block[0], "Original-Envelope-Id", "abc X-Evil-Envid: 1");
	FIELD_IS(v.block[1], "Final-Recipient", "rfc822; bob X-Evil-Address: 1@example.com");
	FIELD_IS(v.block[1], "Original-Recipient", "rfc822; a+0D+0AX-Evil-Orcpt:+201@example.com");
	FIELD_IS(v.block[1], "Remote-MTA", "dns; mx.example.com X-Evil-Remote: 1");
	CHECK_INT(field_get(v.block[1], "Diagnostic-Code", got, sizeof got), 1);
	{
		static const char want[] =
		        "smtp; 550 5.1.1 bad Injected: yes --=_0NEWQUEUEID1_x X-Bare-LF: 1 X-Bare-CR: 1 "
		        "\\x{01}\\x{1B}[31mred\\x{7F} \\x{FF}\\x{FE} \\x{E9}t\\x{E9} \\x{2028} tab "
		        "here AAA";
		if (strncmp(got, want, sizeof want - 1) == 0)
			unit_passed++;
		else
			UNIT_FAIL("Diagnostic-Code: got \"%.*s\", want \"%s\"", (int)sizeof want + 10, got, want);
	}
	CHECK(strstr(got, " w399") != NULL || strstr(got, "...") != NULL);
	CHECK(printable((struct span){got, strlen(got)}));

	/* the text part: the reply's own lines, indented; a bare CR shown */
	CHECK(span_has(v.part_body[0], "\r\n      550 5.1.1 bad\r\n      Injected: yes\r\n      --=_0NEWQUEUEID1_x\r\n"
	                               "      X-Bare-LF: 1\\x{0D}X-Bare-CR: 1 \\x{01}\\x{1B}[31mred\\x{7F}"));
	CHECK(span_has(v.part_body[0], "  <bob X-Evil-Address: 1@example.com>\r\n"));
out:
	free(b.s);
}

/* Values far too long for a line: bounded, folded, cut with "...". */
static void test_long_values(void)
{
	size_t big = 5000;
	char *addr = malloc(big + 20), *host = malloc(big + 1), *envid = malloc(big + 1), *diag = malloc(3 * big);
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;
	char got[16384];

	if (addr == NULL || host == NULL || envid == NULL || diag == NULL)
		abort();
	memset(addr, 'a', big);
	memcpy(addr + big, "@example.com", 13);
	memset(host, 'h', big);
	host[big] = '\0';
	memset(envid, 'e', big);
	envid[big] = '\0';
	memset(diag, 'd', 3 * big - 1);
	diag[3 * big - 1] = '\0';
	rc.address = addr;
	rc.orcpt = addr;
	rc.remote_mta = host;
	rc.diagnostic = diag;
	r.envid = envid;
	r.to = addr;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("long", &b);
		CHECK(lines_ok(v.part_body[0], 900, "text part"));
		CHECK(lines_ok(v.part_body[1], 900, "delivery-status part"));
		CHECK(field_get(v.block[1], "Final-Recipient", got, sizeof got) == 1 && strlen(got) < 900 &&
		      strncmp(got, "rfc822; aaaa", 12) == 0 && strstr(got, "...") != NULL);
		CHECK(field_get(v.block[1], "Diagnostic-Code", got, sizeof got) == 1 && strlen(got) < 4200 &&
		      strstr(got, "...") != NULL);
		CHECK(field_get(v.block[0], "Original-Envelope-Id", got, sizeof got) == 1 &&
		      strstr(got, "...") != NULL);
		CHECK(field_get(v.head, "To", got, sizeof got) == 1 && strlen(got) < 900);
	}
	/* a long UTF-8 address with SMTPUTF8 is cut between characters */
	for (size_t i = 0; i < 2000; i++)
		memcpy(addr + 2 * i, "\xc3\xa9", 2);
	memcpy(addr + 4000, "@example.com", 13);
	rc.orcpt = NULL;
	r.smtputf8 = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		CHECK(field_get(v.block[1], "Final-Recipient", got, sizeof got) == 1);
		size_t n = strlen(got);
		CHECK(strncmp(got, "utf-8; \xc3\xa9\xc3\xa9", 11) == 0 && n < 900 && n > 700);
		CHECK(strcmp(got + n - 5, "\xc3\xa9...") == 0);
	}
	free(addr);
	free(host);
	free(envid);
	free(diag);
	free(b.s);
}

/* An original holding the boundary the seed gives: another boundary is found. */
static void test_boundary_collision(void)
{
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;
	char first[128], orig[1024];

	CHECK(build(&r, &b));
	if (!parse(&b, &v))
		goto out;
	str_format(first, sizeof first, "%s", v.boundary);
	str_format(orig, sizeof orig,
	           "Subject: --%s\r\nX-Trap: %s\r\n\r\n--%s\r\nContent-Type: text/plain\r\n\r\nfake\r\n--%s--\r\n",
	           first, first, first, first);
	r.original = orig;
	r.original_len = strlen(orig);
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		save("collision", &b);
		CHECK(strcmp(v.boundary, first) != 0);
		CHECK(strncmp(v.boundary, "=_0NEWQUEUEID1_", 15) == 0);
		CHECK_INT(v.parts, 3);
		CHECK(span_eq(v.part_body[2], orig, r.original_len));
	}
	/* the same in a header section returned alone */
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (parse(&b, &v)) {
		CHECK(strcmp(v.boundary, first) != 0);
		CHECK(span_has(v.part_body[2], "X-Trap"));
	}
	/* in values from peers, which go into parts 1 and 2 and the header (found by fuzz_msg_dsn) */
	{
		char to[256], reply[256], envid[256];
		str_format(to, sizeof to, "x%s@example.org", first);
		str_format(reply, sizeof reply, "550 5.1.1 %s", first);
		str_format(envid, sizeof envid, "+3D%s", first + 1); /* xtext that decodes to it */
		for (int i = 0; i < 4; i++) {
			r = report_for(&rc, 1);
			rc = bob();
			if (i == 0)
				r.to = to;
			else if (i == 1)
				rc.diagnostic = reply;
			else if (i == 2)
				rc.remote_mta = reply;
			else
				r.envid = envid;
			CHECK(build(&r, &b));
			if (parse(&b, &v)) /* parse checks the boundary is only where it belongs */
				CHECK(strcmp(v.boundary, first) != 0);
		}
	}
out:
	free(b.s);
}

static void test_many_recipients(void)
{
	struct dsn_rcpt rc[3] = {bob(), bob(), bob()};
	struct dsn_report r = report_for(rc, 3);
	struct buf b = {0};
	struct view v;

	rc[0].orcpt = NULL;
	rc[1].address = "carol@example.net";
	rc[1].status = "5.4.7";
	rc[1].remote_mta = NULL;
	rc[1].diagnostic = NULL;
	rc[1].last_attempt_ms = 0;
	rc[1].orcpt = "rfc822;carol@example.net";
	rc[2].address = "dave@example.com";
	rc[2].status = "5.2.2";
	rc[2].orcpt = "bogus";
	rc[2].diagnostic = "552 5.2.2 mailbox full";
	r.envid = NULL;
	r.arrival_ms = 0;
	r.qid = NULL;
	CHECK(build(&r, &b));
	if (!parse(&b, &v))
		goto out;
	save("many", &b);
	FIELD_IS(v.head, "Message-ID", "<0NEWQUEUEID1@mx.example.org>");
	CHECK_INT(v.blocks, 4);
	FIELD_ABSENT(v.block[0], "Original-Envelope-Id");
	FIELD_ABSENT(v.block[0], "Arrival-Date");
	FIELD_IS(v.block[0], "Reporting-MTA", "dns; mx.example.org");
	FIELD_ABSENT(v.block[1], "Original-Recipient");
	FIELD_IS(v.block[1], "Final-Recipient", "rfc822; bob@example.com");
	FIELD_IS(v.block[1], "Status", "5.1.1");
	FIELD_IS(v.block[2], "Original-Recipient", "rfc822; carol@example.net");
	FIELD_IS(v.block[2], "Final-Recipient", "rfc822; carol@example.net");
	FIELD_IS(v.block[2], "Status", "5.4.7");
	FIELD_ABSENT(v.block[2], "Remote-MTA");
	FIELD_ABSENT(v.block[2], "Diagnostic-Code");
	FIELD_ABSENT(v.block[2], "Last-Attempt-Date");
	FIELD_IS(v.block[3], "Original-Recipient", "unknown; bogus");
	FIELD_IS(v.block[3], "Final-Recipient", "rfc822; dave@example.com");
	FIELD_IS(v.block[3], "Diagnostic-Code", "smtp; 552 5.2.2 mailbox full");
	for (size_t i = 1; i < 4; i++)
		FIELD_IS(v.block[i], "Action", "failed");
	CHECK(span_has(v.part_body[0], "<bob@example.com>"));
	CHECK(span_has(v.part_body[0], "<carol@example.net>"));
	CHECK(span_has(v.part_body[0], "<dave@example.com>"));
	CHECK(span_has(v.part_body[0], "mailbox is full"));
	CHECK(span_has(v.part_body[0], "in the time allowed"));
	CHECK(!span_has(v.part_body[0], "queue ID"));
out:
	free(b.s);
}

static void test_delayed(void)
{
	struct dsn_rcpt rc = bob();
	struct dsn_report r = report_for(&rc, 1);
	struct buf b = {0};
	struct view v;
	char want[128];

	rc.action = DSN_DELAYED;
	rc.status = "4.4.1";
	rc.diagnostic = "421 4.4.1 try again later";
	rc.retry_until_ms = RETRY_MS;
	CHECK(build(&r, &b));
	if (!parse(&b, &v))
		goto out;
	save("delayed", &b);
	FIELD_IS(v.head, "Subject", "Delayed Mail (still being retried)");
	FIELD_IS(v.block[1], "Action", "delayed");
	FIELD_IS(v.block[1], "Status", "4.4.1");
	FIELD_IS(v.block[1], "Will-Retry-Until", date_text(RETRY_MS));
	FIELD_IS(v.block[1], "Last-Attempt-Date", date_text(ATTEMPT_MS));
	FIELD_IS(v.block[1], "Diagnostic-Code", "smtp; 421 4.4.1 try again later");
	CHECK(flat_has(v.part_body[0], "you do not need to send the message again"));
	str_format(want, sizeof want, "Trying until %s.", date_text(RETRY_MS));
	CHECK(flat_has(v.part_body[0], want));
	/* a failed recipient never says when it is retried */
	rc.action = DSN_FAILED;
	rc.status = "5.4.7";
	CHECK(build(&r, &b));
	if (parse(&b, &v))
		FIELD_ABSENT(v.block[1], "Will-Retry-Until");
out:
	free(b.s);
}

static void test_success(void)
{
	struct dsn_rcpt rc[3] = {bob(), bob(), bob()};
	struct dsn_report r = report_for(rc, 3);
	struct buf b = {0};
	struct view v;
	static const char *const actions[] = {"delivered", "relayed", "expanded"};

	rc[0].action = DSN_DELIVERED;
	rc[1].action = DSN_RELAYED;
	rc[2].action = DSN_EXPANDED;
	for (size_t i = 0; i < 3; i++) {
		rc[i].status = "2.0.0";
		rc[i].diagnostic = "250 2.0.0 Ok: queued";
	}
	r.headers_only = true;
	CHECK(build(&r, &b));
	if (!parse(&b, &v))
		goto out;
	save("success", &b);
	FIELD_IS(v.head, "Subject", "Successful Mail Delivery Report");
	CHECK_INT(v.blocks, 4);
	for (size_t i = 0; i < 3; i++) {
		FIELD_IS(v.block[i + 1], "Action", actions[i]);
		FIELD_IS(v.block[i + 1], "Status", "2.0.0");
	}
	CHECK(span_has(v.part_body[0], "Passed on to mx.example.com"));
	CHECK(span_has(v.part_body[0], "mailing list"));
out:
	free(b.s);
}

/* Unusable reports: false, and nothing emitted. */
enum bad_field { BAD_ADDRESS, BAD_STATUS, BAD_MTA, BAD_TO, BAD_SEED, BAD_SPECIAL };

static const struct {
	const char *name;
	enum bad_field field;
	const char *value; /* BAD_SPECIAL: which */
} bad_cases[] = {
        {"no address", BAD_ADDRESS, NULL},
        {"empty address", BAD_ADDRESS, ""},
        {"no status", BAD_STATUS, NULL},
        {"status too short", BAD_STATUS, "5.1"},
        {"status class 3", BAD_STATUS, "3.1.1"},
        {"status with a space", BAD_STATUS, "5.1.1 "},
        {"status subject of four digits", BAD_STATUS, "5.1234.1"},
        {"status empty subject", BAD_STATUS, "5..1"},
        {"status of four numbers", BAD_STATUS, "5.1.1.1"},
        {"status not a status", BAD_STATUS, "x"},
        {"no reporting MTA", BAD_MTA, NULL},
        {"empty reporting MTA", BAD_MTA, ""},
        {"reporting MTA with a space", BAD_MTA, "mx example"},
        {"reporting MTA with CR LF", BAD_MTA, "mx\r\nX: y"},
        {"no to", BAD_TO, NULL},
        {"to the null sender", BAD_TO, ""},
        {"no seed", BAD_SEED, NULL},
        {"empty seed", BAD_SEED, ""},
        {"seed without a letter or digit", BAD_SEED, "!!! ..."},
        {"no recipients", BAD_SPECIAL, "count"},
        {"recipients NULL", BAD_SPECIAL, "rcpts"},
        {"failed and delayed", BAD_SPECIAL, "delayed"},
        {"failed and delivered", BAD_SPECIAL, "delivered"},
        {"second address missing", BAD_SPECIAL, "second"},
        {"action out of range", BAD_SPECIAL, "action"},
        {"no time", BAD_SPECIAL, "now"},
        {"time before 1970", BAD_SPECIAL, "past"},
};

static void bad_special(const char *which, struct dsn_report *r, struct dsn_rcpt *rc)
{
	if (strcmp(which, "count") == 0) {
		r->rcpt_count = 0;
	} else if (strcmp(which, "rcpts") == 0) {
		r->rcpts = NULL;
	} else if (strcmp(which, "delayed") == 0) {
		rc[1].action = DSN_DELAYED;
		rc[1].status = "4.4.1";
		r->rcpt_count = 2;
	} else if (strcmp(which, "delivered") == 0) {
		rc[1].action = DSN_DELIVERED;
		rc[1].status = "2.0.0";
		r->rcpt_count = 2;
	} else if (strcmp(which, "second") == 0) {
		rc[1].address = NULL;
		r->rcpt_count = 2;
	} else if (strcmp(which, "action") == 0) {
		rc[0].action = (enum dsn_action)99;
	} else if (strcmp(which, "now") == 0) {
		r->now_ms = 0;
	} else if (strcmp(which, "past") == 0) {
		r->now_ms = -5000;
	}
}

static void test_refused(void)
{
	struct buf b = {0};

	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		struct dsn_rcpt rc[2] = {bob(), bob()};
		struct dsn_report r = report_for(rc, 1);
		const char *value = bad_cases[i].value;

		switch (bad_cases[i].field) {
		case BAD_ADDRESS:
			rc[0].address = value;
			break;
		case BAD_STATUS:
			rc[0].status = value;
			break;
		case BAD_MTA:
			r.reporting_mta = value;
			break;
		case BAD_TO:
			r.to = value;
			break;
		case BAD_SEED:
			r.boundary_seed = value;
			break;
		case BAD_SPECIAL:
			bad_special(value, &r, rc);
			break;
		}
		buf_reset(&b);
		if (msg_dsn_build(&r, collect, &b) || b.calls != 0)
			UNIT_FAIL("%s: built (%zu calls), want refused", bad_cases[i].name, b.calls);
		else
			unit_passed++;
	}
	{
		struct dsn_rcpt rc = bob();
		struct dsn_report r = report_for(&rc, 1);
		CHECK(!msg_dsn_build(NULL, collect, &b));
		CHECK(!msg_dsn_build(&r, NULL, NULL));
		/* and a good one for contrast */
		CHECK(msg_dsn_build(&r, collect, &b));
	}
	free(b.s);
}

static void test_status_for_reply(void)
{
	static const struct {
		const char *reply, *want;
	} cases[] = {
	        {"550 5.1.1 <x@y>: user unknown", "5.1.1"},
	        {"550-5.1.1 first line of several", "5.1.1"},
	        {"550 user unknown", "5.0.0"},
	        {"451 4.3.0 try later", "4.3.0"},
	        {"421 too busy", "4.0.0"},
	        {"250 2.0.0 Ok", "2.0.0"},
	        {"250 Ok", "2.0.0"},
	        {"554 5.7.1", "5.7.1"},
	        {"550 5.1.10 null MX", "5.1.10"},
	        {"550 5.999.999 x", "5.999.999"},
	        {"550 5.1.1\r\n", "5.1.1"},
	        {"550\r\n", "5.0.0"},
	        {"550", "5.0.0"},
	        {"550 4.1.1 class disagrees", "5.0.0"},
	        {"450 5.1.1 class disagrees", "4.0.0"},
	        {"550 5.1.1234 x", "5.0.0"},
	        {"550 5.1.1x", "5.0.0"},
	        {"550 5.1", "5.0.0"},
	        {"550 3.1.1 x", "5.0.0"},
	        {"550x5.1.1", "4.0.0"},
	        {"5500 5.1.1", "4.0.0"},
	        {"55", "4.0.0"},
	        {"354 go ahead", "4.0.0"},
	        {"garbage", "4.0.0"},
	        {"", "4.0.0"},
	        {NULL, "4.0.0"},
	};
	char status[DSN_STATUS_SIZE];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(status, 'x', sizeof status);
		msg_dsn_status_for_reply(cases[i].reply, status);
		if (strcmp(status, cases[i].want) != 0)
			UNIT_FAIL("reply \"%s\": got \"%s\", want \"%s\"", cases[i].reply ? cases[i].reply : "(null)",
			          status, cases[i].want);
		else
			unit_passed++;
	}
}

int main(void)
{
	test_failed_full();
	test_headers_only();
	test_huge_header();
	test_eight_bit();
	test_unclean_original();
	test_smtputf8();
	test_hostile();
	test_long_values();
	test_boundary_collision();
	test_many_recipients();
	test_delayed();
	test_success();
	test_refused();
	test_status_for_reply();
	return unit_finish("msg_dsn");
}
