/*
 * auth_private.h - what auth_sasl.c needs from auth_secret.c to use the
 * stored secrets: reading them back, and the keyed hashes behind them.
 * Nothing outside src/auth includes this.
 */
#ifndef TERN_AUTH_PRIVATE_H
#define TERN_AUTH_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_SHA256_LEN 32
#define AUTH_MD5_LEN    16
/* Salt bytes in a new SCRAM secret, and the most a stored one may have. */
#define AUTH_SCRAM_SALT_LEN 16
#define AUTH_SCRAM_SALT_MAX 64
/* A CRAM-MD5 secret: the inner then the outer MD5 state, 16 bytes each. */
#define AUTH_CRAM_STATE_LEN (2 * AUTH_MD5_LEN)

/* A SCRAM-SHA-256 secret read back (RFC 5802 section 3 names). */
struct auth_scram_key {
	unsigned char salt[AUTH_SCRAM_SALT_MAX];
	size_t salt_len;
	unsigned iterations;
	unsigned char stored_key[AUTH_SHA256_LEN];
	unsigned char server_key[AUTH_SHA256_LEN];
};

/* auth_scram_parse - read an auth_scram_secret string; false if it is not one. */
bool auth_scram_parse(const char *secret, struct auth_scram_key *key);

/* auth_cram_parse - read an auth_cram_secret string; false if it is not one. */
bool auth_cram_parse(const char *secret, unsigned char state[AUTH_CRAM_STATE_LEN]);

/* auth_cram_digest - HMAC-MD5 of challenge[0..len) under the key the state was made from. */
void auth_cram_digest(const unsigned char state[AUTH_CRAM_STATE_LEN], const void *challenge, size_t len,
                      unsigned char digest[AUTH_MD5_LEN]);

/* auth_hex_decode - s[0..s_len) is exactly 2 * len hex digits, of either case: their bytes into out. */
bool auth_hex_decode(const char *s, size_t s_len, unsigned char *out, size_t len);

/* auth_hmac_sha256 - HMAC-SHA-256; false only if OpenSSL fails. */
bool auth_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len, unsigned char mac[AUTH_SHA256_LEN]);

/* auth_sha256 - SHA-256; false only if OpenSSL fails. */
bool auth_sha256(const void *msg, size_t len, unsigned char digest[AUTH_SHA256_LEN]);

#endif
