/*
 * mta_session.c - the SMTP client: one connection to one address of a
 * mail exchanger, one transaction for the recipients of one delivery.
 *
 *   connect -> 220 -> EHLO (HELO if refused) -> [STARTTLS -> TLS -> EHLO]
 *   -> MAIL -> RCPT ... -> DATA -> content -> QUIT
 *
 * Replies are read line by line (at most MTA_REPLY_LINE_MAX octets, at
 * most MTA_REPLY_LINES lines); a multi-line reply whose lines disagree on
 * the code is a protocol error. Everything up to MAIL only decides whether
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
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mta/mta_private.h"
#include "net/tls.h"
#include "smtp/smtp_client_reply.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_dsn.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define MTA_REPLY_LINE_MAX 2048

enum client_state {
	C_CONNECTING,
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_HANDSHAKE,
	C_EHLO_TLS,
	C_MAIL,
	C_RCPT,
	C_DATA,
	C_CONTENT,
	C_SKIP,      /* pipelined replies of a transaction already settled */
	C_EMPTY_DOT, /* DATA was accepted though no recipient was: an empty message ends it */
	C_QUIT,
};

struct mta_session {
	struct mta_delivery *d;
	struct bufferevent *bev;
	int fd;
	bool tls;
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
	bool *accepted; /* per recipient of the delivery */
	size_t accepted_count;
	bool pipelined;   /* MAIL, RCPTs and DATA went out together (RFC 2920) */
	size_t skip_left; /* C_SKIP: replies still to come */
	bool decided;     /* recipients have their results */
	/* Ended: reported to the delivery at the top of the callback, which frees the session. */
	bool ended;
	char end_reason[200];
};

/* ---- Results ---- */

static void result_one(struct mta_session *s, size_t i, enum delivery_status status, const char *why)
{
	struct mta_delivery *d = s->d;
	struct delivery_rcpt *r = &d->job->job->rcpts[d->rcpt_index[i]];
	r->status = status;
	str_copy(r->error, sizeof r->error, why);
	static const char *const kinds[] = {"delivered", "deferred", "bounced"};
	char q[LOG_QUOTE_MAX];
	log_info("event=remote_%s qid=%s to=%s relay=%s reply=%s", kinds[status], d->job->job->qid,
	         log_quote(q, sizeof q, r->address, strlen(r->address)), s->peer, why[0] ? why : "-");
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
static void decide_all(struct mta_session *s, enum delivery_status status, const char *why, bool only_accepted)
{
	for (size_t i = 0; i < s->d->rcpt_count; i++)
		if (!only_accepted || s->accepted[i])
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
static void session_end(struct mta_session *s, const char *why)
{
	if (s->ended)
		return;
	s->ended = true;
	if (!s->decided && s->state > C_MAIL) {
		/* Lost in the middle of the transaction: nothing is known to
		 * have arrived, so the recipients wait for another try. */
		char reason[200];
		str_format(reason, sizeof reason, "4.4.2 %s (%s)", why, s->peer);
		decide_all(s, DELIVERY_TEMPFAIL, reason, false);
	}
	str_format(s->end_reason, sizeof s->end_reason, "4.4.1 %s (%s)", why, s->peer);
}

/* session_finish - at the top of a callback: report an ended session (freeing it). True if it ended. */
static bool session_finish(struct mta_session *s)
{
	if (!s->ended)
		return false;
	delivery_session_done(s->d, s->decided ? SESSION_FINAL : SESSION_NEXT, s->end_reason);
	return true;
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
	log_debug("event=remote_send relay=%s line=\"%.*s\"", s->peer, (int)strcspn(line, "\r"), line);
	bufferevent_write(s->bev, line, (size_t)n);
}

static void set_timeout(struct mta_session *s, uint64_t seconds)
{
	struct timeval tv = {(time_t)seconds, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void send_ehlo(struct mta_session *s, enum client_state state)
{
	s->state = state;
	s->esmtp = false;
	memset(&s->ehlo, 0, sizeof s->ehlo);
	send_line(s, "EHLO %s\r\n", mta_config(s->d->mta)->hostname);
}

static void content_sink(void *ctx, const char *bytes, size_t len)
{
	struct mta_session *s = ctx;
	bufferevent_write(s->bev, bytes, len);
}

static void send_content(struct mta_session *s)
{
	struct evbuffer *body = s->d->job->body;
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
	set_timeout(s, mta_config(s->d->mta)->remote_data_timeout);
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
	send_line(s, "RCPT TO:<%s>%s%s\r\n", r->address, notify, orcpt);
}

static void send_rcpt_or_data(struct mta_session *s)
{
	struct mta_delivery *d = s->d;
	if (s->rcpt_at < d->rcpt_count) {
		s->state = C_RCPT;
		send_rcpt(s, s->rcpt_at);
		return;
	}
	if (s->accepted_count == 0) {
		s->decided = true;
		s->state = C_QUIT;
		send_line(s, "QUIT\r\n");
		return;
	}
	s->state = C_DATA;
	send_line(s, "DATA\r\n");
}

/* refuse_early - what the peer offers rules the message out: every recipient gets why. */
static bool refuse_early(struct mta_session *s)
{
	struct mta_job *j = s->d->job;
	char why[200];
	size_t size = evbuffer_get_length(j->body);
	if (s->ehlo.size > 0 && size > s->ehlo.size)
		str_format(why, sizeof why, "5.3.4 message too big for %s (%zu octets, it takes %llu)", s->peer, size,
		           (unsigned long long)s->ehlo.size);
	else if (j->eight_bit && !s->ehlo.eightbitmime)
		str_format(why, sizeof why, "5.6.3 the message has 8-bit content and %s does not take 8BITMIME",
		           s->peer);
	else if (j->smtputf8 && !s->ehlo.smtputf8)
		str_format(why, sizeof why, "5.6.7 the message needs SMTPUTF8, which %s does not offer", s->peer);
	else
		return false;
	decide_all(s, DELIVERY_PERMFAIL, why, false);
	s->state = C_QUIT;
	send_line(s, "QUIT\r\n");
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
		str_format(params, sizeof params, " SIZE=%zu", evbuffer_get_length(j->body));
		used = strlen(params);
	}
	if (j->eight_bit)
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
	s->accepted = xcalloc(s->d->rcpt_count, sizeof *s->accepted);
	send_line(s, "MAIL FROM:<%s>%s\r\n", j->job->sender, params);
	if (!s->ehlo.pipelining)
		return;
	/* RFC 2920: the whole envelope and DATA in one go; the replies come back in order. */
	s->pipelined = true;
	for (size_t i = 0; i < s->d->rcpt_count; i++)
		send_rcpt(s, i);
	send_line(s, "DATA\r\n");
}

/* send_quit - the transaction is settled: say goodbye. */
static void send_quit(struct mta_session *s)
{
	s->state = C_QUIT;
	set_timeout(s, mta_config(s->d->mta)->remote_command_timeout);
	send_line(s, "QUIT\r\n");
}

/* ---- TLS ---- */

static void session_read(struct bufferevent *bev, void *arg);
static void session_event(struct bufferevent *bev, short what, void *arg);

static void start_tls(struct mta_session *s)
{
	/* Whatever the peer sent after its 220 came before the handshake:
	 * it cannot be trusted to mean anything, so it goes. */
	evbuffer_drain(bufferevent_get_input(s->bev), evbuffer_get_length(bufferevent_get_input(s->bev)));
	bufferevent_free(s->bev);
	SSL *ssl = SSL_new(mta_tls(s->d->mta));
	if (!ssl)
		fatal("SSL_new failed");
	SSL_set_tlsext_host_name(ssl, s->host);
	s->bev = bufferevent_openssl_socket_new(mta_base(s->d->mta), s->fd, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev)
		fatal("bufferevent_openssl_socket_new failed");
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	s->tls = true;
	s->state = C_HANDSHAKE;
	bufferevent_setcb(s->bev, session_read, NULL, session_event, s);
	set_timeout(s, mta_config(s->d->mta)->remote_command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* ---- Replies ---- */

/* on_reply - a whole reply is in (code, text): the next step. */
static void on_reply(struct mta_session *s)
{
	char why[300];
	reply_reason(s, why, sizeof why);
	enum delivery_status status = status_of(s->reply.code);
	switch (s->state) {
	case C_GREETING:
		if (status != DELIVERY_OK)
			return session_end(s, "greeting refused");
		return send_ehlo(s, C_EHLO);
	case C_EHLO:
	case C_EHLO_TLS:
		if (status == DELIVERY_PERMFAIL && s->state == C_EHLO) {
			s->state = C_HELO;
			return send_line(s, "HELO %s\r\n", mta_config(s->d->mta)->hostname);
		}
		if (status != DELIVERY_OK)
			return session_end(s, "EHLO refused");
		s->esmtp = true;
		if (s->state == C_EHLO && s->ehlo.starttls && !s->tls) {
			s->state = C_STARTTLS;
			return send_line(s, "STARTTLS\r\n");
		}
		return send_mail(s);
	case C_HELO:
		if (status != DELIVERY_OK)
			return session_end(s, "HELO refused");
		return send_mail(s);
	case C_STARTTLS:
		if (s->reply.code == 220)
			return start_tls(s);
		/* Opportunistic: a refused STARTTLS leaves the session as it was. */
		return send_mail(s);
	case C_MAIL:
		if (status != DELIVERY_OK) {
			decide_all(s, status, why, false);
			if (!s->pipelined)
				return send_quit(s);
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
			s->state = C_EMPTY_DOT;
			return send_line(s, ".\r\n");
		}
		if (s->reply.code != 354) {
			decide_all(s, status == DELIVERY_OK ? DELIVERY_TEMPFAIL : status, why, true);
			return send_quit(s);
		}
		return send_content(s);
	case C_CONTENT:
		decide_all(s, status, why, true);
		return send_quit(s);
	case C_SKIP:
		if (s->reply.code == 354) {
			s->state = C_EMPTY_DOT;
			return send_line(s, ".\r\n");
		}
		if (--s->skip_left == 0)
			return send_quit(s);
		return;
	case C_EMPTY_DOT:
		return send_quit(s);
	case C_QUIT:
		return session_end(s, "done");
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

static void session_read(struct bufferevent *bev, void *arg)
{
	struct mta_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!s->ended) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (!line) {
			if (evbuffer_get_length(in) > MTA_REPLY_LINE_MAX)
				session_end(s, "reply line too long");
			break;
		}
		bool complete = false;
		if (len > MTA_REPLY_LINE_MAX)
			session_end(s, "reply line too long");
		else
			take_line(s, line, len, &complete);
		free(line);
		if (complete) {
			on_reply(s);
			smtp_client_reply_init(&s->reply);
			/* After STARTTLS's 220 this buffer is gone: TLS reads now. */
			if (s->state == C_HANDSHAKE)
				break;
		}
	}
	session_finish(s);
}

/* session_event_why - what a bufferevent event means for the session, or NULL. */
static const char *session_event_why(struct mta_session *s, short what)
{
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == C_CONNECTING) {
			s->state = C_GREETING;
			set_timeout(s, mta_config(s->d->mta)->remote_command_timeout);
		} else if (s->state == C_HANDSHAKE) {
			const char *version, *cipher;
			tls_describe(bufferevent_openssl_get_ssl(s->bev), &version, &cipher);
			log_info("event=remote_tls relay=%s version=%s cipher=%s", s->peer, version, cipher);
			send_ehlo(s, C_EHLO_TLS);
		}
		return NULL;
	}
	if (what & BEV_EVENT_TIMEOUT)
		return s->state == C_CONNECTING ? "connection timed out" : "timeout waiting for a reply";
	if (s->state == C_HANDSHAKE)
		return "TLS handshake failed";
	if (s->state == C_QUIT && s->decided)
		return "closed after QUIT";
	if (s->state == C_CONNECTING)
		return "connection refused";
	return "connection lost";
}

static void session_event(struct bufferevent *bev, short what, void *arg)
{
	struct mta_session *s = arg;
	const char *why = session_event_why(s, what);
	if (why)
		session_end(s, why);
	session_finish(s);
}

/* ---- Life ---- */

struct mta_session *mta_session_start(struct mta_delivery *d, const struct sockaddr_storage *addr, const char *host,
                                      char *why, size_t why_size)
{
	const struct config *c = mta_config(d->mta);
	struct mta_session *s = xcalloc(1, sizeof *s);
	s->d = d;
	s->fd = -1;
	str_copy(s->host, sizeof s->host, host);
	struct sockaddr_storage to = *addr;
	char ip[INET6_ADDRSTRLEN] = "?";
	socklen_t len;
	if (to.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&to;
		in6->sin6_port = htons((uint16_t)c->remote_port);
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)&to;
		in->sin_port = htons((uint16_t)c->remote_port);
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		len = sizeof *in;
	}
	str_format(s->peer, sizeof s->peer, "%s[%s]", host, ip);
	s->fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	s->bev = s->fd >= 0 ? bufferevent_socket_new(mta_base(d->mta), s->fd, 0) : NULL;
	s->state = C_CONNECTING;
	if (s->bev) {
		bufferevent_setcb(s->bev, session_read, NULL, session_event, s);
		set_timeout(s, c->remote_connect_timeout);
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&to, (int)len) == 0)
			return s;
	}
	str_format(why, why_size, "4.4.1 cannot connect to %s: %s", s->peer, strerror(errno));
	mta_session_free(s);
	return NULL;
}

void mta_session_free(struct mta_session *s)
{
	if (!s)
		return;
	if (s->bev)
		bufferevent_free(s->bev);
	if (!s->tls && s->fd >= 0)
		close(s->fd);
	free(s->accepted);
	free(s);
}
