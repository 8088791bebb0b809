/*
 * smtpd_lookup.h - private to src/smtpd: a session's directory lookups,
 * answered off the loop thread.
 *
 * Who a recipient is, whether an address is suppressed, whether a user
 * may send as an address: each is a read of the queue database. On the
 * loop thread a slow disk would stall every session, so a session hands
 * the read to the lookup threads (a util_pool, each thread with its own
 * read-only connection) and reads no more input until the answer is back;
 * then the command's continuation runs and the session goes on reading.
 * An answer for a session that has gone finds nothing and is dropped.
 */
#ifndef TERN_SMTPD_LOOKUP_H
#define TERN_SMTPD_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util_pool.h"

struct smtpd_session;
struct store_reader;

/* A lookup: the first member of the caller's own struct, which holds the question and the answer. */
struct smtpd_lookup {
	struct pool_job job; /* first: the pool's (smtpd_lookups_submit) */
	uint64_t session_id;
	/* smtpd_lookups_submit's: find the session again when the answer is back. */
	struct smtpd_session *(*find)(void *ctx, uint64_t id);
	void *find_ctx;
	/* On a lookup thread: ask reader (NULL if the thread could not open one: answer an error). */
	void (*query)(struct smtpd_lookup *lookup, struct store_reader *reader);
	/* On the loop thread, if the session is still there: act on the answer (it may reply). */
	void (*finish)(struct smtpd_session *s, struct smtpd_lookup *lookup);
	/* Free the caller's struct. */
	void (*release)(struct smtpd_lookup *lookup);
};

/* smtpd_lookup_start - send lookup off (the host's lookup call); s reads nothing more until its finish has run. */
void smtpd_lookup_start(struct smtpd_session *s, struct smtpd_lookup *lookup);

/* smtpd_lookup_finish - the answer is back, on the loop: finish it in s (NULL: the session has gone), free it. */
void smtpd_lookup_finish(struct smtpd_session *s, struct smtpd_lookup *lookup);

/* smtpd_lookups_start / smtpd_lookups_stop - the lookup threads of the server, each with a reader on data_dir. */
struct event_base;
struct pool *smtpd_lookups_start(struct event_base *base, char *data_dir);
void smtpd_lookups_stop(struct pool *lookups);

/* smtpd_lookups_submit - the server's host lookup call: query on a lookup thread, finish with find(ctx, id). */
void smtpd_lookups_submit(struct pool *lookups, struct smtpd_lookup *lookup,
                          struct smtpd_session *(*find)(void *ctx, uint64_t id), void *ctx);

#endif
