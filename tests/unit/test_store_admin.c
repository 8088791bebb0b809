/*
 * test_store_admin.c - the CLI's database calls (src/store/store_admin.c)
 * against a fresh data directory under $TMPDIR: users, aliases, the rule
 * that an address is a user or an alias but not both, and the queue view of
 * rows written straight into the schema, as the store thread would.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_admin.h"
#include "store/store_db.h"
#include "unit.h"
#include "unit_store.h"
#include "util/util_str.h"

#define MAX_SEEN 4

struct seen_rcpt {
	char address[64], mailbox[64], state[16], last_error[64];
	bool has_error;
	int64_t attempts, next_attempt_ms;
	size_t history_count;
	char first_reply[64];
};

struct seen_msg {
	char qid[16], sender[64];
	int64_t arrival_ms, size;
	size_t rcpt_count;
	struct seen_rcpt rcpts[MAX_SEEN];
};

struct seen {
	int count;
	struct seen_msg msgs[MAX_SEEN];
	char names[MAX_SEEN][128];
	char values[MAX_SEEN][128];
	bool flags[MAX_SEEN];
};

static void seen_user(void *ctx, const struct store_user_info *user)
{
	struct seen *s = ctx;
	if (s->count < MAX_SEEN) {
		str_copy(s->names[s->count], sizeof s->names[0], user->address);
		s->flags[s->count] = user->has_password;
		CHECK(user->created_ms > 0);
	}
	s->count++;
}

static void seen_alias(void *ctx, const char *address, const char *targets)
{
	struct seen *s = ctx;
	if (s->count < MAX_SEEN) {
		str_copy(s->names[s->count], sizeof s->names[0], address);
		str_copy(s->values[s->count], sizeof s->values[0], targets);
	}
	s->count++;
}

static void seen_queue(void *ctx, const struct store_queue_entry *e)
{
	struct seen *s = ctx;
	if (s->count < MAX_SEEN) {
		struct seen_msg *m = &s->msgs[s->count];
		str_copy(m->qid, sizeof m->qid, e->qid);
		str_copy(m->sender, sizeof m->sender, e->sender);
		m->arrival_ms = e->arrival_ms;
		m->size = e->size;
		m->rcpt_count = e->rcpt_count;
		for (size_t i = 0; i < e->rcpt_count && i < MAX_SEEN; i++) {
			const struct store_queue_rcpt *r = &e->rcpts[i];
			struct seen_rcpt *c = &m->rcpts[i];
			str_copy(c->address, sizeof c->address, r->address);
			str_copy(c->mailbox, sizeof c->mailbox, r->mailbox);
			str_copy(c->state, sizeof c->state, r->state);
			c->has_error = r->last_error != NULL;
			str_copy(c->last_error, sizeof c->last_error, r->last_error ? r->last_error : "");
			c->attempts = r->attempts;
			c->next_attempt_ms = r->next_attempt_ms;
			c->history_count = r->history_count;
			str_copy(c->first_reply, sizeof c->first_reply, r->history_count ? r->history[0].reply : "");
		}
	}
	s->count++;
}

static void test_users(struct store_admin *admin)
{
	char err[256] = "";
	struct seen s = {0};
	CHECK(store_user_each(admin, seen_user, &s, err, sizeof err));
	CHECK_INT(s.count, 0);

	CHECK(store_user_add(admin, "bob@localhost", NULL, err, sizeof err));
	CHECK(store_user_add(admin, "alice@localhost", "$y$j9T$salt$hash", err, sizeof err));
	CHECK(!store_user_add(admin, "bob@localhost", NULL, err, sizeof err));
	CHECK_STR(err, "bob@localhost is a user");
	CHECK(store_user_exists(admin, "alice@localhost"));
	CHECK(!store_user_exists(admin, "carol@localhost"));

	memset(&s, 0, sizeof s);
	CHECK(store_user_each(admin, seen_user, &s, err, sizeof err));
	CHECK_INT(s.count, 2);
	CHECK_STR(s.names[0], "alice@localhost");
	CHECK(s.flags[0]);
	CHECK_STR(s.names[1], "bob@localhost");
	CHECK(!s.flags[1]);

	CHECK(store_user_set_password(admin, "bob@localhost", "$6$salt$hash", err, sizeof err));
	CHECK(!store_user_set_password(admin, "carol@localhost", "$6$salt$hash", err, sizeof err));
	CHECK_STR(err, "no user carol@localhost");
	memset(&s, 0, sizeof s);
	CHECK(store_user_each(admin, seen_user, &s, err, sizeof err));
	CHECK(s.flags[1]);

	CHECK(store_user_set_secrets(admin, "bob@localhost", "$6$salt$hash", "SCRAM-SHA-256$4096:c2FsdA==$a:b", NULL,
	                             err, sizeof err));
	CHECK(store_user_set_senders(admin, "bob@localhost", "@example.com,news@localhost", err, sizeof err));
	CHECK(!store_user_set_senders(admin, "carol@localhost", "", err, sizeof err));
}

static void test_user_del(struct store_admin *admin)
{
	char err[256] = "";
	CHECK(store_user_add(admin, "gone@localhost", NULL, err, sizeof err));
	CHECK(store_user_del(admin, "gone@localhost", err, sizeof err));
	CHECK(!store_user_exists(admin, "gone@localhost"));
	CHECK(!store_user_del(admin, "gone@localhost", err, sizeof err));
	CHECK_STR(err, "no user gone@localhost");
}

static void test_aliases(struct store_admin *admin)
{
	char err[256] = "";
	struct seen s = {0};
	CHECK(store_alias_each(admin, seen_alias, &s, err, sizeof err));
	CHECK_INT(s.count, 0);

	CHECK(store_alias_set(admin, "team@localhost", "alice@localhost,bob@localhost", err, sizeof err));
	CHECK(store_alias_set(admin, "abuse@localhost", "alice@localhost", err, sizeof err));
	/* Setting it again replaces the targets: still one row. */
	CHECK(store_alias_set(admin, "team@localhost", "bob@localhost", err, sizeof err));
	memset(&s, 0, sizeof s);
	CHECK(store_alias_each(admin, seen_alias, &s, err, sizeof err));
	CHECK_INT(s.count, 2);
	CHECK_STR(s.names[0], "abuse@localhost");
	CHECK_STR(s.values[0], "alice@localhost");
	CHECK_STR(s.names[1], "team@localhost");
	CHECK_STR(s.values[1], "bob@localhost");

	CHECK(store_alias_del(admin, "abuse@localhost", err, sizeof err));
	CHECK(!store_alias_del(admin, "abuse@localhost", err, sizeof err));
	CHECK_STR(err, "no alias abuse@localhost");
	memset(&s, 0, sizeof s);
	CHECK(store_alias_each(admin, seen_alias, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
}

/* An address is a user or an alias, never both, whichever came first. */
static void test_collision(struct store_admin *admin)
{
	char err[256] = "";
	CHECK(!store_user_add(admin, "team@localhost", NULL, err, sizeof err));
	CHECK_STR(err, "team@localhost is an alias");
	CHECK(!store_user_exists(admin, "team@localhost"));
	CHECK(!store_alias_set(admin, "alice@localhost", "bob@localhost", err, sizeof err));
	CHECK_STR(err, "alice@localhost is a user");
	struct seen s = {0};
	CHECK(store_alias_each(admin, seen_alias, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
}

/* fill_queue - two messages, the later id arriving first, as the store thread writes them. */
static void fill_queue(void)
{
	char err[256] = "";
	sqlite3 *db = store_db_open(data_dir, true, err, sizeof err);
	CHECK(db != NULL);
	if (!db) {
		UNIT_FAIL("store_db_open: %s", err);
		return;
	}
	CHECK(store_db_exec(
	        db, "INSERT INTO messages(id, qid, sender, arrival_ms, size, body) VALUES"
	            " (1, '0AAAAAAAAAA1', 'alice@example.org', 2000000, 1234, x'41'),"
	            " (2, '0AAAAAAAAAA2', '', 1000000, 99, x'42');"
	            "INSERT INTO recipients(msg_id, address, mailbox, state, attempts, next_attempt_ms,"
	            " last_error) VALUES"
	            " (1, 'bob@localhost', 'bob@localhost', 'queued', 0, 0, NULL),"
	            " (1, 'team@localhost', 'carol@localhost', 'deferred', 2, 3000000,"
	            "  '452 4.2.2 mailbox full'),"
	            " (2, 'postmaster@localhost', 'alice@localhost', 'bounced', 1, 0, 'disk'||char(10)||'x');"));
	sqlite3_close(db);
}

static void test_queue(struct store_admin *admin)
{
	char err[256] = "";
	struct seen s = {0};
	CHECK(store_queue_each(admin, NULL, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 0);

	fill_queue();
	memset(&s, 0, sizeof s);
	CHECK(store_queue_each(admin, NULL, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 2);
	/* Oldest arrival first, whatever the row ids. */
	CHECK_STR(s.msgs[0].qid, "0AAAAAAAAAA2");
	CHECK_STR(s.msgs[0].sender, "");
	CHECK_INT(s.msgs[0].rcpt_count, 1);
	CHECK_STR(s.msgs[0].rcpts[0].state, "bounced");
	CHECK_STR(s.msgs[0].rcpts[0].last_error, "disk\nx");
	CHECK_STR(s.msgs[1].qid, "0AAAAAAAAAA1");
	CHECK_STR(s.msgs[1].sender, "alice@example.org");
	CHECK_INT(s.msgs[1].arrival_ms, 2000000);
	CHECK_INT(s.msgs[1].size, 1234);
	CHECK_INT(s.msgs[1].rcpt_count, 2);
	CHECK_STR(s.msgs[1].rcpts[0].address, "bob@localhost");
	CHECK(!s.msgs[1].rcpts[0].has_error);
	CHECK_INT(s.msgs[1].rcpts[0].next_attempt_ms, 0);
	CHECK_STR(s.msgs[1].rcpts[1].address, "team@localhost");
	CHECK_STR(s.msgs[1].rcpts[1].mailbox, "carol@localhost");
	CHECK_STR(s.msgs[1].rcpts[1].state, "deferred");
	CHECK_INT(s.msgs[1].rcpts[1].attempts, 2);
	CHECK_INT(s.msgs[1].rcpts[1].next_attempt_ms, 3000000);
	CHECK_STR(s.msgs[1].rcpts[1].last_error, "452 4.2.2 mailbox full");
}

static void test_queue_show(struct store_admin *admin)
{
	char err[256] = "";
	struct seen s = {0};
	CHECK(store_queue_show(admin, "0AAAAAAAAAA1", seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
	CHECK_STR(s.msgs[0].qid, "0AAAAAAAAAA1");
	CHECK_INT(s.msgs[0].rcpt_count, 2);

	memset(&s, 0, sizeof s);
	CHECK(!store_queue_show(admin, "0ZZZZZZZZZZZ", seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 0);
	CHECK_STR(err, "no message 0ZZZZZZZZZZZ in the queue");
}

static void test_queue_filters(struct store_admin *admin)
{
	char err[256] = "";
	struct seen s = {0};
	struct store_queue_filter deferred = {.state = "deferred"};
	CHECK(store_queue_each(admin, &deferred, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
	CHECK_INT(s.msgs[0].rcpt_count, 1); /* only the recipients that pass */
	CHECK_STR(s.msgs[0].rcpts[0].address, "team@localhost");

	memset(&s, 0, sizeof s);
	struct store_queue_filter domain = {.domain = "localhost", .state = "queued"};
	CHECK(store_queue_each(admin, &domain, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
	CHECK_STR(s.msgs[0].rcpts[0].address, "bob@localhost");

	memset(&s, 0, sizeof s);
	struct store_queue_filter other = {.domain = "example.org"};
	CHECK(store_queue_each(admin, &other, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 0);

	/* Both arrived in 1970: older than a day, not newer than one. */
	memset(&s, 0, sizeof s);
	struct store_queue_filter old = {.older_than_ms = 86400000};
	CHECK(store_queue_each(admin, &old, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 2);
	memset(&s, 0, sizeof s);
	struct store_queue_filter young = {.newer_than_ms = 86400000};
	CHECK(store_queue_each(admin, &young, seen_queue, &s, err, sizeof err));
	CHECK_INT(s.count, 0);
}

/* rcpt_state - state and next attempt of the recipient with this address (state "" if gone). */
static void rcpt_state(const char *address, char *state, size_t size, int64_t *next, int64_t *attempts)
{
	char err[256] = "";
	sqlite3 *db = store_db_open(data_dir, true, err, sizeof err);
	sqlite3_stmt *stmt = store_db_prepare(db, "SELECT state, next_attempt_ms, attempts FROM recipients"
	                                          " WHERE address=?");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	str_copy(state, size, "");
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		str_copy(state, size, (const char *)sqlite3_column_text(stmt, 0));
		*next = sqlite3_column_int64(stmt, 1);
		*attempts = sqlite3_column_int64(stmt, 2);
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_queue_actions(struct store_admin *admin)
{
	char err[256] = "", state[16];
	int64_t next = -1, attempts = -1;
	size_t count = 99;

	/* The failed attempts of a message, as the store thread writes them. */
	char dberr[256];
	sqlite3 *db = store_db_open(data_dir, true, dberr, sizeof dberr);
	CHECK(store_db_exec(db, "INSERT INTO attempts(msg_id, rcpt_id, at_ms, outcome, reply) VALUES"
	                        " (1, 2, 1000, 'deferred', '451 4.3.0 first'),"
	                        " (1, 2, 2000, 'deferred', '452 4.2.2 mailbox full')"));
	sqlite3_close(db);
	struct seen s = {0};
	CHECK(store_queue_show(admin, "0AAAAAAAAAA1", seen_queue, &s, err, sizeof err));
	CHECK_INT(s.msgs[0].rcpts[1].history_count, 2);
	CHECK_STR(s.msgs[0].rcpts[1].first_reply, "451 4.3.0 first");
	CHECK_INT(s.msgs[0].rcpts[0].history_count, 0);

	CHECK(store_queue_act(admin, QUEUE_HOLD, "0AAAAAAAAAA1", "root", &count, err, sizeof err));
	CHECK_INT(count, 2); /* the queued one and the deferred one */
	rcpt_state("team@localhost", state, sizeof state, &next, &attempts);
	CHECK_STR(state, "held");
	/* Held mail is not flushed. */
	CHECK(store_queue_act(admin, QUEUE_FLUSH, NULL, "root", &count, err, sizeof err));
	CHECK_INT(count, 0);
	CHECK(store_queue_act(admin, QUEUE_RELEASE, "0AAAAAAAAAA1", "root", &count, err, sizeof err));
	CHECK_INT(count, 2);
	rcpt_state("team@localhost", state, sizeof state, &next, &attempts);
	CHECK_STR(state, "deferred");
	CHECK_INT(next, 0);

	/* Flush by domain: only that domain's deferred recipients. */
	db = store_db_open(data_dir, true, dberr, sizeof dberr);
	CHECK(store_db_exec(db, "UPDATE recipients SET next_attempt_ms=5000 WHERE state='deferred'"));
	sqlite3_close(db);
	CHECK(store_queue_act(admin, QUEUE_FLUSH, "example.org", "root", &count, err, sizeof err));
	CHECK_INT(count, 0);
	CHECK(store_queue_act(admin, QUEUE_FLUSH, "localhost", "root", &count, err, sizeof err));
	CHECK_INT(count, 2);

	/* Retry gives a bounced recipient another go, with the backoff from the start. */
	CHECK(store_queue_act(admin, QUEUE_RETRY, "0AAAAAAAAAA2", "root", &count, err, sizeof err));
	CHECK_INT(count, 1);
	rcpt_state("postmaster@localhost", state, sizeof state, &next, &attempts);
	CHECK_STR(state, "deferred");
	CHECK_INT(attempts, 0);

	CHECK(!store_queue_act(admin, QUEUE_HOLD, "0ZZZZZZZZZZZ", "root", &count, err, sizeof err));
	CHECK_STR(err, "no message 0ZZZZZZZZZZZ in the queue");

	/* Delete takes the message, its recipients and its attempts. */
	CHECK(store_queue_act(admin, QUEUE_DELETE, "0AAAAAAAAAA1", "alice (sudo from bob)", &count, err, sizeof err));
	CHECK_INT(count, 2);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages WHERE id=1"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE msg_id=1"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM attempts"), 0);
	/* Every action is recorded, failed ones not. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM queue_log"), 7);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM queue_log WHERE who='alice (sudo from bob)' AND action='delete'"
	                          " AND target='0AAAAAAAAAA1' AND rcpts=2"),
	          1);
}

/* Another connection sees what this one wrote: nothing waits in a transaction. */
static void test_reopen(void)
{
	char err[256] = "";
	struct store_admin *admin = store_admin_open(data_dir, err, sizeof err);
	CHECK(admin != NULL);
	if (!admin)
		return;
	CHECK(store_user_exists(admin, "alice@localhost"));
	struct seen s = {0};
	CHECK(store_alias_each(admin, seen_alias, &s, err, sizeof err));
	CHECK_INT(s.count, 1);
	store_admin_close(admin);
}

static void test_open_fails(void)
{
	char err[256] = "";
	char bad[400];
	str_format(bad, sizeof bad, "%s/missing/var", root);
	CHECK(store_admin_open(bad, err, sizeof err) == NULL);
	CHECK(err[0] != '\0');
	store_admin_close(NULL);
}

int main(void)
{
	if (!unit_store_dir("store-admin"))
		return unit_finish("store_admin");
	char err[256] = "";
	struct store_admin *admin = store_admin_open(data_dir, err, sizeof err);
	CHECK(admin != NULL);
	if (admin) {
		test_users(admin);
		test_user_del(admin);
		test_aliases(admin);
		test_collision(admin);
		test_queue(admin);
		test_queue_show(admin);
		test_queue_filters(admin);
		test_queue_actions(admin);
		store_admin_close(admin);
		test_reopen();
	} else {
		UNIT_FAIL("store_admin_open: %s", err);
	}
	test_open_fails();
	unit_store_remove();
	return unit_finish("store_admin");
}
