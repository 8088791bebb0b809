/*
 * util_id.h - session and queue ids.
 *
 * An id is 12 characters of Crockford base32 (0-9, A-Z without I, L, O, U)
 * encoding 60 bits: milliseconds since the epoch (42 bits, good until the
 * year 2109) then an 18-bit counter. Ids sort by time, are unique within a
 * process (the counter runs on when the clock stands still or steps back),
 * and across restarts (the counter starts at a random value and a restart
 * takes longer than a millisecond). Safe to call from any thread.
 */
#ifndef TERN_UTIL_ID_H
#define TERN_UTIL_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_LEN 12

/* id_next - write a fresh id and its NUL into out[ID_LEN + 1]. */
void id_next(char out[ID_LEN + 1]);

/* id_valid - s is exactly ID_LEN characters of the id alphabet. */
bool id_valid(const char *s);

#endif
