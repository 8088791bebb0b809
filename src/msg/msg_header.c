/*
 * msg_header.c - a streaming look at a message's header section (RFC 5322
 * 2.2, 3.6): counts Received: fields for loop detection (RFC 5321 6.3) and
 * notes Date:, Message-ID: and From: (keeping From:'s value), and where
 * the header ends.
 *
 * Content comes in canonical CR LF form in runs of any size; the whole
 * state lives in struct msg_header_scan, so any split gives the same
 * result. Only the first bytes of each line are looked at one by one (the
 * field name); the rest of a line is skipped with memchr, and everything
 * after the empty line that ends the header is ignored without a look.
 *
 * Matching: a field name at the start of a line, ASCII case-insensitive
 * (RFC 5322 1.2.2), then optional SP/HTAB (obsolete syntax, RFC 5322 4.5),
 * then ":". A line starting with SP or HTAB continues the previous field
 * (RFC 5322 2.2.3 folding) and never starts one.
 *
 * Limits: the Received: count saturates at UINT_MAX. Nothing fails.
 */
#include "msg/msg_header.h"

#include <limits.h>
#include <string.h>

enum scan_state {
	SCAN_LINE_START = 0, /* at the start of a header line */
	SCAN_LINE_CR,        /* the line began with CR: a LF ends the header */
	SCAN_SKIP_LINE,      /* the rest of this line does not matter */
	SCAN_FROM_VALUE,     /* copying the rest of a From: line */
	SCAN_FIELD_NAME,     /* matching fields[state - SCAN_FIELD_NAME] */
};

enum field_kind {
	FIELD_RECEIVED,
	FIELD_DATE,
	FIELD_MESSAGE_ID,
	FIELD_FROM,
};

/* Lower-case names of the fields looked for. Their first letters differ,
 * so the first byte of a line picks at most one candidate. */
static const struct {
	const char *name;
	size_t len;
	enum field_kind kind;
} fields[] = {
        {"received", 8, FIELD_RECEIVED},
        {"date", 4, FIELD_DATE},
        {"message-id", 10, FIELD_MESSAGE_ID},
        {"from", 4, FIELD_FROM},
};

#define FIELD_COUNT (sizeof fields / sizeof fields[0])

static int ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* field_starting_with - index of the field whose name starts with c, or -1. */
static int field_starting_with(unsigned char c)
{
	size_t i;

	for (i = 0; i < FIELD_COUNT; i++) {
		if (fields[i].name[0] == ascii_lower(c))
			return (int)i;
	}
	return -1;
}

static void from_append(struct msg_header_scan *scan, const char *bytes, size_t len)
{
	size_t room = MSG_FROM_MAX - scan->from_len;
	if (len > room) {
		len = room;
		scan->from_overflow = true;
	}
	memcpy(scan->from + scan->from_len, bytes, len);
	scan->from_len += len;
	scan->from[scan->from_len] = '\0';
}

static void record_field(struct msg_header_scan *scan, enum field_kind kind)
{
	switch (kind) {
	case FIELD_RECEIVED:
		if (scan->received < UINT_MAX)
			scan->received++;
		break;
	case FIELD_DATE:
		scan->has_date = true;
		break;
	case FIELD_MESSAGE_ID:
		scan->has_message_id = true;
		break;
	case FIELD_FROM:
		if (scan->has_from)
			from_append(scan, ",", 1);
		scan->has_from = true;
		scan->in_from = true;
		break;
	}
}

/* at_line_start - the first byte of a line decides what the line can be. */
static size_t at_line_start(struct msg_header_scan *scan, const char *bytes, size_t i)
{
	unsigned char c = (unsigned char)bytes[i];
	int field;

	if (c == '\r') {
		scan->state = SCAN_LINE_CR;
		scan->in_from = false;
		return i + 1;
	}
	if ((c == ' ' || c == '\t') && scan->in_from) {
		/* A folded From: line: its value goes on (RFC 5322 2.2.3). */
		scan->state = SCAN_FROM_VALUE;
		return i;
	}
	scan->in_from = false;
	field = (c == ' ' || c == '\t') ? -1 : field_starting_with(c);
	if (field < 0) {
		scan->state = SCAN_SKIP_LINE;
		return i;
	}
	scan->state = SCAN_FIELD_NAME + field;
	scan->match = 1;
	return i + 1;
}

/* after_line_cr - RFC 5322 2.1: the header ends at the first empty line. */
static size_t after_line_cr(struct msg_header_scan *scan, const char *bytes, size_t i)
{
	if (bytes[i] == '\n') {
		scan->in_body = true;
		return i + 1;
	}
	scan->state = SCAN_SKIP_LINE;
	return i;
}

/* skip_line - jump past the next LF, or to the end of the input. */
static size_t skip_line(struct msg_header_scan *scan, const char *bytes, size_t i, size_t len)
{
	const char *lf = memchr(bytes + i, '\n', len - i);

	if (lf == NULL)
		return len;
	scan->state = SCAN_LINE_START;
	return (size_t)(lf - bytes) + 1;
}

/* match_name - one more byte of a candidate field name, its WSP, or its colon. */
static size_t match_name(struct msg_header_scan *scan, const char *bytes, size_t i)
{
	size_t field = (size_t)(scan->state - SCAN_FIELD_NAME);
	int c = ascii_lower((unsigned char)bytes[i]);

	if (scan->match < fields[field].len) {
		if (c != fields[field].name[scan->match]) {
			scan->state = SCAN_SKIP_LINE;
			return i;
		}
		scan->match++;
		return i + 1;
	}
	if (c == ' ' || c == '\t')
		return i + 1;
	scan->state = SCAN_SKIP_LINE;
	if (c != ':')
		return i;
	record_field(scan, fields[field].kind);
	if (fields[field].kind == FIELD_FROM)
		scan->state = SCAN_FROM_VALUE;
	return i + 1;
}

/*
 * from_value - copy a From: line up to its LF, leaving out every CR: the
 * one before the LF, and any bare one (which gets the message refused
 * anyway), so that any split of the input gives the same value.
 */
static size_t from_value(struct msg_header_scan *scan, const char *bytes, size_t i, size_t len)
{
	const char *lf = memchr(bytes + i, '\n', len - i);
	size_t end = lf ? (size_t)(lf - bytes) : len;
	while (i < end) {
		const char *cr = memchr(bytes + i, '\r', end - i);
		size_t stop = cr ? (size_t)(cr - bytes) : end;
		from_append(scan, bytes + i, stop - i);
		i = cr ? stop + 1 : end;
	}
	if (!lf)
		return len;
	scan->state = SCAN_LINE_START;
	return end + 1;
}

void msg_header_scan_init(struct msg_header_scan *scan)
{
	memset(scan, 0, sizeof *scan);
	scan->state = SCAN_LINE_START;
}

void msg_header_scan_feed(struct msg_header_scan *scan, const char *bytes, size_t len)
{
	size_t i = 0;

	while (i < len && !scan->in_body) {
		switch (scan->state) {
		case SCAN_LINE_START:
			i = at_line_start(scan, bytes, i);
			break;
		case SCAN_LINE_CR:
			i = after_line_cr(scan, bytes, i);
			break;
		case SCAN_SKIP_LINE:
			i = skip_line(scan, bytes, i, len);
			break;
		case SCAN_FROM_VALUE:
			i = from_value(scan, bytes, i, len);
			break;
		default:
			i = match_name(scan, bytes, i);
			break;
		}
	}
}
