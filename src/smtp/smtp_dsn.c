/*
 * smtp_dsn.c - RFC 3461 parameter values (see smtp_dsn.h).
 */
#include "smtp/smtp_dsn.h"

#include <string.h>
#include <strings.h>

static bool is_hex_upper(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

bool smtp_xtext_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			if (i + 2 >= len || !is_hex_upper(s[i + 1]) || !is_hex_upper(s[i + 2]))
				return false;
			i += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			return false;
		}
	}
	return true;
}

static bool word_is(const char *v, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

bool smtp_dsn_ret(const char *v, size_t len, bool *headers_only)
{
	if (word_is(v, len, "FULL"))
		*headers_only = false;
	else if (word_is(v, len, "HDRS"))
		*headers_only = true;
	else
		return false;
	return true;
}

bool smtp_dsn_envid(const char *v, size_t len)
{
	return len > 0 && len <= SMTP_ENVID_MAX && smtp_xtext_valid(v, len);
}

bool smtp_dsn_notify(const char *v, size_t len, unsigned *bits)
{
	*bits = 0;
	if (word_is(v, len, "NEVER")) {
		*bits = SMTP_NOTIFY_NEVER;
		return true;
	}
	size_t at = 0;
	while (at <= len) {
		const char *comma = memchr(v + at, ',', len - at);
		size_t n = comma ? (size_t)(comma - (v + at)) : len - at;
		unsigned bit = word_is(v + at, n, "SUCCESS")   ? SMTP_NOTIFY_SUCCESS
		               : word_is(v + at, n, "FAILURE") ? SMTP_NOTIFY_FAILURE
		               : word_is(v + at, n, "DELAY")   ? SMTP_NOTIFY_DELAY
		                                               : 0;
		if (bit == 0 || (*bits & bit))
			return false;
		*bits |= bit;
		if (!comma)
			return true;
		at += n + 1;
	}
	return false;
}

bool smtp_dsn_orcpt(const char *v, size_t len)
{
	if (len == 0 || len > SMTP_ORCPT_MAX)
		return false;
	const char *semi = memchr(v, ';', len);
	if (!semi || semi == v)
		return false;
	for (const char *p = v; p < semi; p++) {
		char c = *p;
		bool atom = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
		if (!atom)
			return false;
	}
	size_t rest = len - (size_t)(semi + 1 - v);
	return rest > 0 && smtp_xtext_valid(semi + 1, rest);
}
