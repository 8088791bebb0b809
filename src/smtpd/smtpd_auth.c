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
 * Failures are counted twice, for the client address (an IPv6 /64) and
 * user name together and for the address alone, within auth_fail_window:
 *   - at auth_fail_limit failures (5) that user is locked out from that
 *     address for auth_lockout; others behind the same address (an office
 *     behind NAT, a web server with many sites, 127.0.0.1) are not;
 *   - at auth_fail_limit_per_address (30), whatever the names, the whole
 *     address is locked out: one guess at many users is password spraying.
 *     Clients in relay_networks are trusted and not counted; 0 turns it off.
 * A password that already failed lately for that user from that address,
 * against the same stored hash (PLAIN and LOGIN), is refused without being
 * checked again and is not counted: a phone retrying a password changed
 * since learns nothing new, and must not lock its owner out.
 * A failure is answered late, auth_fail_delay times that user's recent
 * failures from the address (at most five times; a repeat the five), so
 * guessing is slow and only the one who failed waits. A lockout is not a
 * different answer: an AUTH it covers gets the same 535 after the longest
 * delay, its password is not checked and it is not counted, so a client
 * that keeps retrying does not extend its own lockout, and the reply does
 * not tell an attacker which user names exist. (That no password is
 * checked may show in the timing; the delay dwarfs it.) A success forgets
 * that user's failures from the address.
 *
 * A user whose password predates SCRAM-SHA-256 secrets for every password
 * gets one at their next PLAIN or LOGIN success: the check thread makes it
 * and the store writes it.
 *
 * Nothing secret is logged: not passwords, not responses, not challenges.
 * The user name is logged, as every mail server does.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_pool.h"
#include "auth/auth_sasl.h"
#include "smtpd/smtpd_limits.h"
#include "smtpd/smtpd_lookup.h"
#include "smtpd/smtpd_private.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

/* A failure is never delayed longer than this many times auth_fail_delay. */
#define AUTH_DELAY_STEPS_MAX 5
/* "a:" address, a space, the login name as given (at most SASL_AUTHCID_MAX). */
#define AUTH_KEY_MAX (2 + 46 + 1 + SASL_AUTHCID_MAX + 1)

_Static_assert(CONFIG_MECH_PLAIN == 1u << SASL_PLAIN && CONFIG_MECH_LOGIN == 1u << SASL_LOGIN &&
                       CONFIG_MECH_CRAM_MD5 == 1u << SASL_CRAM_MD5 &&
                       CONFIG_MECH_SCRAM_SHA_256 == 1u << SASL_SCRAM_SHA_256,
               "auth_mechanisms bits follow enum sasl_mech");

bool smtpd_on_loopback(const struct smtpd_session *s)
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
	       (s->config->auth_without_tls == CONFIG_AUTH_TLS_EXCEPT_LOOPBACK && smtpd_on_loopback(s));
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

/* The failure counters an exchange touches: "a:NETWORK USER" and "a:NETWORK". */
struct auth_keys {
	char user[AUTH_KEY_MAX];
	char address[AUTH_KEY_MAX];
};

/*
 * auth_client_network - what the failure counters count by: the IPv4
 * address, or the IPv6 /64 (one subscriber gets a whole /64, so counting
 * by address would give one attacker 2^64 fresh counters).
 */
static void auth_client_network(const struct smtpd_session *s, char *out, size_t size)
{
	static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char prefix[16] = {0};
	char text[INET6_ADDRSTRLEN];
	if (memcmp(s->peer_key, v4_mapped, sizeof v4_mapped) == 0) {
		str_copy(out, size, s->peer_ip);
		return;
	}
	memcpy(prefix, s->peer_key, 8);
	if (!inet_ntop(AF_INET6, prefix, text, sizeof text) || !str_format(out, size, "%s/64", text))
		str_copy(out, size, s->peer_ip);
}

static void auth_keys_make(const struct smtpd_session *s, struct auth_keys *keys)
{
	const char *user = s->sasl ? sasl_authcid(s->sasl) : "";
	char network[INET6_ADDRSTRLEN + 4];
	auth_client_network(s, network, sizeof network);
	str_format(keys->address, sizeof keys->address, "a:%s", network);
	str_format(keys->user, sizeof keys->user, "a:%s %s", network, user);
	str_lower(keys->user);
}

/* auth_address_limited - does the per-address limit apply? Not when off (0), nor to relay_networks (trusted). */
static bool auth_address_limited(const struct smtpd_session *s)
{
	return s->config->auth_fail_limit_per_address != 0 && !config_in_relay_networks(s->config, s->peer_key);
}

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
	s->auth_tag = 0;
	session_enter_state(s, next);
}

static void auth_succeeded(struct smtpd_session *s)
{
	auth_log(s, "ok");
	struct auth_keys keys;
	auth_keys_make(s, &keys);
	limits_auth_clear(s->host->limits, keys.user);
	str_copy(s->auth_user, sizeof s->auth_user, sasl_authcid(s->sasl));
	str_lower(s->auth_user);
	auth_end(s, SMTPD_READY);
	session_reply(s, SMTP_R_AUTH_OK);
}

/* auth_delay_done - the delay after a failure is over: give the 535 owed. */
static void auth_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	session_enter_state(s, SMTPD_READY);
	session_reply(s, SMTP_R_AUTH_FAILED);
	session_resume(s);
}

/* auth_fail_later - end the exchange and answer 535 after delay_ms. */
static void auth_fail_later(struct smtpd_session *s, uint64_t delay_ms)
{
	auth_end(s, SMTPD_AUTH_WAIT);
	if (!s->auth_timer) {
		s->auth_timer = evtimer_new(s->host->base, auth_delay_done, s);
		if (!s->auth_timer)
			fatal("evtimer_new failed");
	}
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
	evtimer_add(s->auth_timer, &tv);
}

/* auth_locked_scope - "user" or "address" if a lockout covers this exchange now, else NULL. */
static const char *auth_locked_scope(struct smtpd_session *s)
{
	struct auth_keys keys;
	auth_keys_make(s, &keys);
	struct smtpd_limits *limits = s->host->limits;
	uint64_t now = time_mono_ms();
	if (limits_locked_until(limits, keys.user, now))
		return "user";
	return auth_address_limited(s) && limits_locked_until(limits, keys.address, now) ? "address" : NULL;
}

/* auth_refuse_locked - a locked-out attempt: not checked, not counted, answered like any failure. */
static void auth_refuse_locked(struct smtpd_session *s, const char *scope)
{
	char q[LOG_QUOTE_MAX];
	const char *user = sasl_authcid(s->sasl);
	log_info("event=auth session=%s mechanism=%s user=%s result=locked_out scope=%s client=%s", s->sid,
	         sasl_mech_name(s->sasl_mech), log_quote(q, sizeof q, user, strlen(user)), scope, s->peer_ip);
	auth_fail_later(s, s->config->auth_fail_delay * 1000 * AUTH_DELAY_STEPS_MAX);
}

/* auth_lockout_log - a counter reached its limit just now. */
static void auth_lockout_log(struct smtpd_session *s, const char *scope, uint64_t failures)
{
	char q[LOG_QUOTE_MAX];
	const char *user = sasl_authcid(s->sasl);
	log_warning("event=auth_lockout session=%s client=%s user=%s scope=%s failures=%llu lockout_s=%llu", s->sid,
	            s->peer_ip, log_quote(q, sizeof q, user, strlen(user)), scope, (unsigned long long)failures,
	            (unsigned long long)s->config->auth_lockout);
}

/*
 * auth_repeated - PLAIN or LOGIN with a password that failed lately for
 * this user here, against the same stored hash: refused without checking
 * it again and not counted. The hash is in the tag so that a password
 * tried before it was set does not stay refused once it is the right one.
 */
static bool auth_repeated(struct smtpd_session *s)
{
	struct auth_keys keys;
	auth_keys_make(s, &keys);
	s->auth_tag = auth_password_tag(sasl_password(s->sasl), sasl_password_hash(s->sasl));
	if (!limits_auth_seen(s->host->limits, keys.user, s->auth_tag))
		return false;
	char q[LOG_QUOTE_MAX];
	const char *user = sasl_authcid(s->sasl);
	log_info("event=auth session=%s mechanism=%s user=%s result=fail repeated=yes", s->sid,
	         sasl_mech_name(s->sasl_mech), log_quote(q, sizeof q, user, strlen(user)));
	auth_fail_later(s, s->config->auth_fail_delay * 1000 * AUTH_DELAY_STEPS_MAX);
	return true;
}

/* auth_failed - the credentials were wrong: count, maybe lock out, answer 535 late. */
static void auth_failed(struct smtpd_session *s)
{
	const struct config *c = s->config;
	struct auth_keys keys;
	auth_keys_make(s, &keys);
	struct smtpd_limits *limits = s->host->limits;
	uint64_t now = time_mono_ms(), window = c->auth_fail_window * 1000, lockout = c->auth_lockout * 1000;
	if (s->auth_tag)
		limits_auth_remember(limits, keys.user, s->auth_tag, now);
	uint64_t user_failures = limits_auth_failed(limits, keys.user, window, c->auth_fail_limit, lockout, now);
	bool by_address = auth_address_limited(s);
	uint64_t address_failures = by_address ? limits_auth_failed(limits, keys.address, window,
	                                                            c->auth_fail_limit_per_address, lockout, now)
	                                       : 0;
	char q[LOG_QUOTE_MAX];
	const char *user = sasl_authcid(s->sasl);
	log_info("event=auth session=%s mechanism=%s user=%s result=fail failures=%llu address_failures=%llu", s->sid,
	         sasl_mech_name(s->sasl_mech), log_quote(q, sizeof q, user, strlen(user)),
	         (unsigned long long)user_failures, (unsigned long long)address_failures);
	if (user_failures >= c->auth_fail_limit)
		auth_lockout_log(s, "user", user_failures);
	if (by_address && address_failures >= c->auth_fail_limit_per_address)
		auth_lockout_log(s, "address", address_failures);
	uint64_t steps = user_failures < AUTH_DELAY_STEPS_MAX ? user_failures : AUTH_DELAY_STEPS_MAX;
	auth_fail_later(s, c->auth_fail_delay * 1000 * steps);
}

/* auth_verdict - the credentials were checked: a lockout under way overrules a success and is not counted. */
static void auth_verdict(struct smtpd_session *s, bool ok)
{
	const char *scope = auth_locked_scope(s);
	if (scope)
		auth_refuse_locked(s, scope);
	else if (ok)
		auth_succeeded(s);
	else
		auth_failed(s);
}

/* auth_refuse - the exchange ends without a verdict on the credentials. */
static void auth_refuse(struct smtpd_session *s, enum smtp_reply_id id, const char *result)
{
	auth_log(s, result);
	auth_end(s, SMTPD_READY);
	session_reply(s, id);
}

/* ---- The exchange ---- */

/* auth_lookup - sasl_lookup, on a lookup thread: the user's stored secrets from the directory (arg). */
static int auth_lookup(void *arg, const char *authcid, struct sasl_user *user)
{
	struct store_reader *reader = arg;
	char address[STORE_ADDRESS_MAX];
	if (!reader)
		return -1;
	if (!str_copy(address, sizeof address, authcid))
		return 0;
	str_lower(address);
	struct store_user_secrets secrets;
	int found = store_dir_secrets(reader, address, &secrets);
	if (found == 1) {
		str_copy(user->password_hash, sizeof user->password_hash, secrets.password);
		str_copy(user->scram_sha256, sizeof user->scram_sha256, secrets.scram);
		str_copy(user->cram_md5, sizeof user->cram_md5, secrets.cram);
	}
	explicit_bzero(&secrets, sizeof secrets);
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
		/* A locked-out attempt, or a password that failed already, costs no password check. */
		if (auth_locked_scope(s)) {
			auth_verdict(s, false);
			break;
		}
		if (auth_repeated(s))
			break;
		session_enter_state(s, SMTPD_AUTH_WAIT);
		s->host->check_password(s->host->ctx, s->id, sasl_password(s->sasl), sasl_password_hash(s->sasl),
		                        s->config->auth_cache_ttl * 1000, sasl_lacks_scram(s->sasl));
		break;
	case SASL_SUCCESS:
		auth_verdict(s, true);
		break;
	case SASL_FAIL:
		auth_verdict(s, false);
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

/*
 * A step of the exchange, taken on a lookup thread: a step may need the
 * user's stored secrets, which are a database read. The exchange goes
 * with it (the session holds none meanwhile, so a session that ends
 * first frees nothing the thread uses) and comes back with the status.
 */
struct auth_step {
	struct smtpd_lookup lookup; /* first */
	struct sasl_exchange *sasl;
	bool start;
	char *line; /* the client's line (or initial response: NULL for none), a copy */
	size_t len;
	enum sasl_status status;
};

static void auth_step_query(struct smtpd_lookup *lookup, struct store_reader *reader)
{
	struct auth_step *a = (struct auth_step *)lookup;
	a->status = a->start ? sasl_start(a->sasl, a->line, a->len, auth_lookup, reader)
	                     : sasl_step(a->sasl, a->line, a->len, auth_lookup, reader);
}

static void auth_step_finish(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	struct auth_step *a = (struct auth_step *)lookup;
	s->sasl = a->sasl;
	a->sasl = NULL;
	auth_next(s, a->status);
}

static void auth_step_release(struct smtpd_lookup *lookup)
{
	struct auth_step *a = (struct auth_step *)lookup;
	sasl_free(a->sasl);
	if (a->line) {
		explicit_bzero(a->line, a->len);
		free(a->line);
	}
	free(a);
}

/* auth_step - give the exchange the client's line (start: AUTH's initial response, or none) off the loop. */
static void auth_step(struct smtpd_session *s, bool start, const char *line, size_t len)
{
	struct auth_step *a = xcalloc(1, sizeof *a);
	a->lookup.query = auth_step_query;
	a->lookup.finish = auth_step_finish;
	a->lookup.release = auth_step_release;
	a->sasl = s->sasl;
	s->sasl = NULL;
	a->start = start;
	a->line = line ? str_dup_n(line, len) : NULL;
	a->len = len;
	smtpd_lookup_start(s, &a->lookup);
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

void auth_handle(struct smtpd_session *s, const struct smtp_command *cmd)
{
	enum smtp_reply_id refusal = auth_refusal(s);
	if (refusal != SMTP_R_OK) {
		session_reply(s, refusal);
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
	auth_step(s, true, initial, initial_len);
}

void auth_response(struct smtpd_session *s, const char *line, size_t len)
{
	auth_step(s, false, line, len);
}

void auth_response_too_long(struct smtpd_session *s)
{
	auth_refuse(s, SMTP_R_AUTH_LINE_TOO_LONG, "line_too_long");
}

/* auth_keep_scram - a PLAIN or LOGIN success brought the SCRAM secret the user lacked: store it. */
static void auth_keep_scram(struct smtpd_session *s, const char *scram)
{
	char address[STORE_ADDRESS_MAX];
	if (!scram[0] || !str_copy(address, sizeof address, sasl_authcid(s->sasl)))
		return;
	str_lower(address);
	s->host->add_scram(s->host->ctx, address, sasl_password_hash(s->sasl), scram);
}

void smtpd_session_auth_checked(struct smtpd_session *s, const struct auth_pool_result *result)
{
	if (s->state != SMTPD_AUTH_WAIT || !s->sasl)
		return;
	if (result->ok && !auth_locked_scope(s))
		auth_keep_scram(s, result->scram);
	auth_verdict(s, result->ok);
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
