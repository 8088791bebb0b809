/*
 * util_io.c - small helpers for file descriptors: whole writes, and
 * UNIX-domain socket addresses (the local submission socket).
 */
#include "util/util_io.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

bool io_write_all(int fd, const void *p, size_t len)
{
	const char *at = p;
	while (len > 0) {
		ssize_t n = write(fd, at, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		at += n;
		len -= (size_t)n;
	}
	return true;
}

bool io_unix_address(const char *path, struct sockaddr_un *out, socklen_t *len)
{
	size_t n = strlen(path);
	memset(out, 0, sizeof *out);
	if (n == 0 || n >= sizeof out->sun_path) {
		errno = ENAMETOOLONG;
		return false;
	}
	out->sun_family = AF_UNIX;
	memcpy(out->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return true;
}

int io_unix_connect(const char *path, bool nonblocking)
{
	struct sockaddr_un addr;
	socklen_t len;
	if (!io_unix_address(path, &addr, &len))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&addr, len) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
