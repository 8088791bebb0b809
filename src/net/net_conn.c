/*
 * net_conn.c - one connection layer under both SMTP state machines: the
 * bufferevent (plain, TLS, or one end of an in-memory pair), the STARTTLS
 * swap, the strict line reader, watermarks, timeouts, and the end.
 *
 * The socket: a plain bufferevent does not own it, so STARTTLS can hand it
 * to a TLS bufferevent, which owns it (and its SSL) from then on and
 * closes both when freed. The STARTTLS swap frees the plain bufferevent
 * with whatever input it held: nothing read in plaintext crosses into the
 * TLS session. The callbacks, read watermark and timeouts carry over.
 *
 * The end: a lingering close (net_linger.c) sends a close_notify first on
 * TLS, then lingers on a duplicate of the socket, since freeing the TLS
 * bufferevent closes its own descriptor.
 *
 * Deferred free: every libevent callback runs through conn_enter and
 * conn_leave; net_conn_free inside one only marks the connection, and
 * conn_leave frees it once the outermost callback has returned. The user's
 * object may be gone by then: nothing of it is touched after its callback.
 */
#include "net/net_conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_linger.h"
#include "net/net_tls.h"
#include "util/util_log.h"
#include "util/util_str.h"

struct net_conn {
	struct event_base *base;
	struct bufferevent *bev;
	int fd;                              /* -1 over a pair */
	bool tls;                            /* bev is a TLS bufferevent: it owns fd and its SSL */
	bool handshaking;                    /* a TLS handshake is under way */
	bool verify;                         /* client: the handshake's certificate is judged (tls_client_refused) */
	bool tls_active;                     /* a handshake finished */
	struct tls_server *server;           /* the certificates an accepted TLS session uses (a reference) */
	struct tls_server *starttls_pending; /* STARTTLS: swap once the output has left (a reference) */
	struct net_linger *linger;
	char sid[16];
	const struct net_conn_callbacks *cb;
	void *arg;
	size_t read_max;
	struct timeval rd, wr;
	bool discarding; /* the line reader is inside an over-long line */
	int depth;       /* callbacks of this connection under way */
	bool freed;      /* net_conn_free was called inside one */
	bool free_linger;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_destroy(struct net_conn *c);

static struct net_conn *conn_new(struct event_base *base, int fd)
{
	struct net_conn *c = xcalloc(1, sizeof *c);
	c->base = base;
	c->fd = fd;
	return c;
}

/* conn_setup_bev - the connection's callbacks, read limit and timeouts on a new bufferevent. */
static void conn_setup_bev(struct net_conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, c->read_max);
	bufferevent_set_timeouts(c->bev, c->rd.tv_sec ? &c->rd : NULL, c->wr.tv_sec ? &c->wr : NULL);
	if (c->cb)
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* conn_tls_bev - a TLS bufferevent on the connection's socket; the handshake starts when enabled. */
static void conn_tls_bev(struct net_conn *c, SSL *ssl, enum bufferevent_ssl_state state)
{
	c->bev = bufferevent_openssl_socket_new(c->base, c->fd, ssl, state, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		fatal("bufferevent_openssl_socket_new failed");
	/* A peer that closes without close_notify has still closed. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->tls = true;
	c->handshaking = true;
	conn_setup_bev(c);
}

static void conn_accept_tls(struct net_conn *c, struct tls_server *tls)
{
	c->server = tls_server_ref(tls);
	conn_tls_bev(c, tls_server_ssl(c->server), BUFFEREVENT_SSL_ACCEPTING);
}

struct net_conn *net_conn_accept(struct event_base *base, int fd)
{
	struct net_conn *c = conn_new(base, fd);
	c->bev = bufferevent_socket_new(base, fd, 0);
	if (!c->bev)
		fatal("bufferevent_socket_new failed");
	conn_setup_bev(c);
	return c;
}

struct net_conn *net_conn_accept_tls(struct event_base *base, int fd, struct tls_server *tls)
{
	struct net_conn *c = conn_new(base, fd);
	conn_accept_tls(c, tls);
	return c;
}

struct net_conn *net_conn_connect(struct event_base *base, const struct sockaddr *addr, socklen_t len,
                                  uint64_t timeout_s, const struct net_conn_callbacks *cb, void *arg)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct net_conn *c = net_conn_accept(base, fd);
	net_conn_set_timeouts(c, timeout_s, timeout_s);
	net_conn_set_callbacks(c, cb, arg);
	if (bufferevent_socket_connect(c->bev, addr, (int)len) != 0) {
		int saved = errno;
		net_conn_free(c, false);
		errno = saved;
		return NULL;
	}
	return c;
}

struct net_conn *net_conn_pair(struct event_base *base, struct bufferevent **peer)
{
	struct bufferevent *pair[2];
	if (bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) != 0)
		fatal("bufferevent_pair_new failed");
	struct net_conn *c = conn_new(base, -1);
	c->bev = pair[0];
	conn_setup_bev(c);
	*peer = pair[1];
	return c;
}

void net_conn_set_callbacks(struct net_conn *c, const struct net_conn_callbacks *cb, void *arg)
{
	c->cb = cb;
	c->arg = arg;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void net_conn_set_linger(struct net_conn *c, struct net_linger *linger, const char *sid)
{
	c->linger = linger;
	str_copy(c->sid, sizeof c->sid, sid);
}

void net_conn_set_read_max(struct net_conn *c, size_t bytes)
{
	c->read_max = bytes;
	bufferevent_setwatermark(c->bev, EV_READ, 0, bytes);
}

void net_conn_set_timeouts(struct net_conn *c, uint64_t read_s, uint64_t write_s)
{
	c->rd = (struct timeval){(time_t)read_s, 0};
	c->wr = (struct timeval){(time_t)write_s, 0};
	bufferevent_set_timeouts(c->bev, read_s ? &c->rd : NULL, write_s ? &c->wr : NULL);
}

void net_conn_pause(struct net_conn *c)
{
	bufferevent_disable(c->bev, EV_READ);
}

void net_conn_resume(struct net_conn *c)
{
	bufferevent_enable(c->bev, EV_READ);
}

void net_conn_restart_write(struct net_conn *c)
{
	bufferevent_enable(c->bev, EV_WRITE);
}

void net_conn_write(struct net_conn *c, const void *bytes, size_t len)
{
	bufferevent_write(c->bev, bytes, len);
}

size_t net_conn_output_length(struct net_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

struct evbuffer *net_conn_input(struct net_conn *c)
{
	return bufferevent_get_input(c->bev);
}

size_t net_conn_input_length(struct net_conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

bool net_conn_tls_active(const struct net_conn *c)
{
	return c->tls_active;
}

/* ---- Lines ---- */

enum net_line net_conn_read_line(struct net_conn *c, char *buf, size_t max, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr eol = evbuffer_search(in, "\r\n", 2, NULL);
	*len = 0;
	if (eol.pos < 0) {
		size_t avail = evbuffer_get_length(in);
		if (avail >= max) {
			/* Too long already: drop what we have (keeping a CR that may
			 * start the CRLF) and skip to the end of the line. */
			evbuffer_drain(in, avail - 1);
			c->discarding = true;
		}
		return NET_LINE_PARTIAL;
	}
	size_t line_len = (size_t)eol.pos; /* bytes before the CRLF */
	if (c->discarding || line_len + 2 > max) {
		evbuffer_drain(in, line_len + 2);
		c->discarding = false;
		return NET_LINE_TOO_LONG;
	}
	evbuffer_remove(in, buf, line_len + 2);
	*len = line_len;
	if (memchr(buf, '\r', line_len) || memchr(buf, '\n', line_len))
		return NET_LINE_BARE_EOL;
	if (memchr(buf, '\0', line_len))
		return NET_LINE_NUL;
	return NET_LINE_OK;
}

bool net_conn_in_long_line(const struct net_conn *c)
{
	return c->discarding;
}

/* ---- Callbacks ---- */

static void conn_enter(struct net_conn *c)
{
	c->depth++;
}

/* conn_leave - the end of a callback: free the connection if it was freed inside. */
static void conn_leave(struct net_conn *c)
{
	if (--c->depth == 0 && c->freed)
		conn_destroy(c);
}

static bool conn_live(const struct net_conn *c)
{
	return c->cb && !c->freed;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	conn_enter(c);
	if (conn_live(c))
		c->cb->read(c->arg);
	conn_leave(c);
}

/* conn_swap_to_tls - the STARTTLS reply has left: TLS on the same socket, accepting. */
static void conn_swap_to_tls(struct net_conn *c)
{
	struct tls_server *tls = c->starttls_pending;
	c->starttls_pending = NULL;
	bufferevent_free(c->bev);
	conn_accept_tls(c, tls);
	tls_server_unref(tls);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	conn_enter(c);
	if (c->starttls_pending && !c->freed)
		conn_swap_to_tls(c);
	else if (conn_live(c) && c->cb->drained)
		c->cb->drained(c->arg);
	conn_leave(c);
}

/* conn_tls_result - the handshake ended: tell the user what was agreed, or why not. */
static void conn_tls_result(struct net_conn *c, short what)
{
	struct net_tls_result r = {.refused_why = ""};
	char why[256], refused[160];
	c->handshaking = false;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		tls_describe(ssl, &r.version, &r.cipher);
		r.ok = true;
		c->tls_active = true;
	} else {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		if (e)
			ERR_error_string_n(e, why, sizeof why);
		else
			str_copy(why, sizeof why, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "connection closed");
		r.why = why;
		r.timed_out = (what & BEV_EVENT_TIMEOUT) != 0;
	}
	if (c->verify && tls_client_refused(bufferevent_openssl_get_ssl(c->bev), refused, sizeof refused)) {
		r.refused = true;
		r.refused_why = refused;
	}
	c->cb->tls_done(c->arg, &r);
}

static enum net_conn_event conn_event_kind(short what)
{
	if (what & BEV_EVENT_CONNECTED)
		return NET_CONN_CONNECTED;
	if (what & BEV_EVENT_TIMEOUT)
		return (what & BEV_EVENT_READING) ? NET_CONN_TIMEOUT_READ : NET_CONN_TIMEOUT_WRITE;
	if (what & BEV_EVENT_EOF)
		return NET_CONN_EOF;
	return NET_CONN_ERROR;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;
	conn_enter(c);
	if (conn_live(c) && c->handshaking)
		conn_tls_result(c, what);
	else if (conn_live(c))
		c->cb->event(c->arg, conn_event_kind(what));
	conn_leave(c);
}

/* ---- TLS ---- */

void net_conn_starttls_server(struct net_conn *c, struct tls_server *tls)
{
	bufferevent_disable(c->bev, EV_READ);
	/* A reference now: a reload may put other certificates in place before the reply has left. */
	c->starttls_pending = tls_server_ref(tls);
	/* Usually the reply is still in the output; if it has left already, swap now. */
	if (net_conn_output_length(c) == 0)
		conn_swap_to_tls(c);
}

void net_conn_starttls_client(struct net_conn *c, struct ssl_st *ssl, bool verify)
{
	c->verify = verify;
	bufferevent_free(c->bev);
	conn_tls_bev(c, ssl, BUFFEREVENT_SSL_CONNECTING);
}

/* ---- The end ---- */

/*
 * conn_close_socket - free the bufferevent and end the connection: a
 * lingering close after our last reply (linger), else a close at once.
 */
static void conn_close_socket(struct net_conn *c, bool linger)
{
	linger = linger && c->linger && c->fd >= 0;
	int fd = c->tls ? -1 : c->fd;
	if (c->tls && linger) {
		tls_close_notify(bufferevent_openssl_get_ssl(c->bev));
		fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			log_debug("event=linger_skipped session=%s error=\"%s\"", c->sid, strerror(errno));
	}
	bufferevent_free(c->bev);
	if (fd < 0)
		return;
	if (linger)
		net_linger_close(c->linger, fd, c->sid);
	else
		close(fd);
}

static void conn_destroy(struct net_conn *c)
{
	conn_close_socket(c, c->free_linger);
	tls_server_unref(c->starttls_pending);
	tls_server_unref(c->server);
	free(c);
}

void net_conn_free(struct net_conn *c, bool linger)
{
	if (!c)
		return;
	c->free_linger = linger;
	if (c->depth > 0) {
		c->freed = true;
		/* Nothing more reaches the user, and no more input is taken. */
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	conn_destroy(c);
}
