/*
 * fuzz_msg_address.c - fuzz target for the address lists of From: fields
 * (msg/msg_address.c) and the From: value the header scan keeps
 * (msg/msg_header.c).
 *
 * The input is used twice:
 *   1. as a field value, handed to msg_address_list in a heap buffer of
 *      exactly its length;
 *   2. after "From:", as message content: scanned whole, in random pieces
 *      and one byte at a time, and the From: value it keeps goes to
 *      msg_address_list as the submission check does.
 *
 * Besides the sanitizers' checks, the results must hold together:
 *   - every address handed over is at most MSG_ADDRESS_MAX bytes, and
 *     local_len splits it into a non-empty local part, "@" and a non-empty
 *     domain (the local part may hold "@" itself); *count is the number
 *     of addresses handed over (all of them when the list is accepted);
 *   - a value with CR, LF or NUL is refused;
 *   - a callback that says stop ends the walk and the list is refused;
 *   - an accepted list X gives the same addresses with a comment after it,
 *     and twice over as "X,X";
 *   - the From: value does not depend on how the content is split, and it
 *     is what a plain reading of the lines gives: the rest of every From:
 *     line and its continuation lines before the first empty line, CR LF
 *     left out, fields joined by ",", cut at MSG_FROM_MAX.
 *
 * The plain reading keeps a bare CR where the scan drops every CR (such
 * content is refused anyway), so that one comparison is skipped for input
 * with a bare CR; the split checks are not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/msg_address.h"
#include "msg/msg_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The addresses of one walk, joined by "\n" (which no address can hold). */
struct walk {
	char *joined;
	size_t len, cap;
	size_t calls;
	size_t stop_at; /* 0: never stop */
};

static bool on_address(void *ctx, const char *address, size_t local_len)
{
	struct walk *w = ctx;
	size_t len = strlen(address);

	if (len > MSG_ADDRESS_MAX || local_len == 0 || local_len + 1 >= len || address[local_len] != '@')
		abort();
	w->calls++;
	if (w->len + len + 1 > w->cap) {
		w->cap = (w->len + len + 1) * 2;
		w->joined = realloc(w->joined, w->cap);
		if (w->joined == NULL)
			abort();
	}
	memcpy(w->joined + w->len, address, len);
	w->len += len;
	w->joined[w->len++] = '\n';
	return w->calls != w->stop_at;
}

/* run_list - one walk over value[0..len), copied into a buffer of exactly that size. */
static bool run_list(const char *value, size_t len, struct walk *w)
{
	char *copy = malloc(len ? len : 1);
	size_t count = SIZE_MAX;
	bool ok;

	if (copy == NULL)
		abort();
	memcpy(copy, value, len);
	ok = msg_address_list(copy, len, on_address, w, &count);
	free(copy);
	if (count > w->calls || (ok && count != w->calls))
		abort();
	if (w->stop_at != 0 && w->calls == w->stop_at && ok)
		abort();
	if (w->stop_at != 0 && w->calls > w->stop_at)
		abort();
	return ok;
}

static bool has_byte(const char *s, size_t len, char c)
{
	return memchr(s, c, len) != NULL;
}

static void check_list(const char *value, size_t len)
{
	struct walk w = {0}, again = {0};
	bool ok = run_list(value, len, &w);
	bool controls = has_byte(value, len, '\r') || has_byte(value, len, '\n') || has_byte(value, len, '\0');
	if (controls && ok)
		abort();
	size_t lines = 0;
	for (size_t i = 0; i < w.len; i++)
		lines += w.joined[i] == '\n';
	if (lines != w.calls || (w.len && has_byte(w.joined, w.len, '\r')))
		abort();

	/* the same walk again gives the same */
	if (run_list(value, len, &again) != ok || again.len != w.len ||
	    (w.len && memcmp(again.joined, w.joined, w.len)))
		abort();

	/* stopping at each address in turn */
	for (size_t stop = 1; stop <= w.calls && stop <= 4; stop++) {
		struct walk s = {.stop_at = stop};
		if (run_list(value, len, &s) || s.calls != stop)
			abort();
		free(s.joined);
	}

	if (ok && len < 8192) {
		char *more = malloc(2 * len + 16);
		struct walk m = {0};
		if (more == NULL)
			abort();
		/* a comment after an accepted list changes nothing */
		memcpy(more, value, len);
		memcpy(more + len, " (c)", 4);
		if (!run_list(more, len + 4, &m) || m.len != w.len || (w.len && memcmp(m.joined, w.joined, w.len)))
			abort();
		free(m.joined);
		/* nor does saying it twice, but for the addresses being twice */
		memset(&m, 0, sizeof m);
		more[len] = ',';
		memcpy(more + len + 1, value, len);
		if (!run_list(more, 2 * len + 1, &m) || m.len != 2 * w.len ||
		    (w.len && (memcmp(m.joined, w.joined, w.len) || memcmp(m.joined + w.len, w.joined, w.len))))
			abort();
		free(m.joined);
		free(more);
	}
	free(w.joined);
	free(again.joined);
}

/* ---- the From: value of the header scan ---- */

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
			n = (size_t)(seed % 40); /* empty pieces too */
		}
		if (n > len - at)
			n = len - at;
		msg_header_scan_feed(scan, in + at, n);
		at += n;
	}
}

static bool same_from(const struct msg_header_scan *a, const struct msg_header_scan *b)
{
	return a->has_from == b->has_from && a->from_len == b->from_len && a->from_overflow == b->from_overflow &&
	       memcmp(a->from, b->from, a->from_len) == 0 && a->in_body == b->in_body && a->received == b->received;
}

/* bare_cr - a CR not followed by LF. */
static bool bare_cr(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n'))
			return true;
	return false;
}

/* naive_from - the From: value by the plain reading of the lines (see the top); false when it overflows. */
static bool naive_from(const char *in, size_t len, char *out, size_t *out_len, bool *has_from)
{
	size_t at = 0, n = 0;
	bool in_from = false, overflow = false;

	*has_from = false;
	while (at < len) {
		const char *lf = memchr(in + at, '\n', len - at);
		size_t line_len = lf ? (size_t)(lf - (in + at)) : len - at;
		const char *line = in + at;
		size_t from = 0, end = line_len;

		if (lf && line_len == 1 && line[0] == '\r')
			break;
		if (end > 0 && line[end - 1] == '\r')
			end--;
		if (line_len > 0 && (line[0] == ' ' || line[0] == '\t')) {
			from = in_from ? 0 : end;
		} else {
			in_from = false;
			if (line_len >= 5 && strncasecmp(line, "from", 4) == 0) {
				size_t i = 4;
				while (i < line_len && (line[i] == ' ' || line[i] == '\t'))
					i++;
				if (i < line_len && line[i] == ':') {
					in_from = true;
					from = i + 1;
					if (*has_from) {
						if (n < MSG_FROM_MAX)
							out[n++] = ',';
						else
							overflow = true;
					}
					*has_from = true;
				}
			}
			if (!in_from)
				from = end;
		}
		for (size_t i = from; i < end; i++) {
			if (n < MSG_FROM_MAX)
				out[n++] = line[i];
			else
				overflow = true;
		}
		at += line_len + 1;
	}
	*out_len = n;
	return !overflow;
}

static void check_header(const char *value, size_t value_len)
{
	size_t len = 5 + value_len;
	char *in = malloc(len);
	struct msg_header_scan *whole = malloc(sizeof *whole), *other = malloc(sizeof *other);
	char *naive = malloc(MSG_FROM_MAX + 1);
	uint64_t seed = 0x9e3779b97f4a7c15u ^ len;
	size_t naive_len;
	bool naive_has;

	if (in == NULL || whole == NULL || other == NULL || naive == NULL)
		abort();
	memcpy(in, "From:", 5);
	memcpy(in + 5, value, value_len);
	for (size_t i = 0; i < value_len && i < 8; i++)
		seed = seed * 31 + (unsigned char)value[i];

	scan_pieces(whole, in, len, len, 0);
	if (!whole->has_from || whole->from_len > MSG_FROM_MAX || whole->from[whole->from_len] != '\0')
		abort();
	scan_pieces(other, in, len, 0, seed);
	if (!same_from(whole, other))
		abort();
	scan_pieces(other, in, len, 1, 0);
	if (!same_from(whole, other))
		abort();
	if (!bare_cr(in, len)) {
		bool fits = naive_from(in, len, naive, &naive_len, &naive_has);
		if (fits == whole->from_overflow || naive_has != whole->has_from || naive_len != whole->from_len ||
		    memcmp(naive, whole->from, naive_len) != 0)
			abort();
	}
	/* what the submission check does with it */
	if (!whole->from_overflow)
		check_list(whole->from, whole->from_len);

	free(in);
	free(whole);
	free(other);
	free(naive);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *value = (const char *)data;

	check_list(value, size);
	check_header(value, size);
	return 0;
}
