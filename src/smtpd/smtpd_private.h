/*
 * smtpd_private.h - private to src/smtpd: the session and transaction
 * structs shared by the session's I/O (smtpd_session.c), its commands
 * (smtpd_command.c) and its message content (smtpd_txn.c).
 */
#ifndef TERN_SMTPD_PRIVATE_H
#define TERN_SMTPD_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "msg/msg_header.h"
#include "smtp/smtp_command.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_limits.h"
#include "smtp/smtp_reply.h"
#include "smtpd/smtpd_session.h"
#include "util/util_id.h"

struct event;
struct net_conn;
struct sasl_exchange;

enum smtpd_state {
	SMTPD_CONNECTED, /* greeted, no HELO/EHLO yet */
	SMTPD_READY,     /* HELO/EHLO done, no transaction */
	SMTPD_MAIL,      /* MAIL accepted, no recipient yet */
	SMTPD_RCPT,      /* at least one RCPT given (maybe all refused) */
	SMTPD_DATA,      /* reading DATA content up to CRLF.CRLF */
	SMTPD_BDAT,      /* reading a BDAT chunk of known size */
	SMTPD_COMMIT,    /* content complete, waiting for the store */
	SMTPD_AUTH,      /* AUTH sent a challenge: the next line is the response */
	SMTPD_AUTH_WAIT, /* AUTH: a password check, or the delay after a failure */
	SMTPD_CLOSING,   /* last reply written, closing when it has gone out */
	SMTPD_STATE_COUNT
};

#define SMTPD_STATE_BIT(s) (1u << (s))

struct smtpd_txn {
	char qid[ID_LEN + 1];
	char *sender;
	bool smtputf8;
	bool ret_hdrs;            /* RFC 3461 RET=HDRS */
	char *envid;              /* RFC 3461 ENVID, or NULL */
	struct store_rcpt *rcpts; /* distinct mailboxes */
	size_t rcpt_count, rcpt_cap;
	uint64_t rcpts_accepted; /* RCPT commands answered 250 */
	uint64_t rcpts_refused;
	char *first_rcpt; /* for Received: "for <...>" when there is one */
	bool used_bdat;
	/* Content. */
	struct smtp_data_reader reader;
	struct msg_header_scan header;
	struct evbuffer *body;
	int spill_fd;
	uint64_t client_bytes; /* content bytes from the client */
	uint64_t stored_bytes; /* bytes in body or the spill file (with our trace header) */
	size_t trace_len;      /* bytes of our Received: header, first in the content */
	bool too_big;
	bool spill_failed;
	/* BDAT: the chunk being read and the reply owed when it is done. */
	uint64_t chunk_left;
	bool chunk_last;
	int chunk_error; /* an enum smtp_reply_id + 1, or 0 */
};

struct smtpd_session {
	uint64_t id;
	char sid[ID_LEN + 1];
	struct smtpd_host *host;
	struct config *config;
	struct net_conn *conn;
	enum listener_kind kind;
	enum smtpd_state state;
	char peer_ip[46];
	unsigned char peer_key[16];
	uint16_t peer_port;
	char helo[SMTP_HELO_MAX + 1];
	bool esmtp;
	bool dead;          /* free at the top of the callback */
	bool close_at_once; /* the client went or stopped reading: no lingering close */
	bool in_callback;
	bool output_blocked; /* client not reading: stop reading commands */
	bool shutdown_pending;
	bool lookup_pending; /* a directory lookup is out (smtpd_lookup.h): read nothing until it is back */
	/* TLS (the connection, net/net_conn.c, holds the certificates in use). */
	bool tls_started;  /* STARTTLS answered 220, or implicit TLS: no STARTTLS now */
	bool tls_starting; /* STARTTLS answered 220: no command until the handshake is done */
	bool tls_active;   /* the handshake finished: the session is encrypted */
	char tls_version[16];
	char tls_cipher[64];
	/* AUTH: the exchange under way, and who the client proved to be. */
	struct sasl_exchange *sasl;
	int sasl_mech;                     /* enum sasl_mech */
	char auth_user[STORE_ADDRESS_MAX]; /* "" until AUTH succeeded */
	struct event *auth_timer;          /* the delay after a failure, then 535 */
	uint64_t auth_tag;                 /* PLAIN/LOGIN: auth_password_tag of the password under check; 0 none */
	/* Local submission (LISTENER_LOCAL, smtpd_local.c): the client's uid and login name. */
	uint32_t local_uid;
	char local_user[64]; /* "#UID" without a password file entry; "" on other listeners */
	uint64_t errors;
	uint64_t messages;
	uint64_t started_ms;
	struct smtpd_txn *txn;
	/* BDAT chunk reading, also when there is no transaction to put it in. */
	uint64_t discard_left;
	int discard_reply; /* enum smtp_reply_id + 1 owed after a discarded chunk */
};

/* smtpd_session.c */
void session_reply(struct smtpd_session *s, enum smtp_reply_id id);
void session_reply_text(struct smtpd_session *s, enum smtp_reply_id id, const char *text);
/* session_reply_config - a reply the configuration gives, "CODE X.Y.Z <address>: TEXT". */
void session_reply_config(struct smtpd_session *s, const struct config_reply *reply, const char *address);
void session_write(struct smtpd_session *s, const char *bytes, size_t len);
void session_enter_state(struct smtpd_session *s, enum smtpd_state state);
void session_close_after_reply(struct smtpd_session *s);
void session_set_data_timeouts(struct smtpd_session *s, bool data);
/* session_begin_tls - STARTTLS was answered 220: read nothing more in plaintext. */
void session_begin_tls(struct smtpd_session *s);

/* session_resume - go on reading after a wait, and free the session if it ended. */
void session_resume(struct smtpd_session *s);

/* smtpd_auth.c */
bool smtpd_on_loopback(const struct smtpd_session *s);
bool auth_offered(const struct smtpd_session *s);
bool auth_mechanism_list(const struct smtpd_session *s, char *buf, size_t size);
void auth_handle(struct smtpd_session *s, const struct smtp_command *cmd);
void auth_response(struct smtpd_session *s, const char *line, size_t len);
void auth_response_too_long(struct smtpd_session *s);
void auth_session_free(struct smtpd_session *s);

/* smtpd_command.c */
void command_dispatch(struct smtpd_session *s, const char *line, size_t len);

/* smtpd_txn.c */
struct smtpd_txn *txn_new(void);
void txn_free(struct smtpd_txn *txn);
void txn_begin_content(struct smtpd_session *s, enum smtp_data_mode mode);
/* txn_feed - feed received bytes; returns bytes consumed. */
size_t txn_feed(struct smtpd_session *s, const char *bytes, size_t len);
/* txn_finish - content complete: refuse it, or hand it to the store. */
void txn_finish(struct smtpd_session *s);
void txn_reset(struct smtpd_session *s);
/* txn_add_rcpt - a recipient with its route; a local one once per mailbox, another domain's once per address. */
bool txn_add_rcpt(struct smtpd_txn *txn, const char *address, enum store_route route, const char *mailbox,
                  const char *route_key, unsigned notify, const char *orcpt, size_t orcpt_len);

#endif
