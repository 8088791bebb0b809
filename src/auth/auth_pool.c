/*
 * auth_pool.c - password checks on worker threads (see auth_pool.h).
 *
 * One mutex guards the request queue, the result list and the cache. A
 * request holds a copy of the password, wiped when the request is freed.
 */
#include "auth/auth_pool.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_secret.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define AUTH_POOL_MAX_THREADS 16
#define AUTH_POOL_CACHE_SLOTS 1024

struct auth_request {
	struct auth_request *next;
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
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t threads[AUTH_POOL_MAX_THREADS];
	unsigned thread_count;
	bool stopping;
	struct auth_request *queue, **queue_tail;
	struct auth_request *results;
	struct event *results_event;
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

static void *pool_main(void *arg)
{
	struct auth_pool *pool = arg;
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->queue && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->stopping)
			break;
		struct auth_request *r = pool->queue;
		pool->queue = r->next;
		if (!pool->queue)
			pool->queue_tail = &pool->queue;
		pthread_mutex_unlock(&pool->lock);

		r->result.ok = check_one(pool, r);
		if (r->result.ok && r->make_scram &&
		    !auth_scram_secret(r->password, r->result.scram, sizeof r->result.scram))
			r->result.scram[0] = '\0';

		pthread_mutex_lock(&pool->lock);
		r->next = pool->results;
		pool->results = r;
		event_active(pool->results_event, EV_READ, 0);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* deliver_results - on the loop thread: hand each result to the caller. */
static void deliver_results(evutil_socket_t fd, short what, void *arg)
{
	struct auth_pool *pool = arg;
	pthread_mutex_lock(&pool->lock);
	struct auth_request *r = pool->results;
	pool->results = NULL;
	pthread_mutex_unlock(&pool->lock);
	while (r) {
		struct auth_request *next = r->next;
		pool->done(pool->done_arg, r->ticket, &r->result);
		request_free(r);
		r = next;
	}
}

struct auth_pool *auth_pool_start(struct event_base *base, unsigned threads, auth_pool_done *done, void *arg)
{
	struct auth_pool *pool = xcalloc(1, sizeof *pool);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pool->queue_tail = &pool->queue;
	if (RAND_bytes(pool->cache_key, sizeof pool->cache_key) != 1)
		fatal("RAND_bytes failed");
	pool->done = done;
	pool->done_arg = arg;
	pool->results_event = event_new(base, -1, 0, deliver_results, pool);
	if (!pool->results_event)
		fatal("event_new failed");
	if (threads > AUTH_POOL_MAX_THREADS)
		threads = AUTH_POOL_MAX_THREADS;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, pool_main, pool) != 0)
			fatal("cannot start a password-check thread");
		pool->thread_count++;
	}
	return pool;
}

void auth_pool_check(struct auth_pool *pool, uint64_t ticket, const char *password, const char *hash, uint64_t cache_ms,
                     bool make_scram)
{
	struct auth_request *r = xcalloc(1, sizeof *r);
	r->ticket = ticket;
	r->cache_ms = cache_ms;
	r->make_scram = make_scram;
	r->password = str_dup(password);
	r->hash = str_dup(hash);
	pthread_mutex_lock(&pool->lock);
	*pool->queue_tail = r;
	pool->queue_tail = &r->next;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

void auth_pool_stop(struct auth_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	struct auth_request *lists[] = {pool->queue, pool->results};
	for (size_t i = 0; i < 2; i++) {
		while (lists[i]) {
			struct auth_request *next = lists[i]->next;
			request_free(lists[i]);
			lists[i] = next;
		}
	}
	event_free(pool->results_event);
	OPENSSL_cleanse(pool->cache_key, sizeof pool->cache_key);
	OPENSSL_cleanse(pool->cache, sizeof pool->cache);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
