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
 *
 * A check may also ask for the password's SCRAM-SHA-256 secret: made on
 * the worker after a success (PBKDF2 costs milliseconds too), so that a
 * user whose password was set before every password got one has it after
 * their next login.
 */
#ifndef TERN_AUTH_POOL_H
#define TERN_AUTH_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct auth_pool;

#include "auth/auth_secret.h"

struct auth_pool_result {
	bool ok;
	char scram[AUTH_SECRET_MAX]; /* with ok, when asked for: the password's SCRAM-SHA-256 secret; else "" */
};

typedef void auth_pool_done(void *arg, uint64_t ticket, const struct auth_pool_result *result);

struct auth_pool *auth_pool_start(struct event_base *base, unsigned threads, auth_pool_done *done, void *arg);

/*
 * auth_pool_check - check password against hash; done(arg, ticket, result)
 * follows on the loop thread. A success is remembered for cache_ms (0: not
 * at all, and no remembered success is used either). With make_scram, a
 * success also brings the password's SCRAM-SHA-256 secret.
 */
void auth_pool_check(struct auth_pool *pool, uint64_t ticket, const char *password, const char *hash, uint64_t cache_ms,
                     bool make_scram);

/* auth_pool_stop - join the threads; results not yet delivered are dropped. */
void auth_pool_stop(struct auth_pool *pool);

#endif
