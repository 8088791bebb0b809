/*
 * mta_session.c - the SMTP client: one connection to one address of a
 * mail exchanger, one transaction for the recipients of each delivery it
 * serves.
 *
 *   connect -> 220 -> EHLO (HELO if refused) -> [STARTTLS -> TLS -> EHLO]
 *   -> [AUTH] -> MAIL -> RCPT ... -> DATA -> content -> done
 *   done -> [RSET] -> MAIL ...   (the next message to the same destination)
 *   done -> idle -> [RSET] -> MAIL ... | QUIT
 *
 * A session reports to its delivery as soon as the transaction is settled,
 * before any QUIT: the results do not wait for the goodbye. The delivery
 * then hands the connection on, parks it, or closes it (mta.c decides).
 * RSET comes before the next MAIL only when the last transaction ended
 * early (a refused MAIL, RCPT or DATA): after the reply to the content the
 * peer has already reset (RFC 5321 4.1.1.4).
 *
 * Replies are read line by line by the connection's strict reader
 * (net/net_conn.c: a line ends at CRLF only, at most SMTP_REPLY_READ_MAX
 * octets, at most SMTP_CLIENT_REPLY_LINES lines); a bare CR or LF, a NUL,
 * an over-long line, or a multi-line reply whose lines disagree on the
 * code is a protocol error. Everything up to MAIL only decides whether
 * this address is usable (SESSION_NEXT: try the next one); from MAIL on,
 * each recipient gets its own result (SESSION_FINAL). STARTTLS is used
 * whenever offered (opportunistic, RFC 7435); after the 220 anything the
 * peer sent early is thrown away, and EHLO is repeated. Content goes out
 * through the same dot-stuffing code the server reads with; it is
 * canonical CRLF already (the server refused anything else).
 *
 * Timeouts follow RFC 5321 4.5.3.2 in spirit: remote_connect_timeout to
 * connect, remote_command_timeout for each reply, remote_data_timeout for
 * the reply to the end of the content.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "msg/msg_7bit.h"
#include "mta/mta_private.h"
#include "net/net_conn.h"
#include "net/net_tls.h"
#include "smtp/smtp_client_reply.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_dsn.h"
#include "smtp/smtp_limits.h"
#include "util/util_base64.h"
#include "util/util_log.h"
#include "util/util_str.h"

enum client_state {
	C_CONNECTING,
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_HANDSHAKE,
	C_EHLO_TLS,
	C_AUTH,       /* AUTH PLAIN sent, or LOGIN's password: 235 expected */
	C_AUTH_LOGIN, /* AUTH LOGIN sent: 334 for the user name */
	C_AUTH_USER,  /* LOGIN's user name sent: 334 for the password */
	C_IDLE,       /* between transactions, with no delivery or waiting for one to start */
	C_RSET,       /* RSET sent before the next transaction */
	C_DONE,       /* the transaction is settled: the delivery is told at the end of the callback */
	C_MAIL,
	C_RCPT,
	C_DATA,
	C_CONTENT,
	C_SKIP,      /* pipelined replies of a transaction already settled */
	C_EMPTY_DOT, /* DATA was accepted though no recipient was: an empty message ends it */
	C_QUIT,
};

struct mta_session {
	struct mta *mta;
	struct mta_delivery *d; /* NULL when idle or closing */
	struct mta_dest *dest;  /* the destination whose slot it counts against */
	struct config *config;  /* the first job's: reused only for jobs of the same configuration */
	const struct config_route *route;
	struct net_conn *conn;
	bool lmtp;     /* LHLO, and one reply per recipient after the content (RFC 2033) */
	bool tls;      /* the connection is encrypted now */
	bool implicit; /* TLS from the first byte (RFC 8314) */
	enum client_state state;
	char host[DNS_NAME_MAX + 1];
	char peer[DNS_NAME_MAX + 64]; /* "host[address]" for logs and reasons */
	/* What EHLO offered. */
	bool esmtp;
	struct smtp_ehlo ehlo;
	/* The reply being read. */
	struct smtp_client_reply reply;
	/* The transaction. */
	size_t rcpt_at;
	bool *accepted; /* per recipient of the delivery: RCPT was taken */
	bool *settled;  /* per recipient: has its result */
	size_t accepted_count;
	struct evbuffer *body; /* what goes after DATA: the job's content, or its 7-bit form */
	bool pipelined;        /* MAIL, RCPTs and DATA went out together (RFC 2920) */
	size_t skip_left;      /* C_SKIP: replies still to come */
	size_t lmtp_at;        /* C_CONTENT over LMTP: the recipient whose reply comes next */
	bool decided;          /* recipients have their results */
	/* Between transactions. */
	unsigned messages;  /* transactions begun */
	bool needs_rset;    /* the last one ended before the end of its data */
	bool tainted;       /* the peer said more than it was asked: not reused */
	struct event *kick; /* starts a handed-over delivery's transaction from the loop */
	/* Idle or closing: in the mta's list of detached sessions. */
	bool detached;
	struct mta_session *prev, *next;
	/* Ended: reported to the delivery at the end of the callback, which frees the session. */
	bool ended;
	char end_reason[200];
};

/* ---- Results ---- */

static void result_one(struct mta_session *s, size_t i, enum delivery_status status, const char *why)
{
	struct mta_delivery *d = s->d;
	struct delivery_rcpt *r = &d->job->job->rcpts[d->rcpt_index[i]];
	s->settled[i] = true;
	r->status = status;
	/* LMTP is final delivery; an SMTP peer offering DSN got NOTIFY and reports itself. */
	r->success = s->lmtp ? SUCCESS_DELIVERED : s->ehlo.dsn ? SUCCESS_PASSED_ON : SUCCESS_RELAYED;
	str_copy(r->error, sizeof r->error, why);
	static const char *const kinds[] = {"delivered", "deferred", "bounced"};
	/* The reply is the peer's text: quoted, so it cannot pose as fields of the line. */
	char q[LOG_QUOTE_MAX], qr[LOG_QUOTE_MAX];
	log_info("event=%s_%s qid=%s to=%s relay=%s reply=%s", s->lmtp ? "lmtp" : "remote", kinds[status],
	         d->job->job->qid, log_quote(q, sizeof q, r->address, strlen(r->address)), s->peer,
	         why[0] ? log_quote(qr, sizeof qr, why, strlen(why)) : "-");
}

/* reply_reason - the peer's reply, printable ASCII only, with who said it. */
static void reply_reason(const struct mta_session *s, char *out, size_t size)
{
	const char *text = s->reply.text;
	char clean[sizeof s->reply.text];
	size_t n = 0;
	for (size_t i = 0; text[i] && n + 1 < sizeof clean; i++)
		clean[n++] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
	clean[n] = '\0';
	str_format(out, size, "%d %s (%s)", s->reply.code, clean, s->peer);
}

/* decide_all - every recipient still open gets status (those refused at RCPT keep theirs). */
static void decide_all(struct mta_session *s, enum delivery_status status, const char *why)
{
	for (size_t i = 0; i < s->d->rcpt_count; i++)
		if (!s->settled[i])
			result_one(s, i, status, why);
	s->decided = true;
}

static enum delivery_status status_of(int code)
{
	return code >= 200 && code < 300 ? DELIVERY_OK : code >= 500 ? DELIVERY_PERMFAIL : DELIVERY_TEMPFAIL;
}

/*
 * session_end - the session is over: settle recipients left open, note why.
 * The report to the delivery (which frees the session) is made by the
 * callback that got here, once it has unwound (session_finish).
 */
static void session_end_code(struct mta_session *s, const char *code, const char *why)
{
	if (s->ended)
		return;
	s->ended = true;
	if (!s->decided && s->state > C_MAIL) {
		/* Lost in the middle of the transaction: nothing is known to
		 * have arrived, so the recipients wait for another try. */
		char reason[200];
		str_format(reason, sizeof reason, "4.4.2 %s (%s)", why, s->peer);
		decide_all(s, DELIVERY_TEMPFAIL, reason);
	}
	str_format(s->end_reason, sizeof s->end_reason, "%s %s (%s)", code, why, s->peer);
}

/* session_end - the connection is of no use (the next address may be): status 4.4.1. */
static void session_end(struct mta_session *s, const char *why)
{
	session_end_code(s, "4.4.1", why);
}

/* transaction_done - every recipient has its result; clean: the peer has reset itself (it took the content). */
static void transaction_done(struct mta_session *s, bool clean)
{
	s->decided = true;
	s->needs_rset = !clean;
	s->state = C_DONE;
}

/*
 * session_finish - at the end of a callback: report a settled transaction
 * or an ended session to the delivery, which may free the session.
 */
static void session_finish(struct mta_session *s)
{
	if (s->ended)
		mta_delivery_session_done(s->d, s->decided ? SESSION_FINAL : SESSION_NEXT, s->end_reason);
	else if (s->state == C_DONE)
		mta_delivery_session_done(s->d, SESSION_FINAL, "done");
}

/* ---- Sending ---- */

static void send_line(struct mta_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* send_line - one command line (fmt includes its CRLF). */
static void send_line(struct mta_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line) {
		session_end(s, "command too long");
		return;
	}
	/* Commands carry addresses from clients: quoted in the log. */
	char q[LOG_QUOTE_MAX];
	log_debug("event=remote_send relay=%s line=%s", s->peer, log_quote(q, sizeof q, line, strcspn(line, "\r")));
	net_conn_write(s->conn, line, (size_t)n);
}

/* send_secret - prefix (logged) and base64 of secret[0..len) (never logged), then CRLF. */
static void send_secret(struct mta_session *s, const char *prefix, const void *secret, size_t len)
{
	char encoded[1400];
	size_t n = base64_encode(secret, len, encoded, sizeof encoded);
	if (n == 0 && len > 0) {
		session_end_code(s, "4.7.8", "credentials too long");
		return;
	}
	log_debug("event=remote_send relay=%s line=\"%s(credentials)\"", s->peer, prefix);
	net_conn_write(s->conn, prefix, strlen(prefix));
	net_conn_write(s->conn, encoded, n);
	net_conn_write(s->conn, "\r\n", 2);
	explicit_bzero(encoded, sizeof encoded);
}

static void set_timeout(struct mta_session *s, uint64_t seconds)
{
	net_conn_set_timeouts(s->conn, seconds, seconds);
}

static void send_ehlo(struct mta_session *s, enum client_state state)
{
	s->state = state;
	s->esmtp = false;
	memset(&s->ehlo, 0, sizeof s->ehlo);
	send_line(s, "%s %s\r\n", s->lmtp ? "LHLO" : "EHLO", s->config->hostname);
}

static void content_sink(void *ctx, const char *bytes, size_t len)
{
	struct mta_session *s = ctx;
	net_conn_write(s->conn, bytes, len);
}

static void send_content(struct mta_session *s)
{
	struct evbuffer *body = s->body;
	struct evbuffer_ptr at;
	struct evbuffer_iovec vec;
	int stuff_state = 0;
	evbuffer_ptr_set(body, &at, 0, EVBUFFER_PTR_SET);
	while (evbuffer_peek(body, -1, &at, &vec, 1) > 0 && vec.iov_len > 0) {
		smtp_dot_stuff(&stuff_state, vec.iov_base, vec.iov_len, content_sink, s);
		evbuffer_ptr_set(body, &at, vec.iov_len, EVBUFFER_PTR_ADD);
	}
	smtp_dot_stuff_end(&stuff_state, content_sink, s);
	s->state = C_CONTENT;
	set_timeout(s, s->config->remote_data_timeout);
}

/* send_rcpt - RCPT for the delivery's recipient i, with its DSN parameters when the peer takes them. */
static void send_rcpt(struct mta_session *s, size_t i)
{
	const struct delivery_rcpt *r = &s->d->job->job->rcpts[s->d->rcpt_index[i]];
	char notify[40] = "", orcpt[SMTP_ORCPT_MAX + 8] = "";
	if (s->ehlo.dsn && r->notify) {
		str_format(notify, sizeof notify, " NOTIFY=%s%s%s%s", (r->notify & STORE_NOTIFY_NEVER) ? "NEVER" : "",
		           (r->notify & STORE_NOTIFY_SUCCESS) ? "SUCCESS," : "",
		           (r->notify & STORE_NOTIFY_FAILURE) ? "FAILURE," : "",
		           (r->notify & STORE_NOTIFY_DELAY) ? "DELAY," : "");
		size_t n = strlen(notify);
		if (notify[n - 1] == ',')
			notify[n - 1] = '\0';
	}
	if (s->ehlo.dsn && r->orcpt)
		str_format(orcpt, sizeof orcpt, " ORCPT=%s", r->orcpt);
	/* Local users' mail names the mailbox an alias or +tag led to. */
	send_line(s, "RCPT TO:<%s>%s%s\r\n", r->route == STORE_ROUTE_LMTP ? r->mailbox : r->address, notify, orcpt);
}

static void send_rcpt_or_data(struct mta_session *s)
{
	struct mta_delivery *d = s->d;
	if (s->rcpt_at < d->rcpt_count) {
		s->state = C_RCPT;
		send_rcpt(s, s->rcpt_at);
		return;
	}
	if (s->accepted_count == 0)
		return transaction_done(s, false);
	s->state = C_DATA;
	send_line(s, "DATA\r\n");
}

/*
 * body_for_peer - the content this peer can take: as it is, or, for a peer
 * without 8BITMIME, made 7-bit (RFC 6152 3) once per job and kept for the
 * job's other sessions. false with why when it cannot be converted.
 */
static bool body_for_peer(struct mta_session *s, char *why, size_t why_size)
{
	struct mta_job *j = s->d->job;
	s->body = j->body;
	if (!j->eight_bit || s->ehlo.eightbitmime)
		return true;
	if (!j->body7 && !j->body7_refused[0]) {
		struct evbuffer *seven = evbuffer_new();
		if (!seven)
			fatal("evbuffer_new failed");
		char reason[MSG_7BIT_WHY_SIZE];
		if (msg_to_7bit(j->body, seven, reason, sizeof reason)) {
			j->body7 = seven;
			log_info("event=remote_downgrade qid=%s relay=%s size=%zu size_7bit=%zu", j->job->qid, s->peer,
			         evbuffer_get_length(j->body), evbuffer_get_length(seven));
		} else {
			evbuffer_free(seven);
			str_copy(j->body7_refused, sizeof j->body7_refused, reason);
		}
	}
	if (j->body7) {
		s->body = j->body7;
		return true;
	}
	str_format(why, why_size, "%s; %s does not take 8BITMIME", j->body7_refused, s->peer);
	return false;
}

/* refuse_early - what the peer offers rules the message out: every recipient gets why. */
static bool refuse_early(struct mta_session *s)
{
	struct mta_job *j = s->d->job;
	char why[300];
	enum delivery_status status = DELIVERY_PERMFAIL;
	size_t size;
	if (j->smtputf8 && !s->ehlo.smtputf8) {
		str_format(why, sizeof why, "5.6.7 the message needs SMTPUTF8, which %s does not offer", s->peer);
	} else if (!body_for_peer(s, why, sizeof why)) {
		if (why[0] == '4')
			status = DELIVERY_TEMPFAIL; /* out of memory, not the message's fault */
	} else if (s->ehlo.size > 0 && (size = evbuffer_get_length(s->body)) > s->ehlo.size) {
		str_format(why, sizeof why, "5.3.4 message too big for %s (%zu octets, it takes %llu)", s->peer, size,
		           (unsigned long long)s->ehlo.size);
	} else {
		return false;
	}
	decide_all(s, status, why);
	transaction_done(s, true);
	return true;
}

static void send_mail(struct mta_session *s)
{
	if (refuse_early(s))
		return;
	struct mta_job *j = s->d->job;
	char params[256] = "";
	size_t used = 0;
	if (s->ehlo.size_offered) {
		str_format(params, sizeof params, " SIZE=%zu", evbuffer_get_length(s->body));
		used = strlen(params);
	}
	if (j->eight_bit && s->body == j->body)
		str_format(params + used, sizeof params - used, " BODY=8BITMIME");
	used = strlen(params);
	if (j->smtputf8)
		str_format(params + used, sizeof params - used, " SMTPUTF8");
	used = strlen(params);
	/* RFC 3461 6.2: a peer that takes DSN gets the parameters as they came. */
	if (s->ehlo.dsn && j->job->ret_hdrs)
		str_format(params + used, sizeof params - used, " RET=HDRS");
	used = strlen(params);
	if (s->ehlo.dsn && j->job->envid)
		str_format(params + used, sizeof params - used, " ENVID=%s", j->job->envid);
	if (!s->esmtp)
		params[0] = '\0';
	s->state = C_MAIL;
	send_line(s, "MAIL FROM:<%s>%s\r\n", j->job->sender, params);
	if (!s->ehlo.pipelining)
		return;
	/* RFC 2920: the whole envelope and DATA in one go; the replies come back in order. */
	s->pipelined = true;
	for (size_t i = 0; i < s->d->rcpt_count; i++)
		send_rcpt(s, i);
	send_line(s, "DATA\r\n");
}

/* start_transaction - the delivery's envelope, on a connection ready for it. */
static void start_transaction(struct mta_session *s)
{
	s->messages++;
	mta_dest_sending(s->dest);
	set_timeout(s, s->config->remote_command_timeout);
	send_mail(s);
}

/* send_empty_message - DATA was taken with no recipient: end it at once. LMTP answers that with no reply at all. */
static void send_empty_message(struct mta_session *s)
{
	send_line(s, ".\r\n");
	if (s->lmtp)
		return transaction_done(s, false);
	s->state = C_EMPTY_DOT;
}

/* ---- AUTH (RFC 4954), to a relay ---- */

/* send_auth - PLAIN if offered, else LOGIN; never without TLS. */
static void send_auth(struct mta_session *s)
{
	const struct config_route *r = s->route;
	if (!s->tls)
		return session_end_code(s, "4.7.4", "credentials are never sent without TLS");
	if (s->ehlo.auth_plain) {
		/* RFC 4616: authzid (empty) NUL authcid NUL passwd. */
		size_t user_len = strlen(r->auth_user), pass_len = strlen(r->auth_password);
		size_t n = user_len + pass_len + 2;
		char *plain = xcalloc(1, n);
		memcpy(plain + 1, r->auth_user, user_len);
		memcpy(plain + 2 + user_len, r->auth_password, pass_len);
		s->state = C_AUTH;
		send_secret(s, "AUTH PLAIN ", plain, n);
		explicit_bzero(plain, n);
		free(plain);
		return;
	}
	if (s->ehlo.auth_login) {
		s->state = C_AUTH_LOGIN;
		return send_line(s, "AUTH LOGIN\r\n");
	}
	session_end_code(s, "4.7.4", "the relay offers neither AUTH PLAIN nor AUTH LOGIN");
}

/* on_auth_reply - 334 continues LOGIN; 235 opens the transaction; anything else ends this try. */
static void on_auth_reply(struct mta_session *s, const char *why)
{
	const struct config_route *r = s->route;
	if (s->reply.code == 334 && s->state == C_AUTH_LOGIN) {
		s->state = C_AUTH_USER;
		return send_secret(s, "", r->auth_user, strlen(r->auth_user));
	}
	if (s->reply.code == 334 && s->state == C_AUTH_USER) {
		s->state = C_AUTH;
		return send_secret(s, "", r->auth_password, strlen(r->auth_password));
	}
	if (s->reply.code == 235 && s->state == C_AUTH) {
		log_info("event=remote_auth relay=%s user=%s", s->peer, r->auth_user);
		return start_transaction(s);
	}
	char reason[320];
	str_format(reason, sizeof reason, "authentication failed: %s", why);
	session_end_code(s, "4.7.8", reason);
}

/* after_ehlo - EHLO, LHLO or HELO accepted: STARTTLS, AUTH, then the transaction, as the route says. */
static void after_ehlo(struct mta_session *s)
{
	enum config_tls_policy tls = s->route->tls;
	if (!s->tls && s->ehlo.starttls && tls != CONFIG_TLS_NONE) {
		s->state = C_STARTTLS;
		return send_line(s, "STARTTLS\r\n");
	}
	if (!s->tls && tls == CONFIG_TLS_REQUIRED)
		return session_end_code(s, "4.7.4", "TLS is required and STARTTLS is not offered");
	if (s->route->auth_user)
		return send_auth(s);
	start_transaction(s);
}

/* on_content_reply_lmtp - one reply per accepted recipient, in RCPT order (RFC 2033 4.2). */
static void on_content_reply_lmtp(struct mta_session *s, enum delivery_status status, const char *why)
{
	while (s->lmtp_at < s->d->rcpt_count && !s->accepted[s->lmtp_at])
		s->lmtp_at++;
	if (s->lmtp_at < s->d->rcpt_count)
		result_one(s, s->lmtp_at++, status, why);
	while (s->lmtp_at < s->d->rcpt_count && !s->accepted[s->lmtp_at])
		s->lmtp_at++;
	if (s->lmtp_at == s->d->rcpt_count)
		transaction_done(s, true);
}

/* ---- TLS ---- */

/*
 * start_tls - TLS on the connection now (after STARTTLS's 220, or at once
 * for implicit TLS). Whatever the peer sent after its 220 came before the
 * handshake: it cannot be trusted to mean anything, and the connection
 * throws it away.
 */
static void start_tls(struct mta_session *s)
{
	char why[200];
	struct ssl_st *ssl =
	        tls_client_ssl(mta_tls(s->d), s->route->verify, s->route->ca_file, s->host, why, sizeof why);
	if (!ssl)
		return session_end_code(s, "4.7.5", why);
	s->tls = true;
	s->state = C_HANDSHAKE;
	set_timeout(s, s->config->remote_command_timeout);
	net_conn_starttls_client(s->conn, ssl, s->route->verify);
}

/* ---- Replies ---- */

/* on_reply - a whole reply is in (code, text): the next step. */
static void on_reply(struct mta_session *s)
{
	char why[300];
	reply_reason(s, why, sizeof why);
	enum delivery_status status = status_of(s->reply.code);
	if (s->reply.code == 421)
		s->tainted = true; /* the peer is closing the connection (RFC 5321 3.8) */
	switch (s->state) {
	case C_GREETING:
		if (status != DELIVERY_OK)
			return session_end(s, "greeting refused");
		return send_ehlo(s, C_EHLO);
	case C_EHLO:
	case C_EHLO_TLS:
		if (status == DELIVERY_PERMFAIL && s->state == C_EHLO && !s->lmtp) {
			s->state = C_HELO;
			return send_line(s, "HELO %s\r\n", s->config->hostname);
		}
		if (status != DELIVERY_OK)
			return session_end(s, s->lmtp ? "LHLO refused" : "EHLO refused");
		s->esmtp = true;
		return after_ehlo(s);
	case C_HELO:
		if (status != DELIVERY_OK)
			return session_end(s, "HELO refused");
		return after_ehlo(s);
	case C_STARTTLS:
		if (s->reply.code == 220)
			return start_tls(s);
		/* A refused STARTTLS leaves the session as it was: fine unless TLS is required. */
		s->ehlo.starttls = false;
		return after_ehlo(s);
	case C_AUTH:
	case C_AUTH_LOGIN:
	case C_AUTH_USER:
		return on_auth_reply(s, why);
	case C_MAIL:
		if (status != DELIVERY_OK) {
			decide_all(s, status, why);
			if (!s->pipelined)
				return transaction_done(s, false);
			/* The RCPT and DATA replies are on their way: let them pass. */
			s->state = C_SKIP;
			s->skip_left = s->d->rcpt_count + 1;
			return;
		}
		if (s->pipelined) {
			s->state = C_RCPT;
			return;
		}
		return send_rcpt_or_data(s);
	case C_RCPT:
		if (status == DELIVERY_OK) {
			s->accepted[s->rcpt_at] = true;
			s->accepted_count++;
		} else {
			result_one(s, s->rcpt_at, status, why);
		}
		s->rcpt_at++;
		if (!s->pipelined)
			return send_rcpt_or_data(s);
		if (s->rcpt_at == s->d->rcpt_count)
			s->state = C_DATA;
		return;
	case C_DATA:
		if (s->reply.code == 354 && s->accepted_count == 0) {
			/* Pipelined, every RCPT refused, DATA taken all the same. */
			s->decided = true;
			return send_empty_message(s);
		}
		if (s->reply.code != 354) {
			decide_all(s, status == DELIVERY_OK ? DELIVERY_TEMPFAIL : status, why);
			return transaction_done(s, false);
		}
		return send_content(s);
	case C_CONTENT:
		if (s->lmtp)
			return on_content_reply_lmtp(s, status, why);
		decide_all(s, status, why);
		return transaction_done(s, true);
	case C_SKIP:
		if (s->reply.code == 354)
			return send_empty_message(s);
		if (--s->skip_left == 0)
			return transaction_done(s, false);
		return;
	case C_EMPTY_DOT:
		return transaction_done(s, true);
	case C_RSET:
		if (status != DELIVERY_OK)
			return session_end(s, "RSET refused");
		return start_transaction(s);
	default:
		return session_end(s, "unexpected reply");
	}
}

/* take_line - one reply line; *complete once the reply is. false after ending the session. */
static bool take_line(struct mta_session *s, const char *line, size_t len, bool *complete)
{
	static const char *const problems[] = {
	        [SMTP_LINE_MALFORMED] = "malformed reply",
	        [SMTP_LINE_MISMATCH] = "reply lines with different codes",
	        [SMTP_LINE_TOO_MANY] = "reply too long",
	};
	const char *text;
	size_t text_len;
	enum smtp_client_line kind = smtp_client_reply_line(&s->reply, line, len, &text, &text_len);
	*complete = kind == SMTP_LINE_LAST;
	if (kind != SMTP_LINE_MORE && kind != SMTP_LINE_LAST) {
		session_end(s, problems[kind]);
		return false;
	}
	if ((s->state == C_EHLO || s->state == C_EHLO_TLS) && s->reply.lines > 1)
		smtp_ehlo_keyword(&s->ehlo, text, text_len);
	return true;
}

static void detached_read(struct mta_session *s);
static void detached_event(struct mta_session *s, enum net_conn_event what);

/* read_problem - why a reply line could not be taken (net_conn_read_line). */
static const char *read_problem(enum net_line kind)
{
	switch (kind) {
	case NET_LINE_TOO_LONG:
		return "reply line too long";
	case NET_LINE_BARE_EOL:
		return "reply with a bare CR or LF";
	case NET_LINE_NUL:
		return "reply with a NUL";
	default:
		return "malformed reply";
	}
}

static void session_read(void *arg)
{
	struct mta_session *s = arg;
	if (s->detached)
		return detached_read(s);
	while (!s->ended && s->state != C_DONE) {
		char line[SMTP_REPLY_READ_MAX];
		size_t len;
		enum net_line kind = net_conn_read_line(s->conn, line, sizeof line, &len);
		if (kind == NET_LINE_PARTIAL) {
			if (net_conn_in_long_line(s->conn))
				session_end(s, read_problem(NET_LINE_TOO_LONG));
			break;
		}
		bool complete = false;
		if (kind != NET_LINE_OK)
			session_end(s, read_problem(kind));
		else
			take_line(s, line, len, &complete);
		if (complete) {
			on_reply(s);
			smtp_client_reply_init(&s->reply);
			/* After STARTTLS's 220 the plaintext input is gone: TLS reads now. */
			if (s->state == C_HANDSHAKE)
				break;
		}
	}
	if (s->state == C_DONE && net_conn_input_length(s->conn) > 0)
		s->tainted = true; /* replies to nothing asked: the next transaction could not trust them */
	session_finish(s);
}

/*
 * tls_refused - on a route that checks certificates, the handshake (done
 * or failed) is judged before a byte more is sent: a certificate that did
 * not verify ends the session with 4.7.5 and OpenSSL's reason, so nothing,
 * credentials least of all, goes to that peer.
 */
static bool tls_refused(struct mta_session *s, const struct net_tls_result *r)
{
	char reason[200], q[LOG_QUOTE_MAX];
	if (!r->refused)
		return false;
	log_warning("event=remote_tls_refused relay=%s host=%s reason=%s", s->peer, s->host,
	            log_quote(q, sizeof q, r->refused_why, strlen(r->refused_why)));
	str_format(reason, sizeof reason, "certificate not verified: %s", r->refused_why);
	session_end_code(s, "4.7.5", reason);
	return true;
}

/* session_event_why - what a connection event means for the session, or NULL. */
static const char *session_event_why(struct mta_session *s, enum net_conn_event what)
{
	if (what == NET_CONN_CONNECTED) {
		if (s->implicit) {
			start_tls(s);
		} else {
			s->state = C_GREETING;
			set_timeout(s, s->config->remote_command_timeout);
		}
		return NULL;
	}
	if (what == NET_CONN_TIMEOUT_READ || what == NET_CONN_TIMEOUT_WRITE)
		return s->state == C_CONNECTING ? "connection timed out" : "timeout waiting for a reply";
	if (s->state == C_CONNECTING)
		return "connection refused";
	return "connection lost";
}

static void session_event(void *arg, enum net_conn_event what)
{
	struct mta_session *s = arg;
	if (s->detached)
		return detached_event(s, what);
	const char *why = session_event_why(s, what);
	if (why)
		session_end(s, why);
	session_finish(s);
}

/* session_tls_done - the handshake ended: EHLO again (RFC 3207 4.2), or the greeting of implicit TLS. */
static void session_tls_done(void *arg, const struct net_tls_result *r)
{
	struct mta_session *s = arg;
	if (s->detached)
		return detached_event(s, NET_CONN_ERROR);
	if (tls_refused(s, r)) {
		/* Ended: the certificate was not accepted. */
	} else if (!r->ok) {
		session_end(s, r->timed_out ? "timeout waiting for a reply" : "TLS handshake failed");
	} else {
		log_info("event=remote_tls relay=%s version=%s cipher=%s", s->peer, r->version, r->cipher);
		if (s->implicit)
			s->state = C_GREETING;
		else
			send_ehlo(s, C_EHLO_TLS);
	}
	session_finish(s);
}

static const struct net_conn_callbacks session_callbacks = {
        .read = session_read,
        .event = session_event,
        .tls_done = session_tls_done,
};

/* ---- Life ---- */

/* peer_address - addr with the route's port, its length, and "host[address]" (or the socket path) in s->peer. */
static socklen_t peer_address(struct mta_session *s, const char *host, struct sockaddr_storage *to)
{
	const struct config_route *route = s->route;
	uint16_t port = htons((uint16_t)(route->port ? route->port : s->config->remote_port));
	char ip[INET6_ADDRSTRLEN] = "?";
	if (to->ss_family == AF_UNIX) {
		str_format(s->peer, sizeof s->peer, "%s", route->socket_path);
		return sizeof(struct sockaddr_un);
	}
	socklen_t len;
	if (to->ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)to;
		in6->sin6_port = port;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)to;
		in->sin_port = port;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		len = sizeof *in;
	}
	str_format(s->peer, sizeof s->peer, "%s[%s]", host, ip);
	return len;
}

/* attach - s serves d now: a fresh transaction, sized for d's recipients. */
static void attach(struct mta_session *s, struct mta_delivery *d)
{
	s->d = d;
	s->body = d->job->body;
	free(s->accepted);
	free(s->settled);
	s->accepted = xcalloc(d->rcpt_count, sizeof *s->accepted);
	s->settled = xcalloc(d->rcpt_count, sizeof *s->settled);
	s->rcpt_at = s->accepted_count = s->skip_left = s->lmtp_at = 0;
	s->pipelined = s->decided = false;
}

/* session_new - a session for d to host, not connected yet. */
static struct mta_session *session_new(struct mta_delivery *d, const char *host)
{
	struct mta_session *s = xcalloc(1, sizeof *s);
	s->mta = d->mta;
	s->dest = d->dest_state;
	s->config = config_ref(d->job->config);
	s->route = d->route;
	s->lmtp = d->route->kind == CONFIG_ROUTE_LMTP;
	s->implicit = d->route->tls == CONFIG_TLS_IMPLICIT;
	attach(s, d);
	str_copy(s->host, sizeof s->host, host);
	return s;
}

struct mta_session *mta_session_start_conn(struct mta_delivery *d, struct net_conn *conn, const char *host)
{
	struct mta_session *s = session_new(d, host);
	str_copy(s->peer, sizeof s->peer, host);
	s->state = C_GREETING;
	s->conn = conn;
	set_timeout(s, s->config->remote_command_timeout);
	net_conn_set_callbacks(conn, &session_callbacks, s);
	return s;
}

struct mta_session *mta_session_start(struct mta_delivery *d, const struct sockaddr_storage *addr, const char *host,
                                      char *why, size_t why_size)
{
	struct mta_session *s = session_new(d, host);
	struct sockaddr_storage to = *addr;
	socklen_t len = peer_address(s, host, &to);
	s->state = C_CONNECTING;
	s->conn = net_conn_connect(mta_base(d->mta), (struct sockaddr *)&to, len, s->config->remote_connect_timeout,
	                           &session_callbacks, s);
	if (s->conn)
		return s;
	str_format(why, why_size, "4.4.1 cannot connect to %s: %s", s->peer, strerror(errno));
	mta_session_free(s);
	return NULL;
}

/* ---- Between transactions ---- */

bool mta_session_reusable(const struct mta_session *s, const struct config *current)
{
	return !s->ended && s->state == C_DONE && !s->tainted && s->config == current &&
	       s->messages < s->config->remote_messages_per_connection;
}

bool mta_session_serves(const struct mta_session *s, const struct mta_delivery *d)
{
	return s->dest == d->dest_state && s->route == d->route && s->config == d->job->config;
}

static void session_kick(evutil_socket_t fd, short what, void *arg)
{
	struct mta_session *s = arg;
	if (s->needs_rset) {
		s->state = C_RSET;
		set_timeout(s, s->config->remote_command_timeout);
		send_line(s, "RSET\r\n");
	} else {
		start_transaction(s);
	}
	session_finish(s);
}

void mta_session_next(struct mta_session *s, struct mta_delivery *d)
{
	attach(s, d);
	s->state = C_IDLE;
	if (!s->kick) {
		s->kick = event_new(mta_base(s->mta), -1, 0, session_kick, s);
		if (!s->kick)
			fatal("event_new failed");
	}
	/* From the loop: the caller is in the middle of finishing the last delivery. */
	event_active(s->kick, EV_TIMEOUT, 0);
}

static void detached_link(struct mta_session *s)
{
	struct mta_session **head = mta_detached(s->mta);
	s->detached = true;
	s->d = NULL;
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void detached_unlink(struct mta_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*mta_detached(s->mta) = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->detached = false;
}

void mta_session_park(struct mta_session *s)
{
	detached_link(s);
	s->state = C_IDLE;
	set_timeout(s, s->config->remote_idle_timeout);
}

struct mta_session *mta_session_unpark(struct mta *mta, const struct mta_delivery *d)
{
	for (struct mta_session *s = *mta_detached(mta); s; s = s->next) {
		if (s->state == C_IDLE && mta_session_serves(s, d)) {
			detached_unlink(s);
			return s;
		}
	}
	return NULL;
}

/* send_goodbye - QUIT, detached: the session frees itself on the reply, the peer's close or a short timeout. */
static void send_goodbye(struct mta_session *s)
{
	if (!s->detached)
		detached_link(s);
	log_info("event=remote_close relay=%s messages=%u", s->peer, s->messages);
	s->state = C_QUIT;
	s->dest = NULL;           /* it holds no slot now, and its destination may be forgotten before it goes */
	net_conn_resume(s->conn); /* an idle timeout turned reading off */
	uint64_t wait = s->config->remote_command_timeout < 30 ? s->config->remote_command_timeout : 30;
	set_timeout(s, wait);
	send_line(s, "QUIT\r\n");
}

/* idle_close - an idle session goes, politely: its slot is free at once. */
static void idle_close(struct mta_session *s)
{
	struct mta *mta = s->mta;
	struct mta_dest *dest = s->dest;
	send_goodbye(s);
	mta_detached_done(mta, dest);
}

bool mta_session_evict(struct mta *mta, const struct mta_dest *dest)
{
	struct mta_session *oldest = NULL;
	for (struct mta_session *s = *mta_detached(mta); s; s = s->next)
		if (s->state == C_IDLE && (!dest || s->dest == dest))
			oldest = s;
	if (!oldest)
		return false;
	idle_close(oldest);
	return true;
}

void mta_session_close(struct mta_session *s)
{
	if (s->ended || s->state != C_DONE)
		return mta_session_free(s);
	send_goodbye(s);
}

/* detached_gone - an idle or closing session is over; an idle one gives back its slot. */
static void detached_gone(struct mta_session *s)
{
	struct mta *mta = s->mta;
	struct mta_dest *dest = s->dest;
	bool idle = s->state == C_IDLE;
	mta_session_free(s);
	if (idle)
		mta_detached_done(mta, dest);
	mta_detached_done(mta, NULL);
}

/* detached_read - whatever the peer says now (the reply to QUIT, or a 421 while idle) ends the session. */
static void detached_read(struct mta_session *s)
{
	detached_gone(s);
}

static void detached_event(struct mta_session *s, enum net_conn_event what)
{
	if (s->state == C_IDLE && (what == NET_CONN_TIMEOUT_READ || what == NET_CONN_TIMEOUT_WRITE))
		return idle_close(s);
	detached_gone(s);
}

void mta_session_free(struct mta_session *s)
{
	if (!s)
		return;
	if (s->detached)
		detached_unlink(s);
	if (s->kick)
		event_free(s->kick);
	net_conn_free(s->conn, false);
	config_unref(s->config);
	free(s->accepted);
	free(s->settled);
	free(s);
}

void mta_session_free_detached(struct mta *mta)
{
	while (*mta_detached(mta))
		mta_session_free(*mta_detached(mta));
}
