/*
 * test_store_suppress.c - the suppression list and the pruning of bounced
 * recipients (src/store/store_suppress.c, store_thread.c), against a fresh
 * data directory under $TMPDIR.
 *
 * Which replies count as the address not existing (a table); the command
 * line's calls; and the store thread itself: messages written straight into
 * the schema are handed to a fake delivery that answers each recipient from
 * a table, and the rows the store writes back are read with a connection of
 * our own. Pruning is tested by moving times back in the database while the
 * store is stopped, and starting it again (it prunes on its first turn).
 * Last, the migration from schema version 4.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_admin.h"
#include "store/store_db.h"
#include "store/store_suppress.h"
#include "unit.h"
#include "unit_store.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define DAY_MS (24LL * 3600 * 1000)

/* ---- Which replies count ---- */

static void test_hard_bounce(void)
{
	static const struct {
		const char *reason;
		bool hard;
		const char *status;
	} cases[] = {
	        {"550 5.1.1 <bob@example.com>: Recipient address rejected (mx.example.com[192.0.2.1])", true, "5.1.1"},
	        {"550-5.1.1 The email account that you tried to reach does not exist", true, "5.1.1"},
	        {"550 5.1.2 bad destination system (mx)", true, "5.1.2"},
	        {"553 5.1.3 bad address syntax (mx)", true, "5.1.3"},
	        {"550 5.1.6 mailbox moved (mx)", true, "5.1.6"},
	        {"556 5.1.10 null MX (mx)", true, "5.1.10"},
	        {"5.1.2 domain nx.example does not exist", true, "5.1.2"},
	        {"5.1.10 domain example.net accepts no mail (null MX)", true, "5.1.10"},
	        {"5.1.1", true, "5.1.1"},
	        /* not about the address, or not for good */
	        {"550 5.7.1 Message rejected as spam (mx)", false, "5.7.1"},
	        {"554 5.7.1 <bob@example.com>: Relay access denied (mx)", false, "5.7.1"},
	        {"5.3.4 message too big for mx (30000000 octets, it takes 10485760)", false, "5.3.4"},
	        {"552 5.2.2 mailbox full (mx)", false, "5.2.2"},
	        {"550 5.2.1 mailbox disabled (mx)", false, "5.2.1"},
	        {"5.6.3 the message has 8-bit content and mx does not take 8BITMIME", false, "5.6.3"},
	        {"550 5.1.0 address rejected (mx)", false, "5.1.0"},
	        {"550 5.1.7 bad sender (mx)", false, "5.1.7"},
	        {"550 5.1.8 bad sender system (mx)", false, "5.1.8"},
	        {"550 5.1.4 ambiguous (mx)", false, "5.1.4"},
	        {"550 5.1.11 something (mx)", false, "5.1.11"},
	        {"451 4.1.1 try again (mx)", false, ""},
	        {"550 4.1.1 inconsistent (mx)", false, "4.1.1"},
	        {"4.4.7 expired", false, "4.4.7"},
	        {"550 No such user here (mx)", false, ""},
	        {"550 5.1.1000 too many digits", false, ""},
	        {"550 5.1 short", false, ""},
	        {"550 5.1.1x glued", false, ""},
	        {"", false, ""},
	        {"5", false, ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char status[SUPPRESS_STATUS_MAX] = "junk";
		bool hard = suppress_hard_bounce(cases[i].reason, status, sizeof status);
		if (hard != cases[i].hard)
			UNIT_FAIL("\"%s\": got %s, want %s", cases[i].reason, hard ? "hard" : "not hard",
			          cases[i].hard ? "hard" : "not hard");
		else
			unit_passed++;
		CHECK_STR(status, cases[i].status);
	}
	CHECK(suppress_hard_bounce("550 5.1.1 x", NULL, 0));
}

/* ---- The command line ---- */

struct seen {
	int count;
	char address[4][64], reason[4][64], added_by[4][64];
	bool manual[4];
};

static void seen_entry(void *ctx, const struct store_suppression *e)
{
	struct seen *s = ctx;
	if (s->count < 4) {
		str_copy(s->address[s->count], sizeof s->address[0], e->address);
		str_copy(s->reason[s->count], sizeof s->reason[0], e->reason);
		str_copy(s->added_by[s->count], sizeof s->added_by[0], e->added_by ? e->added_by : "");
		s->manual[s->count] = e->manual;
		CHECK(e->added_ms > 0);
	}
	s->count++;
}

static void test_admin(struct store_admin *admin)
{
	char err[256] = "";
	struct seen s = {0};
	size_t count = 99;
	CHECK(store_suppression_each(admin, NULL, 0, seen_entry, &s, err, sizeof err));
	CHECK_INT(s.count, 0);

	CHECK(store_suppression_add(admin, "bob@example.test", "asked us to stop", "root", err, sizeof err));
	CHECK(store_suppression_add(admin, "ann@example.org", "added by hand", "alice (sudo from bob)", err,
	                            sizeof err));
	/* The same address in another case is the same entry, replaced. */
	CHECK(store_suppression_add(admin, "BOB@example.test", "really", "root", err, sizeof err));
	memset(&s, 0, sizeof s);
	CHECK(store_suppression_each(admin, NULL, 0, seen_entry, &s, err, sizeof err));
	CHECK_INT(s.count, 2);
	CHECK_STR(s.address[0], "ann@example.org");
	CHECK_STR(s.added_by[0], "alice (sudo from bob)");
	CHECK(s.manual[0]);
	CHECK_STR(s.address[1], "BOB@example.test");
	CHECK_STR(s.reason[1], "really");

	memset(&s, 0, sizeof s);
	CHECK(store_suppression_each(admin, "example.org", 0, seen_entry, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
	CHECK_STR(s.address[0], "ann@example.org");

	/* A bounce entry past its time is not shown; a manual one always is. */
	unit_exec_sql("INSERT INTO suppressions(address, reason, source, source_qid, added_ms)"
	              " VALUES('old@example.test', '550 5.1.1 gone', 'bounce', '0AAAAAAAAAA9', 1000)");
	memset(&s, 0, sizeof s);
	CHECK(store_suppression_each(admin, NULL, 3600 * 1000, seen_entry, &s, err, sizeof err));
	CHECK_INT(s.count, 2);
	memset(&s, 0, sizeof s);
	CHECK(store_suppression_each(admin, NULL, 0, seen_entry, &s, err, sizeof err));
	CHECK_INT(s.count, 3);
	CHECK_STR(s.address[2], "old@example.test");
	CHECK(!s.manual[2]);

	CHECK(store_suppression_del(admin, "bob@EXAMPLE.test", "root", err, sizeof err));
	CHECK(!store_suppression_del(admin, "bob@example.test", "root", err, sizeof err));
	CHECK_STR(err, "bob@example.test is not on the suppression list");
	CHECK(store_suppression_clear(admin, "root", &count, err, sizeof err));
	CHECK_INT(count, 2);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions"), 0);
	/* Every change is recorded with who made it; the failed delete is not. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM queue_log WHERE action='suppression_add'"), 3);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM queue_log WHERE action='suppression_delete'"
	                          " AND target='bob@EXAMPLE.test' AND who='root' AND rcpts=1"),
	          1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM queue_log WHERE action='suppression_clear' AND rcpts=2"), 1);
}

/* ---- The store thread ---- */

/* How the fake delivery answers each address. */
static const struct {
	const char *address;
	enum delivery_status status;
	const char *reply;
} answers[] = {
        {"gone@example.test", DELIVERY_PERMFAIL, "550 5.1.1 <gone@example.test>: no such user (mx.example.test)"},
        {"spam@example.test", DELIVERY_PERMFAIL, "550 5.7.1 rejected as spam (mx.example.test)"},
        {"local@localhost", DELIVERY_PERMFAIL, "550 5.1.1 <local@localhost>: unknown (lmtp)"},
        {"nobody@nx.test", DELIVERY_PERMFAIL, "5.1.2 domain nx.test does not exist"},
        {"full@example.test", DELIVERY_PERMFAIL, "552 5.2.2 mailbox full (mx.example.test)"},
        {"Listed@Example.test", DELIVERY_PERMFAIL, "550 5.1.1 unknown (mx.example.test)"},
        {"ok@example.test", DELIVERY_OK, "250 2.0.0 ok (mx.example.test)"},
        {"late@example.test", DELIVERY_TEMPFAIL, "451 4.1.1 try later (mx.example.test)"},
        {"off@example.test", DELIVERY_PERMFAIL, "550 5.1.1 unknown (mx.example.test)"},
};

/* The running store. The store thread may dispatch (a backlog left by an
 * earlier run) before store_start has returned, so the dispatcher waits for
 * this to be set, and stop_store clears it before the next start. */
static struct store *the_store;

/* store_now - the_store once start_store has set it (10 s at most). */
static struct store *store_now(void)
{
	struct store *s = NULL;
	for (int i = 0; i < 1000 && !(s = __atomic_load_n(&the_store, __ATOMIC_ACQUIRE)); i++)
		usleep(10000);
	if (!s)
		fatal("the store did not start");
	return s;
}

/* fake_dispatch - on the store thread: answer every recipient from the table, at once. */
static void fake_dispatch(struct delivery_job *job, void *arg)
{
	for (size_t i = 0; i < job->rcpt_count; i++) {
		struct delivery_rcpt *r = &job->rcpts[i];
		r->status = DELIVERY_TEMPFAIL;
		str_copy(r->error, sizeof r->error, "451 4.3.0 not in the table");
		for (size_t k = 0; k < sizeof answers / sizeof answers[0]; k++) {
			if (strcmp(answers[k].address, r->address) == 0) {
				r->status = answers[k].status;
				str_copy(r->error, sizeof r->error, answers[k].reply);
			}
		}
	}
	store_delivery_done(store_now(), job);
}

static void commit_done(struct store_message *msg, void *arg)
{
	store_message_free(msg);
}

static bool start_store(struct event_base *base, const struct store_policy *policy)
{
	struct store_settings settings = unit_store_settings(policy);
	settings.policy.retry_initial_ms = 3600 * 1000;
	settings.policy.retry_max_ms = 4 * 3600 * 1000;
	settings.policy.max_queue_lifetime_ms = 5 * DAY_MS;
	char err[256] = "";
	struct store *s = store_start(&settings, base, commit_done, NULL, fake_dispatch, NULL, err, sizeof err);
	if (!s)
		UNIT_FAIL("store_start: %s", err);
	__atomic_store_n(&the_store, s, __ATOMIC_RELEASE);
	return s != NULL;
}

/* stop_store - stop it (its thread dispatches nothing after that), then forget it. */
static void stop_store(void)
{
	store_stop(the_store);
	__atomic_store_n(&the_store, NULL, __ATOMIC_RELEASE);
}

/* wait_count - poll sql until it counts want (10 s at most); the count last seen. */
static int64_t wait_count(const char *sql, int64_t want)
{
	int64_t n = -1;
	for (int i = 0; i < 1000 && (n = unit_count_rows(sql)) != want; i++)
		usleep(10000);
	return n;
}

static int suppressed(const char *address, uint64_t ttl_ms, int64_t now_ms)
{
	char err[256] = "";
	struct store_reader *r = store_reader_open(data_dir, err, sizeof err);
	if (!r) {
		UNIT_FAIL("store_reader_open: %s", err);
		return -1;
	}
	int found = store_dir_suppressed(r, address, ttl_ms, now_ms);
	store_reader_close(r);
	return found;
}

/* The hard bounces of remote recipients go on the list; nothing else does. */
static void test_bounces(struct event_base *base)
{
	static const struct store_policy policy = {
	        .suppression = true, .suppression_ttl_ms = 30 * DAY_MS, .bounce_retention_ms = 7 * DAY_MS};
	char sql[2048];
	int64_t now = time_wall_ms();
	/* Sender <>: no bounce notices to get in the way. Message 2 is six days old: it expires. */
	str_format(sql, sizeof sql,
	           "INSERT INTO messages(id, qid, sender, arrival_ms, size, body) VALUES"
	           " (1, '0AAAAAAAAAB1', '', %lld, 1, x'41'), (2, '0AAAAAAAAAB2', '', %lld, 1, x'41');"
	           "INSERT INTO recipients(msg_id, address, mailbox) VALUES"
	           " (1, 'gone@example.test', ''), (1, 'spam@example.test', ''),"
	           " (1, 'local@localhost', 'local@localhost'), (1, 'nobody@nx.test', ''),"
	           " (1, 'full@example.test', ''), (1, 'Listed@Example.test', ''), (1, 'ok@example.test', ''),"
	           " (2, 'late@example.test', '');"
	           "UPDATE recipients SET route='mx' WHERE mailbox='';"
	           "INSERT INTO suppressions(address, reason, source, added_by, added_ms)"
	           " VALUES('listed@example.test', 'by hand', 'manual', 'root', 1000);",
	           (long long)now, (long long)(now - 6 * DAY_MS));
	unit_exec_sql(sql);
	if (!start_store(base, &policy))
		return;
	CHECK_INT(wait_count("SELECT COUNT(*) FROM recipients WHERE state='bounced'", 7), 7);
	stop_store();

	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE address='ok@example.test'"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE state='bounced' AND bounced_ms IS NOT NULL"),
	          7);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions"), 3);
	CHECK_INT(unit_count_rows(
	                  "SELECT COUNT(*) FROM suppressions WHERE address='gone@example.test' AND source='bounce'"
	                  " AND source_qid='0AAAAAAAAAB1' AND reason LIKE '550 5.1.1 %'"),
	          1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions WHERE address='nobody@nx.test'"), 1);
	/* An operator's entry stays theirs. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions WHERE address='listed@example.test'"
	                          " AND source='manual' AND reason='by hand'"),
	          1);

	now = time_wall_ms();
	CHECK_INT(suppressed("gone@example.test", 30 * DAY_MS, now), 1);
	CHECK_INT(suppressed("GONE@Example.TEST", 30 * DAY_MS, now), 1);
	CHECK_INT(suppressed("nobody@nx.test", 0, now), 1);
	CHECK_INT(suppressed("spam@example.test", 30 * DAY_MS, now), 0);
	CHECK_INT(suppressed("full@example.test", 30 * DAY_MS, now), 0);
	CHECK_INT(suppressed("local@localhost", 30 * DAY_MS, now), 0);
	CHECK_INT(suppressed("late@example.test", 30 * DAY_MS, now), 0);
	CHECK_INT(suppressed("ok@example.test", 30 * DAY_MS, now), 0);
	/* A bounce entry lasts the ttl; a manual one until deleted. */
	CHECK_INT(suppressed("gone@example.test", 1000, now + 2000), 0);
	CHECK_INT(suppressed("listed@example.test", 1000, now + 2000), 1);
}

/* Old bounced recipients go, and their message when none is left; so do expired bounce entries. */
static void test_prune(struct event_base *base)
{
	char sql[1024];
	int64_t now = time_wall_ms();
	/* Message 2 keeps a recipient that waits for a retry: the message stays. */
	str_format(sql, sizeof sql,
	           "UPDATE recipients SET bounced_ms=bounced_ms-%lld WHERE state='bounced';"
	           "UPDATE recipients SET bounced_ms=%lld WHERE address='full@example.test';"
	           "INSERT INTO recipients(msg_id, address, mailbox, state, next_attempt_ms, route)"
	           " VALUES (2, 'wait@example.test', '', 'deferred', %lld, 'mx');"
	           "UPDATE suppressions SET added_ms=added_ms-%lld WHERE address='nobody@nx.test';"
	           "UPDATE suppressions SET added_ms=added_ms-%lld WHERE address='listed@example.test';",
	           (long long)(8 * DAY_MS), (long long)now, (long long)(now + 3600 * 1000), (long long)(31 * DAY_MS),
	           (long long)(31 * DAY_MS));
	unit_exec_sql(sql);
	CHECK(unit_count_rows("SELECT COUNT(*) FROM attempts WHERE msg_id=2") > 0);

	/* bounce_retention and suppression_ttl 0: nothing goes. */
	struct store_policy keep = {.suppression = true};
	if (!start_store(base, &keep))
		return;
	usleep(300000);
	stop_store();
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE state='bounced'"), 7);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions"), 3);

	struct store_policy policy = {
	        .suppression = true, .suppression_ttl_ms = 30 * DAY_MS, .bounce_retention_ms = 7 * DAY_MS};
	if (!start_store(base, &policy))
		return;
	CHECK_INT(wait_count("SELECT COUNT(*) FROM recipients WHERE state='bounced'", 1), 1);
	CHECK_INT(wait_count("SELECT COUNT(*) FROM suppressions", 2), 2);
	stop_store();
	/* full@ bounced just now: it stays, and so does its message. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE address='full@example.test'"), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages WHERE id=1"), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages WHERE id=2"), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE msg_id=2"), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM attempts WHERE msg_id=2"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions WHERE address='nobody@nx.test'"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions WHERE address='listed@example.test'"), 1);

	/* The last recipient gone, the message goes too. */
	str_format(sql, sizeof sql, "UPDATE recipients SET bounced_ms=%lld WHERE address='full@example.test';",
	           (long long)(now - 8 * DAY_MS));
	unit_exec_sql(sql);
	if (!start_store(base, &policy))
		return;
	CHECK_INT(wait_count("SELECT COUNT(*) FROM messages WHERE id=1", 0), 0);
	stop_store();
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM attempts WHERE msg_id=1"), 0);
}

/* suppression = no (at a reload): hard bounces are not recorded. */
static void test_policy_off(struct event_base *base)
{
	struct store_policy on = {.suppression = true}, off = {.suppression = false};
	if (!start_store(base, &on))
		return;
	store_set_policy(the_store, &off);
	usleep(100000);
	char sql[512];
	str_format(sql, sizeof sql,
	           "INSERT INTO messages(id, qid, sender, arrival_ms, size, body) VALUES"
	           " (3, '0AAAAAAAAAB3', '', %lld, 1, x'41');"
	           "INSERT INTO recipients(msg_id, address, mailbox, route) VALUES (3, 'off@example.test', '', 'mx');",
	           (long long)time_wall_ms());
	unit_exec_sql(sql);
	CHECK_INT(wait_count("SELECT COUNT(*) FROM recipients WHERE msg_id=3 AND state='bounced'", 1), 1);
	stop_store();
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions WHERE address='off@example.test'"), 0);
}

/*
 * A version 4 file gets the suppression list, its bounced recipients the
 * time they bounced, and (version 6) its messages the spooled flag, off:
 * their bodies are in the database.
 */
static void test_migration(void)
{
	unit_exec_sql(
	        "DROP TABLE suppressions; DROP INDEX recipients_bounced; ALTER TABLE recipients DROP COLUMN bounced_ms;"
	        "ALTER TABLE messages DROP COLUMN spooled;"
	        "ALTER TABLE recipients DROP COLUMN route; ALTER TABLE recipients DROP COLUMN route_key;"
	        "DROP TRIGGER notices_orphaned; DROP TABLE notice_rcpts; DROP TABLE notices;"
	        "DELETE FROM attempts; DELETE FROM recipients; DELETE FROM messages;"
	        "INSERT INTO messages(id, qid, sender, arrival_ms, size, body)"
	        " VALUES (9, '0AAAAAAAAAB9', '', 1000, 1, x'41');"
	        "INSERT INTO recipients(id, msg_id, address, mailbox, state) VALUES (90, 9, 'a@example.test', '',"
	        " 'bounced'), (91, 9, 'b@example.test', '', 'bounced'), (92, 9, 'c@example.test', '', 'deferred');"
	        "INSERT INTO attempts(msg_id, rcpt_id, at_ms, outcome, reply)"
	        " VALUES (9, 90, 4000, 'deferred', '451 4.3.0 x'), (9, 90, 5000, 'bounced', '550 5.1.1 x');"
	        "PRAGMA user_version=4;");
	int64_t before = time_wall_ms() - 1000;
	CHECK_INT(unit_count_rows("PRAGMA user_version"), STORE_SCHEMA_VERSION);
	/* From the last attempt, or from the migration when there is none. */
	CHECK_INT(unit_count_rows("SELECT bounced_ms FROM recipients WHERE id=90"), 5000);
	CHECK(unit_count_rows("SELECT bounced_ms FROM recipients WHERE id=91") >= before);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE id=92 AND bounced_ms IS NULL"), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM suppressions"), 0);
	/* Version 7: rows of another domain (mailbox '') go to its MX hosts until the server routes
	 * them again. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE route='mx' AND route_key IS NULL"), 3);
	/* Version 8: the table of owed notices, empty. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM notices"), 0);
	CHECK_INT(unit_count_rows("SELECT spooled FROM messages WHERE id=9"), 0);
}

int main(void)
{
	test_hard_bounce();

	if (!unit_store_dir("store-suppress"))
		return unit_finish("store_suppress");
	char err[256] = "";
	struct store_admin *admin = store_admin_open(data_dir, err, sizeof err);
	CHECK(admin != NULL);
	if (!admin) {
		UNIT_FAIL("store_admin_open: %s", err);
		unit_store_remove();
		return unit_finish("store_suppress");
	}
	test_admin(admin);
	store_admin_close(admin);

	struct event_base *base = event_base_new();
	test_bounces(base);
	test_prune(base);
	test_policy_off(base);
	event_base_free(base);
	test_migration();
	unit_store_remove();
	return unit_finish("store_suppress");
}
