/*
 * test_smtpd_limits.c - hourly rates, failed-AUTH lockouts and pruning
 * (smtpd/smtpd_limits.c).
 *
 * Time is passed in: every test picks its own now_ms values, so nothing
 * sleeps. T0 is an arbitrary start well above 0, as the monotonic clock
 * would give.
 */
#include <stdint.h>
#include <stdio.h>

#include "smtpd/smtpd_limits.h"
#include "unit.h"

#define SECOND ((uint64_t)1000)
#define MINUTE (60 * SECOND)
#define HOUR   (60 * MINUTE)
#define T0     ((uint64_t)123456789)

/* take - limits_take, checking the estimate it reports against want_used. */
static bool take(struct smtpd_limits *l, const char *key, uint64_t amount, uint64_t limit, uint64_t now,
                 uint64_t want_used, int line)
{
	uint64_t used = 999999;
	bool ok = limits_take(l, key, amount, limit, now, &used);

	if (used != want_used)
		UNIT_FAIL("line %d: take(%s, %llu, limit %llu) at +%llu ms: used %llu, want %llu", line, key,
		          (unsigned long long)amount, (unsigned long long)limit, (unsigned long long)(now - T0),
		          (unsigned long long)used, (unsigned long long)want_used);
	else
		unit_passed++;
	return ok;
}

#define TAKE(l, key, amount, limit, now, want_used) take(l, key, amount, limit, now, want_used, __LINE__)

/* Limit 0 is no limit: always true, nothing counted, no entry made. */
static void test_no_limit(void)
{
	struct smtpd_limits *l = limits_new();

	for (int i = 0; i < 5; i++)
		CHECK(TAKE(l, "u:a@x", 1000000, 0, T0 + (uint64_t)i, 0));
	CHECK(TAKE(l, "u:a@x", UINT64_MAX, 0, T0, 0));
	CHECK_INT(limits_prune(l, T0), 0);
	/* a limit given later starts from nothing */
	CHECK(TAKE(l, "u:a@x", 1, 1, T0 + 10, 0));
	CHECK(!TAKE(l, "u:a@x", 1, 1, T0 + 11, 1));
	CHECK_INT(limits_prune(l, T0 + 12), 1);
	limits_free(l);
	limits_free(NULL);
}

/* Under, at and over a limit within one hour; a refused take counts nothing. */
static void test_take_limit(void)
{
	struct smtpd_limits *l = limits_new();

	CHECK(TAKE(l, "u:a", 1, 3, T0, 0));
	CHECK(TAKE(l, "u:a", 1, 3, T0 + 1, 1));
	CHECK(TAKE(l, "u:a", 1, 3, T0 + 2, 2));
	CHECK(!TAKE(l, "u:a", 1, 3, T0 + 3, 3));
	CHECK(!TAKE(l, "u:a", 1, 3, T0 + 4, 3));
	CHECK(TAKE(l, "u:a", 0, 3, T0 + 5, 3));
	/* a higher limit for the same key lets more through */
	CHECK(TAKE(l, "u:a", 1, 4, T0 + 6, 3));
	CHECK(!TAKE(l, "u:a", 1, 4, T0 + 7, 4));

	/* amounts above one: exactly to the limit, then one over */
	CHECK(TAKE(l, "i:192.0.2.1", 7, 10, T0, 0));
	CHECK(!TAKE(l, "i:192.0.2.1", 4, 10, T0 + MINUTE, 7));
	CHECK(TAKE(l, "i:192.0.2.1", 3, 10, T0 + 2 * MINUTE, 7));
	CHECK(!TAKE(l, "i:192.0.2.1", 1, 10, T0 + 3 * MINUTE, 10));

	/* more than the whole limit at once, on a fresh key */
	CHECK(!TAKE(l, "i:192.0.2.2", 11, 10, T0, 0));
	CHECK(TAKE(l, "i:192.0.2.2", 10, 10, T0, 0));

	/* keys do not share counts */
	CHECK(TAKE(l, "u:b", 1, 3, T0 + 8, 0));
	CHECK(TAKE(l, "u:a@x", 1, 3, T0 + 8, 0));
	CHECK(TAKE(l, "i:192.0.2.10", 1, 3, T0 + 8, 0));
	CHECK_INT(limits_prune(l, T0 + 4 * MINUTE), 6);
	limits_free(l);
}

/* The previous hour counts less as the current one goes on. */
static void test_take_weighting(void)
{
	struct smtpd_limits *l = limits_new();

	/* hour 0 (from T0, the key's first use): 100 taken */
	CHECK(TAKE(l, "k", 100, 100, T0, 0));
	CHECK(!TAKE(l, "k", 1, 100, T0 + HOUR - 1, 100));
	/* hour 1 starts: all of hour 0 still lies within the last hour */
	CHECK(!TAKE(l, "k", 1, 100, T0 + HOUR, 100));
	/* a quarter in: three quarters of it */
	CHECK(TAKE(l, "k", 25, 100, T0 + HOUR + HOUR / 4, 75));
	CHECK(!TAKE(l, "k", 1, 100, T0 + HOUR + HOUR / 4, 100));
	/* half way: 25 of this hour and 50 of the last */
	CHECK(TAKE(l, "k", 0, 100, T0 + HOUR + HOUR / 2, 75));
	CHECK(TAKE(l, "k", 20, 100, T0 + HOUR + HOUR / 2, 75));
	CHECK(!TAKE(l, "k", 6, 100, T0 + HOUR + HOUR / 2, 95));
	CHECK(TAKE(l, "k", 5, 100, T0 + HOUR + HOUR / 2, 95));
	/* nine tenths in: 50 + 10 */
	CHECK(TAKE(l, "k", 0, 100, T0 + HOUR + 9 * HOUR / 10, 60));
	/* the last millisecond of hour 1: almost nothing of hour 0 */
	CHECK(TAKE(l, "k", 0, 100, T0 + 2 * HOUR - 1, 50));
	/* hour 2: hour 1's 50 become the previous bucket */
	CHECK(TAKE(l, "k", 0, 100, T0 + 2 * HOUR, 50));
	CHECK(TAKE(l, "k", 0, 100, T0 + 2 * HOUR + HOUR / 2, 25));
	CHECK(TAKE(l, "k", 10, 100, T0 + 2 * HOUR + HOUR / 2, 25));
	/* an idle hour in between: nothing left (hour 3 skipped, now in hour 4) */
	CHECK(TAKE(l, "k", 0, 100, T0 + 4 * HOUR + 1, 0));
	CHECK(TAKE(l, "k", 100, 100, T0 + 4 * HOUR + 1, 0));
	CHECK(!TAKE(l, "k", 1, 100, T0 + 4 * HOUR + 2, 100));
	limits_free(l);

	/* A long gap restarts the buckets at the next use. */
	l = limits_new();
	CHECK(TAKE(l, "k", 40, 100, T0, 0));
	CHECK(TAKE(l, "k", 0, 100, T0 + 10 * HOUR + 7, 0));
	CHECK(TAKE(l, "k", 60, 100, T0 + 10 * HOUR + 7, 0));
	/* one hour after that restart, the 60 count in full, then fade */
	CHECK(TAKE(l, "k", 0, 100, T0 + 11 * HOUR + 7, 60));
	CHECK(TAKE(l, "k", 0, 100, T0 + 11 * HOUR + 7 + HOUR / 2, 30));
	limits_free(l);
}

/* Failed AUTH: counted within the window, locked out at the limit until the right time. */
static void test_auth_failures(void)
{
	struct smtpd_limits *l = limits_new();
	const uint64_t window = 15 * MINUTE, lockout = 10 * MINUTE;

	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", T0), 0);
	CHECK_INT(limits_auth_failed(l, "i:198.51.100.1", window, 3, lockout, T0), 1);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", T0), 0);
	CHECK_INT(limits_auth_failed(l, "i:198.51.100.1", window, 3, lockout, T0 + MINUTE), 2);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", T0 + MINUTE), 0);
	/* the third within the window locks the address out */
	CHECK_INT(limits_auth_failed(l, "i:198.51.100.1", window, 3, lockout, T0 + 2 * MINUTE), 3);
	uint64_t until = T0 + 2 * MINUTE + lockout;
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", T0 + 2 * MINUTE), until);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", until - 1), until);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", until), 0);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", until + HOUR), 0);
	/* other keys are not locked */
	CHECK_INT(limits_locked_until(l, "i:198.51.100.2", T0 + 2 * MINUTE), 0);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.10", T0 + 2 * MINUTE), 0);
	/* after a lockout the count starts again */
	CHECK_INT(limits_auth_failed(l, "i:198.51.100.1", window, 3, lockout, until + 1), 1);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", until + 1), 0);
	CHECK_INT(limits_auth_failed(l, "i:198.51.100.1", window, 3, lockout, until + 2), 2);
	CHECK_INT(limits_auth_failed(l, "i:198.51.100.1", window, 3, lockout, until + 3), 3);
	CHECK_INT(limits_locked_until(l, "i:198.51.100.1", until + 3), until + 3 + lockout);

	/* a failure more than the window after the earlier ones starts a new count */
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.5", window, 3, lockout, T0), 1);
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.5", window, 3, lockout, T0 + SECOND), 2);
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.5", window, 3, lockout, T0 + SECOND + window + 1), 1);
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.5", window, 3, lockout, T0 + SECOND + window + 2), 2);
	CHECK_INT(limits_locked_until(l, "i:203.0.113.5", T0 + SECOND + window + 2), 0);
	/* the end of the window itself still counts */
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.6", window, 3, lockout, T0), 1);
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.6", window, 3, lockout, T0 + window), 2);

	/* a limit of one locks out at the first failure */
	CHECK_INT(limits_auth_failed(l, "i:203.0.113.7", window, 1, lockout, T0), 1);
	CHECK_INT(limits_locked_until(l, "i:203.0.113.7", T0), T0 + lockout);

	/* failures and rates of one key live side by side */
	CHECK(TAKE(l, "i:203.0.113.7", 1, 2, T0 + 1, 0));
	CHECK_INT(limits_locked_until(l, "i:203.0.113.7", T0 + 1), T0 + lockout);
	CHECK(TAKE(l, "i:203.0.113.7", 1, 2, T0 + 2, 1));
	limits_free(l);
}

/* A success clears a key's failures but not a lockout under way; unknown keys are left alone. */
static void test_auth_clear(void)
{
	struct smtpd_limits *l = limits_new();
	const uint64_t window = 15 * MINUTE, lockout = 10 * MINUTE;
	const char *key = "a:198.51.100.1 alice@example.org";

	limits_auth_clear(l, "a:192.0.2.99 nobody@example.org");
	CHECK_INT(limits_auth_failed(l, key, window, 3, lockout, T0), 1);
	CHECK_INT(limits_auth_failed(l, key, window, 3, lockout, T0 + 1), 2);
	limits_auth_clear(l, key);
	CHECK_INT(limits_auth_failed(l, key, window, 3, lockout, T0 + 2), 1);
	CHECK_INT(limits_auth_failed(l, key, window, 3, lockout, T0 + 3), 2);
	CHECK_INT(limits_auth_failed(l, key, window, 3, lockout, T0 + 4), 3);
	limits_auth_clear(l, key);
	CHECK_INT(limits_locked_until(l, key, T0 + 5), T0 + 4 + lockout);
	limits_free(l);
}

/* Failed passwords remembered by tag: the last four per key, nothing for another key. */
static void test_auth_seen(void)
{
	struct smtpd_limits *l = limits_new();
	const char *key = "a:2001:db8:1:2::/64 bob@example.org";
	CHECK(!limits_auth_seen(l, key, 7));
	for (uint64_t tag = 1; tag <= 4; tag++)
		limits_auth_remember(l, key, tag, T0);
	limits_auth_remember(l, key, 2, T0); /* already there: the oldest stays */
	for (uint64_t tag = 1; tag <= 4; tag++)
		CHECK(limits_auth_seen(l, key, tag));
	CHECK(!limits_auth_seen(l, "a:192.0.2.1 bob@example.org", 1));
	limits_auth_remember(l, key, 5, T0); /* the fifth pushes out the first */
	CHECK(!limits_auth_seen(l, key, 1));
	CHECK(limits_auth_seen(l, key, 5) && limits_auth_seen(l, key, 2));
	limits_free(l);
}

/* Pruning drops entries idle for over two hours, unless they are locked out. */
static void test_prune(void)
{
	struct smtpd_limits *l = limits_new();
	const uint64_t lockout = 3 * HOUR;

	CHECK_INT(limits_prune(l, T0), 0);
	CHECK(TAKE(l, "idle", 1, 10, T0, 0));
	CHECK(TAKE(l, "busy", 1, 10, T0, 0));
	CHECK_INT(limits_auth_failed(l, "locked", 15 * MINUTE, 1, lockout, T0), 1);
	CHECK_INT(limits_auth_failed(l, "failed", 15 * MINUTE, 5, lockout, T0), 1);
	CHECK_INT(limits_prune(l, T0 + HOUR), 4);
	CHECK(TAKE(l, "busy", 1, 10, T0 + HOUR, 1));
	/* exactly two hours idle is not yet over */
	CHECK_INT(limits_prune(l, T0 + 2 * HOUR), 4);
	CHECK_INT(limits_prune(l, T0 + 2 * HOUR + 1), 2);
	CHECK_INT(limits_locked_until(l, "locked", T0 + 2 * HOUR + 1), T0 + lockout);
	/* a pruned key starts from nothing */
	CHECK(TAKE(l, "idle", 10, 10, T0 + 2 * HOUR + 2, 0));
	CHECK_INT(limits_auth_failed(l, "failed", 15 * MINUTE, 5, lockout, T0 + 2 * HOUR + 2), 1);
	CHECK_INT(limits_prune(l, T0 + 2 * HOUR + 3), 4);
	/* looking at a lockout does not keep an entry alive: it goes when the lockout ends */
	CHECK_INT(limits_prune(l, T0 + lockout - 1), 4);
	CHECK_INT(limits_prune(l, T0 + lockout), 3);
	CHECK_INT(limits_locked_until(l, "locked", T0 + lockout), 0);
	/* busy was last used at T0 + HOUR */
	CHECK_INT(limits_prune(l, T0 + 3 * HOUR + 1), 2);
	CHECK_INT(limits_prune(l, T0 + 5 * HOUR), 0);
	CHECK_INT(limits_locked_until(l, "locked", T0 + 5 * HOUR), 0);
	limits_free(l);
}

/* Many keys: the table grows past its first size and keeps every entry apart. */
static void test_many_keys(void)
{
	struct smtpd_limits *l = limits_new();
	enum { KEYS = 20000 };
	char key[64];
	int bad = 0;

	for (int i = 0; i < KEYS; i++) {
		uint64_t used;
		snprintf(key, sizeof key, "i:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		if (!limits_take(l, key, (uint64_t)(i % 5) + 1, 10, T0 + (uint64_t)i, &used) || used != 0)
			bad++;
		if (i % 3 == 0)
			limits_auth_failed(l, key, MINUTE, 2, HOUR, T0 + (uint64_t)i);
	}
	CHECK_INT(bad, 0);
	CHECK_INT(limits_prune(l, T0 + KEYS), KEYS);
	for (int i = 0; i < KEYS; i++) {
		uint64_t used;
		snprintf(key, sizeof key, "i:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		if (limits_take(l, key, 10, 10, T0 + KEYS, &used) || used != (uint64_t)(i % 5) + 1)
			bad++;
		if (limits_locked_until(l, key, T0 + KEYS) != 0)
			bad++;
	}
	CHECK_INT(bad, 0);
	/* a second failure locks every third key */
	for (int i = 0; i < KEYS; i += 3) {
		snprintf(key, sizeof key, "i:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		if (limits_auth_failed(l, key, MINUTE, 2, HOUR, T0 + KEYS) != 2 ||
		    limits_locked_until(l, key, T0 + KEYS) != T0 + KEYS + HOUR)
			bad++;
	}
	CHECK_INT(bad, 0);
	/* past the idle time and the lockouts: nothing stays */
	CHECK_INT(limits_prune(l, T0 + KEYS + 2 * HOUR + 1), 0);
	limits_free(l);

	/* and with the lockouts still running */
	l = limits_new();
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof key, "u:user%d@example.com", i);
		limits_auth_failed(l, key, MINUTE, 1, i % 2 ? 3 * HOUR : MINUTE, T0);
	}
	CHECK_INT(limits_prune(l, T0 + 2 * HOUR + 1), KEYS / 2);
	CHECK_INT(limits_locked_until(l, "u:user1@example.com", T0 + 2 * HOUR + 1), T0 + 3 * HOUR);
	CHECK_INT(limits_locked_until(l, "u:user0@example.com", T0 + 2 * HOUR + 1), 0);
	CHECK_INT(limits_prune(l, T0 + 3 * HOUR + 1), 0);
	limits_free(l);
}

int main(void)
{
	test_no_limit();
	test_take_limit();
	test_take_weighting();
	test_auth_failures();
	test_auth_clear();
	test_auth_seen();
	test_prune();
	test_many_keys();
	return unit_finish("smtpd_limits");
}
