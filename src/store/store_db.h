/*
 * store_db.h - private to src/store: opening the database, its schema and
 * migrations. Only files in src/store include sqlite3.h.
 */
#ifndef TERN_STORE_DB_H
#define TERN_STORE_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 8

/*
 * store_db_open - open DATA_DIR/queue.db. A writer creates the data
 * directory and the file if needed and migrates the schema; a reader waits
 * for a writer to have done so. Returns NULL with a message in err.
 */
sqlite3 *store_db_open(const char *data_dir, bool writer, char *err, size_t errlen);

/* store_db_exec - run SQL without results; logs and returns false on error. */
bool store_db_exec(sqlite3 *db, const char *sql);

/* store_db_prepare - prepare or abort: the SQL is ours, so failure is a bug. */
sqlite3_stmt *store_db_prepare(sqlite3 *db, const char *sql);

#endif
