/*
 * smtp_reply.h - every fixed reply tern sends, in one table: code, enhanced
 * status code (RFC 3463, RFC 5248 registry) and text, each with the RFC
 * section that calls for it. Replies with variable parts (the greeting, EHLO,
 * "queued as") are formatted by the session with the same helper.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

enum smtp_reply_id {
	SMTP_R_OK,
	SMTP_R_MAIL_OK,
	SMTP_R_RCPT_OK,
	SMTP_R_DATA_GO,
	SMTP_R_VRFY,
	SMTP_R_HELP,
	SMTP_R_BYE,
	SMTP_R_NEED_HELO,
	SMTP_R_NESTED_MAIL,
	SMTP_R_NEED_MAIL,
	SMTP_R_NEED_RCPT,
	SMTP_R_NO_VALID_RCPT,
	SMTP_R_DATA_AFTER_BDAT,
	SMTP_R_UNKNOWN_COMMAND,
	SMTP_R_LINE_TOO_LONG,
	SMTP_R_BARE_EOL_COMMAND,
	SMTP_R_NUL_COMMAND,
	SMTP_R_SYNTAX,
	SMTP_R_BAD_SENDER,
	SMTP_R_BAD_RCPT,
	SMTP_R_PATH_TOO_LONG,
	SMTP_R_PARAM_UNKNOWN,
	SMTP_R_PARAM_BAD,
	SMTP_R_PARAM_AFTER_HELO,
	SMTP_R_SIZE_EXCEEDED,
	SMTP_R_TOO_MANY_RCPTS,
	SMTP_R_USER_UNKNOWN,
	SMTP_R_RELAY_DENIED,
	SMTP_R_UTF8_NEEDED,
	SMTP_R_CONTENT_BARE_EOL,
	SMTP_R_CONTENT_NUL,
	SMTP_R_CONTENT_LONG_LINE,
	SMTP_R_LOOP,
	SMTP_R_PIPELINING,
	SMTP_R_TOO_MANY_ERRORS,
	SMTP_R_TIMEOUT,
	SMTP_R_SHUTDOWN,
	SMTP_R_TOO_MANY_CONNECTIONS,
	SMTP_R_TOO_MANY_FROM_ADDRESS,
	SMTP_R_LOCAL_ERROR,
	SMTP_R_NO_STORAGE,
	SMTP_R_NO_TLS,
	SMTP_R_NO_AUTH,
	SMTP_R_NO_EXPN,
	SMTP_R_BDAT_EMPTY_NOT_LAST,
	SMTP_R_SHUTDOWN_PROTOCOL,
	SMTP_R_TLS_GO,
	SMTP_R_TLS_ACTIVE,
	SMTP_R_AUTH_OK,
	SMTP_R_AUTH_BAD_BASE64,
	SMTP_R_AUTH_CANCELLED,
	SMTP_R_AUTH_ALREADY,
	SMTP_R_AUTH_IN_TRANSACTION,
	SMTP_R_AUTH_MECHANISM,
	SMTP_R_AUTH_REQUIRED,
	SMTP_R_STARTTLS_FIRST,
	SMTP_R_AUTH_FAILED,
	SMTP_R_AUTH_NEEDS_TLS,
	SMTP_R_AUTH_TEMPORARY,
	SMTP_R_AUTH_LINE_TOO_LONG,
	SMTP_R_SENDER_NOT_OWNED,
	SMTP_R_FROM_NOT_OWNED,
	SMTP_R_MESSAGE_RATE,
	SMTP_R_RECIPIENT_RATE,
	SMTP_R_COUNT
};

struct smtp_reply {
	int code;
	const char *status; /* enhanced status code, e.g. "5.1.1" */
	const char *text;
	const char *rfc; /* where the reply comes from, for readers of the table */
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id);

/*
 * smtp_reply_format - "CODE STATUS TEXT\r\n" into buf. detail, when not NULL,
 * replaces the table's text. Returns the length written, or 0 if it did not
 * fit (never a cut reply).
 */
size_t smtp_reply_format(char *buf, size_t size, enum smtp_reply_id id, const char *detail);

/* smtp_reply_is_error - 4xx or 5xx. */
bool smtp_reply_is_error(enum smtp_reply_id id);

#endif
