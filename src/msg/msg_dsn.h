/*
 * msg_dsn.h - delivery status notifications (RFC 3464): the bounce that
 * says a message could not be delivered, the warning that it is still
 * being retried, and the report of a delivery a sender asked to hear about
 * (RFC 3461 NOTIFY=SUCCESS). One multipart/report (RFC 6522) of three
 * parts: a plain explanation, the machine-readable message/delivery-status,
 * and the original message or its header section.
 *
 * Pure: a description of what happened in, the notification's bytes out
 * (header and body, CRLF lines, none over 998 octets) through a callback.
 * No clock, no I/O, no allocation.
 *
 * Sending it is the caller's: from the null reverse-path "<>" (RFC 5321
 * 4.5.5, RFC 3461 6.1) to report->to, never to "<>" (msg_dsn_build refuses
 * an empty to). The notification is 7-bit unless one of these holds, and
 * then its top-level header says "Content-Transfer-Encoding: 8bit":
 *   - the full original is returned and holds 8-bit bytes: the caller must
 *     send it with BODY=8BITMIME (RFC 6152), or build it again with
 *     headers_only, which is 7-bit without smtputf8 (header bytes that are
 *     not 7-bit are returned in quoted-printable);
 *   - smtputf8: the message/global* parts (RFC 6533) are 8bit, and To: and
 *     the addresses may be UTF-8: send it with SMTPUTF8 (RFC 6531).
 */
#ifndef TERN_MSG_DSN_H
#define TERN_MSG_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The header section returned in place of a full original is cut at a
 * field boundary after this many bytes (a header section is rarely over
 * 20 KB; this bounds the notification when a sender's is not). */
#define DSN_HEADERS_MAX ((size_t)128 * 1024)

/* msg_dsn_status_for_reply writes at most this many bytes with its NUL. */
#define DSN_STATUS_SIZE 16

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
	const char *address; /* final recipient (as given at RCPT) */
	const char *orcpt;   /* RFC 3461 ORCPT value "rfc822;addr" as given (xtext), or NULL */
	enum dsn_action action;
	const char *status;      /* "5.1.1", "4.4.1" (RFC 3463: class 2, 4 or 5) */
	const char *remote_mta;  /* host name of the remote MTA, or NULL */
	const char *diagnostic;  /* the remote reply text "550 5.1.1 <x>: user unknown", or NULL */
	int64_t last_attempt_ms; /* 0: none */
	int64_t retry_until_ms;  /* DSN_DELAYED: when tern gives up; else 0 */
};

struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *qid;           /* of the original message (for the text and Message-ID), or NULL */
	const char *to;            /* the original envelope sender: the notification's recipient */
	const char *envid;         /* RFC 3461 ENVID as given (xtext), or NULL */
	int64_t arrival_ms;        /* 0: none */
	int64_t now_ms;            /* Date: and the text */
	bool headers_only;         /* RET=HDRS (or a large original): text/rfc822-headers */
	bool smtputf8;             /* the original used SMTPUTF8: message/global* types (RFC 6533) */
	const struct dsn_rcpt *rcpts;
	size_t rcpt_count;
	const char *original; /* the original message, canonical CRLF (may hold 8-bit bytes), or NULL */
	size_t original_len;
	size_t original_max;       /* include at most this many bytes of a full original (then headers only) */
	const char *boundary_seed; /* unique text for the MIME boundary and Message-ID (e.g. a new queue id) */
};

/* dsn_emit - the next bytes of the notification (called many times). */
typedef void dsn_emit(void *ctx, const char *bytes, size_t len);

/*
 * msg_dsn_build - the whole notification (header and body, CRLF lines)
 * through emit. false, with nothing emitted, if the report is unusable: no
 * recipients, recipients of more than one kind (failed, delayed, or
 * delivered/relayed/expanded: one notification each), a recipient without
 * an address or with a status that is not "class.subject.detail", no
 * reporting_mta (a host name), no to, now_ms or boundary_seed (which must
 * hold a letter or digit).
 *
 * Every value from the report is made safe: no CR or LF reaches a header
 * line; the text part is 7-bit printable with control characters and
 * other bytes shown as "\x{HEX}"; long values are folded, and cut with
 * "..." past a bound.
 */
bool msg_dsn_build(const struct dsn_report *report, dsn_emit *emit, void *ctx);

/*
 * msg_dsn_status_for_reply - an enhanced status code (RFC 3463) for an
 * SMTP reply: the reply's own ("550 5.1.1 ..." gives "5.1.1") when its class
 * agrees with the reply code, or else one derived from the code (5xx gives
 * "5.0.0", 4xx "4.0.0", 2xx "2.0.0"). A reply without a code (NULL,
 * garbage) gives "4.0.0": what cannot be read is not taken as final.
 */
void msg_dsn_status_for_reply(const char *reply, char status[DSN_STATUS_SIZE]);

#endif
