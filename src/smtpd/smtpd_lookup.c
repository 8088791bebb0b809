/*
 * smtpd_lookup.c - directory lookups off the loop thread (see smtpd_lookup.h).
 */
#include "smtpd/smtpd_lookup.h"

#include <stdlib.h>

#include "smtpd/smtpd_private.h"
#include "smtpd/smtpd_session.h"
#include "store/store.h"
#include "util/util_log.h"
#include "util/util_str.h"

/* Two threads: one read waiting on the disk leaves the other to answer. */
#define SMTPD_LOOKUP_THREADS 2

static void *lookup_worker_open(void *data_dir)
{
	char err[256];
	struct store_reader *reader = store_reader_open(data_dir, err, sizeof err);
	if (!reader)
		log_error("event=lookup_thread_failed error=\"%s\"", err);
	return reader;
}

static void lookup_worker_close(void *reader)
{
	store_reader_close(reader);
}

static void lookup_run(struct pool_job *job, void *reader)
{
	struct smtpd_lookup *lookup = (struct smtpd_lookup *)job;
	lookup->query(lookup, reader);
}

static void lookup_done(struct pool_job *job, bool cancelled)
{
	struct smtpd_lookup *lookup = (struct smtpd_lookup *)job;
	smtpd_lookup_finish(cancelled ? NULL : lookup->find(lookup->find_ctx, lookup->session_id), lookup);
}

void smtpd_lookup_finish(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	if (s) {
		s->lookup_pending = false;
		lookup->finish(s, lookup);
		session_resume(s);
	}
	lookup->release(lookup);
}

void smtpd_lookup_start(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	lookup->session_id = s->id;
	s->lookup_pending = true;
	s->host->lookup(s->host->ctx, lookup);
}

void smtpd_lookups_submit(struct pool *lookups, struct smtpd_lookup *lookup,
                          struct smtpd_session *(*find)(void *ctx, uint64_t id), void *ctx)
{
	lookup->job.run = lookup_run;
	lookup->job.done = lookup_done;
	lookup->find = find;
	lookup->find_ctx = ctx;
	pool_submit(lookups, &lookup->job);
}

struct pool *smtpd_lookups_start(struct event_base *base, char *data_dir)
{
	return pool_start(base, SMTPD_LOOKUP_THREADS, lookup_worker_open, lookup_worker_close, data_dir,
	                  "directory lookups");
}

void smtpd_lookups_stop(struct pool *lookups)
{
	pool_stop(lookups);
}
