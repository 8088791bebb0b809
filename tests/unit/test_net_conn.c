/*
 * test_net_conn.c - the connection layer (net/net_conn.c) over an
 * in-memory pair: the strict line reader (CRLF only; bare LF, bare CR, NUL
 * and over-long lines each reported as such; lines split across reads),
 * raw input, pause and resume, and a free from inside the connection's own
 * callback.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <string.h>

#include "net/net_conn.h"
#include "unit.h"

#define LOOP_TURNS 20
#define LINE_MAX   32

struct probe {
	struct net_conn *conn;
	int reads;
	int events;
	enum net_conn_event last;
	bool free_in_read; /* free the connection from inside its read callback */
};

static void probe_read(void *arg)
{
	struct probe *p = arg;
	p->reads++;
	if (p->free_in_read) {
		net_conn_free(p->conn, false);
		p->conn = NULL;
	}
}

static void probe_event(void *arg, enum net_conn_event what)
{
	struct probe *p = arg;
	p->events++;
	p->last = what;
}

static void probe_tls(void *arg, const struct net_tls_result *r)
{
}

static const struct net_conn_callbacks probe_callbacks = {
        .read = probe_read,
        .event = probe_event,
        .tls_done = probe_tls,
};

/* turn - let the loop deliver what was written (deferred callbacks need a few turns). */
static void turn(struct event_base *base)
{
	for (int i = 0; i < LOOP_TURNS; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void send_peer(struct event_base *base, struct bufferevent *peer, const char *bytes, size_t len)
{
	bufferevent_write(peer, bytes, len);
	turn(base);
}

/* expect_line - the next read_line result is kind, with text want (for NET_LINE_OK). */
static void expect_line(struct net_conn *c, enum net_line kind, const char *want)
{
	char buf[LINE_MAX];
	size_t len;
	enum net_line got = net_conn_read_line(c, buf, sizeof buf, &len);
	CHECK_INT(got, kind);
	if (kind == NET_LINE_OK && got == NET_LINE_OK)
		CHECK_MEM(buf, len, want);
}

static struct net_conn *pair_new(struct event_base *base, struct bufferevent **peer, struct probe *p)
{
	memset(p, 0, sizeof *p);
	struct net_conn *c = net_conn_pair(base, peer);
	p->conn = c;
	net_conn_set_callbacks(c, &probe_callbacks, p);
	bufferevent_enable(*peer, EV_READ | EV_WRITE);
	return c;
}

static void test_lines(struct event_base *base)
{
	struct bufferevent *peer;
	struct probe p;
	struct net_conn *c = pair_new(base, &peer, &p);

	static const char stream[] = "NOOP\r\nRSET\r\n"
	                             "A\nB\r\n"   /* a bare LF inside */
	                             "A\rB\r\n"   /* a bare CR inside */
	                             "A\nB\n\r\n" /* bare LFs, then the end */
	                             "\r\n";      /* empty */
	send_peer(base, peer, stream, sizeof stream - 1);
	CHECK(p.reads > 0);
	expect_line(c, NET_LINE_OK, "NOOP");
	expect_line(c, NET_LINE_OK, "RSET");
	expect_line(c, NET_LINE_BARE_EOL, NULL);
	expect_line(c, NET_LINE_BARE_EOL, NULL);
	expect_line(c, NET_LINE_BARE_EOL, NULL);
	expect_line(c, NET_LINE_OK, "");
	expect_line(c, NET_LINE_PARTIAL, NULL);

	send_peer(base, peer, "A\0B\r\n", 5);
	expect_line(c, NET_LINE_NUL, NULL);

	/* Split across reads, the CRLF itself too. */
	send_peer(base, peer, "HE", 2);
	expect_line(c, NET_LINE_PARTIAL, NULL);
	send_peer(base, peer, "LO\r", 3);
	expect_line(c, NET_LINE_PARTIAL, NULL);
	send_peer(base, peer, "\nQUIT\r\n", 7);
	expect_line(c, NET_LINE_OK, "HELO");
	expect_line(c, NET_LINE_OK, "QUIT");

	/* A bare LF alone never ends a line. */
	send_peer(base, peer, "DATA\n", 5);
	expect_line(c, NET_LINE_PARTIAL, NULL);
	send_peer(base, peer, "\r\n", 2);
	expect_line(c, NET_LINE_BARE_EOL, NULL);
	CHECK_INT(net_conn_input_length(c), 0);

	net_conn_free(c, false);
	bufferevent_free(peer);
}

static void test_long_lines(struct event_base *base)
{
	struct bufferevent *peer;
	struct probe p;
	struct net_conn *c = pair_new(base, &peer, &p);
	char big[3 * LINE_MAX];
	memset(big, 'x', sizeof big);

	/* Exactly the maximum with its CRLF is taken; one more is not. */
	send_peer(base, peer, big, LINE_MAX - 2);
	send_peer(base, peer, "\r\n", 2);
	char want[LINE_MAX];
	memset(want, 'x', LINE_MAX - 2);
	want[LINE_MAX - 2] = '\0';
	expect_line(c, NET_LINE_OK, want);
	send_peer(base, peer, big, LINE_MAX - 1);
	send_peer(base, peer, "\r\n", 2);
	expect_line(c, NET_LINE_TOO_LONG, NULL);

	/* Longer than the maximum before its end came: skipped to its CRLF,
	 * reported once, and the next line is read in step. */
	send_peer(base, peer, big, sizeof big);
	expect_line(c, NET_LINE_PARTIAL, NULL);
	CHECK(net_conn_in_long_line(c));
	CHECK(net_conn_input_length(c) < LINE_MAX);
	send_peer(base, peer, big, sizeof big);
	expect_line(c, NET_LINE_PARTIAL, NULL);
	send_peer(base, peer, "xx\r", 3);
	expect_line(c, NET_LINE_PARTIAL, NULL);
	send_peer(base, peer, "\nNOOP\r\n", 7);
	expect_line(c, NET_LINE_TOO_LONG, NULL);
	CHECK(!net_conn_in_long_line(c));
	expect_line(c, NET_LINE_OK, "NOOP");

	net_conn_free(c, false);
	bufferevent_free(peer);
}

/* Raw input (content), pause and resume, output and EOF. */
static void test_raw_and_pause(struct event_base *base)
{
	struct bufferevent *peer;
	struct probe p;
	struct net_conn *c = pair_new(base, &peer, &p);
	send_peer(base, peer, "body bytes", 10);
	CHECK_INT(evbuffer_get_length(net_conn_input(c)), 10);
	evbuffer_drain(net_conn_input(c), 5);
	CHECK_INT(net_conn_input_length(c), 5);

	net_conn_pause(c);
	int reads = p.reads;
	send_peer(base, peer, "more", 4);
	CHECK_INT(p.reads, reads);
	CHECK_INT(net_conn_input_length(c), 5);
	net_conn_resume(c);
	turn(base);
	CHECK(p.reads > reads);
	CHECK_INT(net_conn_input_length(c), 9);

	net_conn_write(c, "250 ok\r\n", 8);
	turn(base);
	struct evbuffer *got = bufferevent_get_input(peer);
	CHECK_INT(evbuffer_get_length(got), 8);

	/* The peer closes: a pair says so with a flush that finishes it. */
	bufferevent_flush(peer, EV_WRITE, BEV_FINISHED);
	turn(base);
	CHECK_INT(p.last, NET_CONN_EOF);
	bufferevent_free(peer);
	net_conn_free(c, false);
}

/* A free from inside the connection's own read callback is deferred to its end. */
static void test_free_inside(struct event_base *base)
{
	struct bufferevent *peer;
	struct probe p;
	pair_new(base, &peer, &p);
	p.free_in_read = true;
	send_peer(base, peer, "QUIT\r\n", 6);
	CHECK_INT(p.reads, 1);
	CHECK(p.conn == NULL);
	send_peer(base, peer, "more\r\n", 6);
	CHECK_INT(p.reads, 1);
	bufferevent_free(peer);
	turn(base);
	CHECK_INT(p.events, 0);
}

int main(void)
{
	struct event_base *base = event_base_new();
	test_lines(base);
	test_long_lines(base);
	test_raw_and_pause(base);
	test_free_inside(base);
	event_base_free(base);
	return unit_finish("net_conn");
}
