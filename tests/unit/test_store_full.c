/*
 * test_store_full.c - the store thread when its writes fail
 * (src/store/store_thread.c), against a fresh data directory under $TMPDIR.
 *
 * A full disk is made deterministic with RLIMIT_FSIZE (SIGXFSZ ignored):
 * no file may grow past the size the test sets, so the next WAL frame or
 * spool file fails with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE
 * and the store must treat as no room. Checked: every message of a failed
 * turn is answered "not committed" for lack of storage (the sessions' 452
 * 4.3.1), nothing of it stays (no row, no spool file), store_space_ok says
 * no until a write works again, the database passes an integrity check,
 * delivery results of a failed turn (and the bounce one owes) are written
 * once later (not lost, not twice), and every committed message is handed
 * to delivery exactly once.
 */
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "unit.h"
#include "unit_store.h"
#include "util/util_id.h"
#include "util/util_str.h"
#include "util/util_time.h"

/* ---- Delivery that waits for the test ---- */

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct delivery_job *held[16];
static int held_count, dispatched;

/* hold_dispatch - on the store thread: keep the job until the test answers it. */
static void hold_dispatch(struct delivery_job *job, void *arg)
{
	pthread_mutex_lock(&held_lock);
	dispatched++;
	if (held_count < 16)
		held[held_count++] = job;
	else
		store_job_free(job);
	pthread_mutex_unlock(&held_lock);
}

static int dispatched_now(void)
{
	pthread_mutex_lock(&held_lock);
	int n = dispatched;
	pthread_mutex_unlock(&held_lock);
	return n;
}

/* ---- Commits and their completions ---- */

static struct store_message *completed;

static void commit_done(struct store_message *msg, void *arg)
{
	completed = msg;
}

/* commit - one message of size octets for alice; the completion, once the loop has run it (10 s at most). */
static struct store_message *commit(struct store *s, struct event_base *base, size_t size)
{
	struct store_message *msg = xcalloc(1, sizeof *msg);
	id_next(msg->qid);
	msg->sender = str_dup("sender@example.test");
	msg->rcpts = xcalloc(1, sizeof *msg->rcpts);
	msg->rcpts[0].address = str_dup("alice@localhost");
	msg->rcpts[0].mailbox = str_dup("alice@localhost");
	msg->rcpt_count = 1;
	msg->body = evbuffer_new();
	msg->spill_fd = -1;
	for (size_t i = 0; i < size; i++)
		evbuffer_add(msg->body, i % 78 == 77 ? "\n" : "x", 1);
	msg->size = size;
	msg->arrival_ms = time_wall_ms();
	completed = NULL;
	store_commit(s, msg);
	for (int i = 0; i < 1000 && !completed; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (!completed)
			usleep(10000);
	}
	if (!completed)
		UNIT_FAIL("no completion for a commit within 10 s");
	return completed;
}

/* ---- The limit ---- */

static off_t file_size(const char *name)
{
	char path[600];
	struct stat st;
	str_format(path, sizeof path, "%s/%s", data_dir, name);
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* limit_files - no file may grow past the size of the largest now: the next WAL frame fails; returns that size. */
static off_t limit_files(void)
{
	off_t most = file_size("queue.db-wal");
	if (file_size("queue.db") > most)
		most = file_size("queue.db");
	struct rlimit rl = {.rlim_cur = (rlim_t)most, .rlim_max = RLIM_INFINITY};
	CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
	return most;
}

static void unlimit_files(void)
{
	struct rlimit rl = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
	CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}

static int spool_files(void)
{
	char path[600];
	str_format(path, sizeof path, "%s/spool", data_dir);
	int n = 0;
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void check_failed(struct store_message *m, const char *what)
{
	if (!m)
		return;
	if (m->committed || !m->no_storage)
		UNIT_FAIL("%s: got committed=%d no_storage=%d, want 0 and 1", what, m->committed, m->no_storage);
	else
		unit_passed++;
	store_message_free(m);
}

static void check_committed(struct store_message *m, const char *what)
{
	if (!m)
		return;
	if (!m->committed)
		UNIT_FAIL("%s: not committed (%s)", what, m->error);
	else
		unit_passed++;
	store_message_free(m);
}

/* wait_count - poll sql until it counts want (10 s at most); the count last seen. */
static int64_t wait_count(const char *sql, int64_t want)
{
	int64_t n = -1;
	for (int i = 0; i < 1000 && (n = unit_count_rows(sql)) != want; i++)
		usleep(10000);
	return n;
}

static void test_failed_writes(struct store *s, struct event_base *base)
{
	/* A first message goes in: the WAL has frames, the spool directory is in use. */
	check_committed(commit(s, base, 1000), "the first message");
	CHECK(store_space_ok(s, 0));

	/* The disk is full: a message in the row fails at COMMIT, a large one at its spool file. */
	off_t limit = limit_files();
	check_failed(commit(s, base, 1000), "a message in the row on a full disk");
	CHECK(!store_space_ok(s, 0));
	check_failed(commit(s, base, (size_t)limit + 100 * 1024), "a spooled message");
	CHECK(!store_space_ok(s, 0));
	unlimit_files();
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages"), 1);
	CHECK_INT(spool_files(), 0);

	/* Room again: both kinds are taken, and MAIL may go on. */
	check_committed(commit(s, base, 1000), "a message in the row after the disk had room again");
	check_committed(commit(s, base, 100 * 1024), "a spooled message after the disk had room again");
	CHECK(store_space_ok(s, 0));
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages"), 3);
	CHECK_INT(spool_files(), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE state='queued'"), 3);
	CHECK_INT(dispatched_now(), 3);
}

/* take_held - a job delivery holds, or NULL. */
static struct delivery_job *take_held(void)
{
	pthread_mutex_lock(&held_lock);
	struct delivery_job *job = held_count > 0 ? held[--held_count] : NULL;
	pthread_mutex_unlock(&held_lock);
	if (!job)
		UNIT_FAIL("no delivery job is held");
	return job;
}

static void answer(struct delivery_job *job, enum delivery_status status, const char *reason)
{
	job->rcpts[0].status = status;
	str_copy(job->rcpts[0].error, sizeof job->rcpts[0].error, reason);
}

static void test_failed_results(struct store *s, struct event_base *base)
{
	/* Delivery results come while the disk is full: a deferral, and a
	 * failure that owes the sender a bounce. Their turn fails with the
	 * message in it. */
	struct delivery_job *deferred = take_held(), *failed = take_held();
	if (!deferred || !failed)
		return;
	answer(deferred, DELIVERY_TEMPFAIL, "4.3.1 mail system full: cannot write");
	answer(failed, DELIVERY_PERMFAIL, "550 5.1.1 no such user (mx.example.test)");
	char deferred_sql[200], failed_sql[200];
	str_format(deferred_sql, sizeof deferred_sql,
	           "SELECT COUNT(*) FROM recipients WHERE id=%lld AND state='deferred' AND attempts=1",
	           (long long)deferred->rcpts[0].id);
	str_format(failed_sql, sizeof failed_sql,
	           "SELECT COUNT(*) FROM recipients WHERE id=%lld AND state='bounced' AND attempts=1",
	           (long long)failed->rcpts[0].id);
	limit_files();
	store_delivery_done(s, deferred);
	store_delivery_done(s, failed);
	check_failed(commit(s, base, 1000), "a message in a turn with results on a full disk");
	/* The store tries the results again each second: still nothing is written. */
	usleep(1500 * 1000);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM recipients WHERE state!='queued'"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM attempts"), 0);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages WHERE sender=''"), 0);
	unlimit_files();

	/* Written once, when there is room: one attempt each, one bounce. */
	CHECK_INT(wait_count(deferred_sql, 1), 1);
	CHECK_INT(unit_count_rows(failed_sql), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM attempts"), 2);
	/* The bounce is composed after that turn, off the writer, and queued by a later one. */
	CHECK_INT(wait_count("SELECT COUNT(*) FROM messages WHERE sender=''", 1), 1);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM messages"), 4);
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM notices"), 0);

	/* Each committed message was handed out once: three, then the bounce;
	 * a new message still goes out (the count of jobs in flight is right). */
	int n = 0;
	for (int i = 0; i < 1000 && (n = dispatched_now()) != 4; i++)
		usleep(10000);
	CHECK_INT(n, 4);
	check_committed(commit(s, base, 1000), "a message after the results were written");
	for (int i = 0; i < 1000 && (n = dispatched_now()) != 5; i++)
		usleep(10000);
	CHECK_INT(n, 5);
	/* The database is whole: SQLite never read the frames past the last commit. */
	CHECK_INT(unit_count_rows("SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check='ok'"), 1);
}

int main(void)
{
	signal(SIGXFSZ, SIG_IGN);
	evthread_use_pthreads();
	if (!unit_store_dir("store-full"))
		return unit_finish("store_full");
	CHECK(mkdir(data_dir, 0700) == 0);
	struct event_base *base = event_base_new();
	static const struct store_policy policy = {.retry_initial_ms = 3600 * 1000,
	                                           .retry_max_ms = 4 * 3600 * 1000,
	                                           .max_queue_lifetime_ms = 5 * 24 * 3600 * 1000LL,
	                                           .queue_min_free = 1};
	struct store_settings settings = unit_store_settings(&policy);
	char err[256] = "";
	struct store *s = store_start(&settings, base, commit_done, NULL, hold_dispatch, NULL, err, sizeof err);
	if (!s) {
		UNIT_FAIL("store_start: %s", err);
		return unit_finish("store_full");
	}
	test_failed_writes(s, base);
	test_failed_results(s, base);
	store_stop(s);
	for (int i = 0; i < held_count; i++)
		store_job_free(held[i]);
	event_base_free(base);

	/* The spool files and the directories go too. */
	char path[600];
	str_format(path, sizeof path, "%s/spool", data_dir);
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		char file[900];
		str_format(file, sizeof file, "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.')
			unlink(file);
	}
	if (d)
		closedir(d);
	unit_store_remove();
	return unit_finish("store_full");
}
