/*
 * test_msg_address.c - address lists of From:-like fields (msg/msg_address.c).
 *
 * Table-driven: each row is a field value, whether it must be read as a
 * list, how many addresses it gives and what they are, joined by "|". Every
 * value is handed over in a heap buffer of exactly its length, so a read
 * past the end is caught under the sanitizers. Then the limits (the longest
 * address, one byte more), CR/LF/NUL, the count out-parameter and a
 * callback that stops the walk.
 */
#include <stdlib.h>

#include "msg/msg_address.h"
#include "unit.h"

#define BAD false
#define OK  true

struct address_case {
	const char *in;
	bool ok;
	size_t count;
	const char *want; /* the addresses handed over, "|" between them */
};

static const struct address_case address_cases[] = {
        /* addr-spec */
        {"a@b", OK, 1, "a@b"},
        {"user@example.com", OK, 1, "user@example.com"},
        {"  \tuser@example.com \t ", OK, 1, "user@example.com"},
        {"First.Last+tag@Example.COM", OK, 1, "First.Last+tag@Example.COM"},
        {"!#$%&'*+-/=?^_`{|}~@x.example", OK, 1, "!#$%&'*+-/=?^_`{|}~@x.example"},
        {"a@[192.0.2.1]", OK, 1, "a@[192.0.2.1]"},
        /* display names: atoms and quoted strings */
        {"John Doe <john@x.example>", OK, 1, "john@x.example"},
        {"<john@x.example>", OK, 1, "john@x.example"},
        {"John<john@x.example>", OK, 1, "john@x.example"},
        {"\"Doe, John\" <john@x.example>", OK, 1, "john@x.example"},
        {"\"Doe, John\" <john@x.example>, \"Roe, Jane\" <jane@y.example>", OK, 2, "john@x.example|jane@y.example"},
        {"\"Say \\\"hi\\\", John\" <john@x.example>", OK, 1, "john@x.example"},
        {"\"back\\\\slash\" <john@x.example>", OK, 1, "john@x.example"},
        {"\"(not a comment\" <john@x.example>", OK, 1, "john@x.example"},
        {"\"<not@an.address>\" <john@x.example>", OK, 1, "john@x.example"},
        {"\"\" <john@x.example>", OK, 1, "john@x.example"},
        {"Mr. John Q. Public <john@x.example>", OK, 1, "john@x.example"},
        {"John <john@x.example> (work)", OK, 1, "john@x.example"},
        {"\tJohn\t<\tjohn@x.example\t>\t", OK, 1, "john@x.example"},
        /* comments anywhere, nested, with escapes */
        {"john@x.example (John)", OK, 1, "john@x.example"},
        {"(John) john@x.example", OK, 1, "john@x.example"},
        {"john(c)@x.example", OK, 1, "john@x.example"},
        {"john@(c)x.example", OK, 1, "john@x.example"},
        {"john@x.example(c)", OK, 1, "john@x.example"},
        {"John (the (nested (deeply)) one) <john@x.example>", OK, 1, "john@x.example"},
        {"<(c)john(c)@(c)x.example(c)>", OK, 1, "john@x.example"},
        {"(a \\) b) john@x.example", OK, 1, "john@x.example"},
        {"(a \\( b) john@x.example", OK, 1, "john@x.example"},
        {"(\"quote in comment) john@x.example", OK, 1, "john@x.example"},
        {"(<a@b>, c@d) john@x.example", OK, 1, "john@x.example"},
        {"(only a comment)", OK, 0, ""},
        /* groups */
        {"undisclosed-recipients:;", OK, 0, ""},
        {"undisclosed-recipients: ;", OK, 0, ""},
        {"team: a@x, b@y;", OK, 2, "a@x|b@y"},
        {"team:a@x,b@y;", OK, 2, "a@x|b@y"},
        {"\"The Team\": A <a@x>, (c) b@y (d);", OK, 2, "a@x|b@y"},
        {"team: a@x;, c@z", OK, 2, "a@x|c@z"},
        {"c@z, team: a@x, b@y;", OK, 3, "c@z|a@x|b@y"},
        {"one: a@x;, two: b@y;", OK, 2, "a@x|b@y"},
        {"team: a@x, b@y; (end)", OK, 2, "a@x|b@y"},
        /* obsolete source routes (RFC 5322 4.4) */
        {"<@a,@b:u@d>", OK, 1, "u@d"},
        {"<@a:u@d>", OK, 1, "u@d"},
        {"Name <@a.example,@b.example:user@d.example>", OK, 1, "user@d.example"},
        {"<@a, @b : u@d>", OK, 1, "u@d"},
        /* quoted local parts: unquoted in the output */
        {"\"a b\"@c", OK, 1, "a b@c"},
        {"\"a@b\"@c", OK, 1, "a@b@c"},
        {"\"a\\\"b\"@c", OK, 1, "a\"b@c"},
        {"\"a\\\\\"@c", OK, 1, "a\\@c"},
        {"\"a,b\"@c, d@e", OK, 2, "a,b@c|d@e"},
        {"<\"john doe\"@x.example>", OK, 1, "john doe@x.example"},
        {"\"john\".\"doe\"@x.example", OK, 1, "john.doe@x.example"},
        /* CFWS around "@" and dots (obsolete forms) */
        {"a @ b", OK, 1, "a@b"},
        {"a (x) @ (y) b", OK, 1, "a@b"},
        {"john . doe @ x . example", OK, 1, "john.doe@x.example"},
        {"< a @ b >", OK, 1, "a@b"},
        /* several addresses */
        {"a@x, b@y", OK, 2, "a@x|b@y"},
        {"a@x,b@y,c@z", OK, 3, "a@x|b@y|c@z"},
        {"A <a@x>, b@y, \"C\" <c@z>", OK, 3, "a@x|b@y|c@z"},
        {"a@x, , b@y", OK, 2, "a@x|b@y"},
        {"a@x,", OK, 1, "a@x"},
        {",a@x", OK, 1, "a@x"},
        {"", OK, 0, ""},
        {"   ", OK, 0, ""},
        {",", OK, 0, ""},
        /* unbalanced quotes, comments, angle brackets */
        {"\"john@x.example", BAD, 0, ""},
        {"\"John <john@x.example>", BAD, 0, ""},
        {"john\"@x.example", BAD, 0, ""},
        {"\"john\\\"@x.example", BAD, 0, ""},
        {"\"john\\", BAD, 0, ""},
        {"(John john@x.example", BAD, 0, ""},
        {"John (a (b) <john@x.example>", BAD, 0, ""},
        {"john@x.example (c", BAD, 0, ""},
        {"(a \\) john@x.example", BAD, 0, ""},
        {"<john@x.example", BAD, 0, ""},
        {"John <john@x.example, b@y", BAD, 0, ""},
        /* stray closers, nested or repeated angle brackets */
        {"john@x.example)", BAD, 0, ""},
        {") john@x.example", BAD, 0, ""},
        {"John) <john@x.example>", BAD, 0, ""},
        {"john@x.example>", BAD, 0, ""},
        {"<john@x.example>>", BAD, 0, ""},
        {"> john@x.example", BAD, 0, ""},
        {"<<john@x.example>>", BAD, 0, ""},
        {"<a<john@x.example>>", BAD, 0, ""},
        {"<a@x> <b@y>", BAD, 0, ""},
        {"A <a@x> B <b@y>", BAD, 0, ""},
        /* entries that are not addresses */
        {"John Doe", BAD, 0, ""},
        {"john", BAD, 0, ""},
        {"\"john\"", BAD, 0, ""},
        {"John <john>", BAD, 0, ""},
        {"a@x, John Doe", BAD, 1, "a@x"},
        {"team: a@x, nobody;", BAD, 1, "a@x"},
        /* empty local part or domain */
        {"@x.example", BAD, 0, ""},
        {"<@x.example>", BAD, 0, ""},
        {"\"\"@x.example", BAD, 0, ""},
        {"(c)@x.example", BAD, 0, ""},
        {"john@", BAD, 0, ""},
        {"<john@>", BAD, 0, ""},
        {"john@ (c)", BAD, 0, ""},
        {"@", BAD, 0, ""},
        {"<@>", BAD, 0, ""},
        /* broken source routes */
        {"<@a,@b>", BAD, 0, ""},
        {"<@a:>", BAD, 0, ""},
        {"<@a,@b:@d>", BAD, 0, ""},
        {"<@a,@b:u@>", BAD, 0, ""},
        /* groups done wrong: ";" without a group, nesting, no end, after an angle address */
        {";", BAD, 0, ""},
        {"a@x;", BAD, 0, ""},
        {"a@x; b@y", BAD, 0, ""},
        {"team: a@x;;", BAD, 1, "a@x"},
        {"outer: inner: a@x;;", BAD, 0, ""},
        {"team: a@x", BAD, 0, ""},
        {"team: a@x, b@y", BAD, 1, "a@x"},
        {"team:", BAD, 0, ""},
        {"<a@x>: b@y;", BAD, 0, ""},
        {"A <a@x> team: b@y;", BAD, 0, ""},
};

/*
 * A callback's record: the addresses joined by "|", their local parts (as
 * local_len tells) the same way, how many calls, and the call to answer
 * false to.
 */
struct collect {
	char got[4096];
	size_t used;
	char locals[4096];
	size_t locals_used;
	size_t calls;
	size_t stop_at; /* 0: never stop */
};

static void collect_append(char *buf, size_t size, size_t *used, const char *s, size_t len)
{
	if (*used + len + 2 < size) {
		if (*used > 0)
			buf[(*used)++] = '|';
		memcpy(buf + *used, s, len);
		*used += len;
		buf[*used] = '\0';
	}
}

static bool collect_address(void *ctx, const char *address, size_t local_len)
{
	struct collect *c = ctx;
	size_t len = strlen(address);

	c->calls++;
	if (len >= MSG_ADDRESS_MAX + 1)
		UNIT_FAIL("address of %zu bytes handed over", len);
	/* The local part is not empty and ends at the "@" before a domain, or at the end. */
	if (local_len == 0 || local_len > len ||
	    (local_len < len && (address[local_len] != '@' || local_len + 1 == len)))
		UNIT_FAIL("%s: local_len %zu does not split it", address, local_len);
	collect_append(c->got, sizeof c->got, &c->used, address, len);
	collect_append(c->locals, sizeof c->locals, &c->locals_used, address, local_len < len ? local_len : len);
	return c->calls != c->stop_at;
}

/* run_list_as - msg_address_list (or _local) on in[0..len) copied into a buffer of exactly len bytes. */
static bool run_list_as(bool bare_local, const char *in, size_t len, struct collect *c, size_t *count)
{
	char *copy = malloc(len ? len : 1);
	bool ok;

	if (copy == NULL)
		abort();
	memcpy(copy, in, len);
	*count = 12345;
	ok = (bare_local ? msg_address_list_local : msg_address_list)(copy, len, collect_address, c, count);
	free(copy);
	return ok;
}

static bool run_list(const char *in, size_t len, struct collect *c, size_t *count)
{
	return run_list_as(false, in, len, c, count);
}

static void test_address_table(void)
{
	for (size_t i = 0; i < sizeof address_cases / sizeof address_cases[0]; i++) {
		const struct address_case *t = &address_cases[i];
		struct collect c = {.used = 0};
		size_t count;
		bool ok = run_list(t->in, strlen(t->in), &c, &count);

		if (ok != t->ok || count != t->count || strcmp(c.got, t->want) != 0)
			UNIT_FAIL("[%s]: got ok=%d count=%zu \"%s\", want ok=%d count=%zu \"%s\"", t->in, ok, count,
			          c.got, t->ok, t->count, t->want);
		else
			unit_passed++;
		/* Every address handed over was counted, unless the callback said stop (never here). */
		CHECK_INT(c.calls, count);
	}
}

/* Lists where a local part alone is an address (sendmail -t); the strict reading refuses each with one. */
static const struct address_case local_cases[] = {
        {"root", OK, 1, "root"},
        {"  root  ", OK, 1, "root"},
        {"Cron Daemon <root>", OK, 1, "root"},
        {"root (the admin)", OK, 1, "root"},
        {"root, alice@x.example, bob", OK, 3, "root|alice@x.example|bob"},
        {"first.last", OK, 1, "first.last"},
        {"\"john doe\"", OK, 1, "john doe"},
        {"team: root, alice;", OK, 2, "root|alice"},
        {"undisclosed-recipients:;", OK, 0, ""},
        {"john doe", BAD, 0, ""},
        {"root@", BAD, 0, ""},
        {"@x.example", BAD, 0, ""},
        {"a..b", BAD, 0, ""},
        {".a", BAD, 0, ""},
        {"root, bad address", BAD, 1, "root"},
        {"<root> extra", BAD, 0, ""},
};

static void test_address_local(void)
{
	for (size_t i = 0; i < sizeof local_cases / sizeof local_cases[0]; i++) {
		const struct address_case *t = &local_cases[i];
		struct collect c = {.used = 0};
		size_t count;
		bool ok = run_list_as(true, t->in, strlen(t->in), &c, &count);

		if (ok != t->ok || count != t->count || strcmp(c.got, t->want) != 0)
			UNIT_FAIL("local [%s]: got ok=%d count=%zu \"%s\", want ok=%d count=%zu \"%s\"", t->in, ok,
			          count, c.got, t->ok, t->count, t->want);
		else
			unit_passed++;
	}
	/* Whatever the strict reading accepts, the local one reads the same. */
	for (size_t i = 0; i < sizeof address_cases / sizeof address_cases[0]; i++) {
		const struct address_case *t = &address_cases[i];
		struct collect c = {.used = 0};
		size_t count;
		if (!t->ok)
			continue;
		CHECK(run_list_as(true, t->in, strlen(t->in), &c, &count));
		CHECK_STR(c.got, t->want);
	}
}

/* fill - n copies of ch at p. */
static char *fill(char *p, char ch, size_t n)
{
	memset(p, ch, n);
	return p + n;
}

/* The longest address handed over is MSG_ADDRESS_MAX bytes; one more makes the list malformed. */
static void test_address_limits(void)
{
	char in[4 * MSG_ADDRESS_MAX], want[MSG_ADDRESS_MAX + 1];
	struct collect c;
	size_t count, len;
	char *p;

	/* local part of MSG_ADDRESS_MAX - 3 bytes, "@", a two-byte domain */
	p = fill(in, 'l', MSG_ADDRESS_MAX - 3);
	memcpy(p, "@dd", 3);
	len = MSG_ADDRESS_MAX;
	memcpy(want, in, len);
	want[len] = '\0';
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, len, &c, &count));
	CHECK_INT(count, 1);
	CHECK_STR(c.got, want);

	/* the same in angle brackets after a display name */
	memcpy(in, "Name <", 6);
	memcpy(in + 6, want, MSG_ADDRESS_MAX);
	in[6 + MSG_ADDRESS_MAX] = '>';
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, MSG_ADDRESS_MAX + 7, &c, &count));
	CHECK_STR(c.got, want);

	/* CFWS does not count against the limit */
	p = fill(in, 'l', MSG_ADDRESS_MAX - 3);
	p = fill(p, ' ', 50);
	memcpy(p, "(comment) @ dd", 14);
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, (size_t)(p + 14 - in), &c, &count));
	CHECK_STR(c.got, want);

	/* one byte more: malformed, nothing handed over */
	p = fill(in, 'l', MSG_ADDRESS_MAX - 2);
	memcpy(p, "@dd", 3);
	memset(&c, 0, sizeof c);
	CHECK(!run_list(in, MSG_ADDRESS_MAX + 1, &c, &count));
	CHECK_INT(count, 0);
	CHECK_INT(c.calls, 0);
	memcpy(in, "<", 1);
	p = fill(in + 1, 'l', MSG_ADDRESS_MAX - 2);
	memcpy(p, "@dd>", 4);
	memset(&c, 0, sizeof c);
	CHECK(!run_list(in, MSG_ADDRESS_MAX + 3, &c, &count));
	CHECK_INT(c.calls, 0);

	/* far more (the buffer must not overflow), after a good address */
	memcpy(in, "a@x, ", 5);
	p = fill(in + 5, 'l', 3 * MSG_ADDRESS_MAX);
	memcpy(p, "@dd", 3);
	memset(&c, 0, sizeof c);
	CHECK(!run_list(in, 5 + 3 * MSG_ADDRESS_MAX + 3, &c, &count));
	CHECK_INT(count, 1);
	CHECK_STR(c.got, "a@x");

	/* long display names, comments and group names are not addresses: no limit */
	in[0] = '"';
	p = fill(in + 1, 'n', 2 * MSG_ADDRESS_MAX);
	memcpy(p, "\" <a@x>", 7);
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, (size_t)(p + 7 - in), &c, &count));
	CHECK_STR(c.got, "a@x");
	p = fill(in, 'n', 2 * MSG_ADDRESS_MAX);
	memcpy(p, " <a@x>", 6);
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, (size_t)(p + 6 - in), &c, &count));
	CHECK_STR(c.got, "a@x");
	in[0] = '(';
	p = fill(in + 1, 'c', 2 * MSG_ADDRESS_MAX);
	memcpy(p, ") a@x", 5);
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, (size_t)(p + 5 - in), &c, &count));
	CHECK_STR(c.got, "a@x");
	p = fill(in, 'g', 2 * MSG_ADDRESS_MAX);
	memcpy(p, ": a@x;", 6);
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, (size_t)(p + 6 - in), &c, &count));
	CHECK_STR(c.got, "a@x");
}

/* CR, LF and NUL make the value malformed wherever they are, even in quotes or comments:
 * the list is refused before any address is handed over. */
static void test_address_controls(void)
{
	static const struct {
		const char *name;
		const char *in;
		size_t len;
		size_t count; /* addresses handed over: none */
	} cases[] = {
	        {"CR LF at the end", "a@x\r\n", 5, 0},
	        {"CR at the end", "a@x\r", 4, 0},
	        {"LF at the end", "a@x\n", 4, 0},
	        {"folding left in", "a@x,\r\n b@y", 10, 0},
	        {"CR in a local part", "a\r@x", 4, 0},
	        {"CR in quotes", "\"a\rb\"@x", 7, 0},
	        {"LF in quotes", "\"a\nb\"@x", 7, 0},
	        {"LF in a comment", "(a\nb) c@x", 9, 0},
	        {"CR in angle brackets", "<a@x\r>", 6, 0},
	        {"NUL at the end", "a@x\0", 4, 0},
	        {"NUL in a local part", "a\0@x", 4, 0},
	        {"NUL in quotes", "\"a\0b\"@x", 7, 0},
	        {"NUL in a comment", "(\0) a@x", 7, 0},
	        {"NUL in the second address", "a@x, b@y\0, c@z", 14, 0},
	        {"NUL alone", "\0", 1, 0},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct collect c = {.used = 0};
		size_t count;
		bool ok = run_list(cases[i].in, cases[i].len, &c, &count);

		if (ok || count != cases[i].count)
			UNIT_FAIL("%s: got ok=%d count=%zu, want ok=0 count=%zu", cases[i].name, ok, count,
			          cases[i].count);
		else
			unit_passed++;
	}
}

/* A quoted local part may hold "@": local_len says where it ends, and a local part alone keeps it whole. */
static void test_local_len(void)
{
	static const struct {
		bool bare_local;
		const char *in, *want, *want_locals;
	} rows[] = {
	        {false, "\"a@b\"@c", "a@b@c", "a@b"},
	        {false, "john.doe@x.example, \"p@q\" <\"r@s\"@t.example>", "john.doe@x.example|r@s@t.example",
	         "john.doe|r@s"},
	        {false, "<a@[tag:b@c]>", "a@[tag:b@c]", "a"},
	        {true, "\"bob@evil.example\"", "bob@evil.example", "bob@evil.example"},
	        {true, "root, \"bob@evil.example\"@x.example", "root|bob@evil.example@x.example",
	         "root|bob@evil.example"},
	        {true, "Bob <\"b@c\">", "b@c", "b@c"},
	        {true, "\"@\"", "@", "@"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct collect c = {.used = 0};
		size_t count;
		bool ok = run_list_as(rows[i].bare_local, rows[i].in, strlen(rows[i].in), &c, &count);
		CHECK(ok);
		CHECK_STR(c.got, rows[i].want);
		CHECK_STR(c.locals, rows[i].want_locals);
	}
}

/* Only value[0..len) is read: what follows is not part of the list. */
static void test_address_length(void)
{
	struct collect c = {.used = 0};
	size_t count;

	CHECK(msg_address_list("a@x, b@y", 3, collect_address, &c, &count));
	CHECK_INT(count, 1);
	CHECK_STR(c.got, "a@x");
	memset(&c, 0, sizeof c);
	CHECK(msg_address_list("a@x", 0, collect_address, &c, &count));
	CHECK_INT(count, 0);
	CHECK_INT(c.calls, 0);
	/* cut inside a quote, a comment, angle brackets */
	memset(&c, 0, sizeof c);
	CHECK(!msg_address_list("\"a\"@x", 2, collect_address, &c, &count));
	CHECK(!msg_address_list("(c) a@x", 2, collect_address, &c, &count));
	CHECK(!msg_address_list("<a@x>", 4, collect_address, &c, &count));
	CHECK(!msg_address_list("\"a\\\"\"@x", 3, collect_address, &c, &count));
	CHECK_INT(c.calls, 0);
}

/* A callback answering false stops the walk: the list is refused, later addresses are not looked at. */
static void test_address_stop(void)
{
	static const char list[] = "a@x, B <b@y>, c@z, team: d@w;";
	struct collect c;
	size_t count;

	for (size_t stop = 1; stop <= 4; stop++) {
		memset(&c, 0, sizeof c);
		c.stop_at = stop;
		CHECK(!run_list(list, sizeof list - 1, &c, &count));
		CHECK_INT(c.calls, stop);
		CHECK_INT(count, stop - 1);
	}
	memset(&c, 0, sizeof c);
	c.stop_at = 5;
	CHECK(run_list(list, sizeof list - 1, &c, &count));
	CHECK_INT(c.calls, 4);
	CHECK_INT(count, 4);
	CHECK_STR(c.got, "a@x|b@y|c@z|d@w");

	/* stopping early also skips a malformed tail */
	memset(&c, 0, sizeof c);
	c.stop_at = 1;
	CHECK(!run_list("a@x, (broken", 12, &c, &count));
	CHECK_INT(c.calls, 1);
	CHECK_INT(count, 0);
}

/* Many addresses in one list, and a list that is malformed only at its end. */
static void test_address_many(void)
{
	char in[16384];
	size_t len = 0;
	struct collect c;
	size_t count;

	for (int i = 0; i < 500; i++)
		len += (size_t)snprintf(in + len, sizeof in - len, "%s<u%d@d%d.example>", i ? ", " : "", i, i % 7);
	memset(&c, 0, sizeof c);
	CHECK(run_list(in, len, &c, &count));
	CHECK_INT(count, 500);
	CHECK_INT(c.calls, 500);
	CHECK(strncmp(c.got, "u0@d0.example|u1@d1.example|u2@d2.example|", 42) == 0);

	/* the last entry is never ended: 499 handed over, then the list is refused */
	in[len++] = ')';
	memset(&c, 0, sizeof c);
	CHECK(!run_list(in, len, &c, &count));
	CHECK_INT(count, 499);
}

/* Text that is not one address per entry is refused, never read as some other address. */
static void test_address_not_addresses(void)
{
	static const struct {
		const char *in;
		size_t len;
	} cases[] = {
	        {"\"a\\\rb\"@x", 8},
	        {"(a\\\nb) c@x", 10},
	        {"\"me@mine.example\\\0\"@bank.example", 32},
	        {"<>", 2},
	        {"Name <>", 7},
	        {"<\"\">", 4},
	        {"a@x, <>", 7},
	        {"<boss@bank.example,me@mine.example>", 35},
	        {"boss@bank.example me@mine.example", 33},
	        {"boss@bank.example@mine.example", 30},
	        {"<boss@bank.example:me@mine.example>", 35},
	        {"<me@mine.example> boss@bank.example", 35},
	        {"<a@b>c", 6},
	        {"vic tim@x", 9},
	        {"a@b:;", 5},
	        {"a..b@x", 6},
	        {".a@x", 4},
	        {"a.@x", 4},
	        {"a@x..y", 6},
	        {"a@-x_y", 6},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct collect c = {.used = 0};
		size_t count;
		bool ok = run_list(cases[i].in, cases[i].len, &c, &count);
		if (ok)
			UNIT_FAIL("case %zu: accepted, handing over \"%s\"", i, c.got);
		else
			unit_passed++;
	}
}

int main(void)
{
	test_local_len();
	test_address_table();
	test_address_local();
	test_address_limits();
	test_address_controls();
	test_address_length();
	test_address_stop();
	test_address_many();
	test_address_not_addresses();
	return unit_finish("msg_address");
}
