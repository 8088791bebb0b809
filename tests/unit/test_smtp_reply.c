/*
 * test_smtp_reply.c - the reply table: every entry well-formed, and the
 * formatter's output.
 */
#include "smtp/smtp_reply.h"
#include "unit.h"

/* Every entry: a real code, an enhanced code of the same class (RFC 3463 2),
 * a text, and the RFC it comes from. */
static void test_table_entries(void)
{
	for (int id = 0; id < SMTP_R_COUNT; id++) {
		const struct smtp_reply *r = smtp_reply_get((enum smtp_reply_id)id);
		CHECK(r->code >= 200 && r->code <= 599);
		CHECK(r->text != NULL && r->text[0] != '\0');
		CHECK(r->rfc != NULL && r->rfc[0] != '\0');
		if (r->code == 354) {
			CHECK(r->status == NULL); /* intermediate replies carry no status code */
			continue;
		}
		if (!r->status) {
			UNIT_FAIL("reply %d (%d) has no enhanced status code", id, r->code);
			continue;
		}
		CHECK_INT(r->status[0] - '0', r->code / 100);
		CHECK_INT(r->status[1], '.');
		CHECK_INT(smtp_reply_is_error((enum smtp_reply_id)id), r->code >= 400);
	}
}

static void test_format(void)
{
	char buf[512];
	size_t n = smtp_reply_format(buf, sizeof buf, SMTP_R_USER_UNKNOWN, NULL);
	CHECK_MEM(buf, n, "550 5.1.1 User unknown\r\n");
	n = smtp_reply_format(buf, sizeof buf, SMTP_R_SYNTAX, "Bad HELO argument");
	CHECK_MEM(buf, n, "501 5.5.4 Bad HELO argument\r\n");
	n = smtp_reply_format(buf, sizeof buf, SMTP_R_DATA_GO, NULL);
	CHECK_MEM(buf, n, "354 End data with <CR><LF>.<CR><LF>\r\n");
	/* Never a cut reply: too small a buffer gives nothing. */
	CHECK_INT(smtp_reply_format(buf, 10, SMTP_R_USER_UNKNOWN, NULL), 0);
}

static void test_codes_the_issue_names(void)
{
	struct {
		enum smtp_reply_id id;
		int code;
		const char *status;
	} cases[] = {
	        {SMTP_R_NEED_MAIL, 503, "5.5.1"},
	        {SMTP_R_UNKNOWN_COMMAND, 500, "5.5.1"},
	        {SMTP_R_SYNTAX, 501, "5.5.4"},
	        {SMTP_R_SIZE_EXCEEDED, 552, "5.3.4"},
	        {SMTP_R_RELAY_DENIED, 554, "5.7.1"},
	        {SMTP_R_USER_UNKNOWN, 550, "5.1.1"},
	        {SMTP_R_TOO_MANY_ERRORS, 421, "4.7.0"},
	        {SMTP_R_PIPELINING, 554, "5.5.0"},
	        {SMTP_R_LOOP, 554, "5.4.6"},
	        {SMTP_R_VRFY, 252, "2.5.0"},
	        {SMTP_R_TOO_MANY_RCPTS, 452, "4.5.3"},
	        {SMTP_R_TIMEOUT, 421, "4.4.2"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct smtp_reply *r = smtp_reply_get(cases[i].id);
		CHECK_INT(r->code, cases[i].code);
		CHECK_STR(r->status, cases[i].status);
	}
}

int main(void)
{
	test_table_entries();
	test_format();
	test_codes_the_issue_names();
	return unit_finish("smtp_reply");
}
