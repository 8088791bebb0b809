/*
 * util_log.h - structured logging: one event per line, key=value.
 *
 * Line format: "2026-11-23T11:20:00.123Z info event=connect session=... key=value".
 * Callers write the "event=... key=value" part with printf formatting; peer
 * supplied values must go through log_quote so they cannot forge fields or
 * lines. Thread safe: each line is formatted in a local buffer and written
 * with one write(2).
 */
#ifndef TERN_UTIL_LOG_H
#define TERN_UTIL_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
};

void log_set_level(enum log_level level);
bool log_level_enabled(enum log_level level);
bool log_level_parse(const char *s, enum log_level *level);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                           \
	do {                                                     \
		if (log_level_enabled(LOG_LEVEL_DEBUG))          \
			log_write(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)

/* log_report - an info line written whatever the level: figures an operator
 * asked for (a signal) or a summary at exit, one line each. */
void log_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define log_warning(...) log_write(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...)   log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

/*
 * log_quote - s[0..len) as a double-quoted value with '"', '\\' and every
 * byte outside printable ASCII escaped (\r, \n, \t, \xNN), cut with "..."
 * if it does not fit. Returns buf. A buffer of LOG_QUOTE_MAX always fits a
 * useful prefix.
 */
#define LOG_QUOTE_MAX 256
const char *log_quote(char *buf, size_t size, const char *s, size_t len);

/*
 * Episodes: a failure that repeats, such as writes to a full disk, is
 * logged once when it begins and once when it ends, not each time in
 * between (a full disk would otherwise write a line per message, and fill
 * the disk holding the log too). Each place that can fail so has one
 * struct log_episode; key tells apart the things that fail there (a file
 * system's device number, or 0). A failure of another key than the open
 * episode's begins a new episode. Thread safe.
 */
struct log_episode {
	const char *where; /* the place, for the recovery line: where=spill */
	pthread_mutex_t lock;
	atomic_bool open; /* read without the lock: the common case, nothing failing, takes no lock */
	uint64_t key;
	uint64_t failures;
};

#define LOG_EPISODE_INIT(where_)                                     \
	{                                                            \
		.where = (where_), .lock = PTHREAD_MUTEX_INITIALIZER \
	}
void log_episode_init(struct log_episode *e, const char *where);
void log_episode_destroy(struct log_episode *e);

/* log_episode_fail - a failure of key: true when it begins an episode (the caller logs it), false when counted. */
bool log_episode_fail(struct log_episode *e, uint64_t key);

/* log_episode_ok - key works: an open episode of key ends with "event=write_recovered where=W failures=N". */
void log_episode_ok(struct log_episode *e, uint64_t key);

/* log_errno_name - "ENOSPC" for ENOSPC: the symbol, which a log search can match whatever the locale. */
const char *log_errno_name(int err);

/* fatal - a broken invariant: log with file and line, then abort. */
#define fatal(...) log_fatal(__FILE__, __LINE__, __VA_ARGS__)
void log_fatal(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

#endif
