/*
 * fuzz_msg_submit.c - fuzz target for what sendmail does to its input
 * before submitting it (msg/msg_submit.c): line ends, header and body,
 * Bcc: removed, From: added, the recipients of -t (with the address lists
 * of msg/msg_address.c), the end at a "." line, and the From: value made
 * from a full name.
 *
 * The input is a message, read with and without recipients; its first line
 * is also used as a full name. Besides the sanitizers' checks, the results
 * must hold together:
 *   - every line of the content ends in CR LF (no LF without CR before it);
 *   - the header of the content (up to its first empty line) has no Bcc:
 *     or Resent-Bcc: field and has a From: field;
 *   - preparing the content again gives the same content (it is a fixed
 *     point), and the recipients do not change the content;
 *   - recipients are non-empty, at most MSG_ADDRESS_MAX bytes, without
 *     CR, LF or NUL; a failure names a field;
 *   - the end of a "." line is found at the same place whether the input is
 *     looked at whole or in pieces;
 *   - a From: value is printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/msg_address.h"
#include "msg/msg_submit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct msg_submit_options plain = {.recipients = false, .from = "f@x.example"};
static const struct msg_submit_options with_rcpts = {.recipients = true, .from = "f@x.example"};

static void check_lines(const char *p, size_t len)
{
	if (len < 2 || p[len - 2] != '\r' || p[len - 1] != '\n')
		abort();
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			abort();
}

/* field_is - the line starts field name: the name, blanks, a colon. */
static bool field_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0)
		return false;
	while (n < len && (line[n] == ' ' || line[n] == '\t'))
		n++;
	return n < len && line[n] == ':';
}

/* check_header - no Bcc:, a From:, in the lines before the first empty one. */
static void check_header(const char *p, size_t len)
{
	bool from = false;
	size_t at = 0;
	while (at < len) {
		const char *lf = memchr(p + at, '\n', len - at);
		size_t n = (size_t)(lf - (p + at)) + 1;
		if (n == 2)
			break;
		if (field_is(p + at, n, "bcc") || field_is(p + at, n, "resent-bcc"))
			abort();
		from |= field_is(p + at, n, "from");
		at += n;
	}
	if (!from)
		abort();
}

static void check_rcpts(const struct msg_submit *m, bool ok)
{
	if (!ok && (m->bad_field[0] == '\0' || m->rcpt_count != 0))
		abort();
	for (size_t i = 0; i < m->rcpt_count; i++) {
		const struct msg_submit_rcpt *r = &m->rcpts[i];
		size_t n = strlen(r->address);
		if (n == 0 || n > MSG_ADDRESS_MAX || strpbrk(r->address, "\r\n") || r->local_len == 0 ||
		    r->local_len > n || (r->local_len < n && r->address[r->local_len] != '@'))
			abort();
	}
}

static void check_prepare(const char *in, size_t len)
{
	struct msg_submit a, b, again;
	msg_submit_prepare(in, len, &plain, &a);
	bool ok = msg_submit_prepare(in, len, &with_rcpts, &b);
	check_lines(a.content, a.len);
	check_header(a.content, a.len);
	check_rcpts(&b, ok);
	if (a.len != b.len || memcmp(a.content, b.content, a.len) != 0 || a.eight_bit != b.eight_bit)
		abort();
	msg_submit_prepare(a.content, a.len, &plain, &again);
	if (again.len != a.len || memcmp(again.content, a.content, a.len) != 0)
		abort();
	msg_submit_free(&a);
	msg_submit_free(&b);
	msg_submit_free(&again);
}

static void check_dot_end(const char *in, size_t len)
{
	size_t scan = 0, piece_scan = 0;
	long whole = msg_submit_dot_end(in, len, &scan), pieces = -1;
	for (size_t end = 0; end <= len && pieces < 0; end += 7)
		pieces = msg_submit_dot_end(in, end, &piece_scan);
	if (pieces < 0)
		pieces = msg_submit_dot_end(in, len, &piece_scan);
	if (whole != pieces || (whole >= 0 && (in[whole] != '.' || (whole > 0 && in[whole - 1] != '\n'))))
		abort();
}

static void check_from_value(const char *in, size_t len)
{
	char name[256], out[1024];
	size_t n = strcspn(in, "\n");
	if (n > len)
		n = len;
	if (n >= sizeof name)
		n = sizeof name - 1;
	memcpy(name, in, n);
	name[n] = '\0';
	if (!msg_submit_from_value(name, "f@x.example", out, sizeof out))
		abort();
	for (const unsigned char *p = (const unsigned char *)out; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	if (in == NULL)
		abort();
	memcpy(in, data, size);
	check_prepare(in, size);
	check_dot_end(in, size);
	free(in);
	/* The name is read as a C string: give it one. */
	char *text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	check_from_value(text, size);
	free(text);
	return 0;
}
