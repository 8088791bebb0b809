/*
 * cli_sendmail.c - `tern sendmail`, and tern run under the name sendmail,
 * mailq or newaliases: the command that programs written for
 * /usr/sbin/sendmail call (PHP's mail(), cron, mailx, git send-email).
 *
 * It hands the message to the running server over the server's local
 * socket (sendmail_socket) in an SMTP dialogue, as the user who runs it:
 * no setuid, no access to the queue. The server answers the end of the
 * message only after committing it to the queue, so exit status 0 means
 * the message is safe on disk.
 *
 * The configuration is -C FILE (or tern's -c FILE), else
 * /etc/tern/tern.conf if it exists, else the built-in defaults. It is read
 * without opening the files it names (a key or a relay's auth= password
 * only root may read is no concern here); from it come the socket, the
 * domain for addresses without one (the first of local_domains, else
 * hostname), and max_message_size: a message longer than that on
 * standard input is refused here (EX_DATAERR) rather than cut short.
 *
 * Exit status (sysexits.h): 0 once the server took the message, for
 * every recipient or only some. Each recipient refused (here, or by the
 * server, with its reply) is named on standard error, but the status stays
 * 0: callers (PHP's mail(), git send-email, mailx) take any other for "not
 * sent" and send again, which would give the accepted recipients a second
 * copy. EX_USAGE bad flags, a bad -f, no recipient at all; EX_DATAERR an
 * address field of a -t message that is not a list of addresses, or a
 * message over max_message_size (nothing sent in either case); EX_NOUSER
 * no recipient accepted (nothing was sent); EX_UNAVAILABLE the message was
 * not handed over: the server not running (no socket, or nothing answers
 * on it), the connection lost, a 4xx or 5xx reply (a 4xx to any RCPT
 * sends nothing, so that the caller's retry cannot deliver twice), more
 * recipients than max_recipients, local submission turned off;
 * EX_SOFTWARE a reply that makes no sense; EX_OSERR a system call that
 * should not fail did; EX_IOERR standard input or output failed; EX_CONFIG
 * a bad configuration file; EX_NOPERM (mailq) a queue the user may not
 * read.
 *
 * EX_TEMPFAIL (75) is never used. To programs that call sendmail it means
 * "queued, it will be retried": PHP's mail() counts it as success (since
 * PHP 8.5 reads the exit status right, that is what it does). This
 * command keeps no queue of its own, so a message the server did not take
 * is not sent at all, and 75 would have it lost without a word.
 *
 * Blocking I/O with timeouts: one short-lived connection. Limits: at most
 * max_recipients recipients (after duplicates are dropped) in one message,
 * as the server takes; with more, nothing is sent (EX_UNAVAILABLE).
 */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli_sendmail.h"
#include "cli/cli_util.h"
#include "msg/msg_address.h"
#include "msg/msg_submit.h"
#include "smtp/smtp_address.h"
#include "smtp/smtp_client_reply.h"
#include "smtp/smtp_data.h"
#include "util/util_io.h"
#include "util/util_str.h"

#define SENDMAIL_CONFIG "/etc/tern/tern.conf"
/* RFC 5321 4.5.3.2: five minutes for a command's reply, ten for the reply to the end of the content. */
#define SENDMAIL_COMMAND_TIMEOUT_S 300
#define SENDMAIL_DATA_TIMEOUT_S    600
/* -bs: the dialogue ends after this long with nothing said either way (the server's own timeouts are shorter). */
#define SENDMAIL_RELAY_IDLE_MS (3600 * 1000)
/* A reply line is at most 512 octets (RFC 5321 4.5.3.1.5); a longer one is a broken server. */
#define SENDMAIL_LINE_MAX 4096
#define SENDMAIL_READ     (64 * 1024)

static const char sendmail_usage_line[] =
        "usage: sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [-B 8BITMIME] [-N DSN] [-R RET] [-V ENVID]\n"
        "                [-bm | -bs | -bp | -bi] [--] [RECIPIENT...]\n";

struct sm_conn {
	int fd;
	FILE *out; /* writes to fd, buffered; ferror once a write failed */
	char in[SENDMAIL_LINE_MAX];
	size_t in_len;
};

/* One recipient, or the sender, as an SMTP path. */
struct sm_rcpt {
	char path[SMTP_PATH_MAX + 1]; /* "<local@domain>" */
	size_t local_len;             /* bytes of the local part at path + 1, quotes included */
	bool utf8;
};

struct sm_envelope {
	char sender[SMTP_PATH_MAX + 1]; /* "<...>" */
	bool utf8;                      /* an address needs SMTPUTF8 */
	struct sm_rcpt *rcpts;
	size_t rcpt_count, rcpt_cap;
	size_t refused;  /* recipients refused, here or by the server */
	size_t too_many; /* recipients past max_recipients, not taken */
	size_t max;      /* max_recipients */
};

struct sm_session {
	struct sm_conn conn;
	struct smtp_ehlo ehlo;
	const struct config *config;
	const struct sendmail_options *options;
};

static int sm_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sm_fail - "tern: MESSAGE" on stderr; returns rc. */
static int sm_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tern: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return rc;
}

/* ---- Who and where ---- */

/* sm_domain - for addresses without one: the first local domain, else the host name. */
static const char *sm_domain(const struct config *config)
{
	return config->local_domain_count > 0 ? config->local_domains[0] : config->hostname;
}

/* sm_login - the invoking user's login name and full name (the GECOS field's first part). */
static void sm_login(char *login, size_t size, char *full_name, size_t name_size)
{
	struct passwd *pw = getpwuid(getuid());
	full_name[0] = '\0';
	if (!pw || !str_copy(login, size, pw->pw_name)) {
		str_format(login, size, "#%u", (unsigned)getuid());
		return;
	}
	if (pw->pw_gecos)
		str_copy_n(full_name, name_size, pw->pw_gecos, strcspn(pw->pw_gecos, ","));
}

/* ---- Addresses ---- */

/*
 * sm_path - an address as msg_address hands it over (its local part
 * unquoted, in its first local_len bytes: it may hold "@") as an SMTP
 * path, "@DOMAIN" added when it has no domain, the local part quoted when
 * it is not a Dot-string. False, with why, when it is not a valid mailbox.
 */
static bool sm_path(const char *address, size_t local_len, const char *domain, enum smtp_path_kind kind,
                    struct sm_rcpt *out, const char **why)
{
	size_t n = 0;
	char buf[2 * SMTP_PATH_MAX + 8];
	*why = "too long";
	if (local_len > SMTP_PATH_MAX)
		return false;
	bool quote = !smtp_dot_string(address, local_len, true);
	buf[n++] = '<';
	if (quote)
		buf[n++] = '"';
	for (size_t i = 0; i < local_len; i++) {
		if (quote && (address[i] == '"' || address[i] == '\\'))
			buf[n++] = '\\';
		buf[n++] = address[i];
	}
	if (quote)
		buf[n++] = '"';
	if (!str_format(buf + n, sizeof buf - n, "@%s>", address[local_len] == '@' ? address + local_len + 1 : domain))
		return false;
	n += strlen(buf + n);
	struct smtp_path parsed;
	size_t used = 0;
	bool too_long = false;
	if (!smtp_path_parse(buf, n, kind, &parsed, &used, &too_long, why) || used != n || n > SMTP_PATH_MAX)
		return false;
	memcpy(out->path, buf, n + 1);
	out->local_len = parsed.local_len;
	out->utf8 = parsed.has_utf8;
	return true;
}

/* sm_same_rcpt - the same mailbox: the local part exactly (RFC 5321 2.4), the domain in any case. */
static bool sm_same_rcpt(const struct sm_rcpt *a, const struct sm_rcpt *b)
{
	return a->local_len == b->local_len && memcmp(a->path, b->path, a->local_len + 1) == 0 &&
	       strcasecmp(a->path + a->local_len + 1, b->path + b->local_len + 1) == 0;
}

/*
 * sm_rcpt_add - one recipient; a duplicate of one already there is dropped.
 * Past max_recipients recipients are only counted and no longer compared
 * (nothing is then sent: the server would refuse the rest with 452), so
 * the search for duplicates, quadratic, stays within max_recipients (at
 * most SMTP_RECIPIENTS_CEILING) entries whatever the input holds.
 */
static void sm_rcpt_add(struct sm_envelope *env, const struct sm_rcpt *rcpt)
{
	if (env->too_many > 0) {
		env->too_many++;
		return;
	}
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (sm_same_rcpt(&env->rcpts[i], rcpt))
			return;
	if (env->rcpt_count >= env->max) {
		env->too_many++;
		return;
	}
	if (env->rcpt_count == env->rcpt_cap) {
		env->rcpt_cap = env->rcpt_cap ? env->rcpt_cap * 2 : 8;
		env->rcpts = xrealloc(env->rcpts, env->rcpt_cap * sizeof *env->rcpts);
	}
	env->rcpts[env->rcpt_count++] = *rcpt;
	env->utf8 |= rcpt->utf8;
}

struct sm_take {
	struct sm_envelope *env;
	const char *domain;
};

/* sm_take_address - msg_address_fn: a recipient, or a refusal said here (it counts as refused). */
static bool sm_take_address(void *ctx, const char *address, size_t local_len)
{
	struct sm_take *t = ctx;
	struct sm_rcpt rcpt;
	const char *why = NULL;
	if (sm_path(address, local_len, t->domain, SMTP_PATH_FORWARD, &rcpt, &why)) {
		sm_rcpt_add(t->env, &rcpt);
	} else {
		sm_fail(0, "%s: not a valid address (%s); not sent to it", address, why ? why : "?");
		t->env->refused++;
	}
	return true;
}

/* sm_rcpts_from_args - each argument is an address list ("a@x, Bob <b@y>", "root"). */
static void sm_rcpts_from_args(struct sm_envelope *env, const struct sendmail_options *o, const char *domain)
{
	struct sm_take t = {env, domain};
	for (size_t i = 0; i < o->rcpt_count; i++) {
		size_t count;
		const char *arg = o->rcpts[i];
		if (!msg_address_list_local(arg, strlen(arg), sm_take_address, &t, &count) || count == 0) {
			sm_fail(0, "%s: not a valid address; not sent to it", arg);
			env->refused++;
		}
	}
}

static void sm_rcpts_from_header(struct sm_envelope *env, const struct msg_submit *m, const char *domain)
{
	struct sm_take t = {env, domain};
	for (size_t i = 0; i < m->rcpt_count; i++)
		sm_take_address(&t, m->rcpts[i].address, m->rcpts[i].local_len);
}

struct sm_one {
	char address[MSG_ADDRESS_MAX + 1];
	size_t local_len;
};

/* sm_take_one - msg_address_fn: keep the first address. */
static bool sm_take_one(void *ctx, const char *address, size_t local_len)
{
	struct sm_one *one = ctx;
	if (!one->address[0] && str_copy(one->address, sizeof one->address, address))
		one->local_len = local_len;
	return true;
}

/* sm_sender - the envelope sender: -f as given ("" or "<>": the null sender), else login@domain. */
static int sm_sender(struct sm_envelope *env, const struct sendmail_options *o, const char *login, const char *domain)
{
	const char *given = o->sender ? o->sender : login;
	if (strcmp(given, "") == 0 || strcmp(given, "<>") == 0) {
		str_copy(env->sender, sizeof env->sender, "<>");
		return EX_OK;
	}
	struct sm_one one = {"", 0};
	struct sm_rcpt sender;
	size_t count = 0;
	const char *why = NULL;
	if (msg_address_list_local(given, strlen(given), sm_take_one, &one, &count) && count == 1 &&
	    sm_path(one.address, one.local_len, domain, SMTP_PATH_REVERSE, &sender, &why)) {
		str_copy(env->sender, sizeof env->sender, sender.path);
		env->utf8 |= sender.utf8;
		return EX_OK;
	}
	if (!o->sender)
		return sm_fail(EX_USAGE, "your login name %s does not make an address: give one with -f", login);
	return sm_fail(EX_USAGE, "-f %s: not an address%s%s", given, why ? ": " : "", why ? why : "");
}

/* ---- The connection ---- */

static void sm_timeout(int fd, int seconds)
{
	struct timeval tv = {seconds, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* sm_connect - the server's local socket, or -1 after saying why (*rc: the exit status). */
static int sm_connect(const struct config *config, int *rc)
{
	char path[CONFIG_SOCKET_PATH_MAX + 1];
	int on = config_sendmail_socket(config, path, sizeof path);
	if (on == 0) {
		*rc = sm_fail(EX_UNAVAILABLE, "local submission is turned off (sendmail_socket = none in %s)",
		              config->path ? config->path : "the configuration");
		return -1;
	}
	if (on < 0) {
		*rc = sm_fail(EX_CONFIG, "%s/sendmail.sock is longer than %d bytes: set sendmail_socket",
		              config->data_dir, CONFIG_SOCKET_PATH_MAX);
		return -1;
	}
	int fd = io_unix_connect(path, false);
	if (fd < 0) {
		*rc = sm_fail(EX_UNAVAILABLE,
		              "cannot reach the mail server at %s: %s (is `tern serve` running?); the message was "
		              "not sent",
		              path, strerror(errno));
		return -1;
	}
	sm_timeout(fd, SENDMAIL_COMMAND_TIMEOUT_S);
	return fd;
}

static void sm_write(struct sm_conn *c, const char *bytes, size_t len)
{
	fwrite(bytes, 1, len, c->out);
}

static bool sm_write_failed(struct sm_conn *c)
{
	return fflush(c->out) != 0 || ferror(c->out);
}

/* sm_sink - smtp_data_sink for the dot-stuffed content. */
static void sm_sink(void *ctx, const char *bytes, size_t len)
{
	sm_write(ctx, bytes, len);
}

enum sm_read { SM_READ_OK, SM_READ_LOST, SM_READ_BAD };

/* sm_line - the next line from the server (without CR LF) at c->in, its length in *len. */
static enum sm_read sm_line(struct sm_conn *c, size_t *len)
{
	for (;;) {
		char *crlf = c->in_len >= 2 ? memmem(c->in, c->in_len, "\r\n", 2) : NULL;
		if (crlf) {
			*len = (size_t)(crlf - c->in);
			return SM_READ_OK;
		}
		if (c->in_len == sizeof c->in)
			return SM_READ_BAD;
		ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return SM_READ_LOST;
		c->in_len += (size_t)n;
	}
}

/* sm_reply - one whole reply; with ehlo, its lines after the first are noted as EHLO keywords. */
static enum sm_read sm_reply(struct sm_conn *c, struct smtp_client_reply *reply, struct smtp_ehlo *ehlo)
{
	smtp_client_reply_init(reply);
	if (sm_write_failed(c))
		return SM_READ_LOST;
	for (;;) {
		size_t len;
		enum sm_read got = sm_line(c, &len);
		if (got != SM_READ_OK)
			return got;
		const char *text;
		size_t text_len;
		enum smtp_client_line kind = smtp_client_reply_line(reply, c->in, len, &text, &text_len);
		if (ehlo && reply->lines > 1 && (kind == SMTP_LINE_MORE || kind == SMTP_LINE_LAST))
			smtp_ehlo_keyword(ehlo, text, text_len);
		c->in_len -= len + 2;
		memmove(c->in, c->in + len + 2, c->in_len);
		if (kind == SMTP_LINE_LAST)
			return SM_READ_OK;
		if (kind != SMTP_LINE_MORE)
			return SM_READ_BAD;
	}
}

/*
 * sm_judge - how reading the reply to what (a command, for messages) went:
 * EX_OK if the reply's code is in want's class (2xx, 3xx), else the exit
 * status after saying what happened.
 */
static int sm_judge(enum sm_read got, int want, const char *what, const struct smtp_client_reply *reply)
{
	if (got == SM_READ_LOST)
		return sm_fail(EX_UNAVAILABLE,
		               "the connection to the mail server was lost (%s); the message was not sent", what);
	if (got == SM_READ_BAD)
		return sm_fail(EX_SOFTWARE, "the mail server's reply to %s makes no sense; the message was not sent",
		               what);
	if (reply->code / 100 == want / 100)
		return EX_OK;
	/* 4xx too: "try again later" from the server is not "queued" (see the top of this file). */
	int rc = reply->code >= 400 ? EX_UNAVAILABLE : EX_SOFTWARE;
	return sm_fail(rc, "%s: %d %s; the message was not sent", what, reply->code, reply->text);
}

static int sm_expect(struct sm_session *s, int want, const char *what, struct smtp_client_reply *reply)
{
	return sm_judge(sm_reply(&s->conn, reply, NULL), want, what, reply);
}

static void sm_send_line(struct sm_conn *c, const char *line)
{
	sm_write(c, line, strlen(line));
	sm_write(c, "\r\n", 2);
}

static int sm_command(struct sm_session *s, int want, struct smtp_client_reply *reply, const char *line)
{
	sm_send_line(&s->conn, line);
	return sm_expect(s, want, line, reply);
}

/* sm_quit - say goodbye; what the server answers no longer matters. */
static void sm_quit(struct sm_session *s)
{
	struct smtp_client_reply reply;
	sm_send_line(&s->conn, "QUIT");
	sm_reply(&s->conn, &reply, NULL);
}

/* ---- The dialogue ---- */

static int sm_hello(struct sm_session *s)
{
	struct smtp_client_reply reply;
	int rc = sm_expect(s, 220, "the greeting", &reply);
	if (rc != EX_OK)
		return rc;
	char line[SMTP_DOMAIN_MAX + 8];
	str_format(line, sizeof line, "EHLO %s", s->config->hostname);
	sm_send_line(&s->conn, line);
	return sm_judge(sm_reply(&s->conn, &reply, &s->ehlo), 250, line, &reply);
}

/* sm_mail - MAIL FROM with the parameters the message and the flags call for. */
static int sm_mail(struct sm_session *s, const struct sm_envelope *env, const struct msg_submit *m)
{
	const struct sendmail_options *o = s->options;
	char line[SMTP_COMMAND_LINE_MAX], size[32] = "";
	struct smtp_client_reply reply;
	if (s->ehlo.size_offered)
		str_format(size, sizeof size, " SIZE=%zu", m->len);
	bool dsn = s->ehlo.dsn;
	if (!str_format(line, sizeof line, "MAIL FROM:%s%s%s%s%s%s%s%s", env->sender, size,
	                (o->eight_bit || m->eight_bit) && s->ehlo.eightbitmime ? " BODY=8BITMIME" : "",
	                env->utf8 && s->ehlo.smtputf8 ? " SMTPUTF8" : "", dsn && o->ret ? " RET=" : "",
	                dsn && o->ret ? o->ret : "", dsn && o->envid[0] ? " ENVID=" : "", dsn ? o->envid : ""))
		return sm_fail(EX_SOFTWARE, "MAIL FROM line too long");
	return sm_command(s, 250, &reply, line);
}

/* sm_notify - RCPT's NOTIFY parameter for -N, or "". */
static void sm_notify(const struct sm_session *s, char *out, size_t size)
{
	unsigned bits = s->options->notify;
	out[0] = '\0';
	if (!bits || !s->ehlo.dsn)
		return;
	str_format(out, size, " NOTIFY=%s%s%s%s", bits & SMTP_NOTIFY_NEVER ? "NEVER" : "",
	           bits & SMTP_NOTIFY_SUCCESS ? "SUCCESS," : "", bits & SMTP_NOTIFY_FAILURE ? "FAILURE," : "",
	           bits & SMTP_NOTIFY_DELAY ? "DELAY," : "");
	size_t len = strlen(out);
	if (out[len - 1] == ',')
		out[len - 1] = '\0';
}

/*
 * sm_rcpts - RCPT for each recipient. A 5xx refuses that one (said, and
 * counted); a 4xx to any means nothing is sent (EX_UNAVAILABLE): the
 * caller's retry then cannot reach the others twice.
 */
static int sm_rcpts(struct sm_session *s, struct sm_envelope *env, size_t *accepted)
{
	char notify[48], line[SMTP_COMMAND_LINE_MAX];
	bool tempfail = false;
	sm_notify(s, notify, sizeof notify);
	*accepted = 0;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		struct smtp_client_reply reply;
		str_format(line, sizeof line, "RCPT TO:%s%s", env->rcpts[i].path, notify);
		sm_send_line(&s->conn, line);
		enum sm_read got = sm_reply(&s->conn, &reply, NULL);
		if (got != SM_READ_OK)
			return sm_judge(got, 250, line, &reply);
		if (reply.code / 100 == 2) {
			(*accepted)++;
			continue;
		}
		const char *path = env->rcpts[i].path;
		sm_fail(0, "%.*s: %d %s", (int)strlen(path) - 2, path + 1, reply.code, reply.text);
		tempfail |= reply.code < 500;
		env->refused++;
	}
	if (tempfail)
		return sm_fail(EX_UNAVAILABLE, "a recipient was refused for now; the message was not sent to anyone");
	return EX_OK;
}

/* sm_data - DATA, the content dot-stuffed, and the reply that says it is queued. */
static int sm_data(struct sm_session *s, const struct msg_submit *m)
{
	struct smtp_client_reply reply;
	int rc = sm_command(s, 354, &reply, "DATA");
	if (rc != EX_OK)
		return rc;
	int state = 1;
	smtp_dot_stuff(&state, m->content, m->len, sm_sink, &s->conn);
	smtp_dot_stuff_end(&state, sm_sink, &s->conn);
	sm_timeout(s->conn.fd, SENDMAIL_DATA_TIMEOUT_S);
	enum sm_read got = sm_reply(&s->conn, &reply, NULL);
	if (got == SM_READ_LOST)
		return sm_fail(EX_UNAVAILABLE,
		               "the connection to the mail server was lost before it answered the end of "
		               "the message: it may or may not be queued (the server's log says)");
	return sm_judge(got, 250, "the end of the message", &reply);
}

static int sm_dialogue(struct sm_session *s, struct sm_envelope *env, const struct msg_submit *m)
{
	size_t accepted = 0;
	int rc = sm_hello(s);
	if (rc == EX_OK)
		rc = sm_mail(s, env, m);
	if (rc == EX_OK)
		rc = sm_rcpts(s, env, &accepted);
	if (rc == EX_OK && accepted == 0)
		rc = sm_fail(EX_NOUSER, "no recipient was accepted; the message was not sent");
	if (rc == EX_OK)
		rc = sm_data(s, m);
	/* Sent to some: exit 0, or the caller's retry would give those the message twice. */
	if (rc == EX_OK && env->refused > 0)
		sm_fail(0, "the message was queued for %zu recipient%s; the %zu named above did not get it", accepted,
		        accepted == 1 ? "" : "s", env->refused);
	if (!ferror(s->conn.out))
		sm_quit(s);
	return rc;
}

/* ---- Mail: -bm ---- */

/*
 * sm_read_input - standard input, to the "." line unless -i. Reading stops
 * once it is past limit bytes, and then nothing is sent (EX_DATAERR): a
 * message is never cut short, since what was cut off could make it smaller
 * than the server's limit (Bcc: removed, or a server configured with more).
 */
static int sm_read_input(bool ignore_dots, uint64_t limit, char **out, size_t *out_len)
{
	size_t len = 0, cap = 0, scan = 0;
	char *buf = NULL;
	for (;;) {
		if (cap - len < SENDMAIL_READ) {
			cap = cap ? cap * 2 : 2 * SENDMAIL_READ;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(STDIN_FILENO, buf + len, SENDMAIL_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return sm_fail(EX_IOERR, "cannot read the message from standard input: %s", strerror(errno));
		}
		len += (size_t)n;
		long end = ignore_dots ? -1 : msg_submit_dot_end(buf, len, &scan);
		if (end >= 0)
			len = (size_t)end;
		if (n == 0 || end >= 0 || len > limit)
			break;
	}
	if (len > limit) {
		free(buf);
		return sm_fail(EX_DATAERR, "the message is larger than max_message_size (%llu bytes); nothing was sent",
		               (unsigned long long)limit);
	}
	*out = buf;
	*out_len = len;
	return EX_OK;
}

/* sm_prepare - the message as it will be sent: From: added with the full name, Bcc: gone, recipients for -t. */
static int sm_prepare(const struct sendmail_options *o, const struct sm_envelope *env, const char *login,
                      const char *gecos, const char *domain, const char *in, size_t len, struct msg_submit *m)
{
	char from_address[SMTP_PATH_MAX + 1], from[1024];
	/* The added From: is the envelope sender, or the user's own address for the null sender. */
	if (strcmp(env->sender, "<>") != 0)
		str_copy_n(from_address, sizeof from_address, env->sender + 1, strlen(env->sender) - 2);
	else
		str_format(from_address, sizeof from_address, "%s@%s", login, domain);
	if (!msg_submit_from_value(o->full_name ? o->full_name : gecos, from_address, from, sizeof from))
		str_copy(from, sizeof from, from_address);
	struct msg_submit_options mo = {.recipients = o->extract, .from = from};
	if (!msg_submit_prepare(in, len, &mo, m))
		return sm_fail(EX_DATAERR, "the message's %s: field is not a list of addresses; nothing was sent",
		               m->bad_field);
	return EX_OK;
}

static int sm_send(const struct config *config, const struct sendmail_options *o, struct sm_envelope *env,
                   const struct msg_submit *m)
{
	if (env->too_many)
		return sm_fail(EX_UNAVAILABLE, "more than max_recipients (%zu) recipients; nothing was sent", env->max);
	if (env->rcpt_count == 0 && env->refused)
		return sm_fail(EX_NOUSER, "no recipient could be used; nothing was sent");
	if (env->rcpt_count == 0)
		return sm_fail(EX_USAGE, "no recipients, neither given nor in the message's To:, Cc: or Bcc:; nothing "
		                         "was sent");
	struct sm_session *s = xcalloc(1, sizeof *s);
	int rc;
	s->config = config;
	s->options = o;
	s->conn.fd = sm_connect(config, &rc);
	if (s->conn.fd >= 0 && !(s->conn.out = fdopen(s->conn.fd, "w"))) {
		close(s->conn.fd);
		rc = sm_fail(EX_OSERR, "fdopen: %s", strerror(errno));
	} else if (s->conn.fd >= 0) {
		rc = sm_dialogue(s, env, m);
		fclose(s->conn.out); /* and the socket with it */
	}
	free(s);
	return rc;
}

static int sendmail_mail(const struct config *config, const struct sendmail_options *o)
{
	char login[256], gecos[256];
	const char *domain = sm_domain(config);
	struct sm_envelope env = {.max = (size_t)config->max_recipients};
	struct msg_submit m = {0};
	char *in = NULL;
	size_t len = 0;
	sm_login(login, sizeof login, gecos, sizeof gecos);
	int rc = sm_sender(&env, o, login, domain);
	if (rc == EX_OK && !o->extract && o->rcpt_count == 0)
		rc = sm_fail(EX_USAGE, "no recipients (give some, or use -t)");
	if (rc == EX_OK)
		rc = sm_read_input(o->ignore_dots, config->max_message_size, &in, &len);
	if (rc == EX_OK)
		rc = sm_prepare(o, &env, login, gecos, domain, in, len, &m);
	if (rc == EX_OK) {
		sm_rcpts_from_args(&env, o, domain);
		sm_rcpts_from_header(&env, &m, domain);
		rc = sm_send(config, o, &env, &m);
	}
	msg_submit_free(&m);
	free(in);
	free(env.rcpts);
	return rc;
}

/* ---- SMTP on standard input and output: -bs ---- */

/* sm_relay_in - what the caller typed goes to the server, LF made CR LF; false at the end of input. */
static bool sm_relay_in(int sock, bool *cr, int *rc)
{
	char in[SENDMAIL_READ / 2], out[SENDMAIL_READ];
	ssize_t n = read(STDIN_FILENO, in, sizeof in);
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		if (n < 0)
			*rc = sm_fail(EX_IOERR, "cannot read standard input: %s", strerror(errno));
		shutdown(sock, SHUT_WR);
		return false;
	}
	size_t len = msg_submit_crlf(in, (size_t)n, cr, out);
	if (!io_write_all(sock, out, len))
		*rc = sm_fail(EX_UNAVAILABLE, "the connection to the mail server was lost");
	return true;
}

/* sm_relay_out - what the server says goes to standard output; false when it has closed. */
static bool sm_relay_out(int sock, int *rc)
{
	char buf[SENDMAIL_READ];
	ssize_t n = read(sock, buf, sizeof buf);
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	if (!io_write_all(STDOUT_FILENO, buf, (size_t)n)) {
		*rc = sm_fail(EX_IOERR, "cannot write to standard output: %s", strerror(errno));
		return false;
	}
	return true;
}

static int sendmail_smtp(const struct config *config)
{
	int rc = EX_OK;
	int sock = sm_connect(config, &rc);
	if (sock < 0)
		return rc;
	bool cr = false, input = true;
	for (;;) {
		struct pollfd fds[2] = {{sock, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
		int n = poll(fds, input ? 2 : 1, SENDMAIL_RELAY_IDLE_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = sm_fail(EX_UNAVAILABLE, "no word from either side for an hour; closing");
			break;
		}
		if (fds[0].revents && !sm_relay_out(sock, &rc))
			break;
		if (input && fds[1].revents)
			input = sm_relay_in(sock, &cr, &rc);
		if (rc != EX_OK)
			break;
	}
	close(sock);
	return rc;
}

/* ---- The queue: -bp, mailq ---- */

static int sendmail_queue(const struct config *config)
{
	char db[4096];
	if (!str_format(db, sizeof db, "%s/queue.db", config->data_dir))
		return sm_fail(EX_CONFIG, "data_dir is too long");
	if (access(db, R_OK | W_OK) != 0 && errno == ENOENT)
		return sm_fail(EX_UNAVAILABLE, "there is no queue at %s (give the server's configuration with -C FILE)",
		               db);
	if (access(db, R_OK | W_OK) != 0)
		return sm_fail(EX_NOPERM, "cannot read the queue %s: %s (only root and the user tern runs as may)", db,
		               strerror(errno));
	return cli_queue_table(config) == CLI_OK ? EX_OK : EX_UNAVAILABLE;
}

/* ---- The command ---- */

static int sendmail_run(const struct sendmail_options *o, const char *config_path)
{
	if (!config_path && access(SENDMAIL_CONFIG, F_OK) == 0)
		config_path = SENDMAIL_CONFIG;
	struct config *config = config_load_client(config_path, stderr);
	if (!config)
		return EX_CONFIG;
	int rc;
	if (o->mode == SENDMAIL_QUEUE)
		rc = sendmail_queue(config);
	else if (o->mode == SENDMAIL_SMTP)
		rc = sendmail_smtp(config);
	else
		rc = sendmail_mail(config, o);
	config_unref(config);
	return rc;
}

int cli_sendmail(int argc, char **argv, const char *config_path, const char *name)
{
	struct sendmail_options o;
	char err[256];
	/* A server that closes on us is an error to report, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);
	if (!sendmail_args_parse(argc, argv, &o, err, sizeof err)) {
		sm_fail(0, "%s", err);
		fputs(sendmail_usage_line, stderr);
		sendmail_args_free(&o);
		return EX_USAGE;
	}
	if (strcmp(name, "mailq") == 0)
		o.mode = SENDMAIL_QUEUE;
	else if (strcmp(name, "newaliases") == 0)
		o.mode = SENDMAIL_ALIASES;
	int rc = EX_OK;
	if (o.mode == SENDMAIL_ALIASES)
		puts("tern: there is no aliases file to rebuild; aliases live in tern's database (tern alias list)");
	else
		rc = sendmail_run(&o, o.config ? o.config : config_path);
	sendmail_args_free(&o);
	return rc;
}
