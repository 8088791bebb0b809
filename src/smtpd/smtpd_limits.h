/*
 * smtpd_limits.h - private to src/smtpd: counters against abuse, kept in
 * memory on the loop thread.
 *
 * Rates (messages and recipients per hour, per authenticated user or per
 * client address) are estimated with two one-hour buckets: the current
 * one, and the previous one weighted by how much of it still lies within
 * the last hour. That is smooth at bucket edges and costs two counters.
 *
 * Failed AUTH: failures within a window, per key (the caller keeps one for
 * a client address and user name, one for the address alone); at the
 * limit the key is locked out for a while.
 *
 * Entries that have not been touched for two hours (and are not locked)
 * are dropped by limits_prune.
 */
#ifndef TERN_SMTPD_LIMITS_H
#define TERN_SMTPD_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtpd_limits;

struct smtpd_limits *limits_new(void);
void limits_free(struct smtpd_limits *limits);

/*
 * limits_take - count amount against key's hourly limit (0: none). False,
 * counting nothing, if that would go over; *used is the estimate before.
 */
bool limits_take(struct smtpd_limits *limits, const char *key, uint64_t amount, uint64_t limit, uint64_t now_ms,
                 uint64_t *used);

/* limits_locked_until - when key's AUTH lockout ends (ms), 0 if not locked. */
uint64_t limits_locked_until(struct smtpd_limits *limits, const char *key, uint64_t now_ms);

/*
 * limits_auth_failed - record a failed AUTH for key; the number of
 * failures within window_ms, counting this one. At max_failures the key is
 * locked out until now + lockout_ms and its count starts again.
 */
uint64_t limits_auth_failed(struct smtpd_limits *limits, const char *key, uint64_t window_ms, uint64_t max_failures,
                            uint64_t lockout_ms, uint64_t now_ms);

/*
 * limits_auth_seen - did key fail lately with the password whose tag
 * (auth_password_tag, never 0) this is? limits_auth_remember notes one,
 * among the last few. A client retrying a stale password learns nothing
 * new, so its repeats need not be checked or counted (as Dovecot does it).
 */
bool limits_auth_seen(struct smtpd_limits *limits, const char *key, uint64_t tag);
void limits_auth_remember(struct smtpd_limits *limits, const char *key, uint64_t tag, uint64_t now_ms);

/* limits_auth_clear - key's failures are forgotten (a success); a lockout under way stays. */
void limits_auth_clear(struct smtpd_limits *limits, const char *key);

/* limits_prune - drop entries idle for two hours; returns how many remain. */
size_t limits_prune(struct smtpd_limits *limits, uint64_t now_ms);

#endif
