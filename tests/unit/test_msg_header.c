/*
 * test_msg_header.c - the header scan (msg/msg_header.c): Received:
 * counting, folded lines, case, the end of the header, split input, and
 * the From: value it keeps.
 *
 * Every row is scanned whole, one byte at a time and in every two-way
 * split, and all must agree (the From: value included).
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
	       a->has_message_id == b->has_message_id && a->has_from == b->has_from && a->from_len == b->from_len &&
	       memcmp(a->from, b->from, a->from_len) == 0 && a->from_overflow == b->from_overflow;
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

/* ---- the From: value ---- */

struct from_case {
	const char *name;
	const char *in;
	bool has_from;
	const char *from; /* the value kept: unfolded, fields joined by "," */
	bool in_body;
};

static const struct from_case from_cases[] = {
        {"plain", "From: a@b\r\n\r\n", true, " a@b", true},
        {"no space", "From:a@b\r\n\r\n", true, "a@b", true},
        {"obsolete space before colon", "From \t : a@b\r\n\r\n", true, " a@b", true},
        {"case", "fROM: a@b\r\n\r\n", true, " a@b", true},
        {"display name and colon in value", "From: \"a: b\" <a@b>\r\n\r\n", true, " \"a: b\" <a@b>", true},
        {"folded", "From: A\r\n <a@b>\r\n\r\n", true, " A <a@b>", true},
        {"folded twice, tab and spaces", "From: a@b,\r\n\tc@d,\r\n  e@f\r\n\r\n", true, " a@b,\tc@d,  e@f", true},
        {"folded white line", "From: a@b\r\n \r\nX: y\r\n\r\n", true, " a@b ", true},
        {"two fields", "From: a@b\r\nSubject: x\r\nFrom: c@d\r\n\r\n", true, " a@b, c@d", true},
        {"three fields, folded, adjacent", "From: a\r\n b\r\nFrom: c\r\nfrom:d\r\n\r\n", true, " a b, c,d", true},
        {"empty value", "From:\r\n\r\n", true, "", true},
        {"empty, then a value", "From:\r\nFrom: a@b\r\n\r\n", true, ", a@b", true},
        {"fold ends at the next field", "From: a@b\r\nX: y\r\n z@w\r\n\r\n", true, " a@b", true},
        {"fold ends at Received", "From: a\r\n b\r\nReceived: x\r\n c\r\n\r\n", true, " a b", true},
        {"continuation of another field", "Subject: x\r\n From: a@b\r\n\r\n", false, "", true},
        {"continuation first", " From: a@b\r\n\r\n", false, "", true},
        {"near misses", "From a@b\r\nFromage: x\r\nFrom-X: y\r\nX-From: z\r\nFro: w\r\n\r\n", false, "", true},
        {"only in the body", "Subject: x\r\n\r\nFrom: a@b\r\n", false, "", true},
        {"body right away", "\r\nFrom: a@b\r\n", false, "", true},
        {"body after From", "From: a@b\r\n\r\nFrom: c@d\r\n continued\r\n", true, " a@b", true},
        {"folded line is not the body", "From: a@b\r\n\r\n more\r\n", true, " a@b", true},
        {"header not ended", "From: a@b\r\n", true, " a@b", false},
        {"line not ended", "From: a@b", true, " a@b", false},
        {"fold not ended", "From: a@b\r\n c", true, " a@b c", false},
        {"bare LF ends the line", "From: a@b\nX: y\r\n\r\n", true, " a@b", true},
};

/* scan_three - scan in three pieces: [0, a), [a, b), [b, len). */
static void scan_three(struct msg_header_scan *scan, const char *in, size_t len, size_t a, size_t b)
{
	msg_header_scan_init(scan);
	msg_header_scan_feed(scan, in, a);
	msg_header_scan_feed(scan, in + a, b - a);
	msg_header_scan_feed(scan, in + b, len - b);
}

/* check_splits - one byte at a time, every two-way and (short inputs) every three-way split agree with whole. */
static void check_splits(const char *name, const struct msg_header_scan *whole, const char *in, size_t len)
{
	struct msg_header_scan *other = malloc(sizeof *other);
	size_t a, b;
	bool all_same = true;

	if (other == NULL)
		abort();
	scan_split(other, in, len, 0, 1);
	if (!same_result(whole, other))
		UNIT_FAIL("%s: one byte at a time differs: from \"%s\"", name, other->from);
	else
		unit_passed++;
	for (a = 1; a < len; a++) {
		scan_split(other, in, len, a, len);
		if (!same_result(whole, other)) {
			UNIT_FAIL("%s: split at %zu differs: from \"%s\"", name, a, other->from);
			all_same = false;
		}
	}
	for (a = 1; len <= 200 && a < len; a++) {
		for (b = a; b < len; b++) {
			scan_three(other, in, len, a, b);
			if (all_same && !same_result(whole, other)) {
				UNIT_FAIL("%s: split at %zu and %zu differs: from \"%s\"", name, a, b, other->from);
				all_same = false;
			}
		}
	}
	if (all_same)
		unit_passed++;
	free(other);
}

static void test_from_table(void)
{
	struct msg_header_scan whole;

	for (size_t i = 0; i < sizeof from_cases / sizeof from_cases[0]; i++) {
		const struct from_case *c = &from_cases[i];
		size_t len = strlen(c->in);

		scan_split(&whole, c->in, len, 0, len ? len : 1);
		if (whole.has_from != c->has_from || whole.in_body != c->in_body || whole.from_overflow ||
		    whole.from_len != strlen(whole.from) || strcmp(whole.from, c->from) != 0)
			UNIT_FAIL("%s: got from=%d \"%s\" (len %zu) overflow=%d body=%d, want from=%d \"%s\" body=%d",
			          c->name, whole.has_from, whole.from, whole.from_len, whole.from_overflow,
			          whole.in_body, c->has_from, c->from, c->in_body);
		else
			unit_passed++;
		check_splits(c->name, &whole, c->in, len);
	}
}

/* from_text - "From:" and a value of n copies of ch, then end (a NUL-terminated tail), into a new buffer. */
static char *from_text(size_t n, char ch, const char *end, size_t *len)
{
	size_t end_len = strlen(end);
	char *in = malloc(5 + n + end_len + 1);

	if (in == NULL)
		abort();
	memcpy(in, "From:", 5);
	memset(in + 5, ch, n);
	memcpy(in + 5 + n, end, end_len + 1);
	*len = 5 + n + end_len;
	return in;
}

/* check_long_from - in scanned whole gives a from of want_len bytes (all of the first want_len value bytes). */
static void check_long_from(const char *name, const char *in, size_t len, size_t want_len, bool want_overflow)
{
	struct msg_header_scan *whole = malloc(sizeof *whole);

	if (whole == NULL)
		abort();
	scan_split(whole, in, len, 0, len);
	if (whole->from_len != want_len || whole->from_overflow != want_overflow || !whole->in_body ||
	    whole->from[whole->from_len] != '\0' || whole->received != 1)
		UNIT_FAIL("%s: got from_len=%zu overflow=%d body=%d received=%u, want %zu, %d", name, whole->from_len,
		          whole->from_overflow, whole->in_body, whole->received, want_len, want_overflow);
	else
		unit_passed++;
	check_splits(name, whole, in, len);
	free(whole);
}

/* A value longer than MSG_FROM_MAX is cut there and flagged; the scan goes on. */
static void test_from_overflow(void)
{
	size_t len;
	char *in;

	in = from_text(MSG_FROM_MAX, 'x', "\r\nReceived: a\r\n\r\n", &len);
	check_long_from("exactly MSG_FROM_MAX", in, len, MSG_FROM_MAX, false);
	free(in);

	in = from_text(MSG_FROM_MAX + 1, 'x', "\r\nReceived: a\r\n\r\n", &len);
	check_long_from("one byte over", in, len, MSG_FROM_MAX, true);
	free(in);

	in = from_text(3 * MSG_FROM_MAX, 'x', "\r\nReceived: a\r\n\r\n", &len);
	check_long_from("far over", in, len, MSG_FROM_MAX, true);
	free(in);

	/* by folding: 1000 + "\t" + 1047 is MSG_FROM_MAX, and a folded " " line one more */
	{
		char *all = malloc(2 * MSG_FROM_MAX);
		size_t n = 0;
		if (all == NULL)
			abort();
		memcpy(all, "From:", 5);
		n = 5;
		memset(all + n, 'x', 1000);
		n += 1000;
		memcpy(all + n, "\r\n\t", 3);
		n += 3;
		memset(all + n, 'y', MSG_FROM_MAX - 1000 - 1);
		n += MSG_FROM_MAX - 1000 - 1;
		memcpy(all + n, "\r\n \r\nReceived: a\r\n\r\n", 21);
		check_long_from("folded over", all, n + 21, MSG_FROM_MAX, true);
		memcpy(all + n, "\r\nReceived: a\r\n\r\n", 18);
		check_long_from("folded to exactly MSG_FROM_MAX", all, n + 18, MSG_FROM_MAX, false);
		free(all);
	}

	/* by joining: the "," between fields counts */
	in = from_text(MSG_FROM_MAX, 'x', "\r\nFrom:\r\nReceived: a\r\n\r\n", &len);
	check_long_from("joined over", in, len, MSG_FROM_MAX, true);
	free(in);
	in = from_text(MSG_FROM_MAX - 1, 'x', "\r\nFrom:\r\nReceived: a\r\n\r\n", &len);
	check_long_from("joined to exactly MSG_FROM_MAX", in, len, MSG_FROM_MAX, false);
	free(in);

	/* what was kept is the start of the value */
	struct msg_header_scan scan;
	in = from_text(MSG_FROM_MAX + 10, 'x', "\r\n\r\n", &len);
	in[5] = '<';
	scan_split(&scan, in, len, 0, 100);
	CHECK(scan.from_overflow);
	CHECK(scan.from[0] == '<' && scan.from[1] == 'x' && scan.from[MSG_FROM_MAX - 1] == 'x');
	CHECK_INT(strlen(scan.from), MSG_FROM_MAX);
	free(in);
}

int main(void)
{
	test_header_table();
	test_many_received();
	test_after_body();
	test_from_table();
	test_from_overflow();
	return unit_finish("msg_header");
}
