/*
 * unit_store.h - for tests of src/store: a scratch data directory under
 * $TMPDIR (root/var), removed again at the end, and SQL run straight on its
 * queue database. Include once, after unit.h.
 */
#ifndef TERN_UNIT_STORE_H
#define TERN_UNIT_STORE_H

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_db.h"
#include "unit.h"
#include "util/util_str.h"

static char root[256], data_dir[300];

/* unit_store_dir - make root (tern-NAME-XXXXXX) and name data_dir in it; false after a failed check. */
static inline bool unit_store_dir(const char *name)
{
	const char *tmp = getenv("TMPDIR");
	str_format(root, sizeof root, "%s/tern-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", name);
	if (!mkdtemp(root)) {
		UNIT_FAIL("mkdtemp %s failed", root);
		return false;
	}
	str_format(data_dir, sizeof data_dir, "%s/var", root);
	return true;
}

/* unit_store_remove - the queue database, the (empty) spool and the directories. */
static inline void unit_store_remove(void)
{
	static const char *const files[] = {"queue.db", "queue.db-wal", "queue.db-shm"};
	char path[400];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		str_format(path, sizeof path, "%s/%s", data_dir, files[i]);
		unlink(path);
	}
	str_format(path, sizeof path, "%s/spool", data_dir);
	rmdir(path);
	rmdir(data_dir);
	rmdir(root);
}

/* unit_count_rows - the first column of sql's first row, or -1. */
static inline int64_t unit_count_rows(const char *sql)
{
	char err[256] = "";
	sqlite3 *db = store_db_open(data_dir, true, err, sizeof err);
	if (!db) {
		UNIT_FAIL("store_db_open: %s", err);
		return -1;
	}
	sqlite3_stmt *stmt = store_db_prepare(db, sql);
	int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return n;
}

static inline void unit_exec_sql(const char *sql)
{
	char err[256] = "";
	sqlite3 *db = store_db_open(data_dir, true, err, sizeof err);
	if (!db) {
		UNIT_FAIL("store_db_open: %s", err);
		return;
	}
	CHECK(store_db_exec(db, sql));
	sqlite3_close(db);
}

/* Every other domain through its MX hosts, as with no smarthost or transport. */
static inline enum store_route unit_route_mx(const void *routes, const char *domain, char *key, size_t keysize)
{
	key[0] = '\0';
	return STORE_ROUTE_MX;
}

static inline void unit_release_nothing(void *routes)
{
}

/* unit_store_settings - a store for data_dir with the local domain localhost, and policy. */
static inline struct store_settings unit_store_settings(const struct store_policy *policy)
{
	static const struct store_router mx_router = {.remote = unit_route_mx, .release = unit_release_nothing};
	static char *local_domains[] = {"localhost"};
	return (struct store_settings){
	        .data_dir = data_dir,
	        .max_inflight = 16,
	        .hostname = "tern.test",
	        .local_domains = local_domains,
	        .local_domain_count = 1,
	        .postmaster = "postmaster@localhost",
	        .recipient_delimiter = "+",
	        .router = &mx_router,
	        .policy = *policy,
	};
}

#endif
