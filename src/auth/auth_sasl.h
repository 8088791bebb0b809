/*
 * auth_sasl.h - the server side of the SASL exchanges SMTP AUTH offers
 * (RFC 4954): PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256.
 *
 * Pure: no I/O, no event loop, no logging. The caller feeds in the AUTH
 * command's initial response and then each client line, and acts on the
 * status that comes back. Lines are base64 as the client sent them; this
 * module decodes them. A password check against a crypt(3) hash is slow on
 * purpose, so PLAIN and LOGIN hand it back to the caller (SASL_VERIFY)
 * rather than doing it here; CRAM-MD5 and SCRAM-SHA-256 are cheap and are
 * checked in place.
 *
 * An exchange holds secrets (a password, keys) until sasl_free wipes them.
 */
#ifndef TERN_AUTH_SASL_H
#define TERN_AUTH_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth_secret.h"

enum sasl_mech { SASL_PLAIN, SASL_LOGIN, SASL_CRAM_MD5, SASL_SCRAM_SHA_256, SASL_MECH_COUNT };

/* sasl_mech_from_name - name[0..len) as a mechanism, ignoring case; false if unknown. */
bool sasl_mech_from_name(const char *name, size_t len, enum sasl_mech *mech);
/* sasl_mech_name - "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256" ("" when out of range). */
const char *sasl_mech_name(enum sasl_mech mech);

#define SASL_LINE_MAX     12288 /* RFC 4954 4: longest client response line */
#define SASL_AUTHCID_MAX  255
#define SASL_PASSWORD_MAX 1024

struct sasl_user { /* what the directory holds for one login name; "" where absent */
	char password_hash[AUTH_SECRET_MAX];
	char scram_sha256[AUTH_SECRET_MAX];
	char cram_md5[AUTH_SECRET_MAX];
};
/* 1: found (user filled), 0: no such user, -1: lookup failed (temporary). authcid is as the
 * client gave it; the callback lower-cases as it needs. */
typedef int sasl_lookup(void *arg, const char *authcid, struct sasl_user *user);

enum sasl_status {
	SASL_CHALLENGE, /* send "334 " + sasl_challenge() and wait for the next line */
	SASL_VERIFY,    /* PLAIN/LOGIN: check sasl_password() against sasl_password_hash() with
	                   auth_password_check (the caller runs it off the loop); success means
	                   authenticated as sasl_authcid() */
	SASL_SUCCESS,   /* authenticated as sasl_authcid() */
	SASL_FAIL,      /* 535 5.7.8 */
	SASL_MALFORMED, /* 501 5.5.2: bad base64 or a message that breaks the mechanism's grammar */
	SASL_CANCELLED, /* 501 5.0.0: the client sent "*" */
	SASL_TEMPFAIL,  /* 454 4.7.0: the lookup failed */
};

struct sasl_exchange;

/* sasl_new - a fresh exchange; hostname goes into the CRAM-MD5 challenge. NULL if mech is out of range. */
struct sasl_exchange *sasl_new(enum sasl_mech mech, const char *hostname);
/* sasl_free - wipes every secret it held (OPENSSL_cleanse); NULL is fine. */
void sasl_free(struct sasl_exchange *ex);

/* sasl_start - the AUTH command's optional initial response: NULL when absent, "=" for an
 * empty one (RFC 4954 4), else base64. */
enum sasl_status sasl_start(struct sasl_exchange *ex, const char *initial, size_t len, sasl_lookup *lookup, void *arg);
/* sasl_step - one client response line (without CRLF): base64, or "*" to cancel. */
enum sasl_status sasl_step(struct sasl_exchange *ex, const char *line, size_t len, sasl_lookup *lookup, void *arg);

const char *sasl_challenge(const struct sasl_exchange *ex);     /* base64, may be "" */
const char *sasl_authcid(const struct sasl_exchange *ex);       /* "" until known */
const char *sasl_password(const struct sasl_exchange *ex);      /* after SASL_VERIFY */
const char *sasl_password_hash(const struct sasl_exchange *ex); /* after SASL_VERIFY */
/* sasl_lacks_scram - after SASL_VERIFY: the user has a password but no SCRAM-SHA-256 secret, so a
 * successful check should make one (auth_pool_check's make_scram). */
bool sasl_lacks_scram(const struct sasl_exchange *ex);

/* For tests: fix the server nonce (SCRAM) or challenge (CRAM-MD5) instead of a random one.
 * Call it before sasl_start. */
void sasl_set_nonce_for_test(struct sasl_exchange *ex, const char *nonce);

#endif
