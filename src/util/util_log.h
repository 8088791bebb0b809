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

#include <stdbool.h>
#include <stddef.h>

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

/* fatal - a broken invariant: log with file and line, then abort. */
#define fatal(...) log_fatal(__FILE__, __LINE__, __VA_ARGS__)
void log_fatal(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

#endif
