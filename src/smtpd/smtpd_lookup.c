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
	struct smtpd_session *s = cancelled ? NULL : smtpd_session_find(lookup->smtpd, lookup->session_id);
	if (s) {
		s->lookup_pending = false;
		lookup->finish(s, lookup);
		session_resume(s);
	}
	lookup->release(lookup);
}

void smtpd_lookup_start(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	lookup->job.run = lookup_run;
	lookup->job.done = lookup_done;
	lookup->smtpd = s->smtpd;
	lookup->session_id = s->id;
	s->lookup_pending = true;
	pool_submit(smtpd_lookups(s->smtpd), &lookup->job);
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
