/*
 * fuzz_msg_7bit.c - fuzz target for the 8-bit to 7-bit conversion
 * (msg/msg_7bit.c).
 *
 * The input is a message. Besides the sanitizers' checks:
 *   - the input's bytes do not change, and what out held before stays;
 *   - on success the output is 7bit data (RFC 2045 2.7): no byte >= 0x80,
 *     no NUL, CR and LF only together, no line over 998 octets; converting
 *     it again gives it back unchanged;
 *   - an input that already is 7bit data comes back byte for byte;
 *   - on failure nothing is written and the reason starts "5.6.3 " (or
 *     "4.3.0 ") and fits MSG_7BIT_WHY_SIZE;
 *   - a clean non-MIME message (no "content-" or "mime-version" anywhere in
 *     its header) with a body that is not 7bit data always converts: its
 *     header gains exactly the MIME fields, and its body is quoted-printable
 *     with lines of at most 76 characters that decodes to the original body;
 *   - converting twice gives the same result.
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg_7bit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* seven_bit - s[0..len) is 7bit data; *longest: its longest line. */
static bool seven_bit(const char *s, size_t len, size_t *longest)
{
	size_t line = 0;
	bool clean = true;

	*longest = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\r' && i + 1 < len && s[i + 1] == '\n') {
			i++;
			line = 0;
			continue;
		}
		if (ch >= 0x80 || ch == '\0' || ch == '\r' || ch == '\n')
			clean = false;
		if (++line > *longest)
			*longest = line;
	}
	return clean && *longest <= 998;
}

static bool has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

static bool contains_nocase(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= len; i++) {
		size_t k = 0;

		while (k < n && (s[i + k] | 0x20) == word[k])
			k++;
		if (k == n)
			return true;
	}
	return false;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* qp_decodes_to - s[0..len) is strict quoted-printable for want[0..want_len). */
static bool qp_decodes_to(const char *s, size_t len, const char *want, size_t want_len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if ((ch == ' ' || ch == '\t') && (i + 1 == len || s[i + 1] == '\r'))
			return false;
		if (ch == '=') {
			if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') {
				i += 2;
				continue;
			}
			int hi = i + 2 < len ? hexval(s[i + 1]) : -1, lo = i + 2 < len ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || n >= want_len || (unsigned char)want[n++] != (unsigned)(hi * 16 + lo))
				return false;
			i += 2;
		} else if (ch == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n' || n + 2 > want_len || want[n] != '\r' ||
			    want[n + 1] != '\n')
				return false;
			n += 2;
			i++;
		} else {
			if (n >= want_len || want[n++] != ch)
				return false;
		}
	}
	return n == want_len;
}

/* check_non_mime - the promise for a clean non-MIME header over a body that needs encoding. */
static void check_non_mime(const char *in, size_t size, bool ok, const char *out, size_t out_len)
{
	const char *blank;
	size_t head_len, body_at, longest, want_len;
	char want[200];

	if (size >= 2 && in[0] == '\r' && in[1] == '\n') {
		head_len = 0;
		body_at = 2;
	} else if ((blank = memmem(in, size, "\r\n\r\n", 4)) != NULL) {
		head_len = (size_t)(blank - in) + 2;
		body_at = head_len + 2;
	} else {
		return;
	}
	if (!seven_bit(in, head_len, &longest) || seven_bit(in + body_at, size - body_at, &longest) ||
	    contains_nocase(in, head_len, "content-") || contains_nocase(in, head_len, "mime-version"))
		return;
	if (!ok || out_len < head_len || memcmp(out, in, head_len) != 0)
		abort();
	want_len = (size_t)snprintf(
	        want, sizeof want, "MIME-Version: 1.0\r\n%sContent-Transfer-Encoding: quoted-printable\r\n\r\n",
	        has_8bit(in + body_at, size - body_at) ? "Content-Type: text/plain; charset=unknown-8bit\r\n" : "");
	if (out_len < head_len + want_len || memcmp(out + head_len, want, want_len) != 0)
		abort();
	out += head_len + want_len;
	out_len -= head_len + want_len;
	(void)seven_bit(out, out_len, &longest);
	if (longest > 76)
		abort();
	if (!qp_decodes_to(out, out_len, in + body_at, size - body_at))
		abort();
}

/* run - convert in[0..size); the output (without the prefix) in a heap copy. */
static bool run(const char *in, size_t size, char **out, size_t *out_len, char *why)
{
	struct evbuffer *ein = evbuffer_new(), *eout = evbuffer_new();
	char prefix;
	bool ok;

	if (ein == NULL || eout == NULL || evbuffer_add(ein, in, size) != 0 || evbuffer_add(eout, "P", 1) != 0)
		abort();
	ok = msg_to_7bit(ein, eout, why, MSG_7BIT_WHY_SIZE);
	if (evbuffer_get_length(ein) != size || (size > 0 && memcmp(evbuffer_pullup(ein, -1), in, size) != 0))
		abort();
	if (evbuffer_remove(eout, &prefix, 1) != 1 || prefix != 'P')
		abort();
	*out_len = evbuffer_get_length(eout);
	*out = malloc(*out_len + 1);
	if (*out == NULL)
		abort();
	evbuffer_remove(eout, *out, *out_len);
	evbuffer_free(ein);
	evbuffer_free(eout);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char why[MSG_7BIT_WHY_SIZE], why2[MSG_7BIT_WHY_SIZE];
	char *out, *again;
	size_t out_len, again_len, longest;
	bool ok, ok2;

	ok = run(in, size, &out, &out_len, why);
	if (ok) {
		if (!seven_bit(out, out_len, &longest))
			abort();
		if (seven_bit(in, size, &longest) && (out_len != size || memcmp(out, in, size) != 0))
			abort();
		/* 7bit data comes back as it is */
		ok2 = run(out, out_len, &again, &again_len, why2);
		if (!ok2 || again_len != out_len || memcmp(again, out, out_len) != 0)
			abort();
		free(again);
	} else {
		size_t n = strlen(why);

		if (out_len != 0 || (strncmp(why, "5.6.3 ", 6) != 0 && strncmp(why, "4.3.0 ", 6) != 0) ||
		    n >= MSG_7BIT_WHY_SIZE - 1)
			abort();
	}
	check_non_mime(in, size, ok, out, out_len);
	/* the same again */
	ok2 = run(in, size, &again, &again_len, why2);
	if (ok2 != ok || again_len != out_len || memcmp(again, out, out_len) != 0 || (!ok && strcmp(why, why2) != 0))
		abort();
	free(again);
	free(out);
	return 0;
}
