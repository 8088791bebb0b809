/*
 * store_admin_private.h - private to src/store: the command line's
 * connection and the helpers store_admin.c (users, aliases),
 * store_queue.c (the queue) and store_suppress.c (the suppression list)
 * share.
 */
#ifndef TERN_STORE_ADMIN_PRIVATE_H
#define TERN_STORE_ADMIN_PRIVATE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

struct store_admin {
	sqlite3 *db;
	char *data_dir;
};

/* admin_db_error - "database error: ..." into err; returns false. */
bool admin_db_error(struct store_admin *admin, char *err, size_t errlen);

/* admin_exec - run sql (no results); false with err set. */
bool admin_exec(struct store_admin *admin, const char *sql, char *err, size_t errlen);

/* admin_end - COMMIT if ok, else ROLLBACK (keeping the first error). */
bool admin_end(struct store_admin *admin, bool ok, char *err, size_t errlen);

/* admin_finish - step a write statement, finalize it: rows changed, or -1. */
int admin_finish(struct store_admin *admin, sqlite3_stmt *stmt);

/* admin_log_action - the queue_log row of an operator's action, which the server logs; false on error. */
bool admin_log_action(struct store_admin *admin, const char *action, const char *target, const char *who, size_t count);

#endif
