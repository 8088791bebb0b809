/*
 * smtp_client_reply.h - what an SMTP client reads: reply lines (RFC 5321
 * 4.2) and the EHLO keywords it cares about (RFC 5321 4.1.1.1).
 *
 * Pure: a line in (without its CRLF), a parsed line out; the reply
 * assembled across lines in a small struct. No I/O, no allocation.
 */
#ifndef TERN_SMTP_CLIENT_REPLY_H
#define TERN_SMTP_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A reply has at most this many lines; more is a broken or hostile peer. */
#define SMTP_CLIENT_REPLY_LINES 100
/* The first line's text is kept up to this many bytes (for logs and bounces). */
#define SMTP_CLIENT_REPLY_TEXT 512

enum smtp_client_line {
	SMTP_LINE_MORE,      /* "ddd-text": the reply goes on */
	SMTP_LINE_LAST,      /* "ddd text" or "ddd": the reply is complete */
	SMTP_LINE_MALFORMED, /* not a reply line at all */
	SMTP_LINE_MISMATCH,  /* a code that differs from the reply's first line */
	SMTP_LINE_TOO_MANY,  /* past SMTP_CLIENT_REPLY_LINES */
};

struct smtp_client_reply {
	int code;                              /* 200..599 */
	size_t lines;                          /* taken so far */
	char text[SMTP_CLIENT_REPLY_TEXT + 1]; /* the first line's text, NUL-terminated */
};

/* What an EHLO reply offers. */
struct smtp_ehlo {
	bool starttls, pipelining, eightbitmime, smtputf8, dsn, chunking;
	bool size_offered; /* SIZE, with or without a limit: MAIL may carry SIZE= (RFC 1870) */
	uint64_t size;     /* SIZE's limit; 0 when absent or without a number */
	bool auth_plain, auth_login; /* AUTH (RFC 4954) offers these mechanisms */
};

/* smtp_client_reply_init - start a new reply. */
void smtp_client_reply_init(struct smtp_client_reply *reply);

/*
 * smtp_client_reply_line - take one line. The code must be three digits,
 * the first 2..5, followed by nothing, a space or a hyphen; every line of
 * a reply must carry the same code. *text and *text_len point to the text
 * after the code and its separator (inside line).
 */
enum smtp_client_line smtp_client_reply_line(struct smtp_client_reply *reply, const char *line, size_t len,
                                             const char **text, size_t *text_len);

/* smtp_ehlo_keyword - note one EHLO line's text (the lines after the first); unknown keywords are ignored. */
void smtp_ehlo_keyword(struct smtp_ehlo *ehlo, const char *text, size_t len);

#endif
