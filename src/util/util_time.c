/*
 * util_time.c - monotonic and wall clocks, and RFC 5322 dates.
 */
#include "util/util_time.h"

#include "util/util_str.h"

uint64_t time_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t time_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int64_t time_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool time_rfc5322(char *buf, size_t size, time_t when)
{
	/* Names spelled out here so the result never depends on the locale. */
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	if (!gmtime_r(&when, &tm))
		return false;
	return str_format(buf, size, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

uint64_t time_backoff_ms(uint64_t initial_ms, uint64_t max_ms, uint64_t attempt)
{
	uint64_t delay = initial_ms;
	for (uint64_t i = 1; i < attempt && delay < max_ms; i++)
		delay = delay > max_ms / 2 ? max_ms : delay * 2; /* never past the cap, so never past 2^64 */
	return delay < max_ms ? delay : max_ms;
}
