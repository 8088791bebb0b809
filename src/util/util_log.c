/*
 * util_log.c - structured log lines on stderr (see util_log.h).
 *
 * Each line is built in a stack buffer and written with a single write(2),
 * so lines from the loop, store and delivery threads never interleave. A
 * line longer than the buffer is cut and ends in "..." rather than split.
 */
#include "util/util_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static _Atomic int current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_set_level(enum log_level level)
{
	current_level = (int)level;
}

bool log_level_enabled(enum log_level level)
{
	return (int)level >= current_level;
}

bool log_level_parse(const char *s, enum log_level *level)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

static size_t log_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	int m = snprintf(buf + n, size - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	return n + (size_t)(m > 0 ? m : 0);
}

__attribute__((format(printf, 3, 0))) static void log_vwrite(const char *prefix, enum log_level level, const char *fmt,
                                                             va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_timestamp(line, sizeof line);
	int m = snprintf(line + n, sizeof line - n, "%s%s ", prefix, level_names[level]);
	n += (size_t)(m > 0 ? m : 0);
	m = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= sizeof line - n) {
		/* Cut: end in "..." and keep room for the newline. */
		n = sizeof line - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)m;
	}
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w; /* nowhere to report a failed log write */
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (!log_level_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite("", level, fmt, ap);
	va_end(ap);
}

void log_report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite("", LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *file, int line, const char *fmt, ...)
{
	char where[LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(where, sizeof where, fmt, ap);
	va_end(ap);
	log_write(LOG_LEVEL_ERROR, "event=fatal file=%s line=%d reason=\"%s\"", file, line, where);
	abort();
}

const char *log_quote(char *buf, size_t size, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (size < 8) {
		if (size)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[4];
		size_t esc_len = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc_len = 2;
		} else if (c == '\r' || c == '\n' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\r' ? 'r' : c == '\n' ? 'n' : 't';
			esc_len = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			esc_len = 4;
		} else {
			esc[0] = (char)c;
			esc_len = 1;
		}
		/* Keep room for "...", the closing quote and the NUL. */
		if (o + esc_len + 5 > size) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, esc, esc_len);
		o += esc_len;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void log_episode_init(struct log_episode *e, const char *where)
{
	e->where = where;
	pthread_mutex_init(&e->lock, NULL);
	atomic_init(&e->open, false);
	e->key = 0;
	e->failures = 0;
}

void log_episode_destroy(struct log_episode *e)
{
	pthread_mutex_destroy(&e->lock);
}

bool log_episode_fail(struct log_episode *e, uint64_t key)
{
	pthread_mutex_lock(&e->lock);
	bool begins = !atomic_load(&e->open) || e->key != key;
	if (begins) {
		e->key = key;
		e->failures = 0;
		atomic_store(&e->open, true);
	}
	e->failures++;
	pthread_mutex_unlock(&e->lock);
	return begins;
}

void log_episode_ok(struct log_episode *e, uint64_t key)
{
	if (!atomic_load(&e->open))
		return;
	pthread_mutex_lock(&e->lock);
	bool ends = atomic_load(&e->open) && e->key == key;
	uint64_t failures = e->failures;
	if (ends)
		atomic_store(&e->open, false);
	pthread_mutex_unlock(&e->lock);
	if (ends)
		log_info("event=write_recovered where=%s failures=%llu", e->where, (unsigned long long)failures);
}

const char *log_errno_name(int err)
{
	const char *name = err ? strerrorname_np(err) : NULL;
	return name ? name : "EUNKNOWN";
}
