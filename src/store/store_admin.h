/*
 * store_admin.h - what the command line does with the database: users,
 * aliases, and a look at the queue. Each call opens its own connection, so
 * these work while the server runs (SQLite locks, WAL readers).
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

/* The queue. */
struct store_queue_rcpt {
	int64_t id;
	const char *address;
	const char *mailbox;
	const char *state; /* queued, deferred, bounced */
	int64_t attempts;
	int64_t next_attempt_ms; /* 0 when not deferred */
	const char *last_error;  /* NULL when none */
};

struct store_queue_entry {
	const char *qid;
	const char *sender;
	int64_t arrival_ms;
	int64_t size;
	const struct store_queue_rcpt *rcpts;
	size_t rcpt_count;
};

/* store_queue_each - every message still in the queue, oldest first. Pointers
 * are valid only during the call. */
typedef void store_queue_fn(void *ctx, const struct store_queue_entry *entry);
bool store_queue_each(struct store_admin *admin, store_queue_fn *fn, void *ctx, char *err, size_t errlen);

/* store_queue_show - one message by queue id; false with err "no message X". */
bool store_queue_show(struct store_admin *admin, const char *qid, store_queue_fn *fn, void *ctx, char *err,
                      size_t errlen);

#endif
