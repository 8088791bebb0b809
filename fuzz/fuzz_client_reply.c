/*
 * fuzz_client_reply.c - the SMTP client's reply reader (smtp_client_reply.c):
 * the input, split at LF, is fed as the lines of replies from a peer.
 *
 * Checked on every line: the text handed back lies inside the line; a
 * complete reply has a code in 200..599 and its kept text is a NUL-terminated
 * prefix of its first line's text; a reply never holds more lines than the
 * limit; EHLO keywords never read past their text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_client_reply reply;
	struct smtp_ehlo ehlo;
	memset(&ehlo, 0, sizeof ehlo);
	smtp_client_reply_init(&reply);
	size_t at = 0;
	while (at < size) {
		const uint8_t *lf = memchr(data + at, '\n', size - at);
		size_t len = lf ? (size_t)(lf - (data + at)) : size - at;
		/* An exact-size copy, so that reading past the line is caught. */
		char *line = malloc(len ? len : 1);
		if (!line)
			abort();
		memcpy(line, data + at, len);
		const char *text;
		size_t text_len;
		enum smtp_client_line kind = smtp_client_reply_line(&reply, line, len, &text, &text_len);
		if (text < line || text + text_len > line + len)
			abort();
		if (kind == SMTP_LINE_MORE || kind == SMTP_LINE_LAST) {
			if (reply.code < 200 || reply.code > 599 || reply.lines > SMTP_CLIENT_REPLY_LINES)
				abort();
			if (strlen(reply.text) > SMTP_CLIENT_REPLY_TEXT)
				abort();
			smtp_ehlo_keyword(&ehlo, text, text_len);
		}
		if (kind != SMTP_LINE_MORE)
			smtp_client_reply_init(&reply);
		free(line);
		at += len + 1;
	}
	return 0;
}
