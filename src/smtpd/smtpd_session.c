/*
 * smtpd_session.c - one inbound SMTP session: its reading, its state, its
 * end. The connection under it (socket, TLS, line reader, timeouts, the
 * lingering close) is net/net_conn.c's; what it needs from the server
 * comes through its struct smtpd_host (smtpd_session.h).
 *
 * Input is read from the connection's buffer in place: a command line is
 * taken by the strict line reader (CRLF only, no NUL, at most
 * SMTPD_LINE_MAX octets), then checked against SMTP_COMMAND_LINE_MAX
 * unless it is AUTH, and dispatched; message content
 * goes to the transaction in whatever runs it arrived. Nothing is read
 * while the session waits for the store, so pipelined commands wait in the
 * buffer (bounded by the read high-watermark) and are taken in order once
 * the reply is out. A client that does not read its replies stops being
 * read (SMTPD_OUTPUT_HIGH).
 *
 * An over-long command line is skipped to its CRLF and refused; the session
 * stays in sync. A client that sends a command past a synchronisation point
 * (RFC 2920 3.1) is told 554 and disconnected (smtpd_command.c).
 *
 * Lifetime: a session marks itself dead and is freed at the top of the
 * callback that found it so (session_end_callback), never inside a handler.
 *
 * The end of the connection: once the last reply has left (SMTPD_CLOSING),
 * the session is freed but its socket lingers (net_conn_free, which uses
 * net/net_linger.c): on TLS a close_notify first, then the write side is
 * shut and what the client still sends is read and dropped for a bounded
 * time, then the socket is closed. Closing at once would lose the reply to
 * a client still sending (a socket closed with unread input sends a
 * reset). A client that closed, failed or does not read is closed at once.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_sasl.h"
#include "net/net_conn.h"
#include "smtpd/smtpd_local.h"
#include "smtpd/smtpd_private.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define SMTPD_READ_HIGH (64 * 1024)
/* Longest line read: an AUTH exchange line (RFC 4954 4); commands stop at SMTP_COMMAND_LINE_MAX. */
#define SMTPD_LINE_MAX       SASL_LINE_MAX
#define SMTPD_OUTPUT_HIGH    (64 * 1024)
#define SMTPD_CONTENT_IOVECS 8

static const char *const state_names[SMTPD_STATE_COUNT] = {
        "connected", "ready", "mail", "rcpt", "data", "bdat", "commit", "auth", "auth_wait", "closing",
};

static void session_process(struct smtpd_session *s);

/* ---- Replies ---- */

void session_write(struct smtpd_session *s, const char *bytes, size_t len)
{
	if (s->state == SMTPD_CLOSING || s->dead)
		return;
	net_conn_write(s->conn, bytes, len);
}

/* session_count_code - one more error, if a reply with this code is one; too many end the session. */
static void session_count_code(struct smtpd_session *s, unsigned code)
{
	/* A timeout or our own shutdown already closes. */
	if (code < 400 || code == 421)
		return;
	if (++s->errors < s->config->max_errors)
		return;
	char line[SMTP_REPLY_LINE_MAX];
	size_t n = smtp_reply_format(line, sizeof line, SMTP_R_TOO_MANY_ERRORS, NULL);
	session_write(s, line, n);
	log_warning("event=too_many_errors session=%s errors=%llu", s->sid, (unsigned long long)s->errors);
	session_close_after_reply(s);
}

static void session_count_error(struct smtpd_session *s, enum smtp_reply_id id)
{
	/* A full transaction is not the client's error, nor is a full disk: a
	 * client that tries again in the same session is doing what 452 asks. */
	if (id != SMTP_R_TOO_MANY_RCPTS && id != SMTP_R_NO_STORAGE)
		session_count_code(s, (unsigned)smtp_reply_get(id)->code);
}

void session_reply_text(struct smtpd_session *s, enum smtp_reply_id id, const char *text)
{
	char line[SMTP_REPLY_LINE_MAX];
	size_t n = smtp_reply_format(line, sizeof line, id, text);
	if (n == 0)
		n = smtp_reply_format(line, sizeof line, id, NULL);
	session_write(s, line, n);
	if (smtp_reply_is_error(id)) {
		const struct smtp_reply *r = smtp_reply_get(id);
		log_info("event=reject session=%s%s%s code=%d status=%s reason=\"%s\"", s->sid, s->txn ? " qid=" : "",
		         s->txn ? s->txn->qid : "", r->code, r->status, text ? text : r->text);
	}
	session_count_error(s, id);
}

void session_reply(struct smtpd_session *s, enum smtp_reply_id id)
{
	session_reply_text(s, id, NULL);
}

void session_reply_config(struct smtpd_session *s, const struct config_reply *reply, const char *address)
{
	char line[SMTP_REPLY_LINE_MAX], q[LOG_QUOTE_MAX];
	/* The configured text is at most 200 characters, an address at most 256: this fits. */
	if (!str_format(line, sizeof line, "%u %s <%s>: %s\r\n", reply->code, reply->status, address, reply->text))
		str_format(line, sizeof line, "%u %s %s\r\n", reply->code, reply->status, reply->text);
	session_write(s, line, strlen(line));
	log_info("event=reject session=%s%s%s code=%u status=%s reason=%s", s->sid, s->txn ? " qid=" : "",
	         s->txn ? s->txn->qid : "", reply->code, reply->status,
	         log_quote(q, sizeof q, reply->text, strlen(reply->text)));
	session_count_code(s, reply->code);
}

/* ---- State ---- */

void session_enter_state(struct smtpd_session *s, enum smtpd_state state)
{
	/* Once closing, nothing reopens the session. */
	if (s->state == SMTPD_CLOSING || s->state == state)
		return;
	log_debug("event=state session=%s from=%s to=%s", s->sid, state_names[s->state], state_names[state]);
	s->state = state;
}

void session_close_after_reply(struct smtpd_session *s)
{
	if (s->state == SMTPD_CLOSING)
		return;
	session_enter_state(s, SMTPD_CLOSING);
	net_conn_pause(s->conn);
	if (net_conn_output_length(s->conn) == 0)
		s->dead = true;
}

void session_set_data_timeouts(struct smtpd_session *s, bool data)
{
	net_conn_set_timeouts(s->conn, data ? s->config->data_timeout : s->config->command_timeout,
	                      s->config->command_timeout);
}

/* ---- End of a session ---- */

static void session_free(struct smtpd_session *s)
{
	log_info("event=disconnect session=%s client=%s duration_ms=%llu messages=%llu errors=%llu", s->sid, s->peer_ip,
	         (unsigned long long)(time_mono_ms() - s->started_ms), (unsigned long long)s->messages,
	         (unsigned long long)s->errors);
	txn_free(s->txn);
	auth_session_free(s);
	/* After our last reply the socket lingers, so that the reply is not
	 * lost to a reset; a client that went or stopped reading is closed at
	 * once (net_conn.c). */
	net_conn_free(s->conn, s->state == SMTPD_CLOSING && !s->close_at_once);
	struct smtpd_host *host = s->host;
	uint64_t id = s->id;
	unsigned char key[16];
	memcpy(key, s->peer_key, sizeof key);
	config_unref(s->config);
	free(s);
	host->gone(host->ctx, id, key);
}

/* session_end_callback - every entry point ends here: free a dead session. */
static void session_end_callback(struct smtpd_session *s)
{
	if (s->dead)
		session_free(s);
}

/* ---- Input ---- */

static bool session_over_time(struct smtpd_session *s)
{
	if (time_mono_ms() - s->started_ms <= s->config->session_timeout * 1000)
		return false;
	session_reply_text(s, SMTP_R_TIMEOUT, "Session too long, closing connection");
	session_close_after_reply(s);
	return true;
}

/* session_line_too_long - refuse an over-long line (its bytes are gone already). */
static void session_line_too_long(struct smtpd_session *s)
{
	if (s->state == SMTPD_AUTH)
		auth_response_too_long(s);
	else
		session_reply(s, SMTP_R_LINE_TOO_LONG);
}

/* line_is_auth - AUTH lines may be longer than others: RFC 4954 4 allows 12288 octets. */
static bool line_is_auth(const char *line, size_t len)
{
	return len >= 5 && str_ieq(line, 5, "AUTH ");
}

/*
 * session_read_line - take one command line if a whole one is there.
 *
 * A line ends only at CRLF (RFC 5321 2.3.8), exactly as message content
 * does: a bare CR or LF is part of the line, and makes it invalid. Reading
 * "NOOP<LF>RSET<CRLF>" as two commands would be the kind of disagreement
 * about line ends that SMTP smuggling lives on.
 */
static bool session_read_line(struct smtpd_session *s)
{
	char line[SMTPD_LINE_MAX];
	size_t line_len;
	switch (net_conn_read_line(s->conn, line, sizeof line, &line_len)) {
	case NET_LINE_PARTIAL:
		return false;
	case NET_LINE_TOO_LONG:
		session_line_too_long(s);
		break;
	case NET_LINE_BARE_EOL:
		session_reply(s, SMTP_R_BARE_EOL_COMMAND);
		break;
	case NET_LINE_NUL:
		session_reply(s, SMTP_R_NUL_COMMAND);
		break;
	case NET_LINE_OK:
		if (s->state == SMTPD_AUTH)
			auth_response(s, line, line_len);
		else if (line_len + 2 > SMTP_COMMAND_LINE_MAX && !line_is_auth(line, line_len))
			session_line_too_long(s);
		else
			command_dispatch(s, line, line_len);
		break;
	}
	return true;
}

/* session_discard_chunk - skip a refused BDAT chunk, then give the reply owed. */
static bool session_discard_chunk(struct smtpd_session *s, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	size_t n = s->discard_left < avail ? (size_t)s->discard_left : avail;
	evbuffer_drain(in, n);
	s->discard_left -= n;
	if (s->discard_left > 0)
		return false;
	enum smtp_reply_id id = (enum smtp_reply_id)(s->discard_reply - 1);
	s->discard_reply = 0;
	session_set_data_timeouts(s, false);
	session_reply(s, id);
	return true;
}

static void session_chunk_done(struct smtpd_session *s)
{
	struct smtpd_txn *txn = s->txn;
	session_set_data_timeouts(s, false);
	if (txn->chunk_last || txn->too_big) {
		txn_finish(s);
		return;
	}
	char line[SMTP_REPLY_LINE_MAX];
	str_format(line, sizeof line, "250 2.0.0 %llu octets received\r\n",
	           (unsigned long long)txn->reader.content_bytes);
	session_write(s, line, strlen(line));
	session_enter_state(s, SMTPD_RCPT);
}

/* session_read_content - feed DATA or BDAT content; true if progress was made. */
static bool session_read_content(struct smtpd_session *s, struct evbuffer *in)
{
	struct smtpd_txn *txn = s->txn;
	struct evbuffer_iovec vec[SMTPD_CONTENT_IOVECS];
	int n = evbuffer_peek(in, -1, NULL, vec, SMTPD_CONTENT_IOVECS);
	if (n > SMTPD_CONTENT_IOVECS)
		n = SMTPD_CONTENT_IOVECS;
	size_t consumed = 0;
	bool complete = false;
	for (int i = 0; i < n && !complete; i++) {
		size_t len = vec[i].iov_len;
		if (s->state == SMTPD_BDAT && len > txn->chunk_left)
			len = (size_t)txn->chunk_left;
		size_t used = txn_feed(s, vec[i].iov_base, len);
		consumed += used;
		if (s->state == SMTPD_BDAT) {
			txn->chunk_left -= used;
			complete = txn->chunk_left == 0;
		} else {
			complete = txn->reader.done;
		}
	}
	evbuffer_drain(in, consumed);
	if (complete) {
		if (s->state == SMTPD_BDAT)
			session_chunk_done(s);
		else
			txn_finish(s);
	}
	return consumed > 0 || complete;
}

static bool session_output_full(struct smtpd_session *s)
{
	if (net_conn_output_length(s->conn) <= SMTPD_OUTPUT_HIGH)
		return false;
	s->output_blocked = true;
	return true;
}

/* session_maybe_shutdown - during shutdown, an idle session says 421 and goes. */
static bool session_maybe_shutdown(struct smtpd_session *s)
{
	if (!s->host->shutting_down || s->txn || s->state > SMTPD_RCPT)
		return false;
	session_reply(s, SMTP_R_SHUTDOWN);
	session_close_after_reply(s);
	return true;
}

static void session_process(struct smtpd_session *s)
{
	struct evbuffer *in = net_conn_input(s->conn);
	while (!s->dead && s->state != SMTPD_CLOSING && s->state != SMTPD_COMMIT && s->state != SMTPD_AUTH_WAIT &&
	       !s->tls_starting && !s->lookup_pending) {
		if (session_over_time(s) || session_output_full(s) || session_maybe_shutdown(s))
			break;
		bool progress;
		if (s->state == SMTPD_BDAT && s->txn->chunk_left == 0) {
			/* BDAT 0 LAST: a chunk with nothing to read. */
			session_chunk_done(s);
			continue;
		}
		if (evbuffer_get_length(in) == 0 && !(s->discard_reply && s->discard_left == 0))
			break;
		if (s->discard_reply)
			progress = session_discard_chunk(s, in);
		else if (s->state == SMTPD_DATA || s->state == SMTPD_BDAT)
			progress = session_read_content(s, in);
		else
			progress = session_read_line(s);
		if (!progress)
			break;
	}
}

void session_resume(struct smtpd_session *s)
{
	session_process(s);
	session_end_callback(s);
}

/* ---- Callbacks ---- */

static void session_read_cb(void *arg)
{
	struct smtpd_session *s = arg;
	session_process(s);
	session_end_callback(s);
}

static void session_drained_cb(void *arg)
{
	struct smtpd_session *s = arg;
	if (s->state == SMTPD_CLOSING) {
		s->dead = true;
	} else if (s->output_blocked) {
		s->output_blocked = false;
		session_process(s);
	}
	session_end_callback(s);
}

/* session_tls_done - the handshake ended: note what was agreed, or close. */
static void session_tls_done(void *arg, const struct net_tls_result *r)
{
	struct smtpd_session *s = arg;
	s->tls_starting = false;
	if (r->ok) {
		str_copy(s->tls_version, sizeof s->tls_version, r->version);
		str_copy(s->tls_cipher, sizeof s->tls_cipher, r->cipher);
		s->tls_active = true;
		log_info("event=tls session=%s version=%s cipher=%s", s->sid, s->tls_version, s->tls_cipher);
	} else {
		/* Nothing can be said to a client that never finished the
		 * handshake: log why and close. */
		log_info("event=tls_failed session=%s client=%s reason=\"%s\"", s->sid, s->peer_ip, r->why);
		s->close_at_once = true;
		s->dead = true;
	}
	session_end_callback(s);
}

static void session_event_cb(void *arg, enum net_conn_event what)
{
	struct smtpd_session *s = arg;
	if (what == NET_CONN_TIMEOUT_READ && s->state != SMTPD_CLOSING) {
		log_info("event=timeout session=%s state=%s", s->sid, state_names[s->state]);
		session_reply(s, SMTP_R_TIMEOUT);
		session_close_after_reply(s);
		/* Give the 421 a write timeout's time to leave, then go. */
		net_conn_restart_write(s->conn);
	} else {
		/* EOF, an error, or a last reply the client does not read. */
		if (what == NET_CONN_ERROR)
			log_debug("event=socket_error session=%s", s->sid);
		s->close_at_once = true;
		s->dead = true;
	}
	session_end_callback(s);
}

static const struct net_conn_callbacks session_callbacks = {
        .read = session_read_cb,
        .drained = session_drained_cb,
        .event = session_event_cb,
        .tls_done = session_tls_done,
};

/* ---- TLS ---- */

/*
 * session_begin_tls - STARTTLS was answered 220: TLS once that has gone out.
 *
 * RFC 3207 4.2: the server forgets everything it learnt from the client
 * before TLS, HELO and AUTH included. Nothing read in plaintext survives: a
 * client that sent more after STARTTLS was already refused (554,
 * smtpd_command.c), and the connection reads nothing more in plaintext, so
 * no byte injected in plaintext can be taken as a command once the session
 * is encrypted (CVE-2011-0411). Until the handshake ends no command is
 * taken (tls_starting).
 */
void session_begin_tls(struct smtpd_session *s)
{
	s->tls_starting = true;
	s->tls_started = true;
	s->helo[0] = '\0';
	s->esmtp = false;
	s->auth_user[0] = '\0'; /* an AUTH before TLS (loopback only) is forgotten too */
	txn_reset(s);           /* back to SMTPD_CONNECTED, with the plain socket's timeouts */
	net_conn_starttls_server(s->conn, s->host->tls);
}

/* ---- From the server ---- */

struct smtpd_session *smtpd_session_new(struct smtpd_host *host, uint64_t id, struct config *config,
                                        struct net_conn *conn, const struct sockaddr *peer, socklen_t peer_len,
                                        enum listener_kind kind)
{
	struct smtpd_session *s = xcalloc(1, sizeof *s);
	s->id = id;
	id_next(s->sid);
	s->host = host;
	s->config = config_ref(config);
	s->kind = kind;
	s->started_ms = time_mono_ms();
	smtpd_peer_key(peer, s->peer_key);
	if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)peer;
		inet_ntop(AF_INET6, &in6->sin6_addr, s->peer_ip, sizeof s->peer_ip);
		s->peer_port = ntohs(in6->sin6_port);
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)peer;
		inet_ntop(AF_INET, &in->sin_addr, s->peer_ip, sizeof s->peer_ip);
		s->peer_port = ntohs(in->sin_port);
	}
	/* Implicit TLS (RFC 8314): the connection starts with the handshake;
	 * the greeting waits in the output until it is done. */
	s->tls_started = kind == LISTENER_SUBMISSIONS;
	s->conn = conn;
	net_conn_set_linger(conn, host->linger, s->sid);
	net_conn_set_read_max(conn, SMTPD_READ_HIGH);
	session_set_data_timeouts(s, false);
	net_conn_set_callbacks(conn, &session_callbacks, s);
	if (kind == LISTENER_LOCAL)
		local_session_identify(s);
	else
		log_info("event=connect session=%s client=%s port=%u", s->sid, s->peer_ip, s->peer_port);
	char line[SMTP_REPLY_LINE_MAX];
	str_format(line, sizeof line, "220 %s ESMTP tern\r\n", config->hostname);
	session_write(s, line, strlen(line));
	return s;
}

void smtpd_session_commit_done(struct smtpd_session *s, struct store_message *msg)
{
	if (msg->committed) {
		char line[SMTP_REPLY_LINE_MAX];
		str_format(line, sizeof line, "250 2.0.0 Ok: queued as %s\r\n", msg->qid);
		session_write(s, line, strlen(line));
		s->messages++;
		log_info("event=queued session=%s qid=%s size=%llu rcpts=%zu", s->sid, msg->qid,
		         (unsigned long long)msg->size, msg->rcpt_count);
	} else if (msg->no_storage) {
		session_reply(s, SMTP_R_NO_STORAGE);
	} else {
		session_reply_text(s, SMTP_R_LOCAL_ERROR, "Local error writing the queue, try again later");
	}
	store_message_free(msg);
	txn_reset(s);
	/* Commands that came while we waited are taken now, in order. */
	session_process(s);
	session_end_callback(s);
}

void smtpd_session_shutdown(struct smtpd_session *s, bool force)
{
	if (force || (!s->txn && s->state <= SMTPD_RCPT)) {
		session_reply(s, SMTP_R_SHUTDOWN);
		session_close_after_reply(s);
	} else {
		s->shutdown_pending = true;
	}
	session_end_callback(s);
}
