/*
 * util_pool.c - work on threads, results on the loop (see util_pool.h).
 *
 * One mutex guards the queue and the list of finished jobs; one event on
 * the loop's base, made active by the worker that finishes a job, hands
 * the finished ones over in a batch.
 */
#include "util/util_pool.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/util_log.h"
#include "util/util_str.h"

#define POOL_MAX_THREADS 16

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t threads[POOL_MAX_THREADS];
	unsigned thread_count;
	bool stopping;
	struct pool_job *queue, **queue_tail;
	struct pool_job *finished, **finished_tail;
	struct event *finished_event;
	void *(*worker_open)(void *arg);
	void (*worker_close)(void *worker);
	void *arg;
};

static void *pool_main(void *arg)
{
	struct pool *pool = arg;
	void *worker = pool->worker_open ? pool->worker_open(pool->arg) : NULL;
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->queue && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->stopping)
			break;
		struct pool_job *job = pool->queue;
		pool->queue = job->next;
		if (!pool->queue)
			pool->queue_tail = &pool->queue;
		pthread_mutex_unlock(&pool->lock);

		job->run(job, worker);

		pthread_mutex_lock(&pool->lock);
		job->next = NULL;
		*pool->finished_tail = job;
		pool->finished_tail = &job->next;
		event_active(pool->finished_event, EV_READ, 0);
	}
	pthread_mutex_unlock(&pool->lock);
	if (worker && pool->worker_close)
		pool->worker_close(worker);
	return NULL;
}

/* pool_take - the finished jobs, in the order they finished. */
static struct pool_job *pool_take(struct pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	struct pool_job *list = pool->finished;
	pool->finished = NULL;
	pool->finished_tail = &pool->finished;
	pthread_mutex_unlock(&pool->lock);
	return list;
}

static void pool_hand_over(struct pool_job *list, bool cancelled)
{
	while (list) {
		struct pool_job *next = list->next;
		list->done(list, cancelled);
		list = next;
	}
}

static void pool_finished_cb(evutil_socket_t fd, short what, void *arg)
{
	pool_hand_over(pool_take(arg), false);
}

struct pool *pool_start(struct event_base *base, unsigned threads, void *(*worker_open)(void *arg),
                        void (*worker_close)(void *worker), void *arg, const char *what)
{
	struct pool *pool = xcalloc(1, sizeof *pool);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pool->queue_tail = &pool->queue;
	pool->finished_tail = &pool->finished;
	pool->worker_open = worker_open;
	pool->worker_close = worker_close;
	pool->arg = arg;
	pool->finished_event = event_new(base, -1, 0, pool_finished_cb, pool);
	if (!pool->finished_event)
		fatal("event_new failed");
	if (threads < 1)
		threads = 1;
	if (threads > POOL_MAX_THREADS)
		threads = POOL_MAX_THREADS;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, pool_main, pool) != 0)
			fatal("cannot start a thread for %s", what);
		pool->thread_count++;
	}
	return pool;
}

void pool_submit(struct pool *pool, struct pool_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&pool->lock);
	*pool->queue_tail = job;
	pool->queue_tail = &job->next;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

void pool_stop(struct pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	pool_hand_over(pool->queue, true);
	pool_hand_over(pool_take(pool), true);
	event_free(pool->finished_event);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
