/*
 * config_route.h - where mail for a domain goes: its MX hosts, a fixed
 * SMTP relay (smarthost), or an LMTP server; with a TLS policy and, for a
 * relay, credentials for AUTH.
 *
 * The same words serve three parameters:
 *
 *   smarthost      = [HOST]:PORT [OPTION...]
 *   transport      = DOMAIN ROUTE [OPTION...]
 *   local_delivery = maildir | lmtp:[HOST]:PORT | lmtp:unix:PATH
 *
 * ROUTE is "mx" (the domain's own MX hosts), "smtp:DEST" or "lmtp:DEST".
 * DEST is "[HOST]:PORT" (HOST's addresses only) or "HOST:PORT" (HOST's MX
 * hosts, SMTP only); the port may be left out. The options:
 *
 *   tls=POLICY   may (STARTTLS when offered), required (STARTTLS or
 *                defer), verify (required, and the certificate checked),
 *                implicit (TLS from the first byte, RFC 8314) or none
 *   verify=yes|no  check the peer's certificate: its chain up to a trusted
 *                CA and the name the route names (the relay's HOST, or
 *                each MX host's name; an address literal's address). On by
 *                default with auth= or ca=, off otherwise. Verification
 *                makes TLS required.
 *   ca=FILE      trust the CAs in FILE (PEM) instead of the system's store
 *   auth=FILE    a relay's credentials (never sent without TLS, nor over
 *                TLS whose certificate was not checked unless verify=no)
 *   rate=RATE    (N/s, N/m, N/h or N/d) the most messages per second,
 *                minute, hour or day to one destination, spread evenly
 */
#ifndef TERN_CONFIG_ROUTE_H
#define TERN_CONFIG_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_route_kind {
	CONFIG_ROUTE_MX,      /* the recipient domain's MX hosts (RFC 5321 5.1) */
	CONFIG_ROUTE_SMTP,    /* a fixed relay */
	CONFIG_ROUTE_LMTP,    /* an LMTP server (RFC 2033) */
	CONFIG_ROUTE_MAILDIR, /* local_delivery only: tern's own mailboxes */
};

enum config_tls_policy {
	CONFIG_TLS_MAY,      /* STARTTLS when the peer offers it (RFC 7435) */
	CONFIG_TLS_NONE,     /* never */
	CONFIG_TLS_REQUIRED, /* STARTTLS or no delivery through this peer */
	CONFIG_TLS_IMPLICIT, /* TLS from the start (RFC 8314) */
};

#define CONFIG_ROUTE_TEXT_MAX 1024

struct config_route {
	char *domain; /* transport: "example.com", or ".example.com" for its subdomains; else NULL */
	enum config_route_kind kind;
	char *host;                 /* SMTP, LMTP over TCP: a name or an address, without brackets */
	bool host_mx;               /* SMTP: HOST was written without brackets: deliver to its MX hosts */
	char *socket_path;          /* LMTP over a unix socket */
	unsigned port;              /* 0: remote_port (MX), else the route's */
	enum config_tls_policy tls; /* tls=verify is stored as REQUIRED with verify */
	bool verify;                /* the peer's certificate is checked */
	char *ca_file;              /* ca=: the CAs to trust; NULL: the system's */
	char *auth_file;            /* as written */
	char *auth_user, *auth_password;
	uint64_t rate_interval_us; /* rate=: the least time between two messages to a destination; 0: no limit */
	char *text;                /* the whole value as written, for logs and comparisons */
	unsigned line;             /* transport: the line it was given on, for messages */
};

/*
 * config_route_parse - ROUTE [OPTION...] (s[0..len)) into
 * out. bare_smtp: a DEST without "smtp:" means SMTP (smarthost); maildir:
 * "maildir" is allowed (local_delivery); read_files: the credentials file
 * is read into auth_user and auth_password, else it is not opened at all
 * (they stay NULL; auth_file is kept as written). false with one message
 * in err.
 */
bool config_route_parse(const char *s, size_t len, bool bare_smtp, bool maildir, bool read_files,
                        struct config_route *out, char *err, size_t errlen);

/*
 * config_rate_parse - "N/s", "N/m", "N/h" or "N/d" (N 1..1000000) as the
 * time between two messages, in microseconds; "0" means no limit (0).
 */
bool config_rate_parse(const char *s, size_t len, uint64_t *interval_us);

/*
 * config_route_unverified - a route that sends credentials over TLS whose
 * certificate is not checked (auth= with verify=no): allowed, since the
 * operator wrote it, but worth a loud warning.
 */
bool config_route_unverified(const struct config_route *route);

/* config_route_release - what config_route_parse allocated; out is zeroed. */
void config_route_release(struct config_route *route);

/* config_route_equal - the same value as written (credentials files are reread at every load). */
bool config_route_equal(const struct config_route *a, const struct config_route *b);

/*
 * config_credentials_read - the first line of path that is neither blank
 * nor a comment: "USER PASSWORD", the password being the rest of the line
 * as it is. The file must not be readable by every user. false with
 * "PATH:LINE: message" (or "PATH: message") in err.
 */
bool config_credentials_read(const char *path, char **user, char **password, char *err, size_t errlen);

/*
 * config_route_match - the route of routes[0..count) for domain (lower
 * case): an exact DOMAIN first, then ".PARENT" entries from the nearest
 * parent up; NULL if none.
 */
const struct config_route *config_route_match(const struct config_route *routes, size_t count, const char *domain);

#endif
