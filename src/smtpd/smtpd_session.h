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

struct smtpd;
struct smtpd_session;
struct event_base;
struct net_linger;

/* What a session needs from the server. */
struct event_base *smtpd_base(struct smtpd *smtpd);
struct store *smtpd_store(struct smtpd *smtpd);
struct tls_server *smtpd_tls(struct smtpd *smtpd);
struct auth_pool *smtpd_auth_pool(struct smtpd *smtpd);
/* smtpd_lookups - the directory lookup threads (smtpd_lookup.h). */
struct pool *smtpd_lookups(struct smtpd *smtpd);
/* smtpd_session_find - the session with this id, or NULL if it has gone. */
struct smtpd_session *smtpd_session_find(struct smtpd *smtpd, uint64_t id);
struct smtpd_limits *smtpd_limits(struct smtpd *smtpd);
/* smtpd_linger - where the sockets of ended sessions linger (net/net_linger.h). */
struct net_linger *smtpd_linger(struct smtpd *smtpd);
bool smtpd_shutting_down(struct smtpd *smtpd);
/* smtpd_session_gone - the session is being freed: release its slot and counts. */
void smtpd_session_gone(struct smtpd *smtpd, uint64_t id, const unsigned char peer_key[16]);

/* What the server asks of a session. */
struct smtpd_session *smtpd_session_new(struct smtpd *smtpd, uint64_t id, struct config *config, int fd,
                                        const struct sockaddr *peer, socklen_t peer_len, enum listener_kind kind);
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
