/*
 * util_str.c - bounded string helpers (see util_str.h).
 *
 * Invariant: every output is NUL-terminated when size > 0, and a false
 * return always means "cut short", so callers can refuse instead of using a
 * silently truncated value.
 */
#include "util/util_str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util_log.h"

bool str_copy_n(char *dst, size_t size, const char *src, size_t len)
{
	if (size == 0)
		return false;
	bool fits = len < size;
	size_t n = fits ? len : size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

bool str_copy(char *dst, size_t size, const char *src)
{
	return str_copy_n(dst, size, src, strlen(src));
}

bool str_format(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < size;
}

bool str_fail(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return false;
}

void str_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool str_ieq(const char *s, size_t len, const char *word)
{
	size_t i;
	for (i = 0; i < len; i++)
		if (word[i] == '\0' || ascii_lower(s[i]) != ascii_lower(word[i]))
			return false;
	return word[i] == '\0';
}

bool str_to_u64(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t digit = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	*out = v;
	return true;
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		fatal("out of memory allocating %zu bytes", size);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		fatal("out of memory allocating %zu x %zu bytes", count, size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q)
		fatal("out of memory reallocating %zu bytes", size);
	return q;
}

char *str_dup_n(const char *s, size_t len)
{
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *str_dup(const char *s)
{
	return str_dup_n(s, strlen(s));
}

bool str_next_token(const char **s, size_t *len, const char *seps, const char **tok, size_t *tok_len)
{
	while (*len > 0 && strchr(seps, **s) != NULL) {
		(*s)++;
		(*len)--;
	}
	if (*len == 0)
		return false;
	*tok = *s;
	while (*len > 0 && strchr(seps, **s) == NULL) {
		(*s)++;
		(*len)--;
	}
	*tok_len = (size_t)(*s - *tok);
	return true;
}
