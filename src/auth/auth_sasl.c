/*
 * auth_sasl.c - the server side of PLAIN (RFC 4616), LOGIN, CRAM-MD5
 * (RFC 2195) and SCRAM-SHA-256 (RFC 5802, RFC 7677) for SMTP AUTH.
 *
 * An exchange is a small state machine: sasl_start takes the AUTH command's
 * initial response, sasl_step each later line. Every status but
 * SASL_CHALLENGE ends the exchange, and a call after that gets SASL_FAIL.
 * A client line is decoded into a buffer inside the exchange and parsed by
 * (pointer, length), since SASL messages may hold NUL bytes; the buffer is
 * wiped after each message because it may hold a password.
 *
 * Whether a login name exists must not show from outside:
 *   - PLAIN and LOGIN hand back a dummy hash for an unknown user (or one
 *     without a password), so the caller's check costs the same and fails;
 *   - SCRAM-SHA-256 answers an unknown user (or one without a SCRAM secret)
 *     with a salt derived from the name under a key random to this process,
 *     so the same name gets the same salt each time, and fails at the proof;
 *   - CRAM-MD5 checks are cheap either way and fail alike.
 *
 * Limits: a line over SASL_LINE_MAX is malformed (the caller should have
 * answered 500 before passing it); names and passwords as in auth_sasl.h.
 */
#include "auth/auth_sasl.h"

#include <crypt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/auth_private.h"
#include "util/util_base64.h"
#include "util/util_log.h"
#include "util/util_str.h"

/* The longest client message: a SASL_LINE_MAX line of base64, decoded. */
#define SASL_MESSAGE_MAX (SASL_LINE_MAX / 4 * 3)
/* Server nonce (SCRAM) or challenge (CRAM-MD5) with its NUL: "<" 20 digits "." 20 digits "@" 255 ">". */
#define SASL_NONCE_MAX 320
/* Random bytes in a SCRAM server nonce; sent as base64, which has no ','. */
#define SCRAM_NONCE_BYTES 18
/* Room for the base64 of a salt (AUTH_SCRAM_SALT_MAX bytes) or a key, with the NUL. */
#define SCRAM_B64_MAX 96

/* Internal only: this part of a message is fine and the exchange goes on. */
#define SASL_GO_ON SASL_CHALLENGE

enum sasl_state {
	SASL_STATE_START,          /* sasl_start not called yet */
	SASL_STATE_FIRST,          /* waiting for the mechanism's first client message */
	SASL_STATE_LOGIN_PASSWORD, /* LOGIN: the name is in, the password is next */
	SASL_STATE_SCRAM_FINAL,    /* SCRAM: server-first sent, client-final next */
	SASL_STATE_SCRAM_ACK,      /* SCRAM: server-final sent, an empty response next */
	SASL_STATE_DONE,           /* a final status was returned */
};

struct sasl_scram {
	char *gs2_header; /* as the client sent it, both commas included */
	char *client_first_bare;
	char *server_first;
	size_t nonce_len; /* client and server nonce together, right after "r=" in server_first */
	struct auth_scram_key key;
	bool key_real; /* false: a stand-in key for an unknown user, and the proof must fail */
};

struct sasl_exchange {
	enum sasl_mech mech;
	enum sasl_state state;
	char nonce[SASL_NONCE_MAX]; /* SCRAM: the server nonce; CRAM-MD5: the whole challenge */
	char *challenge;            /* base64, what follows "334 " */
	char authcid[SASL_AUTHCID_MAX + 1];
	char password[SASL_PASSWORD_MAX + 1];
	char password_hash[AUTH_SECRET_MAX];
	bool lacks_scram;                            /* PLAIN/LOGIN: the user has a password but no SCRAM secret yet */
	unsigned char message[SASL_MESSAGE_MAX + 1]; /* the client's current message, decoded */
	size_t message_len;
	struct sasl_scram scram;
};

typedef enum sasl_status sasl_handler(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg);

static const char *const mech_names[SASL_MECH_COUNT] = {"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"};

/*
 * crypt(3) hashes of a random password that was thrown away: what PLAIN and
 * LOGIN check an unknown user's password against, at the cost of a real
 * check. One of each kind auth_password_hash makes, with its default cost.
 */
static const char dummy_yescrypt[] = "$y$j9T$Yst17BVpqk1TrtnfqD2bh/$8VX5I0uZD9axlPjYwgJ1v3FvIhSSN5u4kTgf3FI96DB";
static const char dummy_sha512[] =
        "$6$48tR9KEk6UBx4lbf$3.oBs1ASnv/aeEG/OWwZdFXxzhvDzmk0m03hk7IBgfetTYoHvmONpMFlN15HJgPxSA"
        "s9P0VDTd0bhtwUqdMRr/";
static const char *dummy_hash;
static pthread_once_t dummy_hash_once = PTHREAD_ONCE_INIT;

/* The key SCRAM stand-in salts are derived under: random, and new with each process. */
static unsigned char stand_in_key[AUTH_SHA256_LEN];
static pthread_once_t stand_in_key_once = PTHREAD_ONCE_INIT;

/* sasl_random - random bytes; without working randomness there are no safe nonces to serve with. */
static void sasl_random(void *buf, size_t len)
{
	if (RAND_bytes(buf, (int)len) != 1)
		fatal("RAND_bytes failed: no randomness for SASL nonces");
}

/* dummy_hash_init - the dummy of the kind new hashes are: yescrypt if libcrypt knows it. */
static void dummy_hash_init(void)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	dummy_hash = crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting) ? dummy_yescrypt : dummy_sha512;
}

static void stand_in_key_init(void)
{
	sasl_random(stand_in_key, sizeof stand_in_key);
}

bool sasl_mech_from_name(const char *name, size_t len, enum sasl_mech *mech)
{
	for (int i = 0; i < SASL_MECH_COUNT; i++) {
		if (str_ieq(name, len, mech_names[i])) {
			*mech = (enum sasl_mech)i;
			return true;
		}
	}
	return false;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
	return (int)mech >= 0 && mech < SASL_MECH_COUNT ? mech_names[mech] : "";
}

/* cram_make_challenge - "<random digits.unix time@hostname>", the form RFC 2195 section 2 shows. */
static void cram_make_challenge(struct sasl_exchange *ex, const char *hostname)
{
	uint64_t digits;
	sasl_random(&digits, sizeof digits);
	if (!hostname || !hostname[0])
		hostname = "localhost";
	str_format(ex->nonce, sizeof ex->nonce, "<%llu.%lld@%.255s>", (unsigned long long)digits, (long long)time(NULL),
	           hostname);
}

static void scram_make_nonce(struct sasl_exchange *ex)
{
	unsigned char bytes[SCRAM_NONCE_BYTES];
	sasl_random(bytes, sizeof bytes);
	base64_encode(bytes, sizeof bytes, ex->nonce, sizeof ex->nonce);
}

struct sasl_exchange *sasl_new(enum sasl_mech mech, const char *hostname)
{
	if ((int)mech < 0 || mech >= SASL_MECH_COUNT)
		return NULL;
	struct sasl_exchange *ex = xcalloc(1, sizeof *ex);
	ex->mech = mech;
	ex->state = SASL_STATE_START;
	if (mech == SASL_CRAM_MD5)
		cram_make_challenge(ex, hostname);
	else if (mech == SASL_SCRAM_SHA_256)
		scram_make_nonce(ex);
	return ex;
}

/* sasl_free_string - wipe and free a heap string, leaving NULL. */
static void sasl_free_string(char **s)
{
	if (*s) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void sasl_free(struct sasl_exchange *ex)
{
	if (!ex)
		return;
	sasl_free_string(&ex->challenge);
	sasl_free_string(&ex->scram.gs2_header);
	sasl_free_string(&ex->scram.client_first_bare);
	sasl_free_string(&ex->scram.server_first);
	OPENSSL_cleanse(ex, sizeof *ex);
	free(ex);
}

void sasl_set_nonce_for_test(struct sasl_exchange *ex, const char *nonce)
{
	str_copy(ex->nonce, sizeof ex->nonce, nonce);
}

const char *sasl_challenge(const struct sasl_exchange *ex)
{
	return ex->challenge ? ex->challenge : "";
}

const char *sasl_authcid(const struct sasl_exchange *ex)
{
	return ex->authcid;
}

const char *sasl_password(const struct sasl_exchange *ex)
{
	return ex->password;
}

const char *sasl_password_hash(const struct sasl_exchange *ex)
{
	return ex->password_hash;
}

bool sasl_lacks_scram(const struct sasl_exchange *ex)
{
	return ex->lacks_scram;
}

/* sasl_set_challenge - the next challenge is raw[0..len), sent base64-encoded. */
static void sasl_set_challenge(struct sasl_exchange *ex, const char *raw, size_t len)
{
	size_t size = base64_encoded_len(len);
	char *text = xmalloc(size);
	base64_encode(raw, len, text, size);
	sasl_free_string(&ex->challenge);
	ex->challenge = text;
}

/* sasl_take_authcid - s[0..len) as the login name: 1..SASL_AUTHCID_MAX bytes, no NUL. */
static bool sasl_take_authcid(struct sasl_exchange *ex, const char *s, size_t len)
{
	if (len == 0 || len > SASL_AUTHCID_MAX || memchr(s, '\0', len))
		return false;
	return str_copy_n(ex->authcid, sizeof ex->authcid, s, len);
}

/* sasl_take_password - s[0..len) as the password: 1..SASL_PASSWORD_MAX bytes, no NUL. */
static bool sasl_take_password(struct sasl_exchange *ex, const char *s, size_t len)
{
	if (len == 0 || len > SASL_PASSWORD_MAX || memchr(s, '\0', len))
		return false;
	return str_copy_n(ex->password, sizeof ex->password, s, len);
}

/* sasl_find_user - the lookup's answer for ex->authcid (1, 0, or -1), with every field of user
 * NUL-terminated whatever the callback left there. */
static int sasl_find_user(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg, struct sasl_user *user)
{
	memset(user, 0, sizeof *user);
	if (!lookup)
		return -1;
	int found = lookup(arg, ex->authcid, user);
	user->password_hash[sizeof user->password_hash - 1] = '\0';
	user->scram_sha256[sizeof user->scram_sha256 - 1] = '\0';
	user->cram_md5[sizeof user->cram_md5 - 1] = '\0';
	return found < 0 ? -1 : found > 0;
}

/* password_verify - PLAIN and LOGIN end here: look the user up and leave the slow check to the caller. */
static enum sasl_status password_verify(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	struct sasl_user user;
	int found = sasl_find_user(ex, lookup, arg, &user);
	if (found >= 0) {
		pthread_once(&dummy_hash_once, dummy_hash_init);
		const char *hash = found && user.password_hash[0] ? user.password_hash : dummy_hash;
		str_copy(ex->password_hash, sizeof ex->password_hash, hash);
		ex->lacks_scram = found && user.password_hash[0] && !user.scram_sha256[0];
	}
	OPENSSL_cleanse(&user, sizeof user);
	return found < 0 ? SASL_TEMPFAIL : SASL_VERIFY;
}

/* plain_response - "authzid NUL authcid NUL passwd" (RFC 4616 section 2). */
static enum sasl_status plain_response(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	const char *msg = (const char *)ex->message;
	const char *end = msg + ex->message_len;
	const char *authzid_end = memchr(msg, '\0', ex->message_len);
	const char *authcid = authzid_end ? authzid_end + 1 : end;
	const char *authcid_end = memchr(authcid, '\0', (size_t)(end - authcid));
	if (!authcid_end)
		return SASL_MALFORMED;
	const char *password = authcid_end + 1;
	if (!sasl_take_authcid(ex, authcid, (size_t)(authcid_end - authcid)) ||
	    !sasl_take_password(ex, password, (size_t)(end - password)))
		return SASL_MALFORMED;
	/* tern has no proxy authorization: asking to act as someone else is refused, not malformed. */
	size_t authzid_len = (size_t)(authzid_end - msg);
	if (authzid_len > 0 && !str_ieq(msg, authzid_len, ex->authcid))
		return SASL_FAIL;
	return password_verify(ex, lookup, arg);
}

/* login_user - LOGIN's first message is the bare user name. */
static enum sasl_status login_user(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	(void)lookup; /* the lookup waits for the password */
	(void)arg;
	if (!sasl_take_authcid(ex, (const char *)ex->message, ex->message_len))
		return SASL_MALFORMED;
	sasl_set_challenge(ex, "Password:", strlen("Password:"));
	ex->state = SASL_STATE_LOGIN_PASSWORD;
	return SASL_CHALLENGE;
}

static enum sasl_status login_password(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	if (!sasl_take_password(ex, (const char *)ex->message, ex->message_len))
		return SASL_MALFORMED;
	return password_verify(ex, lookup, arg);
}

/* cram_check - the digest is HMAC-MD5 of the challenge under the user's key; false for an unknown
 * user or one without a CRAM-MD5 secret. */
static bool cram_check(const struct sasl_exchange *ex, const struct sasl_user *user, int found,
                       const unsigned char digest[AUTH_MD5_LEN])
{
	unsigned char state[AUTH_CRAM_STATE_LEN], expected[AUTH_MD5_LEN];
	bool ok = found > 0 && auth_cram_parse(user->cram_md5, state);
	if (ok) {
		auth_cram_digest(state, ex->nonce, strlen(ex->nonce), expected);
		ok = CRYPTO_memcmp(expected, digest, sizeof expected) == 0;
	}
	OPENSSL_cleanse(state, sizeof state);
	OPENSSL_cleanse(expected, sizeof expected);
	return ok;
}

/* cram_response - "name SP digest" with 32 hex digits (RFC 2195 section 2). The name ends at the
 * last space, so a name with spaces in it still works. */
static enum sasl_status cram_response(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	const char *msg = (const char *)ex->message;
	size_t len = ex->message_len;
	const char *space = memrchr(msg, ' ', len);
	unsigned char digest[AUTH_MD5_LEN];
	if (!space || !sasl_take_authcid(ex, msg, (size_t)(space - msg)) ||
	    !auth_hex_decode(space + 1, (size_t)(msg + len - space - 1), digest, sizeof digest))
		return SASL_MALFORMED;
	struct sasl_user user;
	int found = sasl_find_user(ex, lookup, arg, &user);
	bool ok = cram_check(ex, &user, found, digest);
	OPENSSL_cleanse(&user, sizeof user);
	if (found < 0)
		return SASL_TEMPFAIL;
	return ok ? SASL_SUCCESS : SASL_FAIL;
}

/* One "x=value" attribute of a SCRAM message (RFC 5802 section 7). */
struct scram_attr {
	char name;
	const char *value;
	size_t len;
};

/* What is left of a SCRAM message to read attributes from. */
struct scram_reader {
	const char *next, *end;
	bool done; /* the last attribute has been read */
};

static bool scram_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* scram_next - the next attribute; false at the end, or if the text there is not ALPHA "=" value
 * (which includes a ',' with nothing after it). */
static bool scram_next(struct scram_reader *r, struct scram_attr *attr)
{
	if (r->done)
		return false;
	const char *comma = memchr(r->next, ',', (size_t)(r->end - r->next));
	const char *stop = comma ? comma : r->end;
	if (stop - r->next < 2 || !scram_is_alpha(r->next[0]) || r->next[1] != '=')
		return false;
	attr->name = r->next[0];
	attr->value = r->next + 2;
	attr->len = (size_t)(stop - attr->value);
	r->next = comma ? comma + 1 : r->end;
	r->done = !comma;
	return true;
}

/* scram_skip_extensions - the rest is well-formed attributes, which tern ignores (RFC 5802 section 5.1). */
static bool scram_skip_extensions(struct scram_reader *r)
{
	struct scram_attr ext;
	while (!r->done)
		if (!scram_next(r, &ext))
			return false;
	return true;
}

/* scram_saslname - decode a saslname into out: "=2C" is ',' and "=3D" is '=' (RFC 5802 section 5.1);
 * false for any other '=', a NUL, or a name that is empty or does not fit in size. */
static bool scram_saslname(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0')
			return false;
		if (c == '=') {
			if (len - i < 3)
				return false;
			if (s[i + 1] == '2' && s[i + 2] == 'C')
				c = ',';
			else if (s[i + 1] == '3' && s[i + 2] == 'D')
				c = '=';
			else
				return false;
			i += 2;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0;
}

/* scram_nonce_ok - a c-nonce: one or more printable ASCII characters other than ','. */
static bool scram_nonce_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return len > 0;
}

/*
 * scram_gs2_header - "n," or "y," then an optional "a=" authzid, then ","
 * (RFC 5802 section 7); *header_len is its length with both commas.
 * Channel binding ("p=") would need the TLS layer's help, and tern does not
 * offer SCRAM-SHA-256-PLUS; RFC 5802 section 6 has a server without it fail
 * the exchange. "y" (the client could bind but thinks the server cannot) is
 * then right, and is accepted.
 */
static enum sasl_status scram_gs2_header(const char *msg, size_t len, size_t *header_len, char *authzid, size_t size)
{
	const char *flag_end = memchr(msg, ',', len);
	if (!flag_end)
		return SASL_MALFORMED;
	size_t flag_len = (size_t)(flag_end - msg);
	if (flag_len >= 2 && msg[0] == 'p' && msg[1] == '=')
		return SASL_FAIL;
	if (flag_len != 1 || (msg[0] != 'n' && msg[0] != 'y'))
		return SASL_MALFORMED;
	const char *a = flag_end + 1;
	const char *a_end = memchr(a, ',', (size_t)(msg + len - a));
	if (!a_end)
		return SASL_MALFORMED;
	size_t a_len = (size_t)(a_end - a);
	if (a_len > 0 && (a_len < 3 || a[0] != 'a' || a[1] != '=' || !scram_saslname(a + 2, a_len - 2, authzid, size)))
		return SASL_MALFORMED;
	*header_len = (size_t)(a_end + 1 - msg);
	return SASL_GO_ON;
}

/* scram_stand_in_key - for a name without a usable SCRAM secret: a salt that depends only on the
 * name (case folded, as login names are) and the default iteration count. false if HMAC fails. */
static bool scram_stand_in_key(struct sasl_exchange *ex)
{
	char name[SASL_AUTHCID_MAX + 1];
	unsigned char mac[AUTH_SHA256_LEN];
	str_copy(name, sizeof name, ex->authcid);
	str_lower(name);
	pthread_once(&stand_in_key_once, stand_in_key_init);
	memset(&ex->scram.key, 0, sizeof ex->scram.key);
	if (!auth_hmac_sha256(stand_in_key, sizeof stand_in_key, name, strlen(name), mac))
		return false;
	memcpy(ex->scram.key.salt, mac, AUTH_SCRAM_SALT_LEN);
	ex->scram.key.salt_len = AUTH_SCRAM_SALT_LEN;
	ex->scram.key.iterations = AUTH_SCRAM_ITERATIONS;
	return true;
}

/* scram_load_key - the user's SCRAM key, or a stand-in one; false if the lookup failed. */
static bool scram_load_key(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	struct sasl_user user;
	int found = sasl_find_user(ex, lookup, arg, &user);
	ex->scram.key_real = found > 0 && auth_scram_parse(user.scram_sha256, &ex->scram.key);
	OPENSSL_cleanse(&user, sizeof user);
	return found >= 0 && (ex->scram.key_real || scram_stand_in_key(ex));
}

/* scram_server_first - "r=" client nonce server nonce ",s=" salt ",i=" iterations, kept for the
 * AuthMessage and sent as the challenge. */
static void scram_server_first(struct sasl_exchange *ex, const struct scram_attr *client_nonce)
{
	char salt64[SCRAM_B64_MAX];
	const struct auth_scram_key *key = &ex->scram.key;
	base64_encode(key->salt, key->salt_len, salt64, sizeof salt64);
	size_t size = strlen("r=,s=,i=") + client_nonce->len + strlen(ex->nonce) + strlen(salt64) + 10 + 1;
	char *text = xmalloc(size);
	if (!str_format(text, size, "r=%.*s%s,s=%s,i=%u", (int)client_nonce->len, client_nonce->value, ex->nonce,
	                salt64, key->iterations))
		fatal("SCRAM server-first message does not fit in %zu bytes", size);
	ex->scram.nonce_len = client_nonce->len + strlen(ex->nonce);
	ex->scram.server_first = text;
	sasl_set_challenge(ex, text, strlen(text));
}

/* scram_client_first - gs2 header, then [ "m=" ... "," ] "n=" user "," "r=" nonce [ "," extensions ]
 * (RFC 5802 section 7). */
static enum sasl_status scram_client_first(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	const char *msg = (const char *)ex->message;
	size_t len = ex->message_len, header_len = 0;
	char authzid[SASL_AUTHCID_MAX + 1] = "";
	if (memchr(msg, '\0', len))
		return SASL_MALFORMED; /* nothing in the grammar allows one */
	enum sasl_status status = scram_gs2_header(msg, len, &header_len, authzid, sizeof authzid);
	if (status != SASL_GO_ON)
		return status;
	struct scram_reader r = {msg + header_len, msg + len, false};
	struct scram_attr user, nonce;
	if (!scram_next(&r, &user))
		return SASL_MALFORMED;
	if (user.name == 'm')
		return SASL_FAIL; /* a mandatory extension tern does not know: RFC 5802 section 5.1 */
	if (user.name != 'n' || !scram_saslname(user.value, user.len, ex->authcid, sizeof ex->authcid))
		return SASL_MALFORMED;
	if (!scram_next(&r, &nonce) || nonce.name != 'r' || !scram_nonce_ok(nonce.value, nonce.len) ||
	    !scram_skip_extensions(&r))
		return SASL_MALFORMED;
	if (authzid[0] && !str_ieq(authzid, strlen(authzid), ex->authcid))
		return SASL_FAIL; /* no proxy authorization, as for PLAIN */
	if (!scram_load_key(ex, lookup, arg))
		return SASL_TEMPFAIL;
	ex->scram.gs2_header = str_dup_n(msg, header_len);
	ex->scram.client_first_bare = str_dup_n(msg + header_len, len - header_len);
	scram_server_first(ex, &nonce);
	ex->state = SASL_STATE_SCRAM_FINAL;
	return SASL_CHALLENGE;
}

/* scram_check_binding - "c=" holds the base64 of the gs2 header, as no channel binding is in use. */
static enum sasl_status scram_check_binding(const struct sasl_exchange *ex, const struct scram_attr *binding)
{
	size_t size = binding->len / 4 * 3 + 1, got = 0;
	unsigned char *header = xmalloc(size);
	enum sasl_status status = SASL_MALFORMED;
	if (base64_decode(binding->value, binding->len, header, size, &got)) {
		bool same = got == strlen(ex->scram.gs2_header) && memcmp(header, ex->scram.gs2_header, got) == 0;
		status = same ? SASL_GO_ON : SASL_FAIL;
	}
	free(header);
	return status;
}

/* scram_auth_message - client-first-bare "," server-first "," client-final-without-proof, on the heap. */
static char *scram_auth_message(const struct sasl_exchange *ex, const char *final, size_t final_len, size_t *len)
{
	size_t bare_len = strlen(ex->scram.client_first_bare), server_len = strlen(ex->scram.server_first);
	char *text = xmalloc(bare_len + server_len + final_len + 2);
	memcpy(text, ex->scram.client_first_bare, bare_len);
	text[bare_len] = ',';
	memcpy(text + bare_len + 1, ex->scram.server_first, server_len);
	text[bare_len + 1 + server_len] = ',';
	memcpy(text + bare_len + server_len + 2, final, final_len);
	*len = bare_len + server_len + final_len + 2;
	return text;
}

/* scram_server_final - the challenge becomes "v=" ServerSignature. */
static void scram_server_final(struct sasl_exchange *ex, const unsigned char signature[AUTH_SHA256_LEN])
{
	char text[2 + SCRAM_B64_MAX] = "v=";
	base64_encode(signature, AUTH_SHA256_LEN, text + 2, sizeof text - 2);
	sasl_set_challenge(ex, text, strlen(text));
}

/*
 * scram_verify_proof - RFC 5802 section 3: ClientKey = proof XOR
 * HMAC(StoredKey, AuthMessage) must hash to StoredKey. Then the server
 * proves itself with HMAC(ServerKey, AuthMessage). The work is the same for
 * a stand-in key, which never passes.
 */
static enum sasl_status scram_verify_proof(struct sasl_exchange *ex, const char *final, size_t final_len,
                                           const unsigned char proof[AUTH_SHA256_LEN])
{
	const struct auth_scram_key *key = &ex->scram.key;
	unsigned char signature[AUTH_SHA256_LEN], client_key[AUTH_SHA256_LEN], stored_key[AUTH_SHA256_LEN];
	size_t len = 0;
	char *auth_message = scram_auth_message(ex, final, final_len, &len);
	bool computed = auth_hmac_sha256(key->stored_key, sizeof key->stored_key, auth_message, len, signature);
	for (size_t i = 0; i < sizeof client_key; i++)
		client_key[i] = proof[i] ^ signature[i];
	computed = computed && auth_sha256(client_key, sizeof client_key, stored_key);
	bool match =
	        computed && CRYPTO_memcmp(stored_key, key->stored_key, sizeof stored_key) == 0 && ex->scram.key_real;
	if (match)
		computed = auth_hmac_sha256(key->server_key, sizeof key->server_key, auth_message, len, signature);
	if (match && computed)
		scram_server_final(ex, signature);
	OPENSSL_cleanse(signature, sizeof signature);
	OPENSSL_cleanse(client_key, sizeof client_key);
	OPENSSL_cleanse(auth_message, len);
	free(auth_message);
	if (!computed)
		return SASL_TEMPFAIL;
	if (!match)
		return SASL_FAIL;
	ex->state = SASL_STATE_SCRAM_ACK;
	return SASL_CHALLENGE;
}

/* scram_client_final - "c=" binding "," "r=" nonce [ "," extensions ] "," "p=" proof (RFC 5802 section 7). */
static enum sasl_status scram_client_final(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	(void)lookup; /* the key was looked up with client-first */
	(void)arg;
	const char *msg = (const char *)ex->message;
	size_t len = ex->message_len;
	if (memchr(msg, '\0', len))
		return SASL_MALFORMED;
	struct scram_reader r = {msg, msg + len, false};
	struct scram_attr binding, nonce, proof;
	if (!scram_next(&r, &binding) || binding.name != 'c' || !scram_next(&r, &nonce) || nonce.name != 'r')
		return SASL_MALFORMED;
	do {
		if (!scram_next(&r, &proof))
			return SASL_MALFORMED;
	} while (!r.done);
	unsigned char proof_bytes[AUTH_SHA256_LEN];
	size_t proof_len = 0;
	if (proof.name != 'p' || !base64_decode(proof.value, proof.len, proof_bytes, sizeof proof_bytes, &proof_len) ||
	    proof_len != sizeof proof_bytes)
		return SASL_MALFORMED;
	enum sasl_status status = scram_check_binding(ex, &binding);
	if (status != SASL_GO_ON)
		return status;
	if (nonce.len != ex->scram.nonce_len || memcmp(nonce.value, ex->scram.server_first + 2, nonce.len) != 0)
		return SASL_FAIL;
	/* The AuthMessage takes the client-final message up to the ',' before "p=". */
	size_t without_proof = (size_t)(proof.value - msg) - strlen(",p=");
	return scram_verify_proof(ex, msg, without_proof, proof_bytes);
}

/* scram_ack - the client's empty response to server-final, which went as a challenge because SMTP's
 * 235 reply carries no data (RFC 4954 4). */
static enum sasl_status scram_ack(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	(void)lookup;
	(void)arg;
	return ex->message_len == 0 ? SASL_SUCCESS : SASL_MALFORMED;
}

/* sasl_handler_for - what reads the client message in the exchange's state. */
static sasl_handler *sasl_handler_for(const struct sasl_exchange *ex)
{
	static sasl_handler *const first[SASL_MECH_COUNT] = {plain_response, login_user, cram_response,
	                                                     scram_client_first};
	switch (ex->state) {
	case SASL_STATE_FIRST:
		return first[ex->mech];
	case SASL_STATE_LOGIN_PASSWORD:
		return login_password;
	case SASL_STATE_SCRAM_FINAL:
		return scram_client_final;
	case SASL_STATE_SCRAM_ACK:
		return scram_ack;
	default:
		return NULL;
	}
}

/* sasl_receive - act on the decoded message; a final status ends the exchange. */
static enum sasl_status sasl_receive(struct sasl_exchange *ex, sasl_lookup *lookup, void *arg)
{
	sasl_handler *handler = sasl_handler_for(ex);
	enum sasl_status status = handler ? handler(ex, lookup, arg) : SASL_FAIL;
	OPENSSL_cleanse(ex->message, ex->message_len);
	ex->message_len = 0;
	if (status != SASL_CHALLENGE)
		ex->state = SASL_STATE_DONE;
	return status;
}

/* sasl_decode - a client line into ex->message; false if it is not strict base64 or too long. */
static bool sasl_decode(struct sasl_exchange *ex, const char *line, size_t len)
{
	ex->message_len = 0;
	if (len > SASL_LINE_MAX || !base64_decode(line, len, ex->message, SASL_MESSAGE_MAX, &ex->message_len))
		return false;
	ex->message[ex->message_len] = '\0';
	return true;
}

/* sasl_end - a final status without reading a message. */
static enum sasl_status sasl_end(struct sasl_exchange *ex, enum sasl_status status)
{
	ex->state = SASL_STATE_DONE;
	return status;
}

/* sasl_first_challenge - what the server sends when AUTH came without an initial response. */
static enum sasl_status sasl_first_challenge(struct sasl_exchange *ex)
{
	if (ex->mech == SASL_LOGIN)
		sasl_set_challenge(ex, "Username:", strlen("Username:"));
	else if (ex->mech == SASL_CRAM_MD5)
		sasl_set_challenge(ex, ex->nonce, strlen(ex->nonce));
	else
		sasl_set_challenge(ex, "", 0); /* PLAIN and SCRAM: the client speaks first (RFC 4954 4) */
	return SASL_CHALLENGE;
}

enum sasl_status sasl_start(struct sasl_exchange *ex, const char *initial, size_t len, sasl_lookup *lookup, void *arg)
{
	if (ex->state != SASL_STATE_START)
		return sasl_end(ex, SASL_FAIL);
	ex->state = SASL_STATE_FIRST;
	if (!initial)
		return sasl_first_challenge(ex);
	/* In CRAM-MD5 the server speaks first: an initial response cannot be part of it. */
	if (ex->mech == SASL_CRAM_MD5)
		return sasl_end(ex, SASL_MALFORMED);
	if (len == 1 && initial[0] == '=') {
		ex->message_len = 0; /* "=" is the empty initial response (RFC 4954 4) */
		ex->message[0] = '\0';
	} else if (!sasl_decode(ex, initial, len)) {
		return sasl_end(ex, SASL_MALFORMED);
	}
	return sasl_receive(ex, lookup, arg);
}

enum sasl_status sasl_step(struct sasl_exchange *ex, const char *line, size_t len, sasl_lookup *lookup, void *arg)
{
	if (ex->state == SASL_STATE_START || ex->state == SASL_STATE_DONE)
		return sasl_end(ex, SASL_FAIL);
	if (len == 1 && line[0] == '*')
		return sasl_end(ex, SASL_CANCELLED); /* RFC 4954 4 */
	if (!sasl_decode(ex, line, len))
		return sasl_end(ex, SASL_MALFORMED);
	return sasl_receive(ex, lookup, arg);
}
