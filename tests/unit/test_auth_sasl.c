/*
 * test_auth_sasl.c - stored secrets (auth/auth_secret.c) and the server side
 * of the SASL exchanges (auth/auth_sasl.c).
 *
 * The published examples run exactly: RFC 4616 (PLAIN), RFC 2195 (CRAM-MD5)
 * and RFC 7677 section 3 (SCRAM-SHA-256, with the server nonce fixed). Then
 * round trips through secrets made by auth_*_secret, wrong passwords,
 * unknown users, a failing directory, and, per mechanism, the malformed
 * messages, each checked for its status. The SCRAM client side is written
 * here from RFC 5802 section 3 with OpenSSL, independently of the server.
 * Lines reach sasl_start and sasl_step as heap copies of exactly their
 * length, so reading past one is an ASan error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_sasl.h"
#include "auth/auth_secret.h"
#include "unit.h"
#include "util/util_base64.h"

#define OK_CHALLENGE SASL_CHALLENGE
#define VERIFY       SASL_VERIFY
#define SUCCESS      SASL_SUCCESS
#define FAIL         SASL_FAIL
#define MALFORMED    SASL_MALFORMED
#define CANCELLED    SASL_CANCELLED
#define TEMPFAIL     SASL_TEMPFAIL

/* RAW - a string literal that may hold NUL bytes, with its length. */
#define RAW(s) s, sizeof s - 1

static const char *status_name(enum sasl_status status)
{
	static const char *const names[] = {"CHALLENGE", "VERIFY",    "SUCCESS", "FAIL",
	                                    "MALFORMED", "CANCELLED", "TEMPFAIL"};
	return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "(out of range)";
}

#define CHECK_STATUS(got, want, what)                                                                           \
	do {                                                                                                    \
		enum sasl_status gs_ = (got), ws_ = (want);                                                     \
		if (gs_ == ws_)                                                                                 \
			unit_passed++;                                                                          \
		else                                                                                            \
			UNIT_FAIL("%s: %s: got %s, want %s", #got, (what), status_name(gs_), status_name(ws_)); \
	} while (0)

/* The directory the lookup callback reads: a few users, and a switch that makes it fail. */
struct test_user {
	const char *name;
	char password_hash[AUTH_SECRET_MAX];
	char scram_sha256[AUTH_SECRET_MAX];
	char cram_md5[AUTH_SECRET_MAX];
};

struct directory {
	struct test_user users[4];
	bool down;
	char last_authcid[SASL_AUTHCID_MAX + 1];
};

static struct directory dir;

#define TIM_PASSWORD  "tanstaaftanstaaf"
#define LONG_PASSWORD "a password longer than one MD5 block, which HMAC hashes before using it as the key: ok"

/* RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 rounds. */
#define RFC7677_SECRET                                                                                             \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAm" \
	"Q7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define RFC7677_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC7677_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static int test_lookup(void *arg, const char *authcid, struct sasl_user *user)
{
	struct directory *d = arg;
	snprintf(d->last_authcid, sizeof d->last_authcid, "%s", authcid);
	if (d->down)
		return -1;
	for (size_t i = 0; i < sizeof d->users / sizeof d->users[0]; i++) {
		const struct test_user *u = &d->users[i];
		if (u->name && strcasecmp(u->name, authcid) == 0) {
			memcpy(user->password_hash, u->password_hash, sizeof user->password_hash);
			memcpy(user->scram_sha256, u->scram_sha256, sizeof user->scram_sha256);
			memcpy(user->cram_md5, u->cram_md5, sizeof user->cram_md5);
			return 1;
		}
	}
	return 0;
}

/* make_directory - tim has every secret, "user" only the RFC 7677 one, nopass none, "long" a CRAM
 * secret made from a password longer than a block. */
static void make_directory(void)
{
	struct test_user *tim = &dir.users[0], *user = &dir.users[1], *nopass = &dir.users[2], *lng = &dir.users[3];
	tim->name = "tim";
	CHECK(auth_password_hash(TIM_PASSWORD, tim->password_hash, sizeof tim->password_hash));
	CHECK(auth_scram_secret(TIM_PASSWORD, tim->scram_sha256, sizeof tim->scram_sha256));
	CHECK(auth_cram_secret(TIM_PASSWORD, tim->cram_md5, sizeof tim->cram_md5));
	user->name = "user";
	snprintf(user->scram_sha256, sizeof user->scram_sha256, "%s", RFC7677_SECRET);
	nopass->name = "nopass";
	lng->name = "long";
	CHECK(auth_cram_secret(LONG_PASSWORD, lng->cram_md5, sizeof lng->cram_md5));
}

/* b64 - base64 of raw[0..len), in a static buffer. */
static const char *b64(const void *raw, size_t len)
{
	static char text[SASL_LINE_MAX + 8];
	if (base64_encode(raw, len, text, sizeof text) == 0 && len > 0)
		UNIT_FAIL("b64: %zu bytes do not fit", len);
	return text;
}

/* unb64 - the decoded text of a challenge, NUL-terminated, in a static buffer ("?" if it does not decode). */
static const char *unb64(const char *text)
{
	static unsigned char raw[SASL_LINE_MAX];
	size_t len = 0;
	if (!base64_decode(text, strlen(text), raw, sizeof raw - 1, &len))
		return "?";
	raw[len] = '\0';
	return (const char *)raw;
}

/* start_line - sasl_start with a heap copy of the initial response (NULL: none). */
static enum sasl_status start_line(struct sasl_exchange *ex, const char *initial)
{
	if (!initial)
		return sasl_start(ex, NULL, 0, test_lookup, &dir);
	size_t len = strlen(initial);
	char *copy = malloc(len ? len : 1);
	memcpy(copy, initial, len);
	enum sasl_status status = sasl_start(ex, copy, len, test_lookup, &dir);
	free(copy);
	return status;
}

/* step_line - sasl_step with a heap copy of the line. */
static enum sasl_status step_line(struct sasl_exchange *ex, const char *line)
{
	size_t len = strlen(line);
	char *copy = malloc(len ? len : 1);
	memcpy(copy, line, len);
	enum sasl_status status = sasl_step(ex, copy, len, test_lookup, &dir);
	free(copy);
	return status;
}

static enum sasl_status start_raw(struct sasl_exchange *ex, const char *raw, size_t len)
{
	return start_line(ex, b64(raw, len));
}

static enum sasl_status step_raw(struct sasl_exchange *ex, const char *raw, size_t len)
{
	return step_line(ex, b64(raw, len));
}

static enum sasl_status start_text(struct sasl_exchange *ex, const char *text)
{
	return start_raw(ex, text, strlen(text));
}

static enum sasl_status step_text(struct sasl_exchange *ex, const char *text)
{
	return step_raw(ex, text, strlen(text));
}

static void test_mech_names(void)
{
	enum sasl_mech mech = SASL_MECH_COUNT;
	CHECK(sasl_mech_from_name(RAW("PLAIN"), &mech) && mech == SASL_PLAIN);
	CHECK(sasl_mech_from_name(RAW("login"), &mech) && mech == SASL_LOGIN);
	CHECK(sasl_mech_from_name(RAW("Cram-MD5"), &mech) && mech == SASL_CRAM_MD5);
	CHECK(sasl_mech_from_name(RAW("scram-sha-256"), &mech) && mech == SASL_SCRAM_SHA_256);
	CHECK(sasl_mech_from_name("PLAIN AHRpbQ==", 5, &mech) && mech == SASL_PLAIN);
	CHECK(!sasl_mech_from_name(RAW("SCRAM-SHA-1"), &mech));
	CHECK(!sasl_mech_from_name(RAW("SCRAM-SHA-256-PLUS"), &mech));
	CHECK(!sasl_mech_from_name(RAW("PLAINX"), &mech));
	CHECK(!sasl_mech_from_name(RAW("PLAI"), &mech));
	CHECK(!sasl_mech_from_name(RAW(""), &mech));
	CHECK_STR(sasl_mech_name(SASL_PLAIN), "PLAIN");
	CHECK_STR(sasl_mech_name(SASL_LOGIN), "LOGIN");
	CHECK_STR(sasl_mech_name(SASL_CRAM_MD5), "CRAM-MD5");
	CHECK_STR(sasl_mech_name(SASL_SCRAM_SHA_256), "SCRAM-SHA-256");
	CHECK_STR(sasl_mech_name(SASL_MECH_COUNT), "");
	CHECK(sasl_new(SASL_MECH_COUNT, "mx.example") == NULL);
	sasl_free(NULL);
}

static void test_password_hash(void)
{
	char hash[AUTH_SECRET_MAX], again[AUTH_SECRET_MAX], small[16];
	CHECK(auth_password_hash("correct horse", hash, sizeof hash));
	CHECK(strncmp(hash, "$y$", 3) == 0 || strncmp(hash, "$6$", 3) == 0);
	CHECK(auth_password_check("correct horse", hash));
	CHECK(!auth_password_check("correct horse ", hash));
	CHECK(!auth_password_check("Correct horse", hash));
	CHECK(!auth_password_check("", hash));
	CHECK(!auth_password_check("correct horse", ""));
	CHECK(!auth_password_check("correct horse", "*"));
	CHECK(!auth_password_check("correct horse", "$y$"));
	CHECK(auth_password_hash("correct horse", again, sizeof again));
	CHECK(strcmp(hash, again) != 0); /* a fresh salt each time */
	CHECK(auth_password_check("correct horse", again));
	CHECK(!auth_password_hash("correct horse", small, sizeof small));
}

static void test_scram_secret(void)
{
	char secret[AUTH_SECRET_MAX], again[AUTH_SECRET_MAX], small[64];
	CHECK(auth_scram_secret("pencil", secret, sizeof secret));
	CHECK(auth_scram_secret("pencil", again, sizeof again));
	CHECK(strcmp(secret, again) != 0); /* a fresh salt each time */
	/* SCRAM-SHA-256$4096:<16 bytes>$<32 bytes>:<32 bytes>, each in base64 */
	const char *prefix = "SCRAM-SHA-256$4096:";
	CHECK(strncmp(secret, prefix, strlen(prefix)) == 0);
	const char *salt = secret + strlen(prefix);
	CHECK(strlen(salt) == 24 + 1 + 44 + 1 + 44);
	CHECK(salt[24] == '$' && salt[24 + 1 + 44] == ':');
	unsigned char raw[48];
	size_t len = 0;
	CHECK(base64_decode(salt, 24, raw, sizeof raw, &len) && len == 16);
	CHECK(base64_decode(salt + 25, 44, raw, sizeof raw, &len) && len == 32);
	CHECK(base64_decode(salt + 70, 44, raw, sizeof raw, &len) && len == 32);
	CHECK(!auth_scram_secret("pencil", small, sizeof small));
}

static void test_cram_secret(void)
{
	char secret[AUTH_SECRET_MAX], again[AUTH_SECRET_MAX], other[AUTH_SECRET_MAX];
	CHECK(auth_cram_secret(TIM_PASSWORD, secret, sizeof secret));
	CHECK(auth_cram_secret(TIM_PASSWORD, again, sizeof again));
	CHECK(auth_cram_secret("tanstaaftanstaag", other, sizeof other));
	CHECK_STR(secret, again); /* no salt: the HMAC key alone decides it */
	CHECK(strcmp(secret, other) != 0);
	CHECK(strncmp(secret, "CRAM-MD5$", 9) == 0);
	CHECK_INT(strlen(secret), 9 + 64);
	CHECK(strspn(secret + 9, "0123456789abcdef") == 64);
	CHECK(strstr(secret, TIM_PASSWORD) == NULL);
	CHECK(!auth_cram_secret(TIM_PASSWORD, other, 9 + 64)); /* no room for the NUL */
}

/* plain_verify - a PLAIN exchange with one initial response; its status, and for VERIFY whether
 * the password check the caller would run passes. */
static enum sasl_status plain_verify(const char *raw, size_t len, bool *check)
{
	struct sasl_exchange *ex = sasl_new(SASL_PLAIN, "mx.example");
	enum sasl_status status = start_raw(ex, raw, len);
	*check = status == VERIFY && auth_password_check(sasl_password(ex), sasl_password_hash(ex));
	sasl_free(ex);
	return status;
}

struct message_case {
	const char *raw;
	size_t len;
	enum sasl_status status;
	const char *authcid; /* after the status; NULL: not checked */
};

/* PLAIN messages with an unknown or wrongly spelled password: the grammar decides the status. */
static const struct message_case plain_cases[] = {
        {RAW("\0tim\0wrong"), VERIFY, "tim"},
        {RAW("tim\0tim\0wrong"), VERIFY, "tim"},
        {RAW("TIM\0tim\0wrong"), VERIFY, "tim"},       /* authzid compared without case */
        {RAW("Ursel\0Kurt\0xipj3plmq"), FAIL, "Kurt"}, /* RFC 4616 section 4: no proxy authorization */
        {RAW("tom\0tim\0wrong"), FAIL, "tim"},
        {RAW("tim\0tanstaaftanstaaf"), MALFORMED, NULL}, /* one NUL */
        {RAW("\0\0pw"), MALFORMED, NULL},                /* empty authcid */
        {RAW("\0tim\0"), MALFORMED, NULL},               /* empty password */
        {RAW("\0tim\0pw\0"), MALFORMED, NULL},           /* a third NUL */
        {RAW("\0tim\0pw\0x"), MALFORMED, NULL},
        {RAW("\0tim"), MALFORMED, NULL},
        {RAW("\0"), MALFORMED, NULL},
        {RAW("tim"), MALFORMED, NULL},
        {RAW(""), MALFORMED, NULL},
};

static void test_plain_messages(void)
{
	for (size_t i = 0; i < sizeof plain_cases / sizeof plain_cases[0]; i++) {
		const struct message_case *c = &plain_cases[i];
		struct sasl_exchange *ex = sasl_new(SASL_PLAIN, "mx.example");
		char what[32];
		snprintf(what, sizeof what, "plain case %zu", i);
		CHECK_STATUS(start_raw(ex, c->raw, c->len), c->status, what);
		if (c->authcid)
			CHECK_STR(sasl_authcid(ex), c->authcid);
		sasl_free(ex);
	}
}

static void test_plain_lengths(void)
{
	char msg[2 + 256 + 1025 + 1];
	bool check;
	/* authcid of SASL_AUTHCID_MAX bytes, then one more */
	msg[0] = '\0';
	memset(msg + 1, 'n', 256);
	msg[1 + 255] = '\0';
	memcpy(msg + 1 + 256, "pw", 2);
	CHECK_STATUS(plain_verify(msg, 1 + 256 + 2, &check), VERIFY, "authcid of 255");
	msg[1 + 255] = 'n';
	msg[1 + 256] = '\0';
	memcpy(msg + 2 + 256, "pw", 2);
	CHECK_STATUS(plain_verify(msg, 2 + 256 + 2, &check), MALFORMED, "authcid of 256");
	/* password of SASL_PASSWORD_MAX bytes, then one more */
	memcpy(msg, "\0tim\0", 5);
	memset(msg + 5, 'p', 1025);
	CHECK_STATUS(plain_verify(msg, 5 + 1024, &check), VERIFY, "password of 1024");
	CHECK_STATUS(plain_verify(msg, 5 + 1025, &check), MALFORMED, "password of 1025");
}

static void test_plain_verify(void)
{
	bool check = false;
	/* RFC 4616 section 4, the first example, exactly as sent */
	struct sasl_exchange *ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STATUS(start_line(ex, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), VERIFY, "RFC 4616");
	CHECK_STR(sasl_authcid(ex), "tim");
	CHECK_STR(sasl_password(ex), TIM_PASSWORD);
	CHECK_STR(sasl_password_hash(ex), dir.users[0].password_hash);
	CHECK(auth_password_check(sasl_password(ex), sasl_password_hash(ex)));
	sasl_free(ex);
	/* ... and the second: Kurt may not act as Ursel */
	ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STATUS(start_line(ex, "VXJzZWwAS3VydAB4aXBqM3BsbXE="), FAIL, "RFC 4616 authzid");
	sasl_free(ex);

	CHECK_STATUS(plain_verify(RAW("\0TIM\0" TIM_PASSWORD), &check), VERIFY, "name in capitals");
	CHECK(check);
	CHECK_STR(dir.last_authcid, "TIM"); /* the lookup gets the name as the client gave it */
	CHECK_STATUS(plain_verify(RAW("\0tim\0tanstaaftanstaag"), &check), VERIFY, "wrong password");
	CHECK(!check);
	CHECK_STATUS(plain_verify(RAW("\0nopass\0x"), &check), VERIFY, "user without a password");
	CHECK(!check);

	/* An unknown user gets a dummy hash of the same kind, and the check fails. */
	ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STATUS(start_raw(ex, RAW("\0nobody\0" TIM_PASSWORD)), VERIFY, "unknown user");
	CHECK(strncmp(sasl_password_hash(ex), dir.users[0].password_hash, 3) == 0);
	CHECK(!auth_password_check(sasl_password(ex), sasl_password_hash(ex)));
	sasl_free(ex);

	dir.down = true;
	CHECK_STATUS(plain_verify(RAW("\0tim\0" TIM_PASSWORD), &check), TEMPFAIL, "directory down");
	dir.down = false;
}

static void test_plain_exchange(void)
{
	/* without an initial response: an empty challenge, then the message */
	struct sasl_exchange *ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STR(sasl_challenge(ex), "");
	CHECK_STR(sasl_authcid(ex), "");
	CHECK_STATUS(start_line(ex, NULL), OK_CHALLENGE, "no initial response");
	CHECK_STR(sasl_challenge(ex), "");
	CHECK_STATUS(step_line(ex, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), VERIFY, "response");
	CHECK_STR(sasl_authcid(ex), "tim");
	CHECK_STATUS(step_line(ex, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), FAIL, "a line after the end");
	sasl_free(ex);

	struct {
		const char *initial, *line; /* line NULL: no step */
		enum sasl_status status;
	} cases[] = {
	        {"=", NULL, MALFORMED},                              /* empty initial response */
	        {"AHRpbQB0YW5zdGFhZnRhbnN0YWFm=", NULL, MALFORMED},  /* bad base64 */
	        {"AHRpbQB0YW5zdGFhZnRhbnN0YWF", NULL, MALFORMED},    /* cut short */
	        {"*", NULL, MALFORMED},                              /* cancel is for responses */
	        {NULL, "*", CANCELLED},                              /* RFC 4954 4 */
	        {NULL, "", MALFORMED},                               /* an empty message */
	        {NULL, "=", MALFORMED},                              /* "=" only marks an initial response */
	        {NULL, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r", MALFORMED}, /* a stray CR */
	        {NULL, "**", MALFORMED},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ex = sasl_new(SASL_PLAIN, "mx.example");
		enum sasl_status status = start_line(ex, cases[i].initial);
		if (cases[i].line)
			status = step_line(ex, cases[i].line);
		CHECK_STATUS(status, cases[i].status, cases[i].line ? cases[i].line : cases[i].initial);
		sasl_free(ex);
	}
}

/* The longest line is decoded; one quantum more is refused before decoding. */
static void test_line_limit(void)
{
	static char msg[SASL_LINE_MAX / 4 * 3 + 3];
	size_t len = SASL_LINE_MAX / 4 * 3;
	memset(msg, 'x', len - 7); /* an authzid that is not tim */
	memcpy(msg + len - 7, "\0tim\0pw", 7);
	CHECK_INT(strlen(b64(msg, len)), SASL_LINE_MAX);
	struct sasl_exchange *ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STATUS(start_raw(ex, msg, len), FAIL, "longest line");
	sasl_free(ex);
	memset(msg, 'x', len - 4);
	memcpy(msg + len - 4, "\0tim\0pw", 7);
	ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STATUS(start_raw(ex, msg, len + 3), MALFORMED, "line too long");
	sasl_free(ex);
	ex = sasl_new(SASL_PLAIN, "mx.example");
	start_line(ex, NULL);
	CHECK_STATUS(step_raw(ex, msg, len + 3), MALFORMED, "response line too long");
	sasl_free(ex);
}

static void test_login(void)
{
	struct sasl_exchange *ex = sasl_new(SASL_LOGIN, "mx.example");
	CHECK_STATUS(start_line(ex, NULL), OK_CHALLENGE, "LOGIN");
	CHECK_STR(sasl_challenge(ex), "VXNlcm5hbWU6");
	CHECK_STR(unb64(sasl_challenge(ex)), "Username:");
	CHECK_STATUS(step_text(ex, "tim"), OK_CHALLENGE, "LOGIN user");
	CHECK_STR(sasl_challenge(ex), "UGFzc3dvcmQ6");
	CHECK_STR(unb64(sasl_challenge(ex)), "Password:");
	CHECK_STR(sasl_authcid(ex), "tim");
	CHECK_STATUS(step_text(ex, TIM_PASSWORD), VERIFY, "LOGIN password");
	CHECK(auth_password_check(sasl_password(ex), sasl_password_hash(ex)));
	sasl_free(ex);

	/* the initial response is the user name */
	ex = sasl_new(SASL_LOGIN, "mx.example");
	CHECK_STATUS(start_text(ex, "tim"), OK_CHALLENGE, "LOGIN with initial response");
	CHECK_STR(unb64(sasl_challenge(ex)), "Password:");
	CHECK_STATUS(step_text(ex, "wrong"), VERIFY, "LOGIN wrong password");
	CHECK(!auth_password_check(sasl_password(ex), sasl_password_hash(ex)));
	sasl_free(ex);

	ex = sasl_new(SASL_LOGIN, "mx.example");
	CHECK_STATUS(start_text(ex, "nobody"), OK_CHALLENGE, "LOGIN unknown user");
	CHECK_STATUS(step_text(ex, TIM_PASSWORD), VERIFY, "LOGIN unknown user");
	CHECK(sasl_password_hash(ex)[0] == '$');
	CHECK(!auth_password_check(sasl_password(ex), sasl_password_hash(ex)));
	sasl_free(ex);

	char name[SASL_AUTHCID_MAX + 2];
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	struct {
		const char *user, *password; /* raw; user "": the empty initial response; password NULL: no step */
		size_t user_len, password_len;
		enum sasl_status status;
	} cases[] = {
	        {"", NULL, 0, 0, MALFORMED},                 /* an empty name */
	        {"t\0m", NULL, 3, 0, MALFORMED},             /* a NUL in the name */
	        {name, NULL, sizeof name - 1, 0, MALFORMED}, /* SASL_AUTHCID_MAX + 1 */
	        {name, "pw", sizeof name - 2, 2, VERIFY},    /* SASL_AUTHCID_MAX */
	        {"tim", "", 3, 0, MALFORMED},                /* an empty password */
	        {"tim", "p\0w", 3, 3, MALFORMED},            /* a NUL in the password */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "LOGIN case %zu", i);
		ex = sasl_new(SASL_LOGIN, "mx.example");
		enum sasl_status status =
		        cases[i].user_len ? start_raw(ex, cases[i].user, cases[i].user_len) : start_line(ex, "=");
		if (cases[i].password && status == OK_CHALLENGE)
			status = step_raw(ex, cases[i].password, cases[i].password_len);
		CHECK_STATUS(status, cases[i].status, what);
		sasl_free(ex);
	}

	ex = sasl_new(SASL_LOGIN, "mx.example");
	start_line(ex, NULL);
	CHECK_STATUS(step_line(ex, "*"), CANCELLED, "LOGIN cancelled at the name");
	sasl_free(ex);
	ex = sasl_new(SASL_LOGIN, "mx.example");
	start_text(ex, "tim");
	CHECK_STATUS(step_line(ex, "*"), CANCELLED, "LOGIN cancelled at the password");
	sasl_free(ex);
	ex = sasl_new(SASL_LOGIN, "mx.example");
	start_text(ex, "tim");
	dir.down = true;
	CHECK_STATUS(step_text(ex, TIM_PASSWORD), TEMPFAIL, "LOGIN directory down");
	dir.down = false;
	sasl_free(ex);
}

#define RFC2195_CHALLENGE "<1896.697170952@postoffice.reston.mci.net>"

/* cram_try - a CRAM-MD5 exchange with the RFC 2195 challenge and one response. */
static enum sasl_status cram_try(const char *raw, size_t len)
{
	struct sasl_exchange *ex = sasl_new(SASL_CRAM_MD5, "postoffice.reston.mci.net");
	sasl_set_nonce_for_test(ex, RFC2195_CHALLENGE);
	enum sasl_status status = start_line(ex, NULL);
	if (status == OK_CHALLENGE)
		status = step_raw(ex, raw, len);
	sasl_free(ex);
	return status;
}

static const struct message_case cram_cases[] = {
        {RAW("tim b913a602c7eda7a495b4e6e7334d3890"), SUCCESS, NULL}, /* RFC 2195 section 2 */
        {RAW("tim B913A602C7EDA7A495B4E6E7334D3890"), SUCCESS, NULL},
        {RAW("TIM b913a602c7eda7a495b4e6e7334d3890"), SUCCESS, NULL},
        {RAW("tim b913a602c7eda7a495b4e6e7334d3891"), FAIL, NULL},
        {RAW("nobody b913a602c7eda7a495b4e6e7334d3890"), FAIL, NULL},
        {RAW("nopass b913a602c7eda7a495b4e6e7334d3890"), FAIL, NULL},
        {RAW("user b913a602c7eda7a495b4e6e7334d3890"), FAIL, NULL}, /* a SCRAM secret only */
        {RAW("tim"), MALFORMED, NULL},
        {RAW("tim "), MALFORMED, NULL},
        {RAW("tim b913a602c7eda7a495b4e6e7334d389"), MALFORMED, NULL},
        {RAW("tim b913a602c7eda7a495b4e6e7334d38900"), MALFORMED, NULL},
        {RAW("tim g913a602c7eda7a495b4e6e7334d3890"), MALFORMED, NULL},
        {RAW("tim b913a602c7eda7a495b4e6e7334d389 "), MALFORMED, NULL},
        {RAW(" b913a602c7eda7a495b4e6e7334d3890"), MALFORMED, NULL},
        {RAW("t\0m b913a602c7eda7a495b4e6e7334d3890"), MALFORMED, NULL},
        {RAW("b913a602c7eda7a495b4e6e7334d3890"), MALFORMED, NULL},
        {RAW(""), MALFORMED, NULL},
};

/* hmac_md5_hex - what a CRAM-MD5 client answers, computed with OpenSSL's HMAC. */
static void hmac_md5_hex(const char *password, const char *challenge, char hex[33])
{
	unsigned char mac[16];
	unsigned int len = 0;
	HMAC(EVP_md5(), password, (int)strlen(password), (const unsigned char *)challenge, strlen(challenge), mac,
	     &len);
	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

static void test_cram(void)
{
	for (size_t i = 0; i < sizeof cram_cases / sizeof cram_cases[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "CRAM-MD5 case %zu", i);
		CHECK_STATUS(cram_try(cram_cases[i].raw, cram_cases[i].len), cram_cases[i].status, what);
	}

	/* the challenge as sent, and the name after success */
	struct sasl_exchange *ex = sasl_new(SASL_CRAM_MD5, "postoffice.reston.mci.net");
	sasl_set_nonce_for_test(ex, RFC2195_CHALLENGE);
	CHECK_STATUS(start_line(ex, NULL), OK_CHALLENGE, "CRAM-MD5");
	CHECK_STR(sasl_challenge(ex), "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
	CHECK_STATUS(step_text(ex, "tim b913a602c7eda7a495b4e6e7334d3890"), SUCCESS, "RFC 2195");
	CHECK_STR(sasl_authcid(ex), "tim");
	sasl_free(ex);

	/* a fresh challenge each time, in the RFC 2195 form, naming the host */
	struct sasl_exchange *a = sasl_new(SASL_CRAM_MD5, "mx.example.org");
	struct sasl_exchange *b = sasl_new(SASL_CRAM_MD5, NULL);
	start_line(a, NULL);
	start_line(b, NULL);
	char first[SASL_AUTHCID_MAX];
	snprintf(first, sizeof first, "%s", unb64(sasl_challenge(a)));
	unsigned long long digits = 0;
	long long when = 0;
	int end = 0;
	CHECK(sscanf(first, "<%llu.%lld@mx.example.org>%n", &digits, &when, &end) == 2 && first[end] == '\0');
	CHECK(strstr(unb64(sasl_challenge(b)), "@localhost>") != NULL);
	CHECK(strcmp(first, unb64(sasl_challenge(b))) != 0);
	/* a key longer than a block, against OpenSSL's HMAC-MD5 */
	char hex[33], response[64];
	hmac_md5_hex(LONG_PASSWORD, first, hex);
	snprintf(response, sizeof response, "long %s", hex);
	CHECK_STATUS(step_text(a, response), SUCCESS, "CRAM-MD5 long password");
	sasl_free(a);
	sasl_free(b);

	ex = sasl_new(SASL_CRAM_MD5, "mx.example");
	CHECK_STATUS(start_text(ex, "tim b913a602c7eda7a495b4e6e7334d3890"), MALFORMED, "CRAM-MD5 initial response");
	sasl_free(ex);
	ex = sasl_new(SASL_CRAM_MD5, "mx.example");
	start_line(ex, NULL);
	CHECK_STATUS(step_line(ex, "*"), CANCELLED, "CRAM-MD5 cancelled");
	sasl_free(ex);
	ex = sasl_new(SASL_CRAM_MD5, "mx.example");
	start_line(ex, NULL);
	dir.down = true;
	CHECK_STATUS(step_text(ex, "tim b913a602c7eda7a495b4e6e7334d3890"), TEMPFAIL, "CRAM-MD5 directory down");
	dir.down = false;
	sasl_free(ex);
}

/* The client side of SCRAM-SHA-256 (RFC 5802 section 3), enough to answer a server-first message. */
struct scram_client {
	const char *password;
	const char *gs2_header;
	char first_bare[512];
	char final[640];           /* room for without_proof, ",p=" and the proof */
	char server_signature[64]; /* "v=..." expected from the server */
};

/* scram_attr - the value of attribute name in a SCRAM message, copied into out. */
static bool scram_attr(const char *msg, char name, char *out, size_t size)
{
	for (const char *p = msg; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (p[0] == name && p[1] == '=') {
			size_t len = strcspn(p + 2, ",");
			if (len >= size)
				return false;
			memcpy(out, p + 2, len);
			out[len] = '\0';
			return true;
		}
	}
	return false;
}

/* scram_client_answer - client-final for the server-first message, and the server signature to expect. */
static bool scram_client_answer(struct scram_client *c, const char *server_first)
{
	char salt64[128], iterations[16], nonce[256], binding[128], auth_message[2048];
	unsigned char salt[96], salted[32], client_key[32], stored_key[32], server_key[32], signature[32];
	unsigned char proof[32];
	size_t salt_len = 0;
	unsigned int len = 0;
	if (!scram_attr(server_first, 's', salt64, sizeof salt64) ||
	    !scram_attr(server_first, 'i', iterations, sizeof iterations) ||
	    !scram_attr(server_first, 'r', nonce, sizeof nonce) ||
	    !base64_decode(salt64, strlen(salt64), salt, sizeof salt, &salt_len))
		return false;
	snprintf(binding, sizeof binding, "%s", b64(c->gs2_header, strlen(c->gs2_header)));
	char without_proof[512];
	snprintf(without_proof, sizeof without_proof, "c=%s,r=%s", binding, nonce);
	snprintf(auth_message, sizeof auth_message, "%s,%s,%s", c->first_bare, server_first, without_proof);
	PKCS5_PBKDF2_HMAC(c->password, (int)strlen(c->password), salt, (int)salt_len, (int)strtol(iterations, NULL, 10),
	                  EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, client_key, &len);
	EVP_Digest(client_key, 32, stored_key, &len, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), stored_key, 32, (const unsigned char *)auth_message, strlen(auth_message), signature, &len);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ signature[i];
	snprintf(c->final, sizeof c->final, "%s,p=%s", without_proof, b64(proof, 32));
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, server_key, &len);
	HMAC(EVP_sha256(), server_key, 32, (const unsigned char *)auth_message, strlen(auth_message), signature, &len);
	snprintf(c->server_signature, sizeof c->server_signature, "v=%s", b64(signature, 32));
	return true;
}

/* scram_login - a whole SCRAM exchange for name and password; the status at the end. */
static enum sasl_status scram_login(const char *gs2_header, const char *name, const char *password)
{
	struct scram_client c = {.password = password, .gs2_header = gs2_header};
	char first[600];
	snprintf(c.first_bare, sizeof c.first_bare, "n=%s,r=fyko+d2lbbFgONRv9qkxdawL", name);
	snprintf(first, sizeof first, "%s%s", gs2_header, c.first_bare);
	struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	enum sasl_status status = start_text(ex, first);
	if (status == OK_CHALLENGE && !scram_client_answer(&c, unb64(sasl_challenge(ex))))
		UNIT_FAIL("server-first \"%s\" does not parse", unb64(sasl_challenge(ex)));
	if (status == OK_CHALLENGE)
		status = step_text(ex, c.final);
	if (status == OK_CHALLENGE && strcmp(unb64(sasl_challenge(ex)), c.server_signature) != 0)
		UNIT_FAIL("server-final: got \"%s\", want \"%s\"", unb64(sasl_challenge(ex)), c.server_signature);
	if (status == OK_CHALLENGE)
		status = step_line(ex, "");
	sasl_free(ex);
	return status;
}

/* The exchange of RFC 7677 section 3, message for message. */
static void test_scram_rfc7677(void)
{
	struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	sasl_set_nonce_for_test(ex, RFC7677_SERVER_NONCE);
	CHECK_STATUS(start_text(ex, "n,,n=user,r=" RFC7677_CLIENT_NONCE), OK_CHALLENGE, "client-first");
	CHECK_STR(unb64(sasl_challenge(ex)),
	          "r=" RFC7677_CLIENT_NONCE RFC7677_SERVER_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	CHECK_STR(sasl_authcid(ex), "user");
	CHECK_STATUS(step_text(ex, "c=biws,r=" RFC7677_CLIENT_NONCE RFC7677_SERVER_NONCE
	                           ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
	             OK_CHALLENGE, "client-final");
	CHECK_STR(unb64(sasl_challenge(ex)), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	CHECK_STATUS(step_line(ex, ""), SUCCESS, "empty response to server-final");
	CHECK_STR(sasl_authcid(ex), "user");
	CHECK_STATUS(step_line(ex, ""), FAIL, "a line after the end");
	sasl_free(ex);

	/* the same without an initial response: an empty challenge first */
	ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	sasl_set_nonce_for_test(ex, RFC7677_SERVER_NONCE);
	CHECK_STATUS(start_line(ex, NULL), OK_CHALLENGE, "no initial response");
	CHECK_STR(sasl_challenge(ex), "");
	CHECK_STATUS(step_text(ex, "n,,n=user,r=" RFC7677_CLIENT_NONCE), OK_CHALLENGE, "client-first");
	CHECK_STATUS(step_text(ex, "c=biws,r=" RFC7677_CLIENT_NONCE RFC7677_SERVER_NONCE
	                           ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
	             OK_CHALLENGE, "client-final");
	CHECK_STATUS(step_line(ex, ""), SUCCESS, "empty response to server-final");
	sasl_free(ex);
}

static void test_scram_logins(void)
{
	CHECK_STATUS(scram_login("n,,", "user", "pencil"), SUCCESS, "RFC 7677 user, random nonce");
	CHECK_STATUS(scram_login("n,,", "tim", TIM_PASSWORD), SUCCESS, "auth_scram_secret round trip");
	CHECK_STATUS(scram_login("n,,", "TIM", TIM_PASSWORD), SUCCESS, "name in capitals");
	CHECK_STATUS(scram_login("y,,", "tim", TIM_PASSWORD), SUCCESS, "client could bind");
	CHECK_STATUS(scram_login("n,a=tim,", "tim", TIM_PASSWORD), SUCCESS, "authzid equal to the name");
	CHECK_STATUS(scram_login("n,,", "tim", "tanstaaftanstaag"), FAIL, "wrong password");
	CHECK_STATUS(scram_login("n,,", "user", "Pencil"), FAIL, "wrong password");
	CHECK_STATUS(scram_login("n,,", "nobody", "pencil"), FAIL, "unknown user");
	CHECK_STATUS(scram_login("n,,", "nopass", "pencil"), FAIL, "user without a SCRAM secret");
	CHECK_STATUS(scram_login("n,a=user,", "tim", TIM_PASSWORD), FAIL, "authzid of someone else");
}

/* server_first_salt - the s= an exchange answers name with. */
static void server_first_salt(const char *name, char *salt, size_t size)
{
	char first[300];
	snprintf(first, sizeof first, "n,,n=%s,r=abc", name);
	struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	CHECK_STATUS(start_text(ex, first), OK_CHALLENGE, name);
	const char *server_first = unb64(sasl_challenge(ex));
	char iterations[16];
	if (!scram_attr(server_first, 's', salt, size) || !scram_attr(server_first, 'i', iterations, sizeof iterations))
		UNIT_FAIL("server-first \"%s\": no s= or i=", server_first);
	CHECK_STR(iterations, "4096");
	sasl_free(ex);
}

/* Unknown names look like known ones: a 16-byte salt, always the same for one name. */
static void test_scram_unknown_users(void)
{
	char a[64], b[64], c[64], d[64], e[64];
	unsigned char raw[64];
	size_t len = 0;
	server_first_salt("nobody", a, sizeof a);
	server_first_salt("nobody", b, sizeof b);
	server_first_salt("NoBody", c, sizeof c);
	server_first_salt("somebody", d, sizeof d);
	server_first_salt("nopass", e, sizeof e);
	CHECK(base64_decode(a, strlen(a), raw, sizeof raw, &len) && len == 16);
	CHECK_STR(a, b);
	CHECK_STR(a, c);
	CHECK(strcmp(a, d) != 0);
	CHECK(base64_decode(e, strlen(e), raw, sizeof raw, &len) && len == 16);

	struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	dir.down = true;
	CHECK_STATUS(start_text(ex, "n,,n=user,r=abc"), TEMPFAIL, "SCRAM directory down");
	dir.down = false;
	sasl_free(ex);
}

static const struct message_case scram_first_cases[] = {
        {RAW("n,,n=user,r=abc"), OK_CHALLENGE, "user"},
        {RAW("y,,n=user,r=abc"), OK_CHALLENGE, "user"},
        {RAW("n,a=user,n=user,r=abc"), OK_CHALLENGE, "user"},
        {RAW("n,a=USER,n=user,r=abc"), OK_CHALLENGE, "user"},
        {RAW("n,,n=user,r=abc,x=extension"), OK_CHALLENGE, "user"},
        {RAW("n,,n=us=2Cer,r=abc"), OK_CHALLENGE, "us,er"},
        {RAW("n,,n=us=3Der,r=abc"), OK_CHALLENGE, "us=er"},
        {RAW("n,,n=user,r=!~+-"), OK_CHALLENGE, "user"},
        {RAW("n,a=other,n=user,r=abc"), FAIL, NULL},     /* no proxy authorization */
        {RAW("p=tls-unique,,n=user,r=abc"), FAIL, NULL}, /* no channel binding */
        {RAW("p=tls-server-end-point,a=user,n=user,r=abc"), FAIL, NULL},
        {RAW("n,,m=ext,n=user,r=abc"), FAIL, NULL}, /* a mandatory extension */
        {RAW("x,,n=user,r=abc"), MALFORMED, NULL},
        {RAW("nn,,n=user,r=abc"), MALFORMED, NULL},
        {RAW(",,n=user,r=abc"), MALFORMED, NULL},
        {RAW("n,n=user,r=abc"), MALFORMED, NULL},
        {RAW("n,a=,n=user,r=abc"), MALFORMED, NULL},
        {RAW("n,b=user,n=user,r=abc"), MALFORMED, NULL},
        {RAW("n,,n=,r=abc"), MALFORMED, NULL},
        {RAW("n,,n=us=41er,r=abc"), MALFORMED, NULL}, /* only =2C and =3D */
        {RAW("n,,n=us=2cer,r=abc"), MALFORMED, NULL},
        {RAW("n,,n=user=,r=abc"), MALFORMED, NULL},
        {RAW("n,,n=user=2,r=abc"), MALFORMED, NULL},
        {RAW("n,,n=u\0ser,r=abc"), MALFORMED, NULL},
        {RAW("n,,n=user,r="), MALFORMED, NULL},
        {RAW("n,,n=user,r=a b"), MALFORMED, NULL},
        {RAW("n,,n=user,r=a\x7f"), MALFORMED, NULL},
        {RAW("n,,n=user,r=\xc3\xa9"), MALFORMED, NULL},
        {RAW("n,,n=user"), MALFORMED, NULL},
        {RAW("n,,n=user,"), MALFORMED, NULL},
        {RAW("n,,r=abc,n=user"), MALFORMED, NULL},
        {RAW("n,,n=user,r=abc,"), MALFORMED, NULL},
        {RAW("n,,n=user,r=abc,1=x"), MALFORMED, NULL},
        {RAW("n,,n=user,r=abc,x"), MALFORMED, NULL},
        {RAW("n,,user,r=abc"), MALFORMED, NULL},
        {RAW("n,,"), MALFORMED, NULL},
        {RAW("n,"), MALFORMED, NULL},
        {RAW("n"), MALFORMED, NULL},
        {RAW(""), MALFORMED, NULL},
};

static void test_scram_client_first(void)
{
	for (size_t i = 0; i < sizeof scram_first_cases / sizeof scram_first_cases[0]; i++) {
		const struct message_case *c = &scram_first_cases[i];
		struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
		char what[48];
		snprintf(what, sizeof what, "client-first case %zu", i);
		CHECK_STATUS(start_raw(ex, c->raw, c->len), c->status, what);
		if (c->authcid)
			CHECK_STR(sasl_authcid(ex), c->authcid);
		sasl_free(ex);
	}
	char first[300] = "n,,n=";
	memset(first + 5, 'u', 256);
	memcpy(first + 5 + 256, ",r=abc", 7);
	struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	CHECK_STATUS(start_text(ex, first), MALFORMED, "user name of 256");
	sasl_free(ex);
	memmove(first + 5 + 255, first + 5 + 256, 7);
	ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	CHECK_STATUS(start_text(ex, first), OK_CHALLENGE, "user name of 255");
	sasl_free(ex);
}

#define RFC7677_NONCE "r=" RFC7677_CLIENT_NONCE RFC7677_SERVER_NONCE
#define RFC7677_PROOF "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static const struct message_case scram_final_cases[] = {
        {RAW("c=biws," RFC7677_NONCE "," RFC7677_PROOF), OK_CHALLENGE, NULL},
        {RAW("c=biws," RFC7677_NONCE ",p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), FAIL, NULL},
        {RAW("c=biws," RFC7677_NONCE ",x=ext," RFC7677_PROOF), FAIL, NULL}, /* the proof covers it */
        {RAW("c=eSws," RFC7677_NONCE "," RFC7677_PROOF), FAIL, NULL},       /* "y,," is not what was sent */
        {RAW("c=," RFC7677_NONCE "," RFC7677_PROOF), FAIL, NULL},
        {RAW("c=biws,r=" RFC7677_CLIENT_NONCE "," RFC7677_PROOF), FAIL, NULL}, /* the server nonce left out */
        {RAW("c=biws," RFC7677_NONCE "x," RFC7677_PROOF), FAIL, NULL},
        {RAW("c=biws,r=x,"), MALFORMED, NULL},
        {RAW("c=biw," RFC7677_NONCE "," RFC7677_PROOF), MALFORMED, NULL}, /* bad base64 */
        {RAW("c=biws," RFC7677_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ"), MALFORMED, NULL},
        {RAW("c=biws," RFC7677_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ=="), MALFORMED, NULL},
        {RAW("c=biws," RFC7677_NONCE ",p="), MALFORMED, NULL},
        {RAW("c=biws," RFC7677_NONCE), MALFORMED, NULL},                          /* no proof */
        {RAW("c=biws," RFC7677_NONCE "," RFC7677_PROOF ",x=1"), MALFORMED, NULL}, /* the proof is not last */
        {RAW("c=biws," RFC7677_NONCE "," RFC7677_PROOF ","), MALFORMED, NULL},
        {RAW(RFC7677_NONCE ",c=biws," RFC7677_PROOF), MALFORMED, NULL},
        {RAW("c=biws," RFC7677_PROOF), MALFORMED, NULL},
        {RAW("c=biws," RFC7677_NONCE ",\0=x," RFC7677_PROOF), MALFORMED, NULL},
        {RAW(""), MALFORMED, NULL},
};

static void test_scram_client_final(void)
{
	for (size_t i = 0; i < sizeof scram_final_cases / sizeof scram_final_cases[0]; i++) {
		const struct message_case *c = &scram_final_cases[i];
		struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
		char what[48];
		snprintf(what, sizeof what, "client-final case %zu", i);
		sasl_set_nonce_for_test(ex, RFC7677_SERVER_NONCE);
		CHECK_STATUS(start_text(ex, "n,,n=user,r=" RFC7677_CLIENT_NONCE), OK_CHALLENGE, what);
		CHECK_STATUS(step_raw(ex, c->raw, c->len), c->status, what);
		sasl_free(ex);
	}

	/* after server-final: only an empty response ends it well */
	static const struct {
		const char *line;
		enum sasl_status status;
	} acks[] = {{"", SUCCESS}, {"*", CANCELLED}, {"=", MALFORMED}, {"dj0=", MALFORMED}, {"!", MALFORMED}};
	for (size_t i = 0; i < sizeof acks / sizeof acks[0]; i++) {
		struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
		sasl_set_nonce_for_test(ex, RFC7677_SERVER_NONCE);
		start_text(ex, "n,,n=user,r=" RFC7677_CLIENT_NONCE);
		CHECK_STATUS(step_text(ex, "c=biws," RFC7677_NONCE "," RFC7677_PROOF), OK_CHALLENGE, acks[i].line);
		CHECK_STATUS(step_line(ex, acks[i].line), acks[i].status, acks[i].line);
		sasl_free(ex);
	}

	struct sasl_exchange *ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	start_text(ex, "n,,n=user,r=abc");
	CHECK_STATUS(step_line(ex, "*"), CANCELLED, "SCRAM cancelled");
	CHECK_STATUS(step_line(ex, "*"), FAIL, "a line after the end");
	sasl_free(ex);
	ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	start_text(ex, "n,,n=user,r=abc");
	CHECK_STATUS(step_line(ex, "Yz1iaXdz,"), MALFORMED, "bad base64");
	sasl_free(ex);
}

/* Misuse by the caller is a failure, not a crash. */
static void test_call_order(void)
{
	struct sasl_exchange *ex = sasl_new(SASL_PLAIN, "mx.example");
	CHECK_STATUS(step_line(ex, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), FAIL, "step before start");
	sasl_free(ex);
	ex = sasl_new(SASL_PLAIN, "mx.example");
	start_line(ex, NULL);
	CHECK_STATUS(start_line(ex, NULL), FAIL, "start twice");
	sasl_free(ex);
	const char *first = b64(RAW("n,,n=user,r=abc"));
	ex = sasl_new(SASL_SCRAM_SHA_256, "mx.example");
	CHECK_STATUS(sasl_start(ex, first, strlen(first), NULL, NULL), TEMPFAIL, "no lookup callback");
	sasl_free(ex);
}

int main(void)
{
	make_directory();
	test_mech_names();
	test_password_hash();
	test_scram_secret();
	test_cram_secret();
	test_plain_messages();
	test_plain_lengths();
	test_plain_verify();
	test_plain_exchange();
	test_line_limit();
	test_login();
	test_cram();
	test_scram_rfc7677();
	test_scram_logins();
	test_scram_unknown_users();
	test_scram_client_first();
	test_scram_client_final();
	test_call_order();
	return unit_finish("auth_sasl");
}
