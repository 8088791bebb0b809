/*
 * net_linger.c - lingering close: shut the write side, read and drop what
 * the peer still sends, close when it is done or after a while.
 *
 * Why: close(2) on a TCP socket whose receive queue is not empty sends a
 * reset, not a FIN, and whatever arrives after the close is answered with a
 * reset too. A client that pipelined past the point where we refused it has
 * such bytes in flight, and on a reset many stacks throw away received data
 * the application has not read yet: our last reply (554, 421) among it.
 * With the write side shut, the client reads the reply and then EOF, and
 * its bytes find a socket that still takes them.
 *
 * Each lingering socket is an event on the loop: a read callback drains it,
 * and it is closed at EOF, on an error, past NET_LINGER_MAX_BYTES, or at
 * its deadline (NET_LINGER_MS after it started, not extended by traffic).
 * They sit in a list, oldest first, so that the bound on their number can
 * close the oldest and net_linger_free can close them all.
 */
#include "net/net_linger.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util_id.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

/*
 * How long a socket lingers at most. What has to get through in that time
 * is what the client sent before it could see our reply: about one round
 * trip of its data, which is well under a second on any path mail travels.
 * Two seconds leave room for a slow or lossy link (a retransmission) while
 * a client that does not stop costs a descriptor for no longer than that.
 */
#define NET_LINGER_MS 2000
/* Read at most this much: more than a client's window in flight when it saw
 * our reply; a peer that goes on past it is not listening, and is cut off. */
#define NET_LINGER_MAX_BYTES (1024 * 1024)
#define NET_LINGER_READ_SIZE (16 * 1024)

enum linger_end {
	LINGER_GOING, /* nothing more to read for now */
	LINGER_EOF,
	LINGER_ERROR,
	LINGER_LIMIT,
	LINGER_TIMEOUT,
	LINGER_FULL, /* too many lingering: the oldest goes */
	LINGER_STOP, /* net_linger_free */
};

static const char *const end_names[] = {"going", "eof", "error", "limit", "timeout", "full", "stop"};

struct linger_socket {
	struct net_linger *owner;
	struct linger_socket *prev, *next;
	struct event *ev;
	int fd;
	uint64_t started_ms;
	uint64_t bytes;
	char sid[ID_LEN + 1];
};

struct net_linger {
	struct event_base *base;
	struct linger_socket *oldest, *newest;
	size_t count, max;
};

/* linger_drain - read and drop what has arrived; *bytes counts it. */
static enum linger_end linger_drain(int fd, uint64_t *bytes)
{
	char buf[NET_LINGER_READ_SIZE];
	/* Bounded: every pass reads at least a byte or ends, and the bytes are. */
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0) {
			*bytes += (uint64_t)n;
			if (*bytes >= NET_LINGER_MAX_BYTES)
				return LINGER_LIMIT;
		} else if (n == 0) {
			return LINGER_EOF;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return LINGER_GOING;
		} else if (errno != EINTR) {
			return LINGER_ERROR;
		}
	}
}

static void linger_unlink(struct linger_socket *ls)
{
	struct net_linger *l = ls->owner;
	if (ls->prev)
		ls->prev->next = ls->next;
	else
		l->oldest = ls->next;
	if (ls->next)
		ls->next->prev = ls->prev;
	else
		l->newest = ls->prev;
	l->count--;
}

/* linger_finish - the socket is done with: close it and say why. */
static void linger_finish(struct linger_socket *ls, enum linger_end end)
{
	linger_unlink(ls);
	event_free(ls->ev);
	close(ls->fd);
	log_debug("event=linger_end session=%s reason=%s bytes=%llu duration_ms=%llu", ls->sid, end_names[end],
	          (unsigned long long)ls->bytes, (unsigned long long)(time_mono_ms() - ls->started_ms));
	free(ls);
}

/* linger_wait - wait for more input until the deadline; false if it has passed. */
static bool linger_wait(struct linger_socket *ls)
{
	uint64_t elapsed = time_mono_ms() - ls->started_ms;
	if (elapsed >= NET_LINGER_MS)
		return false;
	uint64_t left = NET_LINGER_MS - elapsed;
	struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
	event_add(ls->ev, &tv);
	return true;
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct linger_socket *ls = arg;
	/* Read even on the timeout: what has arrived by then need not cause a reset. */
	enum linger_end end = linger_drain(ls->fd, &ls->bytes);
	if (end == LINGER_GOING && linger_wait(ls))
		return;
	linger_finish(ls, end == LINGER_GOING ? LINGER_TIMEOUT : end);
}

struct net_linger *net_linger_new(struct event_base *base, size_t max)
{
	struct net_linger *l = xcalloc(1, sizeof *l);
	l->base = base;
	l->max = max;
	return l;
}

void net_linger_close(struct net_linger *l, int fd, const char *sid)
{
	uint64_t bytes = 0;
	/* A socket that is no longer connected, or whose peer has already
	 * closed and been read to the end, has nothing to wait for. */
	if (l->max == 0 || shutdown(fd, SHUT_WR) != 0 || linger_drain(fd, &bytes) != LINGER_GOING) {
		close(fd);
		return;
	}
	if (l->count >= l->max)
		linger_finish(l->oldest, LINGER_FULL);
	struct linger_socket *ls = xcalloc(1, sizeof *ls);
	ls->owner = l;
	ls->fd = fd;
	ls->bytes = bytes;
	ls->started_ms = time_mono_ms();
	str_copy(ls->sid, sizeof ls->sid, sid);
	ls->ev = event_new(l->base, fd, EV_READ, linger_cb, ls);
	if (!ls->ev)
		fatal("event_new failed");
	ls->prev = l->newest;
	if (l->newest)
		l->newest->next = ls;
	else
		l->oldest = ls;
	l->newest = ls;
	l->count++;
	linger_wait(ls);
}

size_t net_linger_count(const struct net_linger *l)
{
	return l->count;
}

void net_linger_free(struct net_linger *l)
{
	if (!l)
		return;
	while (l->oldest) {
		struct linger_socket *ls = l->oldest;
		/* What is there now can still be read, so that it causes no reset. */
		linger_drain(ls->fd, &ls->bytes);
		linger_finish(ls, LINGER_STOP);
	}
	free(l);
}
