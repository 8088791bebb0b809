/*
 * smtp_reply.c - the reply table (see smtp_reply.h).
 *
 * Three outcomes on every mail path: 2xx done, 4xx try again later, 5xx do
 * not. The enhanced codes follow RFC 3463 and the IANA registry of RFC 5248.
 */
#include "smtp/smtp_reply.h"

#include <string.h>

#include "util/util_str.h"

static const struct smtp_reply replies[SMTP_R_COUNT] = {
        [SMTP_R_OK] = {250, "2.0.0", "Ok", "RFC 5321 4.2.2"},
        [SMTP_R_MAIL_OK] = {250, "2.1.0", "Sender ok", "RFC 3463 3.2 (X.1.0)"},
        [SMTP_R_RCPT_OK] = {250, "2.1.5", "Recipient ok", "RFC 3463 3.2 (X.1.5)"},
        [SMTP_R_DATA_GO] = {354, NULL, "End data with <CR><LF>.<CR><LF>", "RFC 5321 4.1.1.4"},
        [SMTP_R_VRFY] = {252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery",
                         "RFC 5321 3.5.3, 7.3 (no user enumeration)"},
        [SMTP_R_HELP] = {214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT; see RFC 5321",
                         "RFC 5321 4.1.1.8"},
        [SMTP_R_BYE] = {221, "2.0.0", "Bye", "RFC 5321 4.1.1.10"},
        [SMTP_R_NEED_HELO] = {503, "5.5.1", "Send HELO or EHLO first", "RFC 5321 4.1.4"},
        [SMTP_R_NESTED_MAIL] = {503, "5.5.1", "Sender already given", "RFC 5321 4.1.4"},
        [SMTP_R_NEED_MAIL] = {503, "5.5.1", "Need MAIL command", "RFC 5321 4.1.4"},
        [SMTP_R_NEED_RCPT] = {503, "5.5.1", "Need RCPT command", "RFC 5321 4.1.4"},
        [SMTP_R_NO_VALID_RCPT] = {554, "5.5.1", "No valid recipients", "RFC 5321 3.3"},
        [SMTP_R_DATA_AFTER_BDAT] = {503, "5.5.1", "DATA cannot follow BDAT in one transaction", "RFC 3030 3"},
        [SMTP_R_UNKNOWN_COMMAND] = {500, "5.5.1", "Command unrecognized", "RFC 5321 4.2.4"},
        [SMTP_R_LINE_TOO_LONG] = {500, "5.5.2", "Line too long", "RFC 5321 4.5.3.1.4"},
        [SMTP_R_BARE_EOL_COMMAND] = {500, "5.5.2", "Bare CR or LF in command; lines end with CRLF", "RFC 5321 2.3.8"},
        [SMTP_R_NUL_COMMAND] = {500, "5.5.2", "NUL byte in command", "RFC 5321 4.1.1"},
        [SMTP_R_SYNTAX] = {501, "5.5.4", "Syntax error in parameters or arguments", "RFC 5321 4.2.2"},
        [SMTP_R_BAD_SENDER] = {501, "5.1.7", "Bad sender address syntax", "RFC 3463 3.2 (X.1.7)"},
        [SMTP_R_BAD_RCPT] = {501, "5.1.3", "Bad recipient address syntax", "RFC 3463 3.2 (X.1.3)"},
        [SMTP_R_PATH_TOO_LONG] = {501, "5.5.4", "Address too long", "RFC 5321 4.5.3.1"},
        [SMTP_R_PARAM_UNKNOWN] = {555, "5.5.4", "Unsupported MAIL or RCPT parameter", "RFC 5321 4.1.1.11"},
        [SMTP_R_PARAM_BAD] = {501, "5.5.4", "Bad parameter value", "RFC 5321 4.1.1.11"},
        [SMTP_R_PARAM_AFTER_HELO] = {555, "5.5.4", "Parameters need EHLO", "RFC 5321 4.1.1.11"},
        [SMTP_R_SIZE_EXCEEDED] = {552, "5.3.4", "Message size exceeds fixed maximum message size", "RFC 1870 6.1"},
        [SMTP_R_TOO_MANY_RCPTS] = {452, "4.5.3", "Too many recipients", "RFC 5321 4.5.3.1.10"},
        [SMTP_R_USER_UNKNOWN] = {550, "5.1.1", "User unknown", "RFC 3463 3.2 (X.1.1)"},
        [SMTP_R_RELAY_DENIED] = {554, "5.7.1", "Relay access denied", "RFC 5321 3.6.2"},
        [SMTP_R_UTF8_NEEDED] = {553, "5.6.7", "Non-ASCII address needs SMTPUTF8", "RFC 6531 3.5"},
        [SMTP_R_CONTENT_BARE_EOL] = {550, "5.6.0", "Message contains bare CR or LF; lines end with CRLF",
                                     "RFC 5321 2.3.8"},
        [SMTP_R_CONTENT_NUL] = {550, "5.6.0", "Message contains NUL bytes", "RFC 5321 4.5.2"},
        [SMTP_R_CONTENT_LONG_LINE] = {550, "5.6.0", "Message has a line over 1000 octets", "RFC 5321 4.5.3.1.6"},
        [SMTP_R_LOOP] = {554, "5.4.6", "Too many hops, mail loop", "RFC 5321 6.3"},
        [SMTP_R_PIPELINING] = {554, "5.5.0", "Commands sent past a synchronization point", "RFC 2920 3.1"},
        [SMTP_R_TOO_MANY_ERRORS] = {421, "4.7.0", "Too many errors, closing connection", "RFC 5321 3.8"},
        [SMTP_R_TIMEOUT] = {421, "4.4.2", "Timeout, closing connection", "RFC 5321 4.5.3.2"},
        [SMTP_R_SHUTDOWN] = {421, "4.3.2", "Service shutting down", "RFC 5321 3.8"},
        [SMTP_R_TOO_MANY_CONNECTIONS] = {421, "4.7.0", "Too many connections, try again later", "RFC 5321 3.8"},
        [SMTP_R_TOO_MANY_FROM_ADDRESS] = {421, "4.7.0", "Too many connections from your address", "RFC 5321 3.8"},
        [SMTP_R_LOCAL_ERROR] = {451, "4.3.0", "Local error, try again later", "RFC 5321 4.2.3"},
        [SMTP_R_NO_STORAGE] = {452, "4.3.1", "Insufficient system storage, try again later",
                               "RFC 5321 4.2.2 (452), RFC 3463 3.4 (X.3.1 mail system full)"},
        [SMTP_R_NO_TLS] = {454, "4.7.0", "TLS not available", "RFC 3207 4"},
        [SMTP_R_NO_AUTH] = {503, "5.5.1", "Authentication not enabled", "RFC 4954 4"},
        [SMTP_R_NO_EXPN] = {502, "5.5.1", "EXPN not available", "RFC 5321 3.5.2, 7.3"},
        [SMTP_R_BDAT_EMPTY_NOT_LAST] = {501, "5.5.4", "BDAT 0 must be LAST", "RFC 3030 2"},
        [SMTP_R_SHUTDOWN_PROTOCOL] = {421, "4.5.0", "Cannot tell where the chunk ends, closing connection",
                                      "RFC 5321 3.8"},
        [SMTP_R_TLS_GO] = {220, "2.0.0", "Ready to start TLS", "RFC 3207 4"},
        [SMTP_R_TLS_ACTIVE] = {503, "5.5.1", "TLS already active", "RFC 3207 4.2"},
        [SMTP_R_AUTH_OK] = {235, "2.7.0", "Authentication successful", "RFC 4954 6"},
        [SMTP_R_AUTH_BAD_BASE64] = {501, "5.5.2", "Cannot decode the response", "RFC 4954 4"},
        [SMTP_R_AUTH_CANCELLED] = {501, "5.0.0", "Authentication cancelled", "RFC 4954 4"},
        [SMTP_R_AUTH_ALREADY] = {503, "5.5.1", "Already authenticated", "RFC 4954 4"},
        [SMTP_R_AUTH_IN_TRANSACTION] = {503, "5.5.1", "AUTH is not allowed during a mail transaction", "RFC 4954 4"},
        [SMTP_R_AUTH_MECHANISM] = {504, "5.5.4", "Unrecognized authentication mechanism", "RFC 4954 6"},
        [SMTP_R_AUTH_REQUIRED] = {530, "5.7.0", "Authentication required", "RFC 4954 6"},
        [SMTP_R_STARTTLS_FIRST] = {530, "5.7.0", "Must issue a STARTTLS command first", "RFC 3207 4"},
        [SMTP_R_AUTH_FAILED] = {535, "5.7.8", "Authentication credentials invalid", "RFC 4954 6"},
        [SMTP_R_AUTH_NEEDS_TLS] = {538, "5.7.11", "Encryption required for requested authentication mechanism",
                                   "RFC 4954 6"},
        [SMTP_R_AUTH_TEMPORARY] = {454, "4.7.0", "Temporary authentication failure", "RFC 4954 6"},
        [SMTP_R_AUTH_LINE_TOO_LONG] = {500, "5.5.6", "Authentication exchange line is too long", "RFC 4954 6"},
        [SMTP_R_SENDER_NOT_OWNED] = {553, "5.7.1", "Sender address not owned by the authenticated user",
                                     "RFC 6409 6.1"},
        [SMTP_R_FROM_NOT_OWNED] = {550, "5.7.1", "From: header address not owned by the authenticated user",
                                   "RFC 6409 8.1"},
        [SMTP_R_MESSAGE_RATE] = {450, "4.7.1", "Message rate limit exceeded, try again later", "RFC 3463 3.8"},
        [SMTP_R_RECIPIENT_RATE] = {452, "4.7.1", "Recipient rate limit exceeded, try again later", "RFC 3463 3.8"},
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id)
{
	return &replies[id];
}

size_t smtp_reply_format(char *buf, size_t size, enum smtp_reply_id id, const char *detail)
{
	const struct smtp_reply *r = &replies[id];
	const char *text = detail ? detail : r->text;
	bool ok = r->status ? str_format(buf, size, "%d %s %s\r\n", r->code, r->status, text)
	                    : str_format(buf, size, "%d %s\r\n", r->code, text);
	return ok ? strlen(buf) : 0;
}

bool smtp_reply_is_error(enum smtp_reply_id id)
{
	return replies[id].code >= 400;
}
