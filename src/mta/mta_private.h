/*
 * mta_private.h - private to src/mta: a delivery (the recipients of one
 * job in one domain) and what its SMTP client session needs of it.
 *
 * Ownership: the mta owns its jobs; a job owns its deliveries; a delivery
 * owns at most one session at a time. A session reports once per
 * delivery, through mta_delivery_session_done; after that call the delivery
 * hands the session on (the next message to the same destination), parks
 * it (idle, owned by the mta's list of detached sessions), closes it, or
 * frees it.
 *
 * Connection slots (remote_max_connections, remote_max_per_destination)
 * are held by a delivery from the moment it may connect until it ends, or
 * by an idle session; a session handed on takes its delivery's slot along.
 */
#ifndef TERN_MTA_PRIVATE_H
#define TERN_MTA_PRIVATE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mta/mta.h"
#include "net/net_dns.h"

struct evbuffer;
struct mta_session;
struct tls_client;

#define MTA_HOSTS_MAX 32
#define MTA_ADDRS_MAX 16

/* What one attempt through one address came to. */
enum session_outcome {
	SESSION_NEXT,  /* nothing decided (no connection, greeting refused, TLS failed, 4xx before MAIL): try the next
	                  address */
	SESSION_FINAL, /* each recipient has its own result */
};

struct mta_job;
struct mta_dest;

struct mta_delivery {
	struct mta *mta;
	struct mta_job *job;
	struct mta_delivery *next_waiting; /* in the mta's queue for a connection slot */
	struct mta_delivery *next_in_job;
	const struct config_route *route; /* in job->config */
	struct mta_dest *dest_state;      /* its destination's sessions and health */
	char domain[DNS_NAME_MAX + 1];    /* MX routes: the recipients' domain; else "" */
	char dest[DNS_NAME_MAX + 1];      /* for logs: the domain, or the relay's host or socket */
	size_t *rcpt_index;               /* into job->job->rcpts */
	size_t rcpt_count;
	/* Route: hosts by preference, then the current host's addresses. */
	struct dns_mx hosts[MTA_HOSTS_MAX];
	size_t host_count, host_at;
	struct sockaddr_storage addrs[MTA_ADDRS_MAX];
	size_t addr_count, addr_at;
	bool addrs_v6_done;
	char last_error[160]; /* why the last address failed, for the deferral */
	bool connection_held;
	bool reused; /* its session was another delivery's: if it fails before deciding, route afresh */
	struct mta_session *session;
};

struct mta_job {
	struct mta *mta;
	struct config *config;  /* as the job started: its routes stay put */
	struct tls_client *tls; /* the client TLS contexts made for that configuration */
	struct delivery_job *job;
	struct evbuffer *body; /* the content, canonical CRLF */
	bool eight_bit;        /* the content holds bytes >= 0x80 */
	/* For peers without 8BITMIME: the content made 7-bit, once (NULL: not yet, or it could not be). */
	struct evbuffer *body7;
	char body7_refused[160]; /* why it could not be, if it was tried */
	bool smtputf8;           /* an address holds bytes >= 0x80 */
	size_t deliveries_left;
	struct mta_delivery *deliveries;
	struct mta_job *prev, *next; /* the mta's jobs under way */
};

/* mta.c: what a session needs from the mta. */
struct event_base *mta_base(struct mta *mta);
struct tls_client *mta_tls(const struct mta_delivery *d); /* its job's client contexts */
struct mta_session **mta_detached(struct mta *mta);       /* idle and closing sessions */

/*
 * mta.c: the session is done with d; outcome SESSION_NEXT or SESSION_FINAL
 * (results set in the job's rcpts). A SESSION_FINAL session may still be
 * open and reusable (mta_session_reusable).
 */
void mta_delivery_session_done(struct mta_delivery *d, enum session_outcome outcome, const char *why);

/* mta.c: a message to dest is being sent now (MAIL): its rate counts from here. */
void mta_dest_sending(struct mta_dest *dest);

/*
 * mta.c: a detached session let go of its slot (an idle one closing: dest)
 * or went away for good (dest NULL).
 */
void mta_detached_done(struct mta *mta, struct mta_dest *dest);

/* mta_session.c */
/* mta_session_start - connect to addr (host's); NULL, with why, if that cannot even begin. */
struct mta_session *mta_session_start(struct mta_delivery *d, const struct sockaddr_storage *addr, const char *host,
                                      char *why, size_t why_size);
/*
 * mta_session_start_conn - a session on a connection already open (plain,
 * not implicit TLS: an in-memory pair in tests), waiting for the greeting.
 */
struct net_conn;
struct mta_session *mta_session_start_conn(struct mta_delivery *d, struct net_conn *conn, const char *host);
/* mta_session_reusable - open, between transactions, in good standing, and under remote_messages_per_connection. */
bool mta_session_reusable(const struct mta_session *s, const struct config *current);
/* mta_session_serves - the session may carry d's message (same destination, route and configuration). */
bool mta_session_serves(const struct mta_session *s, const struct mta_delivery *d);
/* mta_session_next - a reusable session takes d: RSET if needed, then its transaction (from the loop, not at once). */
void mta_session_next(struct mta_session *s, struct mta_delivery *d);
/* mta_session_park - a reusable session waits, idle, for remote_idle_timeout; it holds its slot. */
void mta_session_park(struct mta_session *s);
/* mta_session_unpark - the most recent idle session that can carry d, taken off the list; NULL if none. */
struct mta_session *mta_session_unpark(struct mta *mta, const struct mta_delivery *d);
/* mta_session_evict - close the oldest idle session (of dest, or of any if NULL); false if there is none. */
bool mta_session_evict(struct mta *mta, const struct mta_dest *dest);
/* mta_session_close - QUIT and go (detached), or free at once if the connection is of no further use. */
void mta_session_close(struct mta_session *s);
void mta_session_free(struct mta_session *s);
/* mta_session_free_detached - every idle and closing session (the mta is going). */
void mta_session_free_detached(struct mta *mta);

#endif
