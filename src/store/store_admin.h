/*
 * store_admin.h - what the command line does with the database: users,
 * aliases, the queue and the suppression list. Each call opens its own
 * connection, so these work while the server runs (SQLite locks, WAL
 * readers).
 *
 * Addresses are lower-cased by the caller. Errors come back as a message in
 * err (never logged here), and the function returns false.
 */
#ifndef TERN_STORE_ADMIN_H
#define TERN_STORE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_admin;

struct store_admin *store_admin_open(const char *data_dir, char *err, size_t errlen);
void store_admin_close(struct store_admin *admin);

/* Users. password_hash may be NULL (no password yet: no AUTH). add fails if
 * the user or an alias of that address exists; del fails if it does not. */
bool store_user_add(struct store_admin *admin, const char *address, const char *password_hash, char *err,
                    size_t errlen);
bool store_user_set_password(struct store_admin *admin, const char *address, const char *password_hash, char *err,
                             size_t errlen);
/* store_user_set_secrets - a new password: its crypt(3) hash and the opt-in
 * SCRAM-SHA-256 and CRAM-MD5 secrets (NULL: none), all replaced together,
 * since secrets of an old password must not outlive it. */
bool store_user_set_secrets(struct store_admin *admin, const char *address, const char *password_hash,
                            const char *scram, const char *cram, char *err, size_t errlen);
/* store_user_set_senders - the addresses and "@domain"s the user may also send as (comma-separated; "" none). */
bool store_user_set_senders(struct store_admin *admin, const char *address, const char *senders, char *err,
                            size_t errlen);
bool store_user_del(struct store_admin *admin, const char *address, char *err, size_t errlen);
bool store_user_exists(struct store_admin *admin, const char *address);

struct store_user_info {
	const char *address;
	bool has_password, has_scram, has_cram;
	const char *senders; /* "" when none */
	int64_t created_ms;
};

/* store_user_each - call fn for every user in address order. */
typedef void store_user_fn(void *ctx, const struct store_user_info *user);
bool store_user_each(struct store_admin *admin, store_user_fn *fn, void *ctx, char *err, size_t errlen);

/* Aliases: targets is a comma-separated list of addresses. add replaces an
 * existing alias of the same address; fails if a user has that address. */
bool store_alias_set(struct store_admin *admin, const char *address, const char *targets, char *err, size_t errlen);
bool store_alias_del(struct store_admin *admin, const char *address, char *err, size_t errlen);
typedef void store_alias_fn(void *ctx, const char *address, const char *targets);
bool store_alias_each(struct store_admin *admin, store_alias_fn *fn, void *ctx, char *err, size_t errlen);

/* The queue (store_queue.c). */

struct store_queue_attempt {
	int64_t at_ms;
	const char *outcome; /* deferred, bounced */
	const char *reply;   /* the peer's reply or tern's reason */
};

struct store_queue_rcpt {
	int64_t id;
	const char *address;
	const char *mailbox;
	const char *route;     /* mailbox, lmtp, mx, relay (store_route_name) */
	const char *route_key; /* relay, and mx by a transport line: the rule; else NULL */
	const char *state;     /* queued, deferred, held, bounced */
	int64_t attempts;
	int64_t next_attempt_ms;                   /* 0 when not deferred */
	const char *last_error;                    /* NULL when none */
	const struct store_queue_attempt *history; /* store_queue_show only: the failed attempts, oldest first */
	size_t history_count;
};

struct store_queue_entry {
	const char *qid;
	const char *sender;
	int64_t arrival_ms;
	int64_t size;
	const struct store_queue_rcpt *rcpts;
	size_t rcpt_count;
};

/* What store_queue_each lists: every field left zero or NULL lets everything through. */
struct store_queue_filter {
	const char *state;     /* recipients in this state */
	const char *domain;    /* recipients in this domain (lower case) */
	int64_t older_than_ms; /* messages that arrived at least this long ago */
	int64_t newer_than_ms; /* messages that arrived less than this long ago */
};

/* store_queue_each - every message with a recipient that passes filter (only
 * those recipients shown), oldest first. Pointers are valid only during the call. */
typedef void store_queue_fn(void *ctx, const struct store_queue_entry *entry);
bool store_queue_each(struct store_admin *admin, const struct store_queue_filter *filter, store_queue_fn *fn, void *ctx,
                      char *err, size_t errlen);

/* store_queue_show - one message by queue id, with each recipient's failed attempts; false with err "no message X". */
bool store_queue_show(struct store_admin *admin, const char *qid, store_queue_fn *fn, void *ctx, char *err,
                      size_t errlen);

/*
 * What an operator can do to waiting mail. The server notices the change
 * within a second (the store thread watches the database) and acts on it;
 * each action is recorded with who did it, and the server logs it.
 *
 *   FLUSH    deferred recipients (of a message, of a domain, or all) are due now
 *   RETRY    deferred and bounced recipients of a message are due now, backoff restarted
 *   HOLD     queued and deferred recipients of a message wait until released
 *   RELEASE  held recipients of a message are due now
 *   DELETE   the message and all its recipients go, with no bounce
 */
enum store_queue_action { QUEUE_FLUSH, QUEUE_RETRY, QUEUE_HOLD, QUEUE_RELEASE, QUEUE_DELETE };

/* store_queue_act - action on target (a queue id; for FLUSH also a domain, or NULL for all), by who.
 * *count: the recipients it changed. false with err when the target is not in the queue or on error. */
bool store_queue_act(struct store_admin *admin, enum store_queue_action action, const char *target, const char *who,
                     size_t *count, char *err, size_t errlen);

/* store_queue_action_name - "flush", "retry", ... */
const char *store_queue_action_name(enum store_queue_action action);

/*
 * The suppression list (store_suppress.c): addresses in other domains that
 * submitted mail may not go to, because they bounced for good (the store
 * adds them) or because an operator listed them. Addresses compare without
 * regard to ASCII case. Each change is recorded with who made it, and the
 * running server logs it.
 */
struct store_suppression {
	const char *address;
	const char *reason;     /* the remote server's reply, or the operator's words */
	bool manual;            /* added by an operator: lasts until deleted */
	const char *source_qid; /* the message that bounced, or NULL */
	const char *added_by;   /* the operator, or NULL */
	int64_t added_ms;       /* when it was added, or last bounced */
};

/* store_suppression_each - the entries in force, by address: bounce entries older than ttl_ms do not count
 * (0: they all do); domain (lower case) or NULL for all. Pointers are valid only during the call. */
typedef void store_suppression_fn(void *ctx, const struct store_suppression *entry);
bool store_suppression_each(struct store_admin *admin, const char *domain, uint64_t ttl_ms, store_suppression_fn *fn,
                            void *ctx, char *err, size_t errlen);

/* store_suppression_add - list address by hand (replacing an entry a bounce made), by who. */
bool store_suppression_add(struct store_admin *admin, const char *address, const char *reason, const char *who,
                           char *err, size_t errlen);

/* store_suppression_del - take address off the list; false with err "X is not on the suppression list". */
bool store_suppression_del(struct store_admin *admin, const char *address, const char *who, char *err, size_t errlen);

/* store_suppression_clear - empty the list; *count: the entries it held. */
bool store_suppression_clear(struct store_admin *admin, const char *who, size_t *count, char *err, size_t errlen);

#endif
