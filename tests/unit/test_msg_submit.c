/*
 * test_msg_submit.c - a message as sendmail's input made ready to submit
 * (msg/msg_submit.c): line ends, the header and the body, Bcc: removed,
 * From: added, the recipients of -t; the end of input at a "." line; the
 * From: value sendmail adds.
 *
 * Table-driven: each row is an input, the options, and the content and
 * recipients ("|" between them) wanted. Inputs go in heap buffers of
 * exactly their length, so a read past the end is caught under the
 * sanitizers.
 */
#include <stdlib.h>

#include "msg/msg_submit.h"
#include "unit.h"

#define FROM "alice@example.org"

struct submit_case {
	const char *in;
	bool recipients;
	bool ok;
	const char *content;
	const char *rcpts;     /* "|" between them */
	const char *bad_field; /* when !ok */
};

static const struct submit_case submit_cases[] = {
        /* line ends, and the end of the input */
        {"Subject: hi\n\nbody\n", false, true, "Subject: hi\r\nFrom: " FROM "\r\n\r\nbody\r\n", "", ""},
        {"Subject: hi\r\n\r\nbody\r\n", false, true, "Subject: hi\r\nFrom: " FROM "\r\n\r\nbody\r\n", "", ""},
        {"Subject: hi\n\nbody", false, true, "Subject: hi\r\nFrom: " FROM "\r\n\r\nbody\r\n", "", ""},
        {"Subject: hi\r\n\nmixed\r\nends\n", false, true, "Subject: hi\r\nFrom: " FROM "\r\n\r\nmixed\r\nends\r\n", "",
         ""},
        {"Subject: a\rb\n\n", false, true, "Subject: a\rb\r\nFrom: " FROM "\r\n\r\n", "", ""},
        {"Subject: x\n\n.\n..\n.x\n", false, true, "Subject: x\r\nFrom: " FROM "\r\n\r\n.\r\n..\r\n.x\r\n", "", ""},
        {"", false, true, "From: " FROM "\r\n\r\n", "", ""},
        /* no header, or no empty line after it: the body gets an empty line before it */
        {"just text\nmore\n", false, true, "From: " FROM "\r\n\r\njust text\r\nmore\r\n", "", ""},
        {"Subject: x\nbody line\n", false, true, "Subject: x\r\nFrom: " FROM "\r\n\r\nbody line\r\n", "", ""},
        {" folded\nSubject: x\n", false, true, "From: " FROM "\r\n\r\n folded\r\nSubject: x\r\n", "", ""},
        {":x\n\n", false, true, "From: " FROM "\r\n\r\n:x\r\n\r\n", "", ""},
        {"Subject x\n", false, true, "From: " FROM "\r\n\r\nSubject x\r\n", "", ""},
        {"Subject: x", false, true, "Subject: x\r\nFrom: " FROM "\r\n\r\n", "", ""},
        /* field syntax: obsolete blanks before the colon, folding */
        {"Subject : x\n\n", false, true, "Subject : x\r\nFrom: " FROM "\r\n\r\n", "", ""},
        {"Subject: a\n  b\n\tc\n\nz\n", false, true, "Subject: a\r\n  b\r\n\tc\r\nFrom: " FROM "\r\n\r\nz\r\n", "", ""},
        /* an mbox "From " line first is dropped */
        {"From me Mon Jan  1 00:00:00 2026\nSubject: x\n\nb\n", false, true,
         "Subject: x\r\nFrom: " FROM "\r\n\r\nb\r\n", "", ""},
        {"From me Mon Jan  1 00:00:00 2026\n folded\n", false, true, "From: " FROM "\r\n\r\n folded\r\n", "", ""},
        {"From me\n\nb\n", false, true, "From: " FROM "\r\n\r\nb\r\n", "", ""},
        /* a From: field already there stays, and none is added */
        {"From: Bob <bob@x.example>\nTo: z@x.example\n\nb\n", false, true,
         "From: Bob <bob@x.example>\r\nTo: z@x.example\r\n\r\nb\r\n", "", ""},
        {"from : bob@x.example\n\n", false, true, "from : bob@x.example\r\n\r\n", "", ""},
        /* recipients; Bcc: and Resent-Bcc: go, read or not */
        {"To: a@x.example\nBcc: b@x.example,\n c@x.example\nSubject: s\n\nhi\n", true, true,
         "To: a@x.example\r\nSubject: s\r\nFrom: " FROM "\r\n\r\nhi\r\n", "a@x.example|b@x.example|c@x.example", ""},
        {"To: a@x.example\nBcc: b@x.example\n\nhi\n", false, true, "To: a@x.example\r\nFrom: " FROM "\r\n\r\nhi\r\n",
         "", ""},
        {"BCC: b@x.example\nbcc:\n\nhi\n", true, true, "From: " FROM "\r\n\r\nhi\r\n", "b@x.example", ""},
        {"To: Al <a@x.example>, root\nCC: \"Doe, J\" <j@x.example>\ncc: root\n\n", true, true,
         "To: Al <a@x.example>, root\r\nCC: \"Doe, J\" <j@x.example>\r\ncc: root\r\nFrom: " FROM "\r\n\r\n",
         "a@x.example|root|j@x.example|root", ""},
        {"To: undisclosed-recipients:;\n\n", true, true, "To: undisclosed-recipients:;\r\nFrom: " FROM "\r\n\r\n", "",
         ""},
        {"Subject: no recipients\n\n", true, true, "Subject: no recipients\r\nFrom: " FROM "\r\n\r\n", "", ""},
        /* only header fields give recipients, not the body */
        {"Subject: x\n\nTo: b@x.example\n", true, true, "Subject: x\r\nFrom: " FROM "\r\n\r\nTo: b@x.example\r\n", "",
         ""},
        /* Resent- fields, when there are any, instead of the others */
        {"To: a@x.example\nResent-To: r@x.example\nResent-Bcc: rb@x.example\nResent-Cc: rc@x.example\n\n", true, true,
         "To: a@x.example\r\nResent-To: r@x.example\r\nResent-Cc: rc@x.example\r\nFrom: " FROM "\r\n\r\n",
         "r@x.example|rb@x.example|rc@x.example", ""},
        {"Resent-Bcc: rb@x.example\nTo: a@x.example\n\n", true, true, "To: a@x.example\r\nFrom: " FROM "\r\n\r\n",
         "rb@x.example", ""},
        /* an address field that is not a list of addresses */
        {"To: a b c\n\n", true, false, "To: a b c\r\nFrom: " FROM "\r\n\r\n", "", "To"},
        {"To: ok@x.example\nCc: <broken\n\n", true, false, "To: ok@x.example\r\nCc: <broken\r\nFrom: " FROM "\r\n\r\n",
         "", "Cc"},
        {"Bcc: a b\n\n", true, false, "From: " FROM "\r\n\r\n", "", "Bcc"},
        {"To: a b c\n\n", false, true, "To: a b c\r\nFrom: " FROM "\r\n\r\n", "", ""},
};

static void join(char *out, size_t size, const struct msg_submit_rcpt *list, size_t count)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "|" : "", list[i].address);
		char after = list[i].address[list[i].local_len];
		if (list[i].local_len == 0 || (after != '@' && after != '\0'))
			UNIT_FAIL("%s: local_len %zu", list[i].address, list[i].local_len);
	}
}

static void test_submit_table(void)
{
	for (size_t i = 0; i < sizeof submit_cases / sizeof submit_cases[0]; i++) {
		const struct submit_case *t = &submit_cases[i];
		size_t len = strlen(t->in);
		char *in = malloc(len ? len : 1);
		memcpy(in, t->in, len);
		struct msg_submit_options o = {.recipients = t->recipients, .from = FROM};
		struct msg_submit m;
		bool ok = msg_submit_prepare(in, len, &o, &m);
		char rcpts[1024];
		join(rcpts, sizeof rcpts, m.rcpts, m.rcpt_count);
		if (ok != t->ok)
			UNIT_FAIL("[%s]: got ok=%d, want %d", t->in, ok, t->ok);
		CHECK_MEM(m.content, m.len, t->content);
		CHECK_STR(rcpts, t->rcpts);
		CHECK_STR(m.bad_field, t->bad_field);
		CHECK(!m.eight_bit);
		msg_submit_free(&m);
		free(in);
	}
}

/* A quoted local part keeps its "@" (sendmail must not take what follows it for a domain). */
static void test_submit_quoted_at(void)
{
	static const char in[] = "To: \"bob@evil.example\", \"a@b\"@x.example, root\n\n";
	struct msg_submit m;
	struct msg_submit_options o = {.recipients = true, .from = NULL};
	CHECK(msg_submit_prepare(in, sizeof in - 1, &o, &m));
	CHECK_INT(m.rcpt_count, 3);
	if (m.rcpt_count == 3) {
		CHECK_STR(m.rcpts[0].address, "bob@evil.example");
		CHECK_INT(m.rcpts[0].local_len, 16); /* all of it: a local part alone */
		CHECK_STR(m.rcpts[1].address, "a@b@x.example");
		CHECK_INT(m.rcpts[1].local_len, 3);
		CHECK_STR(m.rcpts[2].address, "root");
		CHECK_INT(m.rcpts[2].local_len, 4);
	}
	msg_submit_free(&m);
}

static void test_submit_misc(void)
{
	struct msg_submit m;
	struct msg_submit_options o = {.recipients = false, .from = NULL};
	/* No From: to add: the message is only made canonical. */
	CHECK(msg_submit_prepare("Subject: x\n\nb\n", 14, &o, &m));
	CHECK_MEM(m.content, m.len, "Subject: x\r\n\r\nb\r\n");
	msg_submit_free(&m);
	/* 8-bit content is noticed, in the header or the body. */
	CHECK(msg_submit_prepare("Subject: caf\xc3\xa9\n\n", 17, &o, &m));
	CHECK(m.eight_bit);
	msg_submit_free(&m);
	CHECK(msg_submit_prepare("S: x\n\n\xff\n", 8, &o, &m));
	CHECK(m.eight_bit);
	msg_submit_free(&m);
	/* NUL bytes pass (the server refuses them) and do not cut the message. */
	CHECK(msg_submit_prepare("S: x\n\na\0b\n", 10, &o, &m));
	CHECK_INT(m.len, 13);
	msg_submit_free(&m);
}

static void test_dot_end(void)
{
	static const struct {
		const char *in;
		long want;
	} cases[] = {
	        {"a\n.\nb\n", 2}, {".\n", 0},      {".\r\n", 0},       {"a\r\n.\r\n", 3},
	        {"a\n..\n", -1},  {"a\n. \n", -1}, {"a\n.", -1},       {"a\n.x\n.\n", 5},
	        {"", -1},         {"a\nb", -1},    {"a\n.\r\r\n", -1}, {"\n.\n", 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t scan = 0, len = strlen(cases[i].in);
		char *in = malloc(len ? len : 1);
		memcpy(in, cases[i].in, len);
		CHECK_INT(msg_submit_dot_end(in, len, &scan), cases[i].want);
		free(in);
	}
	/* Read in pieces: the scan picks up where the whole lines ended. */
	const char *text = "line one\nline two\n.\nafter\n";
	size_t scan = 0;
	CHECK_INT(msg_submit_dot_end(text, 4, &scan), -1);
	CHECK_INT(scan, 0);
	CHECK_INT(msg_submit_dot_end(text, 12, &scan), -1);
	CHECK_INT(scan, 9);
	CHECK_INT(msg_submit_dot_end(text, 19, &scan), -1);
	CHECK_INT(scan, 18);
	CHECK_INT(msg_submit_dot_end(text, 20, &scan), 18);
}

static void test_crlf(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {"", ""},
	        {"EHLO x\n", "EHLO x\r\n"},
	        {"EHLO x\r\n", "EHLO x\r\n"},
	        {"a\nb\r\nc\n\n", "a\r\nb\r\nc\r\n\r\n"},
	        {"\r\r\n\n", "\r\r\n\r\n"},
	        {"no end", "no end"},
	};
	char out[64];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool cr = false;
		size_t n = msg_submit_crlf(cases[i].in, strlen(cases[i].in), &cr, out);
		CHECK_MEM(out, n, cases[i].want);
	}
	/* A CR at the end of one piece and its LF in the next stay one line end. */
	bool cr = false;
	size_t n = msg_submit_crlf("QUIT\r", 5, &cr, out);
	CHECK(cr);
	n += msg_submit_crlf("\nX\n", 3, &cr, out + n);
	CHECK_MEM(out, n, "QUIT\r\nX\r\n");
}

static void test_from_value(void)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
	        {NULL, "a@x.example"},
	        {"", "a@x.example"},
	        {"   ", "a@x.example"},
	        {"CronDaemon", "CronDaemon <a@x.example>"},
	        {"Cron Daemon", "Cron Daemon <a@x.example>"},
	        {"  Cron   Daemon  ", "Cron   Daemon <a@x.example>"},
	        {"John Q. Public", "\"John Q. Public\" <a@x.example>"},
	        {"Doe, John", "\"Doe, John\" <a@x.example>"},
	        {"a\"b\\c", "\"a\\\"b\\\\c\" <a@x.example>"},
	        {"tab\there\r\n", "tabhere <a@x.example>"},
	        {"J\xc3\xbcrgen", "=?UTF-8?B?SsO8cmdlbg==?= <a@x.example>"},
	        {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x",
	         "=?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6k=?= =?UTF-8?B?w6l4?= "
	         "<a@x.example>"},
	};
	char out[512];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK(msg_submit_from_value(cases[i].name, "a@x.example", out, sizeof out));
		CHECK_STR(out, cases[i].want);
	}
	/* A long name is cut at 128 bytes, never in the middle of a character. */
	char name[400], want[400];
	memset(name, 'n', 127);
	memcpy(name + 127, "\xc3\xa9\xc3\xa9", 5);
	memset(want, 'n', 127);
	memcpy(want + 127, " <a@x.example>", 15);
	CHECK(msg_submit_from_value(name, "a@x.example", out, sizeof out));
	CHECK_STR(out, want);
	memset(name, 'n', 300);
	name[300] = '\0';
	CHECK(msg_submit_from_value(name, "a@x.example", out, sizeof out));
	CHECK_INT(strlen(out), 128 + 14);
	/* Bytes that are not UTF-8 (found by the fuzzer): cut into full words, not one word a byte. */
	memcpy(name, "Jzr", 3);
	memset(name + 3, 0xa6, 200);
	name[203] = '\0';
	CHECK(msg_submit_from_value(name, "a@x.example", out, sizeof out));
	CHECK(strlen(out) < 250);
	CHECK(strncmp(out, "=?UTF-8?B?", 10) == 0);
	/* Too small a buffer says so. */
	CHECK(!msg_submit_from_value("Cron Daemon", "a@x.example", out, 10));
	CHECK(!msg_submit_from_value(NULL, "a@x.example", out, 5));
}

int main(void)
{
	test_submit_table();
	test_submit_misc();
	test_submit_quoted_at();
	test_dot_end();
	test_crlf();
	test_from_value();
	return unit_finish("msg_submit");
}
