/*
 * store_spool.c - large message bodies as files in DATA_DIR/spool, named by
 * queue id (store_spool.h says when and in what order).
 *
 * Files are reached through the directory's descriptor (openat, unlinkat),
 * and only names that are queue ids are ever made, read or removed.
 */
#include "store/store_spool.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util_id.h"
#include "util/util_io.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define SPOOL_COPY_CHUNK 65536

struct store_spool {
	int dir_fd;
};

struct store_spool *store_spool_open(const char *data_dir, bool writer, char *err, size_t errlen)
{
	char path[4096];
	if (!str_format(path, sizeof path, "%s/spool", data_dir)) {
		str_copy(err, errlen, "data_dir path too long");
		return NULL;
	}
	if (writer && mkdir(path, 0700) != 0 && errno != EEXIST) {
		str_format(err, errlen, "cannot make %s: %s", path, strerror(errno));
		return NULL;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && !writer && errno == ENOENT)
		fd = -1; /* no spool yet: nothing was ever spooled */
	else if (fd < 0) {
		str_format(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct store_spool *spool = xcalloc(1, sizeof *spool);
	spool->dir_fd = fd;
	return spool;
}

void store_spool_close(struct store_spool *spool)
{
	if (!spool)
		return;
	if (spool->dir_fd >= 0)
		close(spool->dir_fd);
	free(spool);
}

static bool write_buffer(int fd, struct evbuffer *body)
{
	struct evbuffer_ptr at;
	struct evbuffer_iovec vec;
	evbuffer_ptr_set(body, &at, 0, EVBUFFER_PTR_SET);
	while (evbuffer_peek(body, -1, &at, &vec, 1) > 0 && vec.iov_len > 0) {
		if (!io_write_all(fd, vec.iov_base, vec.iov_len))
			return false;
		evbuffer_ptr_set(body, &at, vec.iov_len, EVBUFFER_PTR_ADD);
	}
	return true;
}

/* copy_spill - the first size octets of from into to, in the kernel where it can. */
static bool copy_spill(int from, int to, uint64_t size)
{
	loff_t in = 0;
	while ((uint64_t)in < size) {
		ssize_t n = copy_file_range(from, &in, to, NULL, (size_t)(size - (uint64_t)in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			continue;
		if (n == 0) {
			errno = ENODATA; /* the spill file is shorter than it should be */
			return false;
		}
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return false;
		/* Not between these files: copy through a buffer. */
		char *chunk = xmalloc(SPOOL_COPY_CHUNK);
		bool ok = true;
		while (ok && (uint64_t)in < size) {
			size_t want = size - (uint64_t)in < SPOOL_COPY_CHUNK ? (size_t)(size - (uint64_t)in)
			                                                     : SPOOL_COPY_CHUNK;
			ssize_t got = pread(from, chunk, want, in);
			ok = got > 0 && io_write_all(to, chunk, (size_t)got);
			in += got > 0 ? got : 0;
		}
		free(chunk);
		return ok;
	}
	return true;
}

bool store_spool_write(struct store_spool *spool, const char *qid, struct evbuffer *body, int spill_fd, uint64_t size)
{
	if (!id_valid(qid)) {
		errno = EINVAL;
		return false;
	}
	/* A file left by a batch that failed names no row: it may be overwritten. */
	int fd = openat(spool->dir_fd, qid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return false;
	errno = 0;
	bool ok = spill_fd >= 0 ? copy_spill(spill_fd, fd, size) : write_buffer(fd, body);
	int err = ok ? 0 : errno ? errno : EIO;
	/* Some file systems (NFS) report a full disk only at close. */
	if (close(fd) != 0 && ok) {
		ok = false;
		err = errno;
	}
	if (!ok) {
		/* Partial files go at once: they name no row, and they hold the space that ran out. */
		unlinkat(spool->dir_fd, qid, 0);
		errno = err;
	}
	return ok;
}

bool store_spool_sync(struct store_spool *spool)
{
	/* One flush for the whole batch: the files' data and their names. */
	return syncfs(spool->dir_fd) == 0;
}

bool store_spool_read(struct store_spool *spool, const char *qid, struct evbuffer *out)
{
	if (spool->dir_fd < 0 || !id_valid(qid))
		return false;
	int fd = openat(spool->dir_fd, qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_error("event=spool_failed qid=%s error=\"%s\"", qid, strerror(errno));
		return false;
	}
	int n;
	while ((n = evbuffer_read(out, fd, SPOOL_COPY_CHUNK)) > 0 || (n < 0 && errno == EINTR))
		;
	if (n < 0)
		log_error("event=spool_failed qid=%s error=\"%s\"", qid, strerror(errno));
	close(fd);
	return n == 0;
}

void store_spool_remove(struct store_spool *spool, const char *qid)
{
	if (spool->dir_fd < 0 || !id_valid(qid))
		return;
	if (unlinkat(spool->dir_fd, qid, 0) != 0 && errno != ENOENT)
		log_warning("event=spool_remove_failed qid=%s error=\"%s\"", qid, strerror(errno));
}

size_t store_spool_sweep(struct store_spool *spool, bool (*known)(const char *qid, void *arg), void *arg)
{
	int fd = spool->dir_fd >= 0 ? dup(spool->dir_fd) : -1;
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rewinddir(dir); /* the descriptor's offset is shared with the one kept open */
	size_t removed = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (!id_valid(e->d_name) || known(e->d_name, arg))
			continue;
		if (unlinkat(spool->dir_fd, e->d_name, 0) == 0)
			removed++;
	}
	closedir(dir);
	return removed;
}
