/*
 * msg_submit.h - a message as a local program hands it to sendmail, made
 * ready to submit over SMTP: every line ending in CR LF, a leading mbox
 * "From " line dropped, the header told from the body, Bcc: and
 * Resent-Bcc: removed, a From: field added when there is none, and (for
 * sendmail -t) the recipients read from To:, Cc: and Bcc:, or from
 * Resent-To:, Resent-Cc: and Resent-Bcc: when the message has any of those.
 *
 * Pure: bytes in, a new buffer and a list of addresses out; no I/O.
 */
#ifndef TERN_MSG_SUBMIT_H
#define TERN_MSG_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

/* Longest field name kept to say which field could not be read. */
#define MSG_SUBMIT_FIELD_MAX 64

struct msg_submit_options {
	bool recipients;  /* read the recipients from the header (sendmail -t) */
	const char *from; /* the value of a From: field to add when the message has none, or NULL */
};

/* A recipient as msg_address hands it over (msg_address_fn): a local part alone when it has no domain. */
struct msg_submit_rcpt {
	char *address;
	size_t local_len; /* bytes of the local part (unquoted, so it may hold "@") */
};

struct msg_submit {
	char *content; /* the message, CR LF line ends, not dot-stuffed */
	size_t len;
	struct msg_submit_rcpt *rcpts; /* with recipients: each address the header gives */
	size_t rcpt_count;
	bool eight_bit; /* a byte >= 0x80 somewhere (BODY=8BITMIME) */
	/* When msg_submit_prepare fails: the field whose address list could not be read, as written. */
	char bad_field[MSG_SUBMIT_FIELD_MAX + 1];
};

/*
 * msg_submit_prepare - in[0..len) made ready as above into out (free it
 * with msg_submit_free, whatever the result). The header is the run of
 * lines from the top that are fields ("Name:", the name printable ASCII)
 * or fold lines after one; it ends at an empty line or before the first
 * line that is neither, which then starts the body after an empty line
 * put in (as Postfix does). A message without any header is all body. A
 * lone CR is left as it is (the server refuses it). Returns false when the
 * recipients are asked for and an address field is not a list of
 * addresses (out->bad_field names it).
 */
bool msg_submit_prepare(const char *in, size_t len, const struct msg_submit_options *options, struct msg_submit *out);

void msg_submit_free(struct msg_submit *submit);

/*
 * msg_submit_dot_end - sendmail without -i: the input ends at a line
 * holding only "." (before LF or CR LF). Looks at the lines of buf[0..len)
 * that start at or after *scan and sets *scan past the whole lines looked
 * at, so a caller reading in pieces only looks at new lines. Returns the
 * offset of the dot line (the message is what comes before it), or -1.
 */
long msg_submit_dot_end(const char *buf, size_t len, size_t *scan);

/*
 * msg_submit_crlf - in[0..len) with every LF that has no CR before it made
 * CR LF, into out (room for 2 * len bytes); *cr says whether the byte
 * before in[0] was a CR and is updated, so a stream may come in pieces.
 * Returns the bytes written. For SMTP typed on sendmail -bs's standard
 * input, where lines may end in LF alone.
 */
size_t msg_submit_crlf(const char *in, size_t len, bool *cr, char *out);

/*
 * msg_submit_from_value - the value of the From: field for a message that
 * has none: "NAME <address>", the name as a phrase, a quoted string, or
 * RFC 2047 encoded words when it is not ASCII (control characters dropped,
 * at most 128 bytes kept); the bare address when the name is empty or
 * NULL. False if it does not fit in size.
 */
bool msg_submit_from_value(const char *name, const char *address, char *out, size_t size);

#endif
