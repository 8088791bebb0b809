/*
 * mta.h - remote delivery: recipients in other domains go out over SMTP
 * to their domain's mail exchangers (RFC 5321 5), on the loop thread.
 *
 * The store hands over jobs of remote recipients (delivery_job.remote)
 * from its thread; each job's recipients are grouped by domain, each
 * domain is routed (MX, implicit MX, null MX) and delivered in one SMTP
 * transaction, and the job goes back to the store with a result per
 * recipient: delivered, deferred (tempfail) or bounced (permfail).
 */
#ifndef TERN_MTA_H
#define TERN_MTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"

struct event_base;
struct mta;

/* mta_create - the resolver and the client TLS context; NULL with err set. */
struct mta *mta_create(struct event_base *base, struct config *config, char *err, size_t errlen);

/* mta_run - start taking jobs: results go to store, bodies not in a job come from reader. */
void mta_run(struct mta *mta, struct store *store, struct store_reader *reader);

/* mta_dispatch - store_dispatch for remote jobs; any thread. */
void mta_dispatch(struct delivery_job *job, void *mta);

/* mta_reload - new sessions use config. */
void mta_reload(struct mta *mta, struct config *config);

/*
 * mta_shutdown - SIGTERM: start nothing new, close idle connections, and
 * let the deliveries under way finish; done(arg) once none is left, or
 * after shutdown_timeout (whatever is still under way is then cut by
 * mta_free and stays queued).
 */
void mta_shutdown(struct mta *mta, void (*done)(void *arg), void *arg);

/*
 * mta_free - abort every session (the loop has stopped): recipients in
 * flight stay queued in the store and go out again after a restart.
 */
void mta_free(struct mta *mta);

#endif
