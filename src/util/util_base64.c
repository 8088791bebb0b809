/*
 * util_base64.c - base64 encoding and strict decoding (see util_base64.h).
 *
 * OpenSSL does the arithmetic; this file decides what is acceptable.
 * EVP_DecodeBlock on its own is lenient: it skips white space at both ends
 * and ignores bits that padding leaves unused. So every input is first
 * checked against the strict grammar here, and the last quantum, the only
 * one that may hold padding, is decoded with its '=' replaced by the zero
 * digit, which leaves nothing to OpenSSL's own idea of padding.
 *
 * EVP_*Block take an int length; work is done in chunks well below that.
 */
#include "util/util_base64.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/* Input bytes per EVP_EncodeBlock call; a multiple of 3 so that only the last chunk pads. */
#define BASE64_ENCODE_CHUNK ((size_t)3 * 16384)
/* Characters per EVP_DecodeBlock call; a multiple of 4. */
#define BASE64_DECODE_CHUNK ((size_t)4 * 16384)

size_t base64_encoded_len(size_t n)
{
	size_t quanta = n / 3 + (n % 3 != 0);
	if (quanta > (SIZE_MAX - 1) / 4)
		return SIZE_MAX; /* no buffer is that big, so a size check against it fails */
	return quanta * 4 + 1;
}

size_t base64_encode(const void *in, size_t len, char *out, size_t size)
{
	size_t need = base64_encoded_len(len);
	if (need == SIZE_MAX || size < need)
		return 0;
	const unsigned char *from = in;
	size_t written = 0;
	out[0] = '\0';
	while (len > 0) {
		size_t chunk = len < BASE64_ENCODE_CHUNK ? len : BASE64_ENCODE_CHUNK;
		written += (size_t)EVP_EncodeBlock((unsigned char *)out + written, from, (int)chunk);
		from += chunk;
		len -= chunk;
	}
	return written;
}

/* base64_digit - the 6-bit value of c, or -1 if c is not in the standard alphabet. */
static int base64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * base64_padding - the number of '=' that end in[0..len) (0, 1 or 2), or -1
 * if the text breaks the strict grammar: a length not a multiple of 4, a
 * character outside the alphabet, '=' anywhere but the end, or nonzero bits
 * in the last digit that padding leaves unused (RFC 4648 section 3.5 allows
 * decoders to reject those; accepting them would give one byte string many
 * spellings).
 */
static int base64_padding(const char *in, size_t len)
{
	if (len % 4 != 0)
		return -1;
	int pad = 0;
	if (len > 0 && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - (size_t)pad; i++)
		if (base64_digit(in[i]) < 0)
			return -1;
	if (pad == 2 && (base64_digit(in[len - 3]) & 0x0f) != 0)
		return -1;
	if (pad == 1 && (base64_digit(in[len - 2]) & 0x03) != 0)
		return -1;
	return pad;
}

/* base64_decode_body - whole quanta without padding, already checked; false if OpenSSL disagrees. */
static bool base64_decode_body(const char *in, size_t len, unsigned char *out)
{
	while (len > 0) {
		size_t chunk = len < BASE64_DECODE_CHUNK ? len : BASE64_DECODE_CHUNK;
		if (EVP_DecodeBlock(out, (const unsigned char *)in, (int)chunk) != (int)(chunk / 4 * 3))
			return false;
		in += chunk;
		out += chunk / 4 * 3;
		len -= chunk;
	}
	return true;
}

bool base64_decode(const char *in, size_t len, unsigned char *out, size_t size, size_t *out_len)
{
	int pad = base64_padding(in, len);
	if (pad < 0)
		return false;
	size_t total = len / 4 * 3 - (size_t)pad;
	if (total > size)
		return false;
	*out_len = 0;
	if (len == 0)
		return true;
	if (!base64_decode_body(in, len - 4, out))
		return false;
	char last[4];
	unsigned char bytes[3];
	memcpy(last, in + len - 4, sizeof last);
	for (int i = 0; i < pad; i++)
		last[3 - i] = 'A'; /* the zero digit: the pad bits were checked to be zero */
	if (!base64_decode_body(last, sizeof last, bytes))
		return false;
	memcpy(out + (len / 4 - 1) * 3, bytes, (size_t)(3 - pad));
	*out_len = total;
	return true;
}
