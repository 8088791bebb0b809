/*
 * store_suppress.c - the suppression list: which failures put an address on
 * it, and what the command line does with it (see store_admin.h).
 *
 * The list is the table suppressions, keyed by address without regard to
 * ASCII case. The store thread adds an address in the same transaction
 * that marks a recipient in another domain bounced, when the reason says the
 * address does not exist (suppress_hard_bounce); the loop thread looks it up
 * at RCPT through a reader (store_dir_suppressed). An entry a bounce made
 * lasts suppression_ttl after its last bounce, and the store thread deletes
 * it after that; an entry an operator made lasts until deleted.
 *
 * Operators' changes run inside BEGIN IMMEDIATE with a queue_log row naming
 * who made them, which the running server logs.
 */
#include "store/store_suppress.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_admin.h"
#include "store/store_admin_private.h"
#include "store/store_db.h"
#include "util/util_str.h"
#include "util/util_time.h"

/* ---- Which failures count ---- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* sub_code - 1 to 3 digits at *p (RFC 3463 4.1), as a number; advances *p. -1 if there are none or too many. */
static int sub_code(const char **p)
{
	int n = 0, digits = 0;
	while (is_digit(**p) && digits < 4) {
		n = n * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	return digits == 0 || digits > 3 ? -1 : n;
}

bool suppress_hard_bounce(const char *reason, char *status, size_t size)
{
	static const int hard[] = {1, 2, 3, 6, 10};
	const char *p = reason;
	if (status && size > 0)
		status[0] = '\0';
	/* A peer's reply starts with its basic code; tern's own reasons do not. */
	if (is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) && (p[3] == ' ' || p[3] == '-')) {
		if (p[0] != '5')
			return false;
		p += 4;
	}
	const char *start = p;
	int klass = sub_code(&p), subject = -1, detail = -1;
	if (klass >= 0 && *p == '.') {
		p++;
		subject = sub_code(&p);
	}
	if (subject >= 0 && *p == '.') {
		p++;
		detail = sub_code(&p);
	}
	if (klass < 0 || subject < 0 || detail < 0 || (*p != '\0' && *p != ' '))
		return false;
	if (status)
		str_copy_n(status, size, start, (size_t)(p - start));
	if (klass != 5 || subject != 1)
		return false;
	for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++)
		if (detail == hard[i])
			return true;
	return false;
}

/* ---- The command line ---- */

/* domain_of - the domain of an address (after its last @), "" if none. */
static const char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : "";
}

static const char *column_text(sqlite3_stmt *stmt, int col)
{
	return (const char *)sqlite3_column_text(stmt, col);
}

bool store_suppression_each(struct store_admin *admin, const char *domain, uint64_t ttl_ms, store_suppression_fn *fn,
                            void *ctx, char *err, size_t errlen)
{
	sqlite3_stmt *stmt =
	        store_db_prepare(admin->db, "SELECT address, reason, source, source_qid, added_by, added_ms"
	                                    " FROM suppressions"
	                                    " WHERE source<>'bounce' OR ?1=0 OR added_ms>?2"
	                                    " ORDER BY address");
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)ttl_ms);
	sqlite3_bind_int64(stmt, 2, time_wall_ms() - (int64_t)ttl_ms);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *address = column_text(stmt, 0), *reason = column_text(stmt, 1),
		           *source = column_text(stmt, 2);
		if (!address || (domain && strcasecmp(domain_of(address), domain) != 0))
			continue;
		struct store_suppression entry = {
		        .address = address,
		        .reason = reason ? reason : "",
		        .manual = source && strcmp(source, "manual") == 0,
		        .source_qid = column_text(stmt, 3),
		        .added_by = column_text(stmt, 4),
		        .added_ms = sqlite3_column_int64(stmt, 5),
		};
		fn(ctx, &entry);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE || admin_db_error(admin, err, errlen);
}

bool store_suppression_add(struct store_admin *admin, const char *address, const char *reason, const char *who,
                           char *err, size_t errlen)
{
	if (!admin_exec(admin, "BEGIN IMMEDIATE", err, errlen))
		return false;
	sqlite3_stmt *stmt = store_db_prepare(
	        admin->db, "INSERT INTO suppressions(address, reason, source, source_qid, added_by, added_ms)"
	                   " VALUES(?1, ?2, 'manual', NULL, ?3, ?4) ON CONFLICT(address) DO UPDATE SET"
	                   " address=excluded.address, reason=excluded.reason, source='manual', source_qid=NULL,"
	                   " added_by=excluded.added_by, added_ms=excluded.added_ms");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, who, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, time_wall_ms());
	bool ok = admin_finish(admin, stmt) == 1 && admin_log_action(admin, "suppression_add", address, who, 1);
	if (!ok)
		admin_db_error(admin, err, errlen);
	return admin_end(admin, ok, err, errlen);
}

bool store_suppression_del(struct store_admin *admin, const char *address, const char *who, char *err, size_t errlen)
{
	if (!admin_exec(admin, "BEGIN IMMEDIATE", err, errlen))
		return false;
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "DELETE FROM suppressions WHERE address=?");
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	int changed = admin_finish(admin, stmt);
	bool ok = changed >= 0 && (changed == 0 || admin_log_action(admin, "suppression_delete", address, who, 1));
	if (!ok)
		admin_db_error(admin, err, errlen);
	else if (changed == 0) {
		str_format(err, errlen, "%s is not on the suppression list", address);
		ok = false;
	}
	return admin_end(admin, ok, err, errlen);
}

bool store_suppression_clear(struct store_admin *admin, const char *who, size_t *count, char *err, size_t errlen)
{
	*count = 0;
	if (!admin_exec(admin, "BEGIN IMMEDIATE", err, errlen))
		return false;
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "DELETE FROM suppressions");
	int changed = admin_finish(admin, stmt);
	bool ok = changed >= 0 && admin_log_action(admin, "suppression_clear", "*", who, (size_t)changed);
	if (ok)
		*count = (size_t)changed;
	else
		admin_db_error(admin, err, errlen);
	return admin_end(admin, ok, err, errlen);
}
