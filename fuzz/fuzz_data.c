/*
 * fuzz_data.c - fuzz target for the DATA/BDAT reader (smtp/smtp_data.c).
 *
 * The input is the bytes a client sends after DATA (or across BDAT chunks).
 * For both modes it is read whole, in random pieces (split points drawn
 * from a hash of the input) and, for short inputs, one byte at a time; all
 * readings must agree. The whole reading is then checked against a naive
 * oracle written from the rules, not from the reader:
 *   - DATA ends exactly after the first CR LF "." CR LF, counting the CR LF
 *     of the DATA command, so at the first "\r\n.\r\n" in "\r\n" + input;
 *   - content is the input before it, a leading dot dropped from each line
 *     (lines end only at CR LF), a final CR held back if the input ends in
 *     one; BDAT content is the input, plus CR LF if it does not end in one;
 *   - faults follow from the content: a CR not before LF, an LF not after
 *     CR, a NUL, a line over 998 octets before its CR LF.
 * Last, dot-stuffing the input and reading it back must give it back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "smtp/smtp_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs up to this size are also read one byte at a time. */
#define BYTEWISE_MAX 2048

struct output {
	char *buf;
	size_t len, cap;
};

struct reading {
	struct output out;
	unsigned faults;
	bool done;
	size_t consumed;
};

static void output_sink(void *ctx, const char *bytes, size_t len)
{
	struct output *out = ctx;

	if (len == 0)
		abort(); /* the reader never makes an empty call */
	if (out->len + len > out->cap) {
		out->cap = (out->len + len) * 2;
		out->buf = realloc(out->buf, out->cap);
		if (out->buf == NULL)
			abort();
	}
	memcpy(out->buf + out->len, bytes, len);
	out->len += len;
}

static void output_put(struct output *out, const char *bytes, size_t len)
{
	if (len > 0)
		output_sink(out, bytes, len);
}

/* next_random - xorshift64: split points, reproducible from the input. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* read_pieces - read in pieces; piece 0 means random sizes from seed. */
static void read_pieces(struct reading *r, enum smtp_data_mode mode, const char *in, size_t len, size_t piece,
                        uint64_t seed)
{
	struct smtp_data_reader reader;
	size_t at = 0;

	r->out.len = 0;
	r->consumed = 0;
	smtp_data_init(&reader, mode);
	while (at < len && !reader.done) {
		size_t n = piece ? piece : 1 + (size_t)(next_random(&seed) % 64);
		size_t used;

		if (n > len - at)
			n = len - at;
		used = smtp_data_feed(&reader, in + at, n, output_sink, &r->out);
		if (used > n || (used < n && !reader.done))
			abort();
		r->consumed += used;
		at += n;
	}
	if (reader.done && smtp_data_feed(&reader, "x", 1, output_sink, &r->out) != 0)
		abort();
	r->faults = mode == SMTP_DATA_BDAT ? smtp_data_finish(&reader, output_sink, &r->out) : reader.faults;
	r->done = reader.done;
	if (reader.content_bytes != r->out.len)
		abort();
}

static void check_same(const struct reading *a, const struct reading *b)
{
	if (a->out.len != b->out.len || (a->out.len && memcmp(a->out.buf, b->out.buf, a->out.len) != 0) ||
	    a->faults != b->faults || a->done != b->done || a->consumed != b->consumed)
		abort();
}

/* find_end - DATA: index in in[] just past the end marker, or 0 if there is none. */
static size_t find_end(const char *in, size_t len)
{
	size_t i;

	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (i = 0; i + 5 <= len; i++) {
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	}
	return 0;
}

/* oracle_content - the content the rules give for in[] (see the top). */
static void oracle_content(struct output *out, enum smtp_data_mode mode, const char *in, size_t len, size_t end)
{
	size_t region = len, i;
	bool at_line_start = true;

	out->len = 0;
	if (mode == SMTP_DATA_BDAT) {
		output_put(out, in, len);
		if (len > 0 && (len < 2 || memcmp(in + len - 2, "\r\n", 2) != 0))
			output_put(out, "\r\n", 2);
		return;
	}
	if (end > 0)
		region = end - 3;
	else if (len > 0 && in[len - 1] == '\r')
		region = len - 1;
	for (i = 0; i < region; i++) {
		if (at_line_start && in[i] == '.') {
			at_line_start = false;
			continue;
		}
		output_put(out, in + i, 1);
		at_line_start = in[i] == '\n' && i > 0 && in[i - 1] == '\r';
	}
}

/* oracle_faults - the faults content shows (a CR last in content is bare). */
static unsigned oracle_faults(const char *c, size_t len)
{
	unsigned faults = 0;
	size_t i, line = 0;

	for (i = 0; i < len; i++) {
		bool crlf_cr = c[i] == '\r' && i + 1 < len && c[i + 1] == '\n';
		bool crlf_lf = c[i] == '\n' && i > 0 && c[i - 1] == '\r';

		if (c[i] == '\r' && !crlf_cr)
			faults |= SMTP_DATA_BARE_CR;
		if (c[i] == '\n' && !crlf_lf)
			faults |= SMTP_DATA_BARE_LF;
		if (c[i] == '\0')
			faults |= SMTP_DATA_NUL;
		if (crlf_lf)
			line = 0;
		else if (!crlf_cr && ++line > SMTP_TEXT_LINE_MAX - 2)
			faults |= SMTP_DATA_LONG_LINE;
	}
	return faults;
}

static void check_oracle(const struct reading *r, enum smtp_data_mode mode, const char *in, size_t len,
                         struct output *want)
{
	size_t end = mode == SMTP_DATA_DOT ? find_end(in, len) : 0;

	oracle_content(want, mode, in, len, end);
	if (want->len != r->out.len || (want->len && memcmp(want->buf, r->out.buf, want->len) != 0))
		abort();
	if (r->faults != oracle_faults(want->buf, want->len))
		abort();
	if (mode == SMTP_DATA_DOT && (r->done != (end > 0) || r->consumed != (end > 0 ? end : len)))
		abort();
	if (mode == SMTP_DATA_BDAT && (!r->done || r->consumed != len))
		abort();
}

/* check_round_trip - stuff in[], add the end marker, read it back: in[] again. */
static void check_round_trip(const char *in, size_t len, uint64_t seed, struct output *wire, struct reading *back)
{
	int state = 1;
	size_t at = 0;
	bool needs_crlf = len > 0 && (len < 2 || memcmp(in + len - 2, "\r\n", 2) != 0);

	wire->len = 0;
	while (at < len) {
		size_t n = 1 + (size_t)(next_random(&seed) % 32);

		if (n > len - at)
			n = len - at;
		smtp_dot_stuff(&state, in + at, n, output_sink, wire);
		at += n;
	}
	smtp_dot_stuff_end(&state, output_sink, wire);
	read_pieces(back, SMTP_DATA_DOT, wire->buf, wire->len, wire->len, 0);
	if (!back->done || back->consumed != wire->len || back->out.len != len + (needs_crlf ? 2 : 0) ||
	    (len && memcmp(back->out.buf, in, len) != 0))
		abort();
}

static uint64_t hash_input(const uint8_t *data, size_t size)
{
	uint64_t h = 14695981039346656037u;
	size_t i;

	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211u;
	return h | 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reading whole, other;
	static struct output want, wire;
	const char *in = (const char *)data;
	uint64_t seed = hash_input(data, size);
	int m;

	for (m = 0; m < 2; m++) {
		enum smtp_data_mode mode = m == 0 ? SMTP_DATA_DOT : SMTP_DATA_BDAT;

		read_pieces(&whole, mode, in, size, size ? size : 1, 0);
		check_oracle(&whole, mode, in, size, &want);
		read_pieces(&other, mode, in, size, 0, seed);
		check_same(&whole, &other);
		if (size <= BYTEWISE_MAX) {
			read_pieces(&other, mode, in, size, 1, 0);
			check_same(&whole, &other);
		}
	}
	check_round_trip(in, size, seed, &wire, &other);
	return 0;
}
