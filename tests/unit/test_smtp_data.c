/*
 * test_smtp_data.c - the DATA/BDAT reader and dot-stuffing (smtp/smtp_data.c).
 *
 * Every DATA case is run fed whole, fed one byte at a time and fed in every
 * two-way split; all must give the same content, faults, end and bytes
 * consumed. Smuggling variants (RFC 5321 2.3.8, 4.1.4) have their own rows.
 */
#include <stdlib.h>

#include "smtp/smtp_data.h"
#include "smtp/smtp_limits.h"
#include "unit.h"

/* What a sink collected. */
struct output {
	char *buf;
	size_t len, cap;
	unsigned calls;
};

static void output_sink(void *ctx, const char *bytes, size_t len)
{
	struct output *out = ctx;

	if (out->len + len > out->cap) {
		out->cap = (out->len + len) * 2 + 64;
		out->buf = realloc(out->buf, out->cap);
		if (out->buf == NULL)
			abort();
	}
	memcpy(out->buf + out->len, bytes, len);
	out->len += len;
	out->calls++;
}

/* output_reset - empty, with a buffer (so memcmp never sees NULL). */
static void output_reset(struct output *out)
{
	if (out->buf == NULL) {
		out->cap = 64;
		out->buf = malloc(out->cap);
		if (out->buf == NULL)
			abort();
	}
	out->len = 0;
	out->calls = 0;
}

/* The result of reading one input. */
struct reading {
	struct output out;
	unsigned faults;
	bool done;
	size_t consumed;
};

/*
 * read_split - read in[0..len) in the given mode, in pieces of at most
 * piece bytes after a first piece of first bytes (0: no first piece);
 * BDAT ends with smtp_data_finish.
 */
static void read_split(struct reading *r, enum smtp_data_mode mode, const char *in, size_t len, size_t first,
                       size_t piece)
{
	struct smtp_data_reader reader;
	size_t at = 0;

	output_reset(&r->out);
	r->consumed = 0;
	smtp_data_init(&reader, mode);
	while (at < len) {
		size_t n = at == 0 && first > 0 ? first : piece;
		size_t used;

		if (n > len - at)
			n = len - at;
		used = smtp_data_feed(&reader, in + at, n, output_sink, &r->out);
		r->consumed += used;
		if (reader.done)
			break;
		if (used != n)
			UNIT_FAIL("fed %zu bytes, %zu consumed before the end", n, used);
		at += n;
	}
	r->faults = mode == SMTP_DATA_BDAT ? smtp_data_finish(&reader, output_sink, &r->out) : reader.faults;
	r->done = reader.done;
	if (reader.content_bytes != r->out.len)
		UNIT_FAIL("content_bytes %llu, sink got %zu", (unsigned long long)reader.content_bytes, r->out.len);
}

/* same_reading - b equals a; says which split broke it. */
static void check_same(const struct reading *a, const struct reading *b, const char *name, size_t split)
{
	if (a->out.len != b->out.len || memcmp(a->out.buf, b->out.buf, a->out.len) != 0 || a->faults != b->faults ||
	    a->done != b->done || a->consumed != b->consumed)
		UNIT_FAIL("%s: split at %zu differs (len %zu/%zu faults %u/%u done %d/%d used %zu/%zu)", name, split,
		          a->out.len, b->out.len, a->faults, b->faults, a->done, b->done, a->consumed, b->consumed);
	else
		unit_passed++;
}

/* check_all_splits - one byte at a time and every two-way split agree with whole. */
static void check_all_splits(enum smtp_data_mode mode, const char *name, const char *in, size_t len,
                             const struct reading *whole)
{
	struct reading other = {.faults = 0};
	size_t split;

	read_split(&other, mode, in, len, 0, 1);
	check_same(whole, &other, name, 1);
	for (split = 1; split < len; split++) {
		read_split(&other, mode, in, len, split, len);
		check_same(whole, &other, name, split);
	}
	free(other.out.buf);
}

#define NONE      0
#define BCR       SMTP_DATA_BARE_CR
#define BLF       SMTP_DATA_BARE_LF
#define NUL       SMTP_DATA_NUL
#define LONG      SMTP_DATA_LONG_LINE
#define ALL_INPUT ((size_t)-1)

struct data_case {
	const char *name;
	const char *in;
	size_t in_len;   /* 0: strlen(in) */
	const char *out; /* content, as a C string (NUL cases give out_len) */
	size_t out_len;  /* 0: strlen(out) */
	unsigned faults;
	bool done;
	size_t consumed; /* ALL_INPUT: everything */
};

static const struct data_case dot_cases[] = {
        {"simple", "hello\r\n.\r\n", 0, "hello\r\n", 0, NONE, true, ALL_INPUT},
        {"empty message", ".\r\n", 0, "", 0, NONE, true, ALL_INPUT},
        {"two lines", "a\r\nb\r\n.\r\n", 0, "a\r\nb\r\n", 0, NONE, true, ALL_INPUT},
        {"empty lines", "\r\n\r\n.\r\n", 0, "\r\n\r\n", 0, NONE, true, ALL_INPUT},
        {"stops at the end", "a\r\n.\r\nQUIT\r\n", 0, "a\r\n", 0, NONE, true, 6},
        {"pipelined after empty", ".\r\nMAIL FROM:<>\r\n", 0, "", 0, NONE, true, 3},
        {"unstuff dot line", "..\r\n.\r\n", 0, ".\r\n", 0, NONE, true, ALL_INPUT},
        {"unstuff first line", ".x\r\n.\r\n", 0, "x\r\n", 0, NONE, true, ALL_INPUT},
        {"unstuff double", "...x\r\n.\r\n", 0, "..x\r\n", 0, NONE, true, ALL_INPUT},
        {"unstuff later line", "a\r\n..b\r\n.c\r\n.\r\n", 0, "a\r\n.b\r\nc\r\n", 0, NONE, true, ALL_INPUT},
        {"dot inside a line", "a.b\r\n a.\r\n.\r\n", 0, "a.b\r\n a.\r\n", 0, NONE, true, ALL_INPUT},
        {"dot space line", ". \r\n.\r\n", 0, " \r\n", 0, NONE, true, ALL_INPUT},
        {"unfinished", "a\r\nb", 0, "a\r\nb", 0, NONE, false, ALL_INPUT},
        {"unfinished CR held", "a\r\n.\r", 0, "a\r\n", 0, NONE, false, ALL_INPUT},
        {"unfinished dot", "a\r\n.", 0, "a\r\n", 0, NONE, false, ALL_INPUT},
        {"unfinished CR", "a\r", 0, "a", 0, NONE, false, ALL_INPUT},
        /* SMTP smuggling: none of these ends the content. */
        {"LF.LF", "a\n.\nb\r\n.\r\n", 0, "a\n.\nb\r\n", 0, BLF, true, ALL_INPUT},
        {"LF.CRLF", "a\n.\r\nb\r\n.\r\n", 0, "a\n.\r\nb\r\n", 0, BLF, true, ALL_INPUT},
        {"CR.CRLF", "a\r.\r\nb\r\n.\r\n", 0, "a\r.\r\nb\r\n", 0, BCR, true, ALL_INPUT},
        {"CRLF.LF", "a\r\n.\nb\r\n.\r\n", 0, "a\r\n\nb\r\n", 0, BLF, true, ALL_INPUT},
        {"CRLF.CR", "a\r\n.\rb\r\n.\r\n", 0, "a\r\n\rb\r\n", 0, BCR, true, ALL_INPUT},
        {"CRLF.CR end", "a\r\n.\r", 0, "a\r\n", 0, NONE, false, ALL_INPUT},
        {"CR.CR", "a\r.\rb\r\n.\r\n", 0, "a\r.\rb\r\n", 0, BCR, true, ALL_INPUT},
        {"LF.CR", "a\n.\rb\r\n.\r\n", 0, "a\n.\rb\r\n", 0, BCR | BLF, true, ALL_INPUT},
        {"dot LF first", ".\n", 0, "\n", 0, BLF, false, ALL_INPUT},
        {"dot CR first", ".\rx", 0, "\rx", 0, BCR, false, ALL_INPUT},
        {"LF.LF only", "\n.\n", 0, "\n.\n", 0, BLF, false, ALL_INPUT},
        {"LF.CRLF only", "\n.\r\n", 0, "\n.\r\n", 0, BLF, false, ALL_INPUT},
        {"CR.CRLF only", "\r.\r\n", 0, "\r.\r\n", 0, BCR, false, ALL_INPUT},
        {"CRLF.LF then real end", "x\r\n.\n.\r\n", 0, "x\r\n\n.\r\n", 0, BLF, false, ALL_INPUT},
        {"CR LF in wrong order", "x\n\r.\r\n", 0, "x\n\r.\r\n", 0, BLF | BCR, false, ALL_INPUT},
        {"CRCRLF then end", "a\r\r\n.\r\n", 0, "a\r\r\n", 0, BCR, true, ALL_INPUT},
        {"CRCRLF.CRCRLF", "a\r\r\n.\r\r\nb\r\n.\r\n", 0, "a\r\r\n\r\r\nb\r\n", 0, BCR, true, ALL_INPUT},
        {"bare CR line", "a\r\n\r.\r\n.\r\n", 0, "a\r\n\r.\r\n", 0, BCR, true, ALL_INPUT},
        {"LF at start", "\n.\r\n", 0, "\n.\r\n", 0, BLF, false, ALL_INPUT},
        {"CR at start", "\r.\r\n.\r\n", 0, "\r.\r\n", 0, BCR, true, ALL_INPUT},
        {"LF LF", "a\n\n.\r\n", 0, "a\n\n.\r\n", 0, BLF, false, ALL_INPUT},
        {"NUL", "a\0b\r\n.\r\n", 8, "a\0b\r\n", 5, NUL, true, ALL_INPUT},
        {"NUL line start", "\0\r\n.\r\n", 6, "\0\r\n", 3, NUL, true, ALL_INPUT},
        {"NUL after dot", ".\0\r\n.\r\n", 7, "\0\r\n", 3, NUL, true, ALL_INPUT},
};

static void run_case(enum smtp_data_mode mode, const struct data_case *c)
{
	size_t in_len = c->in_len ? c->in_len : strlen(c->in);
	size_t out_len = c->out_len ? c->out_len : strlen(c->out);
	size_t consumed = c->consumed == ALL_INPUT ? in_len : c->consumed;
	struct reading whole = {.faults = 0};

	read_split(&whole, mode, c->in, in_len, 0, in_len);
	if (whole.out.len != out_len || memcmp(whole.out.buf, c->out, out_len) != 0)
		UNIT_FAIL("%s: got \"%.*s\", want \"%.*s\"", c->name, (int)whole.out.len,
		          whole.out.buf ? whole.out.buf : "", (int)out_len, c->out);
	else
		unit_passed++;
	CHECK_INT(whole.faults, c->faults);
	CHECK_INT(whole.done, c->done);
	CHECK_INT(whole.consumed, consumed);
	check_all_splits(mode, c->name, c->in, in_len, &whole);
	free(whole.out.buf);
}

static void test_dot_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof dot_cases / sizeof dot_cases[0]; i++)
		run_case(SMTP_DATA_DOT, &dot_cases[i]);
}

static const struct data_case bdat_cases[] = {
        {"complete", "abc\r\n", 0, "abc\r\n", 0, NONE, true, ALL_INPUT},
        {"no final CRLF", "abc", 0, "abc\r\n", 0, NONE, true, ALL_INPUT},
        {"empty", "", 0, "", 0, NONE, true, ALL_INPUT},
        {"no dot handling", ".\r\n..x\r\n", 0, ".\r\n..x\r\n", 0, NONE, true, ALL_INPUT},
        {"end marker is content", "a\r\n.\r\nb\r\n", 0, "a\r\n.\r\nb\r\n", 0, NONE, true, ALL_INPUT},
        {"final CR is bare", "abc\r", 0, "abc\r\r\n", 0, BCR, true, ALL_INPUT},
        {"bare CR", "a\rb\r\n", 0, "a\rb\r\n", 0, BCR, true, ALL_INPUT},
        {"bare LF", "a\nb", 0, "a\nb\r\n", 0, BLF, true, ALL_INPUT},
        {"CRCRLF", "a\r\r\n", 0, "a\r\r\n", 0, BCR, true, ALL_INPUT},
        {"NUL", "a\0", 2, "a\0\r\n", 4, NUL, true, ALL_INPUT},
};

static void test_bdat_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof bdat_cases / sizeof bdat_cases[0]; i++)
		run_case(SMTP_DATA_BDAT, &bdat_cases[i]);
}

/* feed_chunks - BDAT: feed each chunk as the session would, then finish. */
static unsigned feed_chunks(const char *const *chunks, size_t n, struct output *out)
{
	struct smtp_data_reader reader;
	size_t i;

	output_reset(out);
	smtp_data_init(&reader, SMTP_DATA_BDAT);
	for (i = 0; i < n; i++) {
		size_t len = strlen(chunks[i]);

		CHECK_INT(smtp_data_feed(&reader, chunks[i], len, output_sink, out), len);
	}
	return smtp_data_finish(&reader, output_sink, out);
}

static void test_bdat_chunks(void)
{
	static const char *const cr_at_end[] = {"abc\r", "\ndef\r\n"};
	static const char *const cr_then_cr[] = {"abc\r", "\r\n"};
	static const char *const cr_then_text[] = {"abc\r", "x\r\n"};
	static const char *const empty_chunk[] = {"abc\r", "", "\n"};
	static const char *const dot_chunk[] = {"a\r\n", ".\r\n"};
	struct output out = {0};

	CHECK_INT(feed_chunks(cr_at_end, 2, &out), NONE);
	CHECK_MEM(out.buf, out.len, "abc\r\ndef\r\n");
	CHECK_INT(feed_chunks(cr_then_cr, 2, &out), BCR);
	CHECK_MEM(out.buf, out.len, "abc\r\r\n");
	CHECK_INT(feed_chunks(cr_then_text, 2, &out), BCR);
	CHECK_MEM(out.buf, out.len, "abc\rx\r\n");
	CHECK_INT(feed_chunks(empty_chunk, 3, &out), NONE);
	CHECK_MEM(out.buf, out.len, "abc\r\n");
	CHECK_INT(feed_chunks(dot_chunk, 2, &out), NONE);
	CHECK_MEM(out.buf, out.len, "a\r\n.\r\n");
	free(out.buf);
}

/* A run never holds half a CR LF: the CR of a split CR LF comes with its LF. */
static void test_no_partial_crlf(void)
{
	struct smtp_data_reader reader;
	struct output out = {0};

	output_reset(&out);
	smtp_data_init(&reader, SMTP_DATA_DOT);
	CHECK_INT(smtp_data_feed(&reader, "abc\r", 4, output_sink, &out), 4);
	CHECK_MEM(out.buf, out.len, "abc");
	CHECK_INT(smtp_data_feed(&reader, "\n", 1, output_sink, &out), 1);
	CHECK_MEM(out.buf, out.len, "abc\r\n");
	CHECK_INT(out.calls, 2);
	free(out.buf);
}

/* line_of - n bytes of 'x', optionally after a leading dot, then CR LF. */
static char *line_of(size_t n, bool dot, const char *tail)
{
	size_t tail_len = strlen(tail), at = 0;
	char *s = malloc(n + 4 + tail_len);

	if (s == NULL)
		abort();
	if (dot)
		s[at++] = '.';
	memset(s + at, 'x', n);
	at += n;
	memcpy(s + at, "\r\n", 2);
	memcpy(s + at + 2, tail, tail_len + 1);
	return s;
}

static unsigned read_faults(enum smtp_data_mode mode, const char *in, size_t len)
{
	struct reading r = {.faults = 0};

	read_split(&r, mode, in, len, 0, len);
	free(r.out.buf);
	return r.faults;
}

static void test_long_lines(void)
{
	/* RFC 5321 4.5.3.1.6: 1000 octets with CR LF, leading stuffing dot not counted. */
	const size_t max_text = SMTP_TEXT_LINE_MAX - 2;
	struct {
		size_t text;
		bool dot;
		unsigned want;
	} rows[] = {
	        {max_text - 1, false, NONE}, {max_text, false, NONE},    {max_text + 1, false, LONG},
	        {max_text, true, NONE},      {max_text + 1, true, LONG}, {5 * max_text, false, LONG},
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *s = line_of(rows[i].text, rows[i].dot, ".\r\n");
		struct reading whole = {.faults = 0};

		read_split(&whole, SMTP_DATA_DOT, s, strlen(s), 0, strlen(s));
		CHECK_INT(whole.faults, rows[i].want);
		CHECK_INT(whole.done, 1);
		CHECK_INT(whole.out.len, rows[i].text + 2);
		check_all_splits(SMTP_DATA_DOT, "long line", s, strlen(s), &whole);
		free(whole.out.buf);
		free(s);
	}
	/* BDAT: the line ended by smtp_data_finish counts too. */
	{
		char *s = line_of(max_text + 1, false, "");

		CHECK_INT(read_faults(SMTP_DATA_BDAT, s, max_text + 1), LONG);
		CHECK_INT(read_faults(SMTP_DATA_BDAT, s, max_text), NONE);
		free(s);
	}
	/* A bare LF does not end a line: the two halves add up. */
	{
		char *s = line_of(max_text, false, ".\r\n");

		s[max_text / 2] = '\n';
		CHECK_INT(read_faults(SMTP_DATA_DOT, s, strlen(s)), BLF);
		free(s);
		s = line_of(max_text + 1, false, ".\r\n");
		s[max_text / 2] = '\n';
		CHECK_INT(read_faults(SMTP_DATA_DOT, s, strlen(s)), BLF | LONG);
		free(s);
	}
	/* Many short lines are not one long line. */
	{
		char *s = malloc(3 * 700 + 4);
		size_t i2;

		if (s == NULL)
			abort();
		for (i2 = 0; i2 < 700; i2++)
			memcpy(s + 3 * i2, "x\r\n", 3);
		memcpy(s + 3 * 700, ".\r\n", 4);
		CHECK_INT(read_faults(SMTP_DATA_DOT, s, strlen(s)), NONE);
		free(s);
	}
}

/* The hot path: a 5 KB message fed whole is one sink call; dot lines add one each. */
static void test_bulk_runs(void)
{
	char msg[6000];
	size_t len = 0, i;
	struct reading r = {.faults = 0};

	for (i = 0; i < 80; i++) {
		memcpy(msg + len, "The quick brown fox jumps over the lazy dog, again and again.\r\n", 63);
		len += 63;
	}
	memcpy(msg + len, ".\r\n", 3);
	len += 3;
	read_split(&r, SMTP_DATA_DOT, msg, len, 0, len);
	CHECK_INT(r.done, 1);
	CHECK_INT(r.out.calls, 1);
	CHECK_INT(r.out.len, len - 3);

	msg[63] = '.'; /* the second line now starts with a dot */
	read_split(&r, SMTP_DATA_DOT, msg, len, 0, len);
	CHECK_INT(r.out.calls, 2);
	CHECK_INT(r.out.len, len - 4);
	CHECK_INT(r.faults, NONE);

	read_split(&r, SMTP_DATA_DOT, msg, len, 0, 1024);
	CHECK(r.out.calls <= 12);
	free(r.out.buf);
}

static void test_done_and_finish(void)
{
	struct smtp_data_reader reader;
	struct output out = {0};

	output_reset(&out);
	smtp_data_init(&reader, SMTP_DATA_DOT);
	CHECK_INT(smtp_data_feed(&reader, "a\r\n.\r\nb", 7, output_sink, &out), 6);
	CHECK(reader.done);
	CHECK_INT(smtp_data_feed(&reader, "b", 1, output_sink, &out), 0);
	/* DATA mode: finish changes nothing. */
	CHECK_INT(smtp_data_finish(&reader, output_sink, &out), 0);
	CHECK_MEM(out.buf, out.len, "a\r\n");
	CHECK_INT(reader.content_bytes, 3);

	/* DATA mode unfinished: finish does not add CR LF either. */
	output_reset(&out);
	smtp_data_init(&reader, SMTP_DATA_DOT);
	smtp_data_feed(&reader, "abc", 3, output_sink, &out);
	CHECK_INT(smtp_data_finish(&reader, output_sink, &out), 0);
	CHECK_MEM(out.buf, out.len, "abc");

	/* BDAT: after finish the reader takes nothing more. */
	output_reset(&out);
	smtp_data_init(&reader, SMTP_DATA_BDAT);
	smtp_data_feed(&reader, "abc", 3, output_sink, &out);
	smtp_data_finish(&reader, output_sink, &out);
	CHECK_INT(smtp_data_feed(&reader, "x", 1, output_sink, &out), 0);
	CHECK_INT(smtp_data_finish(&reader, output_sink, &out), 0);
	CHECK_MEM(out.buf, out.len, "abc\r\n");

	/* A NULL sink only counts. */
	smtp_data_init(&reader, SMTP_DATA_DOT);
	CHECK_INT(smtp_data_feed(&reader, "ab\r\n.\r\n", 7, NULL, NULL), 7);
	CHECK_INT(reader.content_bytes, 4);
	free(out.buf);
}

/* stuff_all - dot-stuff content in pieces of piece bytes, then the end marker. */
static void stuff_all(const char *in, size_t len, size_t piece, struct output *out)
{
	int state = 1;
	size_t at = 0;

	output_reset(out);
	while (at < len) {
		size_t n = len - at < piece ? len - at : piece;

		smtp_dot_stuff(&state, in + at, n, output_sink, out);
		at += n;
	}
	smtp_dot_stuff_end(&state, output_sink, out);
}

static void test_dot_stuff(void)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	        {"", ".\r\n"},
	        {"a\r\n", "a\r\n.\r\n"},
	        {".\r\n", "..\r\n.\r\n"},
	        {"a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"},
	        {"..\r\n", "...\r\n.\r\n"},
	        {"a.b\r\n", "a.b\r\n.\r\n"},
	        {"no end", "no end\r\n.\r\n"},
	        {"a\r\n.", "a\r\n..\r\n.\r\n"},
	        {"a\n.b\r\n", "a\n.b\r\n.\r\n"},
	};
	struct output out = {0};
	size_t i, piece;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (piece = 1; piece <= 8; piece++) {
			stuff_all(rows[i].in, strlen(rows[i].in), piece, &out);
			CHECK_MEM(out.buf, out.len, rows[i].want);
		}
	}
	free(out.buf);
}

/* round_trip - stuff then read back: the original, plus CR LF if it lacked one. */
static void round_trip(const char *in, size_t len)
{
	struct output wire = {0};
	struct reading back = {.faults = 0};
	size_t piece;
	bool needs_crlf = len > 0 && (len < 2 || memcmp(in + len - 2, "\r\n", 2) != 0);

	for (piece = 1; piece <= len + 1; piece += (piece < 4 ? 1 : 7)) {
		stuff_all(in, len, piece, &wire);
		read_split(&back, SMTP_DATA_DOT, wire.buf, wire.len, 0, wire.len);
		CHECK(back.done);
		CHECK_INT(back.consumed, wire.len);
		CHECK_INT(back.out.len, len + (needs_crlf ? 2 : 0));
		if (back.out.len >= len && memcmp(back.out.buf, in, len) == 0)
			unit_passed++;
		else
			UNIT_FAIL("round trip of \"%.*s\" gave \"%.*s\"", (int)len, in, (int)back.out.len,
			          back.out.buf);
	}
	free(wire.buf);
	free(back.out.buf);
}

static void test_round_trip(void)
{
	static const char *const rows[] = {
	        "",
	        "a\r\n",
	        ".\r\n",
	        "..\r\n",
	        "\r\n.\r\n",
	        ".a\r\n.b\r\n..c\r\n",
	        "a\r\n.\r\nb\r\n",
	        "no newline",
	        "a\r\n.",
	        ".",
	        "\r",
	        "a\r",
	        "\n.\n",
	        "a\r\n.\r",
	        "\r\n\r\n.\r\n.\r\n",
	};
	unsigned seed = 12345;
	char buf[200];
	size_t i, j;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		round_trip(rows[i], strlen(rows[i]));
	/* Random content over the bytes that matter. */
	for (i = 0; i < 300; i++) {
		size_t len = i % 40;

		for (j = 0; j < len; j++) {
			seed = seed * 1103515245u + 12345u;
			buf[j] = "\r\n.a"[(seed >> 16) & 3];
		}
		round_trip(buf, len);
	}
}

int main(void)
{
	test_dot_cases();
	test_bdat_cases();
	test_bdat_chunks();
	test_no_partial_crlf();
	test_long_lines();
	test_bulk_runs();
	test_done_and_finish();
	test_dot_stuff();
	test_round_trip();
	return unit_finish("smtp_data");
}
