/*
 * fuzz_sasl.c - fuzz target for the server side of the SASL exchanges
 * (auth/auth_sasl.c, and through it util/util_base64.c and the secret
 * readers in auth/auth_secret.c).
 *
 * Input: byte 0 picks the mechanism; byte 1 says whether AUTH carries an
 * initial response (bit 0) and how the directory answers (bits 1-2: the user
 * has every secret, has none, does not exist, or the lookup fails). The rest
 * is client messages separated by '\n'. Each message is base64-encoded
 * before it is sent, so that mutations work on the SASL grammar rather than
 * on base64; a message starting with '!' is sent as the text after the '!',
 * which is how the strict decoder and the "*" cancel line are reached.
 *
 * The server nonce and the CRAM-MD5 challenge are fixed, and a known user's
 * secrets are those of RFC 7677 ("pencil") and RFC 2195
 * ("tanstaaftanstaaf"), so seeds can hold whole successful exchanges.
 *
 * Besides the sanitizers' checks, the results must hold together:
 *   - every status is in range, and only SASL_CHALLENGE lets the exchange
 *     go on; a line after a final status gets SASL_FAIL;
 *   - every challenge is strict base64; the login name fits its limit;
 *   - SASL_VERIFY comes only from PLAIN and LOGIN, with a password within
 *     its limit and a hash: the user's when the user has one, else a dummy;
 *   - SASL_SUCCESS never comes for a user without secrets, an unknown user
 *     or a failed lookup, nor from PLAIN or LOGIN; SASL_TEMPFAIL only from
 *     a failed lookup;
 *   - any text the base64 decoder accepts encodes back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_sasl.h"
#include "auth/auth_secret.h"
#include "util/util_base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum directory_mode { USER_WITH_SECRETS, USER_WITHOUT_SECRETS, NO_SUCH_USER, LOOKUP_FAILS };

#define KNOWN_HASH "$6$fuzz$never.checked.here"
#define SCRAM_SECRET                                                                                               \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAm" \
	"Q7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define SERVER_NONCE   "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define CRAM_CHALLENGE "<1896.697170952@postoffice.reston.mci.net>"

static char cram_secret[AUTH_SECRET_MAX];

static int lookup(void *arg, const char *authcid, struct sasl_user *user)
{
	enum directory_mode mode = *(const enum directory_mode *)arg;
	if (strlen(authcid) == 0 || strlen(authcid) > SASL_AUTHCID_MAX)
		abort();
	if (mode == LOOKUP_FAILS)
		return -1;
	if (mode == NO_SUCH_USER)
		return 0;
	if (mode == USER_WITH_SECRETS) {
		memcpy(user->password_hash, KNOWN_HASH, sizeof KNOWN_HASH);
		memcpy(user->scram_sha256, SCRAM_SECRET, sizeof SCRAM_SECRET);
		memcpy(user->cram_md5, cram_secret, sizeof cram_secret);
	}
	return 1;
}

/* The client messages of one input, one at a time. */
struct messages {
	const char *next, *end;
	bool over;
};

/* next_line - the next message as the client would send it, in a heap buffer of exactly its
 * length (so ASan sees any read past it); *initial turns an empty message into "=". */
static char *next_line(struct messages *m, bool initial, size_t *len)
{
	if (m->over)
		return NULL;
	const char *nl = memchr(m->next, '\n', (size_t)(m->end - m->next));
	const char *stop = nl ? nl : m->end;
	const char *msg = m->next;
	size_t msg_len = (size_t)(stop - msg);
	m->next = nl ? nl + 1 : m->end;
	m->over = !nl;
	char *line;
	if (msg_len > 0 && msg[0] == '!') {
		*len = msg_len - 1;
		line = malloc(*len ? *len : 1);
		memcpy(line, msg + 1, *len);
	} else if (msg_len == 0 && initial) {
		*len = 1;
		line = malloc(1);
		line[0] = '=';
	} else {
		size_t room = base64_encoded_len(msg_len);
		char *text = malloc(room);
		*len = base64_encode(msg, msg_len, text, room);
		line = malloc(*len ? *len : 1);
		memcpy(line, text, *len);
		free(text);
	}
	return line;
}

/* check_base64 - if the decoder takes the line, encoding its bytes gives the line back. */
static void check_base64(const char *line, size_t len)
{
	unsigned char *raw = malloc(len / 4 * 3 + 1);
	size_t raw_len = 0;
	if (base64_decode(line, len, raw, len / 4 * 3, &raw_len)) {
		size_t room = base64_encoded_len(raw_len);
		char *again = malloc(room);
		if (base64_encode(raw, raw_len, again, room) != len || memcmp(again, line, len) != 0)
			abort();
		free(again);
	}
	free(raw);
}

static void check_verify(const struct sasl_exchange *ex, enum sasl_mech mech, enum directory_mode mode)
{
	size_t password_len = strlen(sasl_password(ex));
	const char *hash = sasl_password_hash(ex);
	if (mech != SASL_PLAIN && mech != SASL_LOGIN)
		abort();
	if (password_len == 0 || password_len > SASL_PASSWORD_MAX || hash[0] != '$')
		abort();
	if ((strcmp(hash, KNOWN_HASH) == 0) != (mode == USER_WITH_SECRETS))
		abort();
}

static void check_status(const struct sasl_exchange *ex, enum sasl_status status, enum sasl_mech mech,
                         enum directory_mode mode)
{
	const char *challenge = sasl_challenge(ex);
	size_t challenge_len = strlen(challenge);
	unsigned char *raw = malloc(challenge_len / 4 * 3 + 1);
	size_t raw_len = 0;
	if ((int)status < SASL_CHALLENGE || status > SASL_TEMPFAIL)
		abort();
	if (!base64_decode(challenge, challenge_len, raw, challenge_len / 4 * 3, &raw_len))
		abort();
	free(raw);
	if (strlen(sasl_authcid(ex)) > SASL_AUTHCID_MAX)
		abort();
	if (status == SASL_VERIFY)
		check_verify(ex, mech, mode);
	if (status == SASL_SUCCESS && (mode != USER_WITH_SECRETS || mech == SASL_PLAIN || mech == SASL_LOGIN))
		abort();
	if (status == SASL_TEMPFAIL && mode != LOOKUP_FAILS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (!cram_secret[0] && !auth_cram_secret("tanstaaftanstaaf", cram_secret, sizeof cram_secret))
		abort();
	enum sasl_mech mech = (enum sasl_mech)(data[0] % SASL_MECH_COUNT);
	enum directory_mode mode = (enum directory_mode)((data[1] >> 1) & 3);
	struct messages m = {(const char *)data + 2, (const char *)data + size, false};
	struct sasl_exchange *ex = sasl_new(mech, "mx.example");
	sasl_set_nonce_for_test(ex, mech == SASL_CRAM_MD5 ? CRAM_CHALLENGE : SERVER_NONCE);

	size_t len = 0;
	char *line = data[1] & 1 ? next_line(&m, true, &len) : NULL;
	if (line)
		check_base64(line, len);
	enum sasl_status status = sasl_start(ex, line, len, lookup, &mode);
	free(line);
	check_status(ex, status, mech, mode);
	while (status == SASL_CHALLENGE && (line = next_line(&m, false, &len)) != NULL) {
		check_base64(line, len);
		status = sasl_step(ex, line, len, lookup, &mode);
		free(line);
		check_status(ex, status, mech, mode);
	}
	if (status != SASL_CHALLENGE && sasl_step(ex, "", 0, lookup, &mode) != SASL_FAIL)
		abort();
	sasl_free(ex);
	return 0;
}
