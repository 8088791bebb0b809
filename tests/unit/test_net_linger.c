/*
 * test_net_linger.c - lingering close (net/net_linger.c) on Unix socket
 * pairs: the peer reads EOF while its late bytes are still taken, a socket
 * whose peer already closed is closed at once, the byte bound, the bound on
 * how many linger, and net_linger_free.
 *
 * "Closed" is seen from the peer: a send to a closed socket fails with
 * EPIPE, while a socket whose write side is only shut still takes bytes.
 * The deadline (two seconds) is not waited for here.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_linger.h"
#include "unit.h"

#define LOOP_TRIES 1000

static bool make_pair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0;
}

/* peer_closed - the other end is closed (not merely shut for writing). */
static bool peer_closed(int peer)
{
	return send(peer, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE;
}

/* peer_sees_eof - the other end's write side is shut: a read gives 0. */
static bool peer_sees_eof(int peer)
{
	char c;
	return recv(peer, &c, 1, MSG_DONTWAIT) == 0;
}

/* linger_one - a new net_linger (at most max) with one end of a new pair handed to it. */
static struct net_linger *linger_one(struct event_base *base, size_t max, int p[2], const char *sid)
{
	struct net_linger *l = net_linger_new(base, max);
	CHECK(make_pair(p));
	net_linger_close(l, p[0], sid);
	return l;
}

/* run_until_count - run the loop until count sockets linger (bounded). */
static void run_until_count(struct event_base *base, struct net_linger *l, size_t count)
{
	for (int i = 0; i < LOOP_TRIES && net_linger_count(l) != count; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* The peer reads EOF, its late bytes are read, and its close ends the linger. */
static void test_eof(struct event_base *base)
{
	int p[2];
	struct net_linger *l = linger_one(base, 8, p, "TESTSESSION1");
	CHECK_INT(net_linger_count(l), 1);
	CHECK(peer_sees_eof(p[1]));
	CHECK_INT(send(p[1], "late bytes", 10, MSG_NOSIGNAL), 10);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK_INT(net_linger_count(l), 1);
	close(p[1]);
	run_until_count(base, l, 0);
	CHECK_INT(net_linger_count(l), 0);
	net_linger_free(l);
}

/* A peer that has sent its last bytes and closed: nothing to wait for. */
static void test_peer_gone(struct event_base *base)
{
	struct net_linger *l = net_linger_new(base, 8);
	int p[2];
	CHECK(make_pair(p));
	CHECK_INT(send(p[1], "QUIT\r\n", 6, MSG_NOSIGNAL), 6);
	close(p[1]);
	net_linger_close(l, p[0], "TESTSESSION2");
	CHECK_INT(net_linger_count(l), 0);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
	net_linger_free(l);
}

/* Not a socket (shutdown fails): closed at once. */
static void test_not_a_socket(struct event_base *base)
{
	struct net_linger *l = net_linger_new(base, 8);
	int p[2];
	CHECK(pipe(p) == 0);
	net_linger_close(l, p[0], "TESTSESSION3");
	CHECK_INT(net_linger_count(l), 0);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
	close(p[1]);
	net_linger_free(l);
}

/* A peer that never stops sending is cut off after the byte bound. */
static void test_byte_bound(struct event_base *base)
{
	int p[2];
	struct net_linger *l = linger_one(base, 8, p, "TESTSESSION4");
	static char chunk[64 * 1024];
	unsigned long long sent = 0;
	bool cut = false;
	for (int i = 0; i < 100 * LOOP_TRIES && !cut; i++) {
		ssize_t n = send(p[1], chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			sent += (unsigned long long)n;
		else
			cut = errno == EPIPE;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	CHECK(cut);
	CHECK(sent >= 1024 * 1024);
	CHECK(sent < 4 * 1024 * 1024);
	CHECK_INT(net_linger_count(l), 0);
	close(p[1]);
	net_linger_free(l);
}

/* Past the bound the oldest socket is closed; the others linger on. */
static void test_count_bound(struct event_base *base)
{
	struct net_linger *l = net_linger_new(base, 2);
	int a[2], b[2], c[2];
	CHECK(make_pair(a) && make_pair(b) && make_pair(c));
	net_linger_close(l, a[0], "TESTSESSION5");
	net_linger_close(l, b[0], "TESTSESSION6");
	CHECK_INT(net_linger_count(l), 2);
	CHECK(!peer_closed(a[1]));
	net_linger_close(l, c[0], "TESTSESSION7");
	CHECK_INT(net_linger_count(l), 2);
	CHECK(peer_closed(a[1]));
	CHECK(!peer_closed(b[1]));
	CHECK(!peer_closed(c[1]));
	/* Freeing closes what still lingers. */
	net_linger_free(l);
	CHECK(peer_closed(b[1]));
	CHECK(peer_closed(c[1]));
	close(a[1]);
	close(b[1]);
	close(c[1]);
}

/* No lingering at all (a bound of 0): every socket is closed at once. */
static void test_zero_bound(struct event_base *base)
{
	int p[2];
	struct net_linger *l = linger_one(base, 0, p, "TESTSESSION8");
	CHECK_INT(net_linger_count(l), 0);
	CHECK(peer_closed(p[1]));
	close(p[1]);
	net_linger_free(l);
	net_linger_free(NULL);
}

int main(void)
{
	struct event_base *base = event_base_new();
	if (!base) {
		UNIT_FAIL("event_base_new failed");
		return unit_finish("net_linger");
	}
	test_eof(base);
	test_peer_gone(base);
	test_not_a_socket(base);
	test_byte_bound(base);
	test_count_bound(base);
	test_zero_bound(base);
	event_base_free(base);
	return unit_finish("net_linger");
}
