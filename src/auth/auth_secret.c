/*
 * auth_secret.c - making the stored secrets from a password, checking a
 * password against a crypt(3) hash, and reading the SASL secrets back.
 *
 * What each secret gives a thief:
 *   - the crypt(3) hash: a slow offline guessing target (yescrypt where
 *     libcrypt has it, else SHA-512-crypt; Dovecot reads both);
 *   - the SCRAM-SHA-256 secret (RFC 5802 section 3): enough to pose as the
 *     server, not to log in, and as slow to guess as PBKDF2 allows;
 *   - the CRAM-MD5 secret: as good as the password for CRAM-MD5 itself (the
 *     mechanism needs a key equivalent to it, RFC 2195), though not
 *     for the other mechanisms. That is why it is made only on request.
 *
 * The clear text and every intermediate key are wiped before returning.
 */
/* The CRAM-MD5 secret is the MD5 state after each HMAC key block (the
 * precomputation of RFC 2104 section 4). OpenSSL 3 reaches that state only
 * through the deprecated low-level MD5 functions, so this one file uses them. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "auth/auth_secret.h"

#include <crypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/rand.h>

#include "auth/auth_private.h"
#include "util/util_base64.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define CRAM_PREFIX  "CRAM-MD5$"
#define MD5_BLOCK    64
/* Room for the base64 of a salt or a key, with the NUL. */
#define SCRAM_B64_MAX 96

bool auth_password_hash(const char *password, char *out, size_t size)
{
	static const char *const prefixes[] = {"$y$", "$6$"};
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		char *setting = crypt_gensalt_ra(prefixes[i], 0, NULL, 0);
		if (!setting)
			continue; /* this libcrypt does not know the method */
		void *data = NULL;
		int data_size = 0;
		const char *hash = crypt_ra(password, setting, &data, &data_size);
		bool ok = hash && hash[0] != '*' && str_copy(out, size, hash);
		if (data)
			OPENSSL_cleanse(data, (size_t)data_size);
		free(data);
		free(setting);
		if (ok)
			return true;
	}
	return false;
}

bool auth_password_check(const char *password, const char *hash)
{
	if (hash[0] == '\0')
		return false;
	/* crypt_data is tens of kilobytes: too big for a worker thread's stack. */
	struct crypt_data *data = xcalloc(1, sizeof *data);
	const char *got = crypt_rn(password, hash, data, (int)sizeof *data);
	size_t len = strlen(hash);
	bool ok = got && strlen(got) == len && CRYPTO_memcmp(got, hash, len) == 0;
	OPENSSL_cleanse(data, sizeof *data);
	free(data);
	return ok;
}

bool auth_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len, unsigned char mac[AUTH_SHA256_LEN])
{
	unsigned int mac_len = 0;
	if (key_len > INT_MAX)
		return false;
	return HMAC(EVP_sha256(), key, (int)key_len, msg, len, mac, &mac_len) && mac_len == AUTH_SHA256_LEN;
}

/* The key of auth_password_tag: random per process, never written anywhere. */
static unsigned char tag_key[AUTH_SHA256_LEN];
static pthread_once_t tag_key_once = PTHREAD_ONCE_INIT;

static void tag_key_init(void)
{
	if (RAND_bytes(tag_key, sizeof tag_key) != 1)
		fatal("RAND_bytes failed");
}

uint64_t auth_password_tag(const char *password, const char *hash)
{
	pthread_once(&tag_key_once, tag_key_init);
	/* hash NUL password: a crypt(3) hash holds no NUL, so no two pairs give one input. */
	size_t hash_len = strlen(hash) + 1, password_len = strlen(password);
	unsigned char *input = xmalloc(hash_len + password_len), mac[AUTH_SHA256_LEN];
	memcpy(input, hash, hash_len);
	memcpy(input + hash_len, password, password_len);
	uint64_t tag = 0;
	if (auth_hmac_sha256(tag_key, sizeof tag_key, input, hash_len + password_len, mac))
		memcpy(&tag, mac, sizeof tag);
	OPENSSL_cleanse(input, hash_len + password_len);
	OPENSSL_cleanse(mac, sizeof mac);
	free(input);
	return tag ? tag : 1;
}

bool auth_sha256(const void *msg, size_t len, unsigned char digest[AUTH_SHA256_LEN])
{
	unsigned int digest_len = 0;
	return EVP_Digest(msg, len, digest, &digest_len, EVP_sha256(), NULL) == 1 && digest_len == AUTH_SHA256_LEN;
}

/* scram_keys - StoredKey and ServerKey for a password, salt and iteration count (RFC 5802 section 3). */
static bool scram_keys(const char *password, const unsigned char *salt, size_t salt_len, unsigned iterations,
                       unsigned char stored_key[AUTH_SHA256_LEN], unsigned char server_key[AUTH_SHA256_LEN])
{
	unsigned char salted[AUTH_SHA256_LEN], client_key[AUTH_SHA256_LEN];
	size_t password_len = strlen(password);
	/* Passwords are taken as the bytes given, without SASLprep (RFC 4013); for printable ASCII,
	 * which is what clients send in practice, SASLprep changes nothing. */
	bool ok = password_len <= INT_MAX && salt_len <= INT_MAX && iterations <= INT_MAX &&
	          PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, (int)iterations, EVP_sha256(),
	                            (int)sizeof salted, salted) == 1 &&
	          auth_hmac_sha256(salted, sizeof salted, "Client Key", 10, client_key) &&
	          auth_sha256(client_key, sizeof client_key, stored_key) &&
	          auth_hmac_sha256(salted, sizeof salted, "Server Key", 10, server_key);
	OPENSSL_cleanse(salted, sizeof salted);
	OPENSSL_cleanse(client_key, sizeof client_key);
	return ok;
}

bool auth_scram_secret(const char *password, char *out, size_t size)
{
	unsigned char salt[AUTH_SCRAM_SALT_LEN], stored_key[AUTH_SHA256_LEN], server_key[AUTH_SHA256_LEN];
	char salt64[SCRAM_B64_MAX], stored64[SCRAM_B64_MAX], server64[SCRAM_B64_MAX];
	bool ok = RAND_bytes(salt, sizeof salt) == 1 &&
	          scram_keys(password, salt, sizeof salt, AUTH_SCRAM_ITERATIONS, stored_key, server_key) &&
	          base64_encode(salt, sizeof salt, salt64, sizeof salt64) &&
	          base64_encode(stored_key, sizeof stored_key, stored64, sizeof stored64) &&
	          base64_encode(server_key, sizeof server_key, server64, sizeof server64) &&
	          str_format(out, size, SCRAM_PREFIX "%u:%s$%s:%s", AUTH_SCRAM_ITERATIONS, salt64, stored64, server64);
	OPENSSL_cleanse(stored_key, sizeof stored_key);
	OPENSSL_cleanse(server_key, sizeof server_key);
	return ok;
}

/* scram_decode_key - s[0..len) is the base64 of exactly AUTH_SHA256_LEN bytes. */
static bool scram_decode_key(const char *s, size_t len, unsigned char key[AUTH_SHA256_LEN])
{
	size_t got = 0;
	return base64_decode(s, len, key, AUTH_SHA256_LEN, &got) && got == AUTH_SHA256_LEN;
}

bool auth_scram_parse(const char *secret, struct auth_scram_key *key)
{
	size_t prefix_len = strlen(SCRAM_PREFIX);
	if (strncmp(secret, SCRAM_PREFIX, prefix_len) != 0)
		return false;
	/* <iter>:<salt>$<StoredKey>:<ServerKey> */
	const char *iterations = secret + prefix_len;
	const char *iterations_end = strchr(iterations, ':');
	const char *salt_end = iterations_end ? strchr(iterations_end + 1, '$') : NULL;
	const char *stored_end = salt_end ? strchr(salt_end + 1, ':') : NULL;
	if (!stored_end)
		return false;
	const char *salt = iterations_end + 1, *stored = salt_end + 1, *server = stored_end + 1;
	uint64_t n = 0;
	if (!str_to_u64(iterations, (size_t)(iterations_end - iterations), &n) || n == 0 || n > INT_MAX)
		return false;
	key->iterations = (unsigned)n;
	return base64_decode(salt, (size_t)(salt_end - salt), key->salt, sizeof key->salt, &key->salt_len) &&
	       key->salt_len > 0 && scram_decode_key(stored, (size_t)(stored_end - stored), key->stored_key) &&
	       scram_decode_key(server, strlen(server), key->server_key);
}

/* cram_key_block - the HMAC key padded to one MD5 block; a longer key is hashed first (RFC 2104 section 2). */
static void cram_key_block(const char *password, unsigned char block[MD5_BLOCK])
{
	size_t len = strlen(password);
	memset(block, 0, MD5_BLOCK);
	if (len > MD5_BLOCK)
		MD5((const unsigned char *)password, len, block);
	else
		memcpy(block, password, len);
}

/* cram_state_after - the MD5 chaining value A, B, C, D after the key block xor pad, little-endian
 * as MD5 writes its digest. */
static void cram_state_after(const unsigned char block[MD5_BLOCK], unsigned char pad, unsigned char state[AUTH_MD5_LEN])
{
	unsigned char padded[MD5_BLOCK];
	MD5_CTX ctx;
	for (size_t i = 0; i < MD5_BLOCK; i++)
		padded[i] = block[i] ^ pad;
	MD5_Init(&ctx);
	MD5_Update(&ctx, padded, sizeof padded);
	const MD5_LONG words[4] = {ctx.A, ctx.B, ctx.C, ctx.D};
	for (size_t i = 0; i < 4; i++)
		for (size_t j = 0; j < 4; j++)
			state[4 * i + j] = (unsigned char)(words[i] >> (8 * j));
	OPENSSL_cleanse(padded, sizeof padded);
	OPENSSL_cleanse(&ctx, sizeof ctx);
}

/* cram_resume - an MD5 context as it was after one block that left the given state. */
static void cram_resume(MD5_CTX *ctx, const unsigned char state[AUTH_MD5_LEN])
{
	static const unsigned char any_block[MD5_BLOCK];
	MD5_LONG words[4];
	for (size_t i = 0; i < 4; i++)
		words[i] = (MD5_LONG)state[4 * i] | (MD5_LONG)state[4 * i + 1] << 8 | (MD5_LONG)state[4 * i + 2] << 16 |
		           (MD5_LONG)state[4 * i + 3] << 24;
	/* Hashing a block first sets the length count as the key block did; its state is then replaced. */
	MD5_Init(ctx);
	MD5_Update(ctx, any_block, sizeof any_block);
	ctx->A = words[0];
	ctx->B = words[1];
	ctx->C = words[2];
	ctx->D = words[3];
}

void auth_cram_digest(const unsigned char state[AUTH_CRAM_STATE_LEN], const void *challenge, size_t len,
                      unsigned char digest[AUTH_MD5_LEN])
{
	unsigned char inner[AUTH_MD5_LEN];
	MD5_CTX ctx;
	cram_resume(&ctx, state);
	MD5_Update(&ctx, challenge, len);
	MD5_Final(inner, &ctx);
	cram_resume(&ctx, state + AUTH_MD5_LEN);
	MD5_Update(&ctx, inner, sizeof inner);
	MD5_Final(digest, &ctx);
	OPENSSL_cleanse(inner, sizeof inner);
	OPENSSL_cleanse(&ctx, sizeof ctx);
}

bool auth_cram_secret(const char *password, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char block[MD5_BLOCK], state[AUTH_CRAM_STATE_LEN];
	size_t prefix_len = strlen(CRAM_PREFIX);
	if (size < prefix_len + 2 * sizeof state + 1)
		return false;
	cram_key_block(password, block);
	cram_state_after(block, 0x36, state);                /* ipad */
	cram_state_after(block, 0x5c, state + AUTH_MD5_LEN); /* opad */
	memcpy(out, CRAM_PREFIX, prefix_len);
	for (size_t i = 0; i < sizeof state; i++) {
		out[prefix_len + 2 * i] = hex[state[i] >> 4];
		out[prefix_len + 2 * i + 1] = hex[state[i] & 0x0f];
	}
	out[prefix_len + 2 * sizeof state] = '\0';
	OPENSSL_cleanse(block, sizeof block);
	OPENSSL_cleanse(state, sizeof state);
	return true;
}

/* hex_digit - the value of a hex digit of either case, or -1. */
static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool auth_hex_decode(const char *s, size_t s_len, unsigned char *out, size_t len)
{
	if (s_len != 2 * len)
		return false;
	for (size_t i = 0; i < len; i++) {
		int high = hex_digit(s[2 * i]), low = hex_digit(s[2 * i + 1]);
		if (high < 0 || low < 0)
			return false;
		out[i] = (unsigned char)(high << 4 | low);
	}
	return true;
}

bool auth_cram_parse(const char *secret, unsigned char state[AUTH_CRAM_STATE_LEN])
{
	size_t prefix_len = strlen(CRAM_PREFIX);
	if (strncmp(secret, CRAM_PREFIX, prefix_len) != 0)
		return false;
	const char *digits = secret + prefix_len;
	return auth_hex_decode(digits, strlen(digits), state, AUTH_CRAM_STATE_LEN);
}
