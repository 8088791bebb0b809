/*
 * store_queue.c - the command line's view of the queue and the actions an
 * operator takes on it (see store_admin.h).
 *
 * Listings run inside one read transaction, so a message, its recipients
 * and their attempts come from the same snapshot. Actions run inside BEGIN
 * IMMEDIATE and write a queue_log row in the same transaction: the server's
 * store thread sees the database change (PRAGMA data_version), picks up
 * recipients that became due, and logs the row. An attempt already under
 * way when an action lands finishes; what it reports is written as usual,
 * except that a held recipient stays held and a deleted one stays gone.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_admin.h"
#include "store/store_admin_private.h"
#include "store/store_db.h"
#include "store/store_spool.h"
#include "util/util_id.h"
#include "util/util_str.h"
#include "util/util_time.h"

/* Strings of one recipient and its attempts, owned while the callback runs. */
struct rcpt_strings {
	char *address, *mailbox, *route, *route_key, *state, *last_error;
	struct store_queue_attempt *history;
	char **history_text; /* outcome and reply of each attempt */
	size_t history_count;
};

struct rcpt_list {
	struct store_queue_rcpt *rcpts;
	struct rcpt_strings *owned;
	size_t count, cap;
};

static const char *const action_names[] = {
        [QUEUE_FLUSH] = "flush",     [QUEUE_RETRY] = "retry",   [QUEUE_HOLD] = "hold",
        [QUEUE_RELEASE] = "release", [QUEUE_DELETE] = "delete",
};

const char *store_queue_action_name(enum store_queue_action action)
{
	return action_names[action];
}

static char *column_dup(sqlite3_stmt *stmt, int col)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);
	return s ? str_dup(s) : NULL;
}

/* ---- Recipients ---- */

static void rcpts_clear(struct rcpt_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		struct rcpt_strings *s = &list->owned[i];
		free(s->address);
		free(s->mailbox);
		free(s->route);
		free(s->route_key);
		free(s->state);
		free(s->last_error);
		for (size_t k = 0; k < 2 * s->history_count; k++)
			free(s->history_text[k]);
		free(s->history_text);
		free(s->history);
	}
	list->count = 0;
}

static void rcpts_free(struct rcpt_list *list)
{
	rcpts_clear(list);
	free(list->rcpts);
	free(list->owned);
}

/* domain_of - the domain of an address (after its last @), "" if none. */
static const char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : "";
}

static bool rcpt_passes(const struct store_queue_filter *filter, sqlite3_stmt *stmt)
{
	const char *address = (const char *)sqlite3_column_text(stmt, 1);
	const char *state = (const char *)sqlite3_column_text(stmt, 3);
	if (filter->state && (!state || strcmp(state, filter->state) != 0))
		return false;
	return !filter->domain || (address && strcasecmp(domain_of(address), filter->domain) == 0);
}

/* rcpts_push - copy the current recipient row into the list. */
static void rcpts_push(struct rcpt_list *list, sqlite3_stmt *stmt)
{
	if (list->count == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 8;
		list->rcpts = xrealloc(list->rcpts, list->cap * sizeof *list->rcpts);
		list->owned = xrealloc(list->owned, list->cap * sizeof *list->owned);
	}
	struct rcpt_strings *s = &list->owned[list->count];
	memset(s, 0, sizeof *s);
	s->address = column_dup(stmt, 1);
	s->mailbox = column_dup(stmt, 2);
	s->state = column_dup(stmt, 3);
	s->last_error = column_dup(stmt, 6);
	s->route = column_dup(stmt, 7);
	s->route_key = column_dup(stmt, 8);
	list->rcpts[list->count] = (struct store_queue_rcpt){
	        .id = sqlite3_column_int64(stmt, 0),
	        .address = s->address ? s->address : "",
	        .mailbox = s->mailbox ? s->mailbox : "",
	        .route = s->route ? s->route : "",
	        .route_key = s->route_key,
	        .state = s->state ? s->state : "",
	        .attempts = sqlite3_column_int64(stmt, 4),
	        .next_attempt_ms = sqlite3_column_int64(stmt, 5),
	        .last_error = s->last_error,
	};
	list->count++;
}

/* rcpts_load - the recipients of message msg_id that pass filter, in id order. */
static bool rcpts_load(sqlite3_stmt *stmt, int64_t msg_id, const struct store_queue_filter *filter,
                       struct rcpt_list *list)
{
	rcpts_clear(list);
	sqlite3_bind_int64(stmt, 1, msg_id);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		if (rcpt_passes(filter, stmt))
			rcpts_push(list, stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE;
}

/* history_load - each recipient's failed attempts, oldest first. */
static bool history_load(sqlite3_stmt *stmt, int64_t msg_id, struct rcpt_list *list)
{
	sqlite3_bind_int64(stmt, 1, msg_id);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t rcpt_id = sqlite3_column_int64(stmt, 0);
		for (size_t i = 0; i < list->count; i++) {
			if (list->rcpts[i].id != rcpt_id)
				continue;
			struct rcpt_strings *s = &list->owned[i];
			size_t k = s->history_count++;
			s->history = xrealloc(s->history, s->history_count * sizeof *s->history);
			s->history_text = xrealloc(s->history_text, 2 * s->history_count * sizeof *s->history_text);
			s->history_text[2 * k] = column_dup(stmt, 2);
			s->history_text[2 * k + 1] = column_dup(stmt, 3);
			s->history[k] = (struct store_queue_attempt){
			        .at_ms = sqlite3_column_int64(stmt, 1),
			        .outcome = s->history_text[2 * k] ? s->history_text[2 * k] : "",
			        .reply = s->history_text[2 * k + 1] ? s->history_text[2 * k + 1] : "",
			};
			list->rcpts[i].history = s->history;
			list->rcpts[i].history_count = s->history_count;
		}
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE;
}

/* ---- Listing ---- */

static bool message_passes(const struct store_queue_filter *filter, int64_t arrival_ms, int64_t now)
{
	if (filter->older_than_ms > 0 && now - arrival_ms < filter->older_than_ms)
		return false;
	return filter->newer_than_ms <= 0 || now - arrival_ms < filter->newer_than_ms;
}

/*
 * queue_walk - call fn for each message (only qid's, when not NULL) with
 * its recipients that pass filter; *found counts the messages shown.
 */
static bool queue_walk(struct store_admin *admin, const char *qid, const struct store_queue_filter *filter,
                       store_queue_fn *fn, void *ctx, size_t *found)
{
	sqlite3_stmt *msgs = store_db_prepare(admin->db, qid ? "SELECT id, qid, sender, arrival_ms, size"
	                                                       " FROM messages WHERE qid=?"
	                                                     : "SELECT id, qid, sender, arrival_ms, size"
	                                                       " FROM messages ORDER BY arrival_ms, id");
	sqlite3_stmt *rcpts = store_db_prepare(admin->db, "SELECT id, address, mailbox, state, attempts,"
	                                                  " next_attempt_ms, last_error, route, route_key"
	                                                  " FROM recipients"
	                                                  " WHERE msg_id=? ORDER BY id");
	sqlite3_stmt *history = store_db_prepare(admin->db, "SELECT rcpt_id, at_ms, outcome, reply FROM attempts"
	                                                    " WHERE msg_id=? ORDER BY at_ms, rowid");
	if (qid)
		sqlite3_bind_text(msgs, 1, qid, -1, SQLITE_STATIC);
	struct rcpt_list list = {0};
	int64_t now = time_wall_ms();
	bool ok = true;
	int rc = SQLITE_DONE;
	while (ok && (rc = sqlite3_step(msgs)) == SQLITE_ROW) {
		int64_t msg_id = sqlite3_column_int64(msgs, 0);
		int64_t arrival_ms = sqlite3_column_int64(msgs, 3);
		if (!message_passes(filter, arrival_ms, now))
			continue;
		ok = rcpts_load(rcpts, msg_id, filter, &list) && (!qid || history_load(history, msg_id, &list));
		if (!ok || (list.count == 0 && (filter->state || filter->domain)))
			continue;
		const char *id = (const char *)sqlite3_column_text(msgs, 1);
		const char *sender = (const char *)sqlite3_column_text(msgs, 2);
		struct store_queue_entry entry = {
		        .qid = id ? id : "",
		        .sender = sender ? sender : "",
		        .arrival_ms = arrival_ms,
		        .size = sqlite3_column_int64(msgs, 4),
		        .rcpts = list.rcpts,
		        .rcpt_count = list.count,
		};
		fn(ctx, &entry);
		(*found)++;
	}
	ok = ok && rc == SQLITE_DONE;
	rcpts_free(&list);
	sqlite3_finalize(history);
	sqlite3_finalize(rcpts);
	sqlite3_finalize(msgs);
	return ok;
}

/* queue_read - queue_walk inside one read transaction. */
static bool queue_read(struct store_admin *admin, const char *qid, const struct store_queue_filter *filter,
                       store_queue_fn *fn, void *ctx, size_t *found, char *err, size_t errlen)
{
	if (!admin_exec(admin, "BEGIN", err, errlen))
		return false;
	bool ok = queue_walk(admin, qid, filter, fn, ctx, found);
	if (!ok)
		admin_db_error(admin, err, errlen);
	return admin_end(admin, ok, err, errlen);
}

bool store_queue_each(struct store_admin *admin, const struct store_queue_filter *filter, store_queue_fn *fn, void *ctx,
                      char *err, size_t errlen)
{
	static const struct store_queue_filter all;
	size_t found = 0;
	return queue_read(admin, NULL, filter ? filter : &all, fn, ctx, &found, err, errlen);
}

bool store_queue_show(struct store_admin *admin, const char *qid, store_queue_fn *fn, void *ctx, char *err,
                      size_t errlen)
{
	static const struct store_queue_filter all;
	size_t found = 0;
	if (!queue_read(admin, qid, &all, fn, ctx, &found, err, errlen))
		return false;
	if (found == 0) {
		str_format(err, errlen, "no message %s in the queue", qid);
		return false;
	}
	return true;
}

/* ---- Actions ---- */

/* The update each action makes to the recipients of one message (?1). */
static const char *const action_sql[] = {
        [QUEUE_FLUSH] = "UPDATE recipients SET next_attempt_ms=0 WHERE msg_id=?1 AND state='deferred'",
        [QUEUE_RETRY] = "UPDATE recipients SET state='deferred', next_attempt_ms=0, attempts=0"
                        " WHERE msg_id=?1 AND state IN ('deferred','bounced')",
        [QUEUE_HOLD] = "UPDATE recipients SET state='held' WHERE msg_id=?1 AND state IN ('queued','deferred')",
        [QUEUE_RELEASE] = "UPDATE recipients SET state='deferred', next_attempt_ms=0 WHERE msg_id=?1 AND state='held'",
        [QUEUE_DELETE] = "DELETE FROM recipients WHERE msg_id=?1",
};

/* message_id - the row id of queue id qid: 1 found, 0 not, -1 error. */
static int message_id(struct store_admin *admin, const char *qid, int64_t *id)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "SELECT id FROM messages WHERE qid=?");
	sqlite3_bind_text(stmt, 1, qid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* act_on_message - the action's update on one message; recipients changed, or -1. */
static int act_on_message(struct store_admin *admin, enum store_queue_action action, int64_t msg_id)
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, action_sql[action]);
	sqlite3_bind_int64(stmt, 1, msg_id);
	int changed = admin_finish(admin, stmt);
	if (changed < 0 || action != QUEUE_DELETE)
		return changed;
	/* The attempts go with the message (a trigger). */
	sqlite3_stmt *msg = store_db_prepare(admin->db, "DELETE FROM messages WHERE id=?");
	sqlite3_bind_int64(msg, 1, msg_id);
	return admin_finish(admin, msg) < 0 ? -1 : changed;
}

/* flush_where - FLUSH for every deferred recipient, or those of one domain; recipients changed, or -1. */
static int flush_where(struct store_admin *admin, const char *domain)
{
	if (!domain) {
		sqlite3_stmt *all = store_db_prepare(admin->db, "UPDATE recipients SET next_attempt_ms=0"
		                                                " WHERE state='deferred'");
		return admin_finish(admin, all);
	}
	sqlite3_stmt *pick = store_db_prepare(admin->db, "SELECT id, address FROM recipients WHERE state='deferred'");
	sqlite3_stmt *due = store_db_prepare(admin->db, "UPDATE recipients SET next_attempt_ms=0 WHERE id=?");
	int changed = 0, rc;
	while (changed >= 0 && (rc = sqlite3_step(pick)) == SQLITE_ROW) {
		const char *address = (const char *)sqlite3_column_text(pick, 1);
		if (!address || strcasecmp(domain_of(address), domain) != 0)
			continue;
		sqlite3_bind_int64(due, 1, sqlite3_column_int64(pick, 0));
		changed = sqlite3_step(due) == SQLITE_DONE ? changed + 1 : -1;
		sqlite3_reset(due);
	}
	if (changed >= 0 && rc != SQLITE_DONE)
		changed = -1;
	sqlite3_finalize(due);
	sqlite3_finalize(pick);
	return changed;
}

/* spooled_qid - msg_id's qid into qid if its body is in a spool file, else "". */
static void spooled_qid(struct store_admin *admin, int64_t msg_id, char qid[ID_LEN + 1])
{
	sqlite3_stmt *stmt = store_db_prepare(admin->db, "SELECT qid FROM messages WHERE id=? AND spooled=1");
	sqlite3_bind_int64(stmt, 1, msg_id);
	qid[0] = '\0';
	if (sqlite3_step(stmt) == SQLITE_ROW)
		str_copy(qid, ID_LEN + 1, (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
}

/* unspool - after the delete committed, the message's spool file goes too (else the next start sweeps it). */
static void unspool(struct store_admin *admin, const char *qid)
{
	char err[256];
	struct store_spool *spool = store_spool_open(admin->data_dir, false, err, sizeof err);
	if (spool)
		store_spool_remove(spool, qid);
	store_spool_close(spool);
}

static bool log_action(struct store_admin *admin, enum store_queue_action action, const char *target, const char *who,
                       size_t count)
{
	return admin_log_action(admin, action_names[action], target ? target : "*", who, count);
}

bool store_queue_act(struct store_admin *admin, enum store_queue_action action, const char *target, const char *who,
                     size_t *count, char *err, size_t errlen)
{
	*count = 0;
	if (!admin_exec(admin, "BEGIN IMMEDIATE", err, errlen))
		return false;
	int64_t msg_id = 0;
	int found = target ? message_id(admin, target, &msg_id) : 0;
	bool ok = found >= 0;
	int changed = 0;
	char spool_qid[ID_LEN + 1] = "";
	if (ok && found == 1 && action == QUEUE_DELETE)
		spooled_qid(admin, msg_id, spool_qid);
	if (ok && found == 1) {
		changed = act_on_message(admin, action, msg_id);
	} else if (ok && action == QUEUE_FLUSH) {
		changed = flush_where(admin, target); /* a domain, or every one */
	} else if (ok) {
		str_format(err, errlen, "no message %s in the queue", target);
		admin_end(admin, false, err, errlen);
		return false;
	}
	ok = ok && changed >= 0;
	if (ok)
		*count = (size_t)changed;
	ok = ok && log_action(admin, action, target, who, *count);
	if (!ok)
		admin_db_error(admin, err, errlen);
	if (!admin_end(admin, ok, err, errlen))
		return false;
	if (spool_qid[0])
		unspool(admin, spool_qid);
	return true;
}
