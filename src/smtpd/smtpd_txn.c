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
 * no longer kept. Our Received: header (RFC 5321 4.4) goes first.
 *
 * The reply to the end of content is given by smtpd_session.c once the
 * store has committed the message (the rule behind 250).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd/smtpd_private.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define TXN_SPILL_THRESHOLD (256 * 1024)

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
	}
	free(txn->rcpts);
	free(txn->sender);
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

/* txn_add_mailbox - one copy per mailbox, however many addresses lead there. */
bool txn_add_mailbox(struct smtpd_txn *txn, const char *address, const char *mailbox)
{
	for (size_t i = 0; i < txn->rcpt_count; i++)
		if (strcmp(txn->rcpts[i].mailbox, mailbox) == 0)
			return false;
	if (txn->rcpt_count == txn->rcpt_cap) {
		txn->rcpt_cap = txn->rcpt_cap ? txn->rcpt_cap * 2 : 4;
		txn->rcpts = xrealloc(txn->rcpts, txn->rcpt_cap * sizeof *txn->rcpts);
	}
	txn->rcpts[txn->rcpt_count].address = str_dup(address);
	txn->rcpts[txn->rcpt_count].mailbox = str_dup(mailbox);
	txn->rcpt_count++;
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

static bool write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* txn_spill - move what is in memory to a temporary file. */
static void txn_spill(struct smtpd_session *s, struct smtpd_txn *txn)
{
	txn->spill_fd = spill_open(s->config->data_dir);
	if (txn->spill_fd < 0) {
		log_error("event=spill_failed session=%s qid=%s error=\"%s\"", s->sid, txn->qid, strerror(errno));
		txn->spill_failed = true;
		return;
	}
	while (evbuffer_get_length(txn->body) > 0 && !txn->spill_failed)
		if (evbuffer_write(txn->body, txn->spill_fd) <= 0)
			txn->spill_failed = true;
}

static void txn_keep(struct smtpd_session *s, struct smtpd_txn *txn, const char *bytes, size_t len)
{
	txn->stored_bytes += len;
	if (txn->spill_failed)
		return;
	if (txn->spill_fd >= 0) {
		if (!write_all(txn->spill_fd, bytes, len))
			txn->spill_failed = true;
		return;
	}
	evbuffer_add(txn->body, bytes, len);
	if (evbuffer_get_length(txn->body) > TXN_SPILL_THRESHOLD)
		txn_spill(s, txn);
}

static void txn_drop_content(struct smtpd_txn *txn)
{
	evbuffer_drain(txn->body, evbuffer_get_length(txn->body));
	if (txn->spill_fd >= 0) {
		close(txn->spill_fd);
		txn->spill_fd = -1;
	}
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

/* txn_received - our trace header (RFC 5321 4.4), first in the content. */
static void txn_received(struct smtpd_session *s, struct smtpd_txn *txn)
{
	char date[64], header[1024], helo[LOG_QUOTE_MAX];
	time_rfc5322(date, sizeof date, time(NULL));
	const char *proto = txn->smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP";
	/* The HELO argument passed the domain/literal syntax check: no spaces,
	 * no control characters, safe to put in a header. */
	str_copy(helo, sizeof helo, s->helo);
	bool one = txn->rcpts_accepted == 1 && txn->first_rcpt;
	if (!str_format(header, sizeof header,
	                "Received: from %s (unknown [%s])\r\n\tby %s (tern) with %s id %s%s%s%s;\r\n\t%s\r\n", helo,
	                s->peer_ip, s->config->hostname, proto, txn->qid, one ? "\r\n\tfor <" : "",
	                one ? txn->first_rcpt : "", one ? ">" : "", date))
		str_format(header, sizeof header, "Received: from [%s]\r\n\tby %s (tern) with %s id %s;\r\n\t%s\r\n",
		           s->peer_ip, s->config->hostname, proto, txn->qid, date);
	txn_keep(s, txn, header, strlen(header));
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
		return SMTP_R_LOCAL_ERROR;
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

void txn_finish(struct smtpd_session *s)
{
	struct smtpd_txn *txn = s->txn;
	unsigned faults = smtp_data_finish(&txn->reader, txn_sink, s);
	enum smtp_reply_id refusal = txn_refusal(s, faults);
	session_set_data_timeouts(s, false);
	if (refusal != SMTP_R_OK) {
		session_reply(s, refusal);
		txn_reset(s);
		return;
	}
	session_enter_state(s, SMTPD_COMMIT);
	store_commit(smtpd_store(s->smtpd), txn_to_message(s, txn));
}
