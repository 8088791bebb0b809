/*
 * config_route.c - route values (smarthost, transport, local_delivery)
 * and the credentials files they name. See config_route.h for the words.
 *
 * Parsing is strict and says what is wrong: a route is where mail goes, so
 * a typo must stop `tern config check`, not send mail somewhere else.
 */
#include "config/config_route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "smtp/smtp_address.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define SMTP_PORT_DEFAULT     25
#define SMTPS_PORT_DEFAULT    465
#define LMTP_PORT_DEFAULT     24
#define CREDENTIAL_LINE_MAX   1024
#define CREDENTIAL_FILE_LINES 1000

static const char *const tls_words[] = {
        [CONFIG_TLS_MAY] = "may",
        [CONFIG_TLS_NONE] = "none",
        [CONFIG_TLS_REQUIRED] = "required",
        [CONFIG_TLS_IMPLICIT] = "implicit",
};

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

/* host_valid - a host name (as a domain) or an IPv4/IPv6 address; "ipv6:" as in an address literal is allowed. */
static bool host_valid(const char *host)
{
	unsigned char addr[16];
	const char *v6 = strncasecmp(host, "ipv6:", 5) == 0 ? host + 5 : host;
	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, v6, addr) == 1 ||
	       smtp_domain_check(host, strlen(host), false, false);
}

static bool port_parse(const char *s, size_t len, unsigned *port)
{
	uint64_t n;
	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (!str_to_u64(s, len, &n) || n < 1 || n > 65535)
		return false;
	*port = (unsigned)n;
	return true;
}

/* dest_parse - "[HOST]:PORT", "[HOST]", "HOST:PORT" or "HOST" into out's host, host_mx and port. */
static bool dest_parse(const char *s, size_t len, struct config_route *out, char *err, size_t errlen)
{
	const char *host = s, *port = NULL;
	size_t host_len = len, port_len = 0;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return str_fail(err, errlen, "\"%.*s\" has no closing \"]\"", (int)len, s);
		host = s + 1;
		host_len = (size_t)(close - host);
		size_t after = len - (size_t)(close + 1 - s);
		if (after > 0) {
			if (close[1] != ':')
				return str_fail(err, errlen, "\"%.*s\": write [HOST]:PORT", (int)len, s);
			port = close + 2;
			port_len = after - 1;
		}
	} else {
		out->host_mx = true;
		const char *colon = memchr(s, ':', len);
		if (colon) {
			if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
				return str_fail(err, errlen,
				                "\"%.*s\": put an IPv6 address in brackets, as in [::1]:25", (int)len,
				                s);
			host_len = (size_t)(colon - s);
			port = colon + 1;
			port_len = len - host_len - 1;
		}
	}
	if (port && !port_parse(port, port_len, &out->port))
		return str_fail(err, errlen, "port \"%.*s\" is not 1..65535", (int)port_len, port);
	char buf[256];
	if (host_len == 0 || !str_copy_n(buf, sizeof buf, host, host_len) || !host_valid(buf))
		return str_fail(err, errlen, "\"%.*s\" is not a host name or address", (int)host_len, host);
	/* A bare address has no MX records to look up. */
	unsigned char addr[16];
	if (inet_pton(AF_INET, buf, addr) == 1)
		out->host_mx = false;
	else if (out->host_mx && strchr(buf, ':'))
		return str_fail(err, errlen, "\"%.*s\": put an IPv6 address in brackets", (int)len, s);
	out->host = str_dup(strncasecmp(buf, "ipv6:", 5) == 0 ? buf + 5 : buf);
	return true;
}

/* kind_parse - the ROUTE word: mx, maildir, smtp:DEST, lmtp:DEST, lmtp:unix:PATH (or a bare DEST). */
static bool kind_parse(const char *s, size_t len, bool bare_smtp, bool maildir, struct config_route *out, char *err,
                       size_t errlen)
{
	if (len == 2 && memcmp(s, "mx", 2) == 0) {
		if (maildir)
			return str_fail(err, errlen, "mx is not a local delivery (use maildir or lmtp:...)");
		out->kind = CONFIG_ROUTE_MX;
		return true;
	}
	if (len == 7 && memcmp(s, "maildir", 7) == 0) {
		if (!maildir)
			return str_fail(err, errlen, "maildir is only for local_delivery");
		out->kind = CONFIG_ROUTE_MAILDIR;
		return true;
	}
	if (starts_with(s, len, "lmtp:unix:")) {
		out->kind = CONFIG_ROUTE_LMTP;
		size_t n = len - 10;
		if (n == 0 || n >= sizeof(((struct sockaddr_un *)0)->sun_path) || s[10] != '/')
			return str_fail(err, errlen,
			                "\"%.*s\": the socket must be an absolute path of at most %zu bytes", (int)len,
			                s, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		out->socket_path = str_dup_n(s + 10, n);
		return true;
	}
	if (starts_with(s, len, "lmtp:")) {
		out->kind = CONFIG_ROUTE_LMTP;
		if (!dest_parse(s + 5, len - 5, out, err, errlen))
			return false;
		if (out->host_mx)
			return str_fail(err, errlen, "\"%.*s\": LMTP has no MX hosts; write lmtp:[HOST]:PORT", (int)len,
			                s);
		return true;
	}
	if (starts_with(s, len, "smtp:")) {
		s += 5;
		len -= 5;
	} else if (!bare_smtp || maildir) {
		return str_fail(err, errlen, "\"%.*s\" is not a route (mx, smtp:[HOST]:PORT or lmtp:[HOST]:PORT)",
		                (int)len, s);
	}
	if (maildir)
		return str_fail(err, errlen, "local delivery is maildir or lmtp:...");
	out->kind = CONFIG_ROUTE_SMTP;
	return dest_parse(s, len, out, err, errlen);
}

bool config_rate_parse(const char *s, size_t len, uint64_t *interval_us)
{
	static const struct {
		char unit;
		uint64_t us;
	} periods[] = {{'s', 1000000ull}, {'m', 60000000ull}, {'h', 3600000000ull}, {'d', 86400000000ull}};
	uint64_t n = 0;
	size_t i = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		n = n * 10 + (uint64_t)(s[i] - '0');
		if (n > 1000000)
			return false;
	}
	if (i == 0)
		return false;
	if (i == len && n == 0) {
		*interval_us = 0;
		return true;
	}
	if (n == 0 || len != i + 2 || s[i] != '/')
		return false;
	for (size_t k = 0; k < sizeof periods / sizeof periods[0]; k++) {
		if (s[i + 1] == periods[k].unit) {
			*interval_us = periods[k].us / n;
			return true;
		}
	}
	return false;
}

/* What the options said, before the defaults. */
struct route_words {
	bool tls_given;
	bool tls_verify; /* tls=verify */
	int verify;      /* verify=: -1 not given, 0 no, 1 yes */
};

/* tls_option - "tls=POLICY": verify is required with the certificate checked. */
static bool tls_option(const char *s, size_t len, struct config_route *out, struct route_words *words, char *err,
                       size_t errlen)
{
	words->tls_given = true;
	if (len == 6 && memcmp(s, "verify", 6) == 0) {
		out->tls = CONFIG_TLS_REQUIRED;
		words->tls_verify = true;
		return true;
	}
	for (size_t i = 0; i < sizeof tls_words / sizeof tls_words[0]; i++) {
		if (len == strlen(tls_words[i]) && memcmp(s, tls_words[i], len) == 0) {
			out->tls = (enum config_tls_policy)i;
			return true;
		}
	}
	return str_fail(err, errlen, "\"tls=%.*s\": tls= takes may, required, verify, implicit or none", (int)len, s);
}

/* file_option - "NAME=FILE" into *file, once. */
static bool file_option(const char *name, const char *s, size_t len, char **file, char *err, size_t errlen)
{
	if (*file)
		return str_fail(err, errlen, "%s= given twice", name);
	if (len == 0)
		return str_fail(err, errlen, "%s= needs a file", name);
	*file = str_dup_n(s, len);
	return true;
}

/* option_parse - "tls=POLICY", "verify=yes|no", "ca=FILE", "auth=FILE" or "rate=RATE". */
static bool option_parse(const char *s, size_t len, struct config_route *out, struct route_words *words, char *err,
                         size_t errlen)
{
	if (starts_with(s, len, "tls="))
		return tls_option(s + 4, len - 4, out, words, err, errlen);
	if (starts_with(s, len, "verify=")) {
		if (len == 10 && memcmp(s + 7, "yes", 3) == 0)
			words->verify = 1;
		else if (len == 9 && memcmp(s + 7, "no", 2) == 0)
			words->verify = 0;
		else
			return str_fail(err, errlen, "\"%.*s\": verify= takes yes or no", (int)len, s);
		return true;
	}
	if (starts_with(s, len, "ca="))
		return file_option("ca", s + 3, len - 3, &out->ca_file, err, errlen);
	if (starts_with(s, len, "auth="))
		return file_option("auth", s + 5, len - 5, &out->auth_file, err, errlen);
	if (starts_with(s, len, "rate=")) {
		if (!config_rate_parse(s + 5, len - 5, &out->rate_interval_us))
			return str_fail(err, errlen, "\"%.*s\": rate= takes N/s, N/m, N/h or N/d", (int)len, s);
		return true;
	}
	return str_fail(err, errlen,
	                "\"%.*s\" is not an option (tls=POLICY, verify=yes|no, ca=FILE, auth=FILE or rate=RATE)",
	                (int)len, s);
}

/*
 * verify_check - whether the certificate is checked: as written, else
 * whenever credentials go out or a CA is named. Checking makes TLS
 * required (an opportunistic route would just skip it).
 */
static bool verify_check(struct config_route *out, const struct route_words *words, char *err, size_t errlen)
{
	if (words->tls_verify && words->verify == 0)
		return str_fail(err, errlen, "tls=verify with verify=no: write tls=required verify=no");
	if (out->ca_file && words->verify == 0)
		return str_fail(err, errlen, "ca= with verify=no: no certificate would be checked against it");
	out->verify = words->verify == 1 || words->tls_verify ||
	              (words->verify == -1 && (out->auth_file != NULL || out->ca_file != NULL));
	if (!out->verify)
		return true;
	if (out->tls == CONFIG_TLS_NONE)
		return str_fail(err, errlen, "a certificate cannot be checked with tls=none");
	if (out->tls == CONFIG_TLS_MAY)
		out->tls = CONFIG_TLS_REQUIRED;
	return true;
}

/* route_check - the options make sense for the kind; the defaults filled in. */
static bool route_check(struct config_route *out, const struct route_words *words, bool read_files, char *err,
                        size_t errlen)
{
	bool plain_only = out->kind == CONFIG_ROUTE_MAILDIR || out->socket_path;
	if (plain_only && (words->tls_given || words->verify != -1 || out->ca_file || out->auth_file))
		return str_fail(err, errlen, "tls=, verify=, ca= and auth= are for routes over TCP");
	if (out->kind == CONFIG_ROUTE_MAILDIR && out->rate_interval_us)
		return str_fail(err, errlen, "rate= is for routes to other servers");
	if (out->kind == CONFIG_ROUTE_MX && out->auth_file)
		return str_fail(err, errlen, "auth= is for a relay (smtp:[HOST]:PORT), not for MX hosts");
	/* Credentials never travel in the clear. */
	if (out->auth_file && out->tls == CONFIG_TLS_NONE)
		return str_fail(err, errlen, "auth= needs TLS: tls=none would send the password in the clear");
	if (out->auth_file && out->tls == CONFIG_TLS_MAY)
		out->tls = CONFIG_TLS_REQUIRED;
	if (!verify_check(out, words, err, errlen))
		return false;
	/* The file itself is loaded with the TLS contexts; a missing one is caught here. */
	if (out->ca_file && read_files && access(out->ca_file, R_OK) != 0)
		return str_fail(err, errlen, "%s: cannot read: %s", out->ca_file, strerror(errno));
	if (out->auth_file && read_files &&
	    !config_credentials_read(out->auth_file, &out->auth_user, &out->auth_password, err, errlen))
		return false;
	if (out->port == 0 && out->kind == CONFIG_ROUTE_SMTP)
		out->port = out->tls == CONFIG_TLS_IMPLICIT ? SMTPS_PORT_DEFAULT : SMTP_PORT_DEFAULT;
	if (out->port == 0 && out->kind == CONFIG_ROUTE_LMTP && !out->socket_path)
		out->port = LMTP_PORT_DEFAULT;
	return true;
}

bool config_route_unverified(const struct config_route *route)
{
	return route->auth_file && !route->verify;
}

bool config_route_parse(const char *s, size_t len, bool bare_smtp, bool maildir, bool read_files,
                        struct config_route *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	const char *word;
	size_t word_len;
	struct route_words words = {.verify = -1};
	bool ok = len < CONFIG_ROUTE_TEXT_MAX;
	if (!ok)
		str_fail(err, errlen, "longer than %d bytes", CONFIG_ROUTE_TEXT_MAX - 1);
	else
		out->text = str_dup_n(s, len);
	if (ok && !str_next_token(&s, &len, " \t", &word, &word_len))
		ok = str_fail(err, errlen, "no route");
	ok = ok && kind_parse(word, word_len, bare_smtp, maildir, out, err, errlen);
	while (ok && str_next_token(&s, &len, " \t", &word, &word_len))
		ok = option_parse(word, word_len, out, &words, err, errlen);
	ok = ok && route_check(out, &words, read_files, err, errlen);
	if (!ok)
		config_route_release(out);
	return ok;
}

void config_route_release(struct config_route *route)
{
	free(route->domain);
	free(route->host);
	free(route->socket_path);
	free(route->auth_file);
	free(route->ca_file);
	free(route->auth_user);
	if (route->auth_password) {
		explicit_bzero(route->auth_password, strlen(route->auth_password));
		free(route->auth_password);
	}
	free(route->text);
	memset(route, 0, sizeof *route);
}

static bool same_text(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

bool config_route_equal(const struct config_route *a, const struct config_route *b)
{
	return same_text(a->domain, b->domain) && same_text(a->text, b->text);
}

/* ---- Credentials ---- */

/* credentials_line - "USER PASSWORD" (password: the rest, as it is). */
static bool credentials_line(const char *line, char **user, char **password)
{
	size_t user_len = strcspn(line, " \t");
	const char *rest = line + user_len;
	rest += strspn(rest, " \t");
	if (user_len == 0 || !*rest)
		return false;
	for (const char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return false;
	*user = str_dup_n(line, user_len);
	*password = str_dup(rest);
	return true;
}

bool config_credentials_read(const char *path, char **user, char **password, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return str_fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return str_fail(err, errlen, "%s: not a file", path);
	}
	if (st.st_mode & S_IROTH) {
		fclose(f);
		return str_fail(err, errlen, "%s: readable by every user; it holds a password (chmod o-rwx)", path);
	}
	char line[CREDENTIAL_LINE_MAX + 2];
	bool ok = false;
	unsigned number = 0;
	err[0] = '\0';
	while (!ok && !err[0] && number < CREDENTIAL_FILE_LINES && fgets(line, sizeof line, f)) {
		number++;
		size_t n = strlen(line);
		if (n > CREDENTIAL_LINE_MAX) {
			str_fail(err, errlen, "%s:%u: line longer than %d bytes", path, number, CREDENTIAL_LINE_MAX);
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		const char *start = line + strspn(line, " \t");
		if (!*start || *start == '#')
			continue;
		ok = credentials_line(start, user, password);
		if (!ok)
			str_fail(err, errlen, "%s:%u: write USER PASSWORD on one line", path, number);
	}
	explicit_bzero(line, sizeof line);
	fclose(f);
	if (!ok && !err[0])
		str_fail(err, errlen, "%s: no USER PASSWORD line", path);
	return ok;
}

/* ---- Lookup ---- */

const struct config_route *config_route_match(const struct config_route *routes, size_t count, const char *domain)
{
	for (size_t i = 0; i < count; i++)
		if (routes[i].domain && strcmp(routes[i].domain, domain) == 0)
			return &routes[i];
	/* ".example.com" covers a.example.com and a.b.example.com: the nearest parent wins. */
	for (const char *dot = strchr(domain, '.'); dot; dot = strchr(dot + 1, '.'))
		for (size_t i = 0; i < count; i++)
			if (routes[i].domain && routes[i].domain[0] == '.' && strcmp(routes[i].domain, dot) == 0)
				return &routes[i];
	return NULL;
}
