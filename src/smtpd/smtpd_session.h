/*
 * smtpd_session.h - private to src/smtpd: what the server and a session
 * know of each other.
 *
 * Ownership: the server owns its sessions (a slot table gives each a
 * 64-bit id: slot and generation, so a late reply for a session that is
 * gone finds nothing instead of a stranger). A session owns its
 * transaction. A session is freed only by the top of its own callbacks,
 * after it marked itself dead.
 */
#ifndef TERN_SMTPD_SESSION_H
#define TERN_SMTPD_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "store/store.h"

struct smtpd_session;
struct event_base;
struct net_conn;
struct net_linger;
struct smtpd_limits;
struct smtpd_lookup;
struct tls_server;

/*
 * struct smtpd_host - what a session needs from whoever runs it: the
 * server (smtpd_server.c), or a unit test or the session fuzzer over an
 * in-memory connection. The AUTH failure counts are used in place; the
 * store thread, the password-check threads and the directory lookups are
 * reached through calls, so that a test can answer them in-process. Each
 * call's answer comes back later, from the loop, never inside the call.
 */
struct smtpd_host {
	struct event_base *base;
	struct smtpd_limits *limits; /* AUTH failure counts */
	struct net_linger *linger;   /* where the sockets of ended sessions linger; NULL: close at once */
	struct tls_server *tls;      /* certificates for STARTTLS and implicit TLS; NULL: no STARTTLS */
	bool shutting_down;
	void *ctx;
	/* commit - hand a whole message to the store; smtpd_session_commit_done follows. */
	void (*commit)(void *ctx, struct store_message *msg);
	/* check_password - check an AUTH password; smtpd_session_auth_checked follows for the session
	 * whose id is ticket (auth/auth_pool.h says what cache_ms and make_scram mean). */
	void (*check_password)(void *ctx, uint64_t ticket, const char *password, const char *hash, uint64_t cache_ms,
	                       bool make_scram);
	/* lookup - ask the directory off the loop (smtpd_lookup.h): run lookup's query with a reader, then,
	 * from the loop, smtpd_lookup_finish with the session whose id it holds (NULL if it has gone). */
	void (*lookup)(void *ctx, struct smtpd_lookup *lookup);
	/* space_ok - is there room on the queue's disk for a message of size octets (store_space_ok)? NULL: yes. */
	bool (*space_ok)(void *ctx, uint64_t size);
	/* add_scram - keep the SCRAM secret a checked password brought (store_user_add_scram). */
	void (*add_scram)(void *ctx, const char *address, const char *password_hash, const char *scram);
	/* gone - the session with this id is being freed: release its slot and counts. */
	void (*gone)(void *ctx, uint64_t id, const unsigned char peer_key[16]);
};

/*
 * smtpd_session_new - a session on conn (taken over; made with
 * net_conn_accept_tls for LISTENER_SUBMISSIONS), greeting the client.
 */
struct smtpd_session *smtpd_session_new(struct smtpd_host *host, uint64_t id, struct config *config,
                                        struct net_conn *conn, const struct sockaddr *peer, socklen_t peer_len,
                                        enum listener_kind kind);
void smtpd_session_commit_done(struct smtpd_session *session, struct store_message *msg);
/* smtpd_session_auth_checked - the password check of an AUTH came back. */
struct auth_pool_result;
void smtpd_session_auth_checked(struct smtpd_session *session, const struct auth_pool_result *result);
/* smtpd_session_shutdown - close now if idle, else after the transaction;
 * force: close now whatever it is doing. */
void smtpd_session_shutdown(struct smtpd_session *session, bool force);
/* smtpd_session_peer_key - the client address as 16 bytes (IPv4 mapped). */
void smtpd_peer_key(const struct sockaddr *peer, unsigned char key[16]);

#endif
