/*
 * smtpd_auth.c - SMTP AUTH (RFC 4954) in an inbound session: the command,
 * the exchange of challenges and responses, and what follows a failure.
 *
 * The mechanisms themselves live in auth/auth_sasl.c; here is the policy:
 * AUTH only on submission listeners, only once TLS is up (or from loopback
 * when auth_without_tls says so), only outside a transaction, only once.
 * PLAIN and LOGIN passwords are checked on the password-check threads
 * (auth/auth_pool.c) while the session waits in SMTPD_AUTH_WAIT.
 *
 * A failure is answered late: auth_fail_delay times the failures the
 * address has had lately (at most five times), so guessing is slow. At
 * auth_fail_limit failures within auth_fail_window the address is locked
 * out for auth_lockout: its AUTH commands get 421 and the connection ends.
 *
 * Nothing secret is logged: not passwords, not responses, not challenges.
 * The user name is logged, as every mail server does.
 */
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_pool.h"
#include "auth/auth_sasl.h"
#include "smtpd/smtpd_limits.h"
#include "smtpd/smtpd_private.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

/* A failure is never delayed longer than this many times auth_fail_delay. */
#define AUTH_DELAY_STEPS_MAX 5

_Static_assert(CONFIG_MECH_PLAIN == 1u << SASL_PLAIN && CONFIG_MECH_LOGIN == 1u << SASL_LOGIN &&
                       CONFIG_MECH_CRAM_MD5 == 1u << SASL_CRAM_MD5 &&
                       CONFIG_MECH_SCRAM_SHA_256 == 1u << SASL_SCRAM_SHA_256,
               "auth_mechanisms bits follow enum sasl_mech");

bool session_on_loopback(const struct smtpd_session *s)
{
	static const unsigned char v4_loopback[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	return (memcmp(s->peer_key, v4_loopback, 12) == 0 && s->peer_key[12] == 127) ||
	       memcmp(s->peer_key, v6_loopback, 16) == 0;
}

bool auth_offered(const struct smtpd_session *s)
{
	if (s->kind == LISTENER_MX || s->config->auth_mechanisms == 0)
		return false;
	return s->tls_active ||
	       (s->config->auth_without_tls == CONFIG_AUTH_TLS_EXCEPT_LOOPBACK && session_on_loopback(s));
}

bool auth_mechanism_list(const struct smtpd_session *s, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int m = 0; m < SASL_MECH_COUNT; m++) {
		if (!(s->config->auth_mechanisms & (1u << m)))
			continue;
		if (!str_format(buf + used, size - used, "%s%s", used ? " " : "", sasl_mech_name((enum sasl_mech)m)))
			return false;
		used += strlen(buf + used);
	}
	return used > 0;
}

/* ---- The end of an exchange ---- */

static void auth_log(struct smtpd_session *s, const char *result)
{
	char q[LOG_QUOTE_MAX];
	const char *user = s->sasl ? sasl_authcid(s->sasl) : "";
	log_info("event=auth session=%s mechanism=%s user=%s result=%s", s->sid, sasl_mech_name(s->sasl_mech),
	         log_quote(q, sizeof q, user, strlen(user)), result);
}

static void auth_end(struct smtpd_session *s, enum smtpd_state next)
{
	sasl_free(s->sasl);
	s->sasl = NULL;
	session_enter_state(s, next);
}

static void auth_succeeded(struct smtpd_session *s)
{
	auth_log(s, "ok");
	str_copy(s->auth_user, sizeof s->auth_user, sasl_authcid(s->sasl));
	str_lower(s->auth_user);
	auth_end(s, SMTPD_READY);
	session_reply(s, SMTP_R_AUTH_OK);
}

/* auth_delay_done - the delay after a failure is over: give the reply owed. */
static void auth_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	enum smtp_reply_id id = (enum smtp_reply_id)(s->auth_reply_owed - 1);
	s->auth_reply_owed = 0;
	session_enter_state(s, SMTPD_READY);
	session_reply(s, id);
	if (id == SMTP_R_AUTH_LOCKED_OUT)
		session_close_after_reply(s);
	session_resume(s);
}

static void auth_failed(struct smtpd_session *s)
{
	const struct config *c = s->config;
	char key[64];
	str_format(key, sizeof key, "a:%s", s->peer_ip);
	uint64_t failures = limits_auth_failed(smtpd_limits(s->smtpd), key, c->auth_fail_window * 1000,
	                                       c->auth_fail_limit, c->auth_lockout * 1000, time_mono_ms());
	bool locked = failures >= c->auth_fail_limit;
	auth_log(s, locked ? "fail_locked_out" : "fail");
	if (locked)
		log_warning("event=auth_lockout session=%s client=%s failures=%llu lockout_s=%llu", s->sid, s->peer_ip,
		            (unsigned long long)failures, (unsigned long long)c->auth_lockout);
	auth_end(s, SMTPD_AUTH_WAIT);
	s->auth_reply_owed = (int)(locked ? SMTP_R_AUTH_LOCKED_OUT : SMTP_R_AUTH_FAILED) + 1;
	uint64_t steps = failures < AUTH_DELAY_STEPS_MAX ? failures : AUTH_DELAY_STEPS_MAX;
	uint64_t delay_ms = c->auth_fail_delay * 1000 * steps;
	if (!s->auth_timer) {
		s->auth_timer = evtimer_new(smtpd_base(s->smtpd), auth_delay_done, s);
		if (!s->auth_timer)
			fatal("evtimer_new failed");
	}
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
	evtimer_add(s->auth_timer, &tv);
}

/* auth_refuse - the exchange ends without a verdict on the credentials. */
static void auth_refuse(struct smtpd_session *s, enum smtp_reply_id id, const char *result)
{
	auth_log(s, result);
	auth_end(s, SMTPD_READY);
	session_reply(s, id);
}

/* ---- The exchange ---- */

/* auth_lookup - sasl_lookup: the user's stored secrets from the directory. */
static int auth_lookup(void *arg, const char *authcid, struct sasl_user *user)
{
	struct smtpd_session *s = arg;
	char address[STORE_ADDRESS_MAX];
	if (!str_copy(address, sizeof address, authcid))
		return 0;
	str_lower(address);
	struct store_user_secrets secrets;
	int found = store_dir_secrets(smtpd_reader(s->smtpd), address, &secrets);
	if (found == 1) {
		str_copy(user->password_hash, sizeof user->password_hash, secrets.password);
		str_copy(user->scram_sha256, sizeof user->scram_sha256, secrets.scram);
		str_copy(user->cram_md5, sizeof user->cram_md5, secrets.cram);
	}
	OPENSSL_cleanse(&secrets, sizeof secrets);
	return found;
}

static void auth_next(struct smtpd_session *s, enum sasl_status status)
{
	char line[SASL_LINE_MAX + 8];
	switch (status) {
	case SASL_CHALLENGE:
		str_format(line, sizeof line, "334 %s\r\n", sasl_challenge(s->sasl));
		session_write(s, line, strlen(line));
		session_enter_state(s, SMTPD_AUTH);
		break;
	case SASL_VERIFY:
		session_enter_state(s, SMTPD_AUTH_WAIT);
		auth_pool_check(smtpd_auth_pool(s->smtpd), s->id, sasl_password(s->sasl), sasl_password_hash(s->sasl),
		                s->config->auth_cache_ttl * 1000);
		break;
	case SASL_SUCCESS:
		auth_succeeded(s);
		break;
	case SASL_FAIL:
		auth_failed(s);
		break;
	case SASL_MALFORMED:
		auth_refuse(s, SMTP_R_AUTH_BAD_BASE64, "malformed");
		break;
	case SASL_CANCELLED:
		auth_refuse(s, SMTP_R_AUTH_CANCELLED, "cancelled");
		break;
	case SASL_TEMPFAIL:
		auth_refuse(s, SMTP_R_AUTH_TEMPORARY, "tempfail");
		break;
	}
}

/* auth_refusal - why AUTH cannot start now, or SMTP_R_OK. */
static enum smtp_reply_id auth_refusal(const struct smtpd_session *s)
{
	if (s->state == SMTPD_CONNECTED)
		return SMTP_R_NEED_HELO;
	if (s->kind == LISTENER_MX || s->config->auth_mechanisms == 0)
		return SMTP_R_NO_AUTH;
	if (s->auth_user[0])
		return SMTP_R_AUTH_ALREADY;
	if (s->txn)
		return SMTP_R_AUTH_IN_TRANSACTION;
	if (!auth_offered(s))
		return SMTP_R_AUTH_NEEDS_TLS;
	return SMTP_R_OK;
}

void handle_auth(struct smtpd_session *s, const struct smtp_command *cmd)
{
	enum smtp_reply_id refusal = auth_refusal(s);
	if (refusal != SMTP_R_OK) {
		session_reply(s, refusal);
		return;
	}
	char key[64];
	str_format(key, sizeof key, "a:%s", s->peer_ip);
	if (limits_locked_until(smtpd_limits(s->smtpd), key, time_mono_ms()) != 0) {
		log_info("event=auth session=%s client=%s result=locked_out", s->sid, s->peer_ip);
		session_reply(s, SMTP_R_AUTH_LOCKED_OUT);
		session_close_after_reply(s);
		return;
	}
	/* "MECHANISM [initial-response]" */
	const char *mech = cmd->arg, *initial = NULL;
	const char *space = memchr(cmd->arg, ' ', cmd->arg_len);
	size_t mech_len = space ? (size_t)(space - cmd->arg) : cmd->arg_len, initial_len = 0;
	if (mech_len < cmd->arg_len) {
		initial = cmd->arg + mech_len + 1;
		initial_len = cmd->arg_len - mech_len - 1;
		if (initial_len == 0 || memchr(initial, ' ', initial_len)) {
			session_reply(s, SMTP_R_SYNTAX);
			return;
		}
	}
	enum sasl_mech m;
	if (!sasl_mech_from_name(mech, mech_len, &m) || !(s->config->auth_mechanisms & (1u << m))) {
		session_reply(s, SMTP_R_AUTH_MECHANISM);
		return;
	}
	s->sasl_mech = m;
	s->sasl = sasl_new(m, s->config->hostname);
	if (!s->sasl)
		fatal("sasl_new failed");
	auth_next(s, sasl_start(s->sasl, initial, initial_len, auth_lookup, s));
}

void auth_response(struct smtpd_session *s, const char *line, size_t len)
{
	auth_next(s, sasl_step(s->sasl, line, len, auth_lookup, s));
}

void auth_response_too_long(struct smtpd_session *s)
{
	auth_refuse(s, SMTP_R_AUTH_LINE_TOO_LONG, "line_too_long");
}

void smtpd_session_auth_checked(struct smtpd_session *s, bool ok)
{
	if (s->state != SMTPD_AUTH_WAIT || !s->sasl)
		return;
	if (ok)
		auth_succeeded(s);
	else
		auth_failed(s);
	session_resume(s);
}

void auth_session_free(struct smtpd_session *s)
{
	sasl_free(s->sasl);
	s->sasl = NULL;
	if (s->auth_timer)
		event_free(s->auth_timer);
	s->auth_timer = NULL;
}
