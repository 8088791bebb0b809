/*
 * test_smtp_dsn.c - RFC 3461 parameter values (src/smtp/smtp_dsn.c).
 */
#include <string.h>

#include "smtp/smtp_dsn.h"
#include "unit.h"

#define S(x) x, strlen(x)

static void test_xtext(void)
{
	CHECK(smtp_xtext_valid(S("abc-123_!~")));
	CHECK(smtp_xtext_valid(S("a+2Bb+3D")));
	CHECK(smtp_xtext_valid(S("")));
	CHECK(!smtp_xtext_valid(S("a b")));
	CHECK(!smtp_xtext_valid(S("a=b")));
	CHECK(!smtp_xtext_valid(S("a+2b")));
	CHECK(!smtp_xtext_valid(S("a+2")));
	CHECK(!smtp_xtext_valid(S("a+")));
	CHECK(!smtp_xtext_valid(S("caf\xc3\xa9")));
	CHECK(!smtp_xtext_valid("a\0b", 3));
}

static void test_ret_envid(void)
{
	bool hdrs = true;
	CHECK(smtp_dsn_ret(S("FULL"), &hdrs) && !hdrs);
	CHECK(smtp_dsn_ret(S("hdrs"), &hdrs) && hdrs);
	CHECK(!smtp_dsn_ret(S("BOTH"), &hdrs));
	CHECK(!smtp_dsn_ret(S(""), &hdrs));
	CHECK(smtp_dsn_envid(S("QQ314159")));
	CHECK(!smtp_dsn_envid(S("")));
	char longest[SMTP_ENVID_MAX + 2];
	memset(longest, 'e', sizeof longest);
	CHECK(smtp_dsn_envid(longest, SMTP_ENVID_MAX));
	CHECK(!smtp_dsn_envid(longest, SMTP_ENVID_MAX + 1));
}

static void test_notify(void)
{
	unsigned bits;
	CHECK(smtp_dsn_notify(S("NEVER"), &bits));
	CHECK_INT(bits, SMTP_NOTIFY_NEVER);
	CHECK(smtp_dsn_notify(S("success,FAILURE,Delay"), &bits));
	CHECK_INT(bits, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	CHECK(smtp_dsn_notify(S("FAILURE"), &bits));
	CHECK_INT(bits, SMTP_NOTIFY_FAILURE);
	CHECK(!smtp_dsn_notify(S("NEVER,FAILURE"), &bits));
	CHECK(!smtp_dsn_notify(S("FAILURE,FAILURE"), &bits));
	CHECK(!smtp_dsn_notify(S("FAILURE,"), &bits));
	CHECK(!smtp_dsn_notify(S(",FAILURE"), &bits));
	CHECK(!smtp_dsn_notify(S(""), &bits));
	CHECK(!smtp_dsn_notify(S("SOMETIMES"), &bits));
}

static void test_orcpt(void)
{
	CHECK(smtp_dsn_orcpt(S("rfc822;bob@example.test")));
	CHECK(smtp_dsn_orcpt(S("utf-8;b+3Db@example.test")));
	CHECK(!smtp_dsn_orcpt(S("rfc822;")));
	CHECK(!smtp_dsn_orcpt(S(";bob@example.test")));
	CHECK(!smtp_dsn_orcpt(S("bob@example.test")));
	CHECK(!smtp_dsn_orcpt(S("rfc 822;bob@example.test")));
	CHECK(!smtp_dsn_orcpt(S("rfc822;bob @example.test")));
	char longest[SMTP_ORCPT_MAX + 2];
	memcpy(longest, "rfc822;", 7);
	memset(longest + 7, 'b', sizeof longest - 7);
	CHECK(smtp_dsn_orcpt(longest, SMTP_ORCPT_MAX));
	CHECK(!smtp_dsn_orcpt(longest, SMTP_ORCPT_MAX + 1));
}

int main(void)
{
	test_xtext();
	test_ret_envid();
	test_notify();
	test_orcpt();
	return unit_finish("smtp_dsn");
}
