/*
 * smtpd_local.h - private to src/smtpd: the local submission socket
 * (sendmail_socket), where local programs hand mail over through
 * `tern sendmail`, and who a session on it belongs to.
 */
#ifndef TERN_SMTPD_LOCAL_H
#define TERN_SMTPD_LOCAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

struct smtpd_session;

/* The socket's file: its path, and which file it was when bound. */
struct local_socket {
	char path[CONFIG_SOCKET_PATH_MAX + 1];
	dev_t dev;
	ino_t ino;
};

/*
 * local_listen - bind and listen on sock->path, mode 0666 (any local user may
 * connect: the server learns who they are from the kernel). A socket file
 * left by a server that died is removed first, but only when nothing
 * answers on it; a live server there, or a file that is not a socket, is an
 * error. Returns the listening socket (non-blocking), or -1 with err set
 * (and no file left behind). The mode comes from the umask, which is set
 * and restored around bind: call it before other threads start.
 */
int local_listen(struct local_socket *sock, char *err, size_t errlen);

/* local_unlink - remove the socket's file if it is still the one local_listen bound (not a later server's). */
void local_unlink(const struct local_socket *sock);

/*
 * local_peer_address - the connected client's uid (SO_PEERCRED) as an
 * address in 100::/64 (RFC 6666, discard only, so no TCP client has one):
 * per-address connection counts then count per local user. False if the
 * kernel does not say.
 */
bool local_peer_address(int fd, struct sockaddr_in6 *out);

/* local_session_identify - a new local session: its uid and login name, "local" as its client, logged. */
void local_session_identify(struct smtpd_session *s);

#endif
