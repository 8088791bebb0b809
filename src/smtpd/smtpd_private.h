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

struct bufferevent;
struct evbuffer;

enum smtpd_state {
	SMTPD_CONNECTED, /* greeted, no HELO/EHLO yet */
	SMTPD_READY,     /* HELO/EHLO done, no transaction */
	SMTPD_MAIL,      /* MAIL accepted, no recipient yet */
	SMTPD_RCPT,      /* at least one RCPT given (maybe all refused) */
	SMTPD_DATA,      /* reading DATA content up to CRLF.CRLF */
	SMTPD_BDAT,      /* reading a BDAT chunk of known size */
	SMTPD_COMMIT,    /* content complete, waiting for the store */
	SMTPD_CLOSING,   /* last reply written, closing when it has gone out */
	SMTPD_STATE_COUNT
};

#define SMTPD_STATE_BIT(s) (1u << (s))

struct smtpd_txn {
	char qid[ID_LEN + 1];
	char *sender;
	bool smtputf8;
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
	struct smtpd *smtpd;
	struct config *config;
	struct bufferevent *bev;
	enum listener_kind kind;
	enum smtpd_state state;
	char peer_ip[46];
	unsigned char peer_key[16];
	uint16_t peer_port;
	char helo[SMTP_HELO_MAX + 1];
	bool esmtp;
	bool discarding_line; /* inside an over-long command line */
	bool dead;            /* free at the top of the callback */
	bool in_callback;
	bool output_blocked; /* client not reading: stop reading commands */
	bool shutdown_pending;
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
void session_write(struct smtpd_session *s, const char *bytes, size_t len);
void session_enter_state(struct smtpd_session *s, enum smtpd_state state);
void session_close_after_reply(struct smtpd_session *s);
void session_set_data_timeouts(struct smtpd_session *s, bool data);

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
bool txn_add_mailbox(struct smtpd_txn *txn, const char *address, const char *mailbox);

#endif
