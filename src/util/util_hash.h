/*
 * util_hash.h - a keyed hash for tables whose keys come from outside.
 *
 * A table keyed by what clients send (addresses, user names) with a plain
 * hash can be filled with keys that all land in one bucket, turning every
 * lookup into a walk of one long chain: a cheap way to stall the loop
 * thread. SipHash-2-4 under a key random to each table makes such keys
 * impossible to choose from outside.
 */
#ifndef TERN_UTIL_HASH_H
#define TERN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash_keyed;

/* hash_keyed_new - a hasher with a fresh random key; aborts if the system cannot make one. */
struct hash_keyed *hash_keyed_new(void);
void hash_keyed_free(struct hash_keyed *h);

/* hash_keyed - SipHash-2-4 of data[0..len) under h's key. One thread at a time per hasher. */
uint64_t hash_keyed(struct hash_keyed *h, const void *data, size_t len);

/* For tests: use this 16-byte key instead of the random one (to check against published vectors). */
void hash_keyed_set_key_for_test(struct hash_keyed *h, const unsigned char key[16]);

#endif
