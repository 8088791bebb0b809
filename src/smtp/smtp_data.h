/*
 * smtp_data.h - message content framing: DATA and BDAT (RFC 5321 4.1.4,
 * 4.5.2; RFC 3030), with strict line endings.
 *
 * Pure: bytes in, content bytes and a verdict out. The reader is a small
 * state machine that survives any split of its input, so the session can
 * feed it whatever arrived from the network.
 *
 * DATA mode: the content ends only at CRLF "." CRLF. Leading dots are
 * unstuffed (RFC 5321 4.5.2). A bare CR or a bare LF anywhere does not end
 * the content and is not passed on as a line end; it marks the message bad
 * (SMTP smuggling: CVE-2023-51764/51765/51766 and "\r\r\n" variants), and
 * the reader goes on to the real end so the session stays in sync.
 * BDAT mode: there is no end marker and no dot handling; the caller says how
 * many bytes a chunk has. Line endings are checked across chunk boundaries.
 *
 * Both modes flag: NUL bytes, lines longer than SMTP_TEXT_LINE_MAX octets
 * (with their CRLF, without a stuffing dot: RFC 5321 4.5.3.1.6). Content passed to the sink is canonical: every line
 * ends in CRLF; the final "." CRLF of DATA is not passed. Bytes of a bad
 * message are still passed to the sink (the caller decides to drop them).
 */
#ifndef TERN_SMTP_DATA_H
#define TERN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_data_mode {
	SMTP_DATA_DOT,  /* DATA: dot-stuffed, ends at CRLF.CRLF */
	SMTP_DATA_BDAT, /* BDAT: counted chunks, no dot handling */
};

/* Faults found in the content; several may be set. */
enum {
	SMTP_DATA_BARE_CR = 1 << 0,
	SMTP_DATA_BARE_LF = 1 << 1,
	SMTP_DATA_NUL = 1 << 2,
	SMTP_DATA_LONG_LINE = 1 << 3,
};

/*
 * The sink receives runs of content bytes in order. A run never contains a
 * partial CRLF that a later call must complete: a CR at the end of input is
 * held back until the next byte shows whether it starts a CRLF.
 */
typedef void smtp_data_sink(void *ctx, const char *bytes, size_t len);

struct smtp_data_reader {
	enum smtp_data_mode mode;
	int state;              /* private: position in the CRLF.CRLF machine */
	unsigned faults;        /* SMTP_DATA_* bits seen so far */
	size_t line_len;        /* octets of the current line so far */
	uint64_t content_bytes; /* bytes passed to the sink so far */
	bool done;              /* DATA: the end marker was read */
};

/* smtp_data_init - start a message in the given mode. */
void smtp_data_init(struct smtp_data_reader *reader, enum smtp_data_mode mode);

/*
 * smtp_data_feed - feed in[0..len). Calls sink for content (sink may be
 * NULL to only count and check). Returns the number of bytes consumed: in
 * DATA mode it stops right after the end marker (done becomes true) and the
 * rest belongs to the next command; in BDAT mode it consumes everything.
 * Feeding after done returns 0.
 */
size_t smtp_data_feed(struct smtp_data_reader *reader, const char *in, size_t len, smtp_data_sink *sink, void *ctx);

/*
 * smtp_data_finish - BDAT LAST: the content is complete. A held-back CR is
 * a bare CR. If the content does not end in CRLF, CRLF is passed to the sink
 * so the stored message is canonical (RFC 3030 leaves this to the server);
 * empty content stays empty. The reader is then done. In DATA mode it does
 * nothing. Returns the faults.
 */
unsigned smtp_data_finish(struct smtp_data_reader *reader, smtp_data_sink *sink, void *ctx);

/*
 * smtp_dot_stuff - for the SMTP client: write in[0..len) (canonical CRLF
 * content) to sink with leading dots doubled. state is 1 at the start of a
 * message (we are at the start of a line) and is kept between calls.
 * smtp_dot_stuff_end writes the end marker ("." CRLF, preceded by CRLF if the
 * content did not end with one).
 */
void smtp_dot_stuff(int *state, const char *in, size_t len, smtp_data_sink *sink, void *ctx);
void smtp_dot_stuff_end(int *state, smtp_data_sink *sink, void *ctx);

#endif
