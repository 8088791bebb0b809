/*
 * test_util.c - bounded strings, log quoting, ids, dates, the keyed hash.
 */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "util/util_hash.h"
#include "util/util_id.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

static void test_str(void)
{
	char buf[8];
	CHECK(str_copy(buf, sizeof buf, "1234567"));
	CHECK_STR(buf, "1234567");
	CHECK(!str_copy(buf, sizeof buf, "12345678"));
	CHECK_STR(buf, "1234567"); /* cut, but terminated */
	CHECK(!str_format(buf, sizeof buf, "%d", 123456789));
	CHECK(str_ieq("MAIL", 4, "mail"));
	CHECK(!str_ieq("MAI", 3, "mail"));
	CHECK(!str_ieq("MAILX", 5, "mail"));

	struct {
		const char *in;
		bool ok;
		uint64_t want;
	} nums[] = {
	        {"0", true, 0},
	        {"18446744073709551615", true, UINT64_MAX},
	        {"18446744073709551616", false, 0},
	        {"", false, 0},
	        {"12a", false, 0},
	        {"-1", false, 0},
	        {"000000000000000000001", false, 0}, /* 21 digits */
	};
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		uint64_t v = 0;
		CHECK_INT(str_to_u64(nums[i].in, strlen(nums[i].in), &v), nums[i].ok);
		if (nums[i].ok)
			CHECK(v == nums[i].want);
	}
}

static void test_log_quote(void)
{
	char buf[LOG_QUOTE_MAX];
	CHECK_STR(log_quote(buf, sizeof buf, "a b", 3), "\"a b\"");
	CHECK_STR(log_quote(buf, sizeof buf, "x\r\nevent=forged", 15), "\"x\\r\\nevent=forged\"");
	CHECK_STR(log_quote(buf, sizeof buf, "q\"\\", 3), "\"q\\\"\\\\\"");
	CHECK_STR(log_quote(buf, sizeof buf, "\x01\xff", 2), "\"\\x01\\xff\"");
	char small[12];
	log_quote(small, sizeof small, "abcdefghijklmnop", 16);
	CHECK(strlen(small) < sizeof small);
	CHECK(strstr(small, "...\"") != NULL);
}

static void test_ids(void)
{
	char prev[ID_LEN + 1], id[ID_LEN + 1];
	id_next(prev);
	CHECK(id_valid(prev));
	for (int i = 0; i < 10000; i++) {
		id_next(id);
		if (strcmp(id, prev) <= 0) {
			UNIT_FAIL("ids not increasing: %s after %s", id, prev);
			break;
		}
		memcpy(prev, id, sizeof id);
	}
	CHECK(!id_valid("SHORT"));
	CHECK(!id_valid("D210RHRCG00I")); /* I is not in the alphabet */
}

static void test_date(void)
{
	char buf[64];
	CHECK(time_rfc5322(buf, sizeof buf, 0));
	CHECK_STR(buf, "Thu, 1 Jan 1970 00:00:00 +0000");
	CHECK(time_rfc5322(buf, sizeof buf, 1795433765));
	CHECK_STR(buf, "Mon, 23 Nov 2026 11:36:05 +0000");
}

/* SipHash-2-4 against the published vectors (key 00..0f, input 00..n-1, output bytes in order),
 * and two random keys giving different hashes. */
static void test_hash(void)
{
	static const struct {
		size_t len;
		unsigned char want[8];
	} vectors[] = {
	        {0, {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}},
	        {1, {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74}},
	        {15, {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1}},
	        {63, {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95}},
	};
	unsigned char key[16], input[64];
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof input; i++)
		input[i] = (unsigned char)i;
	struct hash_keyed *h = hash_keyed_new();
	hash_keyed_set_key_for_test(h, key);
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		uint64_t got = hash_keyed(h, input, vectors[i].len), want;
		memcpy(&want, vectors[i].want, sizeof want);
		CHECK_INT(got == want, 1);
	}
	struct hash_keyed *a = hash_keyed_new(), *b = hash_keyed_new();
	CHECK(hash_keyed(a, "alice", 5) == hash_keyed(a, "alice", 5));
	CHECK(hash_keyed(a, "alice", 5) != hash_keyed(b, "alice", 5));
	hash_keyed_free(a);
	hash_keyed_free(b);
	hash_keyed_free(h);
}

/* The one backoff: doubled per try after the first, capped, never past the cap on the way. */
static void test_backoff(void)
{
	CHECK(time_backoff_ms(300000, 4 * 3600000, 1) == 300000);
	CHECK(time_backoff_ms(300000, 4 * 3600000, 2) == 600000);
	CHECK(time_backoff_ms(300000, 4 * 3600000, 5) == 4800000);
	CHECK(time_backoff_ms(300000, 4 * 3600000, 7) == 4 * 3600000);
	CHECK(time_backoff_ms(300000, 4 * 3600000, 1000000) == 4 * 3600000);
	CHECK(time_backoff_ms(300000, 200000, 1) == 200000);
	CHECK(time_backoff_ms(1000, UINT64_MAX, 80) > 1000);
	CHECK(time_backoff_ms(0, 1000, 3) == 0);
}

int main(void)
{
	test_str();
	test_log_quote();
	test_ids();
	test_date();
	test_hash();
	test_backoff();
	return unit_finish("util");
}
