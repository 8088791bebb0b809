/*
 * test_msg_7bit.c - 8-bit content made 7-bit (msg/msg_7bit.c): the MIME
 * walk, what is rewritten and what passes byte for byte, quoted-printable
 * as RFC 2045 6.7 has it, and every case that is refused.
 *
 * Every successful conversion is also checked for what the module
 * promises: 7bit data (no byte >= 0x80, no NUL, CR and LF only as CRLF)
 * with no line over 998 octets, and converting it again changes nothing.
 * A small strict quoted-printable decoder gives the original bytes back.
 */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "msg/msg_7bit.h"
#include "unit.h"

struct result {
	bool ok;
	char *out; /* NUL-terminated; out_len may hold NULs before it */
	size_t out_len;
	char why[MSG_7BIT_WHY_SIZE];
};

/* line_max - the longest line of s[0..len), CRLF not counted; *clean: 7bit data. */
static size_t line_max(const char *s, size_t len, bool *clean)
{
	size_t longest = 0, line = 0;

	*clean = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x80 || ch == '\0')
			*clean = false;
		if (ch == '\r' && i + 1 < len && s[i + 1] == '\n') {
			i++;
			line = 0;
			continue;
		}
		if (ch == '\r' || ch == '\n')
			*clean = false;
		if (++line > longest)
			longest = line;
	}
	return longest;
}

/* convert - in[0..len), added to the input buffer in pieces so that it spans several chains. */
static void convert(const char *in, size_t len, struct result *r)
{
	struct evbuffer *ein = evbuffer_new(), *eout = evbuffer_new(), *again = evbuffer_new();
	char why[MSG_7BIT_WHY_SIZE];
	size_t at;

	if (!ein || !eout || !again)
		abort();
	for (at = 0; at < len; at += 1000)
		evbuffer_add(ein, in + at, len - at < 1000 ? len - at : 1000);
	evbuffer_add(eout, "X", 1);
	r->ok = msg_to_7bit(ein, eout, r->why, sizeof r->why);
	if (evbuffer_get_length(ein) != len || (len > 0 && memcmp(evbuffer_pullup(ein, -1), in, len) != 0))
		UNIT_FAIL("the input changed");
	if (evbuffer_remove(eout, why, 1) != 1 || why[0] != 'X')
		UNIT_FAIL("what out held before was lost");
	r->out_len = evbuffer_get_length(eout);
	r->out = malloc(r->out_len + 1);
	if (r->out == NULL)
		abort();
	evbuffer_remove(eout, r->out, r->out_len);
	r->out[r->out_len] = '\0';
	if (!r->ok) {
		if (r->out_len != 0)
			UNIT_FAIL("refused (%s) but wrote %zu bytes", r->why, r->out_len);
	} else {
		bool clean;
		size_t longest = line_max(r->out, r->out_len, &clean);

		if (!clean || longest > 998)
			UNIT_FAIL("output not 7bit data: clean %d, longest line %zu", clean, longest);
		/* converting 7bit data changes nothing */
		evbuffer_add(ein, r->out, r->out_len);
		evbuffer_drain(ein, len);
		if (!msg_to_7bit(ein, again, why, sizeof why) || evbuffer_get_length(again) != r->out_len ||
		    (r->out_len > 0 && memcmp(evbuffer_pullup(again, -1), r->out, r->out_len) != 0))
			UNIT_FAIL("converting the output again changed it");
	}
	evbuffer_free(ein);
	evbuffer_free(eout);
	evbuffer_free(again);
}

/* qp_decode - strict RFC 2045 6.7: =XX in upper case, "=" CRLF, no white space before a line end. */
static bool qp_decode(const char *s, size_t len, char *dst, size_t *dst_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch == ' ' || ch == '\t') && (i + 1 == len || s[i + 1] == '\r'))
			return false;
		if (ch == '=') {
			const char *hi, *lo;

			if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') {
				i += 2;
				continue;
			}
			if (i + 2 >= len || s[i + 1] == '\0' || s[i + 2] == '\0' ||
			    (hi = strchr(hex, s[i + 1])) == NULL || (lo = strchr(hex, s[i + 2])) == NULL)
				return false;
			dst[n++] = (char)((hi - hex) << 4 | (lo - hex));
			i += 2;
		} else if (ch == '\r' && i + 1 < len && s[i + 1] == '\n') {
			dst[n++] = '\r';
			dst[n++] = '\n';
			i++;
		} else if ((ch >= 33 && ch <= 126) || ch == ' ' || ch == '\t') {
			dst[n++] = (char)ch;
		} else {
			return false;
		}
	}
	*dst_len = n;
	return true;
}

/* ---- whole messages: exact results ---- */

struct case_row {
	const char *name;
	const char *in;
	const char *want; /* NULL: refused */
	const char *why;  /* for a refusal: how the reason starts */
};

#define NUL_HEADER "Subject: a\0b\r\n\r\n\xe9\r\n"

#define MP_ALT_HEAD "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\nThis is MIME.\r\n"

static const struct case_row cases[] = {
        {"7-bit message unchanged", "Subject: x\r\n\r\nhello\r\n", "Subject: x\r\n\r\nhello\r\n", NULL},
        {"7-bit multipart without boundary unchanged", "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n",
         "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n", NULL},
        {"non-MIME 8-bit text: RFC 1428 label", "From: a@example.org\r\nSubject: hi\r\n\r\ncaf\xc3\xa9 = 1\r\nbye\r\n",
         "From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "caf=C3=A9 =3D 1\r\nbye\r\n",
         NULL},
        {"no header at all", "\r\n\xe9\r\n",
         "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n",
         NULL},
        {"text/plain 8bit: folded encoding field replaced in place",
         "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding:\r\n 8bit\r\n"
         "Subject: x\r\n\r\n\xc3\xa9\r\n",
         "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\nSubject: x\r\n\r\n=C3=A9\r\n",
         NULL},
        {"7bit declared but 8-bit, MIME-Version missing",
         "Content-Type: text/plain; charset=iso-8859-1\r\ncontent-transfer-encoding : 7BIT\r\n\r\n\xe9t\xe9\r\n",
         "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n"
         "MIME-Version: 1.0\r\n\r\n=E9t=E9\r\n",
         NULL},
        {"two encoding fields become one",
         "MIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\nX: y\r\nContent-Transfer-Encoding: 7bit\r\n"
         "\tfolded\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9\r\n",
         "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\nX: y\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\n=C3=A9\r\n",
         NULL},
        {"multipart/alternative: the 8-bit part only",
         MP_ALT_HEAD "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                     "Gr\xc3\xbc\xc3\x9f"
                     "e\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>Gruesse</p>\r\n--b1--\r\nepilogue\r\n",
         MP_ALT_HEAD "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
                     "--b1\r\nContent-Type: text/html\r\n\r\n<p>Gruesse</p>\r\n--b1--\r\nepilogue\r\n",
         NULL},
        {"multipart/mixed holding message/rfc822 holding multipart",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
         "--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
         "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
         "From: b@example.org\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
         "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nna\xc3\xafve\r\n--inner--\r\n"
         "\r\n--outer--\r\n",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
         "--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
         "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
         "From: b@example.org\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
         "--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
         "\r\nna=C3=AFve\r\n--inner--\r\n"
         "\r\n--outer--\r\n",
         NULL},
        {"non-MIME message inside message/rfc822 gets its own MIME-Version",
         "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: old\r\n\r\n\xe9\r\n",
         "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: old\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "=E9\r\n",
         NULL},
        {"multipart declared 8bit becomes 7bit",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
         "--b\r\n\r\n\xe9\r\n--b--\r\n",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
         "--b\r\nContent-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n"
         "\r\n=E9\r\n--b--\r\n",
         NULL},
        {"base64 and quoted-printable parts untouched",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
         "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9\r\n"
         "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\nJSVF\r\n"
         "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nla =3D=20\r\n"
         "--b--\r\n",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
         "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "=C3=A9\r\n"
         "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\nJSVF\r\n"
         "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nla =3D=20\r\n"
         "--b--\r\n",
         NULL},
        {"boundary: comments, case, folding, quoted with a space",
         "MIME-Version: 1.0\r\nContent-Type: (c) Multipart/Mixed (x) ; charset=x;\r\n\tBOUNDARY = \"a \\b\"\r\n\r\n"
         "--a b\r\n\r\n\xe9\r\n--a b--  \r\n",
         "MIME-Version: 1.0\r\nContent-Type: (c) Multipart/Mixed (x) ; charset=x;\r\n\tBOUNDARY = \"a \\b\"\r\n\r\n"
         "--a b\r\nContent-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n"
         "\r\n=E9\r\n--a b--  \r\n",
         NULL},
        {"a longer line starting with the boundary is not a delimiter",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
         "--b\r\n\r\n--bx \xe9\r\n--b--\r\n",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
         "--b\r\nContent-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n"
         "\r\n--bx =E9\r\n--b--\r\n",
         NULL},
        {"a delimiter after a bare LF is no delimiter",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
         "--b\r\n\r\n\xe9\n--b--\r\nmore\r\n--b--\r\n",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
         "--b\r\nContent-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n"
         "\r\n=E9=0A--b--\r\nmore\r\n--b--\r\n",
         NULL},
        {"empty part, no close delimiter",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n"
         "Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\r\n",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n"
         "Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "=F0=D2=C9\r\n",
         NULL},
        {"multipart/digest: a part without Content-Type is a message",
         "MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
         "--d\r\n\r\nSubject: one\r\n\r\n\xe9\r\n--d--\r\n",
         "MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
         "--d\r\n\r\nSubject: one\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--d--\r\n",
         NULL},
        {"message/global is a leaf",
         "MIME-Version: 1.0\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
         "Subject: \xc3\xa9\r\n\r\nx\r\n",
         "MIME-Version: 1.0\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "Subject: =C3=A9\r\n\r\nx\r\n",
         NULL},
        {"invalid Content-Type: text/plain, label kept", "MIME-Version: 1.0\r\nContent-Type: garbage\r\n\r\n\xe9\r\n",
         "MIME-Version: 1.0\r\nContent-Type: garbage\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n",
         NULL},
        {"8-bit Subject", "Subject: caf\xc3\xa9\r\n\r\n\xe9\r\n", NULL, "5.6.3 8-bit bytes in a header field"},
        {"8-bit header, 7-bit body", "Subject: caf\xc3\xa9\r\n\r\nx\r\n", NULL, "5.6.3 8-bit bytes in a header"},
        {"8-bit filename in a part's header",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
         "Content-Disposition: attachment; filename=\"\xc3\xa9.txt\"\r\n\r\n\xe9\r\n--b--\r\n",
         NULL, "5.6.3 8-bit bytes in a header field"},
        {"8-bit in a message/rfc822 part's own header",
         "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: \xe9\r\n\r\nx\r\n", NULL,
         "5.6.3 8-bit bytes in a header field"},
        {"missing boundary", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\n\xe9\r\n--x--\r\n",
         NULL, "5.6.3 8-bit bytes in a multipart part without a usable boundary"},
        {"RFC 2231 boundary is not read",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary*0=x\r\n\r\n--x\r\n\r\n\xe9\r\n--x--\r\n", NULL,
         "5.6.3 8-bit bytes in a multipart part without a usable boundary"},
        {"empty boundary",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n\xe9\r\n", NULL,
         "5.6.3 8-bit bytes in a multipart part without a usable boundary"},
        {"binary leaf",
         "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
         "\xff\x00\r\n",
         NULL, "5.6.3 8-bit bytes in a part declared binary"},
        {"binary multipart",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: binary\r\n\r\n"
         "--b\r\n\r\n\xe9\r\n--b--\r\n",
         NULL, "5.6.3 8-bit bytes in a part declared binary"},
        {"8-bit in base64",
         "MIME-Version: 1.0\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n\x89PNG\r\n", NULL,
         "5.6.3 8-bit bytes in a part encoded as \"base64\""},
        {"8-bit in quoted-printable",
         "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\xe9\r\n", NULL,
         "5.6.3 8-bit bytes in a part encoded as \"quoted-printable\""},
        {"unknown encoding", "MIME-Version: 1.0\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\xe9\r\n", NULL,
         "5.6.3 8-bit bytes in a part encoded as \"x-uuencode\""},
        {"multipart encoded base64",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         "--b\r\n\r\n\xe9\r\n--b--\r\n",
         NULL, "5.6.3 a multipart part encoded as \"base64\""},
        {"message/rfc822 encoded quoted-printable",
         "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "Subject: x\r\n\r\n\xe9\r\n",
         NULL, "5.6.3 a message/rfc822 part encoded as \"quoted-printable\""},
        {"message/partial may not be encoded",
         "MIME-Version: 1.0\r\nContent-Type: message/partial; id=x; number=1\r\n\r\nSubject: x\r\n\r\n\xe9\r\n", NULL,
         "5.6.3 8-bit bytes in a message/partial part"},
        {"8-bit preamble",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\xe9\r\n--b\r\n\r\nx\r\n--b--\r\n",
         NULL, "5.6.3 8-bit bytes in the preamble of a multipart"},
        {"8-bit epilogue",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n\xe9\r\n",
         NULL, "5.6.3 8-bit bytes in the epilogue of a multipart"},
        {"boundary never appears",
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--c\r\n\r\n\xe9\r\n--c--\r\n", NULL,
         "5.6.3 8-bit bytes in the preamble of a multipart without parts"},
};

static void run_case(const struct case_row *c, const char *in, size_t in_len)
{
	struct result r;

	convert(in, in_len, &r);
	if (c->want != NULL) {
		bool clean;

		if (!r.ok)
			UNIT_FAIL("%s: refused: %s", c->name, r.why);
		else if (r.out_len != strlen(c->want) || memcmp(r.out, c->want, r.out_len) != 0)
			UNIT_FAIL("%s:\n got \"%s\"\nwant \"%s\"", c->name, r.out, c->want);
		else if (line_max(r.out, r.out_len, &clean) > 76)
			UNIT_FAIL("%s: a line over 76 characters", c->name);
		else
			unit_passed++;
	} else if (r.ok) {
		UNIT_FAIL("%s: got \"%s\", want a refusal", c->name, r.out);
	} else if (strncmp(r.why, c->why, strlen(c->why)) != 0) {
		UNIT_FAIL("%s: got why \"%s\", want \"%s...\"", c->name, r.why, c->why);
	} else {
		unit_passed++;
	}
	free(r.out);
}

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct case_row *c = &cases[i];
		run_case(c, c->in, strlen(c->in));
	}
}

/* A NUL is not 7bit data (RFC 2045 2.7): in a header it is refused like 8-bit bytes. */
static void test_nul_header(void)
{
	static const struct case_row row = {"NUL in a header", NULL, NULL, "5.6.3 a NUL byte in a header field"};

	run_case(&row, NUL_HEADER, sizeof NUL_HEADER - 1);
}

/* A header line over 998 octets cannot be cut without changing the field. */
static void test_long_header_line(void)
{
	static const struct case_row row = {"header line over 998 octets", NULL, NULL,
	                                    "5.6.3 a line longer than 998 octets in a header field"};
	char in[1100];

	memcpy(in, "X: ", 3);
	memset(in + 3, 'a', 1000);
	memcpy(in + 1003, "\r\n\r\n\xe9\r\n", 7);
	run_case(&row, in, 1010);
}

/* A 7-bit body with a line over 998 octets is not 7bit data either: encoded, with no charset made up. */
static void test_long_7bit_line(void)
{
	char in[1200], want[1400];
	size_t n = 0, i;
	struct case_row row = {"7-bit but a long line: encoded, no charset invented", in, want, NULL};

	n = (size_t)snprintf(in, sizeof in, "Subject: x\r\n\r\n");
	memset(in + n, 'a', 1000);
	n += 1000;
	memcpy(in + n, "\r\n", 3);
	n = (size_t)snprintf(want, sizeof want,
	                     "Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	for (i = 0; i < 1000; i++) {
		want[n++] = 'a';
		if (i % 75 == 74 && i != 999) {
			memcpy(want + n, "=\r\n", 3);
			n += 3;
		}
	}
	memcpy(want + n, "\r\n", 3);
	run_case(&row, in, strlen(in));
}

/* ---- quoted-printable ---- */

struct qp_row {
	const char *name;
	const char *body;
	size_t len; /* 0: strlen */
	const char *want;
};

#define A10 "aaaaaaaaaa"
#define A70 A10 A10 A10 A10 A10 A10 A10
#define A72 A70 "aa"
#define A73 A70 "aaa"
#define A74 A70 "aaaa"
#define A75 A70 "aaaaa"
#define A76 A70 "aaaaaa"

static const struct qp_row qp_rows[] = {
        {"= and 8-bit", "a=b\xff\r\n", 0, "a=3Db=FF\r\n"},
        {"inner white space kept", "a b\tc\xe9\r\n", 0, "a b\tc=E9\r\n"},
        {"space before a line end", "\xe9 \r\nx\r\n", 0, "=E9=20\r\nx\r\n"},
        {"tab before a line end", "\xe9\t\r\n", 0, "=E9=09\r\n"},
        {"two spaces before a line end", "\xe9  \r\n", 0, "=E9 =20\r\n"},
        {"space at the very end", "\xe9 ", 0, "=E9=20"},
        {"controls, DEL and NUL", "\x01\x7f\x1b\xe9\0\r\n", 7, "=01=7F=1B=E9=00\r\n"},
        {"bare CR and bare LF", "a\rb\nc\xe9\r\n", 0, "a=0Db=0Ac=E9\r\n"},
        {"CR at the very end", "\xe9\r", 0, "=E9=0D"},
        {"CR CR LF", "\xe9\r\r\n", 0, "=E9=0D\r\n"},
        {"empty lines kept", "\r\n\r\n\xe9\r\n\r\n", 0, "\r\n\r\n=E9\r\n\r\n"},
        {"From at a line start", "From me\xe9\r\nFrom\r\nxFrom y\r\n", 0, "=46rom me=E9\r\nFrom\r\nxFrom y\r\n"},
        {"dot at a line start left to SMTP", ".\r\n\xe9\r\n", 0, ".\r\n=E9\r\n"},
        {"76 characters fit", A76 "\r\n\xe9\r\n", 0, A76 "\r\n=E9\r\n"},
        {"77 characters: a soft break", "\xe9\r\n" A76 "a\r\n", 0, "=E9\r\n" A75 "=\r\naa\r\n"},
        {"soft breaks in a long line", "\xe9" A75 A75 "\r\n", 0, "=E9" A72 "=\r\n" A75 "=\r\naaa\r\n"},
        {"=XX is never cut",
         A74 "\xe9"
             "b\r\n",
         0, A74 "=\r\n=E9b\r\n"},
        {"=XX just fits before =",
         A72 "\xe9"
             "b\r\n",
         0, A72 "=E9b\r\n"},
        {"=XX ending a line may reach 76", A73 "\xe9\r\n", 0, A73 "=E9\r\n"},
        {"=XX ending the body may reach 76", A73 "\xe9", 0, A73 "=E9"},
        {"trailing space at the soft-break column", "\xe9\r\n" A75 " \r\n", 0, "=E9\r\n" A75 "=\r\n=20\r\n"},
        {"From after a soft break", A75 "From x\xe9\r\n", 0, A75 "=\r\n=46rom x=E9\r\n"},
};

/* qp_body - the body of the converted non-MIME message with the given body; true if it converted. */
static bool qp_body(const char *body, size_t len, struct result *r, const char **enc, size_t *enc_len)
{
	static const char head[] = "Subject: q\r\n\r\n";
	char *in = malloc(sizeof head - 1 + len + 1);
	const char *sep;

	if (in == NULL)
		abort();
	memcpy(in, head, sizeof head - 1);
	memcpy(in + sizeof head - 1, body, len);
	convert(in, sizeof head - 1 + len, r);
	free(in);
	if (!r->ok || (sep = memmem(r->out, r->out_len, "\r\n\r\n", 4)) == NULL)
		return false;
	*enc = sep + 4;
	*enc_len = r->out_len - (size_t)(*enc - r->out);
	return true;
}

static void test_qp(void)
{
	for (size_t i = 0; i < sizeof qp_rows / sizeof qp_rows[0]; i++) {
		const struct qp_row *q = &qp_rows[i];
		size_t len = q->len ? q->len : strlen(q->body), enc_len, dec_len;
		const char *enc;
		struct result r;
		char dec[512];

		if (!qp_body(q->body, len, &r, &enc, &enc_len)) {
			UNIT_FAIL("%s: refused: %s", q->name, r.why);
		} else if (enc_len != strlen(q->want) || memcmp(enc, q->want, enc_len) != 0) {
			UNIT_FAIL("%s:\n got \"%.*s\"\nwant \"%s\"", q->name, (int)enc_len, enc, q->want);
		} else if (!qp_decode(enc, enc_len, dec, &dec_len) || dec_len != len ||
		           memcmp(dec, q->body, len) != 0) {
			UNIT_FAIL("%s: does not decode back", q->name);
		} else {
			unit_passed++;
		}
		free(r.out);
	}
}

/* Random bodies, heavy in what quoted-printable must care about: every encoded one decodes back, lines <= 76. */
static void test_qp_round_trip(void)
{
	static const char pick[] = " \t\r\n=F.ro m\xe9\xff\x00\x7f-";
	uint64_t seed = 0x243f6a8885a308d3u;
	size_t failures = 0;

	for (int round = 0; round < 3000; round++) {
		char body[600], dec[600];
		size_t len, enc_len, dec_len, i;
		const char *enc;
		struct result r;
		bool clean;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		len = 1 + seed % (sizeof body - 1);
		for (i = 0; i < len; i++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			body[i] = seed % 4 == 0   ? (char)(seed >> 8)
			          : seed % 4 == 1 ? 'a'
			                          : pick[(seed >> 8) % (sizeof pick - 1)];
		}
		(void)line_max(body, len, &clean);
		if (!qp_body(body, len, &r, &enc, &enc_len)) {
			failures++;
		} else if (clean) {
			/* 7bit data already (controls other than CR, LF and NUL are allowed): copied */
			if (enc_len != len || memcmp(enc, body, len) != 0)
				failures++;
		} else if (line_max(enc, enc_len, &clean) > 76 || !clean || !qp_decode(enc, enc_len, dec, &dec_len) ||
		           dec_len != len || memcmp(dec, body, len) != 0) {
			if (failures++ == 0)
				UNIT_FAIL("round %d: \"%.*s\" does not decode back", round, (int)enc_len, enc);
		}
		free(r.out);
	}
	CHECK_INT(failures, 0);
}

/* ---- bounds ---- */

static bool contains(const struct result *r, const char *s)
{
	return r->ok && memmem(r->out, r->out_len, s, strlen(s)) != NULL;
}

/* nested - levels multiparts inside each other, an 8-bit text at the bottom. */
static char *nested(int levels, size_t *len)
{
	size_t cap = 200 + (size_t)levels * 120, n = 0;
	char *s = malloc(cap);

	if (s == NULL)
		abort();
	n += (size_t)snprintf(s + n, cap - n, "MIME-Version: 1.0\r\n");
	for (int i = 0; i < levels; i++)
		n += (size_t)snprintf(s + n, cap - n, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
		                      i);
	n += (size_t)snprintf(s + n, cap - n, "Content-Type: text/plain; charset=latin1\r\n\r\n\xe9");
	for (int i = levels - 1; i >= 0; i--)
		n += (size_t)snprintf(s + n, cap - n, "\r\n--b%d--", i);
	n += (size_t)snprintf(s + n, cap - n, "\r\n");
	*len = n;
	return s;
}

static void test_depth(void)
{
	struct result r;
	size_t len;
	char *in = nested(MSG_7BIT_DEPTH_MAX, &len);

	convert(in, len, &r);
	CHECK(r.ok);
	CHECK(contains(&r, "\r\n\r\n=E9\r\n--b19--"));
	free(in);
	free(r.out);
	in = nested(MSG_7BIT_DEPTH_MAX + 1, &len);
	convert(in, len, &r);
	CHECK(!r.ok);
	CHECK_STR(r.why, "5.6.3 MIME parts nested more than 20 levels deep");
	free(in);
	free(r.out);
	/* deep but 7-bit: nothing to look into, copied */
	in = nested(1000, &len);
	*(char *)memchr(in, '\xe9', len) = 'e';
	convert(in, len, &r);
	CHECK(r.ok && r.out_len == len && memcmp(r.out, in, len) == 0);
	free(in);
	free(r.out);
}

/* Large messages: many parts and a big body, in time linear in their size. */
static void test_large(void)
{
	const size_t parts = 20000, big = 4u << 20;
	size_t cap = parts * 64 + big * 2 + 256, n = 0, i;
	char *in = malloc(cap);
	struct result r;

	if (in == NULL)
		abort();
	n += (size_t)snprintf(in + n, cap - n,
	                      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n");
	for (i = 0; i < parts; i++)
		n += (size_t)snprintf(in + n, cap - n, "--zz\r\nContent-Type: text/plain\r\n\r\npart %zu \xe9\r\n", i);
	n += (size_t)snprintf(in + n, cap - n, "--zz\r\nContent-Type: text/plain\r\n\r\n");
	for (i = 0; i < big; i++)
		in[n++] = i % 100 == 99 ? '\n' : i % 100 == 98 ? '\r' : (char)(0x41 + (i * 7) % 0xb0);
	n += (size_t)snprintf(in + n, cap - n, "\r\n--zz--\r\n");
	convert(in, n, &r);
	CHECK(r.ok);
	CHECK(r.out_len > n && r.out_len < 3 * n);
	CHECK(contains(&r, "\r\n\r\npart 19999 =E9\r\n--zz\r\n"));
	free(in);
	free(r.out);
}

static void test_empty_and_why(void)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	char why[MSG_7BIT_WHY_SIZE] = "old";
	char small[12];

	CHECK(msg_to_7bit(in, out, why, sizeof why));
	CHECK_INT(evbuffer_get_length(out), 0);
	CHECK_STR(why, "");
	/* a short why buffer gets a cut reason, still terminated */
	evbuffer_add(in, "Subject: \xe9\r\n\r\n", 14);
	CHECK(!msg_to_7bit(in, out, small, sizeof small));
	CHECK_STR(small, "5.6.3 8-bit");
	CHECK(!msg_to_7bit(in, out, NULL, 0));
	CHECK_INT(evbuffer_get_length(out), 0);
	evbuffer_free(in);
	evbuffer_free(out);
}

int main(void)
{
	test_cases();
	test_nul_header();
	test_long_header_line();
	test_long_7bit_line();
	test_qp();
	test_qp_round_trip();
	test_depth();
	test_large();
	test_empty_and_why();
	return unit_finish("msg_7bit");
}
