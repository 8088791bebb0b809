/*
 * store_spool.h - large message bodies in files of their own,
 * DATA_DIR/spool/QID, instead of in the queue database.
 *
 * SQLite writes a body twice (into the WAL, then into the database at the
 * checkpoint), in pages with their own overhead; a file is written once and
 * removed with one unlink. Bodies under STORE_SPOOL_MIN stay in the
 * database, where a small one costs less than a file and its inode.
 *
 * The order that keeps the durability rule: the store thread writes the
 * files of a batch, makes them durable with one syncfs(2), and only then
 * commits the rows that name them; a file is removed only after the commit
 * that deleted its row. A crash in between leaves a file no row names,
 * which store_spool_sweep removes at the next start.
 */
#ifndef TERN_STORE_SPOOL_H
#define TERN_STORE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct store_spool;

/* Bodies of this many octets or more are spooled. */
#define STORE_SPOOL_MIN (32 * 1024)

/* store_spool_open - DATA_DIR/spool, made if missing (writer); NULL with err set. */
struct store_spool *store_spool_open(const char *data_dir, bool writer, char *err, size_t errlen);
void store_spool_close(struct store_spool *spool);

/*
 * store_spool_write - the body of message qid: from body (left as it is),
 * or from the first size octets of spill_fd when spill_fd >= 0. Not yet
 * durable: store_spool_sync does that for every file written. On failure
 * nothing is left of the file, errno says why (ENODATA: spill_fd is
 * shorter than size), and the caller logs it.
 */
bool store_spool_write(struct store_spool *spool, const char *qid, struct evbuffer *body, int spill_fd, uint64_t size);

/* store_spool_sync - every file written so far is on stable storage (with its name); false with errno set. */
bool store_spool_sync(struct store_spool *spool);

/* store_spool_read - append message qid's body to out. */
bool store_spool_read(struct store_spool *spool, const char *qid, struct evbuffer *out);

/* store_spool_remove - message qid's file goes (its row is gone for good); a missing file is no error. */
void store_spool_remove(struct store_spool *spool, const char *qid);

/*
 * store_spool_sweep - remove every file whose message known() does not
 * know (a crash came between writing it and committing, or between
 * deleting the row and the file); returns how many went.
 */
size_t store_spool_sweep(struct store_spool *spool, bool (*known)(const char *qid, void *arg), void *arg);

#endif
