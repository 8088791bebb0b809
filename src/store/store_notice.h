/*
 * store_notice.h - private to src/store: notices to senders (bounces,
 * delay warnings, success notices), composed off the writer.
 *
 * The writer records what a notice must say (the notices and notice_rcpts
 * tables) in the same transaction as the results that owe it, which costs
 * a few rows. This thread composes each owed notice afterwards, reading
 * the original message (up to max_message_size, perhaps from its spool
 * file) through its own connection, and hands the result to the writer
 * like any message; the writer inserts it and deletes the owed row in
 * one transaction. So a storm of bounces never holds the writer's
 * transaction, on which every client's 250 waits, and a crash between the
 * two steps leaves the notice owed, to be composed after the start.
 */
#ifndef TERN_STORE_NOTICE_H
#define TERN_STORE_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_message;
struct store_notices;

/* store_notices_start - the composer thread; it composes every notice still owed first. NULL with err. */
struct store_notices *store_notices_start(struct store *store, const char *data_dir, const char *hostname, char *err,
                                          size_t errlen);

/* store_notices_wake - the writer committed new owed notices. */
void store_notices_wake(struct store_notices *n);

/* store_notices_settled - the writer's turn with count of this thread's notices ended (committed or not). */
void store_notices_settled(struct store_notices *n, size_t count, bool committed);

/* store_notices_stop - join the thread; what it has not handed over stays owed. */
void store_notices_stop(struct store_notices *n);

/* store_notices_free - after store_notices_stop, once the writer has settled what it was handed. */
void store_notices_free(struct store_notices *n);

/* store_commit_notice - (store_thread.c) a composed notice for the writer's next turn; msg->notice_id is set. */
void store_commit_notice(struct store *store, struct store_message *msg);

#endif
