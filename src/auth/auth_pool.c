/*
 * auth_pool.c - password checks on worker threads (see auth_pool.h).
 *
 * The threads are a util_pool; one mutex here guards the cache. A request
 * holds a copy of the password, wiped when the request is freed.
 */
#include "auth/auth_pool.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_secret.h"
#include "util/util_log.h"
#include "util/util_pool.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define AUTH_POOL_CACHE_SLOTS 1024

struct auth_request {
	struct pool_job job; /* first: the pool hands this back */
	struct auth_pool *pool;
	uint64_t ticket;
	uint64_t cache_ms;
	bool make_scram;
	struct auth_pool_result result;
	char *password;
	char *hash;
};

struct cache_slot {
	unsigned char digest[32];
	int64_t expires_ms;
};

struct auth_pool {
	pthread_mutex_t lock; /* the cache */
	struct pool *workers;
	auth_pool_done *done;
	void *done_arg;
	unsigned char cache_key[32]; /* random, never written anywhere */
	struct cache_slot cache[AUTH_POOL_CACHE_SLOTS];
};

static void request_free(struct auth_request *r)
{
	OPENSSL_cleanse(r->password, strlen(r->password));
	OPENSSL_cleanse(r->result.scram, sizeof r->result.scram);
	free(r->password);
	free(r->hash);
	free(r);
}

/* cache_digest - HMAC-SHA-256 of hash NUL password under the process's key: the cache never holds the password. */
static void cache_digest(const struct auth_pool *pool, const struct auth_request *r, unsigned char digest[32])
{
	size_t hash_len = strlen(r->hash) + 1, password_len = strlen(r->password);
	unsigned char *input = xmalloc(hash_len + password_len);
	memcpy(input, r->hash, hash_len);
	memcpy(input + hash_len, r->password, password_len);
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), pool->cache_key, sizeof pool->cache_key, input, hash_len + password_len, digest, &len))
		fatal("HMAC-SHA-256 failed");
	OPENSSL_cleanse(input, hash_len + password_len);
	free(input);
}

static struct cache_slot *cache_slot_for(struct auth_pool *pool, const unsigned char digest[32])
{
	size_t index = ((size_t)digest[0] << 8 | digest[1]) % AUTH_POOL_CACHE_SLOTS;
	return &pool->cache[index];
}

/* check_one - the cache, else crypt(3); remembers a success. Runs on a worker. */
static bool check_one(struct auth_pool *pool, const struct auth_request *r)
{
	if (r->cache_ms == 0)
		return auth_password_check(r->password, r->hash);
	unsigned char digest[32];
	cache_digest(pool, r, digest);
	int64_t now = time_mono_ms();
	pthread_mutex_lock(&pool->lock);
	struct cache_slot *slot = cache_slot_for(pool, digest);
	bool cached = slot->expires_ms > now && CRYPTO_memcmp(slot->digest, digest, sizeof digest) == 0;
	pthread_mutex_unlock(&pool->lock);
	if (cached)
		return true;
	bool ok = auth_password_check(r->password, r->hash);
	if (ok) {
		pthread_mutex_lock(&pool->lock);
		memcpy(slot->digest, digest, sizeof digest);
		slot->expires_ms = now + (int64_t)r->cache_ms;
		pthread_mutex_unlock(&pool->lock);
	}
	return ok;
}

/* check_run - pool_job run: the check, and the SCRAM secret after a success when asked for. */
static void check_run(struct pool_job *job, void *worker)
{
	struct auth_request *r = (struct auth_request *)job;
	r->result.ok = check_one(r->pool, r);
	if (r->result.ok && r->make_scram && !auth_scram_secret(r->password, r->result.scram, sizeof r->result.scram))
		r->result.scram[0] = '\0';
}

/* check_done - pool_job done, on the loop thread: hand the result to the caller. */
static void check_done(struct pool_job *job, bool cancelled)
{
	struct auth_request *r = (struct auth_request *)job;
	if (!cancelled)
		r->pool->done(r->pool->done_arg, r->ticket, &r->result);
	request_free(r);
}

struct auth_pool *auth_pool_start(struct event_base *base, unsigned threads, auth_pool_done *done, void *arg)
{
	struct auth_pool *pool = xcalloc(1, sizeof *pool);
	pthread_mutex_init(&pool->lock, NULL);
	if (RAND_bytes(pool->cache_key, sizeof pool->cache_key) != 1)
		fatal("RAND_bytes failed");
	pool->done = done;
	pool->done_arg = arg;
	pool->workers = pool_start(base, threads, NULL, NULL, NULL, "password checks");
	return pool;
}

void auth_pool_check(struct auth_pool *pool, uint64_t ticket, const char *password, const char *hash, uint64_t cache_ms,
                     bool make_scram)
{
	struct auth_request *r = xcalloc(1, sizeof *r);
	r->job.run = check_run;
	r->job.done = check_done;
	r->pool = pool;
	r->ticket = ticket;
	r->cache_ms = cache_ms;
	r->make_scram = make_scram;
	r->password = str_dup(password);
	r->hash = str_dup(hash);
	pool_submit(pool->workers, &r->job);
}

void auth_pool_stop(struct auth_pool *pool)
{
	if (!pool)
		return;
	pool_stop(pool->workers);
	OPENSSL_cleanse(pool->cache_key, sizeof pool->cache_key);
	OPENSSL_cleanse(pool->cache, sizeof pool->cache);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
