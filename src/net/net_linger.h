/*
 * net_linger.h - lingering close of stream sockets (TCP, and the local
 * UNIX-domain one) on the loop thread.
 *
 * A server that closes a socket with input still unread makes the kernel
 * send a reset instead of a FIN, and the reset may make the client's stack
 * drop the last reply before the client has read it. net_linger_close shuts
 * the write side instead (the client reads the reply, then EOF), reads and
 * drops what the client still sends for a short, bounded time, and only
 * then closes the socket.
 *
 * A struct net_linger owns every socket handed to it, and bounds how many
 * linger at once (past the bound the oldest is closed). net_linger_free
 * closes the ones left: stopping the server never waits for them.
 */
#ifndef TERN_NET_LINGER_H
#define TERN_NET_LINGER_H

#include <stddef.h>

struct event_base;
struct net_linger;

/* net_linger_new - lingering sockets on base, at most max of them at once. */
struct net_linger *net_linger_new(struct event_base *base, size_t max);

/*
 * net_linger_close - end a connection whose last bytes have been written:
 * shut its write side, drain it, close it. Takes fd over (it is closed at
 * once when there is nothing to wait for). sid is the id its log lines
 * carry (at most 12 characters are kept).
 */
void net_linger_close(struct net_linger *linger, int fd, const char *sid);

/* net_linger_count - sockets lingering now. */
size_t net_linger_count(const struct net_linger *linger);

/* net_linger_free - close every socket still lingering; safe on NULL. */
void net_linger_free(struct net_linger *linger);

#endif
