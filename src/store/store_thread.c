/*
 * store_thread.c - the store thread: group commit, delivery results, and
 * handing due recipients to delivery.
 *
 * One thread owns the write connection. Each turn it takes everything that
 * is waiting (messages to commit, delivery results) and writes it in one
 * transaction, so under load one fsync covers many messages. Only after
 * COMMIT returns are the sessions told (the 250 rests on this).
 *
 * Dispatch invariant: `cursor` is a message id such that every 'queued'
 * recipient of a message with id <= cursor is in flight (handed to delivery
 * and not yet reported back). New messages are handed over straight from
 * the commit while nothing is backlogged and fewer than max_inflight jobs
 * are out; otherwise they wait in the database and are loaded in id order
 * (the backlog), which also is how a restart recovers: the cursor starts at
 * 0. Deferred recipients whose time has come are set back to 'queued' and
 * dispatched in the same transaction.
 *
 * A failed transaction fails every message in it and keeps the delivery
 * results for the next turn. When the disk is full or failing (SQLite's
 * SQLITE_FULL or SQLITE_IOERR, a spool file's ENOSPC, EDQUOT, EFBIG or EIO)
 * the sessions answer 452 4.3.1, otherwise 451 4.3.0. Nothing of the turn
 * stays: SQLite rolls the transaction back (frames it appended to the WAL
 * past the last commit are never read), the turn's spool files are removed,
 * and the in-memory state (cursor, jobs in flight, lines for the log) is
 * changed only after COMMIT has returned. A connection that ROLLBACK could
 * not take out of the transaction is replaced by a fresh one.
 *
 * Free space: a write that failed for lack of space (or with an I/O
 * error), or free space under
 * queue_min_free (statvfs at most once a second), makes store_space_ok say
 * no, which the sessions answer at MAIL with 452 4.3.1 (as Postfix does
 * with queue_minfree); it says yes again by itself once space comes back.
 * A failing write is logged once per episode, with its file and errno,
 * and once when writes work again.
 *
 * A recipient in another domain that fails for good because its address
 * does not exist goes on the suppression list in the transaction that marks
 * it bounced (store_suppress.c says which replies count). Bounced
 * recipients stay visible until bounce_retention has passed; then they go,
 * with their message once it has none left, in small transactions at most
 * once a minute (store_prune), so that pruning never holds the writer long.
 *
 * A user's SCRAM-SHA-256 secret made at login (store_user_add_scram) is
 * written in a transaction of its own after the turn's, so that it can
 * never fail a turn's messages.
 */
#include "msg/msg_dsn.h"
#include "store/store.h"
#include "store/store_bounce.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "msg/msg_dsn.h"
#include "store/store_db.h"
#include "store/store_notice.h"
#include "store/store_route.h"
#include "store/store_spool.h"
#include "store/store_suppress.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define STORE_SPILL_CHUNK    65536
#define STORE_IDLE_WAKE_MS   1000
#define STORE_FAIL_PAUSE_MS  1000
#define STORE_PRUNE_BATCH    500
#define STORE_PRUNE_EVERY_MS 60000
#define STORE_SPACE_EVERY_MS 1000
/* After a write failed for lack of space, MAIL is refused until this much
 * more is free, or until STORE_SPACE_RETRY_MS have passed: a disk that is
 * nearly full may still take smaller messages, and one failure in that
 * time is cheaper than refusing everything. */
#define STORE_SPACE_REGAIN   (1024 * 1024)
#define STORE_SPACE_RETRY_MS 30000
#define STORE_NOTE_MAX       1024

/* Why the writer's last transaction failed: the first error of the turn. */
struct store_fault {
	int rc;          /* SQLite's extended result code; 0 for a spool file */
	int err;         /* errno, where known; 0 otherwise */
	char file[4200]; /* what could not be written */
	char text[256];
};

/* A log line about what a transaction wrote, logged only once it commits. */
struct store_note {
	enum log_level level;
	char line[STORE_NOTE_MAX];
};

struct store {
	struct store_settings settings;
	char *data_dir;
	sqlite3 *db;
	pthread_t thread;
	bool thread_started;

	/* Shared with other threads, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct store_message *commits, **commits_tail;
	struct delivery_job *results, **results_tail;
	struct store_scram *scrams; /* from store_user_add_scram, in any order */
	struct store_message *done, **done_tail;
	bool stopping;
	struct store_policy next_policy; /* from store_set_policy, taken at the next turn */
	bool policy_changed;
	void *next_routes; /* from store_set_routes, taken at the next turn */
	bool routes_changed, reroute;

	/* Loop thread side. */
	struct event *done_event;
	store_commit_done *done_cb;
	void *done_arg;
	store_dispatch *dispatch;
	void *dispatch_arg;

	/* Store thread only. */
	int64_t cursor;
	bool backlog;
	size_t inflight;
	int64_t next_retry_ms;
	uint64_t rng;
	uint64_t jitter_key;      /* random per process: retry times are not predictable from outside */
	int64_t seen_version;     /* PRAGMA data_version last seen: others' commits change it */
	int64_t seen_action;      /* the last queue_log row logged */
	int64_t next_prune_ms;    /* when store_prune looks for old bounced recipients again */
	struct store_reader *dir; /* directory lookups for bounces */
	struct store_routing routing;
	struct store_spool *spool;
	/* Spool files whose rows this transaction deletes: removed once it commits. */
	char (*doomed)[ID_LEN + 1];
	size_t doomed_count, doomed_cap;
	/* Lines about the turn's results (deferred, bounced, ...), logged after COMMIT:
	 * a turn rolled back and tried again every second on a full disk logs nothing. */
	struct store_note *notes;
	size_t note_count, note_cap;
	struct store_fault fault;         /* the current transaction's first error */
	struct log_episode write_episode; /* failed commits, logged once per episode */

	/* Free space (store_space_ok): written here, read by the loop thread. */
	_Atomic uint64_t space_free;    /* bytes tern may use on DATA_DIR's file system; UINT64_MAX: unknown */
	atomic_bool space_failed;       /* a write failed (full or failing disk), and no room came back since */
	_Atomic uint64_t space_reserve; /* policy.queue_min_free as the loop thread set it last */
	int64_t space_next_ms;          /* monotonic: when store_watch_space measures again */
	int64_t space_failed_ms;        /* monotonic: when space_failed was set */
	uint64_t space_failed_free;     /* the free space measured then */
	bool space_low;                 /* under the reserve at the last measure (logged when it changes) */
	sqlite3_stmt *insert_message, *insert_rcpt, *delete_rcpt, *defer_rcpt, *fail_rcpt, *delete_message,
	        *backlog_messages, *message_row, *queued_rcpts, *rcpt_row, *due_rcpts, *requeue_rcpt, *min_retry,
	        *insert_attempt, *data_version, *new_actions, *suppress, *prune_pick, *prune_attempts,
	        *expire_suppressions, *insert_notice, *insert_notice_rcpt, *settle_notice;
	struct store_notices *notices; /* the composer (store_notice.c) */
	bool notices_owed;             /* this turn owes new notices: wake the composer after COMMIT */
};

/* A SCRAM-SHA-256 secret to store for a user who has none (store_user_add_scram). */
struct store_scram {
	struct store_scram *next;
	char *address;
	char *password_hash; /* only if the password is still the one the secret was made from */
	char *scram;
	bool made; /* the update changed the row */
};

static void store_scram_free(struct store_scram *sc)
{
	free(sc->address);
	free(sc->password_hash);
	OPENSSL_cleanse(sc->scram, strlen(sc->scram));
	free(sc->scram);
	free(sc);
}

void store_message_free(struct store_message *msg)
{
	if (!msg)
		return;
	for (size_t i = 0; i < msg->rcpt_count; i++) {
		free(msg->rcpts[i].address);
		free(msg->rcpts[i].mailbox);
		free(msg->rcpts[i].route_key);
		free(msg->rcpts[i].orcpt);
	}
	free(msg->rcpts);
	free(msg->sender);
	free(msg->envid);
	free(msg->notice_log);
	if (msg->body)
		evbuffer_free(msg->body);
	if (msg->spill_fd >= 0)
		close(msg->spill_fd);
	free(msg);
}

void store_job_free(struct delivery_job *job)
{
	if (!job)
		return;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		free(job->rcpts[i].address);
		free(job->rcpts[i].mailbox);
		free(job->rcpts[i].route_key);
		free(job->rcpts[i].orcpt);
	}
	free(job->rcpts);
	free(job->sender);
	free(job->envid);
	if (job->body)
		evbuffer_free(job->body);
	free(job);
}

/* ---- Statements ---- */

static void store_prepare_all(struct store *s)
{
	sqlite3 *db = s->db;
	s->insert_message =
	        store_db_prepare(db, "INSERT INTO messages(qid, sender, arrival_ms, size, body, ret_hdrs, envid,"
	                             " spooled) VALUES(?,?,?,?,?,?,?,?)");
	s->insert_rcpt =
	        store_db_prepare(db, "INSERT INTO recipients(msg_id, address, mailbox, notify, orcpt, route, route_key)"
	                             " VALUES(?,?,?,?,?,?,?)");
	s->delete_rcpt = store_db_prepare(db, "DELETE FROM recipients WHERE id=?");
	/* A recipient an operator held while an attempt was under way stays held. */
	s->defer_rcpt = store_db_prepare(db, "UPDATE recipients SET state=CASE state WHEN 'held' THEN 'held'"
	                                     " ELSE 'deferred' END, attempts=attempts+1,"
	                                     " next_attempt_ms=?, last_error=?, warned=warned OR ? WHERE id=?");
	s->fail_rcpt = store_db_prepare(db, "UPDATE recipients SET state='bounced', attempts=attempts+1,"
	                                    " last_error=?1, bounced_ms=?3 WHERE id=?2");
	s->delete_message = store_db_prepare(db, "DELETE FROM messages WHERE id=?1 AND NOT EXISTS"
	                                         " (SELECT 1 FROM recipients WHERE msg_id=?1) AND NOT EXISTS"
	                                         " (SELECT 1 FROM notices WHERE msg_id=?1) RETURNING qid, spooled");
	s->insert_notice = store_db_prepare(db, "INSERT INTO notices(msg_id, kind, made_ms, retry_until_ms)"
	                                        " VALUES(?,?,?,?)");
	s->insert_notice_rcpt = store_db_prepare(db, "INSERT INTO notice_rcpts(notice_id, address, orcpt, error,"
	                                             " relayed) VALUES(?,?,?,?,?)");
	s->settle_notice = store_db_prepare(db, "DELETE FROM notices WHERE id=?");
	s->backlog_messages = store_db_prepare(db, "SELECT DISTINCT msg_id FROM recipients WHERE state='queued'"
	                                           " AND msg_id>? ORDER BY msg_id LIMIT ?");
	s->message_row =
	        store_db_prepare(db, "SELECT qid, sender, arrival_ms, ret_hdrs, envid FROM messages WHERE id=?");
	s->queued_rcpts =
	        store_db_prepare(db, "SELECT id, address, mailbox, attempts, notify, orcpt, warned, route, route_key"
	                             " FROM recipients"
	                             " WHERE msg_id=? AND state='queued'");
	s->rcpt_row =
	        store_db_prepare(db, "SELECT id, address, mailbox, attempts, notify, orcpt, warned, route, route_key"
	                             " FROM recipients WHERE id=?");
	s->due_rcpts = store_db_prepare(db, "SELECT id, msg_id FROM recipients WHERE state='deferred'"
	                                    " AND next_attempt_ms<=? ORDER BY msg_id LIMIT ?");
	s->requeue_rcpt = store_db_prepare(db, "UPDATE recipients SET state='queued' WHERE id=?");
	s->min_retry = store_db_prepare(db, "SELECT MIN(next_attempt_ms) FROM recipients WHERE state='deferred'");
	s->insert_attempt = store_db_prepare(db, "INSERT INTO attempts(msg_id, rcpt_id, at_ms, outcome, reply)"
	                                         " VALUES(?,?,?,?,?)");
	s->data_version = store_db_prepare(db, "PRAGMA data_version");
	s->new_actions = store_db_prepare(db, "SELECT id, who, action, target, rcpts FROM queue_log WHERE id>?"
	                                      " ORDER BY id");
	/* A later bounce renews an entry a bounce made; one an operator made stays as it is. */
	s->suppress = store_db_prepare(db, "INSERT INTO suppressions(address, reason, source, source_qid, added_ms)"
	                                   " VALUES(?1, ?2, 'bounce', ?3, ?4) ON CONFLICT(address) DO UPDATE SET"
	                                   " reason=excluded.reason, source_qid=excluded.source_qid,"
	                                   " added_ms=excluded.added_ms WHERE source='bounce'");
	s->prune_pick = store_db_prepare(db, "SELECT id, msg_id FROM recipients WHERE state='bounced'"
	                                     " AND bounced_ms<=? ORDER BY bounced_ms LIMIT ?");
	s->prune_attempts = store_db_prepare(db, "DELETE FROM attempts WHERE msg_id=? AND rcpt_id=?");
	s->expire_suppressions = store_db_prepare(db, "DELETE FROM suppressions WHERE rowid IN (SELECT rowid"
	                                              " FROM suppressions WHERE source='bounce' AND added_ms<=?"
	                                              " LIMIT ?)");
}

static void store_finalize_all(struct store *s)
{
	sqlite3_stmt *all[] = {s->insert_message, s->insert_rcpt,        s->delete_rcpt,      s->defer_rcpt,
	                       s->fail_rcpt,      s->delete_message,     s->backlog_messages, s->message_row,
	                       s->queued_rcpts,   s->rcpt_row,           s->due_rcpts,        s->requeue_rcpt,
	                       s->min_retry,      s->insert_attempt,     s->data_version,     s->new_actions,
	                       s->suppress,       s->prune_pick,         s->prune_attempts,   s->expire_suppressions,
	                       s->insert_notice,  s->insert_notice_rcpt, s->settle_notice};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
}

/* ---- Failures of the writer ---- */

/* store_rc_storage - is this SQLite result the disk's doing: full, or an I/O error? */
static bool store_rc_storage(int rc)
{
	return (rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR;
}

/* store_errno_space - no room: a full file system, a quota, a file size limit. */
static bool store_errno_space(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EFBIG;
}

/* store_fault_storage - the disk's fault (452 4.3.1), not a bug or a lock (451 4.3.0). */
static bool store_fault_storage(const struct store_fault *f)
{
	return store_rc_storage(f->rc) || store_errno_space(f->err) || f->err == EIO || f->err == EROFS;
}

/* store_db_fault - the writer's last error is the turn's fault, unless an earlier one is. */
static void store_db_fault(struct store *s)
{
	struct store_fault *f = &s->fault;
	if (f->rc != 0 || f->err != 0)
		return;
	f->rc = sqlite3_extended_errcode(s->db);
	f->err = sqlite3_system_errno(s->db);
	str_format(f->file, sizeof f->file, "%s/queue.db", s->data_dir);
	str_copy(f->text, sizeof f->text, sqlite3_errmsg(s->db));
}

/* store_file_fault - file (a spool file) could not be written: errno err. */
static void store_file_fault(struct store *s, const char *file, int err)
{
	struct store_fault *f = &s->fault;
	if (f->rc != 0 || f->err != 0)
		return;
	f->err = err ? err : EIO;
	str_copy(f->file, sizeof f->file, file);
	str_copy(f->text, sizeof f->text, strerror(f->err));
}

/* store_exec - sql on the writer; a failure becomes the turn's fault, which
 * store_write_failed logs once per episode (not once per statement). */
static bool store_exec(struct store *s, const char *sql)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return true;
	store_db_fault(s);
	return false;
}

/* store_begin - a write transaction, its fault not yet known. */
static bool store_begin(struct store *s)
{
	memset(&s->fault, 0, sizeof s->fault);
	return store_exec(s, "BEGIN IMMEDIATE");
}

/* store_step_failed - a statement failed with rc: a full or failing disk is
 * the turn's fault, logged with it; anything else is a bug, logged now. */
static void store_step_failed(struct store *s, int rc)
{
	store_db_fault(s);
	if (!store_rc_storage(rc))
		log_error("event=db_error error=\"%s\"", sqlite3_errmsg(s->db));
}

/* store_step_done - run a statement that returns no rows, then reset it. */
static bool store_step_done(struct store *s, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE)
		store_step_failed(s, rc);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return rc == SQLITE_DONE;
}

static bool store_db_changed(struct store *s);

/*
 * store_reconnect - the writer could not leave a failed transaction (its
 * ROLLBACK failed too): close it, which gives up the transaction and its
 * lock, and open a fresh connection. The database is then as the last
 * COMMIT left it: WAL frames past the last commit frame are never read.
 */
static void store_reconnect(struct store *s)
{
	store_finalize_all(s);
	sqlite3_close_v2(s->db);
	char err[512] = "";
	for (int tries = 0; tries < 10; tries++) {
		s->db = store_db_open(s->data_dir, true, err, sizeof err);
		if (s->db) {
			store_prepare_all(s);
			store_db_changed(s);
			s->backlog = true; /* what the database holds is read again; the cursor stands */
			log_warning("event=db_reopened reason=\"a failed transaction could not be rolled back\"");
			return;
		}
		log_error("event=db_reopen_failed error=\"%s\"", err);
		usleep(STORE_FAIL_PAUSE_MS * 1000);
	}
	fatal("cannot open the queue database again: %s", err);
}

/* store_rollback - end a failed transaction, unless SQLite already did
 * (it rolls back by itself on some errors, such as a full disk). */
static void store_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (!sqlite3_get_autocommit(s->db))
		store_reconnect(s);
}

/* store_measure_free - bytes an unprivileged writer may still use on DATA_DIR's file system; UINT64_MAX if unknown. */
static uint64_t store_measure_free(const struct store *s)
{
	struct statvfs st;
	if (statvfs(s->data_dir, &st) != 0)
		return UINT64_MAX;
	return (uint64_t)st.f_bavail * st.f_frsize;
}

/* store_space_short - a write failed for lack of space (or the disk failed): MAIL is refused until room comes back. */
static void store_space_short(struct store *s)
{
	s->space_failed_ms = time_mono_ms();
	s->space_failed_free = store_measure_free(s);
	atomic_store(&s->space_free, s->space_failed_free);
	atomic_store(&s->space_failed, true);
}

/* store_space_back - writing messages works again, or space came back. */
static void store_space_back(struct store *s, uint64_t free_bytes)
{
	if (!atomic_exchange(&s->space_failed, false))
		return;
	if (free_bytes == UINT64_MAX)
		log_info("event=disk_space_returned");
	else
		log_info("event=disk_space_returned free=%llu", (unsigned long long)free_bytes);
}

/*
 * store_write_failed - a transaction of the writer failed (s->fault says
 * why) and was rolled back. A full or failing disk makes MAIL wait for
 * room (store_space_ok). Logged once per episode; the repeats are counted
 * and the end is logged by store_write_ok.
 */
static void store_write_failed(struct store *s, const char *turn, size_t messages)
{
	const struct store_fault *f = &s->fault;
	if (store_fault_storage(f))
		store_space_short(s);
	if (!log_episode_fail(&s->write_episode, 0))
		return;
	/* SQLite reports a full disk as SQLITE_FULL without an errno, and an I/O
	 * error with the errno only when nothing overwrote it since: its code then. */
	int err = f->err ? f->err : (f->rc & 0xff) == SQLITE_FULL ? ENOSPC : 0;
	char file[LOG_QUOTE_MAX];
	log_error("event=commit_failed turn=%s messages=%zu file=%s errno=%s sqlite_code=%d error=\"%s\"", turn,
	          messages, log_quote(file, sizeof file, f->file, strlen(f->file)), err ? log_errno_name(err) : "none",
	          f->rc, f->text[0] ? f->text : "unknown");
}

/* store_write_ok - a transaction committed; with messages in it, there is room for messages again. */
static void store_write_ok(struct store *s, bool messages)
{
	log_episode_ok(&s->write_episode, 0);
	if (messages)
		store_space_back(s, UINT64_MAX);
}

/*
 * store_watch_space - at most once a second: the free space for
 * store_space_ok, the end of a shortage that a failed write began, and a
 * line when the free space falls under the reserve or comes back over it.
 */
static void store_watch_space(struct store *s)
{
	int64_t now = time_mono_ms();
	if (now < s->space_next_ms)
		return;
	s->space_next_ms = now + STORE_SPACE_EVERY_MS;
	uint64_t free_bytes = store_measure_free(s);
	atomic_store(&s->space_free, free_bytes);
	if (atomic_load(&s->space_failed) && (free_bytes == UINT64_MAX || s->space_failed_free == UINT64_MAX ||
	                                      free_bytes >= s->space_failed_free + STORE_SPACE_REGAIN ||
	                                      now - s->space_failed_ms >= STORE_SPACE_RETRY_MS))
		store_space_back(s, free_bytes);
	uint64_t reserve = s->settings.policy.queue_min_free;
	bool low = reserve > 0 && free_bytes < reserve;
	if (low == s->space_low)
		return;
	s->space_low = low;
	if (low)
		log_warning("event=disk_low file=\"%s\" free=%llu queue_min_free=%llu reply=\"452 4.3.1\"", s->data_dir,
		            (unsigned long long)free_bytes, (unsigned long long)reserve);
	else
		log_info("event=disk_ok file=\"%s\" free=%llu queue_min_free=%llu", s->data_dir,
		         (unsigned long long)free_bytes, (unsigned long long)reserve);
}

/* ---- Log lines of a transaction ---- */

/* store_note - a line about what the current transaction writes, logged if it commits. */
__attribute__((format(printf, 3, 4))) static void store_note(struct store *s, enum log_level level, const char *fmt,
                                                             ...)
{
	if (!log_level_enabled(level))
		return;
	if (s->note_count == s->note_cap) {
		s->note_cap = s->note_cap ? s->note_cap * 2 : 16;
		s->notes = xrealloc(s->notes, s->note_cap * sizeof *s->notes);
	}
	struct store_note *n = &s->notes[s->note_count++];
	n->level = level;
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(n->line, sizeof n->line, fmt, ap);
	va_end(ap);
	if (len < 0)
		n->line[0] = '\0';
}

/* store_notes_settle - after COMMIT the lines are logged; after a rollback they never happened. */
static void store_notes_settle(struct store *s, bool committed)
{
	for (size_t i = 0; committed && i < s->note_count; i++)
		log_write(s->notes[i].level, "%s", s->notes[i].line);
	s->note_count = 0;
}

/* ---- Spool files ---- */

/* store_doom - message qid's spool file goes once the transaction deleting its row commits. */
static void store_doom(struct store *s, const char *qid)
{
	if (s->doomed_count == s->doomed_cap) {
		s->doomed_cap = s->doomed_cap ? s->doomed_cap * 2 : 64;
		s->doomed = xrealloc(s->doomed, s->doomed_cap * sizeof *s->doomed);
	}
	str_copy(s->doomed[s->doomed_count++], ID_LEN + 1, qid);
}

/* store_doomed_settle - after COMMIT (committed) the doomed files go; after a rollback they stay. */
static void store_doomed_settle(struct store *s, bool committed)
{
	for (size_t i = 0; committed && i < s->doomed_count; i++)
		store_spool_remove(s->spool, s->doomed[i]);
	s->doomed_count = 0;
}

/*
 * store_spool_batch - the bodies of STORE_SPOOL_MIN octets or more go into
 * spool files, made durable together before the rows naming them commit.
 */
static bool store_spool_batch(struct store *s, struct store_message *commits)
{
	char file[4200];
	bool any = false;
	for (struct store_message *m = commits; m; m = m->next) {
		if (m->size < STORE_SPOOL_MIN)
			continue;
		if (!store_spool_write(s->spool, m->qid, m->body, m->spill_fd, m->size)) {
			int err = errno;
			str_format(file, sizeof file, "%s/spool/%s", s->data_dir, m->qid);
			store_file_fault(s, file, err);
			return false;
		}
		m->spooled = any = true;
	}
	if (!any || store_spool_sync(s->spool))
		return true;
	int err = errno;
	str_format(file, sizeof file, "%s/spool", s->data_dir);
	store_file_fault(s, file, err);
	return false;
}

/* store_unspool - the batch failed: its files name no row. */
static void store_unspool(struct store *s, struct store_message *commits)
{
	for (struct store_message *m = commits; m; m = m->next) {
		if (m->spooled)
			store_spool_remove(s->spool, m->qid);
		m->spooled = false;
	}
}

/* store_delete_message - the message goes if no recipient is left (*deleted says if it did), its file after COMMIT. */
static bool store_delete_message(struct store *s, int64_t msg_id, bool *deleted)
{
	sqlite3_stmt *st = s->delete_message;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc;
	*deleted = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*deleted = true;
		if (sqlite3_column_int(st, 1))
			store_doom(s, (const char *)sqlite3_column_text(st, 0));
	}
	if (rc != SQLITE_DONE)
		store_step_failed(s, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE;
}

/* ---- Committing messages ---- */

static bool store_copy_spill(struct store *s, struct store_message *msg, sqlite3_int64 rowid)
{
	sqlite3_blob *blob = NULL;
	if (sqlite3_blob_open(s->db, "main", "messages", "body", rowid, 1, &blob) != SQLITE_OK) {
		sqlite3_blob_close(blob);
		return false;
	}
	char *chunk = xmalloc(STORE_SPILL_CHUNK);
	uint64_t done = 0;
	bool ok = true;
	while (ok && done < msg->size) {
		size_t want = msg->size - done < STORE_SPILL_CHUNK ? (size_t)(msg->size - done) : STORE_SPILL_CHUNK;
		ssize_t n = pread(msg->spill_fd, chunk, want, (off_t)done);
		ok = n > 0 && sqlite3_blob_write(blob, chunk, (int)n, (int)done) == SQLITE_OK;
		done += n > 0 ? (uint64_t)n : 0;
	}
	free(chunk);
	sqlite3_blob_close(blob);
	return ok;
}

static bool store_insert_message(struct store *s, struct store_message *msg, int64_t *msg_id, int64_t *rcpt_ids)
{
	sqlite3_stmt *st = s->insert_message;
	sqlite3_bind_text(st, 1, msg->qid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, msg->sender, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, msg->arrival_ms);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)msg->size);
	if (msg->spooled)
		sqlite3_bind_zeroblob(st, 5, 0);
	else if (msg->spill_fd >= 0)
		sqlite3_bind_zeroblob64(st, 5, msg->size);
	else
		sqlite3_bind_blob64(st, 5, evbuffer_pullup(msg->body, -1), msg->size, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, msg->ret_hdrs);
	if (msg->envid)
		sqlite3_bind_text(st, 7, msg->envid, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int(st, 8, msg->spooled);
	if (!store_step_done(s, st))
		return false;
	*msg_id = sqlite3_last_insert_rowid(s->db);
	if (msg->spill_fd >= 0 && !msg->spooled && !store_copy_spill(s, msg, *msg_id))
		return false;
	for (size_t i = 0; i < msg->rcpt_count; i++) {
		sqlite3_bind_int64(s->insert_rcpt, 1, *msg_id);
		sqlite3_bind_text(s->insert_rcpt, 2, msg->rcpts[i].address, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->insert_rcpt, 3, msg->rcpts[i].mailbox, -1, SQLITE_STATIC);
		sqlite3_bind_int(s->insert_rcpt, 4, (int)msg->rcpts[i].notify);
		if (msg->rcpts[i].orcpt)
			sqlite3_bind_text(s->insert_rcpt, 5, msg->rcpts[i].orcpt, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s->insert_rcpt, 5);
		sqlite3_bind_text(s->insert_rcpt, 6, store_route_name(msg->rcpts[i].route), -1, SQLITE_STATIC);
		if (msg->rcpts[i].route_key)
			sqlite3_bind_text(s->insert_rcpt, 7, msg->rcpts[i].route_key, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s->insert_rcpt, 7);
		if (!store_step_done(s, s->insert_rcpt))
			return false;
		rcpt_ids[i] = sqlite3_last_insert_rowid(s->db);
	}
	return true;
}

/*
 * store_insert_notice - a notice the composer made: the owed row goes, and
 * the notice is queued in its place (routed here, like a recipient at
 * RCPT); the message it was about goes too if nothing else keeps it.
 * *stale: the owed row was gone already (this is a second copy, or an
 * operator deleted the message), so nothing was queued.
 */
static bool store_insert_notice(struct store *s, struct store_message *msg, int64_t *msg_id, int64_t *rcpt_ids,
                                bool *stale)
{
	sqlite3_bind_int64(s->settle_notice, 1, msg->notice_id);
	if (!store_step_done(s, s->settle_notice))
		return false;
	*stale = sqlite3_changes(s->db) == 0;
	if (*stale && msg->spooled)
		store_doom(s, msg->qid);
	if (*stale || msg->rcpt_count == 0)
		return true;
	for (size_t i = 0; i < msg->rcpt_count; i++)
		store_route_address(&s->routing, s->dir, msg->rcpts[i].address, &msg->rcpts[i]);
	bool deleted;
	return store_insert_message(s, msg, msg_id, rcpt_ids) && store_delete_message(s, msg->notice_of, &deleted);
}

/* store_job_from_message - a delivery job for a message just committed; takes its body. */
static struct delivery_job *store_job_from_message(struct store_message *msg, int64_t msg_id, const int64_t *ids)
{
	struct delivery_job *job = xcalloc(1, sizeof *job);
	job->msg_id = msg_id;
	memcpy(job->qid, msg->qid, sizeof job->qid);
	job->sender = str_dup(msg->sender);
	job->ret_hdrs = msg->ret_hdrs;
	job->envid = msg->envid ? str_dup(msg->envid) : NULL;
	job->arrival_ms = msg->arrival_ms;
	if (msg->spill_fd < 0) {
		job->body = msg->body;
		msg->body = NULL;
	}
	job->rcpt_count = msg->rcpt_count;
	job->rcpts = xcalloc(msg->rcpt_count, sizeof *job->rcpts);
	for (size_t i = 0; i < msg->rcpt_count; i++) {
		job->rcpts[i].id = ids[i];
		job->rcpts[i].address = str_dup(msg->rcpts[i].address);
		job->rcpts[i].route = msg->rcpts[i].route;
		job->rcpts[i].mailbox = str_dup(msg->rcpts[i].mailbox);
		job->rcpts[i].route_key = msg->rcpts[i].route_key ? str_dup(msg->rcpts[i].route_key) : NULL;
		job->rcpts[i].notify = msg->rcpts[i].notify;
		job->rcpts[i].orcpt = msg->rcpts[i].orcpt ? str_dup(msg->rcpts[i].orcpt) : NULL;
	}
	return job;
}

/* ---- Delivery results ---- */

static uint64_t store_random(struct store *s)
{
	/* xorshift64: jitter only needs to spread retries, not be secret. */
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/* store_backoff_ms - retry_initial doubled per attempt up to retry_max, +-25% jitter. */
static int64_t store_backoff_ms(struct store *s, int64_t msg_id, int64_t attempts)
{
	uint64_t delay = time_backoff_ms(s->settings.policy.retry_initial_ms, s->settings.policy.retry_max_ms,
	                                 attempts > 0 ? (uint64_t)attempts : 1);
	/* The jitter depends on the message and the attempt, not on the
	 * recipient: recipients of one message deferred together come due
	 * together and go out again in one transaction. */
	uint64_t h = s->jitter_key ^ ((uint64_t)msg_id * 0x9e3779b97f4a7c15ull) ^ (uint64_t)attempts;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	uint64_t span = delay / 2;
	uint64_t jitter = span ? h % (span + 1) : 0;
	return (int64_t)(delay - delay / 4 + jitter);
}

/* store_note_attempt - a failed attempt and its reply, for `tern queue show`. */
static bool store_note_attempt(struct store *s, const struct delivery_job *job, const struct delivery_rcpt *r,
                               int64_t now, const char *outcome)
{
	sqlite3_bind_int64(s->insert_attempt, 1, job->msg_id);
	sqlite3_bind_int64(s->insert_attempt, 2, r->id);
	sqlite3_bind_int64(s->insert_attempt, 3, now);
	sqlite3_bind_text(s->insert_attempt, 4, outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->insert_attempt, 5, r->error, -1, SQLITE_STATIC);
	return store_step_done(s, s->insert_attempt);
}

/*
 * store_suppress - a recipient in another domain failed for good: put its
 * address on the suppression list if the reason says it does not exist.
 * Local recipients never go there (their addresses are tern's own), nor do
 * recipients that merely expired.
 */
static bool store_suppress(struct store *s, const struct delivery_job *job, const struct delivery_rcpt *r, int64_t now)
{
	char status[SUPPRESS_STATUS_MAX];
	if (!s->settings.policy.suppression || r->status != DELIVERY_PERMFAIL || STORE_ROUTE_IS_LOCAL(r->route) ||
	    !suppress_hard_bounce(r->error, status, sizeof status))
		return true;
	sqlite3_bind_text(s->suppress, 1, r->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->suppress, 2, r->error, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->suppress, 3, job->qid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->suppress, 4, now);
	if (!store_step_done(s, s->suppress))
		return false;
	/* No change: an operator listed the address already, and their entry stays as it is. */
	char q[LOG_QUOTE_MAX];
	store_note(s, LOG_LEVEL_INFO, "event=%s qid=%s rcpt_id=%lld to=%s status=%s",
	           sqlite3_changes(s->db) == 0 ? "suppression_listed_by_hand" : "suppression_added", job->qid,
	           (long long)r->id, log_quote(q, sizeof q, r->address, strlen(r->address)), status);
	return true;
}

/*
 * store_apply_rcpt - write one recipient's result. *bounced and *warned say
 * whether a bounce or a delay warning is owed; neither is when the
 * recipient is gone (an operator deleted the message during the attempt).
 */
static bool store_apply_rcpt(struct store *s, const struct delivery_job *job, const struct delivery_rcpt *r,
                             int64_t now, bool *bounced, bool *warned)
{
	*bounced = *warned = false;
	if (r->status == DELIVERY_OK) {
		sqlite3_bind_int64(s->delete_rcpt, 1, r->id);
		return store_step_done(s, s->delete_rcpt);
	}
	bool expired = now - job->arrival_ms >= (int64_t)s->settings.policy.max_queue_lifetime_ms;
	if (r->status == DELIVERY_PERMFAIL || expired) {
		sqlite3_bind_text(s->fail_rcpt, 1, r->error, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->fail_rcpt, 2, r->id);
		sqlite3_bind_int64(s->fail_rcpt, 3, now);
		if (!store_step_done(s, s->fail_rcpt))
			return false;
		if (sqlite3_changes(s->db) == 0)
			return true;
		store_note(s, LOG_LEVEL_WARNING, "event=%s qid=%s rcpt_id=%lld error=\"%s\"",
		           expired ? "expired" : "failed", job->qid, (long long)r->id, r->error);
		*bounced = true;
		return store_note_attempt(s, job, r, now, "bounced") && store_suppress(s, job, r, now);
	}
	int64_t next = now + store_backoff_ms(s, job->msg_id, r->attempts + 1);
	bool warn = !r->warned && s->settings.policy.delay_warning_ms > 0 &&
	            now - job->arrival_ms >= (int64_t)s->settings.policy.delay_warning_ms;
	sqlite3_bind_int64(s->defer_rcpt, 1, next);
	sqlite3_bind_text(s->defer_rcpt, 2, r->error, -1, SQLITE_STATIC);
	sqlite3_bind_int(s->defer_rcpt, 3, warn);
	sqlite3_bind_int64(s->defer_rcpt, 4, r->id);
	if (!store_step_done(s, s->defer_rcpt))
		return false;
	if (sqlite3_changes(s->db) == 0)
		return true;
	if (next < s->next_retry_ms)
		s->next_retry_ms = next;
	*warned = warn;
	store_note(s, LOG_LEVEL_INFO, "event=deferred qid=%s rcpt_id=%lld attempts=%lld retry_in_s=%lld error=\"%s\"",
	           job->qid, (long long)r->id, (long long)r->attempts + 1, (long long)(next - now) / 1000, r->error);
	return store_note_attempt(s, job, r, now, "deferred");
}

/*
 * store_owe_notice - in the same transaction as the results: what the
 * sender must be told (the notice's kind and each recipient's reason),
 * so that a crash can neither lose it nor send it twice. The composer
 * (store_notice.c) writes the message later, outside this transaction.
 */
static bool store_owe_notice(struct store *s, const struct delivery_job *job, const struct delivery_rcpt **rcpts,
                             size_t count, int64_t now, enum dsn_action kind)
{
	static const char *const kinds[] = {
	        [DSN_FAILED] = "failed",
	        [DSN_DELAYED] = "delayed",
	        [DSN_DELIVERED] = "delivered",
	};
	/* RFC 5321 6.1: nothing goes back to the null sender. */
	if (job->sender[0] == '\0')
		return true;
	sqlite3_bind_int64(s->insert_notice, 1, job->msg_id);
	sqlite3_bind_text(s->insert_notice, 2, kinds[kind], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->insert_notice, 3, now);
	sqlite3_bind_int64(s->insert_notice, 4, job->arrival_ms + (int64_t)s->settings.policy.max_queue_lifetime_ms);
	if (!store_step_done(s, s->insert_notice))
		return false;
	int64_t notice_id = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < count; i++) {
		sqlite3_stmt *st = s->insert_notice_rcpt;
		sqlite3_bind_int64(st, 1, notice_id);
		sqlite3_bind_text(st, 2, rcpts[i]->address, -1, SQLITE_STATIC);
		if (rcpts[i]->orcpt)
			sqlite3_bind_text(st, 3, rcpts[i]->orcpt, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 3);
		sqlite3_bind_text(st, 4, rcpts[i]->error, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, kind == DSN_DELIVERED && rcpts[i]->success == SUCCESS_RELAYED);
		if (!store_step_done(s, st))
			return false;
	}
	s->notices_owed = true;
	return true;
}

static bool store_apply_job(struct store *s, const struct delivery_job *job, int64_t now)
{
	size_t n = job->rcpt_count ? job->rcpt_count : 1;
	const struct delivery_rcpt **failed = xcalloc(n, sizeof *failed), **delayed = xcalloc(n, sizeof *delayed),
	                           **done = xcalloc(n, sizeof *done);
	size_t failed_count = 0, delayed_count = 0, done_count = 0;
	bool ok = true;
	for (size_t i = 0; ok && i < job->rcpt_count; i++) {
		bool bounced = false, warn = false;
		const struct delivery_rcpt *r = &job->rcpts[i];
		ok = store_apply_rcpt(s, job, r, now, &bounced, &warn);
		/* RFC 3461 4.1: a NOTIFY list without FAILURE (or DELAY), or NEVER, wants no such report. */
		if (bounced && STORE_NOTIFY_WANTS(r->notify, STORE_NOTIFY_FAILURE))
			failed[failed_count++] = r;
		if (warn && STORE_NOTIFY_WANTS(r->notify, STORE_NOTIFY_DELAY))
			delayed[delayed_count++] = r;
		if (r->status == DELIVERY_OK && r->success != SUCCESS_PASSED_ON &&
		    STORE_NOTIFY_WANTS(r->notify, STORE_NOTIFY_SUCCESS))
			done[done_count++] = r;
	}
	if (ok && failed_count > 0)
		ok = store_owe_notice(s, job, failed, failed_count, now, DSN_FAILED);
	if (ok && delayed_count > 0)
		ok = store_owe_notice(s, job, delayed, delayed_count, now, DSN_DELAYED);
	if (ok && done_count > 0)
		ok = store_owe_notice(s, job, done, done_count, now, DSN_DELIVERED);
	free(failed);
	free(delayed);
	free(done);
	if (!ok)
		return false;
	bool deleted;
	return store_delete_message(s, job->msg_id, &deleted);
}

/* ---- Loading jobs from the database (backlog, recovery, retries) ---- */

/* store_load_message - a job for message msg_id with no recipients yet, or NULL. */
static struct delivery_job *store_load_message(struct store *s, int64_t msg_id)
{
	struct delivery_job *job = NULL;
	sqlite3_bind_int64(s->message_row, 1, msg_id);
	if (sqlite3_step(s->message_row) == SQLITE_ROW) {
		job = xcalloc(1, sizeof *job);
		job->msg_id = msg_id;
		str_copy(job->qid, sizeof job->qid, (const char *)sqlite3_column_text(s->message_row, 0));
		job->sender = str_dup((const char *)sqlite3_column_text(s->message_row, 1));
		job->arrival_ms = sqlite3_column_int64(s->message_row, 2);
		job->ret_hdrs = sqlite3_column_int(s->message_row, 3) != 0;
		const char *envid = (const char *)sqlite3_column_text(s->message_row, 4);
		job->envid = envid ? str_dup(envid) : NULL;
	}
	sqlite3_reset(s->message_row);
	return job;
}

/* store_add_rcpt - append the recipient in the current row of stmt (id, address, mailbox, attempts, notify, orcpt,
 * warned, route, route_key). */
static void store_add_rcpt(struct delivery_job *job, size_t *cap, sqlite3_stmt *stmt)
{
	if (job->rcpt_count == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		job->rcpts = xrealloc(job->rcpts, *cap * sizeof *job->rcpts);
	}
	struct delivery_rcpt *r = &job->rcpts[job->rcpt_count++];
	memset(r, 0, sizeof *r);
	r->id = sqlite3_column_int64(stmt, 0);
	r->address = str_dup((const char *)sqlite3_column_text(stmt, 1));
	r->mailbox = str_dup((const char *)sqlite3_column_text(stmt, 2));
	r->attempts = sqlite3_column_int64(stmt, 3);
	r->notify = (unsigned)sqlite3_column_int(stmt, 4);
	const char *orcpt = (const char *)sqlite3_column_text(stmt, 5);
	r->orcpt = orcpt ? str_dup(orcpt) : NULL;
	r->warned = sqlite3_column_int(stmt, 6) != 0;
	const char *route = (const char *)sqlite3_column_text(stmt, 7);
	if (!route || !store_route_from_name(route, &r->route)) {
		/* Written by a later version, or by hand: decided again from the mailbox. */
		log_warning("event=route_unknown rcpt_id=%lld route=\"%s\"", (long long)r->id, route ? route : "");
		r->route = r->mailbox[0] ? STORE_ROUTE_MAILBOX : STORE_ROUTE_MX;
	}
	const char *key = (const char *)sqlite3_column_text(stmt, 8);
	r->route_key = key ? str_dup(key) : NULL;
}

/* store_job_or_null - a job with no recipients left is no job. */
static struct delivery_job *store_job_or_null(struct delivery_job *job)
{
	if (job && job->rcpt_count == 0) {
		store_job_free(job);
		return NULL;
	}
	return job;
}

/* store_load_job - message msg_id with its 'queued' recipients, or NULL if none. */
static struct delivery_job *store_load_job(struct store *s, int64_t msg_id)
{
	struct delivery_job *job = store_load_message(s, msg_id);
	size_t cap = 0;
	sqlite3_bind_int64(s->queued_rcpts, 1, msg_id);
	while (job && sqlite3_step(s->queued_rcpts) == SQLITE_ROW)
		store_add_rcpt(job, &cap, s->queued_rcpts);
	sqlite3_reset(s->queued_rcpts);
	return store_job_or_null(job);
}

/*
 * store_split_by_worker - the recipients whose route is not a Maildir of
 * ours (LMTP, MX, relay: the mta's) move out of job into a job of their
 * own, with its own copy of the body; NULL when there are none. What stays
 * is the mailbox writers' (job->maildir).
 */
static struct delivery_job *store_split_by_worker(struct delivery_job *job)
{
	size_t remote = 0;
	for (size_t i = 0; i < job->rcpt_count; i++)
		remote += job->rcpts[i].route != STORE_ROUTE_MAILBOX;
	job->maildir = true;
	if (remote == 0)
		return NULL;
	struct delivery_job *out = xcalloc(1, sizeof *out);
	out->msg_id = job->msg_id;
	memcpy(out->qid, job->qid, sizeof out->qid);
	out->sender = str_dup(job->sender);
	out->ret_hdrs = job->ret_hdrs;
	out->envid = job->envid ? str_dup(job->envid) : NULL;
	out->arrival_ms = job->arrival_ms;
	out->rcpts = xcalloc(remote, sizeof *out->rcpts);
	size_t kept = 0;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		if (job->rcpts[i].route != STORE_ROUTE_MAILBOX)
			out->rcpts[out->rcpt_count++] = job->rcpts[i];
		else
			job->rcpts[kept++] = job->rcpts[i];
	}
	job->rcpt_count = kept;
	if (job->body && kept > 0) {
		/* Both jobs need the body, on different threads: a copy each. */
		out->body = evbuffer_new();
		if (!out->body)
			fatal("evbuffer_new failed");
		struct evbuffer_ptr at;
		struct evbuffer_iovec vec;
		evbuffer_ptr_set(job->body, &at, 0, EVBUFFER_PTR_SET);
		while (evbuffer_peek(job->body, -1, &at, &vec, 1) > 0 && vec.iov_len > 0) {
			evbuffer_add(out->body, vec.iov_base, vec.iov_len);
			evbuffer_ptr_set(job->body, &at, vec.iov_len, EVBUFFER_PTR_ADD);
		}
	} else {
		out->body = job->body;
		job->body = kept > 0 ? job->body : NULL;
	}
	return out;
}

/*
 * store_attach_body - a job loaded from the database gets its body here,
 * when it goes to the loop thread (the mta: LMTP, MX, relay), so that the
 * loop never waits on a read; the mailbox writers read their own. If this
 * fails the job goes without, and its reader tries again.
 */
static void store_attach_body(struct store *s, struct delivery_job *job)
{
	if (job->body)
		return;
	job->body = evbuffer_new();
	if (!job->body)
		fatal("evbuffer_new failed");
	if (!store_reader_body(s->dir, job->msg_id, job->body)) {
		evbuffer_free(job->body);
		job->body = NULL;
	}
}

/* store_hand_over - recipients routed to a mailbox to the mailbox writers, the others to the mta. */
static void store_hand_over(struct store *s, struct delivery_job *job)
{
	struct delivery_job *remote = store_split_by_worker(job);
	if (remote)
		store_attach_body(s, remote);
	if (job->rcpt_count > 0) {
		s->inflight++;
		s->dispatch(job, s->dispatch_arg);
	} else {
		store_job_free(job);
	}
	if (remote) {
		s->inflight++;
		s->dispatch(remote, s->dispatch_arg);
	}
}

/* store_load_backlog - hand over queued messages past the cursor, in id order. */
static void store_load_backlog(struct store *s)
{
	while (s->backlog && s->inflight < s->settings.max_inflight) {
		int64_t room = (int64_t)(s->settings.max_inflight - s->inflight);
		int64_t ids[256];
		int n = 0;
		sqlite3_bind_int64(s->backlog_messages, 1, s->cursor);
		sqlite3_bind_int64(s->backlog_messages, 2, room < 256 ? room : 256);
		while (n < 256 && sqlite3_step(s->backlog_messages) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(s->backlog_messages, 0);
		sqlite3_reset(s->backlog_messages);
		if (n < (room < 256 ? room : 256))
			s->backlog = false;
		for (int i = 0; i < n; i++) {
			struct delivery_job *job = store_load_job(s, ids[i]);
			s->cursor = ids[i];
			if (job)
				store_hand_over(s, job);
		}
		if (n == 0)
			break;
	}
}

static void store_refresh_next_retry(struct store *s)
{
	s->next_retry_ms = INT64_MAX;
	if (sqlite3_step(s->min_retry) == SQLITE_ROW && sqlite3_column_type(s->min_retry, 0) != SQLITE_NULL)
		s->next_retry_ms = sqlite3_column_int64(s->min_retry, 0);
	sqlite3_reset(s->min_retry);
}

/* store_load_rcpts - a job for the given recipients of message msg_id (retries). */
static struct delivery_job *store_load_rcpts(struct store *s, int64_t msg_id, const int64_t *rcpt_ids, size_t n)
{
	struct delivery_job *job = store_load_message(s, msg_id);
	size_t cap = 0;
	for (size_t i = 0; job && i < n; i++) {
		sqlite3_bind_int64(s->rcpt_row, 1, rcpt_ids[i]);
		if (sqlite3_step(s->rcpt_row) == SQLITE_ROW)
			store_add_rcpt(job, &cap, s->rcpt_row);
		sqlite3_reset(s->rcpt_row);
	}
	return store_job_or_null(job);
}

/*
 * store_retry_due - deferred recipients whose time has come go back to
 * 'queued' and out, at most STORE_RETRY_BATCH a turn (the next turn comes at
 * once while more are due). Only the recipients picked here go into the
 * jobs: others of the same message may be in flight already.
 */
#define STORE_RETRY_BATCH 256
static void store_retry_due(struct store *s, int64_t now)
{
	if (now < s->next_retry_ms)
		return;
	if (!store_begin(s)) {
		store_write_failed(s, "retries", 0);
		s->next_retry_ms = now + STORE_FAIL_PAUSE_MS;
		return;
	}
	int64_t rcpt_ids[STORE_RETRY_BATCH], msg_ids[STORE_RETRY_BATCH];
	size_t n = 0;
	sqlite3_bind_int64(s->due_rcpts, 1, now);
	sqlite3_bind_int64(s->due_rcpts, 2, STORE_RETRY_BATCH);
	while (n < STORE_RETRY_BATCH && sqlite3_step(s->due_rcpts) == SQLITE_ROW) {
		rcpt_ids[n] = sqlite3_column_int64(s->due_rcpts, 0);
		msg_ids[n] = sqlite3_column_int64(s->due_rcpts, 1);
		n++;
	}
	sqlite3_reset(s->due_rcpts);
	bool ok = true;
	for (size_t i = 0; ok && i < n; i++) {
		sqlite3_bind_int64(s->requeue_rcpt, 1, rcpt_ids[i]);
		ok = store_step_done(s, s->requeue_rcpt);
	}
	if (!ok || !store_exec(s, "COMMIT")) {
		store_rollback(s);
		store_write_failed(s, "retries", 0);
		/* Try again later, not on every turn: the cause (a full disk,
		 * say) will not have gone in a millisecond. */
		s->next_retry_ms = now + STORE_FAIL_PAUSE_MS;
		return;
	}
	if (n > 0)
		store_write_ok(s, false); /* an empty transaction wrote nothing: it proves nothing */
	/* Rows come ordered by message: one job per run of the same message.
	 * Messages past the cursor are the backlog's to load. */
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && msg_ids[j] == msg_ids[i])
			j++;
		if (msg_ids[i] > s->cursor) {
			s->backlog = true;
		} else {
			struct delivery_job *job = store_load_rcpts(s, msg_ids[i], rcpt_ids + i, j - i);
			if (job)
				store_hand_over(s, job);
		}
		i = j;
	}
	store_refresh_next_retry(s);
}

/* ---- Pruning: old bounced recipients, expired suppressions ---- */

/* store_prune_bounced - delete up to STORE_PRUNE_BATCH recipients bounced before cutoff, and their messages
 * when none is left; counts into *rcpts and *messages. */
static bool store_prune_bounced(struct store *s, int64_t cutoff, int64_t *rcpts, int64_t *messages)
{
	int64_t ids[STORE_PRUNE_BATCH], msg_ids[STORE_PRUNE_BATCH];
	size_t n = 0;
	sqlite3_bind_int64(s->prune_pick, 1, cutoff);
	sqlite3_bind_int64(s->prune_pick, 2, STORE_PRUNE_BATCH);
	int rc = SQLITE_DONE;
	while (n < STORE_PRUNE_BATCH && (rc = sqlite3_step(s->prune_pick)) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(s->prune_pick, 0);
		msg_ids[n] = sqlite3_column_int64(s->prune_pick, 1);
		n++;
	}
	sqlite3_reset(s->prune_pick);
	bool ok = n == STORE_PRUNE_BATCH || rc == SQLITE_DONE;
	for (size_t i = 0; ok && i < n; i++) {
		sqlite3_bind_int64(s->prune_attempts, 1, msg_ids[i]);
		sqlite3_bind_int64(s->prune_attempts, 2, ids[i]);
		sqlite3_bind_int64(s->delete_rcpt, 1, ids[i]);
		ok = store_step_done(s, s->prune_attempts) && store_step_done(s, s->delete_rcpt);
		*rcpts += ok ? sqlite3_changes(s->db) : 0;
	}
	/* The message goes with its last recipient (its attempts with it, by the trigger). */
	for (size_t i = 0; ok && i < n; i++) {
		bool deleted = false;
		ok = store_delete_message(s, msg_ids[i], &deleted);
		*messages += deleted;
	}
	return ok;
}

/*
 * store_prune - once a minute: recipients bounced more than bounce_retention
 * ago, and suppression entries a bounce made more than suppression_ttl ago,
 * at most STORE_PRUNE_BATCH of each per transaction. When a batch was full
 * the next turn takes the next one, so a large backlog drains without
 * holding the writer for long.
 */
static void store_prune(struct store *s, int64_t now)
{
	const struct store_policy *policy = &s->settings.policy;
	if (now < s->next_prune_ms)
		return;
	s->next_prune_ms = now + STORE_PRUNE_EVERY_MS;
	if (policy->bounce_retention_ms == 0 && policy->suppression_ttl_ms == 0)
		return;
	if (!store_begin(s)) {
		store_write_failed(s, "prune", 0);
		return;
	}
	int64_t rcpts = 0, messages = 0, expired = 0;
	bool ok = policy->bounce_retention_ms == 0 ||
	          store_prune_bounced(s, now - (int64_t)policy->bounce_retention_ms, &rcpts, &messages);
	if (ok && policy->suppression_ttl_ms > 0) {
		sqlite3_bind_int64(s->expire_suppressions, 1, now - (int64_t)policy->suppression_ttl_ms);
		sqlite3_bind_int64(s->expire_suppressions, 2, STORE_PRUNE_BATCH);
		ok = store_step_done(s, s->expire_suppressions);
		expired = ok ? sqlite3_changes(s->db) : 0;
	}
	if (!ok || !store_exec(s, "COMMIT")) {
		store_rollback(s);
		store_doomed_settle(s, false);
		store_write_failed(s, "prune", 0);
		return;
	}
	if (rcpts + expired > 0)
		store_write_ok(s, false);
	store_doomed_settle(s, true);
	if (rcpts > 0)
		log_info("event=queue_pruned messages=%lld rcpts=%lld", (long long)messages, (long long)rcpts);
	if (expired > 0)
		log_info("event=suppression_expired entries=%lld", (long long)expired);
	if (rcpts == STORE_PRUNE_BATCH || expired == STORE_PRUNE_BATCH)
		s->next_prune_ms = now;
}

/* ---- Operators' actions (tern queue ..., tern suppression ...) ---- */

/* store_db_changed - has another connection committed since the last look? */
static bool store_db_changed(struct store *s)
{
	bool changed = false;
	if (sqlite3_step(s->data_version) == SQLITE_ROW) {
		int64_t version = sqlite3_column_int64(s->data_version, 0);
		changed = version != s->seen_version;
		s->seen_version = version;
	}
	sqlite3_reset(s->data_version);
	return changed;
}

/* store_log_actions - the queue_log rows written since the last look, into the log. */
static void store_log_actions(struct store *s)
{
	char who[LOG_QUOTE_MAX], target[LOG_QUOTE_MAX];
	sqlite3_bind_int64(s->new_actions, 1, s->seen_action);
	while (sqlite3_step(s->new_actions) == SQLITE_ROW) {
		s->seen_action = sqlite3_column_int64(s->new_actions, 0);
		const char *by = (const char *)sqlite3_column_text(s->new_actions, 1);
		const char *action = (const char *)sqlite3_column_text(s->new_actions, 2);
		const char *what = (const char *)sqlite3_column_text(s->new_actions, 3);
		/* The suppression list's actions are "suppression_add", ...; the queue's "flush", ... */
		bool list = action && strncmp(action, "suppression_", 12) == 0;
		log_info("event=%s by=%s action=%s target=%s %s=%lld", list ? "suppression_command" : "queue_command",
		         log_quote(who, sizeof who, by ? by : "", by ? strlen(by) : 0),
		         action ? action + (list ? 12 : 0) : "?",
		         log_quote(target, sizeof target, what ? what : "", what ? strlen(what) : 0),
		         list ? "entries" : "rcpts", (long long)sqlite3_column_int64(s->new_actions, 4));
	}
	sqlite3_reset(s->new_actions);
}

/*
 * store_watch_admin - the command line changed the database (users,
 * aliases, or the queue): recipients may have become due (flush, release,
 * retry) or gone, and actions wait to be logged.
 */
static void store_watch_admin(struct store *s)
{
	if (!store_db_changed(s))
		return;
	store_log_actions(s);
	store_refresh_next_retry(s);
	s->backlog = true;
}

/* store_watch_start - what is in the database now is not news. */
static void store_watch_start(struct store *s)
{
	store_db_changed(s);
	sqlite3_stmt *last = store_db_prepare(s->db, "SELECT COALESCE(MAX(id), 0) FROM queue_log");
	if (sqlite3_step(last) == SQLITE_ROW)
		s->seen_action = sqlite3_column_int64(last, 0);
	sqlite3_finalize(last);
}

/* ---- One turn ---- */

static void store_post_done(struct store *s, struct store_message *list)
{
	if (!list)
		return;
	struct store_message *last = list;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&s->lock);
	*s->done_tail = list;
	s->done_tail = &last->next;
	pthread_mutex_unlock(&s->lock);
	event_active(s->done_event, EV_READ, 0);
}

/* store_dispatch_new - after COMMIT: hand new messages to delivery, or leave them to the backlog. */
static void store_dispatch_new(struct store *s, struct store_message *msg, int64_t msg_id, const int64_t *ids)
{
	if (s->backlog || s->inflight >= s->settings.max_inflight) {
		s->backlog = true;
		return;
	}
	s->cursor = msg_id;
	store_hand_over(s, store_job_from_message(msg, msg_id, ids));
}

/* store_settle_notices - the composer's notices out of the turn's list (freed, and the composer told); the clients'
 * messages are left. */
static struct store_message *store_settle_notices(struct store *s, struct store_message *list, bool committed)
{
	struct store_message *clients = NULL, **tail = &clients;
	size_t notices = 0;
	while (list) {
		struct store_message *next = list->next;
		list->next = NULL;
		if (list->notice_id) {
			notices++;
			store_message_free(list);
		} else {
			*tail = list;
			tail = &list->next;
		}
		list = next;
	}
	if (notices > 0)
		store_notices_settled(s->notices, notices, committed);
	return clients;
}

static void store_write_turn(struct store *s, struct store_message *commits, struct delivery_job *results,
                             bool stopping)
{
	int64_t now = time_wall_ms();
	size_t count = 0;
	for (struct store_message *m = commits; m; m = m->next)
		count++;
	int64_t *msg_ids = xcalloc(count ? count : 1, sizeof *msg_ids);
	int64_t **rcpt_ids = xcalloc(count ? count : 1, sizeof *rcpt_ids);
	bool *queued = xcalloc(count ? count : 1, sizeof *queued); /* a notice that was stale or empty is not */

	memset(&s->fault, 0, sizeof s->fault);
	s->notices_owed = false;
	bool ok = store_spool_batch(s, commits) && store_exec(s, "BEGIN IMMEDIATE");
	size_t i = 0;
	for (struct store_message *m = commits; ok && m; m = m->next, i++) {
		rcpt_ids[i] = xcalloc(m->rcpt_count ? m->rcpt_count : 1, sizeof **rcpt_ids);
		bool stale = false;
		ok = m->notice_id ? store_insert_notice(s, m, &msg_ids[i], rcpt_ids[i], &stale)
		                  : store_insert_message(s, m, &msg_ids[i], rcpt_ids[i]);
		queued[i] = !stale && m->rcpt_count > 0;
	}
	for (struct delivery_job *j = results; ok && j; j = j->next)
		ok = store_apply_job(s, j, now);
	if (ok)
		ok = store_exec(s, "COMMIT");
	if (!ok) {
		store_rollback(s);
		store_unspool(s, commits);
		store_write_failed(s, "messages", count);
	} else {
		store_write_ok(s, count > 0);
	}
	store_doomed_settle(s, ok);
	store_notes_settle(s, ok);
	bool no_storage = !ok && store_fault_storage(&s->fault);

	i = 0;
	for (struct store_message *m = commits; m; m = m->next, i++) {
		m->committed = ok;
		m->no_storage = no_storage;
		if (!ok)
			str_copy(m->error, sizeof m->error,
			         no_storage ? "no room on the disk for the queue" : "queue database write failed");
		else if (queued[i])
			store_dispatch_new(s, m, msg_ids[i], rcpt_ids[i]);
		if (ok && queued[i] && m->notice_log)
			log_info("%s", m->notice_log);
		free(rcpt_ids[i]);
	}
	free(rcpt_ids);
	free(msg_ids);
	free(queued);
	store_post_done(s, store_settle_notices(s, commits, ok));
	if (ok && s->notices_owed)
		store_notices_wake(s->notices);

	if (ok) {
		while (results) {
			struct delivery_job *next = results->next;
			s->inflight--;
			store_job_free(results);
			results = next;
		}
	} else if (results && stopping) {
		/* No later turn: the recipients stay 'queued' and go out again after
		 * the next start, where the Maildir link finds the files already there. */
		log_warning("event=results_dropped reason=\"queue database write failed at shutdown\"");
		while (results) {
			struct delivery_job *next = results->next;
			store_job_free(results);
			results = next;
		}
	} else if (results) {
		/* Keep the results for a later turn: the delivery already happened. */
		pthread_mutex_lock(&s->lock);
		struct delivery_job *last = results;
		while (last->next)
			last = last->next;
		last->next = s->results;
		s->results = results;
		if (!last->next)
			s->results_tail = &last->next;
		pthread_mutex_unlock(&s->lock);
		usleep(STORE_FAIL_PAUSE_MS * 1000);
	}
}

/* store_write_scrams - the SCRAM secrets made at login, in one transaction; a failure only costs a log line. */
static void store_write_scrams(struct store *s, struct store_scram *list)
{
	sqlite3_stmt *update = store_db_prepare(s->db, "UPDATE users SET scram=?1 WHERE address=?2 AND password=?3"
	                                               " AND coalesce(scram, '')=''");
	bool ok = store_begin(s);
	for (struct store_scram *sc = list; ok && sc; sc = sc->next) {
		sqlite3_bind_text(update, 1, sc->scram, -1, SQLITE_STATIC);
		sqlite3_bind_text(update, 2, sc->address, -1, SQLITE_STATIC);
		sqlite3_bind_text(update, 3, sc->password_hash, -1, SQLITE_STATIC);
		ok = store_step_done(s, update);
		sc->made = ok && sqlite3_changes(s->db) > 0;
	}
	if (ok)
		ok = store_exec(s, "COMMIT");
	if (!ok) {
		log_warning("event=scram_secret_failed error=\"%s\"", s->fault.text);
		store_rollback(s);
	}
	sqlite3_finalize(update);
	while (list) {
		struct store_scram *next = list->next;
		char q[LOG_QUOTE_MAX];
		if (ok && list->made)
			log_info("event=scram_secret_made user=%s",
			         log_quote(q, sizeof q, list->address, strlen(list->address)));
		store_scram_free(list);
		list = next;
	}
}

static void store_wait(struct store *s)
{
	int64_t now = time_wall_ms();
	int64_t until = now + STORE_IDLE_WAKE_MS;
	if (s->next_retry_ms < until)
		until = s->next_retry_ms;
	if (until <= now || (s->backlog && s->inflight < s->settings.max_inflight))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t wait_ms = until - now;
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

/*
 * store_reroute_waiting - route the waiting recipients again (the routing
 * configuration changed, or the server started). Ones already handed out
 * finish on the route they had; their retries take the new one.
 */
static void store_reroute_waiting(struct store *s)
{
	int changed = store_reroute(s->db, &s->routing);
	if (changed > 0)
		log_info("event=rerouted rcpts=%d", changed);
}

/*
 * What one turn writes. Every client message waiting goes in: each
 * client's 250 waits on this commit. Of the delivery results and the
 * composer's notices, at most STORE_TURN_RESULTS and STORE_TURN_NOTICES go
 * in; the rest waits for the next turn, which follows at once. A storm
 * (thousands of recipients failing together, each owing a bounce) is so
 * written in many short transactions instead of a few long ones, and a
 * client's message never waits behind more than one of them.
 */
#define STORE_TURN_RESULTS 64
#define STORE_TURN_NOTICES 32

/* store_take_commits - under lock: the clients' messages, and the first STORE_TURN_NOTICES notices. */
static struct store_message *store_take_commits(struct store *s)
{
	struct store_message *taken = NULL, **taken_tail = &taken, *left = s->commits;
	size_t notices = 0;
	s->commits = NULL;
	s->commits_tail = &s->commits;
	while (left) {
		struct store_message *next = left->next;
		left->next = NULL;
		bool take = !left->notice_id || notices++ < STORE_TURN_NOTICES;
		struct store_message ***tail = take ? &taken_tail : &s->commits_tail;
		**tail = left;
		*tail = &left->next;
		left = next;
	}
	return taken;
}

/* store_take_results - under lock: the first STORE_TURN_RESULTS delivery results. */
static struct delivery_job *store_take_results(struct store *s)
{
	struct delivery_job *taken = s->results, *last = NULL;
	for (size_t n = 0; n < STORE_TURN_RESULTS && s->results; n++) {
		last = s->results;
		s->results = s->results->next;
	}
	if (last)
		last->next = NULL;
	if (!s->results)
		s->results_tail = &s->results;
	return last ? taken : NULL;
}

static void *store_main(void *arg)
{
	struct store *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		if (!s->commits && !s->results && !s->scrams && !s->stopping)
			store_wait(s);
		struct store_message *commits = store_take_commits(s);
		struct delivery_job *results = store_take_results(s);
		struct store_scram *scrams = s->scrams;
		s->scrams = NULL;
		bool stopping = s->stopping;
		if (s->policy_changed) {
			s->settings.policy = s->next_policy;
			s->policy_changed = false;
		}
		void *old_routes = NULL;
		if (s->next_routes) {
			old_routes = s->routing.routes;
			s->routing.routes = s->next_routes;
			s->next_routes = NULL;
		}
		bool reroute = s->reroute;
		s->reroute = false;
		pthread_mutex_unlock(&s->lock);

		if (old_routes)
			s->routing.router->release(old_routes);
		if (reroute)
			store_reroute_waiting(s);
		if (commits || results)
			store_write_turn(s, commits, results, stopping);
		if (scrams)
			store_write_scrams(s, scrams);
		else if (!commits && !results && stopping)
			break;
		if (!stopping) {
			store_watch_admin(s);
			store_retry_due(s, time_wall_ms());
			store_load_backlog(s);
			store_prune(s, time_wall_ms());
			store_watch_space(s);
		}
	}
	return NULL;
}

/* ---- Loop thread side ---- */

static void store_done_event(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->lock);
	struct store_message *list = s->done;
	s->done = NULL;
	s->done_tail = &s->done;
	pthread_mutex_unlock(&s->lock);
	while (list) {
		struct store_message *next = list->next;
		list->next = NULL;
		s->done_cb(list, s->done_arg);
		list = next;
	}
}

void store_commit(struct store *s, struct store_message *msg)
{
	msg->next = NULL;
	pthread_mutex_lock(&s->lock);
	*s->commits_tail = msg;
	s->commits_tail = &msg->next;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void store_commit_notice(struct store *s, struct store_message *msg)
{
	store_commit(s, msg);
}

void store_set_routes(struct store *s, void *routes, bool changed)
{
	pthread_mutex_lock(&s->lock);
	if (s->next_routes)
		s->routing.router->release(s->next_routes);
	s->next_routes = routes;
	s->reroute |= changed;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

bool store_space_ok(struct store *s, uint64_t size)
{
	uint64_t reserve = atomic_load(&s->space_reserve);
	if (reserve == 0)
		return true;
	if (atomic_load(&s->space_failed))
		return false;
	uint64_t free_bytes = atomic_load(&s->space_free);
	return free_bytes >= reserve && (free_bytes - reserve) / 2 >= size;
}

void store_set_policy(struct store *s, const struct store_policy *policy)
{
	atomic_store(&s->space_reserve, policy->queue_min_free);
	pthread_mutex_lock(&s->lock);
	s->next_policy = *policy;
	s->policy_changed = true;
	pthread_mutex_unlock(&s->lock);
}

void store_user_add_scram(struct store *s, const char *address, const char *password_hash, const char *scram)
{
	struct store_scram *sc = xcalloc(1, sizeof *sc);
	sc->address = str_dup(address);
	sc->password_hash = str_dup(password_hash);
	sc->scram = str_dup(scram);
	pthread_mutex_lock(&s->lock);
	sc->next = s->scrams;
	s->scrams = sc;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void store_delivery_done(struct store *s, struct delivery_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&s->lock);
	*s->results_tail = job;
	s->results_tail = &job->next;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static bool store_spooled_row(const char *qid, void *arg)
{
	sqlite3_stmt *st = arg;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc != SQLITE_DONE; /* on an error, keep the file */
}

/* store_sweep_spool - at the start: spool files no row names (a crash came between file and row) go. */
static void store_sweep_spool(struct store *s)
{
	sqlite3_stmt *st = store_db_prepare(s->db, "SELECT 1 FROM messages WHERE qid=? AND spooled=1");
	size_t removed = store_spool_sweep(s->spool, store_spooled_row, st);
	sqlite3_finalize(st);
	if (removed > 0)
		log_info("event=spool_swept files=%zu", removed);
}

struct store *store_start(const struct store_settings *settings, struct event_base *base, store_commit_done *done,
                          void *done_arg, store_dispatch *dispatch, void *dispatch_arg, char *err, size_t errlen)
{
	sqlite3 *db = store_db_open(settings->data_dir, true, err, errlen);
	if (!db) {
		settings->router->release(settings->routes);
		return NULL;
	}
	struct store *s = xcalloc(1, sizeof *s);
	s->settings = *settings;
	s->data_dir = str_dup(settings->data_dir);
	s->settings.data_dir = s->data_dir;
	if (s->settings.max_inflight == 0)
		s->settings.max_inflight = 1;
	s->db = db;
	s->spool = store_spool_open(s->data_dir, true, err, errlen);
	s->dir = s->spool ? store_reader_open(s->data_dir, err, errlen) : NULL;
	if (!s->dir) {
		store_spool_close(s->spool);
		store_reader_close(s->dir);
		sqlite3_close(db);
		free(s->data_dir);
		free(s);
		settings->router->release(settings->routes);
		return NULL;
	}
	s->routing = (struct store_routing){
	        .router = settings->router,
	        .routes = settings->routes,
	        .local_lmtp = settings->local_lmtp,
	        .local_domains = settings->local_domains,
	        .local_domain_count = settings->local_domain_count,
	        .postmaster = settings->postmaster,
	        .recipient_delimiter = settings->recipient_delimiter,
	};
	store_sweep_spool(s);
	log_episode_init(&s->write_episode, "queue");
	atomic_init(&s->space_free, store_measure_free(s));
	atomic_init(&s->space_failed, false);
	atomic_init(&s->space_reserve, s->settings.policy.queue_min_free);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->commits_tail = &s->commits;
	s->results_tail = &s->results;
	s->done_tail = &s->done;
	s->done_cb = done;
	s->done_arg = done_arg;
	s->dispatch = dispatch;
	s->dispatch_arg = dispatch_arg;
	s->done_event = event_new(base, -1, 0, store_done_event, s);
	if (!s->done_event)
		fatal("event_new failed");
	if (getrandom(&s->rng, sizeof s->rng, 0) != (ssize_t)sizeof s->rng || s->rng == 0)
		s->rng = 0x9e3779b97f4a7c15ull;
	s->jitter_key = store_random(s);
	store_prepare_all(s);
	store_watch_start(s);
	/* Recovery: nothing is in flight after a start, so every 'queued'
	 * recipient is backlog from the start of the id range. */
	s->cursor = 0;
	s->backlog = true;
	/* The configuration may have changed while the server was down. */
	store_reroute_waiting(s);
	store_refresh_next_retry(s);
	if (pthread_create(&s->thread, NULL, store_main, s) != 0) {
		str_copy(err, errlen, "cannot start the store thread");
		store_stop(s);
		return NULL;
	}
	s->thread_started = true;
	s->notices = store_notices_start(s, s->data_dir, s->settings.hostname, err, errlen);
	if (!s->notices) {
		store_stop(s);
		return NULL;
	}
	return s;
}

void store_stop(struct store *s)
{
	if (!s)
		return;
	/* The composer first: it hands the writer work, which the writer's last turns settle. */
	store_notices_stop(s->notices);
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	store_notices_free(s->notices);
	while (s->scrams) {
		struct store_scram *next = s->scrams->next;
		store_scram_free(s->scrams);
		s->scrams = next;
	}
	/* Completions the loop never ran (it has stopped): drop them. */
	while (s->done) {
		struct store_message *next = s->done->next;
		store_message_free(s->done);
		s->done = next;
	}
	store_finalize_all(s);
	if (s->next_routes)
		s->routing.router->release(s->next_routes);
	s->routing.router->release(s->routing.routes);
	store_reader_close(s->dir);
	store_spool_close(s->spool);
	free(s->doomed);
	free(s->notes);
	log_episode_destroy(&s->write_episode);
	sqlite3_close(s->db);
	event_free(s->done_event);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s->data_dir);
	free(s);
}
