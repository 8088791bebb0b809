/*
 * fuzz_header.c - fuzz target for the header scan (msg/msg_header.c).
 *
 * The input is message content. It is scanned whole, in random pieces and
 * one byte at a time; the counts must not depend on the split, and once the
 * header has ended, more input must change nothing. The count is also
 * checked against a naive one: lines (split at LF) before the first empty
 * line that start with "Received", optional SP/HTAB, then ":".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/msg_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void scan_pieces(struct msg_header_scan *scan, const char *in, size_t len, size_t piece, uint64_t seed)
{
	size_t at = 0;

	msg_header_scan_init(scan);
	while (at < len) {
		size_t n;

		if (piece) {
			n = piece;
		} else {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			n = 1 + (size_t)(seed % 50);
		}
		if (n > len - at)
			n = len - at;
		msg_header_scan_feed(scan, in + at, n);
		at += n;
	}
}

static bool same(const struct msg_header_scan *a, const struct msg_header_scan *b)
{
	return a->received == b->received && a->in_body == b->in_body && a->has_date == b->has_date &&
	       a->has_message_id == b->has_message_id && a->has_from == b->has_from;
}

/* naive_received - Received: fields by the plain reading of the rules. */
static unsigned naive_received(const char *in, size_t len, bool *in_body)
{
	unsigned count = 0;
	size_t at = 0;

	*in_body = false;
	while (at < len) {
		const char *lf = memchr(in + at, '\n', len - at);
		size_t line_len = lf ? (size_t)(lf - (in + at)) : len - at;

		if (lf && line_len == 1 && in[at] == '\r') {
			*in_body = true;
			break;
		}
		if (line_len >= 9 && strncasecmp(in + at, "received", 8) == 0) {
			size_t i = 8;

			while (i < line_len && (in[at + i] == ' ' || in[at + i] == '\t'))
				i++;
			if (i < line_len && in[at + i] == ':')
				count++;
		}
		at += line_len + 1;
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct msg_header_scan whole, other;
	uint64_t seed = 0x9e3779b97f4a7c15u ^ size;
	bool naive_body;
	unsigned naive;

	scan_pieces(&whole, in, size, size ? size : 1, 0);
	scan_pieces(&other, in, size, 0, seed);
	if (!same(&whole, &other))
		abort();
	scan_pieces(&other, in, size, 1, 0);
	if (!same(&whole, &other))
		abort();
	naive = naive_received(in, size, &naive_body);
	if (naive != whole.received || naive_body != whole.in_body)
		abort();
	if (whole.in_body) {
		other = whole;
		msg_header_scan_feed(&other, in, size);
		if (!same(&whole, &other))
			abort();
	}
	return 0;
}
