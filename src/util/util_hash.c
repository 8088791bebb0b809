/*
 * util_hash.c - SipHash-2-4 under a random key (see util_hash.h), from
 * OpenSSL's MAC implementation: one context per hasher, set up again with
 * the key for every hash (cheap next to what the tables using it do).
 */
#include "util/util_hash.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "util/util_log.h"
#include "util/util_str.h"

#define HASH_KEY_LEN 16 /* SipHash's key */

struct hash_keyed {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	unsigned char key[HASH_KEY_LEN];
};

struct hash_keyed *hash_keyed_new(void)
{
	struct hash_keyed *h = xcalloc(1, sizeof *h);
	h->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	h->ctx = h->mac ? EVP_MAC_CTX_new(h->mac) : NULL;
	if (!h->ctx || RAND_bytes(h->key, sizeof h->key) != 1)
		fatal("cannot set up SipHash");
	return h;
}

void hash_keyed_free(struct hash_keyed *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->ctx);
	EVP_MAC_free(h->mac);
	OPENSSL_cleanse(h->key, sizeof h->key);
	free(h);
}

void hash_keyed_set_key_for_test(struct hash_keyed *h, const unsigned char key[HASH_KEY_LEN])
{
	memcpy(h->key, key, sizeof h->key);
}

uint64_t hash_keyed(struct hash_keyed *h, const void *data, size_t len)
{
	size_t size = sizeof(uint64_t), out_len = 0;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
	unsigned char out[sizeof(uint64_t)];
	if (EVP_MAC_init(h->ctx, h->key, sizeof h->key, params) != 1 || EVP_MAC_update(h->ctx, data, len) != 1 ||
	    EVP_MAC_final(h->ctx, out, &out_len, sizeof out) != 1 || out_len != sizeof out)
		fatal("SipHash failed");
	uint64_t v;
	memcpy(&v, out, sizeof v);
	return v;
}
