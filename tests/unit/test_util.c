/*
 * test_util.c - bounded strings, log quoting, ids, dates.
 */
#include <stdint.h>
#include <string.h>

#include "unit.h"
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

int main(void)
{
	test_str();
	test_log_quote();
	test_ids();
	test_date();
	return unit_finish("util");
}
