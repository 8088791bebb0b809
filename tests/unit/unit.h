/*
 * unit.h - the smallest test harness that says what went wrong.
 *
 * Each tests/unit/test_*.c is its own program: it calls the CHECK macros and
 * ends main with "return unit_finish();". A failed check prints the file,
 * line, what it got and what it wanted; unit_finish prints one summary line
 * "NAME: N passed, N failed" and returns non-zero if anything failed.
 */
#ifndef TERN_UNIT_H
#define TERN_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define UNIT_FAIL(...)                                          \
	do {                                                    \
		unit_failed++;                                  \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                   \
		fputc('\n', stderr);                            \
	} while (0)

#define CHECK(cond)                                           \
	do {                                                  \
		if (cond)                                     \
			unit_passed++;                        \
		else                                          \
			UNIT_FAIL("check failed: %s", #cond); \
	} while (0)

#define CHECK_INT(got, want)                                                     \
	do {                                                                     \
		long long got_ = (long long)(got), want_ = (long long)(want);    \
		if (got_ == want_)                                               \
			unit_passed++;                                           \
		else                                                             \
			UNIT_FAIL("%s: got %lld, want %lld", #got, got_, want_); \
	} while (0)

#define CHECK_STR(got, want)                                                                   \
	do {                                                                                   \
		const char *got_ = (got), *want_ = (want);                                     \
		if (got_ && want_ && strcmp(got_, want_) == 0)                                 \
			unit_passed++;                                                         \
		else                                                                           \
			UNIT_FAIL("%s: got \"%s\", want \"%s\"", #got, got_ ? got_ : "(null)", \
			          want_ ? want_ : "(null)");                                   \
	} while (0)

/* CHECK_MEM - got[0..got_len) equals the NUL-terminated want. */
#define CHECK_MEM(got, got_len, want)                                                         \
	do {                                                                                  \
		const char *gm_ = (got), *wm_ = (want);                                       \
		size_t gl_ = (got_len);                                                       \
		if (gl_ == strlen(wm_) && memcmp(gm_, wm_, gl_) == 0)                         \
			unit_passed++;                                                        \
		else                                                                          \
			UNIT_FAIL("%s: got \"%.*s\", want \"%s\"", #got, (int)gl_, gm_, wm_); \
	} while (0)

static inline int unit_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
