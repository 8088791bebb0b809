/*
 * util_pool.h - work done on a few threads, finished on the loop thread.
 *
 * What would block the event loop (a password hash, a database read)
 * goes to a pool: a job's run() is called on one of the pool's threads,
 * then its done() on the thread of the event base the pool was started
 * with. Jobs are taken in the order they were submitted. Each thread may
 * hold a context of its own (a database connection, say), made by
 * worker_open when the thread starts and closed by worker_close when it
 * stops.
 */
#ifndef TERN_UTIL_POOL_H
#define TERN_UTIL_POOL_H

#include <stdbool.h>

struct event_base;
struct pool;

struct pool_job {
	struct pool_job *next; /* the pool's */
	/* On a pool thread, with that thread's context (NULL if worker_open gave none). */
	void (*run)(struct pool_job *job, void *worker);
	/*
	 * On the loop thread, once run() has returned; it owns the job from
	 * then on. cancelled: the pool stopped before the result could be
	 * handed over (run() may or may not have been called): just free it.
	 */
	void (*done)(struct pool_job *job, bool cancelled);
};

/*
 * pool_start - threads threads (at least one, at most 16), each with a
 * context from worker_open(arg) (worker_open may be NULL). what names the
 * threads' work in a fatal message should one not start.
 */
struct pool *pool_start(struct event_base *base, unsigned threads, void *(*worker_open)(void *arg),
                        void (*worker_close)(void *worker), void *arg, const char *what);

/* pool_submit - any thread: run job on a pool thread, then done on the loop thread. */
void pool_submit(struct pool *pool, struct pool_job *job);

/* pool_stop - the loop thread, when the loop no longer runs: join the threads; each job not yet handed over gets
 * done(job, true). */
void pool_stop(struct pool *pool);

#endif
