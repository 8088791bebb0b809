/*
 * store_admin.c - the command line's view of the database: users, aliases,
 * and a read-only look at the queue (see store_admin.h).
 *
 * Each struct store_admin owns one connection of its own, opened as a
 * writer (it creates and migrates the file like the server does), so the
 * CLI works whether or not the server runs: SQLite's locks order the
 * writes, and the busy timeout set by store_db_open makes a CLI write wait
 * for a group commit instead of failing.
 *
 * Checks that span two tables (a user may not shadow an alias and the other
 * way round) run inside BEGIN IMMEDIATE, so no other writer can slip in
 * between the check and the write. Queue listings run inside one read
 * transaction, so a message and its recipients come from the same snapshot.
 *
 * Errors never go to the log here: they are written into the caller's err
 * buffer and the function returns false.
 */
#include "store/store_admin.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_db.h"
#include "util/util_str.h"
#include "util/util_time.h"

struct store_admin {
	sqlite3 *db;
};

/* Strings of one queued recipient, owned while the callback runs. */
struct admin_rcpt_strings {
	char *address, *mailbox, *state, *last_error;
};

struct admin_rcpts {
	struct store_queue_rcpt *rcpts;
	struct admin_rcpt_strings *owned;
	size_t count, cap;
};

struct store_admin *store_admin_open(const char *data_dir, char *err, size_t errlen)
{
	sqlite3 *db = store_db_open(data_dir, true, err, errlen);
	if (!db)
		return NULL;
	struct store_admin *admin = xcalloc(1, sizeof *admin);
	admin->db = db;
	return admin;
}

void store_admin_close(struct store_admin *admin)
{
	if (!admin)
		return;
	sqlite3_close(admin->db);
	free(admin);
}

/* ---- Helpers ---- */

static bool admin_db_error(struct store_admin *admin, char *err, size_t errlen)
{
	str_format(err, errlen, "database error: %s", sqlite3_errmsg(admin->db));
	return false;
}

static bool admin_exec(struct store_admin *admin, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(admin->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return true;
	return admin_db_error(admin, err, errlen);
}

/* admin_end - COMMIT if ok, else ROLLBACK (keeping the first error). */
static bool admin_end(struct store_admin *admin, bool ok, char *err, size_t errlen)
{
	if (ok && admin_exec(admin, "COMMIT", err, errlen))
		return true;
	sqlite3_exec(admin->db, "ROLLBACK", NULL, NULL, NULL);
	return false;
}

/* admin_lookup - 1 if the one-parameter query returns a row, 0 if not, -1 on error. */
static int admin_lookup(struct store_admin *admin, const char *sql, const char *address)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, sql);
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* admin_finish - step a write statement, finalize it: rows changed, or -1. */
static int admin_finish(struct store_admin *admin, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? sqlite3_changes(admin->db) : -1;
}

/* admin_change_one - run stmt, which must change exactly one row of "what". */
static bool admin_change_one(struct store_admin *admin, sqlite3_stmt *stmt, const char *what, const char *address,
                             char *err, size_t errlen)
{
	int changed = admin_finish(admin, stmt);
	if (changed < 0)
		return admin_db_error(admin, err, errlen);
	if (changed == 0) {
		str_format(err, errlen, "no %s %s", what, address);
		return false;
	}
	return true;
}

/* admin_check_absent - address is neither a user nor (unless alias_ok) an alias. */
static bool admin_check_absent(struct store_admin *admin, const char *address, bool alias_ok, char *err, size_t errlen)
{
	int user = admin_lookup(admin, "SELECT 1 FROM users WHERE address=?", address);
	int alias = alias_ok ? 0 : admin_lookup(admin, "SELECT 1 FROM aliases WHERE address=?", address);
	if (user < 0 || alias < 0)
		return admin_db_error(admin, err, errlen);
	if (user > 0) {
		str_format(err, errlen, "%s is a user", address);
		return false;
	}
	if (alias > 0) {
		str_format(err, errlen, "%s is an alias", address);
		return false;
	}
	return true;
}

/* ---- Users ---- */

static bool admin_user_insert(struct store_admin *admin, const char *address, const char *password_hash, char *err,
                              size_t errlen)
{
	sqlite3_stmt *stmt =
	        store_db_prepare(admin->db, "INSERT INTO users(address, password, created_ms) VALUES(?,?,?)");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	if (password_hash)
		sqlite3_bind_text(stmt, 2, password_hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, time_wall_ms());
	if (admin_finish(admin, stmt) < 0)
		return admin_db_error(admin, err, errlen);
	return true;
}

bool store_user_add(struct store_admin *admin, const char *address, const char *password_hash, char *err, size_t errlen)
{
	if (!admin_exec(admin, "BEGIN IMMEDIATE", err, errlen))
		return false;
	bool ok = admin_check_absent(admin, address, false, err, errlen) &&
	          admin_user_insert(admin, address, password_hash, err, errlen);
	return admin_end(admin, ok, err, errlen);
}

bool store_user_set_secrets(struct store_admin *admin, const char *address, const char *password_hash,
                            const char *scram, const char *cram, char *err, size_t errlen)
{
	sqlite3_stmt *stmt =
	        store_db_prepare(admin->db, "UPDATE users SET password=?, scram=?, cram=? WHERE address=?");
	const char *values[] = {password_hash, scram, cram};
	for (int i = 0; i < 3; i++)
		if (values[i])
			sqlite3_bind_text(stmt, i + 1, values[i], -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, address, -1, SQLITE_STATIC);
	return admin_change_one(admin, stmt, "user", address, err, errlen);
}

bool store_user_set_password(struct store_admin *admin, const char *address, const char *password_hash, char *err,
                             size_t errlen)
{
	return store_user_set_secrets(admin, address, password_hash, NULL, NULL, err, errlen);
}

bool store_user_set_senders(struct store_admin *admin, const char *address, const char *senders, char *err,
                            size_t errlen)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "UPDATE users SET senders=? WHERE address=?");
	sqlite3_bind_text(stmt, 1, senders, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, address, -1, SQLITE_STATIC);
	return admin_change_one(admin, stmt, "user", address, err, errlen);
}

bool store_user_del(struct store_admin *admin, const char *address, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "DELETE FROM users WHERE address=?");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	return admin_change_one(admin, stmt, "user", address, err, errlen);
}

bool store_user_exists(struct store_admin *admin, const char *address)
{
	return admin_lookup(admin, "SELECT 1 FROM users WHERE address=?", address) == 1;
}

bool store_user_each(struct store_admin *admin, store_user_fn *fn, void *ctx, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "SELECT address, coalesce(password, '') <> '',"
	                                                 " coalesce(scram, '') <> '', coalesce(cram, '') <> '',"
	                                                 " senders, created_ms FROM users ORDER BY address");
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_user_info user = {
		        .address = (const char *)sqlite3_column_text(stmt, 0),
		        .has_password = sqlite3_column_int(stmt, 1) != 0,
		        .has_scram = sqlite3_column_int(stmt, 2) != 0,
		        .has_cram = sqlite3_column_int(stmt, 3) != 0,
		        .senders = (const char *)sqlite3_column_text(stmt, 4),
		        .created_ms = sqlite3_column_int64(stmt, 5),
		};
		fn(ctx, &user);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE || admin_db_error(admin, err, errlen);
}

/* ---- Aliases ---- */

static bool admin_alias_upsert(struct store_admin *admin, const char *address, const char *targets, char *err,
                               size_t errlen)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "INSERT INTO aliases(address, targets, created_ms)"
	                                                 " VALUES(?,?,?) ON CONFLICT(address)"
	                                                 " DO UPDATE SET targets=excluded.targets");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, targets, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, time_wall_ms());
	if (admin_finish(admin, stmt) < 0)
		return admin_db_error(admin, err, errlen);
	return true;
}

bool store_alias_set(struct store_admin *admin, const char *address, const char *targets, char *err, size_t errlen)
{
	if (!admin_exec(admin, "BEGIN IMMEDIATE", err, errlen))
		return false;
	bool ok = admin_check_absent(admin, address, true, err, errlen) &&
	          admin_alias_upsert(admin, address, targets, err, errlen);
	return admin_end(admin, ok, err, errlen);
}

bool store_alias_del(struct store_admin *admin, const char *address, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "DELETE FROM aliases WHERE address=?");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	return admin_change_one(admin, stmt, "alias", address, err, errlen);
}

bool store_alias_each(struct store_admin *admin, store_alias_fn *fn, void *ctx, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "SELECT address, targets FROM aliases ORDER BY address");
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(stmt, 0), (const char *)sqlite3_column_text(stmt, 1));
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE || admin_db_error(admin, err, errlen);
}

/* ---- The queue ---- */

static char *admin_column_dup(sqlite3_stmt *stmt, int col)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);
	return s ? str_dup(s) : NULL;
}

static void admin_rcpts_clear(struct admin_rcpts *list)
{
	for (size_t i = 0; i < list->count; i++) {
		struct admin_rcpt_strings *s = &list->owned[i];
		free(s->address);
		free(s->mailbox);
		free(s->state);
		free(s->last_error);
	}
	list->count = 0;
}

static void admin_rcpts_free(struct admin_rcpts *list)
{
	admin_rcpts_clear(list);
	free(list->rcpts);
	free(list->owned);
}

/* admin_rcpts_push - copy the current recipient row into the list. */
static void admin_rcpts_push(struct admin_rcpts *list, sqlite3_stmt *stmt)
{
	if (list->count == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 8;
		list->rcpts = xrealloc(list->rcpts, list->cap * sizeof *list->rcpts);
		list->owned = xrealloc(list->owned, list->cap * sizeof *list->owned);
	}
	struct admin_rcpt_strings *s = &list->owned[list->count];
	s->address = admin_column_dup(stmt, 1);
	s->mailbox = admin_column_dup(stmt, 2);
	s->state = admin_column_dup(stmt, 3);
	s->last_error = admin_column_dup(stmt, 6);
	list->rcpts[list->count] = (struct store_queue_rcpt){
	        .id = sqlite3_column_int64(stmt, 0),
	        .address = s->address ? s->address : "",
	        .mailbox = s->mailbox ? s->mailbox : "",
	        .state = s->state ? s->state : "",
	        .attempts = sqlite3_column_int64(stmt, 4),
	        .next_attempt_ms = sqlite3_column_int64(stmt, 5),
	        .last_error = s->last_error,
	};
	list->count++;
}

/* admin_rcpts_load - every recipient of message msg_id, in id order. */
static bool admin_rcpts_load(sqlite3_stmt *stmt, int64_t msg_id, struct admin_rcpts *list)
{
	admin_rcpts_clear(list);
	sqlite3_bind_int64(stmt, 1, msg_id);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		admin_rcpts_push(list, stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE;
}

/*
 * admin_queue_walk - call fn for each row of messages (bound to qid when it
 * is not NULL) with its recipients; *found counts the messages.
 */
static bool admin_queue_walk(struct store_admin *admin, const char *qid, store_queue_fn *fn, void *ctx, size_t *found)
{
	sqlite3_stmt *msgs = store_db_prepare(admin->db, qid ? "SELECT id, qid, sender, arrival_ms, size"
	                                                       " FROM messages WHERE qid=?"
	                                                     : "SELECT id, qid, sender, arrival_ms, size"
	                                                       " FROM messages ORDER BY arrival_ms, id");
	sqlite3_stmt *rcpts = store_db_prepare(admin->db, "SELECT id, address, mailbox, state, attempts,"
	                                                  " next_attempt_ms, last_error FROM recipients"
	                                                  " WHERE msg_id=? ORDER BY id");
	if (qid)
		sqlite3_bind_text(msgs, 1, qid, -1, SQLITE_STATIC);
	struct admin_rcpts list = {0};
	bool ok = true;
	int rc = SQLITE_DONE;
	while (ok && (rc = sqlite3_step(msgs)) == SQLITE_ROW) {
		ok = admin_rcpts_load(rcpts, sqlite3_column_int64(msgs, 0), &list);
		const char *id = (const char *)sqlite3_column_text(msgs, 1);
		const char *sender = (const char *)sqlite3_column_text(msgs, 2);
		struct store_queue_entry entry = {
		        .qid = id ? id : "",
		        .sender = sender ? sender : "",
		        .arrival_ms = sqlite3_column_int64(msgs, 3),
		        .size = sqlite3_column_int64(msgs, 4),
		        .rcpts = list.rcpts,
		        .rcpt_count = list.count,
		};
		if (ok) {
			fn(ctx, &entry);
			(*found)++;
		}
	}
	ok = ok && rc == SQLITE_DONE;
	admin_rcpts_free(&list);
	sqlite3_finalize(rcpts);
	sqlite3_finalize(msgs);
	return ok;
}

/* admin_queue_read - admin_queue_walk inside one read transaction. */
static bool admin_queue_read(struct store_admin *admin, const char *qid, store_queue_fn *fn, void *ctx, size_t *found,
                             char *err, size_t errlen)
{
	if (!admin_exec(admin, "BEGIN", err, errlen))
		return false;
	bool ok = admin_queue_walk(admin, qid, fn, ctx, found);
	if (!ok)
		admin_db_error(admin, err, errlen);
	return admin_end(admin, ok, err, errlen);
}

bool store_queue_each(struct store_admin *admin, store_queue_fn *fn, void *ctx, char *err, size_t errlen)
{
	size_t found = 0;
	return admin_queue_read(admin, NULL, fn, ctx, &found, err, errlen);
}

bool store_queue_show(struct store_admin *admin, const char *qid, store_queue_fn *fn, void *ctx, char *err,
                      size_t errlen)
{
	size_t found = 0;
	if (!admin_queue_read(admin, qid, fn, ctx, &found, err, errlen))
		return false;
	if (found == 0) {
		str_format(err, errlen, "no message %s in the queue", qid);
		return false;
	}
	return true;
}
