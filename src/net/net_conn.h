/*
 * net_conn.h - one connection, for the server's sessions and the client's
 * alike: over an accepted or connected socket, over TLS from the first byte,
 * or over an in-memory pair (no socket: unit tests and the session fuzzer).
 *
 * What it owns: the bufferevent (plain or TLS), the socket, the TLS state
 * and the reference to the certificates in use, the STARTTLS swap, the
 * strict line reader, the watermarks and timeouts, and the end of the
 * connection (a lingering close, net_linger.c, or a close at once).
 *
 * What it leaves to its user: what the bytes mean. Input is read in place
 * from net_conn_input() (message content goes through smtp_data.c without
 * a copy) or a line at a time with net_conn_read_line().
 *
 * Lifetime: net_conn_free() may be called from inside one of the
 * connection's own callbacks (a session that ends frees itself there):
 * the connection is then freed when that callback returns, never while
 * libevent or this layer still holds it. Callbacks never run after
 * net_conn_free().
 *
 * Only this layer and net/net_tls.c use OpenSSL.
 */
#ifndef TERN_NET_CONN_H
#define TERN_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct bufferevent;
struct event_base;
struct evbuffer;
struct net_conn;
struct net_linger;
struct ssl_st;
struct tls_server;

/* How a connection ended, or what happened to it. */
enum net_conn_event {
	NET_CONN_CONNECTED,     /* an outbound connect succeeded */
	NET_CONN_EOF,           /* the peer closed */
	NET_CONN_ERROR,         /* a socket error (or the connect failed) */
	NET_CONN_TIMEOUT_READ,  /* nothing came within the read timeout */
	NET_CONN_TIMEOUT_WRITE, /* what we wrote did not leave within the write timeout */
};

/* The result of a TLS handshake. */
struct net_tls_result {
	bool ok;
	const char *version; /* "TLSv1.3" (ok only) */
	const char *cipher;  /* "TLS_AES_256_GCM_SHA384" (ok only) */
	/* Client side, with verify: the peer's certificate was not accepted (tls_client_refused), and why;
	 * judged on success and failure alike, before anything more is sent. */
	bool refused;
	const char *refused_why;
	const char *why; /* !ok: OpenSSL's reason, "timeout" or "connection closed" */
	bool timed_out;  /* !ok: the handshake took longer than the timeouts allow */
};

struct net_conn_callbacks {
	/* read - input is waiting (net_conn_input, net_conn_read_line). */
	void (*read)(void *arg);
	/* drained - everything written has left; NULL if not wanted. */
	void (*drained)(void *arg);
	/* event - connected, or the connection failed (not during a handshake). */
	void (*event)(void *arg, enum net_conn_event what);
	/* tls_done - the handshake of net_conn_*_tls ended, well or not. */
	void (*tls_done)(void *arg, const struct net_tls_result *result);
};

/* What net_conn_read_line found. */
enum net_line {
	NET_LINE_OK,       /* a line, without its CRLF */
	NET_LINE_PARTIAL,  /* no whole line yet */
	NET_LINE_TOO_LONG, /* longer than max: skipped to its CRLF (or, before one came, the bytes so far) */
	NET_LINE_BARE_EOL, /* a CR or LF inside the line (a line ends at CRLF only) */
	NET_LINE_NUL,      /* a NUL inside the line */
};

/* net_conn_accept - a plain connection over an accepted socket (taken over). */
struct net_conn *net_conn_accept(struct event_base *base, int fd);

/* net_conn_accept_tls - TLS from the first byte (RFC 8314): the handshake starts at once. */
struct net_conn *net_conn_accept_tls(struct event_base *base, int fd, struct tls_server *tls);

/*
 * net_conn_connect - connect to addr within timeout_s seconds;
 * NET_CONN_CONNECTED, NET_CONN_ERROR or NET_CONN_TIMEOUT_* follows. NULL
 * with errno when it cannot even start. The callbacks are given here, as a
 * connect may fail at once.
 */
struct net_conn *net_conn_connect(struct event_base *base, const struct sockaddr *addr, socklen_t len,
                                  uint64_t timeout_s, const struct net_conn_callbacks *cb, void *arg);

/*
 * net_conn_pair - a connection over one end of an in-memory pair; *peer is
 * the other end, a plain bufferevent the caller frees. Callbacks on both
 * ends run from the loop, never inside a write.
 */
struct net_conn *net_conn_pair(struct event_base *base, struct bufferevent **peer);

/* net_conn_set_callbacks - who hears of this connection, and enable reading and writing. */
void net_conn_set_callbacks(struct net_conn *c, const struct net_conn_callbacks *cb, void *arg);

/* net_conn_set_linger - end with a lingering close through linger (sid for its logs); NULL: close at once. */
void net_conn_set_linger(struct net_conn *c, struct net_linger *linger, const char *sid);

/* net_conn_set_read_max - buffer at most bytes of input: past that, reading stops until some is consumed. */
void net_conn_set_read_max(struct net_conn *c, size_t bytes);

/* net_conn_set_timeouts - seconds without input (read) or without output leaving (write); 0: none. */
void net_conn_set_timeouts(struct net_conn *c, uint64_t read_s, uint64_t write_s);

/* net_conn_pause - read nothing more until net_conn_resume (input already buffered stays). */
void net_conn_pause(struct net_conn *c);
void net_conn_resume(struct net_conn *c);

/* net_conn_restart_write - write again with a fresh write timeout (after a read timeout). */
void net_conn_restart_write(struct net_conn *c);

void net_conn_write(struct net_conn *c, const void *bytes, size_t len);
size_t net_conn_output_length(struct net_conn *c);

/* net_conn_input - the input buffer, to read in place and drain what is used. */
struct evbuffer *net_conn_input(struct net_conn *c);
size_t net_conn_input_length(struct net_conn *c);

/*
 * net_conn_read_line - take one line of at most max octets with its CRLF
 * into buf (size >= max), its length without the CRLF in *len. A line ends
 * only at CRLF (RFC 5321 2.3.8). An over-long line is skipped to its end
 * and reported once, when its CRLF comes, so the reader stays in step with
 * the peer.
 */
enum net_line net_conn_read_line(struct net_conn *c, char *buf, size_t max, size_t *len);

/* net_conn_in_long_line - net_conn_read_line is skipping an over-long line whose CRLF has not come. */
bool net_conn_in_long_line(const struct net_conn *c);

/*
 * net_conn_starttls_server - the reply to STARTTLS is written: read nothing
 * more in plaintext, and once that reply has left, accept TLS on the same
 * socket with tls's certificates. Nothing that was read before is kept
 * (the caller refused bytes sent behind STARTTLS already), and what arrives
 * later is read as TLS records only (CVE-2011-0411). tls_done follows.
 */
void net_conn_starttls_server(struct net_conn *c, struct tls_server *tls);

/*
 * net_conn_starttls_client - connect TLS with ssl (tls_client_ssl's, which
 * names the server for SNI and for the certificate check) on the same
 * socket now: whatever the peer sent before is thrown away. verify: judge
 * the peer's certificate at the end of the handshake (net_tls_result's
 * refused). tls_done follows.
 */
void net_conn_starttls_client(struct net_conn *c, struct ssl_st *ssl, bool verify);

/* net_conn_tls_active - a TLS handshake finished on this connection. */
bool net_conn_tls_active(const struct net_conn *c);

/*
 * net_conn_free - end the connection. linger: our last reply is written,
 * so close politely (a TLS close_notify, then a lingering close when a
 * net_linger was set); otherwise close at once. Deferred to the end of the
 * connection's callback when called from inside one. Safe on NULL.
 */
void net_conn_free(struct net_conn *c, bool linger);

#endif
