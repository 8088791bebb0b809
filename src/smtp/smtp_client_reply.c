/*
 * smtp_client_reply.c - reply lines and EHLO keywords for the SMTP client
 * (see smtp_client_reply.h).
 *
 * Strict where it matters for safety (the code, the separator, lines that
 * disagree, how many lines) and lenient where real servers differ (text
 * that is empty or holds anything; keywords in any case, RFC 5321 2.4).
 */
#include "smtp/smtp_client_reply.h"

#include <string.h>
#include <strings.h>

void smtp_client_reply_init(struct smtp_client_reply *reply)
{
	memset(reply, 0, sizeof *reply);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

enum smtp_client_line smtp_client_reply_line(struct smtp_client_reply *reply, const char *line, size_t len,
                                             const char **text, size_t *text_len)
{
	*text = line + len;
	*text_len = 0;
	if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) || !is_digit(line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-'))
		return SMTP_LINE_MALFORMED;
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (reply->lines > 0 && code != reply->code)
		return SMTP_LINE_MISMATCH;
	if (reply->lines >= SMTP_CLIENT_REPLY_LINES)
		return SMTP_LINE_TOO_MANY;
	reply->code = code;
	if (len > 4) {
		*text = line + 4;
		*text_len = len - 4;
	}
	if (reply->lines == 0) {
		size_t n = *text_len < SMTP_CLIENT_REPLY_TEXT ? *text_len : SMTP_CLIENT_REPLY_TEXT;
		memcpy(reply->text, *text, n);
		reply->text[n] = '\0';
	}
	reply->lines++;
	return len == 3 || line[3] == ' ' ? SMTP_LINE_LAST : SMTP_LINE_MORE;
}

/* keyword_is - text starts with the keyword kw, followed by its end or a space. */
static bool keyword_is(const char *text, size_t len, const char *kw)
{
	size_t n = strlen(kw);
	return len >= n && strncasecmp(text, kw, n) == 0 && (len == n || text[n] == ' ');
}

/* size_value - SIZE's parameter: decimal digits that fit in 64 bits, else 0. */
static uint64_t size_value(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return 0;
	for (; i < len && is_digit(s[i]); i++) {
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return i == len ? v : 0;
}

/* auth_mechanisms - the words after AUTH: the mechanisms the client can use. */
static void auth_mechanisms(struct smtp_ehlo *ehlo, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		size_t start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (i - start == 5 && strncasecmp(s + start, "PLAIN", 5) == 0)
			ehlo->auth_plain = true;
		else if (i - start == 5 && strncasecmp(s + start, "LOGIN", 5) == 0)
			ehlo->auth_login = true;
	}
}

void smtp_ehlo_keyword(struct smtp_ehlo *ehlo, const char *text, size_t len)
{
	if (keyword_is(text, len, "STARTTLS"))
		ehlo->starttls = true;
	else if (keyword_is(text, len, "PIPELINING"))
		ehlo->pipelining = true;
	else if (keyword_is(text, len, "8BITMIME"))
		ehlo->eightbitmime = true;
	else if (keyword_is(text, len, "SMTPUTF8"))
		ehlo->smtputf8 = true;
	else if (keyword_is(text, len, "DSN"))
		ehlo->dsn = true;
	else if (keyword_is(text, len, "CHUNKING"))
		ehlo->chunking = true;
	else if (keyword_is(text, len, "AUTH"))
		auth_mechanisms(ehlo, text + 4, len - 4);
	else if (keyword_is(text, len, "SIZE")) {
		ehlo->size_offered = true;
		ehlo->size = size_value(text + 4, len - 4);
	}
}
