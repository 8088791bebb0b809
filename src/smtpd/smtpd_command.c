/*
 * smtpd_command.c - the SMTP commands of an inbound session.
 *
 * One static table says, per verb, in which states it is allowed, the reply
 * when it is not, and whether it must be the last command of a pipelined
 * group (RFC 2920 3.1). "503 bad sequence" thus comes from one place;
 * handlers only do what is particular to their verb.
 *
 * Recipient policy (RFC 5321 3.6, 4.5.1): mail is taken only for local
 * domains; an unknown local user is refused at RCPT (550 5.1.1), never
 * accepted and bounced later; postmaster is always accepted; anything else
 * is relaying, which this listener refuses (554 5.7.1) unless the client
 * authenticated, is in relay_networks, or is a local user on the
 * sendmail socket. A relayed recipient on the
 * suppression list (it bounced for good before) gets suppression_reply
 * (550 5.1.1) instead of being queued to bounce again; mail for local
 * domains never meets the list.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_conn.h"
#include "smtp/smtp_dsn.h"
#include "smtpd/smtpd_limits.h"
#include "smtpd/smtpd_lookup.h"
#include "smtpd/smtpd_private.h"
#include "smtpd/smtpd_route.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define SMTPD_RESOLVE_MAX 64

typedef void command_handler(struct smtpd_session *s, const struct smtp_command *cmd);

struct command_rule {
	unsigned states;                    /* SMTPD_STATE_BIT()s it is allowed in */
	enum smtp_reply_id out_of_sequence; /* reply in any other state */
	bool ends_group;                    /* RFC 2920 3.1: nothing may follow it unseen */
	command_handler *handler;
};

#define ANY_COMMAND_STATE                                                                                \
	(SMTPD_STATE_BIT(SMTPD_CONNECTED) | SMTPD_STATE_BIT(SMTPD_READY) | SMTPD_STATE_BIT(SMTPD_MAIL) | \
	 SMTPD_STATE_BIT(SMTPD_RCPT))
#define IN_TRANSACTION (SMTPD_STATE_BIT(SMTPD_MAIL) | SMTPD_STATE_BIT(SMTPD_RCPT))

/* ---- HELO, EHLO ---- */

static void greet(struct smtpd_session *s, const struct smtp_command *cmd, bool esmtp)
{
	txn_reset(s);
	str_copy_n(s->helo, sizeof s->helo, cmd->arg, cmd->arg_len);
	s->esmtp = esmtp;
	session_enter_state(s, SMTPD_READY);
	log_info("event=helo session=%s verb=%s helo=%s", s->sid, esmtp ? "EHLO" : "HELO",
	         log_quote((char[LOG_QUOTE_MAX]){0}, LOG_QUOTE_MAX, cmd->arg, cmd->arg_len));
}

static void handle_helo(struct smtpd_session *s, const struct smtp_command *cmd)
{
	greet(s, cmd, false);
	char line[SMTP_REPLY_LINE_MAX];
	str_format(line, sizeof line, "250 %s\r\n", s->config->hostname);
	session_write(s, line, strlen(line));
}

static void handle_ehlo(struct smtpd_session *s, const struct smtp_command *cmd)
{
	greet(s, cmd, true);
	char reply[1024], mechs[128];
	bool starttls = !s->tls_started && s->kind != LISTENER_LOCAL && s->host->tls;
	bool auth = auth_offered(s) && auth_mechanism_list(s, mechs, sizeof mechs);
	str_format(reply, sizeof reply,
	           "250-%s Hello [%s]\r\n"
	           "250-PIPELINING\r\n"
	           "250-SIZE %llu\r\n"
	           "%s"
	           "%s%s%s"
	           "250-8BITMIME\r\n"
	           "250-DSN\r\n"
	           "250-SMTPUTF8\r\n"
	           "250-ENHANCEDSTATUSCODES\r\n"
	           "250 CHUNKING\r\n",
	           s->config->hostname, s->peer_ip, (unsigned long long)s->config->max_message_size,
	           starttls ? "250-STARTTLS\r\n" : "", auth ? "250-AUTH " : "", auth ? mechs : "", auth ? "\r\n" : "");
	session_write(s, reply, strlen(reply));
}

/* ---- Policy shared by MAIL and RCPT ---- */

/*
 * lookup_address - the address as the directory knows it: lower-cased, and
 * with a quoted local part unquoted ("alice"@dom and alice@dom are one
 * address, RFC 5322 3.2.4). Directory names never need quoting, so an
 * unquoted result that would need it simply matches nobody.
 */
static void lookup_address(const struct smtp_path *path, char *out, size_t size)
{
	if (!path->local_quoted) {
		str_copy(out, size, path->addr);
	} else {
		size_t o = 0;
		/* Skip the opening quote; stop at the closing one; drop backslashes. */
		for (size_t i = 1; i + 1 < path->local_len && o + 1 < size; i++) {
			if (path->addr[i] == '\\' && i + 2 < path->local_len)
				i++;
			out[o++] = path->addr[i];
		}
		out[o] = '\0';
		str_format(out + o, size - o, "@%s", smtp_path_domain(path));
	}
	str_lower(out);
}

/* relay_allowed - may this client send to domains that are not ours? Local users may, as with Postfix's sendmail. */
static bool relay_allowed(const struct smtpd_session *s)
{
	return s->auth_user[0] != '\0' || s->kind == LISTENER_LOCAL || config_in_relay_networks(s->config, s->peer_key);
}

/* rate_user - whom the per-user rates count against: the authenticated user, or the local login name. */
static const char *rate_user(const struct smtpd_session *s)
{
	return s->auth_user[0] ? s->auth_user : s->local_user;
}

/* rate_allows - count one message or recipient ('m' or 'r') against the user's and the address's hourly limits. */
static bool rate_allows(struct smtpd_session *s, char what, uint64_t user_limit, uint64_t ip_limit)
{
	struct smtpd_limits *limits = s->host->limits;
	uint64_t now = time_mono_ms(), used;
	char key[STORE_ADDRESS_MAX + 8];
	const char *kind = what == 'm' ? "messages" : "recipients", *user = rate_user(s);
	if (user[0] && str_format(key, sizeof key, "%c:u:%s", what, user) &&
	    !limits_take(limits, key, 1, user_limit, now, &used)) {
		log_warning("event=rate_limited session=%s scope=user user=%s kind=%s used=%llu limit=%llu", s->sid,
		            user, kind, (unsigned long long)used, (unsigned long long)user_limit);
		return false;
	}
	/* Local sessions share no address: their user's count is theirs. */
	if (s->kind != LISTENER_LOCAL && str_format(key, sizeof key, "%c:i:%s", what, s->peer_ip) &&
	    !limits_take(limits, key, 1, ip_limit, now, &used)) {
		log_warning("event=rate_limited session=%s scope=ip client=%s kind=%s used=%llu limit=%llu", s->sid,
		            s->peer_ip, kind, (unsigned long long)used, (unsigned long long)ip_limit);
		return false;
	}
	return true;
}

/* ---- MAIL ---- */

_Static_assert(SMTP_NOTIFY_NEVER == STORE_NOTIFY_NEVER && SMTP_NOTIFY_SUCCESS == STORE_NOTIFY_SUCCESS &&
                       SMTP_NOTIFY_FAILURE == STORE_NOTIFY_FAILURE && SMTP_NOTIFY_DELAY == STORE_NOTIFY_DELAY,
               "NOTIFY bits agree");

/* What MAIL's parameters said. */
struct mail_options {
	uint64_t size; /* RFC 1870 SIZE, 0 if not given */
	bool smtputf8;
	bool ret_hdrs;
	const char *envid; /* into the command line, or NULL */
	size_t envid_len;
};

/* dsn_mail_param - RET or ENVID (RFC 3461 4.3, 4.4); false after replying. */
static bool dsn_mail_param(struct smtpd_session *s, const struct smtp_param *p, struct mail_options *o)
{
	bool ok = p->value != NULL;
	if (ok && str_ieq(p->key, p->key_len, "RET"))
		ok = smtp_dsn_ret(p->value, p->value_len, &o->ret_hdrs);
	else if (ok) {
		ok = smtp_dsn_envid(p->value, p->value_len);
		o->envid = p->value;
		o->envid_len = p->value_len;
	}
	if (!ok)
		session_reply_text(s, SMTP_R_PARAM_BAD,
		                   str_ieq(p->key, p->key_len, "RET") ? "RET must be FULL or HDRS"
		                                                      : "ENVID must be xtext of at most 100 octets");
	return ok;
}

/* mail_params - check MAIL's parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET and ENVID). */
static bool mail_params(struct smtpd_session *s, const struct smtp_command *cmd, struct mail_options *o)
{
	memset(o, 0, sizeof *o);
	bool *smtputf8 = &o->smtputf8;
	if (cmd->param_count > 0 && !s->esmtp) {
		session_reply(s, SMTP_R_PARAM_AFTER_HELO);
		return false;
	}
	for (size_t i = 0; i < cmd->param_count; i++) {
		const struct smtp_param *p = &cmd->params[i];
		if (str_ieq(p->key, p->key_len, "SIZE")) {
			uint64_t size;
			if (!smtp_param_size(p, &size)) {
				session_reply(s, SMTP_R_PARAM_BAD);
				return false;
			}
			if (size > s->config->max_message_size) {
				session_reply(s, SMTP_R_SIZE_EXCEEDED);
				return false;
			}
			o->size = size;
		} else if (str_ieq(p->key, p->key_len, "BODY")) {
			if (!p->value || (!str_ieq(p->value, p->value_len, "7BIT") &&
			                  !str_ieq(p->value, p->value_len, "8BITMIME"))) {
				session_reply_text(s, SMTP_R_PARAM_BAD, "BODY must be 7BIT or 8BITMIME");
				return false;
			}
		} else if (str_ieq(p->key, p->key_len, "SMTPUTF8")) {
			if (p->value) {
				session_reply(s, SMTP_R_PARAM_BAD);
				return false;
			}
			*smtputf8 = true;
		} else if (str_ieq(p->key, p->key_len, "RET") || str_ieq(p->key, p->key_len, "ENVID")) {
			if (!dsn_mail_param(s, p, o))
				return false;
		} else {
			session_reply(s, SMTP_R_PARAM_UNKNOWN);
			return false;
		}
	}
	return true;
}

/*
 * mail_space_ok - is there room on the queue's disk for a message (of size
 * octets, if SIZE said)? As Postfix's smtpd does with queue_minfree: the
 * refusal comes at MAIL, before the client sends the content. The store's
 * own line (event=disk_low, or event=commit_failed) says why, once; a line
 * per refused MAIL would only fill the log while the disk is full.
 */
static bool mail_space_ok(struct smtpd_session *s, uint64_t size)
{
	if (!s->host->space_ok || s->host->space_ok(s->host->ctx, size))
		return true;
	log_debug("event=mail_refused session=%s reason=disk_space size=%llu", s->sid, (unsigned long long)size);
	return false;
}

/* A MAIL command on its way, copied out of the command line, while the directory is asked. */
struct mail_lookup {
	struct smtpd_lookup lookup;     /* first */
	char sender[STORE_ADDRESS_MAX]; /* as the client wrote it */
	char lookup_address[STORE_ADDRESS_MAX];
	char user[STORE_ADDRESS_MAX];
	char delimiter[16];
	bool smtputf8, ret_hdrs;
	uint64_t size; /* SIZE=, or 0 */
	char *envid;   /* or NULL */
	int may;       /* store_dir_may_send_as */
};

static void mail_lookup_release(struct smtpd_lookup *lookup)
{
	struct mail_lookup *m = (struct mail_lookup *)lookup;
	free(m->envid);
	free(m);
}

/* mail_begin - the sender is settled: count the message against the rates, start the transaction. */
static void mail_begin(struct smtpd_session *s, struct mail_lookup *m)
{
	/* Before the rate limits, so that a refusal for space costs the sender none of their rate. */
	if (!mail_space_ok(s, m->size)) {
		session_reply(s, SMTP_R_NO_STORAGE);
		return;
	}
	if (!rate_allows(s, 'm', s->config->user_message_rate, s->config->ip_message_rate)) {
		session_reply(s, SMTP_R_MESSAGE_RATE);
		return;
	}
	struct smtpd_txn *txn = txn_new();
	id_next(txn->qid);
	txn->sender = str_dup(m->sender);
	txn->smtputf8 = m->smtputf8;
	txn->ret_hdrs = m->ret_hdrs;
	txn->envid = m->envid;
	m->envid = NULL;
	s->txn = txn;
	session_enter_state(s, SMTPD_MAIL);
	char q[LOG_QUOTE_MAX], who[LOG_QUOTE_MAX + 32] = "";
	if (s->kind == LISTENER_LOCAL)
		str_format(who, sizeof who, " uid=%u user=%s", (unsigned)s->local_uid,
		           log_quote(q, sizeof q, s->local_user, strlen(s->local_user)));
	log_info("event=mail session=%s qid=%s from=%s%s", s->sid, txn->qid,
	         log_quote(q, sizeof q, m->sender, strlen(m->sender)), who);
	session_reply(s, SMTP_R_MAIL_OK);
}

/* mail_query_sender - lookup thread: may the user send as the envelope sender? */
static void mail_query_sender(struct smtpd_lookup *lookup, struct store_reader *reader)
{
	struct mail_lookup *m = (struct mail_lookup *)lookup;
	m->may = reader ? store_dir_may_send_as(reader, m->user, m->lookup_address, m->delimiter) : -1;
}

static void mail_finish_sender(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	struct mail_lookup *m = (struct mail_lookup *)lookup;
	if (m->may < 0) {
		session_reply(s, SMTP_R_LOCAL_ERROR);
	} else if (m->may == 0) {
		char q[LOG_QUOTE_MAX], text[STORE_ADDRESS_MAX + 64];
		log_info("event=sender_refused session=%s user=%s from=%s", s->sid, s->auth_user,
		         log_quote(q, sizeof q, m->sender, strlen(m->sender)));
		str_format(text, sizeof text, "Sender address not owned by user %s", s->auth_user);
		session_reply_text(s, SMTP_R_SENDER_NOT_OWNED, text);
	} else {
		mail_begin(s, m);
	}
}

static void handle_mail(struct smtpd_session *s, const struct smtp_command *cmd)
{
	struct mail_options options;
	if (s->kind != LISTENER_MX && s->kind != LISTENER_LOCAL && !s->auth_user[0]) {
		/* RFC 6409 4.3: submission needs AUTH, and AUTH needs TLS here; a local user is known by uid. */
		session_reply(s, auth_offered(s) ? SMTP_R_AUTH_REQUIRED : SMTP_R_STARTTLS_FIRST);
		return;
	}
	if (!mail_params(s, cmd, &options))
		return;
	if (cmd->path.has_utf8 && !options.smtputf8) {
		session_reply(s, SMTP_R_UTF8_NEEDED);
		return;
	}
	struct mail_lookup *m = xcalloc(1, sizeof *m);
	m->lookup.release = mail_lookup_release;
	str_copy(m->sender, sizeof m->sender, cmd->path.addr);
	m->smtputf8 = options.smtputf8;
	m->ret_hdrs = options.ret_hdrs;
	m->size = options.size;
	m->envid = options.envid ? str_dup_n(options.envid, options.envid_len) : NULL;
	if (!s->auth_user[0] || cmd->path.is_null) {
		mail_begin(s, m);
		mail_lookup_release(&m->lookup);
		return;
	}
	/* An authenticated user may use only their own addresses: the directory says which. */
	lookup_address(&cmd->path, m->lookup_address, sizeof m->lookup_address);
	str_copy(m->user, sizeof m->user, s->auth_user);
	str_copy(m->delimiter, sizeof m->delimiter, s->config->recipient_delimiter);
	m->lookup.query = mail_query_sender;
	m->lookup.finish = mail_finish_sender;
	smtpd_lookup_start(s, &m->lookup);
}

/* ---- RCPT ---- */

/*
 * A recipient on its way: what RCPT said, copied out of the command line
 * (the line is gone once the session reads on), the route decided so far,
 * and the directory's answer.
 */
struct rcpt_lookup {
	struct smtpd_lookup lookup;      /* first */
	char address[STORE_ADDRESS_MAX]; /* as the client wrote it */
	char lookup_address[STORE_ADDRESS_MAX];
	unsigned notify;
	char *orcpt; /* or NULL */
	enum store_route route;
	char key[STORE_ROUTE_KEY_MAX];
	/* The question's settings (the session's configuration may change while it is out). */
	char delimiter[16];
	char postmaster[STORE_ADDRESS_MAX];
	uint64_t suppression_ttl_ms;
	int64_t now_ms;
	/* The answer: mailboxes (local), or 1 if suppressed (remote); -1 on a database error. */
	int found;
	char (*boxes)[STORE_ADDRESS_MAX];
};

static void rcpt_lookup_release(struct smtpd_lookup *lookup)
{
	struct rcpt_lookup *r = (struct rcpt_lookup *)lookup;
	free(r->orcpt);
	free(r->boxes);
	free(r);
}

/* rcpt_refused - the recipient was refused (the reply is written). */
static void rcpt_refused(struct smtpd_session *s, const char *address)
{
	char q[LOG_QUOTE_MAX];
	if (s->txn)
		s->txn->rcpts_refused++;
	log_info("event=rcpt_refused session=%s qid=%s to=%s", s->sid, s->txn ? s->txn->qid : "-",
	         log_quote(q, sizeof q, address, strlen(address)));
}

/* rcpt_accept - the recipient's route is decided: count it against the rates, keep it, answer 250. */
static void rcpt_accept(struct smtpd_session *s, struct rcpt_lookup *r, int count)
{
	struct smtpd_txn *txn = s->txn;
	if (!rate_allows(s, 'r', s->config->user_recipient_rate, s->config->ip_recipient_rate)) {
		session_reply(s, SMTP_R_RECIPIENT_RATE);
		rcpt_refused(s, r->address);
		return;
	}
	for (int i = 0; i < count; i++)
		txn_add_rcpt(txn, r->address, r->route, r->boxes[i], r->key, r->notify, r->orcpt,
		             r->orcpt ? strlen(r->orcpt) : 0);
	if (!txn->first_rcpt)
		txn->first_rcpt = str_dup(r->address);
	txn->rcpts_accepted++;
	char q[LOG_QUOTE_MAX];
	log_info("event=rcpt session=%s qid=%s to=%s route=%s mailboxes=%d", s->sid, txn->qid,
	         log_quote(q, sizeof q, r->address, strlen(r->address)), store_route_name(r->route), count);
	session_reply(s, SMTP_R_RCPT_OK);
}

/* rcpt_query_local - lookup thread: the local mailboxes of the address. */
static void rcpt_query_local(struct smtpd_lookup *lookup, struct store_reader *reader)
{
	struct rcpt_lookup *r = (struct rcpt_lookup *)lookup;
	r->found = reader ? store_dir_resolve(reader, r->lookup_address, r->delimiter, r->postmaster, r->boxes,
	                                      SMTPD_RESOLVE_MAX)
	                  : -1;
}

static void rcpt_finish_local(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	struct rcpt_lookup *r = (struct rcpt_lookup *)lookup;
	if (r->found <= 0) {
		session_reply(s, r->found < 0 ? SMTP_R_LOCAL_ERROR : SMTP_R_USER_UNKNOWN);
		rcpt_refused(s, r->address);
		return;
	}
	rcpt_accept(s, r, r->found);
}

/* rcpt_query_suppressed - lookup thread: is the address on the suppression list? */
static void rcpt_query_suppressed(struct smtpd_lookup *lookup, struct store_reader *reader)
{
	struct rcpt_lookup *r = (struct rcpt_lookup *)lookup;
	r->found = reader ? store_dir_suppressed(reader, r->address, r->suppression_ttl_ms, r->now_ms) : -1;
}

static void rcpt_finish_remote(struct smtpd_session *s, struct smtpd_lookup *lookup)
{
	struct rcpt_lookup *r = (struct rcpt_lookup *)lookup;
	if (r->found != 0) {
		if (r->found < 0) {
			session_reply(s, SMTP_R_LOCAL_ERROR);
		} else {
			char q[LOG_QUOTE_MAX];
			log_info("event=rcpt_suppressed session=%s qid=%s to=%s", s->sid, s->txn->qid,
			         log_quote(q, sizeof q, r->address, strlen(r->address)));
			session_reply_config(s, &s->config->suppression_reply, r->address);
		}
		rcpt_refused(s, r->address);
		return;
	}
	r->boxes[0][0] = '\0';
	rcpt_accept(s, r, 1);
}

/*
 * rcpt_route - decide the recipient's route, here once, kept on its row:
 * postmaster, another domain (relaying must be allowed; the suppression
 * list is asked), or a local address (the directory is asked). The
 * directory is asked off the loop; the answer comes back to a finish
 * function, which replies.
 */
static void rcpt_route(struct smtpd_session *s, const struct smtp_path *path, struct rcpt_lookup *r)
{
	const struct config *c = s->config;
	r->route = c->local_delivery.kind == CONFIG_ROUTE_LMTP ? STORE_ROUTE_LMTP : STORE_ROUTE_MAILBOX;
	if (path->is_bare_postmaster) {
		str_copy(r->boxes[0], STORE_ADDRESS_MAX, c->postmaster);
		rcpt_accept(s, r, 1);
		rcpt_lookup_release(&r->lookup);
		return;
	}
	const char *domain = smtp_path_domain(path);
	bool remote = path->domain_literal || !config_is_local_domain(c, domain, path->domain_len);
	if (remote && !relay_allowed(s)) {
		session_reply(s, SMTP_R_RELAY_DENIED);
		rcpt_refused(s, r->address);
		rcpt_lookup_release(&r->lookup);
		return;
	}
	if (remote) {
		char lower[STORE_ADDRESS_MAX];
		str_copy_n(lower, sizeof lower, domain, path->domain_len);
		str_lower(lower);
		r->route = smtpd_route_remote(c, lower, r->key, sizeof r->key);
		if (!c->suppression) {
			r->found = 0;
			rcpt_finish_remote(s, &r->lookup);
			rcpt_lookup_release(&r->lookup);
			return;
		}
		r->suppression_ttl_ms = c->suppression_ttl * 1000;
		r->now_ms = time_wall_ms();
		r->lookup.query = rcpt_query_suppressed;
		r->lookup.finish = rcpt_finish_remote;
	} else {
		lookup_address(path, r->lookup_address, sizeof r->lookup_address);
		str_copy(r->delimiter, sizeof r->delimiter, c->recipient_delimiter);
		str_copy(r->postmaster, sizeof r->postmaster, c->postmaster);
		r->lookup.query = rcpt_query_local;
		r->lookup.finish = rcpt_finish_local;
	}
	smtpd_lookup_start(s, &r->lookup);
}

/* rcpt_params - NOTIFY and ORCPT (RFC 3461 4.1, 4.2); false after replying. */
static bool rcpt_params(struct smtpd_session *s, const struct smtp_command *cmd, unsigned *notify, const char **orcpt,
                        size_t *orcpt_len)
{
	if (cmd->param_count > 0 && !s->esmtp) {
		session_reply(s, SMTP_R_PARAM_AFTER_HELO);
		return false;
	}
	for (size_t i = 0; i < cmd->param_count; i++) {
		const struct smtp_param *p = &cmd->params[i];
		if (str_ieq(p->key, p->key_len, "NOTIFY")) {
			if (!p->value || !smtp_dsn_notify(p->value, p->value_len, notify)) {
				session_reply_text(s, SMTP_R_PARAM_BAD,
				                   "NOTIFY must be NEVER, or SUCCESS, FAILURE, DELAY joined by commas");
				return false;
			}
		} else if (str_ieq(p->key, p->key_len, "ORCPT")) {
			if (!p->value || !smtp_dsn_orcpt(p->value, p->value_len)) {
				session_reply_text(s, SMTP_R_PARAM_BAD, "ORCPT must be addr-type;xtext");
				return false;
			}
			*orcpt = p->value;
			*orcpt_len = p->value_len;
		} else {
			session_reply(s, SMTP_R_PARAM_UNKNOWN);
			return false;
		}
	}
	return true;
}

static void handle_rcpt(struct smtpd_session *s, const struct smtp_command *cmd)
{
	struct smtpd_txn *txn = s->txn;
	session_enter_state(s, SMTPD_RCPT);
	if (txn->rcpts_accepted >= s->config->max_recipients) {
		session_reply(s, SMTP_R_TOO_MANY_RCPTS);
		return;
	}
	unsigned notify = 0;
	const char *orcpt = NULL;
	size_t orcpt_len = 0;
	if (!rcpt_params(s, cmd, &notify, &orcpt, &orcpt_len)) {
		txn->rcpts_refused++;
		return;
	}
	if (cmd->path.has_utf8 && !txn->smtputf8) {
		session_reply(s, SMTP_R_UTF8_NEEDED);
		txn->rcpts_refused++;
		return;
	}
	struct rcpt_lookup *r = xcalloc(1, sizeof *r);
	r->lookup.release = rcpt_lookup_release;
	str_copy(r->address, sizeof r->address, cmd->path.addr);
	r->notify = notify;
	r->orcpt = orcpt ? str_dup_n(orcpt, orcpt_len) : NULL;
	r->boxes = xmalloc(SMTPD_RESOLVE_MAX * sizeof *r->boxes);
	rcpt_route(s, &cmd->path, r);
}

/* ---- DATA, BDAT ---- */

/* content_allowed - may content start now? Replies and returns false if not. */
static enum smtp_reply_id content_refusal(const struct smtpd_session *s)
{
	if (!s->txn)
		return SMTP_R_NEED_MAIL;
	if (s->txn->rcpts_accepted == 0)
		return s->txn->rcpts_refused ? SMTP_R_NO_VALID_RCPT : SMTP_R_NEED_RCPT;
	return SMTP_R_OK;
}

static void handle_data(struct smtpd_session *s, const struct smtp_command *cmd)
{
	enum smtp_reply_id refusal = content_refusal(s);
	if (refusal == SMTP_R_OK && s->txn->used_bdat)
		refusal = SMTP_R_DATA_AFTER_BDAT;
	if (refusal != SMTP_R_OK) {
		session_reply(s, refusal);
		return;
	}
	txn_begin_content(s, SMTP_DATA_DOT);
	session_enter_state(s, SMTPD_DATA);
	session_set_data_timeouts(s, true);
	session_reply(s, SMTP_R_DATA_GO);
}

static void handle_bdat(struct smtpd_session *s, const struct smtp_command *cmd)
{
	enum smtp_reply_id refusal = content_refusal(s);
	if (refusal == SMTP_R_OK && cmd->chunk_size == 0 && !cmd->chunk_last)
		refusal = SMTP_R_BDAT_EMPTY_NOT_LAST;
	if (refusal != SMTP_R_OK) {
		/* The chunk still comes: read past it so the session stays in sync. */
		s->discard_left = cmd->chunk_size;
		s->discard_reply = (int)refusal + 1;
		if (cmd->chunk_size > 0)
			session_set_data_timeouts(s, true);
		return;
	}
	struct smtpd_txn *txn = s->txn;
	if (!txn->used_bdat) {
		txn_begin_content(s, SMTP_DATA_BDAT);
		txn->used_bdat = true;
	}
	txn->chunk_left = cmd->chunk_size;
	txn->chunk_last = cmd->chunk_last;
	session_enter_state(s, SMTPD_BDAT);
	session_set_data_timeouts(s, true);
}

/* ---- The rest ---- */

static void handle_rset(struct smtpd_session *s, const struct smtp_command *cmd)
{
	txn_reset(s);
	session_reply(s, SMTP_R_OK);
}

static void handle_noop(struct smtpd_session *s, const struct smtp_command *cmd)
{
	session_reply(s, SMTP_R_OK);
}

static void handle_vrfy(struct smtpd_session *s, const struct smtp_command *cmd)
{
	session_reply(s, SMTP_R_VRFY);
}

static void handle_expn(struct smtpd_session *s, const struct smtp_command *cmd)
{
	session_reply(s, SMTP_R_NO_EXPN);
}

static void handle_help(struct smtpd_session *s, const struct smtp_command *cmd)
{
	session_reply(s, SMTP_R_HELP);
}

static void handle_quit(struct smtpd_session *s, const struct smtp_command *cmd)
{
	session_reply(s, SMTP_R_BYE);
	session_close_after_reply(s);
}

static void handle_starttls(struct smtpd_session *s, const struct smtp_command *cmd)
{
	if (s->tls_started) {
		session_reply(s, SMTP_R_TLS_ACTIVE);
		return;
	}
	if (!s->host->tls || s->kind == LISTENER_LOCAL) {
		session_reply(s, SMTP_R_NO_TLS);
		return;
	}
	/* Commands behind STARTTLS in the same packet: no 220; the check
	 * after every group-ending command answers 554 and closes. */
	if (net_conn_input_length(s->conn) > 0)
		return;
	session_reply(s, SMTP_R_TLS_GO);
	session_begin_tls(s);
}

static const struct command_rule command_rules[SMTP_VERB_COUNT] = {
        [SMTP_VERB_HELO] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_helo},
        [SMTP_VERB_EHLO] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_ehlo},
        [SMTP_VERB_MAIL] = {SMTPD_STATE_BIT(SMTPD_READY), SMTP_R_NESTED_MAIL, false, handle_mail},
        [SMTP_VERB_RCPT] = {IN_TRANSACTION, SMTP_R_NEED_MAIL, false, handle_rcpt},
        [SMTP_VERB_DATA] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_data},
        [SMTP_VERB_BDAT] = {ANY_COMMAND_STATE, SMTP_R_OK, false, handle_bdat},
        [SMTP_VERB_RSET] = {ANY_COMMAND_STATE, SMTP_R_OK, false, handle_rset},
        [SMTP_VERB_NOOP] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_noop},
        [SMTP_VERB_VRFY] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_vrfy},
        [SMTP_VERB_EXPN] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_expn},
        [SMTP_VERB_HELP] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_help},
        [SMTP_VERB_QUIT] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_quit},
        [SMTP_VERB_STARTTLS] = {ANY_COMMAND_STATE, SMTP_R_OK, true, handle_starttls},
        [SMTP_VERB_AUTH] = {ANY_COMMAND_STATE, SMTP_R_OK, true, auth_handle},
};

static enum smtp_reply_id parse_refusal(enum smtp_parse_status status, enum smtp_verb verb)
{
	switch (status) {
	case SMTP_PARSE_UNKNOWN_VERB:
		return SMTP_R_UNKNOWN_COMMAND;
	case SMTP_PARSE_BAD_ADDRESS:
		return verb == SMTP_VERB_MAIL ? SMTP_R_BAD_SENDER : SMTP_R_BAD_RCPT;
	case SMTP_PARSE_TOO_LONG:
		return SMTP_R_PATH_TOO_LONG;
	default:
		return SMTP_R_SYNTAX;
	}
}

/* out_of_sequence - the reply for a verb in a state the table does not allow. */
static enum smtp_reply_id out_of_sequence(const struct smtpd_session *s, enum smtp_verb verb)
{
	if (s->state == SMTPD_CONNECTED && (verb == SMTP_VERB_MAIL || verb == SMTP_VERB_RCPT))
		return SMTP_R_NEED_HELO;
	return command_rules[verb].out_of_sequence;
}

void command_dispatch(struct smtpd_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *why = NULL;
	enum smtp_parse_status status = smtp_command_parse(line, len, &cmd, &why);
	const struct command_rule *rule = status == SMTP_PARSE_OK ? &command_rules[cmd.verb] : NULL;
	if (status != SMTP_PARSE_OK) {
		enum smtp_reply_id id = parse_refusal(status, cmd.verb);
		session_reply_text(s, id, status == SMTP_PARSE_UNKNOWN_VERB ? NULL : why);
		if (cmd.verb == SMTP_VERB_BDAT) {
			/* A chunk of unknown size may follow: reading it as commands
			 * would run whatever it holds. Say so and close. */
			session_reply_text(s, SMTP_R_SHUTDOWN_PROTOCOL, NULL);
			session_close_after_reply(s);
		}
	} else if (!rule->handler) {
		session_reply(s, SMTP_R_UNKNOWN_COMMAND);
	} else if (!(rule->states & SMTPD_STATE_BIT(s->state))) {
		session_reply(s, out_of_sequence(s, cmd.verb));
	} else {
		rule->handler(s, &cmd);
	}
	/* RFC 2920 3.1: after a command that changes what the client must
	 * expect, anything already sent was sent blind. Postfix 3.9 and later
	 * refuse this by default (smtpd_forbid_unauth_pipelining); so do we. */
	bool ends_group = rule ? rule->ends_group : false;
	if (ends_group && s->state != SMTPD_CLOSING && net_conn_input_length(s->conn) > 0) {
		log_warning("event=pipelining_violation session=%s verb=%s", s->sid, smtp_verb_name(cmd.verb));
		session_reply(s, SMTP_R_PIPELINING);
		session_close_after_reply(s);
	}
}
