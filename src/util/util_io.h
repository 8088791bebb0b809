/*
 * util_io.h - small helpers for file descriptors.
 */
#ifndef TERN_UTIL_IO_H
#define TERN_UTIL_IO_H

#include <stdbool.h>
#include <stddef.h>

/* io_write_all - all of p[0..len) to fd, across short writes and EINTR; false on an error (errno set). */
bool io_write_all(int fd, const void *p, size_t len);

#endif
