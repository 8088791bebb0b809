/*
 * util_time.h - clocks. Timeouts and rate windows use the monotonic clock;
 * wall time is only for logs, headers and the queue's retry schedule (which
 * must survive a restart).
 */
#ifndef TERN_UTIL_TIME_H
#define TERN_UTIL_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

uint64_t time_mono_ms(void);
uint64_t time_mono_us(void);
int64_t time_wall_ms(void);

/*
 * time_backoff_ms - the wait before try number attempt (1 for the first
 * retry): initial_ms doubled for each try after the first, at most max_ms.
 * The one exponential backoff: the queue's retries and the mta's rest for
 * a destination that answered nothing both use it.
 */
uint64_t time_backoff_ms(uint64_t initial_ms, uint64_t max_ms, uint64_t attempt);

/* time_rfc5322 - "Mon, 23 Nov 2026 11:20:00 +0000" (RFC 5322 3.3). */
bool time_rfc5322(char *buf, size_t size, time_t when);

#endif
