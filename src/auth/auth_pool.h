/*
 * auth_pool.h - password checks on worker threads.
 *
 * crypt(3) with yescrypt or SHA-512-crypt is slow on purpose (milliseconds
 * of CPU): done on the loop thread it would stall every session. Requests
 * go to a few threads; results come back on the loop thread through an
 * event, tagged with the caller's ticket (a session id, so a result for a
 * session that has gone finds nothing).
 *
 * Successful checks may be remembered for a while (the caller says how
 * long) under an HMAC-SHA-256 of the stored hash and the password, keyed
 * with random bytes that live only in this process: a client that logs in
 * for every message then pays the slow hash once, not every time. The
 * price: someone who can read the process's memory could test guesses at
 * HMAC speed instead of yescrypt speed, for passwords used lately. A
 * changed password has a new stored hash, so an old entry never matches.
 */
#ifndef TERN_AUTH_POOL_H
#define TERN_AUTH_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct auth_pool;

typedef void auth_pool_done(void *arg, uint64_t ticket, bool ok);

struct auth_pool *auth_pool_start(struct event_base *base, unsigned threads, auth_pool_done *done, void *arg);

/*
 * auth_pool_check - check password against hash; done(arg, ticket, ok)
 * follows on the loop thread. A success is remembered for cache_ms (0: not
 * at all, and no remembered success is used either).
 */
void auth_pool_check(struct auth_pool *pool, uint64_t ticket, const char *password, const char *hash,
                     uint64_t cache_ms);

/* auth_pool_stop - join the threads; results not yet delivered are dropped. */
void auth_pool_stop(struct auth_pool *pool);

#endif
