/*
 * store_reader.c - read-only connections: message bodies for delivery, and
 * the directory (users, aliases and the suppression list) for RCPT.
 *
 * In WAL mode readers never wait for the store thread's writes, so the
 * loop thread may look up a recipient without blocking on a commit. Each
 * thread opens its own reader; a reader is never shared.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_db.h"
#include "store/store_spool.h"
#include "util/util_log.h"
#include "util/util_str.h"

struct store_reader {
	sqlite3 *db;
	struct store_spool *spool;
	sqlite3_stmt *alias, *user, *secrets, *senders, *suppressed, *body_place;
};

struct store_reader *store_reader_open(const char *data_dir, char *err, size_t errlen)
{
	sqlite3 *db = store_db_open(data_dir, false, err, errlen);
	if (!db)
		return NULL;
	struct store_spool *spool = store_spool_open(data_dir, false, err, errlen);
	if (!spool) {
		sqlite3_close(db);
		return NULL;
	}
	struct store_reader *r = xcalloc(1, sizeof *r);
	r->db = db;
	r->spool = spool;
	r->body_place = store_db_prepare(db, "SELECT spooled, qid FROM messages WHERE id=?");
	r->alias = store_db_prepare(db, "SELECT targets FROM aliases WHERE address=?");
	r->user = store_db_prepare(db, "SELECT 1 FROM users WHERE address=?");
	r->secrets = store_db_prepare(db, "SELECT coalesce(password, ''), coalesce(scram, ''), coalesce(cram, '')"
	                                  " FROM users WHERE address=?");
	r->senders = store_db_prepare(db, "SELECT senders FROM users WHERE address=?");
	/* The primary key compares without regard to case (COLLATE NOCASE). */
	r->suppressed = store_db_prepare(db, "SELECT 1 FROM suppressions WHERE address=?1"
	                                     " AND (source<>'bounce' OR ?2=0 OR added_ms>?3)");
	return r;
}

void store_reader_close(struct store_reader *r)
{
	if (!r)
		return;
	sqlite3_finalize(r->alias);
	sqlite3_finalize(r->user);
	sqlite3_finalize(r->secrets);
	sqlite3_finalize(r->senders);
	sqlite3_finalize(r->suppressed);
	sqlite3_finalize(r->body_place);
	store_spool_close(r->spool);
	sqlite3_close(r->db);
	free(r);
}

/* reader_spooled - 1 if msg_id's body is in a spool file (its qid in qid), 0 if in the row, -1 if no such row. */
static int reader_spooled(struct store_reader *r, int64_t msg_id, char qid[ID_LEN + 1])
{
	sqlite3_bind_int64(r->body_place, 1, msg_id);
	int found = -1;
	if (sqlite3_step(r->body_place) == SQLITE_ROW) {
		found = sqlite3_column_int(r->body_place, 0) != 0;
		str_copy(qid, ID_LEN + 1, (const char *)sqlite3_column_text(r->body_place, 1));
	}
	sqlite3_reset(r->body_place);
	return found;
}

bool store_reader_body(struct store_reader *r, int64_t msg_id, struct evbuffer *out)
{
	char qid[ID_LEN + 1] = "";
	int spooled = reader_spooled(r, msg_id, qid);
	if (spooled == 1)
		return store_spool_read(r->spool, qid, out);
	sqlite3_blob *blob = NULL;
	if (sqlite3_blob_open(r->db, "main", "messages", "body", msg_id, 0, &blob) != SQLITE_OK) {
		log_error("event=db_error msg_id=%lld error=\"%s\"", (long long)msg_id, sqlite3_errmsg(r->db));
		sqlite3_blob_close(blob);
		return false;
	}
	int size = sqlite3_blob_bytes(blob);
	bool ok = true;
	int done = 0;
	while (ok && done < size) {
		int want = size - done < 65536 ? size - done : 65536;
		struct evbuffer_iovec vec;
		if (evbuffer_reserve_space(out, want, &vec, 1) < 1)
			fatal("evbuffer_reserve_space failed");
		ok = sqlite3_blob_read(blob, vec.iov_base, want, done) == SQLITE_OK;
		vec.iov_len = ok ? (size_t)want : 0;
		evbuffer_commit_space(out, &vec, 1);
		done += want;
	}
	sqlite3_blob_close(blob);
	return ok;
}

/* ---- Directory ---- */

struct dir_walk {
	struct store_reader *reader;
	char (*out)[STORE_ADDRESS_MAX];
	int max;
	int count;
	bool failed;
};

static void dir_add(struct dir_walk *w, const char *mailbox)
{
	for (int i = 0; i < w->count; i++)
		if (strcmp(w->out[i], mailbox) == 0)
			return;
	if (w->count < w->max && str_copy(w->out[w->count], STORE_ADDRESS_MAX, mailbox))
		w->count++;
}

/* dir_lookup_user - 1 if address is a user, 0 if not, -1 on error. */
static int dir_lookup_user(struct store_reader *r, const char *address)
{
	sqlite3_bind_text(r->user, 1, address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->user);
	sqlite3_reset(r->user);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static bool dir_expand(struct dir_walk *w, const char *address, int depth);

/* dir_expand_targets - each comma-separated target of an alias, lower-cased. */
static bool dir_expand_targets(struct dir_walk *w, const char *targets, int depth)
{
	bool any = false;
	const char *p = targets;
	while (*p) {
		size_t len = strcspn(p, ", ");
		if (len > 0 && len < STORE_ADDRESS_MAX) {
			char target[STORE_ADDRESS_MAX];
			str_copy_n(target, sizeof target, p, len);
			str_lower(target);
			any |= dir_expand(w, target, depth + 1);
		}
		p += len;
		p += strspn(p, ", ");
	}
	return any;
}

/* dir_expand - resolve address (alias first, then user); true if it led anywhere. */
static bool dir_expand(struct dir_walk *w, const char *address, int depth)
{
	if (depth > STORE_ALIAS_DEPTH) {
		log_warning("event=alias_loop address=\"%s\"", address);
		return false;
	}
	struct store_reader *r = w->reader;
	sqlite3_bind_text(r->alias, 1, address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->alias);
	if (rc == SQLITE_ROW) {
		char *targets = str_dup((const char *)sqlite3_column_text(r->alias, 0));
		sqlite3_reset(r->alias);
		bool any = dir_expand_targets(w, targets, depth);
		free(targets);
		return any;
	}
	sqlite3_reset(r->alias);
	if (rc != SQLITE_DONE) {
		w->failed = true;
		return false;
	}
	int user = dir_lookup_user(r, address);
	if (user < 0)
		w->failed = true;
	if (user == 1)
		dir_add(w, address);
	return user == 1;
}

/* dir_strip_tag - "user+tag@dom" to "user@dom" into buf; false if there is no tag. */
static bool dir_strip_tag(const char *address, const char *delimiter, char *buf, size_t size)
{
	const char *at = strrchr(address, '@');
	if (!delimiter[0] || !at)
		return false;
	size_t local_len = (size_t)(at - address);
	const char *tag = NULL;
	for (size_t i = 0; i < local_len; i++)
		if (strchr(delimiter, address[i])) {
			tag = address + i;
			break;
		}
	if (!tag || tag == address)
		return false;
	return str_format(buf, size, "%.*s%s", (int)(tag - address), address, at);
}

int store_dir_resolve(struct store_reader *reader, const char *address, const char *delimiter,
                      const char *postmaster_mailbox, char (*out)[STORE_ADDRESS_MAX], int max)
{
	struct dir_walk w = {.reader = reader, .out = out, .max = max};
	char stripped[STORE_ADDRESS_MAX];
	bool found = dir_expand(&w, address, 0);
	if (!found && !w.failed && dir_strip_tag(address, delimiter, stripped, sizeof stripped))
		found = dir_expand(&w, stripped, 0);
	bool is_postmaster = strncmp(address, "postmaster@", 11) == 0 && !strchr(address + 11, '@');
	if (!found && !w.failed && is_postmaster && postmaster_mailbox[0]) {
		/* RFC 5321 4.5.1: postmaster must always be accepted. */
		if (strcmp(address, postmaster_mailbox) == 0 || !dir_expand(&w, postmaster_mailbox, 0))
			dir_add(&w, postmaster_mailbox);
	}
	if (w.failed)
		return -1;
	return w.count;
}

int store_dir_secrets(struct store_reader *r, const char *address, struct store_user_secrets *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_bind_text(r->secrets, 1, address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->secrets);
	if (rc == SQLITE_ROW) {
		str_copy(out->password, sizeof out->password, (const char *)sqlite3_column_text(r->secrets, 0));
		str_copy(out->scram, sizeof out->scram, (const char *)sqlite3_column_text(r->secrets, 1));
		str_copy(out->cram, sizeof out->cram, (const char *)sqlite3_column_text(r->secrets, 2));
	}
	sqlite3_reset(r->secrets);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* sender_pattern_match - "addr" equal, or "@domain" equal to sender's domain. */
static bool sender_pattern_match(const char *pattern, size_t len, const char *sender)
{
	if (len > 0 && pattern[0] == '@') {
		const char *at = strrchr(sender, '@');
		return at && str_ieq(pattern, len, at);
	}
	return str_ieq(pattern, len, sender);
}

/* dir_sender_patterns - 1 if one of user's patterns matches sender, 0 if none, -1 on error. */
static int dir_sender_patterns(struct store_reader *r, const char *user, const char *sender)
{
	sqlite3_bind_text(r->senders, 1, user, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->senders);
	int found = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 0 : -1;
	if (rc == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(r->senders, 0);
		while (p && *p && found == 0) {
			size_t len = strcspn(p, ", ");
			if (len > 0 && sender_pattern_match(p, len, sender))
				found = 1;
			p += len;
			p += strspn(p, ", ");
		}
	}
	sqlite3_reset(r->senders);
	return found;
}

int store_dir_may_send_as(struct store_reader *r, const char *user, const char *sender, const char *delimiter)
{
	char boxes[STORE_ALIAS_DEPTH * 4][STORE_ADDRESS_MAX];
	int n = store_dir_resolve(r, sender, delimiter, "", boxes, (int)(sizeof boxes / sizeof boxes[0]));
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(boxes[i], user) == 0)
			return 1;
	return dir_sender_patterns(r, user, sender);
}

int store_dir_suppressed(struct store_reader *r, const char *address, uint64_t ttl_ms, int64_t now_ms)
{
	sqlite3_bind_text(r->suppressed, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->suppressed, 2, (sqlite3_int64)ttl_ms);
	sqlite3_bind_int64(r->suppressed, 3, now_ms - (int64_t)ttl_ms);
	int rc = sqlite3_step(r->suppressed);
	sqlite3_reset(r->suppressed);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}
