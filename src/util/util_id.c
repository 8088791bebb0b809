/*
 * util_id.c - time-ordered unique ids (see util_id.h).
 */
#include "util/util_id.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "util/util_time.h"

#define ID_COUNTER_BITS 18
#define ID_COUNTER_MASK ((1u << ID_COUNTER_BITS) - 1)

static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last; /* the last 60-bit value handed out */
static bool id_seeded;

static uint64_t id_next_value(void)
{
	uint64_t now = (uint64_t)time_wall_ms() << ID_COUNTER_BITS;
	pthread_mutex_lock(&id_lock);
	if (!id_seeded) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			r = 0;
		/* Start low in the counter range so a millisecond has room. */
		now |= r & (ID_COUNTER_MASK >> 2);
		id_seeded = true;
	}
	uint64_t v = now > id_last ? now : id_last + 1;
	id_last = v;
	pthread_mutex_unlock(&id_lock);
	return v;
}

void id_next(char out[ID_LEN + 1])
{
	uint64_t v = id_next_value();
	for (int i = ID_LEN - 1; i >= 0; i--) {
		out[i] = id_alphabet[v & 31];
		v >>= 5;
	}
	out[ID_LEN] = '\0';
}

bool id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n != ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!memchr(id_alphabet, s[i], sizeof id_alphabet - 1))
			return false;
	return true;
}
