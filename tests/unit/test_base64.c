/*
 * test_base64.c - base64 encoding and strict decoding (util/util_base64.c).
 *
 * The RFC 4648 section 10 vectors both ways, every way a text can break the
 * strict grammar, output buffers of exactly the right size and one byte
 * short, and binary round trips. Inputs are decoded from heap copies of
 * exactly their length, so reading past one is an ASan error.
 */
#include <stdint.h>
#include <stdlib.h>

#include "unit.h"
#include "util/util_base64.h"

/* decode - base64_decode of a heap copy of text, so ASan sees any read past its end. */
static bool decode(const char *text, unsigned char *out, size_t size, size_t *out_len)
{
	size_t len = strlen(text);
	char *copy = malloc(len ? len : 1);
	memcpy(copy, text, len);
	bool ok = base64_decode(copy, len, out, size, out_len);
	free(copy);
	return ok;
}

struct vector {
	const char *raw, *text;
};

/* RFC 4648 section 10. */
static const struct vector vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
};

static void test_vectors(void)
{
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const struct vector *v = &vectors[i];
		char text[16];
		unsigned char raw[16];
		size_t raw_len = 99;
		CHECK_INT(base64_encode(v->raw, strlen(v->raw), text, sizeof text), strlen(v->text));
		CHECK_STR(text, v->text);
		CHECK_INT(base64_encoded_len(strlen(v->raw)), strlen(v->text) + 1);
		CHECK(decode(v->text, raw, sizeof raw, &raw_len));
		CHECK_MEM((const char *)raw, raw_len, v->raw);
	}
}

static void test_encode_sizes(void)
{
	char out[9];
	CHECK_INT(base64_encoded_len(0), 1);
	CHECK_INT(base64_encoded_len(1), 5);
	CHECK_INT(base64_encoded_len(3), 5);
	CHECK_INT(base64_encoded_len(4), 9);
	CHECK(base64_encoded_len(SIZE_MAX) == SIZE_MAX); /* saturates: no buffer is that big */
	CHECK_INT(base64_encode("foob", 4, out, 9), 8);  /* exactly the room it needs */
	CHECK_STR(out, "Zm9vYg==");
	CHECK_INT(base64_encode("foob", 4, out, 8), 0); /* no room for the NUL */
	CHECK_INT(base64_encode("", 0, out, 1), 0);
	CHECK_STR(out, "");
}

/* Texts the strict decoder refuses. */
static const char *const malformed[] = {
        "Zg",                   /* no padding */
        "Zg=",                  /* short padding */
        "Zm9vY",                /* length not a multiple of 4 */
        "Zh==",                 /* unused bits set: "Zg==" is the one spelling of "f" */
        "Zm9=",                 /* unused bits set: "Zm8=" is the one spelling of "fo" */
        "Zg==Zg==",             /* data after padding */
        "Zg=a",                 /* '=' before the end */
        "Z===",                 /* three pad characters */
        "====",                 /* nothing but padding */
        "Zm9vYm\r\n",           /* line end */
        " Zm9vYmF",             /* leading white space */
        "Zm9vYmF ",             /* trailing white space */
        "Zm 9vYmF",             /* white space inside */
        "Zm9-",                 /* base64url alphabet */
        "Zm9_",                 /* base64url alphabet */
        "Zm9v\x80\x80\x80\x80", /* 8-bit bytes */
        "*",                    /* the SASL cancel line is not base64 either */
        "=",                    /* the empty initial response marker is not base64 */
};

static void test_malformed(void)
{
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		unsigned char out[16];
		size_t len = 0;
		if (decode(malformed[i], out, sizeof out, &len))
			UNIT_FAIL("\"%s\": got decoded, want refused", malformed[i]);
		else
			unit_passed++;
	}
	unsigned char out[4];
	size_t len = 0;
	CHECK(!base64_decode("Zm9v\0AAA", 8, out, sizeof out, &len)); /* a NUL inside */
}

static void test_decode_sizes(void)
{
	unsigned char out[6];
	size_t len = 99;
	CHECK(decode("Zm9vYmE=", out, 5, &len)); /* exactly 5 bytes of room */
	CHECK_MEM((const char *)out, len, "fooba");
	CHECK(!decode("Zm9vYmE=", out, 4, &len));
	CHECK(decode("Zg==", out, 1, &len));
	CHECK_INT(len, 1);
	CHECK(!decode("Zg==", out, 0, &len));
	CHECK(base64_decode(NULL, 0, NULL, 0, &len)); /* "" needs no room */
	CHECK_INT(len, 0);
	/* only in[0..len) is read */
	CHECK(base64_decode("Zm9vYmFyXXXX", 8, out, sizeof out, &len));
	CHECK_MEM((const char *)out, len, "foobar");
}

/* Every length up to a few hundred, every byte value: decode(encode(x)) == x with exact buffers. */
static void test_round_trips(void)
{
	unsigned char raw[300], back[300];
	char text[404];
	for (size_t i = 0; i < sizeof raw; i++)
		raw[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof raw; n++) {
		size_t text_len = base64_encode(raw, n, text, base64_encoded_len(n));
		size_t back_len = 0;
		if (text_len != base64_encoded_len(n) - 1 || !base64_decode(text, text_len, back, n, &back_len) ||
		    back_len != n || memcmp(back, raw, n) != 0)
			UNIT_FAIL("round trip of %zu bytes: got \"%s\"", n, text);
		else
			unit_passed++;
	}
}

int main(void)
{
	test_vectors();
	test_encode_sizes();
	test_malformed();
	test_decode_sizes();
	test_round_trips();
	return unit_finish("base64");
}
