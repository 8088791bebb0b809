/*
 * smtpd.h - the inbound SMTP server: listeners and sessions on the loop
 * thread.
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include <stdbool.h>

#include "config/config.h"
#include "store/store.h"

struct event_base;
struct smtpd;
struct tls_server;

/*
 * smtpd_create - bind every configured listener (before privileges are
 * dropped). Returns NULL after logging what failed.
 */
struct smtpd *smtpd_create(struct event_base *base, struct config *config);

/* smtpd_run - start accepting; sessions commit through store (the caller's) and look up
 * recipients, senders and users on lookup threads of their own (smtpd_lookup.h). */
void smtpd_run(struct smtpd *smtpd, struct store *store);

/* smtpd_commit_done - store_commit_done for the loop thread. */
void smtpd_commit_done(struct store_message *msg, void *smtpd);

/*
 * smtpd_set_tls - the certificates for STARTTLS and implicit TLS from now
 * on (takes the caller's reference; sessions keep the one they started
 * with). Must be set before smtpd_run.
 */
void smtpd_set_tls(struct smtpd *smtpd, struct tls_server *tls);

/* smtpd_reload - take a new configuration (sessions keep theirs). */
void smtpd_reload(struct smtpd *smtpd, struct config *config);

/*
 * smtpd_shutdown - stop accepting, let transactions in flight finish (up to
 * shutdown_timeout), close the rest with 421, then call done(arg).
 */
void smtpd_shutdown(struct smtpd *smtpd, void (*done)(void *arg), void *arg);

void smtpd_free(struct smtpd *smtpd);

#endif
