/*
 * net_looplag.h - how long the loop thread was kept from running its
 * events: a timer that measures how late it fires.
 *
 * Everything on the loop thread shares it, so one callback that blocks
 * (disk, SQLite, whole-body work) delays every session. The monitor keeps
 * the longest delay, logs each one over NET_LOOPLAG_STALL_MS as
 * `event=loop_stall ms=N` (at most one line a second) and, when asked,
 * `event=loop_stats max_stall_ms=N` for the time since the previous report.
 * Loop thread only.
 */
#ifndef TERN_NET_LOOPLAG_H
#define TERN_NET_LOOPLAG_H

struct event_base;
struct net_looplag;

/* A delay this long or longer is a stall: logged, and counted. */
#define NET_LOOPLAG_STALL_MS 100

/* net_looplag_new - start watching base (its timer fires every NET_LOOPLAG_STALL_MS). */
struct net_looplag *net_looplag_new(struct event_base *base);

/*
 * net_looplag_report - log `event=loop_stats` with the longest delay and
 * the number of stalls since the previous report (or the start), whatever
 * the log level, then start a new window.
 */
void net_looplag_report(struct net_looplag *lag);

/* net_looplag_free - stop the timer; safe on NULL. */
void net_looplag_free(struct net_looplag *lag);

#endif
