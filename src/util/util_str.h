/*
 * util_str.h - string helpers that report truncation instead of hiding it.
 *
 * The C library's unbounded copies are banned in tern (scripts/check-banned.sh);
 * these are what to use instead. Every function takes the destination size
 * and returns false when the result did not fit (the output is then still
 * NUL-terminated, cut short).
 */
#ifndef TERN_UTIL_STR_H
#define TERN_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool str_copy(char *dst, size_t size, const char *src);
bool str_copy_n(char *dst, size_t size, const char *src, size_t len);
bool str_format(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* str_fail - a message into err (cut to size) for a function that reports why it failed; returns false. */
bool str_fail(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* str_lower - lower-case ASCII letters in place (bytes >= 0x80 untouched). */
void str_lower(char *s);

/* str_ieq - s[0..len) equals the NUL-terminated word, ignoring ASCII case. */
bool str_ieq(const char *s, size_t len, const char *word);

/* str_to_u64 - s[0..len) is 1..20 decimal digits that fit in uint64_t. */
bool str_to_u64(const char *s, size_t len, uint64_t *out);

/* str_next_token - the next run of bytes not in seps within *s[0..*len) into
 * tok[0..*tok_len), advancing *s and *len past it; false when none is left. */
bool str_next_token(const char **s, size_t *len, const char *seps, const char **tok, size_t *tok_len);

/* str_dup_n - a NUL-terminated heap copy of s[0..len); aborts on no memory. */
char *str_dup_n(const char *s, size_t len);
char *str_dup(const char *s);

/* xmalloc/xcalloc/xrealloc - allocate or abort with a log line: tern does not
 * run on without memory. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t size);

#endif
