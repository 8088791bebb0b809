/*
 * smtp_data.c - message content framing for DATA and BDAT (RFC 5321 4.1.4,
 * 4.5.2, 2.3.8; RFC 3030 2), and dot-stuffing for the client side.
 *
 * The reader is a state machine whose whole state is struct
 * smtp_data_reader, so any split of the input gives the same content, the
 * same faults and the same end. It runs on every byte of every message, so
 * the common case is bulk work: memchr finds the next LF, the bytes before
 * it are checked with memchr for CR and NUL, and whole runs of lines go to
 * the sink in one call. A run is broken only where a byte must be dropped
 * (a leading dot, RFC 5321 4.5.2), where the input ends, or at the end
 * marker; a message without dot lines fed in one piece is one sink call.
 *
 * Line ends: only CR LF ends a line (RFC 5321 2.3.8). A CR not followed by
 * LF, or an LF not preceded by CR, is content: it is passed on as it is, it
 * is flagged (SMTP_DATA_BARE_CR / SMTP_DATA_BARE_LF), and it never counts as
 * a line end, so "\n.\n", "\n.\r\n", "\r.\r\n" and ".\n" cannot end the
 * content (SMTP smuggling). The end marker is CR LF "." CR LF, the CR LF of
 * the DATA command line counting as the first one, so reading starts at the
 * beginning of a line. A CR at the end of the input is held back (state
 * DATA_CR / DATA_DOT_CR) until the next byte says what it is, so no run
 * ever holds half of a CR LF.
 *
 * Limits: a line over SMTP_TEXT_LINE_MAX octets with its CR LF, not counting
 * a stuffing dot (RFC 5321 4.5.3.1.6), sets SMTP_DATA_LONG_LINE. line_len is
 * capped just past that limit, so it cannot overflow.
 *
 * Failure: none here; faults are bits the session turns into a refusal
 * once the content has been read to its end.
 */
#include "smtp/smtp_data.h"

#include <string.h>

#include "smtp/smtp_limits.h"

enum data_state {
	DATA_BOL = 0, /* at the start of a line: a dot here matters (DATA) */
	DATA_MID,     /* inside a line */
	DATA_CR,      /* a CR is held back: a LF makes it a line end */
	DATA_DOT,     /* DATA: a line began with a dot, which was dropped */
	DATA_DOT_CR,  /* DATA: "." CR at the start of a line, CR held back */
	DATA_END,     /* the content is complete */
};

/* Content octets a line may hold before its CR LF (RFC 5321 4.5.3.1.6). */
#define LINE_TEXT_MAX (SMTP_TEXT_LINE_MAX - 2)

static const char crlf[] = "\r\n";

/* emit - pass content to the sink and count it. */
static void emit(struct smtp_data_reader *reader, const char *bytes, size_t len, smtp_data_sink *sink, void *ctx)
{
	if (len == 0)
		return;
	reader->content_bytes += len;
	if (sink != NULL)
		sink(ctx, bytes, len);
}

/* add_line_octets - count content octets on the current line, flag a long one. */
static void add_line_octets(struct smtp_data_reader *reader, size_t n)
{
	if (n > LINE_TEXT_MAX + 1 - reader->line_len)
		reader->line_len = LINE_TEXT_MAX + 1;
	else
		reader->line_len += n;
	if (reader->line_len > LINE_TEXT_MAX)
		reader->faults |= SMTP_DATA_LONG_LINE;
}

/*
 * note_line_text - bytes inside one line that hold no LF: any CR among them
 * is bare (the CR of a CR LF is never passed here), and NUL is flagged
 * (RFC 5321 4.5.2 leaves NUL out of text). Each check is skipped once its
 * fault is known, which keeps a bad message cheap too.
 */
static void note_line_text(struct smtp_data_reader *reader, const char *text, size_t len)
{
	if (len == 0)
		return;
	if (!(reader->faults & SMTP_DATA_BARE_CR) && memchr(text, '\r', len) != NULL)
		reader->faults |= SMTP_DATA_BARE_CR;
	if (!(reader->faults & SMTP_DATA_NUL) && memchr(text, '\0', len) != NULL)
		reader->faults |= SMTP_DATA_NUL;
	add_line_octets(reader, len);
}

/* bare_cr - a held-back CR turned out not to start a CR LF: it is content. */
static void bare_cr(struct smtp_data_reader *reader, smtp_data_sink *sink, void *ctx)
{
	emit(reader, crlf, 1, sink, ctx);
	reader->faults |= SMTP_DATA_BARE_CR;
	add_line_octets(reader, 1);
	reader->state = DATA_MID;
}

/* scan_tail - the rest of the input holds no LF: pass it on, holding back a final CR. */
static size_t scan_tail(struct smtp_data_reader *reader, const char *in, size_t run_start, size_t i, size_t len,
                        smtp_data_sink *sink, void *ctx)
{
	size_t end = len;

	reader->state = DATA_MID;
	if (in[len - 1] == '\r') {
		end = len - 1;
		reader->state = DATA_CR;
	}
	note_line_text(reader, in + i, end - i);
	emit(reader, in + run_start, end - run_start, sink, ctx);
	return len;
}

/*
 * scan_lines - the fast path, from in[i] inside a line (i < len): pass
 * whole lines on as one run until a line starts with a dot (DATA), a CR
 * ends the input, or the input ends. Returns where the next step starts.
 */
static size_t scan_lines(struct smtp_data_reader *reader, const char *in, size_t i, size_t len, smtp_data_sink *sink,
                         void *ctx)
{
	size_t run_start = i;

	while (i < len) {
		const char *lf = memchr(in + i, '\n', len - i);
		size_t lf_at;

		if (lf == NULL)
			return scan_tail(reader, in, run_start, i, len, sink, ctx);
		lf_at = (size_t)(lf - in);
		if (lf_at == i || in[lf_at - 1] != '\r') {
			/* A bare LF is content, not a line end (RFC 5321 2.3.8). */
			note_line_text(reader, in + i, lf_at - i);
			add_line_octets(reader, 1);
			reader->faults |= SMTP_DATA_BARE_LF;
			reader->state = DATA_MID;
			i = lf_at + 1;
			continue;
		}
		note_line_text(reader, in + i, lf_at - 1 - i);
		reader->line_len = 0;
		reader->state = DATA_BOL;
		i = lf_at + 1;
		if (i < len && reader->mode == SMTP_DATA_DOT && in[i] == '.') {
			emit(reader, in + run_start, i - run_start, sink, ctx);
			reader->state = DATA_DOT;
			return i + 1;
		}
	}
	emit(reader, in + run_start, i - run_start, sink, ctx);
	return i;
}

/* at_line_start - RFC 5321 4.5.2: in DATA, a leading dot is dropped (or starts the end marker). */
static size_t at_line_start(struct smtp_data_reader *reader, const char *in, size_t i)
{
	if (reader->mode == SMTP_DATA_DOT && in[i] == '.') {
		reader->state = DATA_DOT;
		return i + 1;
	}
	reader->state = DATA_MID;
	return i;
}

/* after_cr - resolve a held-back CR with the byte at in[i]. */
static size_t after_cr(struct smtp_data_reader *reader, const char *in, size_t i, smtp_data_sink *sink, void *ctx)
{
	if (in[i] != '\n') {
		bare_cr(reader, sink, ctx);
		return i;
	}
	emit(reader, crlf, 2, sink, ctx);
	reader->line_len = 0;
	reader->state = DATA_BOL;
	return i + 1;
}

/* after_dot - a dropped leading dot: "." CR may be the end marker. */
static size_t after_dot(struct smtp_data_reader *reader, const char *in, size_t i)
{
	if (in[i] == '\r') {
		reader->state = DATA_DOT_CR;
		return i + 1;
	}
	reader->state = DATA_MID;
	return i;
}

/* after_dot_cr - "." CR at the start of a line: LF completes CR LF "." CR LF. */
static size_t after_dot_cr(struct smtp_data_reader *reader, const char *in, size_t i, smtp_data_sink *sink, void *ctx)
{
	if (in[i] != '\n') {
		bare_cr(reader, sink, ctx);
		return i;
	}
	reader->state = DATA_END;
	reader->done = true;
	return i + 1;
}

void smtp_data_init(struct smtp_data_reader *reader, enum smtp_data_mode mode)
{
	memset(reader, 0, sizeof *reader);
	reader->mode = mode;
	reader->state = DATA_BOL;
}

size_t smtp_data_feed(struct smtp_data_reader *reader, const char *in, size_t len, smtp_data_sink *sink, void *ctx)
{
	size_t i = 0;

	while (i < len && !reader->done) {
		switch (reader->state) {
		case DATA_BOL:
			i = at_line_start(reader, in, i);
			break;
		case DATA_MID:
			i = scan_lines(reader, in, i, len, sink, ctx);
			break;
		case DATA_CR:
			i = after_cr(reader, in, i, sink, ctx);
			break;
		case DATA_DOT:
			i = after_dot(reader, in, i);
			break;
		case DATA_DOT_CR:
			i = after_dot_cr(reader, in, i, sink, ctx);
			break;
		default:
			/* DATA_END always comes with done set. */
			reader->done = true;
			break;
		}
	}
	return i;
}

unsigned smtp_data_finish(struct smtp_data_reader *reader, smtp_data_sink *sink, void *ctx)
{
	if (reader->mode != SMTP_DATA_BDAT || reader->done)
		return reader->faults;
	if (reader->state == DATA_CR)
		bare_cr(reader, sink, ctx);
	/* RFC 3030 leaves a last line without CR LF to the server: end it, so
	 * the stored message is canonical. Empty content stays empty. */
	if (reader->state == DATA_MID) {
		emit(reader, crlf, 2, sink, ctx);
		reader->line_len = 0;
	}
	reader->state = DATA_END;
	reader->done = true;
	return reader->faults;
}

/* States of smtp_dot_stuff, kept by the caller between calls. */
enum stuff_state {
	STUFF_MID = 0, /* inside a line */
	STUFF_BOL = 1, /* at the start of a line (and of a message) */
	STUFF_CR = 2,  /* inside a line, the last byte was CR */
};

void smtp_dot_stuff(int *state, const char *in, size_t len, smtp_data_sink *sink, void *ctx)
{
	size_t run_start = 0, i = 0;
	int st = *state;

	while (i < len) {
		const char *lf;
		size_t lf_at;

		if (st == STUFF_CR && in[i] == '\n') {
			st = STUFF_BOL;
			i++;
			continue;
		}
		if (st == STUFF_BOL && in[i] == '.') {
			/* RFC 5321 4.5.2: double it. The run ends after the dot
			 * and the next run starts with it again. */
			sink(ctx, in + run_start, i + 1 - run_start);
			run_start = i;
		}
		lf = memchr(in + i, '\n', len - i);
		if (lf == NULL) {
			st = in[len - 1] == '\r' ? STUFF_CR : STUFF_MID;
			break;
		}
		lf_at = (size_t)(lf - in);
		st = (lf_at > i && in[lf_at - 1] == '\r') ? STUFF_BOL : STUFF_MID;
		i = lf_at + 1;
	}
	if (len > run_start)
		sink(ctx, in + run_start, len - run_start);
	*state = st;
}

void smtp_dot_stuff_end(int *state, smtp_data_sink *sink, void *ctx)
{
	static const char end_marker[] = "\r\n.\r\n";

	if (*state == STUFF_BOL)
		sink(ctx, end_marker + 2, 3);
	else
		sink(ctx, end_marker, 5);
	*state = STUFF_BOL;
}
