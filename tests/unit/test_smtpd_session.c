/*
 * test_smtpd_session.c - the server session driven by a client's byte
 * stream over an in-memory pair (unit_session.h): the greeting, EHLO,
 * a whole transaction to its commit, BDAT, pipelining past a
 * synchronisation point (554 and close), over-long and malformed command
 * lines, AUTH PLAIN on submission, and the client leaving mid-way.
 */
#include "unit.h"
#include "unit_session.h"

/* has - the replies hold want. */
static void check_has(const char *replies, const char *want, int line)
{
	if (strstr(replies, want))
		unit_passed++;
	else
		UNIT_FAIL("line %d: replies \"%s\" lack \"%s\"", line, replies, want);
}
#define CHECK_HAS(replies, want) check_has(replies, want, __LINE__)

/* exchange - send text, take the replies. */
static char *exchange(struct unit_session *u, const char *text)
{
	unit_session_send(u, text, strlen(text));
	return unit_session_take(u);
}

/* expect - send text; the replies are exactly want. */
static void expect(struct unit_session *u, const char *text, const char *want)
{
	char *got = exchange(u, text);
	CHECK_STR(got, want);
	free(got);
}

/* start - a new session of kind, its greeting taken. */
static void start(struct unit_session *u, enum listener_kind kind)
{
	unit_session_start(u, kind);
	free(unit_session_take(u));
}

static void test_greeting_and_ehlo(struct unit_session *u)
{
	unit_session_start(u, LISTENER_MX);
	char *got = unit_session_take(u);
	CHECK_STR(got, "220 mx.test ESMTP tern\r\n");
	free(got);
	got = exchange(u, "EHLO client.test\r\n");
	CHECK(strncmp(got, "250-mx.test", 11) == 0);
	CHECK_HAS(got, "250-PIPELINING\r\n");
	CHECK_HAS(got, "CHUNKING");
	CHECK(strstr(got, "STARTTLS") == NULL); /* no certificates here */
	CHECK(strstr(got, "AUTH") == NULL);     /* never on mx */
	free(got);
	expect(u, "QUIT\r\n", "221 2.0.0 Bye\r\n");
	CHECK(u->session == NULL);
	unit_session_stop(u);
}

static void test_transaction(struct unit_session *u)
{
	start(u, LISTENER_MX);
	free(exchange(u, "EHLO client.test\r\n"));
	/* Pipelined envelope: MAIL and RCPT do not end a group. */
	char *got = exchange(u, "MAIL FROM:<x@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
	                        "RCPT TO:<nobody@localhost>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n");
	CHECK_HAS(got, "250 2.1.0");
	CHECK_HAS(got, "250 2.1.5");
	CHECK_HAS(got, "550 5.1.1");
	CHECK_HAS(got, "554 5.7.1");
	CHECK_HAS(got, "354 ");
	free(got);
	/* The end of the data only at CRLF.CRLF, then the commit, then 250. */
	got = exchange(u, "Subject: hi\r\n\r\nbody\r\n.");
	CHECK_STR(got, "");
	free(got);
	CHECK_INT(u->commits, 0);
	got = exchange(u, "\r\n");
	CHECK_INT(u->commits, 1);
	CHECK_HAS(got, "250 2.0.0 Ok: queued as ");
	free(got);
	/* BDAT: the dots are content, the last chunk commits. */
	got = exchange(u, "MAIL FROM:<>\r\nRCPT TO:<team@localhost>\r\nBDAT 8\r\n.\r\nhello");
	CHECK_HAS(got, "250 2.0.0 8 octets received\r\n");
	free(got);
	got = exchange(u, "BDAT 0 LAST\r\n");
	CHECK_INT(u->commits, 2);
	CHECK_HAS(got, "queued as");
	free(got);
	unit_session_stop(u);
	CHECK(u->session == NULL);
}

static void test_pipelining_violation(struct unit_session *u)
{
	start(u, LISTENER_MX);
	/* EHLO ends a group: what came behind it was sent blind. */
	char *got = exchange(u, "EHLO client.test\r\nMAIL FROM:<x@example.org>\r\n");
	CHECK_HAS(got, "250 ");
	CHECK_HAS(got, "554 5.5.0");
	CHECK(strstr(got, "250 2.1.0") == NULL);
	free(got);
	CHECK(u->session == NULL);
	unit_session_stop(u);

	/* So does the end of the data. */
	start(u, LISTENER_MX);
	free(exchange(u, "HELO client.test\r\n"));
	free(exchange(u, "MAIL FROM:<x@example.org>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n"));
	got = exchange(u, "body\r\n.\r\nNOOP\r\n");
	CHECK_HAS(got, "queued as");
	free(got);
	unit_session_stop(u);
}

static void test_bad_lines(struct unit_session *u)
{
	start(u, LISTENER_MX);
	expect(u, "NOOP\nNOOP\r\n", "500 5.5.2 Bare CR or LF in command; lines end with CRLF\r\n");
	char *got = exchange(u, "NO\rOP\r\n");
	CHECK(strncmp(got, "500 5.5.2", 9) == 0);
	free(got);
	unit_session_send(u, "NO\0OP\r\n", 7);
	got = unit_session_take(u);
	CHECK(strncmp(got, "500 5.5.2", 9) == 0);
	free(got);
	/* Over-long, in one piece and in many: refused once, in step. */
	char big[5000];
	memset(big, 'A', sizeof big);
	unit_session_send(u, big, sizeof big);
	unit_session_send(u, big, sizeof big);
	got = exchange(u, "\r\nNOOP\r\n");
	CHECK_STR(got, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
	free(got);
	unit_session_stop(u);
}

static void test_auth(struct unit_session *u)
{
	start(u, LISTENER_SUBMISSION);
	char *got = exchange(u, "EHLO client.test\r\n");
	CHECK_HAS(got, "AUTH PLAIN");
	free(got);
	/* Submission wants AUTH before MAIL. */
	got = exchange(u, "MAIL FROM:<alice@localhost>\r\n");
	CHECK(strncmp(got, "530 5.7.0", 9) == 0);
	free(got);
	/* "\0alice@localhost\0wrong", then "\0alice@localhost\0secret". */
	got = exchange(u, "AUTH PLAIN AGFsaWNlQGxvY2FsaG9zdAB3cm9uZw==\r\n");
	CHECK(strncmp(got, "535 5.7.8", 9) == 0);
	free(got);
	got = exchange(u, "AUTH PLAIN AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=\r\n");
	CHECK(strncmp(got, "235 2.7.0", 9) == 0);
	free(got);
	CHECK_INT(u->checks, 2);
	got = exchange(u, "MAIL FROM:<alice@localhost>\r\n");
	CHECK(strncmp(got, "250 2.1.0", 9) == 0);
	free(got);
	unit_session_stop(u);
}

/* The client goes in the middle of DATA: the session is freed, nothing is committed. */
static void test_client_leaves(struct unit_session *u)
{
	unsigned commits = u->commits;
	unit_session_start(u, LISTENER_MX);
	free(exchange(u, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\n"));
	free(exchange(u, "DATA\r\n"));
	unit_session_send(u, "half a message", 14);
	unit_session_client_close(u);
	CHECK(u->session == NULL);
	CHECK_INT(u->commits, commits);
	unit_session_stop(u);
}

int main(void)
{
	struct unit_session u;
	if (!unit_session_open(&u, "session")) {
		UNIT_FAIL("cannot make the scratch data directory");
		unit_session_close(&u);
		return unit_finish("smtpd_session");
	}
	log_set_level(LOG_LEVEL_ERROR);
	test_greeting_and_ehlo(&u);
	test_transaction(&u);
	test_pipelining_violation(&u);
	test_bad_lines(&u);
	test_auth(&u);
	test_client_leaves(&u);
	unit_session_close(&u);
	return unit_finish("smtpd_session");
}
