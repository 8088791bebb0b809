/*
 * util_base64.h - base64 with the standard alphabet and padding (RFC 4648
 * section 4), as SMTP AUTH uses it (RFC 4954 section 4).
 *
 * The decoder is strict: each byte string has exactly one encoding it
 * accepts, so nothing a peer sends decodes "by accident".
 */
#ifndef TERN_UTIL_BASE64_H
#define TERN_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* base64_encoded_len - bytes base64_encode writes for n input bytes, plus the NUL. */
size_t base64_encoded_len(size_t n);

/* base64_encode - standard alphabet with padding; returns length, 0 if out too small
 * (an empty input also gives 0, with out set to ""). */
size_t base64_encode(const void *in, size_t len, char *out, size_t size);

/* base64_decode - strict: standard alphabet, padding required (len % 4 == 0), no whitespace,
 * no characters after padding, unused bits must be zero. false on any violation or if out is
 * too small. "" decodes to 0 bytes. */
bool base64_decode(const char *in, size_t len, unsigned char *out, size_t size, size_t *out_len);

#endif
