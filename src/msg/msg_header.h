/*
 * msg_header.h - a streaming look at the header section of a message
 * (RFC 5322 2.2), for what the server must know before it accepts one:
 * how many Received: fields (loop detection, RFC 5321 6.3), whether Date:,
 * Message-ID: and From: are there, the From: value, and whether the
 * header ends properly.
 *
 * Pure: canonical CRLF content in, in runs of any size; counts out.
 */
#ifndef TERN_MSG_HEADER_H
#define TERN_MSG_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* The From: field's value is kept up to this many bytes (RFC 5322 2.1.1 allows 998 per line). */
#define MSG_FROM_MAX 2048

struct msg_header_scan {
	int state;           /* private */
	size_t match;        /* private: bytes of a field name matched so far */
	unsigned received;   /* Received: fields seen in the header section */
	bool in_body;        /* the empty line ending the header was seen */
	bool has_date;       /* a Date: field */
	bool has_message_id; /* a Message-ID: field */
	bool has_from;       /* a From: field */
	/* The value of every From: field (joined by ",", unfolded, without
	 * CR LF), for checking who a submitted message claims to be from. */
	char from[MSG_FROM_MAX + 1];
	size_t from_len;
	bool from_overflow; /* longer than MSG_FROM_MAX: from is cut */
	bool in_from;       /* private: the current field is From: */
};

void msg_header_scan_init(struct msg_header_scan *scan);

/*
 * msg_header_scan_feed - feed content. Field names are matched at the start
 * of a line, case-insensitively, up to and including the colon (optional
 * white space before the colon is allowed, RFC 5322 4.5 obs-). Continuation
 * lines (starting with SP or HTAB) never start a field. The header section
 * ends at the first empty line; later bytes are ignored (cheap).
 */
void msg_header_scan_feed(struct msg_header_scan *scan, const char *bytes, size_t len);

#endif
