/*
 * test_smtp_client_reply.c - reply lines and EHLO keywords as the SMTP
 * client reads them (src/smtp/smtp_client_reply.c).
 */
#include <string.h>

#include "smtp/smtp_client_reply.h"
#include "unit.h"

static enum smtp_client_line feed(struct smtp_client_reply *r, const char *line)
{
	const char *text;
	size_t len;
	return smtp_client_reply_line(r, line, strlen(line), &text, &len);
}

static void test_single_lines(void)
{
	static const struct {
		const char *line;
		enum smtp_client_line want;
		int code;
		const char *text;
	} cases[] = {
	        {"220 mx.example.test ESMTP", SMTP_LINE_LAST, 220, "mx.example.test ESMTP"},
	        {"250", SMTP_LINE_LAST, 250, ""},
	        {"250 ", SMTP_LINE_LAST, 250, ""},
	        {"250-first", SMTP_LINE_MORE, 250, "first"},
	        {"599 x", SMTP_LINE_LAST, 599, "x"},
	        {"199 x", SMTP_LINE_MALFORMED, 0, ""},
	        {"600 x", SMTP_LINE_MALFORMED, 0, ""},
	        {"25", SMTP_LINE_MALFORMED, 0, ""},
	        {"2a0 x", SMTP_LINE_MALFORMED, 0, ""},
	        {"250x", SMTP_LINE_MALFORMED, 0, ""},
	        {"", SMTP_LINE_MALFORMED, 0, ""},
	        {" 250 x", SMTP_LINE_MALFORMED, 0, ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct smtp_client_reply r;
		smtp_client_reply_init(&r);
		CHECK_INT(feed(&r, cases[i].line), cases[i].want);
		CHECK_INT(r.code, cases[i].code);
		CHECK_STR(r.text, cases[i].text);
	}
}

static void test_multi_line(void)
{
	struct smtp_client_reply r;
	smtp_client_reply_init(&r);
	CHECK_INT(feed(&r, "250-mx.example.test hello"), SMTP_LINE_MORE);
	CHECK_INT(feed(&r, "250-PIPELINING"), SMTP_LINE_MORE);
	CHECK_INT(feed(&r, "250 SIZE 1000"), SMTP_LINE_LAST);
	CHECK_INT(r.lines, 3);
	CHECK_STR(r.text, "mx.example.test hello");

	/* Lines that disagree on the code: a broken or hostile peer. */
	smtp_client_reply_init(&r);
	CHECK_INT(feed(&r, "550-5.1.1 no"), SMTP_LINE_MORE);
	CHECK_INT(feed(&r, "250 ok"), SMTP_LINE_MISMATCH);

	/* No end in sight. */
	smtp_client_reply_init(&r);
	for (int i = 0; i < SMTP_CLIENT_REPLY_LINES; i++)
		CHECK_INT(feed(&r, "250-x"), SMTP_LINE_MORE);
	CHECK_INT(feed(&r, "250 x"), SMTP_LINE_TOO_MANY);

	/* The kept text is cut, never overrun. */
	char line[SMTP_CLIENT_REPLY_TEXT + 100];
	memset(line, 'a', sizeof line - 1);
	line[sizeof line - 1] = '\0';
	memcpy(line, "554 ", 4);
	smtp_client_reply_init(&r);
	CHECK_INT(feed(&r, line), SMTP_LINE_LAST);
	CHECK_INT(strlen(r.text), SMTP_CLIENT_REPLY_TEXT);
}

static void take(struct smtp_ehlo *e, const char *kw)
{
	smtp_ehlo_keyword(e, kw, strlen(kw));
}

static void test_ehlo_keywords(void)
{
	struct smtp_ehlo e;
	memset(&e, 0, sizeof e);
	take(&e, "STARTTLS");
	take(&e, "pipelining");
	take(&e, "8BITMIME");
	take(&e, "SMTPUTF8");
	take(&e, "DSN");
	take(&e, "CHUNKING");
	take(&e, "SIZE 10240000");
	CHECK(e.starttls && e.pipelining && e.eightbitmime && e.smtputf8 && e.dsn && e.chunking && e.size_offered);
	CHECK_INT(e.size, 10240000);

	memset(&e, 0, sizeof e);
	take(&e, "STARTTLSX");
	take(&e, "SIZEX 5");
	take(&e, "8BITMIMES");
	CHECK(!e.starttls && !e.eightbitmime);
	CHECK_INT(e.size, 0);
	CHECK(!e.size_offered);
	take(&e, "SIZE");
	CHECK_INT(e.size, 0);
	CHECK(e.size_offered);
	take(&e, "SIZE 99999999999999999999999");
	CHECK_INT(e.size, 0);
	take(&e, "SIZE 12x");
	CHECK_INT(e.size, 0);

	memset(&e, 0, sizeof e);
	take(&e, "AUTH CRAM-MD5 PLAINX");
	CHECK(!e.auth_plain && !e.auth_login);
	take(&e, "AUTHLOGIN");
	CHECK(!e.auth_login);
	take(&e, "auth  login  Plain");
	CHECK(e.auth_plain && e.auth_login);
	memset(&e, 0, sizeof e);
	take(&e, "AUTH=LOGIN"); /* the pre-standard form some servers add: not counted */
	CHECK(!e.auth_login);
}

int main(void)
{
	test_single_lines();
	test_multi_line();
	test_ehlo_keywords();
	return unit_finish("smtp_client_reply");
}
