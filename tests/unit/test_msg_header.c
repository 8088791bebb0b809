/*
 * test_msg_header.c - the header scan (msg/msg_header.c): Received:
 * counting, folded lines, case, the end of the header, split input.
 *
 * Every row is scanned whole, one byte at a time and in every two-way
 * split, and all must agree.
 */
#include <stdlib.h>

#include "msg/msg_header.h"
#include "unit.h"

struct header_case {
	const char *name;
	const char *in;
	unsigned received;
	bool in_body, date, message_id, from;
};

static const struct header_case header_cases[] = {
        {"two received", "Received: a\r\nReceived: b\r\n\r\nbody\r\n", 2, true, false, false, false},
        {"no header", "\r\nReceived: x\r\n", 0, true, false, false, false},
        {"empty input", "", 0, false, false, false, false},
        {"header not ended", "Received: a\r\n", 1, false, false, false, false},
        {"line not ended", "Received: a", 1, false, false, false, false},
        {"name only so far", "Received", 0, false, false, false, false},
        {"case", "RECEIVED: x\r\nreceived: y\r\nReCeIvEd: z\r\n\r\n", 3, true, false, false, false},
        {"no space after colon", "Received:x\r\n\r\n", 1, true, false, false, false},
        {"folded", "Received: from a\r\n by b\r\n\tReceived: c\r\n  Received: d\r\n\r\n", 1, true, false, false, false},
        {"continuation first", " Received: x\r\n\r\n", 0, true, false, false, false},
        {"white space line is not the end", "Received: a\r\n \r\nReceived: b\r\n\r\n", 2, true, false, false, false},
        {"obsolete space before colon", "Received : x\r\nReceived\t: y\r\nReceived \t : z\r\n\r\n", 3, true, false,
         false, false},
        {"other names", "X-Received: x\r\nReceived-SPF: pass\r\nReceivedx: y\r\nReceive: z\r\n\r\n", 0, true, false,
         false, false},
        {"space inside name", "Received x: y\r\nRe ceived: y\r\n\r\n", 0, true, false, false, false},
        {"received in value", "Subject: Received: x\r\n\r\n", 0, true, false, false, false},
        {"body ignored", "Subject: x\r\n\r\nReceived: y\r\nFrom: z\r\nDate: w\r\n", 0, true, false, false, false},
        {"date, id, from", "From: a@b\r\nDate: Mon, 1 Jan 2024\r\nMessage-ID: <x@y>\r\n\r\n", 0, true, true, true,
         true},
        {"lower case names", "from: a\r\ndate: b\r\nmessage-id: c\r\n\r\n", 0, true, true, true, true},
        {"near misses", "From a@b Mon Jan 1\r\nFromage: x\r\nDates: y\r\nMessage-IDs: z\r\nMessage: w\r\n\r\n", 0, true,
         false, false, false},
        {"bare CR at line start", "\rX\r\nReceived: a\r\n\r\n", 1, true, false, false, false},
        {"CR CR LF line", "\r\r\nReceived: a\r\n\r\n", 1, true, false, false, false},
        {"empty name", ": x\r\nReceived: a\r\n\r\n", 1, true, false, false, false},
        {"all", "Received: a\r\nReceived: b\r\nFrom: c\r\n\tfolded\r\nDate: d\r\nMessage-Id: e\r\n\r\nFrom: x\r\n", 2,
         true, true, true, true},
};

/* scan_split - scan in pieces: a first piece of first bytes (0: none), then pieces of piece. */
static void scan_split(struct msg_header_scan *scan, const char *in, size_t len, size_t first, size_t piece)
{
	size_t at = 0;

	msg_header_scan_init(scan);
	while (at < len) {
		size_t n = at == 0 && first > 0 ? first : piece;

		if (n > len - at)
			n = len - at;
		msg_header_scan_feed(scan, in + at, n);
		at += n;
	}
}

static bool same_result(const struct msg_header_scan *a, const struct msg_header_scan *b)
{
	return a->received == b->received && a->in_body == b->in_body && a->has_date == b->has_date &&
	       a->has_message_id == b->has_message_id && a->has_from == b->has_from;
}

static void run_header_case(const struct header_case *c)
{
	size_t len = strlen(c->in), split;
	struct msg_header_scan whole, other;

	scan_split(&whole, c->in, len, 0, len ? len : 1);
	if (whole.received != c->received || whole.in_body != c->in_body || whole.has_date != c->date ||
	    whole.has_message_id != c->message_id || whole.has_from != c->from)
		UNIT_FAIL("%s: got received=%u body=%d date=%d id=%d from=%d", c->name, whole.received, whole.in_body,
		          whole.has_date, whole.has_message_id, whole.has_from);
	else
		unit_passed++;
	scan_split(&other, c->in, len, 0, 1);
	CHECK(same_result(&whole, &other));
	for (split = 1; split < len; split++) {
		scan_split(&other, c->in, len, split, len);
		if (!same_result(&whole, &other))
			UNIT_FAIL("%s: split at %zu differs", c->name, split);
		else
			unit_passed++;
	}
}

static void test_header_table(void)
{
	size_t i;

	for (i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++)
		run_header_case(&header_cases[i]);
}

/* RFC 5321 6.3 loop detection needs counts past SMTP_HOPS_MAX to be right. */
static void test_many_received(void)
{
	static const char line[] = "Received: from relay.example by mx.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n";
	size_t line_len = sizeof line - 1, n = 120, i;
	char *in = malloc(n * line_len + 2);
	struct msg_header_scan scan;

	if (in == NULL)
		abort();
	for (i = 0; i < n; i++)
		memcpy(in + i * line_len, line, line_len);
	memcpy(in + n * line_len, "\r\n", 2);
	scan_split(&scan, in, n * line_len + 2, 0, n * line_len + 2);
	CHECK_INT(scan.received, n);
	CHECK(scan.in_body);
	scan_split(&scan, in, n * line_len + 2, 0, 7);
	CHECK_INT(scan.received, n);
	free(in);
}

/* After the header, more input changes nothing. */
static void test_after_body(void)
{
	struct msg_header_scan scan;

	msg_header_scan_init(&scan);
	msg_header_scan_feed(&scan, "Received: a\r\n\r\n", 15);
	CHECK(scan.in_body);
	msg_header_scan_feed(&scan, "Received: b\r\n", 13);
	CHECK_INT(scan.received, 1);
	msg_header_scan_feed(&scan, "", 0);
	CHECK_INT(scan.received, 1);
}

int main(void)
{
	test_header_table();
	test_many_received();
	test_after_body();
	return unit_finish("msg_header");
}
