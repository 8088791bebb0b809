/*
 * smtpd_txn.c - a mail transaction: envelope, content, and the hand-over
 * to the store.
 *
 * Content arrives through the DATA/BDAT reader (smtp/smtp_data.c), which
 * unstuffs dots and flags bare CR/LF, NUL and long lines; here it is
 * counted against max_message_size, its header is scanned for Received:
 * hops, and it is kept: in memory up to TXN_SPILL_THRESHOLD, then in an
 * unnamed temporary file under DATA_DIR/tmp (O_TMPFILE: nothing is left
 * behind by a crash). A message over the size limit is read to its end but
 * no longer kept. A spill file that cannot be written (a full disk) is
 * given up at once and the rest of the content read and dropped; the end
 * of content is then refused with 452 4.3.1, never 250 for what is not on
 * disk. Our Received: header (RFC 5321 4.4) goes first; for a
 * local submission it names the user's uid instead of a client host.
 *
 * The reply to the end of content is given by smtpd_session.c once the
 * store has committed the message (the rule behind 250).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "msg/msg_address.h"
#include "smtpd/smtpd_lookup.h"
#include "smtpd/smtpd_private.h"
#include "util/util_io.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define TXN_SPILL_THRESHOLD (256 * 1024)

/* Spill files that cannot be written: logged once per episode (loop thread only). */
static struct log_episode spill_episode = LOG_EPISODE_INIT("spill");

struct smtpd_txn *txn_new(void)
{
	struct smtpd_txn *txn = xcalloc(1, sizeof *txn);
	txn->spill_fd = -1;
	return txn;
}

void txn_free(struct smtpd_txn *txn)
{
	if (!txn)
		return;
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		free(txn->rcpts[i].address);
		free(txn->rcpts[i].mailbox);
		free(txn->rcpts[i].route_key);
		free(txn->rcpts[i].orcpt);
	}
	free(txn->rcpts);
	free(txn->sender);
	free(txn->envid);
	free(txn->first_rcpt);
	if (txn->body)
		evbuffer_free(txn->body);
	if (txn->spill_fd >= 0)
		close(txn->spill_fd);
	free(txn);
}

void txn_reset(struct smtpd_session *s)
{
	txn_free(s->txn);
	s->txn = NULL;
	session_enter_state(s, s->helo[0] ? SMTPD_READY : SMTPD_CONNECTED);
	session_set_data_timeouts(s, false);
}

/* txn_add_rcpt - one copy per mailbox, however many addresses lead there;
 * a recipient in another domain once per address. */
bool txn_add_rcpt(struct smtpd_txn *txn, const char *address, enum store_route route, const char *mailbox,
                  const char *route_key, unsigned notify, const char *orcpt, size_t orcpt_len)
{
	bool local = STORE_ROUTE_IS_LOCAL(route);
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		const struct store_rcpt *r = &txn->rcpts[i];
		if (local ? STORE_ROUTE_IS_LOCAL(r->route) && strcmp(r->mailbox, mailbox) == 0
		          : !STORE_ROUTE_IS_LOCAL(r->route) && strcasecmp(r->address, address) == 0)
			return false;
	}
	if (txn->rcpt_count == txn->rcpt_cap) {
		txn->rcpt_cap = txn->rcpt_cap ? txn->rcpt_cap * 2 : 4;
		txn->rcpts = xrealloc(txn->rcpts, txn->rcpt_cap * sizeof *txn->rcpts);
	}
	struct store_rcpt *r = &txn->rcpts[txn->rcpt_count++];
	r->address = str_dup(address);
	r->route = route;
	r->mailbox = str_dup(local ? mailbox : "");
	r->route_key = !local && route_key[0] ? str_dup(route_key) : NULL;
	r->notify = notify;
	r->orcpt = orcpt ? str_dup_n(orcpt, orcpt_len) : NULL;
	return true;
}

/* ---- Keeping the content ---- */

static int spill_open(const char *data_dir)
{
	char dir[4096];
	if (!str_format(dir, sizeof dir, "%s/tmp", data_dir))
		return -1;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	char path[4096];
	if (!str_format(path, sizeof path, "%s/spill.XXXXXX", dir))
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static void txn_drop_content(struct smtpd_txn *txn)
{
	evbuffer_drain(txn->body, evbuffer_get_length(txn->body));
	if (txn->spill_fd >= 0) {
		close(txn->spill_fd);
		txn->spill_fd = -1;
	}
}

/*
 * txn_spill_failed - the content cannot be kept (error err): stop writing,
 * free what is kept, and refuse at the end of the content. The first
 * failure of an episode is logged; the repeats are counted.
 */
static void txn_spill_failed(struct smtpd_session *s, struct smtpd_txn *txn, int err)
{
	if (log_episode_fail(&spill_episode, 0))
		log_error("event=write_failed where=spill session=%s qid=%s file=\"%s/tmp\" errno=%s error=\"%s\"",
		          s->sid, txn->qid, s->config->data_dir, log_errno_name(err), strerror(err));
	txn->spill_failed = true;
	txn_drop_content(txn);
}

/* txn_spill - move what is in memory to a temporary file. */
static void txn_spill(struct smtpd_session *s, struct smtpd_txn *txn)
{
	txn->spill_fd = spill_open(s->config->data_dir);
	if (txn->spill_fd < 0) {
		txn_spill_failed(s, txn, errno);
		return;
	}
	while (evbuffer_get_length(txn->body) > 0) {
		if (evbuffer_write(txn->body, txn->spill_fd) <= 0) {
			txn_spill_failed(s, txn, errno ? errno : EIO);
			return;
		}
	}
	log_episode_ok(&spill_episode, 0);
}

static void txn_keep(struct smtpd_session *s, struct smtpd_txn *txn, const char *bytes, size_t len)
{
	txn->stored_bytes += len;
	if (txn->spill_failed)
		return;
	if (txn->spill_fd >= 0) {
		if (!io_write_all(txn->spill_fd, bytes, len))
			txn_spill_failed(s, txn, errno);
		return;
	}
	evbuffer_add(txn->body, bytes, len);
	if (evbuffer_get_length(txn->body) > TXN_SPILL_THRESHOLD)
		txn_spill(s, txn);
}

static void txn_sink(void *ctx, const char *bytes, size_t len)
{
	struct smtpd_session *s = ctx;
	struct smtpd_txn *txn = s->txn;
	txn->client_bytes += len;
	if (!txn->header.in_body)
		msg_header_scan_feed(&txn->header, bytes, len);
	if (txn->too_big)
		return;
	if (txn->client_bytes > s->config->max_message_size) {
		/* RFC 1870 6.1: read on to the end, keep nothing, refuse then. */
		txn->too_big = true;
		txn_drop_content(txn);
		return;
	}
	txn_keep(s, txn, bytes, len);
}

/*
 * txn_received_local - the trace header of a local submission: no client
 * host, the uid instead, as Postfix writes it for its sendmail.
 */
static void txn_received_local(struct smtpd_session *s, struct smtpd_txn *txn, const char *proto, const char *date,
                               char *header, size_t size)
{
	bool one = txn->rcpts_accepted == 1 && txn->first_rcpt;
	if (!str_format(header, size, "Received: by %s (tern, from userid %u)\r\n\twith %s id %s%s%s%s;\r\n\t%s\r\n",
	                s->config->hostname, (unsigned)s->local_uid, proto, txn->qid, one ? "\r\n\tfor <" : "",
	                one ? txn->first_rcpt : "", one ? ">" : "", date))
		str_format(header, size, "Received: by %s (tern, from userid %u)\r\n\twith %s id %s;\r\n\t%s\r\n",
		           s->config->hostname, (unsigned)s->local_uid, proto, txn->qid, date);
}

/* txn_received - our trace header (RFC 5321 4.4), first in the content. */
static void txn_received(struct smtpd_session *s, struct smtpd_txn *txn)
{
	char date[64], header[1024], helo[LOG_QUOTE_MAX];
	time_rfc5322(date, sizeof date, time(NULL));
	/* RFC 3848 and RFC 6531: S for TLS, A for AUTH. */
	char proto[16], tls[128] = "";
	str_format(proto, sizeof proto, "%s%s%s",
	           txn->smtputf8 ? "UTF8SMTP"
	           : s->esmtp    ? "ESMTP"
	                         : "SMTP",
	           s->tls_active ? "S" : "", s->auth_user[0] ? "A" : "");
	if (s->kind == LISTENER_LOCAL) {
		txn_received_local(s, txn, proto, date, header, sizeof header);
		txn->trace_len = strlen(header);
		txn_keep(s, txn, header, txn->trace_len);
		return;
	}
	if (s->tls_active)
		str_format(tls, sizeof tls, " (version=%s cipher=%s)", s->tls_version, s->tls_cipher);
	/* The HELO argument passed the domain/literal syntax check: no spaces,
	 * no control characters, safe to put in a header. */
	str_copy(helo, sizeof helo, s->helo);
	bool one = txn->rcpts_accepted == 1 && txn->first_rcpt;
	if (!str_format(header, sizeof header,
	                "Received: from %s (unknown [%s])\r\n\tby %s (tern) with %s%s id %s%s%s%s;\r\n\t%s\r\n", helo,
	                s->peer_ip, s->config->hostname, proto, tls, txn->qid, one ? "\r\n\tfor <" : "",
	                one ? txn->first_rcpt : "", one ? ">" : "", date))
		str_format(header, sizeof header, "Received: from [%s]\r\n\tby %s (tern) with %s%s id %s;\r\n\t%s\r\n",
		           s->peer_ip, s->config->hostname, proto, tls, txn->qid, date);
	txn->trace_len = strlen(header);
	txn_keep(s, txn, header, txn->trace_len);
}

void txn_begin_content(struct smtpd_session *s, enum smtp_data_mode mode)
{
	struct smtpd_txn *txn = s->txn;
	smtp_data_init(&txn->reader, mode);
	msg_header_scan_init(&txn->header);
	txn->body = evbuffer_new();
	if (!txn->body)
		fatal("evbuffer_new failed");
	txn_received(s, txn);
}

size_t txn_feed(struct smtpd_session *s, const char *bytes, size_t len)
{
	return smtp_data_feed(&s->txn->reader, bytes, len, txn_sink, s);
}

/* txn_refusal - why the finished content cannot be taken, or SMTP_R_OK. */
static enum smtp_reply_id txn_refusal(struct smtpd_session *s, unsigned faults)
{
	struct smtpd_txn *txn = s->txn;
	if (faults & (SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF))
		return SMTP_R_CONTENT_BARE_EOL;
	if (faults & SMTP_DATA_NUL)
		return SMTP_R_CONTENT_NUL;
	if (faults & SMTP_DATA_LONG_LINE)
		return SMTP_R_CONTENT_LONG_LINE;
	if (txn->too_big)
		return SMTP_R_SIZE_EXCEEDED;
	if (txn->header.received > s->config->max_hops)
		return SMTP_R_LOOP;
	if (txn->spill_failed)
		return SMTP_R_NO_STORAGE;
	return SMTP_R_OK;
}

/* txn_to_message - the envelope and content, moved into a store request. */
static struct store_message *txn_to_message(struct smtpd_session *s, struct smtpd_txn *txn)
{
	struct store_message *msg = xcalloc(1, sizeof *msg);
	memcpy(msg->qid, txn->qid, sizeof msg->qid);
	msg->session_id = s->id;
	msg->sender = txn->sender;
	txn->sender = NULL;
	msg->ret_hdrs = txn->ret_hdrs;
	msg->envid = txn->envid;
	txn->envid = NULL;
	msg->rcpts = txn->rcpts;
	msg->rcpt_count = txn->rcpt_count;
	txn->rcpts = NULL;
	txn->rcpt_count = txn->rcpt_cap = 0;
	msg->body = txn->body;
	txn->body = NULL;
	msg->spill_fd = txn->spill_fd;
	txn->spill_fd = -1;
	msg->size = txn->stored_bytes;
	msg->arrival_ms = time_wall_ms();
	return msg;
}

/* ---- Submission: From: and the fields a message must have ---- */

/* From: on its way: the addresses an authenticated user put there, while the directory is asked. */
#define TXN_FROM_MAX 16
struct from_lookup {
	struct smtpd_lookup lookup; /* first */
	char user[STORE_ADDRESS_MAX];
	char delimiter[16];
	char addresses[TXN_FROM_MAX][MSG_ADDRESS_MAX + 1]; /* lower-cased */
	size_t count;
	bool overflow; /* more addresses than TXN_FROM_MAX: refused, as a header nobody writes */
	int verdict;   /* store_dir_may_send_as of the first address refused, or 1 */
};

static bool from_collect(void *ctx, const char *address, size_t local_len)
{
	struct from_lookup *f = ctx;
	if (f->count == TXN_FROM_MAX) {
		f->overflow = true;
		return false;
	}
	str_copy(f->addresses[f->count], sizeof f->addresses[f->count], address);
	str_lower(f->addresses[f->count]);
	f->count++;
	return true;
}

/* from_query - lookup thread: may the user send as every address of From:? */
static void from_query(struct smtpd_lookup *lookup, struct store_reader *reader)
{
	struct from_lookup *f = (struct from_lookup *)lookup;
	f->verdict = reader ? 1 : -1;
	for (size_t i = 0; i < f->count && f->verdict == 1; i++)
		f->verdict = store_dir_may_send_as(reader, f->user, f->addresses[i], f->delimiter);
}

static void from_release(struct smtpd_lookup *lookup)
{
	free(lookup);
}

static void txn_finish_checked(struct smtpd_session *s, enum smtp_reply_id refusal);

static void from_finish(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	struct from_lookup *f = (struct from_lookup *)lookup;
	txn_finish_checked(s, f->verdict == 1  ? SMTP_R_OK
	                      : f->verdict < 0 ? SMTP_R_LOCAL_ERROR
	                                       : SMTP_R_FROM_NOT_OWNED);
}

/*
 * txn_check_from - RFC 6409 8.1: an authenticated user's From: must hold
 * only addresses they may use. true when the directory was asked (the
 * answer goes on in txn_finish_checked); false with *refusal set when the
 * answer is known at once.
 */
static bool txn_check_from(struct smtpd_session *s, struct smtpd_txn *txn, enum smtp_reply_id *refusal)
{
	const struct msg_header_scan *h = &txn->header;
	*refusal = SMTP_R_OK;
	if (!s->auth_user[0] || !h->has_from)
		return false;
	struct from_lookup *f = xcalloc(1, sizeof *f);
	size_t count = 0;
	if (h->from_overflow || !msg_address_list(h->from, h->from_len, from_collect, f, &count) || count == 0 ||
	    f->overflow) {
		*refusal = SMTP_R_FROM_NOT_OWNED;
		free(f);
		return false;
	}
	str_copy(f->user, sizeof f->user, s->auth_user);
	str_copy(f->delimiter, sizeof f->delimiter, s->config->recipient_delimiter);
	f->lookup.query = from_query;
	f->lookup.finish = from_finish;
	f->lookup.release = from_release;
	smtpd_lookup_start(s, &f->lookup);
	return true;
}

/* copy_range - len bytes of in from offset to the end of out. */
static bool copy_range(int in, off_t offset, int out, uint64_t len)
{
	while (len > 0) {
		ssize_t n = copy_file_range(in, &offset, out, NULL, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		len -= (uint64_t)n;
	}
	return true;
}

/* txn_insert_after_trace - put text between our Received: header and the client's content. */
static void txn_insert_after_trace(struct smtpd_session *s, struct smtpd_txn *txn, const char *text, size_t len)
{
	if (txn->spill_fd < 0) {
		struct evbuffer *fresh = evbuffer_new();
		if (!fresh)
			fatal("evbuffer_new failed");
		evbuffer_remove_buffer(txn->body, fresh, txn->trace_len);
		evbuffer_add(fresh, text, len);
		evbuffer_add_buffer(fresh, txn->body);
		evbuffer_free(txn->body);
		txn->body = fresh;
		txn->stored_bytes += len;
		return;
	}
	/* Spilled: a new file with the text in place; the kernel copies the rest. */
	errno = 0;
	int fd = spill_open(s->config->data_dir);
	char trace[2048];
	bool ok = fd >= 0 && txn->trace_len <= sizeof trace &&
	          pread(txn->spill_fd, trace, txn->trace_len, 0) == (ssize_t)txn->trace_len &&
	          io_write_all(fd, trace, txn->trace_len) && io_write_all(fd, text, len) &&
	          copy_range(txn->spill_fd, (off_t)txn->trace_len, fd, txn->stored_bytes - txn->trace_len);
	if (!ok) {
		int err = errno ? errno : EIO;
		if (fd >= 0)
			close(fd);
		txn_spill_failed(s, txn, err);
		return;
	}
	close(txn->spill_fd);
	txn->spill_fd = fd;
	txn->stored_bytes += len;
}

/*
 * txn_add_missing_fields - RFC 6409 8.2, 8.3: a submitted message (AUTH, or
 * a local user's) gets Date: and Message-ID: if it lacks them.
 */
static void txn_add_missing_fields(struct smtpd_session *s, struct smtpd_txn *txn)
{
	bool submitted = s->auth_user[0] || s->kind == LISTENER_LOCAL;
	if (!submitted || (txn->header.has_date && txn->header.has_message_id))
		return;
	char text[512], date[64];
	size_t used = 0;
	if (!txn->header.has_date) {
		time_rfc5322(date, sizeof date, time(NULL));
		str_format(text, sizeof text, "Date: %s\r\n", date);
		used = strlen(text);
	}
	if (!txn->header.has_message_id) {
		str_format(text + used, sizeof text - used, "Message-ID: <%s.%llx@%s>\r\n", txn->qid,
		           (unsigned long long)time_wall_ms(), s->config->hostname);
		used += strlen(text + used);
	}
	txn_insert_after_trace(s, txn, text, used);
}

void txn_finish(struct smtpd_session *s)
{
	struct smtpd_txn *txn = s->txn;
	unsigned faults = smtp_data_finish(&txn->reader, txn_sink, s);
	enum smtp_reply_id refusal = txn_refusal(s, faults);
	if (refusal == SMTP_R_OK && txn_check_from(s, txn, &refusal))
		return;
	txn_finish_checked(s, refusal);
}

/* txn_finish_checked - the content is judged (refusal, or SMTP_R_OK): refuse it, or hand it to the store. */
static void txn_finish_checked(struct smtpd_session *s, enum smtp_reply_id refusal)
{
	struct smtpd_txn *txn = s->txn;
	if (refusal == SMTP_R_FROM_NOT_OWNED) {
		const struct msg_header_scan *h = &txn->header;
		char q[LOG_QUOTE_MAX];
		log_info("event=from_refused session=%s qid=%s user=%s from=%s", s->sid, txn->qid, s->auth_user,
		         log_quote(q, sizeof q, h->from, h->from_len));
	}
	if (refusal == SMTP_R_OK) {
		txn_add_missing_fields(s, txn);
		if (txn->spill_failed)
			refusal = SMTP_R_NO_STORAGE;
	}
	session_set_data_timeouts(s, false);
	if (refusal == SMTP_R_FROM_NOT_OWNED) {
		char text[STORE_ADDRESS_MAX + 64];
		str_format(text, sizeof text, "From: header not owned by user %s", s->auth_user);
		session_reply_text(s, refusal, text);
		txn_reset(s);
		return;
	}
	if (refusal != SMTP_R_OK) {
		session_reply(s, refusal);
		txn_reset(s);
		return;
	}
	session_enter_state(s, SMTPD_COMMIT);
	s->host->commit(s->host->ctx, txn_to_message(s, txn));
}
