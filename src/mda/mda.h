/*
 * mda.h - local delivery: a pool of worker threads that write messages into
 * Maildir mailboxes (DATA_DIR/mail/DOMAIN/LOCAL/{tmp,new,cur}).
 *
 * Jobs come from the store thread (mda_dispatch matches store_dispatch) and
 * go back to it with a status per recipient. File writes block, which is why
 * they run here and not on the loop thread.
 */
#ifndef TERN_MDA_H
#define TERN_MDA_H

#include <stddef.h>
#include <sys/types.h>

#include "store/store.h"

struct mda;

/* mda_create - a pool that queues jobs; workers start with mda_run. */
struct mda *mda_create(const char *data_dir, const char *hostname, size_t workers);

/* mda_dispatch - store_dispatch: queue job (any thread). */
void mda_dispatch(struct delivery_job *job, void *mda);

/* mda_run - start the workers; results go to store. */
bool mda_run(struct mda *mda, struct store *store);

/* mda_stop - let each worker finish the job it is writing, then join them.
 * Jobs still queued, and any dispatched later, wait for mda_free: their
 * recipients stay 'queued' in the database and go out at the next start. */
void mda_stop(struct mda *mda);

/* mda_free - after mda_stop and after the store has stopped dispatching. */
void mda_free(struct mda *mda);

/*
 * Maildir delivery in three steps, so that a batch of messages shares its
 * fsyncs (mda_pool.c):
 *   maildir_write    the file for recipient r under tmp/: Return-Path and
 *                    Delivered-To lines, then the content with CRLF as LF;
 *   (the caller makes every tmp file of the batch durable: one syncfs(2)
 *   per file system the batch wrote to, told apart by the files' st_dev)
 *   maildir_publish  link it into new/ under a name made of the queue id and
 *                    recipient id, so a delivery repeated after a crash finds
 *                    the name taken and does not duplicate the message;
 *   maildir_sync_dir fsync new/ so the name survives a crash.
 * Failures set r->status and r->error and return false.
 */
#define MAILDIR_PATH_MAX 4096

struct maildir_file {
	char tmp_path[MAILDIR_PATH_MAX];
	char new_path[MAILDIR_PATH_MAX];
	char new_dir[MAILDIR_PATH_MAX];
	dev_t dev; /* the file system the file is on */
};

bool maildir_write(const char *data_dir, const char *host, const struct delivery_job *job, struct evbuffer *body,
                   struct delivery_rcpt *r, struct maildir_file *file);
bool maildir_publish(const struct delivery_job *job, struct delivery_rcpt *r, const struct maildir_file *file);
bool maildir_sync_dir(const char *dir);

#endif
