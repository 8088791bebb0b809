/*
 * store_db.c - open the queue database, set its durability, migrate it.
 *
 * Durability: WAL journal with synchronous=FULL, so a COMMIT returns only
 * after the WAL is fsynced: this is what "250" rests on. Every connection
 * waits up to STORE_BUSY_MS for a lock instead of failing, because the CLI
 * may write users while the server runs.
 *
 * Schema versions live in PRAGMA user_version; store_db_migrate brings an
 * older file forward one step at a time inside a transaction, and refuses a
 * file newer than this code.
 */
#include "store/store_db.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util_log.h"
#include "util/util_str.h"

#define STORE_BUSY_MS 10000

/* Version 1: the queue and the directory. */
static const char schema_v1[] = "CREATE TABLE messages ("
                                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                " qid TEXT NOT NULL UNIQUE,"
                                " sender TEXT NOT NULL,"
                                " arrival_ms INTEGER NOT NULL,"
                                " size INTEGER NOT NULL,"
                                " body BLOB NOT NULL);"
                                "CREATE TABLE recipients ("
                                " id INTEGER PRIMARY KEY,"
                                " msg_id INTEGER NOT NULL REFERENCES messages(id),"
                                " address TEXT NOT NULL,"
                                " mailbox TEXT NOT NULL,"
                                " state TEXT NOT NULL DEFAULT 'queued',"
                                " attempts INTEGER NOT NULL DEFAULT 0,"
                                " next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
                                " last_error TEXT);"
                                "CREATE INDEX recipients_msg ON recipients(msg_id);"
                                "CREATE INDEX recipients_due ON recipients(state, next_attempt_ms);"
                                "CREATE TABLE users ("
                                " address TEXT PRIMARY KEY,"
                                " password TEXT,"
                                " created_ms INTEGER NOT NULL);"
                                "CREATE TABLE aliases ("
                                " address TEXT PRIMARY KEY,"
                                " targets TEXT NOT NULL,"
                                " created_ms INTEGER NOT NULL);";

/* Version 2: secrets for CRAM-MD5 and SCRAM-SHA-256 (opt-in), and the
 * addresses a user may send as besides their own. */
static const char schema_v2[] = "ALTER TABLE users ADD COLUMN scram TEXT;"
                                "ALTER TABLE users ADD COLUMN cram TEXT;"
                                "ALTER TABLE users ADD COLUMN senders TEXT NOT NULL DEFAULT '';";

/* Version 3: RFC 3461 DSN parameters: RET and ENVID per message, NOTIFY and ORCPT per recipient;
 * whether the sender was warned of a recipient's delay. */
static const char schema_v3[] = "ALTER TABLE messages ADD COLUMN ret_hdrs INTEGER NOT NULL DEFAULT 0;"
                                "ALTER TABLE messages ADD COLUMN envid TEXT;"
                                "ALTER TABLE recipients ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;"
                                "ALTER TABLE recipients ADD COLUMN orcpt TEXT;"
                                "ALTER TABLE recipients ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;";

/* Version 4: queue control. Every failed attempt with its reply (kept until the
 * message goes), and the operators' actions, which the server logs. A
 * recipient may now also be 'held'. */
static const char schema_v4[] = "CREATE TABLE attempts ("
                                " msg_id INTEGER NOT NULL,"
                                " rcpt_id INTEGER NOT NULL,"
                                " at_ms INTEGER NOT NULL,"
                                " outcome TEXT NOT NULL,"
                                " reply TEXT NOT NULL);"
                                "CREATE INDEX attempts_msg ON attempts(msg_id);"
                                "CREATE TRIGGER attempts_gone AFTER DELETE ON messages"
                                " BEGIN DELETE FROM attempts WHERE msg_id=OLD.id; END;"
                                "CREATE TABLE queue_log ("
                                " id INTEGER PRIMARY KEY,"
                                " at_ms INTEGER NOT NULL,"
                                " who TEXT NOT NULL,"
                                " action TEXT NOT NULL,"
                                " target TEXT NOT NULL,"
                                " rcpts INTEGER NOT NULL);";

/* Version 5: the suppression list (addresses in other domains that bounced for good, or that an
 * operator listed; see store_suppress.c), and when each recipient bounced, so that bounced
 * recipients can be pruned after bounce_retention. Recipients that bounced before this version
 * count from their last failed attempt (or from the migration). */
static const char schema_v5[] = "CREATE TABLE suppressions ("
                                " address TEXT PRIMARY KEY COLLATE NOCASE,"
                                " reason TEXT NOT NULL,"
                                " source TEXT NOT NULL," /* 'bounce' or 'manual' */
                                " source_qid TEXT,"      /* the message that bounced */
                                " added_by TEXT,"        /* the operator, for 'manual' */
                                " added_ms INTEGER NOT NULL);"
                                "CREATE INDEX suppressions_expiry ON suppressions(added_ms) WHERE source='bounce';"
                                "ALTER TABLE recipients ADD COLUMN bounced_ms INTEGER;"
                                "UPDATE recipients SET bounced_ms=coalesce((SELECT MAX(at_ms) FROM attempts"
                                " WHERE attempts.msg_id=recipients.msg_id AND attempts.rcpt_id=recipients.id),"
                                " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"
                                " WHERE state='bounced';"
                                "CREATE INDEX recipients_bounced ON recipients(bounced_ms) WHERE state='bounced';";

/* Version 6: large bodies live in DATA_DIR/spool (store_spool.c); the row says so. */
static const char schema_v6[] = "ALTER TABLE messages ADD COLUMN spooled INTEGER NOT NULL DEFAULT 0;";

/* Version 7: each recipient's route, decided once (store_route.c). Rows from before say only
 * "local" (a mailbox) or "another domain" (mailbox ''); the server routes the waiting ones again
 * when it starts, which turns an "mx" here into "relay" where the configuration names a next hop,
 * and "mailbox" into "lmtp" where local_delivery is LMTP. */
static const char schema_v7[] = "ALTER TABLE recipients ADD COLUMN route TEXT NOT NULL DEFAULT 'mailbox';"
                                "ALTER TABLE recipients ADD COLUMN route_key TEXT;"
                                "UPDATE recipients SET route='mx' WHERE mailbox='';";

/* Version 8: notices owed to senders (bounces, delay warnings, success notices), written with the
 * results that owe them and composed later, outside the writer's transaction (store_notice.c). A
 * message is kept while a notice about it is owed; one an operator deletes takes its notices along. */
static const char schema_v8[] = "CREATE TABLE notices ("
                                " id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: the composer's cursor */
                                " msg_id INTEGER NOT NULL," /* the message the notice is about */
                                " kind TEXT NOT NULL,"      /* failed, delayed, delivered */
                                " made_ms INTEGER NOT NULL,"
                                " retry_until_ms INTEGER NOT NULL DEFAULT 0);" /* delayed: when tern gives up */
                                "CREATE INDEX notices_msg ON notices(msg_id);"
                                "CREATE TABLE notice_rcpts ("
                                " notice_id INTEGER NOT NULL,"
                                " address TEXT NOT NULL,"
                                " orcpt TEXT,"
                                " error TEXT NOT NULL,"
                                " relayed INTEGER NOT NULL DEFAULT 0);"
                                "CREATE INDEX notice_rcpts_notice ON notice_rcpts(notice_id);"
                                "CREATE TRIGGER notices_gone AFTER DELETE ON notices"
                                " BEGIN DELETE FROM notice_rcpts WHERE notice_id=OLD.id; END;"
                                "CREATE TRIGGER notices_orphaned AFTER DELETE ON messages"
                                " BEGIN DELETE FROM notices WHERE msg_id=OLD.id; END;";

bool store_db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("event=db_error error=\"%s\"", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return false;
	}
	return true;
}

sqlite3_stmt *store_db_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
		fatal("cannot prepare \"%s\": %s", sql, sqlite3_errmsg(db));
	return stmt;
}

static int store_db_version(sqlite3 *db)
{
	sqlite3_stmt *stmt = store_db_prepare(db, "PRAGMA user_version");
	int version = -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return version;
}

static bool store_db_migrate(sqlite3 *db, char *err, size_t errlen)
{
	if (!store_db_exec(db, "BEGIN IMMEDIATE")) {
		str_copy(err, errlen, "cannot lock the database to migrate it");
		return false;
	}
	int version = store_db_version(db);
	bool ok = true;
	if (version > STORE_SCHEMA_VERSION) {
		str_format(err, errlen, "database schema version %d is newer than this tern (%d)", version,
		           STORE_SCHEMA_VERSION);
		ok = false;
	}
	if (ok && version < 1)
		ok = store_db_exec(db, schema_v1);
	if (ok && version < 2)
		ok = store_db_exec(db, schema_v2);
	if (ok && version < 3)
		ok = store_db_exec(db, schema_v3);
	if (ok && version < 4)
		ok = store_db_exec(db, schema_v4);
	if (ok && version < 5)
		ok = store_db_exec(db, schema_v5);
	if (ok && version < 6)
		ok = store_db_exec(db, schema_v6);
	if (ok && version < 7)
		ok = store_db_exec(db, schema_v7);
	if (ok && version < 8)
		ok = store_db_exec(db, schema_v8);
	if (ok && version < STORE_SCHEMA_VERSION) {
		char sql[64];
		str_format(sql, sizeof sql, "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
		ok = store_db_exec(db, sql);
	}
	if (!ok && err[0] == '\0')
		str_format(err, errlen, "cannot migrate the database: %s", sqlite3_errmsg(db));
	store_db_exec(db, ok ? "COMMIT" : "ROLLBACK");
	return ok;
}

sqlite3 *store_db_open(const char *data_dir, bool writer, char *err, size_t errlen)
{
	char path[4096];
	err[0] = '\0';
	if (!str_format(path, sizeof path, "%s/queue.db", data_dir)) {
		str_copy(err, errlen, "data_dir path too long");
		return NULL;
	}
	if (writer && mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		str_format(err, errlen, "cannot create %s: %s", data_dir, strerror(errno));
		return NULL;
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		str_format(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	bool ok = store_db_exec(db, "PRAGMA journal_mode=WAL") && store_db_exec(db, "PRAGMA synchronous=FULL") &&
	          store_db_exec(db, "PRAGMA foreign_keys=OFF");
	if (ok && writer)
		ok = store_db_migrate(db, err, errlen);
	else if (ok && store_db_version(db) != STORE_SCHEMA_VERSION) {
		str_format(err, errlen, "%s has schema version %d, this tern needs %d (start the server once)", path,
		           store_db_version(db), STORE_SCHEMA_VERSION);
		ok = false;
	}
	if (!ok) {
		if (err[0] == '\0')
			str_format(err, errlen, "cannot set up %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	return db;
}
