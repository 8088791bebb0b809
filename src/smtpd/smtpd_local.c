/*
 * smtpd_local.c - the local submission socket: binding it, and knowing who
 * is on the other end.
 *
 * `tern sendmail` (and /usr/sbin/sendmail when it is tern) speaks SMTP to
 * the running server over a UNIX-domain socket, as OpenSMTPD's enqueuer
 * does, so local users who cannot write the queue can still submit, and a
 * message is in the queue (committed) before the command exits 0. No
 * setuid program is needed: the socket is world-writable (0666) and the
 * server asks the kernel for the client's uid (SO_PEERCRED). The session
 * counts as submitted by that user: it may relay, its envelope sender is
 * free (as with Postfix's sendmail; the uid is logged, so it is traceable),
 * and its messages get Date: and Message-ID: when they lack them.
 *
 * The uid is kept in the session's peer key as an address in 100::/64
 * (RFC 6666, a prefix only ever used to discard traffic, never a TCP
 * client's), so the per-address connection limit counts per local user
 * instead of lumping every local user into one count. Such a key is never
 * loopback and never in relay_networks, so AUTH is not offered on it.
 *
 * Limits: a path must fit sun_path (107 bytes); a stale socket is removed
 * only when connecting to it is refused, so a live server is never robbed of
 * its socket. getpwuid_r runs on the loop thread at connect: a local
 * password file lookup, for local sessions only.
 */
#include "smtpd/smtpd_local.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtpd/smtpd_private.h"
#include "util/util_io.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define LOCAL_BACKLOG 128

/* local_clear_stale - path is free to bind: nothing there, or a dead server's socket (removed). */
static bool local_clear_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return true;
		return str_fail(err, errlen, "cannot look at %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return str_fail(err, errlen, "%s exists and is not a socket", path);
	int fd = io_unix_connect(path, true);
	if (fd >= 0 || errno == EAGAIN) {
		if (fd >= 0)
			close(fd);
		return str_fail(err, errlen, "another server answers on %s", path);
	}
	if (errno != ECONNREFUSED)
		return str_fail(err, errlen, "cannot probe %s: %s", path, strerror(errno));
	if (unlink(path) != 0)
		return str_fail(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(errno));
	log_info("event=stale_socket_removed path=%s", path);
	return true;
}

int local_listen(struct local_socket *sock, char *err, size_t errlen)
{
	const char *path = sock->path;
	struct sockaddr_un addr;
	socklen_t len;
	if (!io_unix_address(path, &addr, &len)) {
		str_fail(err, errlen, "%s: longer than %zu bytes", path, sizeof addr.sun_path - 1);
		return -1;
	}
	if (!local_clear_stale(path, err, errlen))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		str_fail(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		return -1;
	}
	/*
	 * The file is made 0666 by bind itself, through the umask: a chmod by
	 * name afterwards would follow whatever the directory's owner (the
	 * unprivileged user, at the next start as root) put at that name.
	 */
	mode_t umask_was = umask(0111);
	int bound = bind(fd, (const struct sockaddr *)&addr, len);
	umask(umask_was);
	struct stat st;
	bool known = bound == 0 && lstat(path, &st) == 0;
	if (!known || listen(fd, LOCAL_BACKLOG) != 0) {
		str_fail(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		if (known) {
			/* Bound but not listening: the file goes with the socket. */
			sock->dev = st.st_dev;
			sock->ino = st.st_ino;
			local_unlink(sock);
		}
		return -1;
	}
	sock->dev = st.st_dev;
	sock->ino = st.st_ino;
	return fd;
}

void local_unlink(const struct local_socket *sock)
{
	struct stat now;
	if (lstat(sock->path, &now) == 0 && now.st_ino == sock->ino && now.st_dev == sock->dev &&
	    unlink(sock->path) != 0)
		log_warning("event=socket_unlink_failed path=%s error=\"%s\"", sock->path, strerror(errno));
}

bool local_peer_address(int fd, struct sockaddr_in6 *out)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
		log_warning("event=peercred_failed error=\"%s\"", strerror(errno));
		return false;
	}
	memset(out, 0, sizeof *out);
	out->sin6_family = AF_INET6;
	out->sin6_addr.s6_addr[0] = 0x01; /* 100::/64 */
	uint32_t uid = (uint32_t)cred.uid;
	for (int i = 0; i < 4; i++)
		out->sin6_addr.s6_addr[15 - i] = (unsigned char)(uid >> (8 * i));
	return true;
}

/* local_login - the user name of uid, or "#UID" when the password file has none. */
static void local_login(uint32_t uid, char *out, size_t size)
{
	struct passwd pw, *found = NULL;
	char buf[2048];
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &found) != 0 || !found || !str_copy(out, size, pw.pw_name))
		str_format(out, size, "#%u", (unsigned)uid);
}

void local_session_identify(struct smtpd_session *s)
{
	uint32_t uid = 0;
	for (int i = 12; i < 16; i++)
		uid = uid << 8 | s->peer_key[i];
	s->local_uid = uid;
	local_login(uid, s->local_user, sizeof s->local_user);
	str_copy(s->peer_ip, sizeof s->peer_ip, "local");
	s->peer_port = 0;
	char q[LOG_QUOTE_MAX];
	log_info("event=connect session=%s client=local uid=%u user=%s", s->sid, (unsigned)uid,
	         log_quote(q, sizeof q, s->local_user, strlen(s->local_user)));
}
