/*
 * auth_secret.h - the secrets stored for a user, made from the password once
 * (tern user add|passwd) and checked at AUTH time.
 *
 * Every secret is a NUL-terminated string shorter than AUTH_SECRET_MAX:
 *   - a crypt(3) hash, for PLAIN and LOGIN;
 *   - "SCRAM-SHA-256$...", for SCRAM-SHA-256 (RFC 5803 form);
 *   - "CRAM-MD5$...", for CRAM-MD5.
 * Functions that make a secret return false when it does not fit in size or
 * the system cannot make it; the output is then unusable.
 */
#ifndef TERN_AUTH_SECRET_H
#define TERN_AUTH_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_SECRET_MAX 256
/* PBKDF2 rounds for new SCRAM secrets: the RFC 7677 section 4 minimum. */
#define AUTH_SCRAM_ITERATIONS 4096

/* auth_password_hash - crypt(3) with a fresh salt: yescrypt "$y$", else SHA-512-crypt "$6$". */
bool auth_password_hash(const char *password, char *out, size_t size);

/* auth_password_check - crypt_r/crypt_rn the password with the stored setting and compare in
 * constant time. Slow on purpose (yescrypt): callers run it off the event loop. false for "" hash. */
bool auth_password_check(const char *password, const char *hash);

/* auth_scram_secret - RFC 5803 form "SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>",
 * 16 random salt bytes, AUTH_SCRAM_ITERATIONS (4096) iterations. */
bool auth_scram_secret(const char *password, char *out, size_t size);

/* auth_cram_secret - "CRAM-MD5$" + 64 lower-case hex digits: the MD5 states after the
 * HMAC inner and outer key blocks (not the password itself, though equivalent for CRAM-MD5). */
bool auth_cram_secret(const char *password, char *out, size_t size);

/* auth_password_tag - 64 bits of an HMAC-SHA-256 of the stored hash and the password under a key random
 * to this process, never 0: enough to tell a password tried against that hash before from a new one,
 * and useless outside the process. */
uint64_t auth_password_tag(const char *password, const char *hash);

#endif
