/*
 * tls-source.c - SMTP submission load generator for bench/: STARTTLS, AUTH PLAIN, mail.
 *
 * One process, one epoll loop, many sessions at once. Each session connects, reads the
 * greeting, sends EHLO, STARTTLS, does the TLS handshake, EHLO again, AUTH PLAIN with an
 * initial response, then MAIL, RCPT, DATA and the message, one command at a time (no
 * pipelining), and checks every reply code. The first unexpected reply, a closed connection or
 * a TLS error ends the run with exit status 1 and one line on stderr saying what happened.
 *
 * Modes:
 *   (default)   mail: -m messages in all, -s sessions at once; a new connection per message,
 *               or with -d many messages per connection (AUTH once per connection)
 *   -H          handshakes only: connect, EHLO, STARTTLS, handshake, QUIT; -m of them
 *   -I N        idle: open N connections (-s at a time) up to STARTTLS, handshake and EHLO,
 *               print "ready N SECONDS" and hold them. Each line read on standard input is
 *               answered with "open K" (connections the server has not closed); end of
 *               standard input (or the time limit) closes them and ends the program.
 *
 * Every run is bounded by its count and by -t seconds (exit status 3 when that is reached).
 * At the end of a mail or handshake run two lines go to standard output:
 *   messages=N connections=N handshakes=N seconds=S tls=VERSION cipher=NAME
 *   wait_ms greeting=MS ehlo=MS starttls=MS handshake=MS ehlo2=MS auth=MS mail=MS ... quit=MS
 * the second with the mean time from sending each command (or starting the TLS handshake, or
 * connecting, for the greeting) to its reply (or the handshake's end), in milliseconds.
 *
 * TLS: TLS 1.2 or later, no certificate check (the server is on loopback and is ours), no
 * session resumption (no tickets, no session cache), so every connection does a full handshake.
 *
 * Build: cc -O2 -o tls-source tls-source.c $(pkg-config --cflags --libs openssl)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX  16384 /* longest reply kept, all its lines together */
#define CMD_MAX 1024  /* longest command line built */

enum mode { MODE_MAIL, MODE_HANDSHAKE, MODE_IDLE };

enum state {
	ST_FREE,      /* no connection */
	ST_CONNECT,   /* TCP connect in progress */
	ST_GREETING,  /* waiting for 220 */
	ST_EHLO1,     /* EHLO before TLS sent */
	ST_STARTTLS,  /* STARTTLS sent */
	ST_HANDSHAKE, /* TLS handshake in progress */
	ST_EHLO2,     /* EHLO after TLS sent */
	ST_AUTH,      /* AUTH PLAIN sent */
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_DOT,  /* message content sent */
	ST_QUIT, /* QUIT sent */
	ST_IDLE, /* held open (idle mode) */
	ST_GONE, /* idle connection the server closed */
};

static const char *const state_name[] = {
        "free",      "connect", "greeting", "EHLO",        "STARTTLS", "TLS handshake", "EHLO after TLS", "AUTH PLAIN",
        "MAIL FROM", "RCPT TO", "DATA",     "end of data", "QUIT",     "idle",          "closed",
};

struct sess {
	int id;
	int fd;
	SSL *ssl;
	enum state st;
	bool tls_done;
	bool want_write; /* the last I/O call wanted the socket writable */
	bool in_epoll;
	unsigned epoll_mask;
	bool saw_auth_plain;
	char in[IN_MAX];
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
	unsigned long msgs_on_conn;
	double t_cmd; /* when the command now waiting for its reply (or the handshake) started */
};

static struct {
	enum mode mode;
	const char *host;
	int port;
	int sessions;
	unsigned long count; /* messages, handshakes or idle connections */
	bool reuse;
	bool implicit;
	double limit;
	size_t body_len;
	const char *helo;
	const char *from;
	const char *rcpt;
	const char *user;
	char password[512];
	const char *sni;
} opt = {
        .mode = MODE_MAIL,
        .sessions = 1,
        .count = 100,
        .limit = 60,
        .body_len = 5120,
        .helo = "client.test",
};

static struct sockaddr_in addr;
static SSL_CTX *ctx;
static int ep = -1;
static struct sess *sessions;
static int nsess;
static unsigned long left;     /* units not yet started */
static unsigned long msgs_ok;  /* messages answered 250 after the content */
static unsigned long conns;    /* connections opened */
static unsigned long shakes;   /* TLS handshakes completed */
static unsigned long idle_now; /* idle mode: connections held */
static int active;             /* sessions with a connection */
static double t_start, deadline;
static double wait_sum[ST_GONE + 1]; /* seconds spent waiting for replies, by state */
static unsigned long wait_n[ST_GONE + 1];
static char *body;
static char date_hdr[64];
static char auth_cmd[1024];
static char tls_version[32] = "-", tls_cipher[64] = "-";
static bool ready_printed;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* waited - count the time since s->t_cmd against the state s is in */
static void waited(const struct sess *s)
{
	wait_sum[s->st] += now() - s->t_cmd;
	wait_n[s->st]++;
}

__attribute__((format(printf, 2, 3), noreturn)) static void die(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("tls-source: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static const char *tls_error(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();
	if (!e)
		return errno ? strerror(errno) : "no detail";
	ERR_error_string_n(e, buf, sizeof buf);
	return buf;
}

/* printable - one reply line, for a message: control bytes as '?', at most 200 bytes */
static const char *printable(const char *p, size_t n)
{
	static char buf[204];
	size_t i;
	if (n > 200)
		n = 200;
	for (i = 0; i < n; i++)
		buf[i] = (p[i] < 32 || p[i] > 126) ? '?' : p[i];
	buf[i] = 0;
	return buf;
}

__attribute__((format(printf, 2, 3), noreturn)) static void sess_fail(struct sess *s, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tls-source: session %d, %s, after %lu messages: ", s->id, state_name[s->st], msgs_ok);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void epoll_update(struct sess *s)
{
	unsigned mask = EPOLLIN | (s->want_write ? EPOLLOUT : 0);
	struct epoll_event ev = {.events = mask, .data.ptr = s};
	if (s->in_epoll && mask == s->epoll_mask)
		return;
	if (epoll_ctl(ep, s->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev) < 0)
		die(1, "epoll_ctl: %s", strerror(errno));
	s->in_epoll = true;
	s->epoll_mask = mask;
}

static void sess_close(struct sess *s, enum state next)
{
	if (s->ssl) {
		if (s->tls_done)
			SSL_shutdown(s->ssl); /* one close_notify, no wait for the peer's */
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd); /* also leaves the epoll set */
		s->fd = -1;
	}
	s->in_epoll = false;
	s->tls_done = false;
	s->want_write = false;
	s->in_len = s->out_len = s->out_off = 0;
	s->st = next;
	active--;
}

static void sess_connect(struct sess *s)
{
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die(1, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
		die(1, "connect to %s:%d: %s", opt.host, opt.port, strerror(errno));
	s->st = ST_CONNECT;
	s->t_cmd = now();
	s->want_write = true;
	s->saw_auth_plain = false;
	s->msgs_on_conn = 0;
	active++;
	conns++;
	epoll_update(s);
}

/* out_add - append bytes to the session's output */
static void out_add(struct sess *s, const char *p, size_t n)
{
	if (s->out_len + n > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 1024;
		while (cap < s->out_len + n)
			cap *= 2;
		s->out = realloc(s->out, cap);
		if (!s->out)
			die(1, "out of memory");
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, p, n);
	s->out_len += n;
}

/* flush - write what is pending, as far as the socket takes it now */
static void flush(struct sess *s)
{
	while (s->out_off < s->out_len) {
		const char *p = s->out + s->out_off;
		size_t n = s->out_len - s->out_off;
		ssize_t w;
		if (s->ssl) {
			w = SSL_write(s->ssl, p, (int)n);
			if (w <= 0) {
				int e = SSL_get_error(s->ssl, (int)w);
				if (e == SSL_ERROR_WANT_WRITE) {
					s->want_write = true;
					return;
				}
				if (e == SSL_ERROR_WANT_READ)
					return;
				sess_fail(s, "TLS write: %s", tls_error());
			}
		} else {
			w = write(s->fd, p, n);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					s->want_write = true;
					return;
				}
				sess_fail(s, "write: %s", strerror(errno));
			}
		}
		s->out_off += (size_t)w;
	}
	s->out_len = s->out_off = 0;
}

__attribute__((format(printf, 3, 4))) static void send_cmd(struct sess *s, enum state next, const char *fmt, ...)
{
	char line[CMD_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line - 2)
		die(1, "command too long");
	line[n++] = '\r';
	line[n++] = '\n';
	out_add(s, line, (size_t)n);
	s->st = next;
	s->t_cmd = now();
	flush(s);
}

static void send_message(struct sess *s)
{
	char hdr[1024];
	int n = snprintf(hdr, sizeof hdr,
	                 "From: <%s>\r\nTo: <%s>\r\nSubject: bench %d.%lu\r\nDate: %s\r\n"
	                 "Message-ID: <%ld.%d.%lu.%lu@client.test>\r\n\r\n",
	                 opt.from, opt.rcpt, s->id, s->msgs_on_conn, date_hdr, (long)getpid(), s->id, conns,
	                 s->msgs_on_conn);
	if (n < 0 || (size_t)n >= sizeof hdr)
		die(1, "header too long");
	out_add(s, hdr, (size_t)n);
	out_add(s, body, strlen(body));
	out_add(s, ".\r\n", 3);
	s->st = ST_DOT;
	s->t_cmd = now();
	flush(s);
}

/* next_unit - take one unit of work from the shared count; false if none is left */
static bool next_unit(void)
{
	if (left == 0)
		return false;
	left--;
	return true;
}

static void start_tls(struct sess *s)
{
	s->ssl = SSL_new(ctx);
	if (!s->ssl || !SSL_set_fd(s->ssl, s->fd))
		die(1, "SSL_new: %s", tls_error());
	if (opt.sni)
		SSL_set_tlsext_host_name(s->ssl, opt.sni);
	SSL_set_connect_state(s->ssl);
	s->st = ST_HANDSHAKE;
	s->t_cmd = now();
}

static void send_mail_from(struct sess *s)
{
	send_cmd(s, ST_MAIL, "MAIL FROM:<%s>", opt.from);
}

static void on_reply(struct sess *s, int code, const char *reply, size_t len)
{
	waited(s);
	switch (s->st) {
	case ST_GREETING:
		if (code != 220)
			break;
		send_cmd(s, ST_EHLO1, "EHLO %s", opt.helo);
		return;
	case ST_EHLO1:
		if (code != 250)
			break;
		send_cmd(s, ST_STARTTLS, "STARTTLS");
		return;
	case ST_STARTTLS:
		if (code != 220)
			break;
		if (s->in_len)
			sess_fail(s, "server sent %zu bytes after its 220 to STARTTLS", s->in_len);
		start_tls(s);
		return;
	case ST_EHLO2:
		if (code != 250)
			break;
		if (opt.mode == MODE_IDLE) {
			s->st = ST_IDLE;
			idle_now++;
			return;
		}
		if (!s->saw_auth_plain)
			sess_fail(s, "EHLO after TLS does not offer AUTH PLAIN");
		send_cmd(s, ST_AUTH, "%s", auth_cmd);
		return;
	case ST_AUTH:
		if (code != 235)
			break;
		send_mail_from(s);
		return;
	case ST_MAIL:
		if (code != 250)
			break;
		send_cmd(s, ST_RCPT, "RCPT TO:<%s>", opt.rcpt);
		return;
	case ST_RCPT:
		if (code != 250 && code != 251)
			break;
		send_cmd(s, ST_DATA, "DATA");
		return;
	case ST_DATA:
		if (code != 354)
			break;
		send_message(s);
		return;
	case ST_DOT:
		if (code != 250)
			break;
		msgs_ok++;
		s->msgs_on_conn++;
		if (opt.reuse && next_unit())
			send_mail_from(s);
		else
			send_cmd(s, ST_QUIT, "QUIT");
		return;
	case ST_QUIT:
		if (code != 221)
			break;
		sess_close(s, ST_FREE);
		return;
	default:
		sess_fail(s, "unexpected reply: %s", printable(reply, len));
	}
	sess_fail(s, "unexpected reply: %s", printable(reply, len));
}

/* take_replies - hand every complete reply in the input buffer to on_reply */
static void take_replies(struct sess *s)
{
	while (s->in_len && s->fd >= 0) {
		size_t pos = 0;
		bool complete = false;
		int code = -1;
		while (pos < s->in_len) {
			char *nl = memchr(s->in + pos, '\n', s->in_len - pos);
			if (!nl)
				break;
			size_t end = (size_t)(nl - s->in) + 1;
			const char *line = s->in + pos;
			size_t n = end - pos;
			if (n < 5 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
			    line[2] < '0' || line[2] > '9' || (line[3] != ' ' && line[3] != '-' && line[3] != '\r'))
				sess_fail(s, "malformed reply line: %s", printable(line, n));
			int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
			if (code >= 0 && c != code)
				sess_fail(s, "reply lines with different codes: %d, %d", code, c);
			code = c;
			if (s->st == ST_EHLO2 && n > 9 && strncasecmp(line + 4, "AUTH", 4) == 0 &&
			    (line[8] == ' ' || line[8] == '=')) {
				for (size_t k = 9; k + 5 <= n; k++)
					if (strncasecmp(line + k, "PLAIN", 5) == 0 &&
					    (line[k - 1] == ' ' || line[k - 1] == '=') &&
					    (line[k + 5] == ' ' || line[k + 5] == '\r' || line[k + 5] == '\n'))
						s->saw_auth_plain = true;
			}
			pos = end;
			if (line[3] != '-') {
				complete = true;
				break;
			}
		}
		if (!complete) {
			if (s->in_len == sizeof s->in)
				sess_fail(s, "reply longer than %d bytes", IN_MAX);
			return;
		}
		char first[CMD_MAX];
		size_t fl = pos;
		if (fl >= sizeof first)
			fl = sizeof first - 1;
		memcpy(first, s->in, fl);
		first[fl] = 0;
		memmove(s->in, s->in + pos, s->in_len - pos);
		s->in_len -= pos;
		on_reply(s, code, first, strcspn(first, "\r\n"));
		if (s->st == ST_HANDSHAKE || s->st == ST_FREE)
			return;
	}
}

static void handshake(struct sess *s)
{
	int r = SSL_do_handshake(s->ssl);
	if (r != 1) {
		int e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return;
		if (e == SSL_ERROR_WANT_WRITE) {
			s->want_write = true;
			return;
		}
		sess_fail(s, "TLS handshake: %s", tls_error());
	}
	s->tls_done = true;
	shakes++;
	waited(s);
	if (tls_version[0] == '-') {
		snprintf(tls_version, sizeof tls_version, "%s", SSL_get_version(s->ssl));
		snprintf(tls_cipher, sizeof tls_cipher, "%s", SSL_get_cipher_name(s->ssl));
	}
	if (opt.implicit) {
		s->st = ST_GREETING;
		s->t_cmd = now();
	} else if (opt.mode == MODE_HANDSHAKE)
		send_cmd(s, ST_QUIT, "QUIT");
	else
		send_cmd(s, ST_EHLO2, "EHLO %s", opt.helo);
}

/* read_in - read what the socket (or TLS) has; false if the peer closed the connection */
static bool read_in(struct sess *s)
{
	for (;;) {
		size_t room = sizeof s->in - s->in_len;
		if (room == 0)
			return true; /* take_replies will say the reply is too long */
		ssize_t n;
		if (s->ssl) {
			n = SSL_read(s->ssl, s->in + s->in_len, (int)room);
			if (n <= 0) {
				int e = SSL_get_error(s->ssl, (int)n);
				if (e == SSL_ERROR_WANT_READ)
					return true;
				if (e == SSL_ERROR_WANT_WRITE) {
					s->want_write = true;
					return true;
				}
				if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
					return false;
				if (s->st == ST_IDLE)
					return false;
				sess_fail(s, "TLS read: %s", tls_error());
			}
		} else {
			n = read(s->fd, s->in + s->in_len, room);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return true;
				if (s->st == ST_IDLE)
					return false;
				sess_fail(s, "read: %s", strerror(errno));
			}
			if (n == 0)
				return false;
		}
		s->in_len += (size_t)n;
		/* plain text: stop at a reply so nothing sent after a 220 to STARTTLS is read here */
		if (!s->ssl)
			return true;
	}
}

static void sess_event(struct sess *s, unsigned events)
{
	s->want_write = false;
	if (s->st == ST_CONNECT) {
		int err = 0;
		socklen_t len = sizeof err;
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			s->want_write = true;
			return;
		}
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			sess_fail(s, "connect to %s:%d: %s", opt.host, opt.port, strerror(err));
		if (opt.implicit)
			start_tls(s);
		else
			s->st = ST_GREETING;
	}
	if (s->st == ST_HANDSHAKE) {
		handshake(s);
		if (s->st == ST_HANDSHAKE)
			return;
	}
	if (s->out_len)
		flush(s);
	for (;;) {
		bool open = read_in(s);
		if (s->st == ST_IDLE && !open) {
			sess_close(s, ST_GONE);
			idle_now--;
			return;
		}
		take_replies(s);
		if (s->st == ST_FREE)
			return;
		if (s->st == ST_HANDSHAKE) {
			/* STARTTLS accepted: the handshake starts now; once done, the next reply may
			 * already be in TLS's buffer, so read again */
			handshake(s);
			if (s->st == ST_HANDSHAKE)
				return;
			continue;
		}
		if (!open)
			sess_fail(s, "server closed the connection");
		if (s->ssl && SSL_pending(s->ssl) > 0)
			continue;
		return;
	}
}

/* sess_next - give a free session its next connection, if work is left */
static void sess_next(struct sess *s)
{
	if (s->st != ST_FREE)
		return;
	if (next_unit())
		sess_connect(s);
}

static void base64(const char *in, size_t n, char *out, size_t cap)
{
	if ((n + 2) / 3 * 4 + 1 > cap)
		die(2, "credentials too long");
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
}

static void make_auth(void)
{
	char raw[1100];
	size_t ul = strlen(opt.user), pl = strlen(opt.password);
	if (ul + pl + 2 > sizeof raw)
		die(2, "user or password too long");
	raw[0] = 0;
	memcpy(raw + 1, opt.user, ul);
	raw[1 + ul] = 0;
	memcpy(raw + 2 + ul, opt.password, pl);
	char b64[1500];
	base64(raw, ul + pl + 2, b64, sizeof b64);
	int n = snprintf(auth_cmd, sizeof auth_cmd, "AUTH PLAIN %s", b64);
	if (n < 0 || (size_t)n >= sizeof auth_cmd)
		die(2, "user or password too long");
	OPENSSL_cleanse(raw, sizeof raw);
}

/* make_body - body_len bytes of lines of at most 76 characters and CRLF, none starting with a dot */
static void make_body(void)
{
	size_t n = opt.body_len, i = 0;
	body = malloc(n + 1);
	if (!body)
		die(1, "out of memory");
	while (n - i >= 2) {
		size_t line = n - i >= 78 ? 76 : n - i - 2;
		for (size_t k = 0; k < line; k++)
			body[i + k] = (char)('a' + (i + k) % 26);
		i += line;
		body[i++] = '\r';
		body[i++] = '\n';
	}
	body[i] = 0; /* one byte short of body_len when that is odd: every line ends in CRLF */
}

static void read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(2, "%s: %s", path, strerror(errno));
	if (!fgets(opt.password, sizeof opt.password, f))
		die(2, "%s: no password", path);
	fclose(f);
	opt.password[strcspn(opt.password, "\r\n")] = 0;
}

static unsigned long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end)
		die(2, "bad %s: %s", what, s);
	return v;
}

static void usage(void)
{
	fputs("usage: tls-source [-d] [-H | -I N] [-T] [-s SESSIONS] [-m COUNT] [-t SECONDS] [-l BODY_BYTES]\n"
	      "                  [-e HELO] [-f FROM] [-r RCPT] [-u USER -w PASSWORD_FILE] [-n SNI] HOST:PORT\n",
	      stderr);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "dHI:Ts:m:t:l:e:f:r:u:w:n:")) != -1) {
		switch (c) {
		case 'd':
			opt.reuse = true;
			break;
		case 'H':
			opt.mode = MODE_HANDSHAKE;
			break;
		case 'I':
			opt.mode = MODE_IDLE;
			opt.count = parse_num(optarg, "idle count");
			break;
		case 'T':
			opt.implicit = true;
			break;
		case 's':
			opt.sessions = (int)parse_num(optarg, "session count");
			break;
		case 'm':
			opt.count = parse_num(optarg, "count");
			break;
		case 't':
			opt.limit = (double)parse_num(optarg, "time limit");
			break;
		case 'l':
			opt.body_len = parse_num(optarg, "body length");
			break;
		case 'e':
			opt.helo = optarg;
			break;
		case 'f':
			opt.from = optarg;
			break;
		case 'r':
			opt.rcpt = optarg;
			break;
		case 'u':
			opt.user = optarg;
			break;
		case 'w':
			read_password(optarg);
			break;
		case 'n':
			opt.sni = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	char *hp = argv[optind], *colon = strrchr(hp, ':');
	if (!colon)
		usage();
	*colon = 0;
	opt.host = hp;
	opt.port = (int)parse_num(colon + 1, "port");
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1)
		die(2, "not an IPv4 address: %s", opt.host);
	if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127)
		die(2, "%s is not a loopback address", opt.host);
	if (opt.sessions < 1 || opt.sessions > 10000 || opt.count < 1 || opt.limit < 1)
		die(2, "sessions, count and time limit must be positive");
	if (opt.mode == MODE_MAIL && (!opt.from || !opt.rcpt || !opt.user || !opt.password[0]))
		die(2, "mail mode needs -f, -r, -u and -w");
	if (opt.mode == MODE_IDLE && opt.implicit)
		die(2, "-I and -T together are not supported");
}

static void idle_stdin(void)
{
	char buf[256];
	ssize_t n = read(0, buf, sizeof buf);
	if (n <= 0) {
		printf("closing %lu\n", idle_now);
		fflush(stdout);
		exit(0);
	}
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\n') {
			printf("open %lu\n", idle_now);
			fflush(stdout);
		}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die(1, "SSL_CTX_new: %s", tls_error());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

	if (opt.mode == MODE_MAIL) {
		make_body();
		make_auth();
	}
	time_t t = time(NULL);
	strftime(date_hdr, sizeof date_hdr, "%a, %d %b %Y %H:%M:%S +0000", gmtime(&t));

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die(1, "epoll_create1: %s", strerror(errno));
	nsess = opt.mode == MODE_IDLE ? (int)opt.count : opt.sessions;
	sessions = calloc((size_t)nsess, sizeof *sessions);
	if (!sessions)
		die(1, "out of memory");
	for (int i = 0; i < nsess; i++) {
		sessions[i].id = i;
		sessions[i].fd = -1;
	}
	left = opt.count;
	t_start = now();
	deadline = t_start + opt.limit;

	int next_idle = 0; /* idle mode: next session to open */
	int setting_up = 0;
	if (opt.mode == MODE_IDLE) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0)
			die(1, "epoll_ctl on standard input: %s", strerror(errno));
	} else {
		for (int i = 0; i < nsess; i++)
			sess_next(&sessions[i]);
	}

	struct epoll_event evs[256];
	for (;;) {
		if (opt.mode == MODE_IDLE) {
			/* keep -s connections in set-up at a time */
			setting_up = active - (int)idle_now;
			while (next_idle < nsess && setting_up < opt.sessions) {
				left--;
				sess_connect(&sessions[next_idle++]);
				setting_up++;
			}
			if (!ready_printed && next_idle == nsess && setting_up == 0) {
				printf("ready %lu %.3f\n", idle_now, now() - t_start);
				fflush(stdout);
				ready_printed = true;
			}
		} else if (active == 0) {
			break;
		}
		double rest = deadline - now();
		if (rest <= 0) {
			if (opt.mode == MODE_IDLE && ready_printed)
				exit(0);
			die(3, "time limit of %gs reached: %lu messages, %lu handshakes, %d sessions open", opt.limit,
			    msgs_ok, shakes, active);
		}
		int n = epoll_wait(ep, evs, 256, rest > 1 ? 1000 : (int)(rest * 1000) + 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(1, "epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct sess *s = evs[i].data.ptr;
			if (!s) {
				idle_stdin();
				continue;
			}
			if (s->fd < 0)
				continue;
			sess_event(s, evs[i].events);
			if (s->fd >= 0)
				epoll_update(s);
			else if (opt.mode != MODE_IDLE)
				sess_next(s);
		}
	}
	double secs = now() - t_start;
	printf("messages=%lu connections=%lu handshakes=%lu seconds=%.3f tls=%s cipher=%s\n", msgs_ok, conns, shakes,
	       secs, tls_version, tls_cipher);
	static const char *const wait_key[] = {
	        [ST_GREETING] = "greeting", [ST_EHLO1] = "ehlo",
	        [ST_STARTTLS] = "starttls", [ST_HANDSHAKE] = "handshake",
	        [ST_EHLO2] = "ehlo2",       [ST_AUTH] = "auth",
	        [ST_MAIL] = "mail",         [ST_RCPT] = "rcpt",
	        [ST_DATA] = "data",         [ST_DOT] = "dot",
	        [ST_QUIT] = "quit",
	};
	fputs("wait_ms", stdout);
	for (int i = 0; i <= ST_GONE; i++)
		if (i < (int)(sizeof wait_key / sizeof wait_key[0]) && wait_key[i] && wait_n[i])
			printf(" %s=%.2f", wait_key[i], 1000.0 * wait_sum[i] / (double)wait_n[i]);
	putchar('\n');
	return 0;
}
