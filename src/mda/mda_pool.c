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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mda/mda.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

struct mda {
	char *data_dir;
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

static struct delivery_job *mda_take(struct mda *m)
{
	pthread_mutex_lock(&m->lock);
	while (!m->head && !m->stopping)
		pthread_cond_wait(&m->wake, &m->lock);
	struct delivery_job *job = NULL;
	if (!m->stopping) {
		job = m->head;
		m->head = job->next;
		if (!m->head)
			m->tail = &m->head;
		job->next = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	return job;
}

static void mda_fail_all(struct delivery_job *job, const char *why)
{
	for (size_t i = 0; i < job->rcpt_count; i++) {
		job->rcpts[i].status = DELIVERY_TEMPFAIL;
		str_copy(job->rcpts[i].error, sizeof job->rcpts[i].error, why);
	}
}

static void mda_run_job(struct mda *m, struct store_reader **reader, struct delivery_job *job)
{
	if (!job->body) {
		char err[256];
		if (!*reader)
			*reader = store_reader_open(m->data_dir, err, sizeof err);
		job->body = evbuffer_new();
		if (!*reader || !store_reader_body(*reader, job->msg_id, job->body)) {
			mda_fail_all(job, "cannot read the message from the queue");
			return;
		}
	}
	for (size_t i = 0; i < job->rcpt_count; i++) {
		struct delivery_rcpt *r = &job->rcpts[i];
		maildir_deliver(m->data_dir, m->host, job, job->body, r);
		if (r->status == DELIVERY_OK)
			log_info("event=delivered qid=%s rcpt_id=%lld to=\"%s\" mailbox=%s delay_ms=%lld", job->qid,
				 (long long)r->id, r->address, r->mailbox,
				 (long long)(time_wall_ms() - job->arrival_ms));
	}
}

static void *mda_worker(void *arg)
{
	struct mda *m = arg;
	struct store_reader *reader = NULL;
	struct delivery_job *job;
	while ((job = mda_take(m)) != NULL) {
		mda_run_job(m, &reader, job);
		/* The store does not need the content: free it before handing back. */
		if (job->body) {
			evbuffer_free(job->body);
			job->body = NULL;
		}
		store_delivery_done(m->store, job);
	}
	store_reader_close(reader);
	return NULL;
}

bool mda_run(struct mda *m, struct store *store)
{
	m->store = store;
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
		delivery_job_free(m->head);
		m->head = next;
	}
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	free(m->workers);
	free(m->data_dir);
	free(m);
}
