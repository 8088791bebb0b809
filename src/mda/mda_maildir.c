/*
 * mda_maildir.c - deliver one message to one Maildir mailbox.
 *
 * The Maildir rules (as Dovecot and other readers expect them): write the
 * whole file under tmp/, make it durable, then make it appear in new/
 * atomically; fsync new/ so the name survives a crash. Making it durable is
 * the caller's step (mda_pool.c flushes a whole batch at once), which is
 * why writing and publishing are separate calls here. tern uses link(2) rather than
 * rename(2) because link refuses to replace an existing name: the file name
 * is fixed by queue id and recipient id, so if a crash came after the link
 * but before the queue heard of it, the retry finds the name taken and
 * counts the delivery as done instead of writing a duplicate.
 *
 * Mailbox names were checked when the user was created; this file still
 * refuses any name that could leave the mail directory.
 *
 * A file that cannot be written, linked or made durable (a full disk, a
 * quota, an I/O error) defers the recipient with an enhanced status in its
 * reason (4.2.2 for a quota, 4.3.1 for a full disk, 4.3.0 otherwise), and
 * nothing is left in tmp/. The failure is logged with its file and errno
 * once per episode per file system, not once per message.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mda/mda.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define MAILDIR_WRITE_BUF 65536

/* Failed writes, keyed by the file system's device: logged once per episode. */
static struct log_episode maildir_episode = LOG_EPISODE_INIT("maildir");

struct maildir_writer {
	int fd;
	char buf[MAILDIR_WRITE_BUF];
	size_t used;
	bool failed;
	int saved_errno;
};

static void writer_flush(struct maildir_writer *w)
{
	size_t off = 0;
	while (!w->failed && off < w->used) {
		ssize_t n = write(w->fd, w->buf + off, w->used - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->failed = true;
			w->saved_errno = n < 0 ? errno : EIO;
			break;
		}
		off += (size_t)n;
	}
	w->used = 0;
}

static void writer_put(struct maildir_writer *w, const char *p, size_t len)
{
	while (len > 0 && !w->failed) {
		if (w->used == sizeof w->buf)
			writer_flush(w);
		size_t n = sizeof w->buf - w->used < len ? sizeof w->buf - w->used : len;
		memcpy(w->buf + w->used, p, n);
		w->used += n;
		p += n;
		len -= n;
	}
}

/* writer_put_lf - the content with each CRLF written as LF (the content is
 * canonical: smtpd refused bare CR and LF, so every CR starts a CRLF). */
static void writer_put_lf(struct maildir_writer *w, struct evbuffer *body)
{
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(body, &pos, 0, EVBUFFER_PTR_SET);
	struct evbuffer_iovec vec[16];
	size_t offset = 0, total = evbuffer_get_length(body);
	while (offset < total && !w->failed) {
		int n = evbuffer_peek(body, -1, &pos, vec, 16);
		if (n <= 0)
			break;
		int used = n < 16 ? n : 16;
		for (int i = 0; i < used; i++) {
			const char *p = vec[i].iov_base, *end = p + vec[i].iov_len;
			while (p < end) {
				const char *cr = memchr(p, '\r', (size_t)(end - p));
				size_t run = cr ? (size_t)(cr - p) : (size_t)(end - p);
				writer_put(w, p, run);
				p += run + (cr ? 1 : 0);
			}
			offset += vec[i].iov_len;
		}
		evbuffer_ptr_set(body, &pos, offset, EVBUFFER_PTR_SET);
	}
	writer_flush(w);
}

/* maildir_dev - the device path is on, the key of its file system's episode; 0 if unknown. */
static uint64_t maildir_dev(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_dev : 0;
}

/* maildir_status - RFC 3463: a quota is the mailbox's (X.2.2), a full disk the system's (X.3.1). */
static const char *maildir_status(int err)
{
	if (err == EDQUOT)
		return "4.2.2 mailbox full: ";
	if (err == ENOSPC || err == EFBIG)
		return "4.3.1 mail system full: ";
	return "4.3.0 ";
}

/* maildir_log_failure - file could not be written (errno err): logged if it begins an episode on dev. */
static void maildir_log_failure(const char *qid, int64_t rcpt_id, const char *file, uint64_t dev, int err)
{
	if (!log_episode_fail(&maildir_episode, dev))
		return;
	char q[LOG_QUOTE_MAX];
	log_error("event=write_failed where=maildir qid=%s rcpt_id=%lld file=%s errno=%s error=\"%s\"", qid,
	          (long long)rcpt_id, log_quote(q, sizeof q, file, strlen(file)), log_errno_name(err), strerror(err));
}

static bool fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

/* mkdir_synced - make dir (its parent exists); fsync the parent if we made it. */
static bool mkdir_synced(const char *dir)
{
	if (mkdir(dir, 0700) != 0)
		return errno == EEXIST;
	char parent[MAILDIR_PATH_MAX];
	str_copy(parent, sizeof parent, dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	return fsync_path(parent);
}

/*
 * maildir_create - make mail/DOMAIN/LOCAL/{new,cur,tmp} as needed. tmp/
 * comes last: another worker delivering to the same new mailbox takes a
 * tmp/ that exists as the sign that new/ does too.
 */
static bool maildir_create(const char *data_dir, const char *domain, const char *root)
{
	char path[MAILDIR_PATH_MAX];
	static const char *const subdirs[] = {"new", "cur", "tmp"};
	if (!str_format(path, sizeof path, "%s/mail", data_dir) || !mkdir_synced(path))
		return false;
	if (!str_format(path, sizeof path, "%s/mail/%s", data_dir, domain) || !mkdir_synced(path))
		return false;
	if (!mkdir_synced(root))
		return false;
	for (size_t i = 0; i < 3; i++)
		if (!str_format(path, sizeof path, "%s/%s", root, subdirs[i]) || !mkdir_synced(path))
			return false;
	return true;
}

/* mailbox_split - "local@domain" into parts that are safe as directory names. */
static bool mailbox_split(const char *mailbox, char *local, size_t lsize, char *domain, size_t dsize)
{
	const char *at = strrchr(mailbox, '@');
	if (!at || at == mailbox || !at[1])
		return false;
	if (!str_copy_n(local, lsize, mailbox, (size_t)(at - mailbox)) || !str_copy(domain, dsize, at + 1))
		return false;
	if (strchr(local, '/') || strchr(domain, '/') || local[0] == '.' || domain[0] == '.')
		return false;
	return true;
}

/* rcpt_fail - recipient r is deferred: writing file (on device dev) failed with err. */
static void rcpt_fail(const struct delivery_job *job, struct delivery_rcpt *r, const char *what, const char *file,
                      uint64_t dev, int err)
{
	maildir_log_failure(job->qid, r->id, file, dev, err);
	r->status = DELIVERY_TEMPFAIL;
	str_format(r->error, sizeof r->error, "%s%s: %s", maildir_status(err), what, strerror(err));
}

/* maildir_write_tmp - the whole file under tmp/ (made durable later, by the batch). */
static bool maildir_write_tmp(const char *tmp_path, const struct delivery_job *job, struct evbuffer *body,
                              struct delivery_rcpt *r, dev_t *dev)
{
	int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return false;
	/* The mailbox may be on another file system than the data directory: the batch flushes each. */
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int saved = errno;
		close(fd);
		unlink(tmp_path);
		errno = saved;
		return false;
	}
	*dev = st.st_dev;
	struct maildir_writer *w = xmalloc(sizeof *w);
	w->fd = fd;
	w->used = 0;
	w->failed = false;
	w->saved_errno = 0;
	char head[2 * STORE_ADDRESS_MAX + 64];
	str_format(head, sizeof head, "Return-Path: <%s>\nDelivered-To: %s\n", job->sender, r->mailbox);
	writer_put(w, head, strlen(head));
	writer_put_lf(w, body);
	bool ok = !w->failed;
	int saved = w->saved_errno;
	free(w);
	/* Some file systems (NFS, and quotas on some) report a full disk only at close. */
	if (close(fd) != 0 && ok) {
		ok = false;
		saved = errno;
	}
	if (!ok) {
		unlink(tmp_path);
		errno = saved;
	}
	return ok;
}

bool maildir_write(const char *data_dir, const char *host, const struct delivery_job *job, struct evbuffer *body,
                   struct delivery_rcpt *r, struct maildir_file *f)
{
	char local[STORE_ADDRESS_MAX], domain[STORE_ADDRESS_MAX], root[MAILDIR_PATH_MAX], name[256];
	r->status = DELIVERY_OK;
	r->error[0] = '\0';
	if (!mailbox_split(r->mailbox, local, sizeof local, domain, sizeof domain)) {
		r->status = DELIVERY_PERMFAIL;
		str_copy(r->error, sizeof r->error, "mailbox name is not usable as a directory");
		return false;
	}
	if (!str_format(root, sizeof root, "%s/mail/%s/%s", data_dir, domain, local) ||
	    !str_format(name, sizeof name, "%lld.Q%sR%lld.%s", (long long)(job->arrival_ms / 1000), job->qid,
	                (long long)r->id, host) ||
	    !str_format(f->tmp_path, sizeof f->tmp_path, "%s/tmp/%s", root, name) ||
	    !str_format(f->new_path, sizeof f->new_path, "%s/new/%s", root, name) ||
	    !str_format(f->new_dir, sizeof f->new_dir, "%s/new", root)) {
		r->status = DELIVERY_PERMFAIL;
		str_copy(r->error, sizeof r->error, "mailbox path too long");
		return false;
	}
	f->dev = 0;
	if (!maildir_write_tmp(f->tmp_path, job, body, r, &f->dev)) {
		if (errno != ENOENT || !maildir_create(data_dir, domain, root) ||
		    !maildir_write_tmp(f->tmp_path, job, body, r, &f->dev)) {
			int err = errno;
			rcpt_fail(job, r, "cannot write the message in tmp/", f->tmp_path,
			          f->dev ? (uint64_t)f->dev : maildir_dev(root), err);
			return false;
		}
	}
	log_episode_ok(&maildir_episode, (uint64_t)f->dev);
	return true;
}

bool maildir_publish(const struct delivery_job *job, struct delivery_rcpt *r, const struct maildir_file *f)
{
	bool already = false;
	if (link(f->tmp_path, f->new_path) != 0) {
		if (errno != EEXIST) {
			int err = errno;
			rcpt_fail(job, r, "cannot link the message into new/", f->new_path, maildir_dev(f->tmp_path),
			          err);
			unlink(f->tmp_path);
			return false;
		}
		already = true;
	}
	unlink(f->tmp_path);
	if (already)
		log_info("event=duplicate_avoided qid=%s rcpt_id=%lld file=%s", job->qid, (long long)r->id,
		         strrchr(f->new_path, '/') + 1);
	return true;
}

bool maildir_sync_dir(const char *dir)
{
	if (fsync_path(dir))
		return true;
	int err = errno;
	if (log_episode_fail(&maildir_episode, maildir_dev(dir))) {
		char q[LOG_QUOTE_MAX];
		log_error("event=write_failed where=maildir file=%s errno=%s error=\"fsync: %s\"",
		          log_quote(q, sizeof q, dir, strlen(dir)), log_errno_name(err), strerror(err));
	}
	return false;
}
