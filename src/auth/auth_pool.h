/*
 * auth_pool.h - password checks on worker threads.
 *
 * crypt(3) with yescrypt or SHA-512-crypt is slow on purpose (milliseconds
 * of CPU): done on the loop thread it would stall every session. Requests
 * go to a few threads; results come back on the loop thread through an
 * event, tagged with the caller's ticket (a session id, so a result for a
 * session that has gone finds nothing).
 *
 * Successful checks are remembered for AUTH_POOL_CACHE_MS under a SHA-256
 * of the stored hash and the password, so a client that logs in for every
 * message pays the hash once an hour, not every time. A changed password
 * has a new stored hash, so the old entry never matches again.
 */
#ifndef TERN_AUTH_POOL_H
#define TERN_AUTH_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct auth_pool;

typedef void auth_pool_done(void *arg, uint64_t ticket, bool ok);

struct auth_pool *auth_pool_start(struct event_base *base, unsigned threads, auth_pool_done *done, void *arg);

/* auth_pool_check - check password against hash; done(arg, ticket, ok) follows on the loop thread. */
void auth_pool_check(struct auth_pool *pool, uint64_t ticket, const char *password, const char *hash);

/* auth_pool_stop - join the threads; results not yet delivered are dropped. */
void auth_pool_stop(struct auth_pool *pool);

#endif
