/*
 * test_smtp_address.c - paths, mailboxes, domains and UTF-8 (smtp/smtp_address.c).
 *
 * Table-driven: each row is a path as the peer sends it, the kind (MAIL or
 * RCPT), and what the parser must make of it. Every limit is tried at its
 * edge and one over.
 */
#include <stdlib.h>

#include "smtp/smtp_address.h"
#include "unit.h"

enum {
	F_NULL = 1 << 0,
	F_POSTMASTER = 1 << 1,
	F_ROUTE = 1 << 2,
	F_QUOTED = 1 << 3,
	F_LITERAL = 1 << 4,
	F_UTF8 = 1 << 5,
};

#define REV  SMTP_PATH_REVERSE
#define FWD  SMTP_PATH_FORWARD
#define BAD  0
#define OK   1
#define LONG 2

struct path_case {
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	enum smtp_path_kind kind;
	int result;       /* BAD, OK, or LONG (false with *too_long) */
	const char *addr; /* on OK */
	size_t consumed;  /* on OK; 0: the whole input */
	unsigned flags;
};

static const struct path_case path_cases[] = {
        /* plain mailboxes */
        {"<a@b>", 0, REV, OK, "a@b", 0, 0},
        {"<user@example.com>", 0, FWD, OK, "user@example.com", 0, 0},
        {"<User.Name+tag@Example.COM>", 0, REV, OK, "User.Name+tag@Example.COM", 0, 0},
        {"<!#$%&'*+-/=?^_`{|}~@x>", 0, REV, OK, "!#$%&'*+-/=?^_`{|}~@x", 0, 0},
        {"<a@b> SIZE=10", 0, REV, OK, "a@b", 5, 0},
        {"<a@b>>", 0, REV, OK, "a@b", 5, 0},
        /* null path and postmaster (RFC 5321 4.1.1.2, 4.1.1.3) */
        {"<>", 0, REV, OK, "", 0, F_NULL},
        {"<> BODY=8BITMIME", 0, REV, OK, "", 2, F_NULL},
        {"<>", 0, FWD, BAD, NULL, 0, 0},
        {"<Postmaster>", 0, FWD, OK, "Postmaster", 0, F_POSTMASTER},
        {"<postMASTER>", 0, FWD, OK, "postMASTER", 0, F_POSTMASTER},
        {"<Postmaster>", 0, REV, BAD, NULL, 0, 0},
        {"<postmaster@example.com>", 0, FWD, OK, "postmaster@example.com", 0, 0},
        {"<\"Postmaster\">", 0, FWD, BAD, NULL, 0, 0},
        {"<@a:Postmaster>", 0, FWD, BAD, NULL, 0, 0},
        {"<Postmaste>", 0, FWD, BAD, NULL, 0, 0},
        {"<user>", 0, FWD, BAD, NULL, 0, 0},
        /* source routes (RFC 5321 4.1.2 A-d-l; ignored, 3.3 and C.) */
        {"<@a:user@d>", 0, REV, OK, "user@d", 0, F_ROUTE},
        {"<@a.example,@b.example:user@d>", 0, FWD, OK, "user@d", 0, F_ROUTE},
        {"<@a,b:user@d>", 0, REV, BAD, NULL, 0, 0},
        {"<@:user@d>", 0, REV, BAD, NULL, 0, 0},
        {"<@a user@d>", 0, REV, BAD, NULL, 0, 0},
        {"<@a,@b user@d>", 0, REV, BAD, NULL, 0, 0},
        {"<@a:>", 0, REV, BAD, NULL, 0, 0},
        {"<@x>", 0, REV, BAD, NULL, 0, 0},
        {"<@[1.2.3.4]:u@d>", 0, REV, BAD, NULL, 0, 0},
        /* quoted local parts (RFC 5321 4.1.2 Quoted-string) */
        {"<\"a b\"@x.org>", 0, REV, OK, "\"a b\"@x.org", 0, F_QUOTED},
        {"<\"a@b\"@x.org>", 0, REV, OK, "\"a@b\"@x.org", 0, F_QUOTED},
        {"<\"a\\\"b\"@x.org>", 0, REV, OK, "\"a\\\"b\"@x.org", 0, F_QUOTED},
        {"<\"a\\\\b\"@x.org>", 0, REV, OK, "\"a\\\\b\"@x.org", 0, F_QUOTED},
        {"<\"a\\ b\"@x.org>", 0, REV, OK, "\"a\\ b\"@x.org", 0, F_QUOTED},
        {"<\"\"@x.org>", 0, REV, OK, "\"\"@x.org", 0, F_QUOTED},
        {"<\"a>b\"@x.org>", 0, REV, OK, "\"a>b\"@x.org", 0, F_QUOTED},
        {"<\"abc@x.org>", 0, REV, BAD, NULL, 0, 0},
        {"<\"a\\\x01\"@x>", 0, REV, BAD, NULL, 0, 0},
        {"<\"a\tb\"@x>", 0, REV, BAD, NULL, 0, 0},
        {"<\"a\x7f\"@x>", 0, REV, BAD, NULL, 0, 0},
        {"<\"a\"b@x>", 0, REV, BAD, NULL, 0, 0},
        {"<\"a\"", 0, REV, BAD, NULL, 0, 0},
        /* dot-strings */
        {"<a.b.c@x>", 0, REV, OK, "a.b.c@x", 0, 0},
        {"<.a@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a.@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a..b@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a b@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a(b)@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a,b@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a[b@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a\\b@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b@c>", 0, REV, BAD, NULL, 0, 0},
        {"<@b>", 0, REV, BAD, NULL, 0, 0},
        /* domains (RFC 5321 4.1.2 Domain, sub-domain) */
        {"<a@b.c.d>", 0, REV, OK, "a@b.c.d", 0, 0},
        {"<a@b-c.d>", 0, REV, OK, "a@b-c.d", 0, 0},
        {"<a@b--c.d>", 0, REV, OK, "a@b--c.d", 0, 0},
        {"<a@123>", 0, REV, OK, "a@123", 0, 0},
        {"<a@-b.c>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b-.c>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b..c>", 0, REV, BAD, NULL, 0, 0},
        {"<a@.b>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b.>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b_c>", 0, REV, BAD, NULL, 0, 0},
        {"<a@>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b c>", 0, REV, BAD, NULL, 0, 0},
        /* address literals (RFC 5321 4.1.3) */
        {"<a@[192.0.2.1]>", 0, REV, OK, "a@[192.0.2.1]", 0, F_LITERAL},
        {"<a@[255.255.255.255]>", 0, REV, OK, "a@[255.255.255.255]", 0, F_LITERAL},
        {"<a@[256.1.1.1]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[1.2.3]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[1.2.3.4.5]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[01.2.3.4]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[ 1.2.3.4]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[IPv6:2001:db8::1]>", 0, REV, OK, "a@[IPv6:2001:db8::1]", 0, F_LITERAL},
        {"<a@[ipv6:::1]>", 0, REV, OK, "a@[ipv6:::1]", 0, F_LITERAL},
        {"<a@[IPv6:::ffff:192.0.2.1]>", 0, REV, OK, "a@[IPv6:::ffff:192.0.2.1]", 0, F_LITERAL},
        {"<a@[IPv6:1:2:3:4:5:6:7:8]>", 0, REV, OK, "a@[IPv6:1:2:3:4:5:6:7:8]", 0, F_LITERAL},
        {"<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[IPv6:2001:db8::g]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[IPv6:1.2.3.4]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[IPv6:fe80::1%eth0]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[IPv6:]>", 0, REV, BAD, NULL, 0, 0},
        /* Without "IPv6:" this is a general literal with the tag "2001"
         * (syntax only; whether a tag is registered is not checked here). */
        {"<a@[2001:db8::1]>", 0, REV, OK, "a@[2001:db8::1]", 0, F_LITERAL},
        {"<a@[x-tag:foo]>", 0, REV, OK, "a@[x-tag:foo]", 0, F_LITERAL},
        {"<a@[x-tag:]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[:foo]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[x-:foo]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[x_y:foo]>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[1.2.3.4>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[1.2.3.4]x>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[1.2.3.4]", 0, REV, BAD, NULL, 0, 0},
        {"<a@[a\\b:c]>", 0, REV, BAD, NULL, 0, 0},
        /* brackets */
        {"a@b", 0, REV, BAD, NULL, 0, 0},
        {"<a@b", 0, REV, BAD, NULL, 0, 0},
        {"<<a@b>>", 0, REV, BAD, NULL, 0, 0},
        {"", 0, REV, BAD, NULL, 0, 0},
        {"<", 0, REV, BAD, NULL, 0, 0},
        {" <a@b>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b >", 0, REV, BAD, NULL, 0, 0},
        {"< a@b>", 0, REV, BAD, NULL, 0, 0},
        /* control characters and NUL */
        {"<a\x01@b>", 0, REV, BAD, NULL, 0, 0},
        {"<a@b\x7f>", 0, REV, BAD, NULL, 0, 0},
        {"<a\0@b>", 6, REV, BAD, NULL, 0, 0},
        {"<a@b\0>", 6, REV, BAD, NULL, 0, 0},
        /* UTF-8 (RFC 6531 3.3), valid and not */
        {"<δοκιμή@παράδειγμα.δοκιμή>", 0, FWD, OK, "δοκιμή@παράδειγμα.δοκιμή", 0, F_UTF8},
        {"<用户@例子.广告>", 0, REV, OK, "用户@例子.广告", 0, F_UTF8},
        {"<\xf0\x9f\x98\x80@x>", 0, REV, OK, "\xf0\x9f\x98\x80@x", 0, F_UTF8},
        {"<\"\xc3\xa9 e\"@x>", 0, REV, OK, "\"\xc3\xa9 e\"@x", 0, F_UTF8 | F_QUOTED},
        {"<a@b\xc3\xa9-c>", 0, REV, OK, "a@b\xc3\xa9-c", 0, F_UTF8},
        {"<@\xc3\xa9:a@b>", 0, REV, OK, "a@b", 0, F_UTF8 | F_ROUTE},
        {"<a@b\x80>", 0, REV, BAD, NULL, 0, 0},
        {"<\xc3\x28@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xc0\xaf@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xc1\xbf@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xe0\x80\xaf@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xed\xa0\x80@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xf4\x90\x80\x80@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xf5\x80\x80\x80@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xe2\x82@b>", 0, REV, BAD, NULL, 0, 0},
        {"<\xff@b>", 0, REV, BAD, NULL, 0, 0},
        {"<a@[\xc3\xa9]>", 0, REV, BAD, NULL, 0, 0},
        {"<\"\\\xc3\xa9\"@x>", 0, REV, BAD, NULL, 0, 0},
        {"<a@\xe2\x82", 0, REV, BAD, NULL, 0, 0},
};

static unsigned path_flags(const struct smtp_path *p)
{
	return (p->is_null ? F_NULL : 0) | (p->is_bare_postmaster ? F_POSTMASTER : 0) |
	       (p->has_source_route ? F_ROUTE : 0) | (p->local_quoted ? F_QUOTED : 0) |
	       (p->domain_literal ? F_LITERAL : 0) | (p->has_utf8 ? F_UTF8 : 0);
}

/* check_layout - addr is local part, "@", domain, as local_len and domain_len say. */
static void check_layout(const struct smtp_path *p)
{
	size_t len = strlen(p->addr);

	if (p->domain_len == 0) {
		CHECK_INT(len, p->local_len);
		CHECK_STR(smtp_path_domain(p), "");
	} else {
		CHECK_INT(len, p->local_len + 1 + p->domain_len);
		CHECK_INT(p->addr[p->local_len], '@');
		CHECK_STR(smtp_path_domain(p), p->addr + p->local_len + 1);
	}
	CHECK(smtp_path_local(p) == p->addr);
}

static void run_path_case(size_t row, const struct path_case *c)
{
	/* A heap copy of exactly in_len bytes: a read past the end is an ASan error. */
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	char *in = malloc(len + 1);
	struct smtp_path path;
	size_t consumed = 99;
	bool too_long = true, ok;
	const char *why = NULL;

	if (in == NULL)
		abort();
	memcpy(in, c->in, len);
	ok = smtp_path_parse(in, len, c->kind, &path, &consumed, &too_long, &why);
	if (ok != (c->result == OK) || too_long != (c->result == LONG)) {
		UNIT_FAIL("row %zu \"%s\": got ok=%d too_long=%d (%s), want result %d", row, c->in, ok, too_long,
		          why ? why : "-", c->result);
	} else if (ok) {
		unit_passed++;
		CHECK_STR(path.addr, c->addr);
		CHECK_INT(consumed, c->consumed ? c->consumed : len);
		CHECK_INT(path_flags(&path), c->flags);
		CHECK(why == NULL);
		check_layout(&path);
	} else {
		unit_passed++;
		CHECK(why != NULL && why[0] != '\0');
		CHECK_INT(consumed, 0);
		CHECK_STR(path.addr, "");
	}
	free(in);
}

static void test_path_table(void)
{
	size_t i;

	for (i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++)
		run_path_case(i, &path_cases[i]);
}

/* labels - a domain of total length len made of labels of at most label bytes. */
static void labels(char *out, size_t len, size_t label)
{
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		if (run == label && i + 1 < len) {
			out[i] = '.';
			run = 0;
		} else if (run == label) {
			/* no room for a last label: end with ".d" instead */
			out[i - 1] = '.';
			out[i] = 'd';
		} else {
			out[i] = 'd';
			run++;
		}
	}
	out[len] = '\0';
}

/* try_path - "<" local "@" domain ">" with the given lengths (route optional). */
static int try_path(size_t local_len, size_t domain_len, size_t label, const char *route)
{
	char buf[1200], domain[600];
	int n;
	struct smtp_path path;
	size_t consumed;
	bool too_long, ok;

	labels(domain, domain_len, label);
	n = snprintf(buf, sizeof buf, "<%s%.*s@%s>", route, (int)local_len,
	             "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll", domain);
	if (n < 0 || (size_t)n >= sizeof buf)
		abort();
	ok = smtp_path_parse(buf, (size_t)n, SMTP_PATH_FORWARD, &path, &consumed, &too_long, NULL);
	if (ok) {
		CHECK_INT(path.local_len, local_len);
		CHECK_INT(path.domain_len, domain_len);
		check_layout(&path);
	}
	return ok ? OK : too_long ? LONG : BAD;
}

static void test_path_limits(void)
{
	/* RFC 5321 4.5.3.1.1: local part 64. */
	CHECK_INT(try_path(64, 10, 63, ""), OK);
	CHECK_INT(try_path(65, 10, 63, ""), LONG);
	/* RFC 1035 2.3.4: label 63. */
	CHECK_INT(try_path(5, 63, 63, ""), OK);
	CHECK_INT(try_path(5, 64, 64, ""), LONG);
	/* RFC 5321 4.5.3.1.3: the path with its brackets is 256: local + domain <= 253. */
	CHECK_INT(try_path(64, 189, 63, ""), OK);
	CHECK_INT(try_path(64, 190, 63, ""), LONG);
	CHECK_INT(try_path(1, 252, 63, ""), OK);
	CHECK_INT(try_path(1, 253, 63, ""), LONG);
	/* A source route counts in the path's length, though it is dropped. */
	CHECK_INT(try_path(64, 180, 63, "@r:"), OK);
	CHECK_INT(try_path(64, 187, 63, "@r:"), LONG);
	/* RFC 5321 4.5.3.1.2: domain 255 (seen whole through smtp_domain_check). */
	{
		char d[300];

		labels(d, 255, 63);
		CHECK(smtp_domain_check(d, 255, false, false));
		labels(d, 256, 63);
		CHECK(!smtp_domain_check(d, 256, false, false));
		labels(d, 64, 64);
		CHECK(!smtp_domain_check(d, 64, false, false));
		labels(d, 63, 63);
		CHECK(smtp_domain_check(d, 63, false, false));
	}
	/* A quoted local part counts its quotes. */
	{
		char buf[100];
		struct smtp_path path;
		size_t used;
		bool too_long;
		int n;

		n = snprintf(buf, sizeof buf, "<\"%.62s\"@x>",
		             "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq");
		CHECK(smtp_path_parse(buf, (size_t)n, SMTP_PATH_REVERSE, &path, &used, &too_long, NULL));
		n = snprintf(buf, sizeof buf, "<\"%.63s\"@x>",
		             "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq");
		CHECK(!smtp_path_parse(buf, (size_t)n, SMTP_PATH_REVERSE, &path, &used, &too_long, NULL));
		CHECK(too_long);
	}
}

/* Optional out-parameters may be NULL. */
static void test_path_null_outputs(void)
{
	struct smtp_path path;

	CHECK(smtp_path_parse("<a@b>", 5, SMTP_PATH_REVERSE, &path, NULL, NULL, NULL));
	CHECK(!smtp_path_parse("<a@b", 4, SMTP_PATH_REVERSE, &path, NULL, NULL, NULL));
	CHECK(!smtp_path_parse(NULL, 0, SMTP_PATH_REVERSE, &path, NULL, NULL, NULL));
}

static void test_domain_check(void)
{
	static const struct {
		const char *s;
		bool literal, utf8, want;
	} rows[] = {
	        {"example.com", false, false, true},
	        {"localhost", false, false, true},
	        {"a", false, false, true},
	        {"1.2.3.4", false, false, true},
	        {"", true, true, false},
	        {"a_b.example", true, true, false},
	        {"-a.example", true, true, false},
	        {"a-.example", true, true, false},
	        {"a..b", true, true, false},
	        {"a.", true, true, false},
	        {".a", true, true, false},
	        {"a b", true, true, false},
	        {"[192.0.2.1]", true, false, true},
	        {"[192.0.2.1]", false, false, false},
	        {"[IPv6:::1]", true, false, true},
	        {"[IPv6:::1", true, false, false},
	        {"[192.0.2.1]x", true, false, false},
	        {"[999.0.2.1]", true, false, false},
	        {"bücher.de", false, true, true},
	        {"bücher.de", false, false, false},
	        {"b\xc3.de", false, true, false},
	        {"xn--bcher-kva.de", false, false, true},
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		bool got = smtp_domain_check(rows[i].s, strlen(rows[i].s), rows[i].literal, rows[i].utf8);

		if (got != rows[i].want)
			UNIT_FAIL("smtp_domain_check(\"%s\", %d, %d): got %d, want %d", rows[i].s, rows[i].literal,
			          rows[i].utf8, got, rows[i].want);
		else
			unit_passed++;
	}
	/* Only the slice counts: a longer buffer is not read. */
	CHECK(smtp_domain_check("example.com!!!", 11, false, false));
}

static void test_utf8_valid(void)
{
	static const struct {
		const char *s;
		bool want;
	} rows[] = {
	        {"", true},
	        {"plain", true},
	        {"\xc3\xa9", true},
	        {"\xe2\x82\xac", true},
	        {"\xf0\x9f\x98\x80", true},
	        {"\xf4\x8f\xbf\xbf", true},
	        {"\xed\x9f\xbf", true},
	        {"\xee\x80\x80", true},
	        {"\x80", false},
	        {"\xc3", false},
	        {"\xc0\x80", false},
	        {"\xc1\xbf", false},
	        {"\xe0\x9f\xbf", false},
	        {"\xed\xa0\x80", false},
	        {"\xed\xbf\xbf", false},
	        {"\xf0\x8f\xbf\xbf", false},
	        {"\xf4\x90\x80\x80", false},
	        {"\xf8\x88\x80\x80\x80", false},
	        {"\xe2\x28\xa1", false},
	        {"\xe2\x82", false},
	        {"a\xc3", false},
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (smtp_utf8_valid(rows[i].s, strlen(rows[i].s)) != rows[i].want)
			UNIT_FAIL("smtp_utf8_valid row %zu: want %d", i, rows[i].want);
		else
			unit_passed++;
	}
	/* A sequence cut by the slice's end is invalid even if the buffer goes on. */
	CHECK(!smtp_utf8_valid("\xc3\xa9", 1));
}

static void test_atext_and_dot_string(void)
{
	static const char atext[] = "azAZ09!#$%&'*+-/=?^_`{|}~";
	for (const char *p = atext; *p; p++)
		CHECK(smtp_atext(*p));
	static const int not_atext[] = {-1,  0,   ' ', '"', '(',  ')', ',',  '.',  ':', ';',
	                                '<', '>', '@', '[', '\\', ']', 0x7f, 0x80, 0xff};
	for (size_t i = 0; i < sizeof not_atext / sizeof not_atext[0]; i++)
		if (smtp_atext(not_atext[i]))
			UNIT_FAIL("smtp_atext(0x%x): got true, want false", (unsigned)not_atext[i]);
		else
			unit_passed++;

	static const struct {
		const char *s;
		bool ascii, utf8; /* smtp_dot_string without and with utf8 */
	} rows[] = {
	        {"a", true, true},       {"john.doe", true, true},       {"a+tag.x-y", true, true},
	        {"", false, false},      {".a", false, false},           {"a.", false, false},
	        {"a..b", false, false},  {"a b", false, false},          {"bob@evil.example", false, false},
	        {"\"a\"", false, false}, {"j\xc3\xbcrgen", false, true}, {".j\xc3\xbcrgen", false, false},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t len = strlen(rows[i].s);
		CHECK_INT(smtp_dot_string(rows[i].s, len, false), rows[i].ascii);
		CHECK_INT(smtp_dot_string(rows[i].s, len, true), rows[i].utf8);
	}
	/* The slice's end counts, not a NUL: "a." cut before the dot is "a"; a NUL inside is no atext. */
	CHECK(smtp_dot_string("a.", 1, false));
	CHECK(!smtp_dot_string("a\0b", 3, true));
}

int main(void)
{
	test_path_table();
	test_atext_and_dot_string();
	test_path_limits();
	test_path_null_outputs();
	test_domain_check();
	test_utf8_valid();
	return unit_finish("smtp_address");
}
