/*
 * store_notice.c - the notice composer (see store_notice.h).
 *
 * The thread keeps a cursor: the last owed notice it handed over. Notices
 * are taken in id order, at most STORE_NOTICE_INFLIGHT handed over and not
 * yet settled, so that a storm is fed to the writer in step with its
 * commits instead of all at once. When a turn that held notices fails
 * (a full disk), the cursor goes back to the start and every owed notice
 * is composed again; the writer drops a second copy, since the owed row
 * it deletes is gone by then.
 */
#include "store/store_notice.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg_dsn.h"
#include "store/store.h"
#include "store/store_bounce.h"
#include "store/store_db.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define STORE_NOTICE_BATCH    32
#define STORE_NOTICE_INFLIGHT 64

struct store_notices {
	struct store *store;
	char *hostname;
	sqlite3 *db;
	struct store_reader *reader;
	sqlite3_stmt *owed, *rcpts;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping, woken, restart;
	size_t inflight; /* handed over, not yet settled */
	int64_t cursor;  /* the last notice handed over (thread only) */
};

/* An owed notice, as its rows say. */
struct owed_notice {
	int64_t id, msg_id, retry_until_ms;
	enum dsn_action kind;
	struct delivery_job job; /* the original: qid, sender, envid, ret_hdrs, arrival; its recipients */
};

static bool notice_kind(const char *text, enum dsn_action *out)
{
	if (strcmp(text, "failed") == 0)
		*out = DSN_FAILED;
	else if (strcmp(text, "delayed") == 0)
		*out = DSN_DELAYED;
	else if (strcmp(text, "delivered") == 0)
		*out = DSN_DELIVERED;
	else
		return false;
	return true;
}

static char *column_dup(sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);
	return text ? str_dup(text) : NULL;
}

/* notice_load_rcpts - the recipients the notice reports, into n->job. */
static void notice_load_rcpts(struct store_notices *t, struct owed_notice *n)
{
	size_t cap = 0;
	sqlite3_bind_int64(t->rcpts, 1, n->id);
	while (sqlite3_step(t->rcpts) == SQLITE_ROW) {
		if (n->job.rcpt_count == cap) {
			cap = cap ? cap * 2 : 4;
			n->job.rcpts = xrealloc(n->job.rcpts, cap * sizeof *n->job.rcpts);
		}
		struct delivery_rcpt *r = &n->job.rcpts[n->job.rcpt_count++];
		memset(r, 0, sizeof *r);
		r->address = column_dup(t->rcpts, 0);
		r->mailbox = str_dup("");
		r->orcpt = column_dup(t->rcpts, 1);
		str_copy(r->error, sizeof r->error, (const char *)sqlite3_column_text(t->rcpts, 2));
		r->success = sqlite3_column_int(t->rcpts, 3) ? SUCCESS_RELAYED : SUCCESS_DELIVERED;
	}
	sqlite3_reset(t->rcpts);
}

/* notice_compose - the notice as a message for the writer; one without recipients when none is owed after all. */
static struct store_message *notice_compose(struct store_notices *t, struct owed_notice *n)
{
	struct evbuffer *body = evbuffer_new();
	if (!body)
		fatal("evbuffer_new failed");
	bool have_body = store_reader_body(t->reader, n->msg_id, body);
	const struct delivery_rcpt **rcpts = xcalloc(n->job.rcpt_count ? n->job.rcpt_count : 1, sizeof *rcpts);
	for (size_t i = 0; i < n->job.rcpt_count; i++)
		rcpts[i] = &n->job.rcpts[i];
	/* What the composer reads of the settings: who we are, and (delayed) when tern gives up. */
	struct store_settings settings = {.hostname = t->hostname};
	settings.policy.max_queue_lifetime_ms =
	        n->retry_until_ms > n->job.arrival_ms ? (uint64_t)(n->retry_until_ms - n->job.arrival_ms) : 0;
	size_t len = have_body ? evbuffer_get_length(body) : 0;
	const char *original = have_body ? (const char *)evbuffer_pullup(body, -1) : NULL;
	int64_t now = time_wall_ms();
	struct store_message *msg =
	        n->kind == DSN_DELAYED
	                ? bounce_delay_warning_message(&settings, &n->job, rcpts, n->job.rcpt_count, original, len, now)
	        : n->kind == DSN_DELIVERED
	                ? bounce_success_message(&settings, &n->job, rcpts, n->job.rcpt_count, original, len, now)
	                : bounce_message(&settings, &n->job, rcpts, n->job.rcpt_count, original, len, now);
	free(rcpts);
	evbuffer_free(body);
	if (!msg) {
		/* Nothing to send after all (the sender was <>, or the report could not be made): the row goes. */
		msg = xcalloc(1, sizeof *msg);
		msg->spill_fd = -1;
		msg->sender = str_dup("");
	} else {
		static const char *const events[] = {
		        [DSN_FAILED] = "bounce_queued",
		        [DSN_DELAYED] = "delay_warning_queued",
		        [DSN_DELIVERED] = "success_notice_queued",
		};
		char q[LOG_QUOTE_MAX], line[LOG_QUOTE_MAX + 128];
		str_format(line, sizeof line, "event=%s qid=%s original=%s to=%s rcpts=%zu", events[n->kind], msg->qid,
		           n->job.qid, log_quote(q, sizeof q, n->job.sender, strlen(n->job.sender)), n->job.rcpt_count);
		msg->notice_log = str_dup(line);
	}
	msg->notice_id = n->id;
	msg->notice_of = n->msg_id;
	return msg;
}

static void owed_free(struct owed_notice *n)
{
	for (size_t i = 0; i < n->job.rcpt_count; i++) {
		free(n->job.rcpts[i].address);
		free(n->job.rcpts[i].mailbox);
		free(n->job.rcpts[i].orcpt);
	}
	free(n->job.rcpts);
	free(n->job.sender);
	free(n->job.envid);
}

/* notice_take_one - compose the next owed notice after the cursor and hand it over; false when none is owed. */
static bool notice_take_one(struct store_notices *t)
{
	sqlite3_stmt *st = t->owed;
	sqlite3_bind_int64(st, 1, t->cursor);
	struct owed_notice n;
	memset(&n, 0, sizeof n);
	bool found = sqlite3_step(st) == SQLITE_ROW;
	if (found) {
		n.id = sqlite3_column_int64(st, 0);
		n.msg_id = sqlite3_column_int64(st, 1);
		const char *kind = (const char *)sqlite3_column_text(st, 2);
		n.retry_until_ms = sqlite3_column_int64(st, 3);
		str_copy(n.job.qid, sizeof n.job.qid, (const char *)sqlite3_column_text(st, 4));
		n.job.sender = column_dup(st, 5);
		n.job.arrival_ms = sqlite3_column_int64(st, 6);
		n.job.ret_hdrs = sqlite3_column_int(st, 7) != 0;
		n.job.envid = column_dup(st, 8);
		n.job.msg_id = n.msg_id;
		if (!kind || !notice_kind(kind, &n.kind))
			n.kind = DSN_FAILED;
	}
	sqlite3_reset(st);
	if (!found)
		return false;
	t->cursor = n.id;
	notice_load_rcpts(t, &n);
	struct store_message *msg = notice_compose(t, &n);
	owed_free(&n);
	pthread_mutex_lock(&t->lock);
	t->inflight++;
	pthread_mutex_unlock(&t->lock);
	store_commit_notice(t->store, msg);
	return true;
}

/* notice_wait - until there is work and room for it; false when stopping. */
static bool notice_wait(struct store_notices *t, bool more)
{
	pthread_mutex_lock(&t->lock);
	while (!t->stopping && (t->inflight >= STORE_NOTICE_INFLIGHT || (!more && !t->woken && !t->restart)))
		pthread_cond_wait(&t->wake, &t->lock);
	bool go = !t->stopping;
	if (t->restart && t->inflight == 0) {
		/* Everything handed over is settled: what is still owed goes again. */
		t->cursor = 0;
		t->restart = false;
	}
	t->woken = false;
	pthread_mutex_unlock(&t->lock);
	return go;
}

static void *notice_main(void *arg)
{
	struct store_notices *t = arg;
	bool more = true; /* at start: notices owed from before */
	while (notice_wait(t, more)) {
		more = false;
		for (int i = 0; i < STORE_NOTICE_BATCH; i++) {
			if (!notice_take_one(t))
				break;
			more = i == STORE_NOTICE_BATCH - 1;
		}
	}
	return NULL;
}

struct store_notices *store_notices_start(struct store *store, const char *data_dir, const char *hostname, char *err,
                                          size_t errlen)
{
	sqlite3 *db = store_db_open(data_dir, false, err, errlen);
	struct store_reader *reader = db ? store_reader_open(data_dir, err, errlen) : NULL;
	if (!reader) {
		sqlite3_close(db);
		return NULL;
	}
	struct store_notices *t = xcalloc(1, sizeof *t);
	t->store = store;
	t->hostname = str_dup(hostname);
	t->db = db;
	t->reader = reader;
	t->owed = store_db_prepare(db, "SELECT n.id, n.msg_id, n.kind, n.retry_until_ms, m.qid, m.sender,"
	                               " m.arrival_ms, m.ret_hdrs, m.envid FROM notices n"
	                               " JOIN messages m ON m.id=n.msg_id WHERE n.id>? ORDER BY n.id LIMIT 1");
	t->rcpts = store_db_prepare(db, "SELECT address, orcpt, error, relayed FROM notice_rcpts"
	                                " WHERE notice_id=? ORDER BY rowid");
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	if (pthread_create(&t->thread, NULL, notice_main, t) != 0)
		fatal("cannot start the notice thread");
	return t;
}

void store_notices_wake(struct store_notices *t)
{
	pthread_mutex_lock(&t->lock);
	t->woken = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
}

void store_notices_settled(struct store_notices *t, size_t count, bool committed)
{
	pthread_mutex_lock(&t->lock);
	t->inflight -= count < t->inflight ? count : t->inflight;
	if (!committed)
		t->restart = true;
	t->woken = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
}

void store_notices_stop(struct store_notices *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
}

void store_notices_free(struct store_notices *t)
{
	if (!t)
		return;
	sqlite3_finalize(t->owed);
	sqlite3_finalize(t->rcpts);
	sqlite3_close(t->db);
	store_reader_close(t->reader);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t->hostname);
	free(t);
}
