/*
 * fuzz_msg_dsn.c - fuzz target for delivery status notifications
 * (msg/msg_dsn.c).
 *
 * The input describes a report:
 *   byte 0   bits 0-1: the actions (all failed, all delayed, delivered/
 *            relayed/expanded in turn, failed and delayed mixed); bit 2
 *            headers_only; bit 3 smtputf8; bits 4-5 original_max (none,
 *            0, 64, all); bit 6: no envid; bit 7: no qid
 *   byte 1   the number of recipients, 1 + (byte % 4)
 *   then fields split at 0xFF bytes: to, envid, boundary seed, and for
 *   each recipient address, orcpt, status, remote MTA, reply text; what
 *   follows the last field is the original message. A field stops at a
 *   NUL, as a C string does. An empty status is made from the reply with
 *   msg_dsn_status_for_reply.
 *
 * Besides the sanitizers' checks, the notification must hold together:
 *   - it is built exactly when the report is usable (by a plain reading of
 *     the rules in msg_dsn.h), and nothing is emitted when it is not;
 *   - every line ends in CRLF and holds at most 998 octets;
 *   - the boundary is in Content-Type and on the delimiter lines only: two
 *     or three parts, then the close delimiter as the last line;
 *   - the text part is printable US-ASCII, the delivery-status part has a
 *     Final-Recipient and an Action line per recipient;
 *   - without smtputf8 the notification is 7-bit unless its header says
 *     "Content-Transfer-Encoding: 8bit", and always with headers_only;
 *   - a clean original that fits is returned byte for byte;
 *   - building twice gives the same bytes;
 *   - msg_dsn_status_for_reply always gives a valid status code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg_dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RCPTS_MAX  4
#define FIELDS_MAX (3 + 5 * RCPTS_MAX)

struct out {
	char *s;
	size_t len, cap;
	size_t calls;
};

static void collect(void *ctx, const char *bytes, size_t len)
{
	struct out *o = ctx;

	o->calls++;
	if (o->len + len > o->cap) {
		o->cap = (o->len + len) * 2;
		o->s = realloc(o->s, o->cap);
		if (o->s == NULL)
			abort();
	}
	memcpy(o->s + o->len, bytes, len);
	o->len += len;
}

/* status_valid - "class.subject.detail": class 2, 4 or 5, one to three digits each. */
static bool status_valid(const char *s)
{
	size_t i = 2, n;

	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	for (n = 0; s[i] >= '0' && s[i] <= '9'; i++)
		n++;
	if (n < 1 || n > 3 || s[i++] != '.')
		return false;
	for (n = 0; s[i] >= '0' && s[i] <= '9'; i++)
		n++;
	return n >= 1 && n <= 3 && s[i] == '\0';
}

static bool seed_usable(const char *s)
{
	for (; *s; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		    *s == '_')
			return true;
	return false;
}

/* clean - CRLF lines of at most 998 octets, no NUL, ending in CRLF. */
static bool clean(const char *s, size_t len)
{
	size_t i, line = 0;

	if (len < 2 || s[len - 2] != '\r' || s[len - 1] != '\n')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
			i++;
			line = 0;
		} else if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0' || ++line > 998) {
			return false;
		}
	}
	return true;
}

static size_t count_of(const char *s, size_t len, const char *needle, size_t k)
{
	size_t n = 0;
	const char *p = s, *end = s + len;

	while ((p = memmem(p, (size_t)(end - p), needle, k)) != NULL) {
		n++;
		p += k;
	}
	return n;
}

/* lines_starting - lines of s[0..len) (after a CRLF, or the first) that start with word. */
static size_t lines_starting(const char *s, size_t len, const char *word)
{
	char needle[64] = "\r\n";
	size_t k = strlen(word), n;

	memcpy(needle + 2, word, k);
	n = count_of(s, len, needle, k + 2);
	return n + (len >= k && memcmp(s, word, k) == 0);
}

/* check - what every notification must be; parts get where parts 2 and 3 start and end. */
static void check(const struct out *o, const struct dsn_report *r)
{
	const char *s = o->s, *ct, *b, *end, *head_end;
	char delim[96], close[100];
	size_t i, line = 0, blen, delims = 0, starts[4] = {0}, ends[4] = {0};
	bool seven = true;

	if (o->len < 2 || s[o->len - 2] != '\r' || s[o->len - 1] != '\n')
		abort();
	for (i = 0; i < o->len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			seven = false;
		if (s[i] == '\r' && i + 1 < o->len && s[i + 1] == '\n') {
			i++;
			line = 0;
		} else if (s[i] == '\r' || s[i] == '\n' || ++line > 998) {
			abort();
		}
	}
	head_end = memmem(s, o->len, "\r\n\r\n", 4);
	if (head_end == NULL)
		abort();
	/* the boundary of Content-Type (not of a To: that says boundary=") */
	ct = memmem(s, (size_t)(head_end - s), "\r\nContent-Type: multipart/report; ", 34);
	if (ct == NULL || (b = memmem(ct, (size_t)(head_end - ct), "boundary=\"", 10)) == NULL)
		abort();
	b += 10;
	end = memchr(b, '"', (size_t)(head_end - b));
	if (end == NULL || (blen = (size_t)(end - b)) == 0 || blen > 70)
		abort();
	delim[0] = '\r', delim[1] = '\n', delim[2] = '-', delim[3] = '-';
	memcpy(delim + 4, b, blen);
	memcpy(close, delim, blen + 4);
	memcpy(close + 4 + blen, "--\r\n", 4);
	/* delimiter lines: "--B" CRLF, or the close "--B--" CRLF at the very end */
	for (const char *p = head_end; (p = memmem(p, o->len - (size_t)(p - s), delim, blen + 4)) != NULL;
	     p += blen + 4) {
		const char *after = p + blen + 4;
		size_t rest = o->len - (size_t)(after - s);
		if (rest >= 2 && after[0] == '\r' && after[1] == '\n') {
			if (delims >= 4)
				abort();
			if (delims > 0)
				ends[delims - 1] = (size_t)(p - s);
			starts[delims++] = (size_t)(after - s) + 2;
		} else if (rest == 4 && memcmp(after, "--\r\n", 4) == 0 && delims > 0) {
			ends[delims - 1] = (size_t)(p - s);
		} else {
			abort(); /* the boundary at a line start but no delimiter */
		}
	}
	/* delims: the parts, two or three */
	if ((delims != 2 && delims != 3) || o->len < blen + 8 || memcmp(s + o->len - blen - 8, close, blen + 8) != 0)
		abort();
	if (count_of(s, o->len, b, blen) != delims + 2)
		abort();
	/* part 1: printable ASCII */
	for (i = starts[0]; i < ends[0]; i++)
		if (s[i] != '\r' && s[i] != '\n' && (s[i] < 0x20 || s[i] >= 0x7F))
			abort();
	/* part 2: a Final-Recipient and an Action per recipient */
	if (lines_starting(s + starts[1], ends[1] - starts[1], "Final-Recipient:") != r->rcpt_count ||
	    lines_starting(s + starts[1], ends[1] - starts[1], "Action:") != r->rcpt_count)
		abort();
	if (!r->smtputf8 && !seven &&
	    (r->headers_only || !memmem(s, (size_t)(head_end - s), "\r\nContent-Transfer-Encoding: 8bit", 33)))
		abort();
	/* part 3: a clean original that fits, byte for byte */
	if (r->original_len > 0 && !r->headers_only && r->original_len <= r->original_max &&
	    clean(r->original, r->original_len)) {
		const char *body;
		if (delims != 3)
			abort();
		body = memmem(s + starts[2], ends[2] - starts[2], "\r\n\r\n", 4);
		if (body == NULL || (size_t)(s + ends[2] - (body + 4)) != r->original_len ||
		    memcmp(body + 4, r->original, r->original_len) != 0)
			abort();
	}
	if (r->original_len == 0 && delims != 2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	const char *fields[FIELDS_MAX];
	size_t nfields = 0, i, at = 2, rcpts;
	struct dsn_rcpt rc[RCPTS_MAX];
	struct dsn_report r;
	char status[RCPTS_MAX][DSN_STATUS_SIZE];
	struct out o = {0}, again = {0};
	bool usable = true, built;
	unsigned flags;

	if (size < 2)
		return 0;
	flags = data[0];
	rcpts = 1 + data[1] % RCPTS_MAX;
	copy = malloc(size + 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	/* fields, each a C string in place of its 0xFF */
	while (nfields < 3 + 5 * rcpts) {
		char *sep = memchr(copy + at, 0xFF, size - at);
		if (sep == NULL)
			break;
		*sep = '\0';
		fields[nfields++] = copy + at;
		at = (size_t)(sep - copy) + 1;
	}
	for (i = nfields; i < FIELDS_MAX; i++)
		fields[i] = "";

	memset(&r, 0, sizeof r);
	r.reporting_mta = "mx.example.org";
	r.to = fields[0];
	r.envid = flags & 0x40 ? NULL : fields[1];
	r.boundary_seed = fields[2][0] ? fields[2] : "seed";
	r.qid = flags & 0x80 ? NULL : "0ABCDEFGHJKM";
	r.arrival_ms = 1700000000000;
	r.now_ms = 1700000200000;
	r.headers_only = flags & 4;
	r.smtputf8 = flags & 8;
	r.rcpts = rc;
	r.rcpt_count = rcpts;
	r.original = copy + at;
	r.original_len = size - at;
	switch ((flags >> 4) & 3) {
	case 0:
		r.original = NULL, r.original_len = 0;
		break;
	case 1:
		r.original_max = 0;
		break;
	case 2:
		r.original_max = 64;
		break;
	case 3:
		r.original_max = SIZE_MAX;
		break;
	}
	for (i = 0; i < rcpts; i++) {
		const char **f = fields + 3 + 5 * i;

		memset(&rc[i], 0, sizeof rc[i]);
		rc[i].address = f[0];
		rc[i].orcpt = f[1][0] ? f[1] : NULL;
		rc[i].remote_mta = f[3][0] ? f[3] : NULL;
		rc[i].diagnostic = f[4][0] ? f[4] : NULL;
		msg_dsn_status_for_reply(rc[i].diagnostic, status[i]);
		if (!status_valid(status[i]))
			abort();
		rc[i].status = f[2][0] ? f[2] : status[i];
		rc[i].last_attempt_ms = 1700000100000;
		switch (flags & 3) {
		case 0:
			rc[i].action = DSN_FAILED;
			break;
		case 1:
			rc[i].action = DSN_DELAYED, rc[i].retry_until_ms = 1700400000000;
			break;
		case 2:
			rc[i].action = (enum dsn_action)(DSN_DELIVERED + i % 3);
			break;
		case 3:
			rc[i].action = i % 2 ? DSN_DELAYED : DSN_FAILED;
			break;
		}
		if (rc[i].address[0] == '\0' || !status_valid(rc[i].status))
			usable = false;
	}
	if ((flags & 3) == 3 && rcpts > 1)
		usable = false;
	if (r.to[0] == '\0' || !seed_usable(r.boundary_seed))
		usable = false;

	built = msg_dsn_build(&r, collect, &o);
	if (built != usable || (!built && o.calls != 0))
		abort();
	if (built) {
		check(&o, &r);
		if (!msg_dsn_build(&r, collect, &again) || again.len != o.len || memcmp(again.s, o.s, o.len) != 0)
			abort();
	}
	free(o.s);
	free(again.s);
	free(copy);
	return 0;
}
