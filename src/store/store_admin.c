/*
 * store_admin.c - the command line's view of the database: users, aliases,
 * the queue (store_queue.c) and the suppression list (store_suppress.c);
 * see store_admin.h.
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
#include "store/store_admin_private.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_db.h"
#include "util/util_str.h"
#include "util/util_time.h"

struct store_admin *store_admin_open(const char *data_dir, char *err, size_t errlen)
{
	sqlite3 *db = store_db_open(data_dir, true, err, errlen);
	if (!db)
		return NULL;
	struct store_admin *admin = xcalloc(1, sizeof *admin);
	admin->db = db;
	admin->data_dir = str_dup(data_dir);
	return admin;
}

void store_admin_close(struct store_admin *admin)
{
	if (!admin)
		return;
	sqlite3_close(admin->db);
	free(admin->data_dir);
	free(admin);
}

/* ---- Helpers ---- */

bool admin_db_error(struct store_admin *admin, char *err, size_t errlen)
{
	str_format(err, errlen, "database error: %s", sqlite3_errmsg(admin->db));
	return false;
}

bool admin_exec(struct store_admin *admin, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(admin->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return true;
	return admin_db_error(admin, err, errlen);
}

/* admin_end - COMMIT if ok, else ROLLBACK (keeping the first error). */
bool admin_end(struct store_admin *admin, bool ok, char *err, size_t errlen)
{
	if (ok && admin_exec(admin, "COMMIT", err, errlen))
		return true;
	sqlite3_exec(admin->db, "ROLLBACK", NULL, NULL, NULL);
	return false;
}

bool admin_log_action(struct store_admin *admin, const char *action, const char *target, const char *who, size_t count)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "INSERT INTO queue_log(at_ms, who, action, target, rcpts)"
	                                                 " VALUES(?,?,?,?,?)");
	sqlite3_bind_int64(stmt, 1, time_wall_ms());
	sqlite3_bind_text(stmt, 2, who, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (int64_t)count);
	return admin_finish(admin, stmt) == 1;
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
int admin_finish(struct store_admin *admin, sqlite3_stmt *stmt)
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
