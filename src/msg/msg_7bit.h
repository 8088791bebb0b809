/*
 * msg_7bit.h - make a message with 8-bit content fit for a peer that does
 * not offer 8BITMIME (RFC 6152 3, RFC 1652 3): every MIME leaf part whose
 * body is not 7bit data (RFC 2045 2.7) is re-encoded as quoted-printable
 * (RFC 2045 6.7); everything else passes through byte for byte.
 *
 * Pure: the message in, the converted message or a reason out.
 */
#ifndef TERN_MSG_7BIT_H
#define TERN_MSG_7BIT_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* MIME entities nested deeper than this below the message are refused. */
#define MSG_7BIT_DEPTH_MAX 20

/* A "why" buffer of this size holds every reason msg_to_7bit gives. */
#define MSG_7BIT_WHY_SIZE 160

/*
 * msg_to_7bit - in: a whole message (header and body) in canonical CRLF
 * form. Appends to out the same message made 7-bit:
 *   - a leaf part whose body holds bytes >= 0x80, NUL, a bare CR or LF, or a
 *     line longer than 998 octets, and whose Content-Transfer-Encoding is
 *     8bit, 7bit or absent, is re-encoded as quoted-printable (lines of at
 *     most 76 characters) and its Content-Transfer-Encoding field replaced
 *     or added;
 *   - message/rfc822 and multipart parts are walked into; an 8bit encoding
 *     declared on them becomes 7bit;
 *   - a message or part without Content-Type whose body is made 7-bit gets
 *     "Content-Type: text/plain; charset=unknown-8bit" (RFC 1428) if it had
 *     8-bit bytes, and a message whose header changes gets "MIME-Version: 1.0"
 *     if it had none.
 * On success the output is 7bit data: no byte >= 0x80, no NUL, CR and LF only
 * as CRLF, no line longer than 998 octets. A message that already is 7bit
 * data is copied unchanged.
 *
 * Returns false, with out untouched and why set to a reason starting with an
 * enhanced status code, when that cannot be done without changing what the
 * message says: "5.6.3 ..." for 8-bit bytes in a header field, in a part
 * declared binary, base64, quoted-printable or an unknown encoding, in a
 * preamble or epilogue, in a message/ part other than rfc822 and global; for
 * a multipart without a boundary; for nesting deeper than MSG_7BIT_DEPTH_MAX.
 * "4.3.0 ..." when memory ran out (try again later).
 *
 * in's content is not changed, but it is made contiguous (evbuffer_pullup).
 */
bool msg_to_7bit(struct evbuffer *in, struct evbuffer *out, char *why, size_t why_size);

#endif
