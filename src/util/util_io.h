/*
 * util_io.h - small helpers for file descriptors.
 */
#ifndef TERN_UTIL_IO_H
#define TERN_UTIL_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* io_write_all - all of p[0..len) to fd, across short writes and EINTR; false on an error (errno set). */
bool io_write_all(int fd, const void *p, size_t len);

/* io_unix_address - path as a UNIX-domain socket address; false (errno ENAMETOOLONG) if it does not fit sun_path. */
bool io_unix_address(const char *path, struct sockaddr_un *out, socklen_t *len);

/* io_unix_connect - a stream socket (close-on-exec) connected to path, non-blocking if asked; -1 with errno set. */
int io_unix_connect(const char *path, bool nonblocking);

#endif
