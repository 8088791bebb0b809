/*
 * mda_pool.c - the delivery worker threads.
 *
 * A FIFO of jobs under one mutex; each worker takes a job, makes sure it
 * has the content (a fresh message carries it from the session; a retried
 * or recovered one is read from the store with the worker's own reader),
 * writes one Maildir file per recipient, and reports the job back to the
 * store. Jobs still queued at stop are dropped: their recipients are still
 * 'queued' in the database and go out after the next start.
 */
#include <event2/buffer.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mda/mda.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define MDA_BATCH 64

struct mda {
	char *data_dir;
	int data_fd;    /* for syncfs(2) */
	dev_t data_dev; /* its file system, where mailboxes usually are */
	char host[128]; /* the host name part of Maildir file names */
	size_t worker_count;
	pthread_t *workers;
	size_t started;
	struct store *store;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct delivery_job *head, **tail;
	bool stopping;
};

/* maildir_host - the host name with '/' and ':' replaced: both have meaning
 * in Maildir file names. */
static void maildir_host(char *out, size_t size, const char *hostname)
{
	str_copy(out, size, hostname);
	for (char *p = out; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
}

struct mda *mda_create(const char *data_dir, const char *hostname, size_t workers)
{
	struct mda *m = xcalloc(1, sizeof *m);
	m->data_dir = str_dup(data_dir);
	m->data_fd = -1;
	maildir_host(m->host, sizeof m->host, hostname);
	m->worker_count = workers ? workers : 1;
	m->workers = xcalloc(m->worker_count, sizeof *m->workers);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	m->tail = &m->head;
	return m;
}

void mda_dispatch(struct delivery_job *job, void *arg)
{
	struct mda *m = arg;
	job->next = NULL;
	pthread_mutex_lock(&m->lock);
	*m->tail = job;
	m->tail = &job->next;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

/* mda_take - wait for work, then take up to MDA_BATCH jobs; NULL when stopping. */
static struct delivery_job *mda_take(struct mda *m)
{
	pthread_mutex_lock(&m->lock);
	while (!m->head && !m->stopping)
		pthread_cond_wait(&m->wake, &m->lock);
	struct delivery_job *batch = NULL, **tail = &batch;
	for (int n = 0; !m->stopping && m->head && n < MDA_BATCH; n++) {
		struct delivery_job *job = m->head;
		m->head = job->next;
		job->next = NULL;
		*tail = job;
		tail = &job->next;
	}
	if (!m->head)
		m->tail = &m->head;
	pthread_mutex_unlock(&m->lock);
	return batch;
}

static void mda_fail_all(struct delivery_job *job, const char *why)
{
	for (size_t i = 0; i < job->rcpt_count; i++) {
		job->rcpts[i].status = DELIVERY_TEMPFAIL;
		str_copy(job->rcpts[i].error, sizeof job->rcpts[i].error, why);
	}
}

/* mda_load_body - a retried or recovered message has its content in the store. */
static bool mda_load_body(struct mda *m, struct store_reader **reader, struct delivery_job *job)
{
	if (job->body)
		return true;
	char err[256];
	if (!*reader)
		*reader = store_reader_open(m->data_dir, err, sizeof err);
	job->body = evbuffer_new();
	if (!job->body)
		fatal("evbuffer_new failed");
	if (!*reader || !store_reader_body(*reader, job->msg_id, job->body)) {
		mda_fail_all(job, "cannot read the message from the queue");
		return false;
	}
	return true;
}

/* mda_dir_synced - fsync dir unless this batch already did; false if it failed. */
static bool mda_dir_synced(const char **done, bool *results, size_t *count, const char *dir)
{
	for (size_t i = 0; i < *count; i++)
		if (strcmp(done[i], dir) == 0)
			return results[i];
	done[*count] = dir;
	results[*count] = maildir_sync_dir(dir);
	return results[(*count)++];
}

/* mda_sync_dirs - fsync each distinct new/ directory of the batch once. */
static void mda_sync_dirs(struct delivery_job *batch, struct maildir_file **files, size_t files_total)
{
	const char **done = xcalloc(files_total ? files_total : 1, sizeof *done);
	bool *results = xcalloc(files_total ? files_total : 1, sizeof *results);
	size_t count = 0, j = 0;
	for (struct delivery_job *job = batch; job; job = job->next, j++) {
		for (size_t i = 0; files[j] && i < job->rcpt_count; i++) {
			struct delivery_rcpt *r = &job->rcpts[i];
			if (r->status == DELIVERY_OK && !mda_dir_synced(done, results, &count, files[j][i].new_dir)) {
				r->status = DELIVERY_TEMPFAIL;
				str_copy(r->error, sizeof r->error, "cannot fsync new/");
			}
		}
	}
	free(done);
	free(results);
}

/* A file system a batch wrote to, and whether flushing it worked. */
struct mda_fs {
	dev_t dev;
	bool synced;
};

/* mda_fs_sync - syncfs(2) the file system of file: the data directory's through its descriptor, another through file's
 * tmp/. */
static bool mda_fs_sync(const struct mda *m, const struct maildir_file *file)
{
	if (file->dev == m->data_dev)
		return syncfs(m->data_fd) == 0;
	char dir[MAILDIR_PATH_MAX];
	str_copy(dir, sizeof dir, file->tmp_path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = syncfs(fd) == 0;
	close(fd);
	return ok;
}

/* mda_fs_synced - file's file system is flushed: once per batch (fs[0..*count) are those done so far). */
static bool mda_fs_synced(const struct mda *m, struct mda_fs *fs, size_t *count, const struct maildir_file *file)
{
	for (size_t i = 0; i < *count; i++)
		if (fs[i].dev == file->dev)
			return fs[i].synced;
	fs[*count].dev = file->dev;
	fs[*count].synced = mda_fs_sync(m, file);
	return fs[(*count)++].synced;
}

/*
 * mda_run_batch - deliver a batch: write every file under tmp/, make them
 * all durable with one syncfs(2) per file system written to (one, unless
 * mailboxes live on other mounts), link each into new/, fsync each new/
 * directory once. One flush for the batch instead of two per message.
 */
static void mda_run_batch(struct mda *m, struct store_reader **reader, struct delivery_job *batch, size_t count)
{
	struct maildir_file **files = xcalloc(count, sizeof *files);
	size_t j = 0, files_total = 0;
	bool any = false;
	for (struct delivery_job *job = batch; job; job = job->next, j++) {
		if (!mda_load_body(m, reader, job))
			continue;
		files[j] = xcalloc(job->rcpt_count ? job->rcpt_count : 1, sizeof **files);
		files_total += job->rcpt_count;
		for (size_t i = 0; i < job->rcpt_count; i++)
			any |= maildir_write(m->data_dir, m->host, job, job->body, &job->rcpts[i], &files[j][i]);
	}
	struct mda_fs *fs = xcalloc(files_total ? files_total : 1, sizeof *fs);
	size_t fs_count = 0, written = 0;
	j = 0;
	for (struct delivery_job *job = batch; any && job; job = job->next, j++) {
		for (size_t i = 0; files[j] && i < job->rcpt_count; i++) {
			struct delivery_rcpt *r = &job->rcpts[i];
			if (r->status != DELIVERY_OK)
				continue;
			written++;
			if (!mda_fs_synced(m, fs, &fs_count, &files[j][i])) {
				unlink(files[j][i].tmp_path);
				r->status = DELIVERY_TEMPFAIL;
				str_copy(r->error, sizeof r->error, "cannot flush the mailbox files to disk");
			} else {
				maildir_publish(job, r, &files[j][i]);
			}
		}
	}
	if (written > 0)
		log_debug("event=maildir_synced files=%zu filesystems=%zu", written, fs_count);
	free(fs);
	mda_sync_dirs(batch, files, files_total);
	for (j = 0; j < count; j++)
		free(files[j]);
	free(files);
}

static void mda_report(struct mda *m, struct delivery_job *batch)
{
	int64_t now = time_wall_ms();
	while (batch) {
		struct delivery_job *job = batch;
		batch = job->next;
		for (size_t i = 0; i < job->rcpt_count; i++) {
			struct delivery_rcpt *r = &job->rcpts[i];
			char to[LOG_QUOTE_MAX];
			if (r->status == DELIVERY_OK)
				log_info("event=delivered qid=%s rcpt_id=%lld to=%s mailbox=%s delay_ms=%lld", job->qid,
				         (long long)r->id, log_quote(to, sizeof to, r->address, strlen(r->address)),
				         r->mailbox, (long long)(now - job->arrival_ms));
		}
		/* The store does not need the content: free it before handing back. */
		if (job->body) {
			evbuffer_free(job->body);
			job->body = NULL;
		}
		store_delivery_done(m->store, job);
	}
}

static void *mda_worker(void *arg)
{
	struct mda *m = arg;
	struct store_reader *reader = NULL;
	struct delivery_job *batch;
	while ((batch = mda_take(m)) != NULL) {
		size_t count = 0;
		for (struct delivery_job *job = batch; job; job = job->next)
			count++;
		mda_run_batch(m, &reader, batch, count);
		mda_report(m, batch);
	}
	store_reader_close(reader);
	return NULL;
}

bool mda_run(struct mda *m, struct store *store)
{
	m->store = store;
	m->data_fd = open(m->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (m->data_fd < 0 || fstat(m->data_fd, &st) != 0)
		return false;
	m->data_dev = st.st_dev;
	for (; m->started < m->worker_count; m->started++)
		if (pthread_create(&m->workers[m->started], NULL, mda_worker, m) != 0)
			return false;
	return true;
}

void mda_stop(struct mda *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < m->started; i++)
		pthread_join(m->workers[i], NULL);
	m->started = 0;
}

void mda_free(struct mda *m)
{
	if (!m)
		return;
	while (m->head) {
		struct delivery_job *next = m->head->next;
		store_job_free(m->head);
		m->head = next;
	}
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	if (m->data_fd >= 0)
		close(m->data_fd);
	free(m->workers);
	free(m->data_dir);
	free(m);
}
