/*
 * net_looplag.c - loop lag: a persistent timer on the loop thread and how
 * late each firing is.
 *
 * The timer is due every NET_LOOPLAG_INTERVAL_MS. libevent schedules a
 * persistent timer's next firing one interval after the previous due time,
 * or one interval from now when that is already past; `due` follows the
 * same rule, so a firing's lateness is the time the loop spent on other
 * work past the moment it should have run the timer. Lateness under a
 * millisecond or two is the loop's own granularity; what matters is the
 * tail: the longest delay of the window is kept, and each delay of
 * NET_LOOPLAG_STALL_MS or more is logged (at most one line a second; the
 * lines left out are counted on the next one) and counted.
 *
 * Cost: ten timer callbacks a second and two clock reads each.
 */
#include "net/net_looplag.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define NET_LOOPLAG_INTERVAL_MS  100
#define NET_LOOPLAG_LOG_EVERY_MS 1000

struct net_looplag {
	struct event *timer;
	uint64_t due_ms;    /* when the timer should fire next */
	uint64_t window_ms; /* start of the window the next report covers */
	uint64_t max_ms;    /* longest delay in the window */
	uint64_t stalls;    /* delays of NET_LOOPLAG_STALL_MS or more in the window */
	uint64_t logged_ms; /* when the last loop_stall line was written; 0: never */
	uint64_t skipped;   /* stalls not logged since that line (rate limit) */
};

/* looplag_stall - one delay over the threshold: a log line unless one was written under a second ago. */
static void looplag_stall(struct net_looplag *lag, uint64_t now, uint64_t late)
{
	lag->stalls++;
	if (lag->logged_ms && now - lag->logged_ms < NET_LOOPLAG_LOG_EVERY_MS) {
		lag->skipped++;
		return;
	}
	log_warning("event=loop_stall ms=%llu skipped=%llu", (unsigned long long)late,
	            (unsigned long long)lag->skipped);
	lag->logged_ms = now;
	lag->skipped = 0;
}

static void looplag_fired(evutil_socket_t fd, short what, void *arg)
{
	struct net_looplag *lag = arg;
	uint64_t now = time_mono_ms();
	uint64_t late = now > lag->due_ms ? now - lag->due_ms : 0;
	if (late > lag->max_ms)
		lag->max_ms = late;
	if (late >= NET_LOOPLAG_STALL_MS)
		looplag_stall(lag, now, late);
	lag->due_ms += NET_LOOPLAG_INTERVAL_MS;
	if (lag->due_ms < now)
		lag->due_ms = now + NET_LOOPLAG_INTERVAL_MS;
}

struct net_looplag *net_looplag_new(struct event_base *base)
{
	struct net_looplag *lag = xcalloc(1, sizeof *lag);
	lag->timer = event_new(base, -1, EV_PERSIST, looplag_fired, lag);
	if (!lag->timer)
		fatal("event_new failed for the loop lag timer");
	struct timeval tv = {0, NET_LOOPLAG_INTERVAL_MS * 1000};
	lag->window_ms = time_mono_ms();
	lag->due_ms = lag->window_ms + NET_LOOPLAG_INTERVAL_MS;
	event_add(lag->timer, &tv);
	return lag;
}

void net_looplag_report(struct net_looplag *lag)
{
	uint64_t now = time_mono_ms();
	log_report("event=loop_stats max_stall_ms=%llu stalls=%llu window_ms=%llu", (unsigned long long)lag->max_ms,
	           (unsigned long long)lag->stalls, (unsigned long long)(now - lag->window_ms));
	lag->window_ms = now;
	lag->max_ms = 0;
	lag->stalls = 0;
}

void net_looplag_free(struct net_looplag *lag)
{
	if (!lag)
		return;
	event_free(lag->timer);
	free(lag);
}
