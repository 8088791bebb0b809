/*
 * smtpd_limits.c - rate and failed-AUTH counters by key (see smtpd_limits.h).
 *
 * A chained hash table of entries keyed by short strings ("m:u:alice@dom",
 * "a:192.0.2.1", "a:192.0.2.1 alice@dom"). Keys hold what clients send,
 * so they are hashed with SipHash under a key random to the table (a plain
 * hash would let a client choose keys that share one chain). The table
 * grows by doubling; entries are freed only by limits_prune, which the
 * server runs on a timer.
 */
#include "smtpd/smtpd_limits.h"

#include <stdlib.h>
#include <string.h>

#include "util/util_hash.h"
#include "util/util_str.h"

#define HOUR_MS         (3600ULL * 1000)
#define IDLE_MS         (2 * HOUR_MS)
#define INITIAL_BUCKETS 256
/* Failed passwords remembered per key, so a client retrying a stale one counts once. */
#define FAILED_TAGS 4

struct limit_entry {
	struct limit_entry *next;
	uint64_t hash;            /* of key */
	uint64_t bucket_start_ms; /* start of the current hour bucket */
	uint64_t current, previous;
	uint64_t fail_count, fail_start_ms;
	uint64_t locked_until_ms;
	uint64_t failed_tags[FAILED_TAGS]; /* auth_password_tag of recent failed passwords; 0: none */
	unsigned next_tag;
	uint64_t touched_ms;
	char key[];
};

struct smtpd_limits {
	struct hash_keyed *hasher;
	struct limit_entry **buckets;
	size_t bucket_count;
	size_t entry_count;
};

struct smtpd_limits *limits_new(void)
{
	struct smtpd_limits *l = xcalloc(1, sizeof *l);
	l->hasher = hash_keyed_new();
	l->bucket_count = INITIAL_BUCKETS;
	l->buckets = xcalloc(l->bucket_count, sizeof *l->buckets);
	return l;
}

void limits_free(struct smtpd_limits *l)
{
	if (!l)
		return;
	for (size_t b = 0; b < l->bucket_count; b++) {
		while (l->buckets[b]) {
			struct limit_entry *next = l->buckets[b]->next;
			free(l->buckets[b]);
			l->buckets[b] = next;
		}
	}
	free(l->buckets);
	hash_keyed_free(l->hasher);
	free(l);
}

static uint64_t key_hash(struct smtpd_limits *l, const char *key)
{
	return hash_keyed(l->hasher, key, strlen(key));
}

static void limits_grow(struct smtpd_limits *l)
{
	size_t count = l->bucket_count * 2;
	struct limit_entry **buckets = xcalloc(count, sizeof *buckets);
	for (size_t b = 0; b < l->bucket_count; b++) {
		struct limit_entry *e = l->buckets[b];
		while (e) {
			struct limit_entry *next = e->next;
			size_t nb = (size_t)(e->hash % count);
			e->next = buckets[nb];
			buckets[nb] = e;
			e = next;
		}
	}
	free(l->buckets);
	l->buckets = buckets;
	l->bucket_count = count;
}

/* limits_find_hashed - key's entry (hash is key_hash of it), or NULL; creates nothing. */
static struct limit_entry *limits_find_hashed(struct smtpd_limits *l, const char *key, uint64_t hash)
{
	for (struct limit_entry *e = l->buckets[hash % l->bucket_count]; e; e = e->next)
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static struct limit_entry *limits_find(struct smtpd_limits *l, const char *key)
{
	return limits_find_hashed(l, key, key_hash(l, key));
}

/* limits_entry - key's entry, made if there is none; touched now. */
static struct limit_entry *limits_entry(struct smtpd_limits *l, const char *key, uint64_t now_ms)
{
	uint64_t hash = key_hash(l, key);
	struct limit_entry *e = limits_find_hashed(l, key, hash);
	if (e) {
		e->touched_ms = now_ms;
		return e;
	}
	if (l->entry_count >= l->bucket_count)
		limits_grow(l);
	size_t len = strlen(key);
	e = xcalloc(1, sizeof *e + len + 1);
	memcpy(e->key, key, len + 1);
	e->hash = hash;
	e->bucket_start_ms = now_ms;
	e->touched_ms = now_ms;
	size_t b = (size_t)(hash % l->bucket_count);
	e->next = l->buckets[b];
	l->buckets[b] = e;
	l->entry_count++;
	return e;
}

/* rate_roll - move the hour buckets forward to now. */
static void rate_roll(struct limit_entry *e, uint64_t now_ms)
{
	if (now_ms < e->bucket_start_ms + HOUR_MS)
		return;
	if (now_ms < e->bucket_start_ms + 2 * HOUR_MS) {
		e->previous = e->current;
		e->bucket_start_ms += HOUR_MS;
	} else {
		e->previous = 0;
		e->bucket_start_ms = now_ms;
	}
	e->current = 0;
}

/* rate_estimate - events in the last hour: all of this bucket, the part of the last still in range. */
static uint64_t rate_estimate(const struct limit_entry *e, uint64_t now_ms)
{
	uint64_t into = now_ms > e->bucket_start_ms ? now_ms - e->bucket_start_ms : 0;
	return e->current + e->previous * (HOUR_MS - into) / HOUR_MS;
}

bool limits_take(struct smtpd_limits *l, const char *key, uint64_t amount, uint64_t limit, uint64_t now_ms,
                 uint64_t *used)
{
	*used = 0;
	if (limit == 0)
		return true;
	struct limit_entry *e = limits_entry(l, key, now_ms);
	rate_roll(e, now_ms);
	*used = rate_estimate(e, now_ms);
	if (*used + amount > limit)
		return false;
	e->current += amount;
	return true;
}

uint64_t limits_locked_until(struct smtpd_limits *l, const char *key, uint64_t now_ms)
{
	struct limit_entry *e = limits_find(l, key);
	return e && e->locked_until_ms > now_ms ? e->locked_until_ms : 0;
}

bool limits_auth_seen(struct smtpd_limits *l, const char *key, uint64_t tag)
{
	struct limit_entry *e = limits_find(l, key);
	for (size_t i = 0; e && i < FAILED_TAGS; i++)
		if (e->failed_tags[i] == tag)
			return true;
	return false;
}

void limits_auth_remember(struct smtpd_limits *l, const char *key, uint64_t tag, uint64_t now_ms)
{
	if (limits_auth_seen(l, key, tag))
		return;
	struct limit_entry *e = limits_entry(l, key, now_ms);
	e->failed_tags[e->next_tag] = tag;
	e->next_tag = (e->next_tag + 1) % FAILED_TAGS;
}

void limits_auth_clear(struct smtpd_limits *l, const char *key)
{
	struct limit_entry *e = limits_find(l, key);
	if (e)
		e->fail_count = 0;
}

uint64_t limits_auth_failed(struct smtpd_limits *l, const char *key, uint64_t window_ms, uint64_t max_failures,
                            uint64_t lockout_ms, uint64_t now_ms)
{
	struct limit_entry *e = limits_entry(l, key, now_ms);
	/* A fixed window from the first failure: simple, and at worst lets
	 * twice the limit through across a window's end before locking. */
	if (e->fail_count == 0 || now_ms > e->fail_start_ms + window_ms) {
		e->fail_count = 0;
		e->fail_start_ms = now_ms;
	}
	uint64_t failures = ++e->fail_count;
	if (failures >= max_failures) {
		e->locked_until_ms = now_ms + lockout_ms;
		e->fail_count = 0;
	}
	return failures;
}

size_t limits_prune(struct smtpd_limits *l, uint64_t now_ms)
{
	for (size_t b = 0; b < l->bucket_count; b++) {
		struct limit_entry **p = &l->buckets[b];
		while (*p) {
			struct limit_entry *e = *p;
			if (now_ms > e->touched_ms + IDLE_MS && e->locked_until_ms <= now_ms) {
				*p = e->next;
				free(e);
				l->entry_count--;
			} else {
				p = &e->next;
			}
		}
	}
	return l->entry_count;
}
