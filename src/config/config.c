/*
 * config.c - the configuration file: one parameter table, its value
 * parsers, the loader, the defaults listing and the restart check.
 *
 * Everything tern knows about a parameter (name, type, default as a user
 * would write it, bounds, whether a change needs a restart, where it lives
 * in struct config, one line of doc) is in params[] below. The loader,
 * `tern config check`, `tern config defaults` and docs/CONFIG.md all read
 * that table; nothing else lists the parameters. Defaults are applied after
 * the file, to every parameter it left out, by running their text through
 * the same value parser as a file's values, so a default cannot be a value
 * the parser would refuse.
 *
 * Invariants: config_load hands out a complete config with refs = 1 or
 * nothing; once handed out it is never changed (only refs moves). Lines are
 * read into a fixed buffer of CONFIG_LINE_MAX bytes, so a broken or hostile
 * file costs bounded memory per line; longer lines are refused.
 *
 * Failure: every problem in the file is written to the caller's stream, one
 * line each, "FILE:LINE: PARAM: message" (FILE:LINE left out for problems
 * that belong to no line), and config_load returns NULL. Values are quoted
 * and escaped in messages. Out of memory aborts (xmalloc).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp/smtp_address.h"
#include "smtp/smtp_limits.h"
#include "util/util_log.h"
#include "util/util_str.h"

/* Longest line accepted, without its LF. */
#define CONFIG_LINE_MAX 4096

/* Unknown names within this edit distance of a known one get a suggestion. */
#define CONFIG_SUGGEST_DISTANCE 2

/* Longest name shown raw in a message or compared for a suggestion. */
#define CONFIG_NAME_MAX 64

/* Longest text of a configured reply: with the code, the status and an address it fits a reply line. */
#define CONFIG_REPLY_TEXT_MAX 200

#define KIB    1024ULL
#define MIB    (1024ULL * KIB)
#define GIB    (1024ULL * MIB)
#define MINUTE 60ULL
#define HOUR   (60ULL * MINUTE)
#define DAY    (24ULL * HOUR)

#define FIELD(f)       offsetof(struct config, f)
#define CONFIG_STR_(x) #x
#define CONFIG_STR(x)  CONFIG_STR_(x)

enum config_type {
	CONFIG_STRING,    /* char *: bytes from param.chars, length min..max */
	CONFIG_PATH,      /* char *: no control characters, length min..max */
	CONFIG_DOMAIN,    /* char *: one domain name */
	CONFIG_DOMAINS,   /* char ** + size_t count: lower-cased, no duplicates */
	CONFIG_ADDRESS,   /* char *: local@domain, lower-cased */
	CONFIG_LISTENER,  /* struct config_listener * + size_t count; may repeat */
	CONFIG_SIZE,      /* uint64_t bytes */
	CONFIG_COUNT,     /* uint64_t */
	CONFIG_DURATION,  /* uint64_t seconds */
	CONFIG_RATE,      /* uint64_t microseconds between two messages; 0: no limit */
	CONFIG_LOG_LEVEL, /* enum log_level */
	CONFIG_CHOICE,    /* unsigned: the index of one word of param.choices */
	CONFIG_CHOICES,   /* uint64_t: a bit per word of param.choices given */
	CONFIG_CERT,      /* struct config_cert * + size_t count; may repeat */
	CONFIG_NETWORKS,  /* struct config_network * + size_t count */
	CONFIG_RELAY,     /* struct config_route: a relay for every other domain, or none */
	CONFIG_TRANSPORT, /* struct config_route * + size_t count; may repeat */
	CONFIG_LOCAL,     /* struct config_route: maildir or LMTP */
	CONFIG_REPLY,     /* struct config_reply: an SMTP reply, CODE X.Y.Z TEXT */
};

struct config_load;

struct config_param {
	const char *name;
	/* The default as a user would write it; with default_fn, only what the
	 * listing shows, and default_fn makes the text at load time. */
	const char *default_text;
	bool (*default_fn)(struct config_load *ld, char *buf, size_t size);
	uint64_t min, max;          /* numbers: bounds in bytes/seconds; text: length */
	const char *chars;          /* CONFIG_STRING: the bytes allowed */
	const char *chars_doc;      /* ... as said in an error message */
	const char *const *choices; /* CONFIG_CHOICE(S): the words, NULL-terminated */
	size_t offset;              /* of the field in struct config */
	size_t count_offset;        /* lists: of the element count */
	const char *doc;
	enum config_type type;
	bool restart; /* a change only takes effect at a restart */
	bool repeats; /* may be given more than once (a list) */
};

/* One unit suffix of a number type; alt is the other case, if accepted. */
struct config_unit {
	char suffix;
	char alt;
	uint64_t factor;
};

typedef bool config_parse_fn(struct config_load *ld, const struct config_param *p, const char *v, size_t len);
typedef bool config_equal_fn(const struct config_param *p, const struct config *a, const struct config *b);
typedef void config_release_fn(const struct config_param *p, struct config *config);

struct config_type_info {
	const char *name;
	const char *doc;                 /* what a value looks like (docs) */
	const char *hint;                /* "a size (use ...)" for "is not" messages */
	const struct config_unit *units; /* number types, smallest first */
	config_parse_fn *parse;
	config_equal_fn *equal;
	config_release_fn *release; /* NULL: nothing allocated */
};

/*
 * struct config_load - the state of one config_load call. set_line[i] is
 * the line params[i] was first given on (0: not in the file); bad[i] says
 * its value was refused, so checks that involve it are skipped instead of
 * piling a second message on the first.
 */
struct config_load {
	struct config *config;
	const char *file;
	unsigned line; /* 0: the problem belongs to no line */
	FILE *errors;
	unsigned error_count;
	unsigned *set_line;
	bool *bad;
	unsigned *listener_lines; /* parallel to config->listeners */
	bool skip_files;          /* config_load_client: named files are not opened */
};

static config_parse_fn parse_string, parse_path, parse_domain, parse_domains, parse_address, parse_listener,
        parse_number, parse_log_level, parse_choice, parse_choices, parse_cert, parse_networks, parse_relay,
        parse_transport, parse_local, parse_reply, parse_rate;
static config_equal_fn equal_string, equal_domains, equal_listeners, equal_number, equal_log_level, equal_choice,
        equal_certs, equal_networks, equal_route, equal_transports, equal_reply;
static config_release_fn release_string, release_domains, release_listeners, release_certs, release_networks,
        release_route, release_transports, release_reply;
static bool default_hostname(struct config_load *ld, char *buf, size_t size);
static bool default_postmaster(struct config_load *ld, char *buf, size_t size);

static const struct config_unit size_units[] = {
        {'k', 'K', KIB},
        {'M', 'm', MIB},
        {'G', 'g', GIB},
        {0, 0, 0},
};

static const struct config_unit duration_units[] = {
        {'s', 0, 1}, {'m', 0, MINUTE}, {'h', 0, HOUR}, {'d', 0, DAY}, {0, 0, 0},
};

static const struct config_type_info types[] = {
        [CONFIG_STRING] = {"string", "text from a fixed set of characters", NULL, NULL, parse_string, equal_string,
                           release_string},
        [CONFIG_PATH] = {"path", "a file system path, absolute or relative to the working directory", NULL, NULL,
                         parse_path, equal_string, release_string},
        [CONFIG_DOMAIN] = {"domain", "a domain name (international ones in A-label form, xn--...)", NULL, NULL,
                           parse_domain, equal_string, release_string},
        [CONFIG_DOMAINS] = {"domain list", "domain names separated by commas or spaces, no duplicates", NULL, NULL,
                            parse_domains, equal_domains, release_domains},
        [CONFIG_ADDRESS] = {"address", "a mail address, local@domain", NULL, NULL, parse_address, equal_string,
                            release_string},
        [CONFIG_LISTENER] = {"listener",
                             "`ADDRESS:PORT KIND`: a numeric IPv4 address or an IPv6 one in brackets "
                             "(`[::1]:25`), a port 1..65535, and `mx`, `submission` or `submissions`",
                             NULL, NULL, parse_listener, equal_listeners, release_listeners},
        [CONFIG_SIZE] = {"size", "bytes, or a number with k, M or G (1024-based): `25M`",
                         "a size (use a number with k, M or G)", size_units, parse_number, equal_number, NULL},
        [CONFIG_COUNT] = {"count", "a whole number", "a count (use a whole number)", NULL, parse_number, equal_number,
                          NULL},
        [CONFIG_DURATION] = {"duration", "seconds, or a number with s, m, h or d: `90s`, `5m`, `4h`, `5d`",
                             "a duration (use a number with s, m, h or d)", duration_units, parse_number, equal_number,
                             NULL},
        [CONFIG_RATE] = {"rate",
                         "`N/s`, `N/m`, `N/h` or `N/d`: at most N messages a second, minute, hour or day, "
                         "spread evenly; `0`: no limit",
                         NULL, NULL, parse_rate, equal_number, NULL},
        [CONFIG_LOG_LEVEL] = {"log level", "`debug`, `info`, `warning` or `error`", NULL, NULL, parse_log_level,
                              equal_log_level, NULL},
        [CONFIG_CHOICE] = {"choice", "one of the words the parameter lists", NULL, NULL, parse_choice, equal_choice,
                           NULL},
        [CONFIG_CHOICES] = {"choice list", "some of the words the parameter lists, separated by commas or spaces", NULL,
                            NULL, parse_choices, equal_number, NULL},
        [CONFIG_CERT] = {"certificate",
                         "`CERT_FILE KEY_FILE`: a PEM certificate chain (the server's first) and its "
                         "PEM private key",
                         NULL, NULL, parse_cert, equal_certs, release_certs},
        [CONFIG_NETWORKS] = {"network list",
                             "addresses or address blocks (`127.0.0.0/8`, `::1`, `2001:db8::/32`) separated by "
                             "commas or spaces",
                             NULL, NULL, parse_networks, equal_networks, release_networks},
        [CONFIG_RELAY] = {"relay",
                          "`[HOST]:PORT` (HOST's addresses) or `HOST:PORT` (HOST's MX hosts), then optionally "
                          "`tls=may|required|verify|implicit|none`, `verify=yes|no` (check the certificate's "
                          "chain and name; on by default with auth= or ca=), `ca=FILE` (the CAs to trust instead "
                          "of the system's), `auth=FILE` (a file holding `USER PASSWORD`) and `rate=N/s|m|h|d` "
                          "(messages to it); empty: none",
                          NULL, NULL, parse_relay, equal_route, release_route},
        [CONFIG_TRANSPORT] = {"transport",
                              "`DOMAIN ROUTE [OPTION...]`: DOMAIN, or `.DOMAIN` for its subdomains; ROUTE `mx`, "
                              "`smtp:[HOST]:PORT`, `smtp:HOST:PORT`, `lmtp:[HOST]:PORT` or `lmtp:unix:PATH`; the "
                              "options tls=, verify=, ca=, auth= and rate= as for a relay (rate= per destination "
                              "domain for mx; verification checks each MX host's name)",
                              NULL, NULL, parse_transport, equal_transports, release_transports},
        [CONFIG_LOCAL] = {"local route", "`maildir`, `lmtp:[HOST]:PORT` or `lmtp:unix:PATH`", NULL, NULL, parse_local,
                          equal_route, release_route},
        [CONFIG_REPLY] = {"reply",
                          "`CODE X.Y.Z TEXT`: a 4xx or 5xx reply code, an enhanced status code of the same class "
                          "(RFC 3463) and up to " CONFIG_STR(CONFIG_REPLY_TEXT_MAX) " characters of printable ASCII",
                          NULL, NULL, parse_reply, equal_reply, release_reply},
};

static const char *const tls_versions[] = {"TLSv1.2", "TLSv1.3", NULL};
static const char *const auth_tls_choices[] = {"no", "loopback", NULL};
static const char *const yes_no[] = {"no", "yes", NULL};
/* The order of enum sasl_mech and CONFIG_MECH_*. */
static const char *const mechanisms[] = {"plain", "login", "cram-md5", "scram-sha-256", NULL};

/*
 * The parameters, in the order the listing shows them. local_domains comes
 * before postmaster: postmaster's default is made from it.
 */
static const struct config_param params[] = {
        {.name = "hostname",
         .type = CONFIG_DOMAIN,
         .default_text = "(system host name)",
         .default_fn = default_hostname,
         .offset = FIELD(hostname),
         .doc = "name in the greeting, the EHLO reply and Received: headers"},
        {.name = "data_dir",
         .type = CONFIG_PATH,
         .default_text = "./var",
         .min = 1,
         .max = 1024,
         .restart = true,
         .offset = FIELD(data_dir),
         .doc = "directory of the queue database (queue.db) and the mailboxes (mail/)"},
        {.name = "listen",
         .type = CONFIG_LISTENER,
         .default_text = "127.0.0.1:2525 mx, 127.0.0.1:2587 submission, 127.0.0.1:2465 submissions",
         .restart = true,
         .repeats = true,
         .offset = FIELD(listeners),
         .count_offset = FIELD(listener_count),
         .doc = "address, port and kind to accept connections on; repeat (or separate with commas) for more"},
        {.name = "sendmail_socket",
         .type = CONFIG_PATH,
         .default_text = "",
         .min = 0,
         .max = CONFIG_SOCKET_PATH_MAX,
         .restart = true,
         .offset = FIELD(sendmail_socket),
         .doc = "UNIX-domain socket through which local programs submit mail (tern sendmail, /usr/sbin/sendmail), "
                "as the local user who runs them; empty: data_dir/sendmail.sock; none: no socket"},
        {.name = "local_domains",
         .type = CONFIG_DOMAINS,
         .default_text = "localhost",
         .offset = FIELD(local_domains),
         .count_offset = FIELD(local_domain_count),
         .doc = "domains whose mail tern delivers to its own mailboxes"},
        {.name = "postmaster",
         .type = CONFIG_ADDRESS,
         .default_text = "postmaster@<first local domain>",
         .default_fn = default_postmaster,
         .offset = FIELD(postmaster),
         .doc = "mailbox for postmaster@ any local domain without its own; created at start"},
        {.name = "recipient_delimiter",
         .type = CONFIG_STRING,
         .default_text = "+",
         .min = 0,
         .max = 8,
         .chars = "+-_=!#$%&'*/?^`{|}~",
         .chars_doc = "characters from +-_=!#$%&'*/?^`{|}~",
         .offset = FIELD(recipient_delimiter),
         .doc = "user+tag@domain is delivered to user@domain; empty turns it off"},
        {.name = "max_message_size",
         .type = CONFIG_SIZE,
         .default_text = "25M",
         .min = KIB,
         .max = 2 * GIB,
         .offset = FIELD(max_message_size),
         .doc = "largest message accepted, announced in SIZE (552 5.3.4 past it)"},
        {.name = "max_recipients",
         .type = CONFIG_COUNT,
         .default_text = "1000",
         .min = SMTP_RECIPIENTS_MIN,
         .max = SMTP_RECIPIENTS_CEILING,
         .offset = FIELD(max_recipients),
         .doc = "recipients per transaction (452 4.5.3 past it); RFC 5321 4.5.3.1.8 asks for 100"},
        {.name = "max_errors",
         .type = CONFIG_COUNT,
         .default_text = "10",
         .min = 1,
         .max = 1000,
         .offset = FIELD(max_errors),
         .doc = "errors in one session before 421 4.7.0 and disconnect"},
        {.name = "max_connections",
         .type = CONFIG_COUNT,
         .default_text = "1000",
         .min = 1,
         .max = 1000000,
         .offset = FIELD(max_connections),
         .doc = "client connections in all (past it: 421 4.7.0, then close)"},
        {.name = "max_connections_per_ip",
         .type = CONFIG_COUNT,
         .default_text = "50",
         .min = 1,
         .max = 1000000,
         .offset = FIELD(max_connections_per_ip),
         .doc = "client connections from one address (past it: 421 4.7.0, then close)"},
        {.name = "command_timeout",
         .type = CONFIG_DURATION,
         .default_text = "5m",
         .min = 1,
         .max = DAY,
         .offset = FIELD(command_timeout),
         .doc = "idle time waiting for a command (421 4.4.2, then close)"},
        {.name = "data_timeout",
         .type = CONFIG_DURATION,
         .default_text = "10m",
         .min = 1,
         .max = DAY,
         .offset = FIELD(data_timeout),
         .doc = "idle time inside DATA or BDAT content"},
        {.name = "session_timeout",
         .type = CONFIG_DURATION,
         .default_text = "1h",
         .min = 1,
         .max = 7 * DAY,
         .offset = FIELD(session_timeout),
         .doc = "longest a whole session may last"},
        {.name = "max_hops",
         .type = CONFIG_COUNT,
         .default_text = CONFIG_STR(SMTP_HOPS_MAX),
         .min = 1,
         .max = 500,
         .offset = FIELD(max_hops),
         .doc = "Received: headers a message may carry before 554 5.4.6 (mail loop)"},
        {.name = "log_level",
         .type = CONFIG_LOG_LEVEL,
         .default_text = "info",
         .offset = FIELD(log_level),
         .doc = "least severe lines logged: debug, info, warning or error"},
        {.name = "user",
         .type = CONFIG_STRING,
         .default_text = "",
         .min = 0,
         .max = 32,
         .chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
         .chars_doc = "letters, digits, \".\", \"_\" and \"-\"",
         .restart = true,
         .offset = FIELD(user),
         .doc = "when started as root: the user to run as after binding the listeners"},
        {.name = "delivery_workers",
         .type = CONFIG_COUNT,
         .default_text = "2",
         .min = 1,
         .max = 64,
         .restart = true,
         .offset = FIELD(delivery_workers),
         .doc = "threads writing Maildir files (each writes batches of up to 64 messages with one flush)"},
        {.name = "retry_initial",
         .type = CONFIG_DURATION,
         .default_text = "5m",
         .min = 1,
         .max = DAY,
         .offset = FIELD(retry_initial),
         .doc = "first wait before retrying a failed local delivery"},
        {.name = "retry_max",
         .type = CONFIG_DURATION,
         .default_text = "4h",
         .min = 1,
         .max = 7 * DAY,
         .offset = FIELD(retry_max),
         .doc = "longest wait between local delivery retries; at least retry_initial"},
        {.name = "max_queue_lifetime",
         .type = CONFIG_DURATION,
         .default_text = "5d",
         .min = MINUTE,
         .max = 60 * DAY,
         .offset = FIELD(max_queue_lifetime),
         .doc = "time after which an undelivered recipient is given up"},
        {.name = "delay_warning",
         .type = CONFIG_DURATION,
         .default_text = "4h",
         .min = 0,
         .max = 60 * DAY,
         .offset = FIELD(delay_warning),
         .doc = "tell the sender (RFC 3464 \"delayed\") once a recipient has waited this long; 0: never, and "
                "never for a message from <>"},
        {.name = "shutdown_timeout",
         .type = CONFIG_DURATION,
         .default_text = "30s",
         .min = 0,
         .max = HOUR,
         .offset = FIELD(shutdown_timeout),
         .doc = "on SIGTERM: time in-flight transactions get to finish"},
        {.name = "bounce_retention",
         .type = CONFIG_DURATION,
         .default_text = "7d",
         .min = 0,
         .max = 365 * DAY,
         .offset = FIELD(bounce_retention),
         .doc = "how long a recipient that failed for good stays in the queue (tern queue list, queue retry) "
                "before it is deleted, with its message once no recipient is left; 0: until tern queue delete"},
        {.name = "queue_min_free",
         .type = CONFIG_SIZE,
         .default_text = "4M",
         .min = 0,
         .max = 1024 * GIB,
         .offset = FIELD(queue_min_free),
         .doc = "free space to keep on data_dir's file system: below it, or below it plus twice a message's "
                "declared SIZE, MAIL gets 452 4.3.1 (as Postfix's queue_minfree); 0: no check at MAIL (a full disk "
                "still gets 452 4.3.1 at the end of the message)"},
        {.name = "tls_certificate",
         .type = CONFIG_CERT,
         .default_text = "",
         .repeats = true,
         .offset = FIELD(tls_certs),
         .count_offset = FIELD(tls_cert_count),
         .doc = "certificate and key for TLS; repeat for more: the first is the default, the others are chosen "
                "when the client's server name (SNI) is one of theirs; none: a self-signed one made in "
                "data_dir/tls on first start"},
        {.name = "tls_min_version",
         .type = CONFIG_CHOICE,
         .default_text = "TLSv1.2",
         .choices = tls_versions,
         .offset = FIELD(tls_min_version),
         .doc = "oldest TLS version accepted"},
        {.name = "auth_mechanisms",
         .type = CONFIG_CHOICES,
         .default_text = "plain login scram-sha-256",
         .choices = mechanisms,
         .offset = FIELD(auth_mechanisms),
         .doc = "SASL mechanisms offered on submission listeners; every password set makes the SCRAM-SHA-256 "
                "secret, but cram-md5 works only for users given its secret (tern user passwd --cram-md5), "
                "and clients that prefer it do not fall back, so it is off unless listed here"},
        {.name = "auth_without_tls",
         .type = CONFIG_CHOICE,
         .default_text = "no",
         .choices = auth_tls_choices,
         .offset = FIELD(auth_without_tls),
         .doc = "loopback: also offer AUTH without TLS to clients on 127.0.0.0/8 and ::1"},
        {.name = "relay_networks",
         .type = CONFIG_NETWORKS,
         .default_text = "",
         .offset = FIELD(relay_networks),
         .count_offset = FIELD(relay_network_count),
         .doc = "clients that may relay to any domain without AUTH (empty: none)"},
        {.name = "auth_fail_delay",
         .type = CONFIG_DURATION,
         .default_text = "1s",
         .min = 0,
         .max = MINUTE,
         .offset = FIELD(auth_fail_delay),
         .doc = "a failed AUTH is answered after this times the recent failures of that user from that address "
                "(at most 5 times); a locked-out attempt waits the 5 times"},
        {.name = "auth_fail_limit",
         .type = CONFIG_COUNT,
         .default_text = "5",
         .min = 1,
         .max = 1000,
         .offset = FIELD(auth_fail_limit),
         .doc = "failed AUTH for one user name from one client address (an IPv6 /64) within auth_fail_window "
                "before that user is locked out from that address; other users there are not"},
        {.name = "auth_fail_limit_per_address",
         .type = CONFIG_COUNT,
         .default_text = "30",
         .min = 0,
         .max = 100000,
         .offset = FIELD(auth_fail_limit_per_address),
         .doc = "failed AUTH from one client address (an IPv6 /64), whatever the user names, within "
                "auth_fail_window before the whole address is locked out (password spraying); 0: never; "
                "clients in relay_networks are not counted"},
        {.name = "auth_fail_window",
         .type = CONFIG_DURATION,
         .default_text = "15m",
         .min = 1,
         .max = DAY,
         .offset = FIELD(auth_fail_window),
         .doc = "how long a failed AUTH counts"},
        {.name = "auth_lockout",
         .type = CONFIG_DURATION,
         .default_text = "15m",
         .min = 1,
         .max = DAY,
         .offset = FIELD(auth_lockout),
         .doc = "how long a lockout lasts; AUTH that it covers is answered 535 5.7.8, like a wrong password, "
                "without checking the password, and is not counted"},
        {.name = "auth_cache_ttl",
         .type = CONFIG_DURATION,
         .default_text = "1h",
         .min = 0,
         .max = DAY,
         .offset = FIELD(auth_cache_ttl),
         .doc = "how long a successful password check is remembered (an HMAC under a key held only in memory), so "
                "clients that log in for every message pay the slow hash once; 0: never"},
        {.name = "user_message_rate",
         .type = CONFIG_COUNT,
         .default_text = "1000",
         .min = 0,
         .max = 100000000,
         .offset = FIELD(user_message_rate),
         .doc = "messages one authenticated user may send per hour (450 4.7.1 past it); 0: no limit"},
        {.name = "user_recipient_rate",
         .type = CONFIG_COUNT,
         .default_text = "5000",
         .min = 0,
         .max = 100000000,
         .offset = FIELD(user_recipient_rate),
         .doc = "recipients one authenticated user may send to per hour (452 4.7.1 past it); 0: no limit"},
        {.name = "ip_message_rate",
         .type = CONFIG_COUNT,
         .default_text = "0",
         .min = 0,
         .max = 100000000,
         .offset = FIELD(ip_message_rate),
         .doc = "messages per hour from one client address, on every listener; 0: no limit"},
        {.name = "ip_recipient_rate",
         .type = CONFIG_COUNT,
         .default_text = "0",
         .min = 0,
         .max = 100000000,
         .offset = FIELD(ip_recipient_rate),
         .doc = "recipients per hour from one client address, on every listener; 0: no limit"},
        {.name = "suppression",
         .type = CONFIG_CHOICE,
         .default_text = "yes",
         .choices = yes_no,
         .offset = FIELD(suppression),
         .doc = "put an address in another domain on the suppression list when mail to it fails for good because "
                "it does not exist (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10), and refuse relayed mail for listed "
                "addresses at RCPT (tern suppression list|add|delete|clear); no: neither, the list is kept"},
        {.name = "suppression_ttl",
         .type = CONFIG_DURATION,
         .default_text = "30d",
         .min = 0,
         .max = 3650 * DAY,
         .offset = FIELD(suppression_ttl),
         .doc = "how long an address stays on the suppression list after its last hard bounce; 0: until "
                "deleted; addresses added with tern suppression add stay until deleted"},
        {.name = "suppression_reply",
         .type = CONFIG_REPLY,
         .default_text = "550 5.1.1 Recipient address rejected: it bounced before and is on the suppression list",
         .offset = FIELD(suppression_reply),
         .doc = "the reply to RCPT for an address on the suppression list; tern puts <address>: before the "
                "text, as in 550 5.1.1 <bob@example.com>: Recipient address rejected: ..."},
        {.name = "dns_resolver",
         .type = CONFIG_STRING,
         .default_text = "system",
         .min = 1,
         .max = 64,
         .chars = "abcdefghijklmnopqrstuvwxyz0123456789.:@ABCDEF",
         .chars_doc = "system, recursive, or an IP address with an optional @PORT",
         .restart = true,
         .offset = FIELD(dns_resolver),
         .doc = "where DNS questions go: system (/etc/resolv.conf), recursive (from the root servers), or a "
                "forwarder ADDRESS[@PORT]"},
        {.name = "remote_port",
         .type = CONFIG_COUNT,
         .default_text = "25",
         .min = 1,
         .max = 65535,
         .offset = FIELD(remote_port),
         .doc = "port of the mail exchangers tern delivers to"},
        {.name = "remote_max_connections",
         .type = CONFIG_COUNT,
         .default_text = "100",
         .min = 1,
         .max = 100000,
         .offset = FIELD(remote_max_connections),
         .doc = "outgoing SMTP connections at once, all destinations together"},
        {.name = "remote_max_per_destination",
         .type = CONFIG_COUNT,
         .default_text = "20",
         .min = 1,
         .max = 100000,
         .offset = FIELD(remote_max_per_destination),
         .doc = "outgoing connections at once to one destination (a domain, or a relay); a destination none of "
                "whose hosts answered is left alone for half its recipients' backoff"},
        {.name = "remote_connect_timeout",
         .type = CONFIG_DURATION,
         .default_text = "30s",
         .min = 1,
         .max = HOUR,
         .offset = FIELD(remote_connect_timeout),
         .doc = "time to connect to a mail exchanger before trying the next"},
        {.name = "remote_command_timeout",
         .type = CONFIG_DURATION,
         .default_text = "5m",
         .min = 1,
         .max = HOUR,
         .offset = FIELD(remote_command_timeout),
         .doc = "time to wait for each reply of a mail exchanger (RFC 5321 4.5.3.2)"},
        {.name = "remote_data_timeout",
         .type = CONFIG_DURATION,
         .default_text = "10m",
         .min = 1,
         .max = HOUR,
         .offset = FIELD(remote_data_timeout),
         .doc = "time to wait for the reply to the end of the message (RFC 5321 4.5.3.2)"},
        {.name = "remote_idle_timeout",
         .type = CONFIG_DURATION,
         .default_text = "5s",
         .min = 0,
         .max = 300,
         .offset = FIELD(remote_idle_timeout),
         .doc = "how long a connection whose message is done stays open for the next message to the same "
                "destination (0: close it at once)"},
        {.name = "remote_destination_ttl",
         .type = CONFIG_DURATION,
         .default_text = "1m",
         .min = 1,
         .max = DAY,
         .offset = FIELD(remote_destination_ttl),
         .doc = "how long what tern knows of a destination nothing is sent to any more (its rate, its "
                "back-off once that is over) is kept before it is forgotten"},
        {.name = "remote_max_destinations",
         .type = CONFIG_COUNT,
         .default_text = "100000",
         .min = 1,
         .max = 10000000,
         .offset = FIELD(remote_max_destinations),
         .doc = "most destinations (domains, relays) known at once; mail for a new one past it waits (4.3.2) "
                "until unused ones are forgotten"},
        {.name = "remote_rate_per_destination",
         .type = CONFIG_RATE,
         .default_text = "0",
         .offset = FIELD(remote_rate_interval_us),
         .doc = "at most this many messages to one destination (a domain, or a relay), spread evenly, e.g. "
                "`100/m`; a route's rate= comes first; 0: no limit"},
        {.name = "remote_messages_per_connection",
         .type = CONFIG_COUNT,
         .default_text = "100",
         .min = 1,
         .max = 100000,
         .offset = FIELD(remote_messages_per_connection),
         .doc = "messages sent over one connection before it is closed (1: a new connection for each)"},
        {.name = "smarthost",
         .type = CONFIG_RELAY,
         .default_text = "",
         .offset = FIELD(smarthost),
         .doc = "send mail for every other domain through this relay instead of its MX hosts (transport lines "
                "come first); with auth=, TLS is required and the certificate checked (verify=no opts out)"},
        {.name = "transport",
         .type = CONFIG_TRANSPORT,
         .default_text = "",
         .repeats = true,
         .offset = FIELD(transports),
         .count_offset = FIELD(transport_count),
         .doc = "a route for one domain (or .domain: its subdomains), ahead of smarthost; repeat for more; "
                "e.g. `example.com mx tls=required` or `example.org lmtp:[10.0.0.2]:24`"},
        {.name = "local_delivery",
         .type = CONFIG_LOCAL,
         .default_text = "maildir",
         .restart = true,
         .offset = FIELD(local_delivery),
         .doc = "where mail for local users goes: tern's Maildirs in data_dir/mail, or an LMTP server "
                "(e.g. Dovecot's lmtp:unix:/run/dovecot/lmtp), which gets the user's address"},
};

#define PARAM_COUNT (sizeof params / sizeof params[0])

/* ---- small helpers ---- */

static void *field_at(struct config *config, size_t offset)
{
	return (char *)config + offset;
}

static const void *field_at_const(const struct config *config, size_t offset)
{
	return (const char *)config + offset;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* trim - drop blanks at both ends of s[0..*len). */
static const char *trim(const char *s, size_t *len)
{
	while (*len > 0 && is_blank(s[0])) {
		s++;
		(*len)--;
	}
	while (*len > 0 && is_blank(s[*len - 1]))
		(*len)--;
	return s;
}

/* quote - s[0..len) quoted and escaped for a message (see log_quote). */
static const char *quote(char buf[LOG_QUOTE_MAX], const char *s, size_t len)
{
	return log_quote(buf, LOG_QUOTE_MAX, s, len);
}

/* name_shown - a parameter name as written: raw if it is a plain word, else quoted. */
static const char *name_shown(char buf[LOG_QUOTE_MAX], const char *s, size_t len)
{
	bool plain = len > 0 && len <= CONFIG_NAME_MAX;
	for (size_t i = 0; plain && i < len; i++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", s[i]) != NULL;
	if (plain) {
		str_copy_n(buf, LOG_QUOTE_MAX, s, len);
		return buf;
	}
	return quote(buf, s, len);
}

static void load_error(struct config_load *ld, const char *param, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * load_error - one problem, one line: "FILE:LINE: PARAM: message", the
 * location left out when ld->line is 0 and the name when param is NULL.
 */
static void load_error(struct config_load *ld, const char *param, const char *fmt, ...)
{
	va_list ap;

	ld->error_count++;
	if (ld->errors == NULL)
		return;
	if (ld->line > 0)
		fprintf(ld->errors, "%s:%u: ", ld->file, ld->line);
	if (param != NULL)
		fprintf(ld->errors, "%s: ", param);
	va_start(ap, fmt);
	vfprintf(ld->errors, fmt, ap);
	va_end(ap);
	fputc('\n', ld->errors);
}

static size_t param_index(const struct config_param *p)
{
	return (size_t)(p - params);
}

static const struct config_param *param_find(const char *name, size_t len)
{
	for (size_t i = 0; i < PARAM_COUNT; i++)
		if (strlen(params[i].name) == len && memcmp(params[i].name, name, len) == 0)
			return &params[i];
	return NULL;
}

static const struct config_param *param_get(const char *name)
{
	const struct config_param *p = param_find(name, strlen(name));
	if (p == NULL)
		fatal("no configuration parameter %s", name);
	return p;
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* edit_distance - Levenshtein distance ignoring ASCII case; both at most CONFIG_NAME_MAX. */
static size_t edit_distance(const char *a, size_t a_len, const char *b, size_t b_len)
{
	size_t row[CONFIG_NAME_MAX + 1];

	for (size_t j = 0; j <= b_len; j++)
		row[j] = j;
	for (size_t i = 1; i <= a_len; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= b_len; j++) {
			size_t up = row[j];
			size_t cost = ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[b_len];
}

/* param_suggest - the known name closest to name[0..len), if close enough. */
static const char *param_suggest(const char *name, size_t len)
{
	const char *best = NULL;
	size_t best_distance = CONFIG_SUGGEST_DISTANCE + 1;

	if (len > CONFIG_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < PARAM_COUNT; i++) {
		size_t d = edit_distance(name, len, params[i].name, strlen(params[i].name));
		if (d < best_distance) {
			best_distance = d;
			best = params[i].name;
		}
	}
	return best;
}

/* ---- numbers ---- */

static const struct config_unit *unit_find(const struct config_unit *units, char c)
{
	for (; units != NULL && units->suffix != 0; units++)
		if (c == units->suffix || (units->alt != 0 && c == units->alt))
			return units;
	return NULL;
}

/* format_number - v in the largest unit of the type that divides it: 2G, 5m, 1000. */
static const char *format_number(char *buf, size_t size, enum config_type type, uint64_t v)
{
	const struct config_unit *units = types[type].units;
	const struct config_unit *best = NULL;

	for (const struct config_unit *u = units; u != NULL && u->suffix != 0; u++)
		if (v != 0 && v % u->factor == 0)
			best = u;
	if (best != NULL)
		str_format(buf, size, "%llu%c", (unsigned long long)(v / best->factor), best->suffix);
	else if (type == CONFIG_DURATION)
		str_format(buf, size, "%llus", (unsigned long long)v);
	else
		str_format(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

/* format_range - "MIN..MAX" of a number parameter, in its units. */
static const char *format_range(char *buf, size_t size, const struct config_param *p)
{
	char lo[32], hi[32];
	str_format(buf, size, "%s..%s", format_number(lo, sizeof lo, p->type, p->min),
	           format_number(hi, sizeof hi, p->type, p->max));
	return buf;
}

/* parse_number - digits with an optional unit suffix, within [min, max]. */
enum number_result { NUMBER_OK, NUMBER_MALFORMED, NUMBER_TOO_BIG };

/* number_parse - digits with an optional suffix of units (NULL: none), as a value in the smallest unit. */
static enum number_result number_parse(const struct config_unit *units, const char *v, size_t len, uint64_t *out)
{
	const struct config_unit *unit = len > 0 ? unit_find(units, v[len - 1]) : NULL;
	uint64_t factor = unit != NULL ? unit->factor : 1;
	size_t digits = unit != NULL ? len - 1 : len;
	uint64_t n;

	if (!all_digits(v, digits))
		return NUMBER_MALFORMED;
	if (!str_to_u64(v, digits, &n) || n > UINT64_MAX / factor)
		return NUMBER_TOO_BIG;
	*out = n * factor;
	return NUMBER_OK;
}

bool config_duration_parse(const char *s, size_t len, uint64_t *seconds)
{
	return number_parse(duration_units, s, len, seconds) == NUMBER_OK;
}

static bool parse_number(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	uint64_t n = 0;
	char q[LOG_QUOTE_MAX];

	enum number_result r = number_parse(types[p->type].units, v, len, &n);
	if (r == NUMBER_MALFORMED) {
		load_error(ld, p->name, "%s is not %s", quote(q, v, len), types[p->type].hint);
		return false;
	}
	if (r == NUMBER_TOO_BIG || n < p->min || n > p->max) {
		char range[80];
		load_error(ld, p->name, "%s is out of range (%s)", quote(q, v, len),
		           format_range(range, sizeof range, p));
		return false;
	}
	*(uint64_t *)field_at(ld->config, p->offset) = n;
	return true;
}

static bool equal_number(const struct config_param *p, const struct config *a, const struct config *b)
{
	return *(const uint64_t *)field_at_const(a, p->offset) == *(const uint64_t *)field_at_const(b, p->offset);
}

static bool parse_log_level(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	char word[16];
	enum log_level level;

	if (!str_copy_n(word, sizeof word, v, len) || !log_level_parse(word, &level)) {
		char q[LOG_QUOTE_MAX];
		load_error(ld, p->name, "%s is not a log level (use debug, info, warning or error)", quote(q, v, len));
		return false;
	}
	*(enum log_level *)field_at(ld->config, p->offset) = level;
	return true;
}

static bool equal_log_level(const struct config_param *p, const struct config *a, const struct config *b)
{
	return *(const enum log_level *)field_at_const(a, p->offset) ==
	       *(const enum log_level *)field_at_const(b, p->offset);
}

/* ---- text ---- */

static void store_string(struct config_load *ld, const struct config_param *p, char *s)
{
	char **field = field_at(ld->config, p->offset);
	free(*field);
	*field = s;
}

static bool check_length(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	char q[LOG_QUOTE_MAX];
	if (len <= p->max)
		return true;
	load_error(ld, p->name, "%s is longer than %llu bytes", quote(q, v, len), (unsigned long long)p->max);
	return false;
}

static bool parse_string(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	char q[LOG_QUOTE_MAX], c[LOG_QUOTE_MAX];

	if (!check_length(ld, p, v, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '\0' || strchr(p->chars, v[i]) == NULL) {
			load_error(ld, p->name, "%s contains %s (use %s)", quote(q, v, len), quote(c, v + i, 1),
			           p->chars_doc);
			return false;
		}
	}
	store_string(ld, p, str_dup_n(v, len));
	return true;
}

static bool parse_path(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	char q[LOG_QUOTE_MAX];

	if (!check_length(ld, p, v, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c == 0x7f) {
			load_error(ld, p->name, "%s contains a control character", quote(q, v, len));
			return false;
		}
	}
	store_string(ld, p, str_dup_n(v, len));
	return true;
}

static bool equal_string(const struct config_param *p, const struct config *a, const struct config *b)
{
	const char *const *x = field_at_const(a, p->offset);
	const char *const *y = field_at_const(b, p->offset);
	if (*x == NULL || *y == NULL)
		return *x == *y;
	return strcmp(*x, *y) == 0;
}

static void release_string(const struct config_param *p, struct config *config)
{
	char **field = field_at(config, p->offset);
	free(*field);
	*field = NULL;
}

static bool has_high_bytes(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * domain_valid - s[0..len) is an RFC 5321 Domain (no address literal).
 * U-labels are refused: mailbox directories and comparisons work on the
 * ASCII form, so international domains are written as A-labels.
 */
static bool domain_valid(struct config_load *ld, const struct config_param *p, const char *s, size_t len)
{
	char q[LOG_QUOTE_MAX];

	if (smtp_domain_check(s, len, false, false))
		return true;
	if (has_high_bytes(s, len) && smtp_domain_check(s, len, false, true))
		load_error(ld, p->name, "%s: write international domains in A-label form (xn--...)", quote(q, s, len));
	else
		load_error(ld, p->name, "%s is not a valid domain name", quote(q, s, len));
	return false;
}

static bool parse_domain(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	if (!domain_valid(ld, p, v, len))
		return false;
	store_string(ld, p, str_dup_n(v, len));
	return true;
}

static void free_domains(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

static bool domain_listed(char *const *list, size_t count, const char *domain)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(list[i], domain) == 0)
			return true;
	return false;
}

/* domain_add - check one domain of a list and append it, lower-cased, unless already there. */
static bool domain_add(struct config_load *ld, const struct config_param *p, char **list, size_t *count, const char *s,
                       size_t len)
{
	char q[LOG_QUOTE_MAX];

	if (!domain_valid(ld, p, s, len))
		return false;
	char *domain = str_dup_n(s, len);
	str_lower(domain);
	if (domain_listed(list, *count, domain)) {
		load_error(ld, p->name, "%s is listed twice", quote(q, domain, len));
		free(domain);
		return false;
	}
	list[(*count)++] = domain;
	return true;
}

/* parse_domains - every domain is checked, so one line reports all its bad ones. */
static bool parse_domains(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	char **list = xcalloc(len / 2 + 1, sizeof *list); /* tokens are at least 2 bytes apart */
	size_t count = 0;
	const char *tok;
	size_t tok_len;
	bool ok = true;

	while (str_next_token(&v, &len, ", \t", &tok, &tok_len))
		ok = domain_add(ld, p, list, &count, tok, tok_len) && ok;
	if (ok && count == 0) {
		load_error(ld, p->name, "no domain given");
		ok = false;
	}
	if (!ok) {
		free_domains(list, count);
		return false;
	}
	release_domains(p, ld->config);
	*(char ***)field_at(ld->config, p->offset) = list;
	*(size_t *)field_at(ld->config, p->count_offset) = count;
	return true;
}

static bool equal_domains(const struct config_param *p, const struct config *a, const struct config *b)
{
	char *const *x = *(char *const *const *)field_at_const(a, p->offset);
	char *const *y = *(char *const *const *)field_at_const(b, p->offset);
	size_t n = *(const size_t *)field_at_const(a, p->count_offset);

	if (n != *(const size_t *)field_at_const(b, p->count_offset))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(x[i], y[i]) != 0)
			return false;
	return true;
}

static void release_domains(const struct config_param *p, struct config *config)
{
	char ***list = field_at(config, p->offset);
	size_t *count = field_at(config, p->count_offset);
	free_domains(*list, *count);
	*list = NULL;
	*count = 0;
}

/* local_part_valid - a Dot-string of at most SMTP_LOCAL_PART_MAX (RFC 5321 4.5.3.1.1). */
static bool local_part_valid(const char *s, size_t len)
{
	return len <= SMTP_LOCAL_PART_MAX && smtp_dot_string(s, len, false);
}

/* parse_address - local@domain; that the domain is local is checked after the whole file. */
static bool parse_address(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	const char *at = memchr(v, '@', len);
	char q[LOG_QUOTE_MAX];

	if (at == NULL) {
		load_error(ld, p->name, "%s is not an address (write local@domain)", quote(q, v, len));
		return false;
	}
	size_t local_len = (size_t)(at - v);
	if (!local_part_valid(v, local_len)) {
		load_error(ld, p->name, "%s: %s is not a valid local part", quote(q, v, len),
		           local_len > 0 ? "the part before \"@\"" : "the empty string");
		return false;
	}
	if (!domain_valid(ld, p, at + 1, len - local_len - 1))
		return false;
	char *address = str_dup_n(v, len);
	str_lower(address);
	store_string(ld, p, address);
	return true;
}

/* ---- listeners ---- */

static bool listener_kind_parse(const char *s, size_t len, enum listener_kind *kind)
{
	static const struct {
		const char *name;
		enum listener_kind kind;
	} kinds[] = {
	        {"mx", LISTENER_MX},
	        {"submission", LISTENER_SUBMISSION},
	        {"submissions", LISTENER_SUBMISSIONS},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, s, len) == 0) {
			*kind = kinds[i].kind;
			return true;
		}
	}
	return false;
}

/*
 * split_host_port - "IPv4:PORT" or "[IPv6]:PORT" into host and port
 * slices, and the address family the host must be.
 */
static bool split_host_port(struct config_load *ld, const struct config_param *p, const char *s, size_t len,
                            const char **host, size_t *host_len, const char **port, size_t *port_len, int *family)
{
	char q[LOG_QUOTE_MAX];
	const char *colon;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL) {
			load_error(ld, p->name, "%s has no closing \"]\"", quote(q, s, len));
			return false;
		}
		*host = s + 1;
		*host_len = (size_t)(close - s) - 1;
		colon = close + 1 < s + len && close[1] == ':' ? close + 1 : NULL;
		*family = AF_INET6;
	} else {
		colon = memrchr(s, ':', len);
		*host = s;
		*host_len = colon != NULL ? (size_t)(colon - s) : len;
		*family = AF_INET;
		if (colon != NULL && memchr(s, ':', *host_len) != NULL) {
			load_error(ld, p->name, "%s: put an IPv6 address in brackets, as in [::1]:25",
			           quote(q, s, len));
			return false;
		}
	}
	if (colon == NULL) {
		load_error(ld, p->name, "%s has no port (write ADDRESS:PORT KIND)", quote(q, s, len));
		return false;
	}
	*port = colon + 1;
	*port_len = (size_t)(s + len - *port);
	return true;
}

/* parse_port - 1..65535; 0 means "any" to bind(2), which a listener cannot use. */
static bool parse_port(struct config_load *ld, const struct config_param *p, const char *s, size_t len, unsigned *port)
{
	char q[LOG_QUOTE_MAX];
	uint64_t n;

	if (!all_digits(s, len)) {
		load_error(ld, p->name, "port %s is not a number", quote(q, s, len));
		return false;
	}
	if (!str_to_u64(s, len, &n) || n < 1 || n > 65535) {
		load_error(ld, p->name, "port %s is out of range (1..65535)", quote(q, s, len));
		return false;
	}
	*port = (unsigned)n;
	return true;
}

/*
 * resolve_numeric - host and port into a socket address, numeric only
 * (AI_NUMERICHOST: no name lookups at load time). IPv4 is also checked
 * with inet_pton, which unlike getaddrinfo refuses "127.1" and "0x7f.1".
 */
static bool resolve_numeric(const char *host, unsigned port, int family, struct config_listener *out)
{
	struct addrinfo hints, *res = NULL;
	char service[8];
	struct in_addr in4;

	if (family == AF_INET && inet_pton(AF_INET, host, &in4) != 1)
		return false;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	str_format(service, sizeof service, "%u", port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
		return false;
	bool fits = res->ai_addrlen <= sizeof out->addr;
	if (fits) {
		memset(&out->addr, 0, sizeof out->addr);
		memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
		out->addr_len = res->ai_addrlen;
	}
	freeaddrinfo(res);
	return fits;
}

/* listener_address - "ADDRESS:PORT" into out->addr and out->text. */
static bool listener_address(struct config_load *ld, const struct config_param *p, const char *s, size_t len,
                             struct config_listener *out)
{
	const char *host, *port_text;
	size_t host_len, port_len;
	int family;
	unsigned port;
	char host_buf[INET6_ADDRSTRLEN + 32];
	char q[LOG_QUOTE_MAX];

	if (!split_host_port(ld, p, s, len, &host, &host_len, &port_text, &port_len, &family) ||
	    !parse_port(ld, p, port_text, port_len, &port))
		return false;
	if (!str_copy_n(host_buf, sizeof host_buf, host, host_len) || host_len == 0 ||
	    !resolve_numeric(host_buf, port, family, out)) {
		load_error(ld, p->name, "%s is not a numeric %s address", quote(q, host, host_len),
		           family == AF_INET ? "IPv4" : "IPv6");
		return false;
	}
	if (!str_copy_n(out->text, sizeof out->text, s, len)) {
		load_error(ld, p->name, "%s is too long", quote(q, s, len));
		return false;
	}
	return true;
}

static in_port_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)ss)->sin_port;
	return ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port;
}

static bool sockaddr_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr);
}

static bool listener_same(const struct config_listener *a, const struct config_listener *b)
{
	return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

/*
 * listener_conflict - the index of a listener b cannot be bound next to: the
 * same address, or the same port and family with either on the wildcard
 * address (bind(2) fails with EADDRINUSE). IPv4 and IPv6 never conflict:
 * IPv6 listeners are bound IPV6_V6ONLY.
 */
static bool listener_conflict(const struct config *config, const struct config_listener *b, size_t *at)
{
	for (size_t i = 0; i < config->listener_count; i++) {
		const struct config_listener *a = &config->listeners[i];
		if (listener_same(a, b) ||
		    (a->addr.ss_family == b->addr.ss_family && sockaddr_port(&a->addr) == sockaddr_port(&b->addr) &&
		     (sockaddr_any(&a->addr) || sockaddr_any(&b->addr)))) {
			*at = i;
			return true;
		}
	}
	return false;
}

static void listener_append(struct config_load *ld, const struct config_listener *l)
{
	struct config *c = ld->config;
	c->listeners = xrealloc(c->listeners, (c->listener_count + 1) * sizeof *c->listeners);
	ld->listener_lines = xrealloc(ld->listener_lines, (c->listener_count + 1) * sizeof *ld->listener_lines);
	c->listeners[c->listener_count] = *l;
	ld->listener_lines[c->listener_count] = ld->line;
	c->listener_count++;
}

static bool listener_unique(struct config_load *ld, const struct config_param *p, const struct config_listener *l)
{
	size_t at;

	if (!listener_conflict(ld->config, l, &at))
		return true;
	const struct config_listener *other = &ld->config->listeners[at];
	if (listener_same(other, l))
		load_error(ld, p->name, "duplicate listen address %s (first on line %u)", l->text,
		           ld->listener_lines[at]);
	else
		load_error(ld, p->name, "%s overlaps %s (line %u)", l->text, other->text, ld->listener_lines[at]);
	return false;
}

/* parse_one_listener - "ADDRESS:PORT KIND": appends one listener. */
static bool parse_one_listener(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	const char *addr = v, *kind = NULL, *extra = NULL, *rest = v;
	size_t addr_len = len, kind_len = 0, extra_len = 0, rest_len = len;
	struct config_listener l;
	char q[LOG_QUOTE_MAX];

	memset(&l, 0, sizeof l);
	str_next_token(&rest, &rest_len, " \t", &addr, &addr_len);
	if (!str_next_token(&rest, &rest_len, " \t", &kind, &kind_len) ||
	    str_next_token(&rest, &rest_len, " \t", &extra, &extra_len)) {
		load_error(ld, p->name, "%s is not ADDRESS:PORT KIND (KIND: mx, submission or submissions)",
		           quote(q, v, len));
		return false;
	}
	if (!listener_kind_parse(kind, kind_len, &l.kind)) {
		load_error(ld, p->name, "unknown kind %s (use mx, submission or submissions)",
		           quote(q, kind, kind_len));
		return false;
	}
	if (!listener_address(ld, p, addr, addr_len, &l) || !listener_unique(ld, p, &l))
		return false;
	listener_append(ld, &l);
	return true;
}

/* parse_listener - one listener, or several separated by commas; each is appended. */
static bool parse_listener(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	const char *one;
	size_t one_len;
	bool ok = true;

	size_t given = 0;

	while (str_next_token(&v, &len, ",", &one, &one_len)) {
		const char *trimmed = trim(one, &one_len);
		if (one_len == 0)
			continue;
		ok = parse_one_listener(ld, p, trimmed, one_len) && ok;
		given++;
	}
	if (given == 0) {
		load_error(ld, p->name, "no listener given (write ADDRESS:PORT KIND)");
		return false;
	}
	return ok;
}

static bool listener_listed(const struct config *config, const struct config_listener *l)
{
	for (size_t i = 0; i < config->listener_count; i++)
		if (listener_same(&config->listeners[i], l) && config->listeners[i].kind == l->kind)
			return true;
	return false;
}

/* equal_listeners - the same set of (address, kind), in any order. */
static bool equal_listeners(const struct config_param *p, const struct config *a, const struct config *b)
{
	(void)p;
	if (a->listener_count != b->listener_count)
		return false;
	for (size_t i = 0; i < a->listener_count; i++)
		if (!listener_listed(b, &a->listeners[i]))
			return false;
	return true;
}

static void release_listeners(const struct config_param *p, struct config *config)
{
	(void)p;
	free(config->listeners);
	config->listeners = NULL;
	config->listener_count = 0;
}

/* ---- choices ---- */

static bool choice_find(const struct config_param *p, const char *v, size_t len, unsigned *index)
{
	for (unsigned i = 0; p->choices[i] != NULL; i++) {
		if (str_ieq(v, len, p->choices[i])) {
			*index = i;
			return true;
		}
	}
	return false;
}

/* choice_list - "a, b or c" for messages. */
static const char *choice_list(const struct config_param *p, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (unsigned i = 0; p->choices[i] != NULL; i++) {
		const char *sep = i == 0 ? "" : p->choices[i + 1] == NULL ? " or " : ", ";
		str_format(buf + used, size - used, "%s%s", sep, p->choices[i]);
		used += strlen(buf + used);
	}
	return buf;
}

static bool parse_choice(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	unsigned index;
	char q[LOG_QUOTE_MAX], list[256];

	if (!choice_find(p, v, len, &index)) {
		load_error(ld, p->name, "%s is not one of %s", quote(q, v, len), choice_list(p, list, sizeof list));
		return false;
	}
	*(unsigned *)field_at(ld->config, p->offset) = index;
	return true;
}

static bool equal_choice(const struct config_param *p, const struct config *a, const struct config *b)
{
	return *(const unsigned *)field_at_const(a, p->offset) == *(const unsigned *)field_at_const(b, p->offset);
}

/* parse_choices - words from the list; every bad word is reported. */
static bool parse_choices(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	uint64_t bits = 0;
	const char *tok;
	size_t tok_len;
	bool ok = true;
	char q[LOG_QUOTE_MAX], list[256];

	while (str_next_token(&v, &len, ", \t", &tok, &tok_len)) {
		unsigned index;
		if (!choice_find(p, tok, tok_len, &index)) {
			load_error(ld, p->name, "%s is not one of %s", quote(q, tok, tok_len),
			           choice_list(p, list, sizeof list));
			ok = false;
		} else {
			bits |= 1ULL << index;
		}
	}
	if (ok && bits == 0) {
		load_error(ld, p->name, "none given (use some of %s)", choice_list(p, list, sizeof list));
		ok = false;
	}
	if (ok)
		*(uint64_t *)field_at(ld->config, p->offset) = bits;
	return ok;
}

/* ---- certificates ---- */

/* readable_file - a path that can be opened for reading now (so `config check` finds a typo). */
static bool readable_file(struct config_load *ld, const struct config_param *p, const char *path, size_t len)
{
	char q[LOG_QUOTE_MAX];
	char buf[1025];

	if (ld->skip_files)
		return true;
	if (!str_copy_n(buf, sizeof buf, path, len)) {
		load_error(ld, p->name, "%s is longer than 1024 bytes", quote(q, path, len));
		return false;
	}
	FILE *f = fopen(buf, "r");
	if (f == NULL) {
		load_error(ld, p->name, "cannot read %s: %s", quote(q, path, len), strerror(errno));
		return false;
	}
	struct stat st;
	bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
	fclose(f);
	if (!regular)
		load_error(ld, p->name, "%s is not a file", quote(q, path, len));
	return regular;
}

/* parse_cert - "CERT_FILE KEY_FILE"; each occurrence appends one; empty: none. */
static bool parse_cert(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	const char *cert, *key, *extra, *rest = v;
	size_t cert_len, key_len, extra_len, rest_len = len;
	char q[LOG_QUOTE_MAX];

	if (len == 0)
		return true;
	if (!str_next_token(&rest, &rest_len, " \t", &cert, &cert_len) ||
	    !str_next_token(&rest, &rest_len, " \t", &key, &key_len) ||
	    str_next_token(&rest, &rest_len, " \t", &extra, &extra_len)) {
		load_error(ld, p->name, "%s is not CERT_FILE KEY_FILE", quote(q, v, len));
		return false;
	}
	bool ok = readable_file(ld, p, cert, cert_len);
	ok = readable_file(ld, p, key, key_len) && ok;
	if (!ok)
		return false;
	struct config *c = ld->config;
	c->tls_certs = xrealloc(c->tls_certs, (c->tls_cert_count + 1) * sizeof *c->tls_certs);
	c->tls_certs[c->tls_cert_count].cert_file = str_dup_n(cert, cert_len);
	c->tls_certs[c->tls_cert_count].key_file = str_dup_n(key, key_len);
	c->tls_cert_count++;
	return true;
}

/* equal_certs - same files in the same order (their contents are reread at every reload anyway). */
static bool equal_certs(const struct config_param *p, const struct config *a, const struct config *b)
{
	(void)p;
	if (a->tls_cert_count != b->tls_cert_count)
		return false;
	for (size_t i = 0; i < a->tls_cert_count; i++)
		if (strcmp(a->tls_certs[i].cert_file, b->tls_certs[i].cert_file) != 0 ||
		    strcmp(a->tls_certs[i].key_file, b->tls_certs[i].key_file) != 0)
			return false;
	return true;
}

static void release_certs(const struct config_param *p, struct config *config)
{
	(void)p;
	for (size_t i = 0; i < config->tls_cert_count; i++) {
		free(config->tls_certs[i].cert_file);
		free(config->tls_certs[i].key_file);
	}
	free(config->tls_certs);
	config->tls_certs = NULL;
	config->tls_cert_count = 0;
}

/* ---- networks ---- */

/* network_parse - "ADDR" or "ADDR/PREFIX", IPv4 mapped into IPv6; host bits must be zero. */
static bool network_parse(struct config_load *ld, const struct config_param *p, const char *s, size_t len,
                          struct config_network *out)
{
	char buf[INET6_ADDRSTRLEN + 8], q[LOG_QUOTE_MAX];
	const char *slash = memchr(s, '/', len);
	size_t addr_len = slash ? (size_t)(slash - s) : len;
	struct in_addr in4;
	struct in6_addr in6;
	uint64_t prefix;
	bool v4;

	memset(out, 0, sizeof *out);
	if (!str_copy_n(buf, sizeof buf, s, addr_len)) {
		load_error(ld, p->name, "%s is not an address or address/prefix", quote(q, s, len));
		return false;
	}
	if (inet_pton(AF_INET, buf, &in4) == 1) {
		v4 = true;
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, &in4, 4);
	} else if (inet_pton(AF_INET6, buf, &in6) == 1) {
		v4 = false;
		memcpy(out->addr, &in6, 16);
	} else {
		load_error(ld, p->name, "%s is not a numeric IPv4 or IPv6 address", quote(q, s, len));
		return false;
	}
	unsigned bits = v4 ? 32 : 128;
	prefix = bits;
	if (slash != NULL) {
		size_t plen = len - addr_len - 1;
		if (!all_digits(slash + 1, plen) || !str_to_u64(slash + 1, plen, &prefix) || prefix > bits) {
			load_error(ld, p->name, "%s: the prefix length must be 0..%u", quote(q, s, len), bits);
			return false;
		}
	}
	out->prefix = (unsigned)prefix + (v4 ? 96 : 0);
	for (unsigned bit = out->prefix; bit < 128; bit++) {
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			load_error(ld, p->name, "%s has bits set past its prefix length", quote(q, s, len));
			return false;
		}
	}
	return true;
}

static bool parse_networks(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	struct config_network *list = xcalloc(len / 2 + 1, sizeof *list);
	size_t count = 0;
	const char *tok;
	size_t tok_len;
	bool ok = true;

	while (str_next_token(&v, &len, ", \t", &tok, &tok_len)) {
		if (network_parse(ld, p, tok, tok_len, &list[count]))
			count++;
		else
			ok = false;
	}
	if (!ok) {
		free(list);
		return false;
	}
	release_networks(p, ld->config);
	*(struct config_network **)field_at(ld->config, p->offset) = list;
	*(size_t *)field_at(ld->config, p->count_offset) = count;
	return true;
}

static bool equal_networks(const struct config_param *p, const struct config *a, const struct config *b)
{
	size_t n = *(const size_t *)field_at_const(a, p->count_offset);
	if (n != *(const size_t *)field_at_const(b, p->count_offset))
		return false;
	const struct config_network *x = *(struct config_network *const *)field_at_const(a, p->offset);
	const struct config_network *y = *(struct config_network *const *)field_at_const(b, p->offset);
	return n == 0 || memcmp(x, y, n * sizeof *x) == 0;
}

static void release_networks(const struct config_param *p, struct config *config)
{
	struct config_network **list = field_at(config, p->offset);
	free(*list);
	*list = NULL;
	*(size_t *)field_at(config, p->count_offset) = 0;
}

static bool network_contains(const struct config_network *n, const unsigned char addr[16])
{
	unsigned full = n->prefix / 8, rest = n->prefix % 8;
	if (memcmp(n->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (n->addr[full] & mask) == (addr[full] & mask);
}

bool config_in_relay_networks(const struct config *config, const unsigned char addr[16])
{
	for (size_t i = 0; i < config->relay_network_count; i++)
		if (network_contains(&config->relay_networks[i], addr))
			return true;
	return false;
}

/* ---- computed defaults ---- */

static bool default_hostname(struct config_load *ld, char *buf, size_t size)
{
	if (gethostname(buf, size) != 0) {
		load_error(ld, "hostname", "cannot read the system host name: %s; set hostname", strerror(errno));
		return false;
	}
	buf[size - 1] = '\0';
	if (!smtp_domain_check(buf, strlen(buf), false, false)) {
		char q[LOG_QUOTE_MAX];
		load_error(ld, "hostname", "the system host name %s is not a valid domain name; set hostname",
		           quote(q, buf, strlen(buf)));
		return false;
	}
	return true;
}

/* default_postmaster - postmaster@ the first local domain (none if local_domains was refused). */
static bool default_postmaster(struct config_load *ld, char *buf, size_t size)
{
	const struct config *c = ld->config;
	if (c->local_domain_count == 0)
		return false;
	return str_format(buf, size, "postmaster@%s", c->local_domains[0]);
}

/* ---- routes ---- */

static bool route_value(struct config_load *ld, const struct config_param *p, const char *v, size_t len, bool bare_smtp,
                        bool maildir, struct config_route *out)
{
	char err[512];
	if (config_route_parse(v, len, bare_smtp, maildir, !ld->skip_files, out, err, sizeof err))
		return true;
	load_error(ld, p->name, "%s", err);
	return false;
}

/* parse_relay - smarthost: a route over SMTP, "smtp:" optional; empty: none (MX routing). */
static bool parse_relay(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	struct config_route *field = field_at(ld->config, p->offset);
	config_route_release(field);
	if (len == 0)
		return true;
	if (!route_value(ld, p, v, len, true, false, field))
		return false;
	if (field->kind == CONFIG_ROUTE_MX)
		config_route_release(field); /* "mx": the same as none */
	return true;
}

static bool parse_rate(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	if (!config_rate_parse(v, len, field_at(ld->config, p->offset))) {
		char q[LOG_QUOTE_MAX];
		load_error(ld, p->name, "%s is not a rate (use N/s, N/m, N/h or N/d, N up to 1000000, or 0)",
		           quote(q, v, len));
		return false;
	}
	return true;
}

static bool parse_local(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	struct config_route *field = field_at(ld->config, p->offset);
	config_route_release(field);
	return route_value(ld, p, v, len, false, true, field);
}

/* parse_transport - "DOMAIN ROUTE ..."; each occurrence appends one; empty: none. */
static bool parse_transport(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	const char *domain, *rest = v;
	size_t domain_len, rest_len = len;
	char q[LOG_QUOTE_MAX];
	struct config *c = ld->config;

	if (len == 0)
		return true;
	str_next_token(&rest, &rest_len, " \t", &domain, &domain_len);
	const char *name = domain[0] == '.' ? domain + 1 : domain;
	size_t name_len = domain[0] == '.' ? domain_len - 1 : domain_len;
	if (!domain_valid(ld, p, name, name_len))
		return false;
	char *lower = str_dup_n(domain, domain_len);
	str_lower(lower);
	for (size_t i = 0; i < c->transport_count; i++) {
		if (strcmp(c->transports[i].domain, lower) == 0) {
			load_error(ld, p->name, "%s has a transport already", quote(q, domain, domain_len));
			free(lower);
			return false;
		}
	}
	struct config_route route;
	if (!route_value(ld, p, rest, rest_len, false, false, &route)) {
		free(lower);
		return false;
	}
	route.domain = lower;
	route.line = ld->line;
	c->transports = xrealloc(c->transports, (c->transport_count + 1) * sizeof *c->transports);
	c->transports[c->transport_count++] = route;
	return true;
}

static bool equal_route(const struct config_param *p, const struct config *a, const struct config *b)
{
	return config_route_equal(field_at_const(a, p->offset), field_at_const(b, p->offset));
}

static void release_route(const struct config_param *p, struct config *config)
{
	config_route_release(field_at(config, p->offset));
}

static bool equal_transports(const struct config_param *p, const struct config *a, const struct config *b)
{
	(void)p;
	if (a->transport_count != b->transport_count)
		return false;
	for (size_t i = 0; i < a->transport_count; i++)
		if (!config_route_equal(&a->transports[i], &b->transports[i]))
			return false;
	return true;
}

bool config_routing_equal(const struct config *a, const struct config *b)
{
	return config_route_equal(&a->smarthost, &b->smarthost) && equal_transports(NULL, a, b);
}

static void release_transports(const struct config_param *p, struct config *config)
{
	(void)p;
	for (size_t i = 0; i < config->transport_count; i++)
		config_route_release(&config->transports[i]);
	free(config->transports);
	config->transports = NULL;
	config->transport_count = 0;
}

/* ---- replies ---- */

/* reply_status_ok - s[0..len) is an enhanced status code (RFC 3463 2: class "." subject "." detail, 1-3 digits
 * each) whose class is klass. */
static bool reply_status_ok(const char *s, size_t len, char klass)
{
	if (len < 5 || s[0] != klass || s[1] != '.')
		return false;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;
		while (i < len && is_digit(s[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return false;
		if (part == 0 && (i >= len || s[i++] != '.'))
			return false;
	}
	return i == len;
}

/* parse_reply - "CODE X.Y.Z TEXT": a 4xx or 5xx code (RFC 5321 4.2.1), a status of its class, printable text. */
static bool parse_reply(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	const char *code, *status, *rest = v;
	size_t code_len, status_len, rest_len = len;
	char q[LOG_QUOTE_MAX];

	if (!str_next_token(&rest, &rest_len, " \t", &code, &code_len) ||
	    !str_next_token(&rest, &rest_len, " \t", &status, &status_len)) {
		load_error(ld, p->name, "%s is not CODE X.Y.Z TEXT", quote(q, v, len));
		return false;
	}
	const char *text = trim(rest, &rest_len);
	if (code_len != 3 || (code[0] != '4' && code[0] != '5') || code[1] < '0' || code[1] > '5' ||
	    !is_digit(code[2])) {
		load_error(ld, p->name, "%s is not a 4xx or 5xx reply code", quote(q, code, code_len));
		return false;
	}
	if (!reply_status_ok(status, status_len, code[0])) {
		load_error(ld, p->name, "%s is not an enhanced status code %c.X.Y (RFC 3463) to go with %.3s",
		           quote(q, status, status_len), code[0], code);
		return false;
	}
	if (rest_len == 0 || rest_len > CONFIG_REPLY_TEXT_MAX) {
		load_error(ld, p->name, "the text after %.3s %.*s must be 1 to %d characters", code, (int)status_len,
		           status, CONFIG_REPLY_TEXT_MAX);
		return false;
	}
	for (size_t i = 0; i < rest_len; i++) {
		if (text[i] < 0x20 || text[i] > 0x7e) {
			load_error(ld, p->name, "%s: the text may hold only printable ASCII", quote(q, text, rest_len));
			return false;
		}
	}
	struct config_reply *reply = field_at(ld->config, p->offset);
	free(reply->text);
	reply->code = (unsigned)((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
	str_copy_n(reply->status, sizeof reply->status, status, status_len);
	reply->text = str_dup_n(text, rest_len);
	return true;
}

static bool equal_reply(const struct config_param *p, const struct config *a, const struct config *b)
{
	const struct config_reply *x = field_at_const(a, p->offset);
	const struct config_reply *y = field_at_const(b, p->offset);
	return x->code == y->code && strcmp(x->status, y->status) == 0 && strcmp(x->text, y->text) == 0;
}

static void release_reply(const struct config_param *p, struct config *config)
{
	struct config_reply *reply = field_at(config, p->offset);
	free(reply->text);
	reply->text = NULL;
}

/* ---- the loader ---- */

/* apply_value - run value v[0..len) of p through its type's parser. */
static void apply_value(struct config_load *ld, const struct config_param *p, const char *v, size_t len)
{
	bool ok;

	bool may_be_empty = ((p->type == CONFIG_STRING || p->type == CONFIG_PATH) && p->min == 0) ||
	                    p->type == CONFIG_CERT || p->type == CONFIG_NETWORKS || p->type == CONFIG_RELAY ||
	                    p->type == CONFIG_TRANSPORT;
	if (len == 0 && !may_be_empty) {
		load_error(ld, p->name, "no value (write %s = VALUE)", p->name);
		ok = false;
	} else {
		ok = types[p->type].parse(ld, p, v, len);
	}
	if (!ok)
		ld->bad[param_index(p)] = true;
}

static void report_unknown(struct config_load *ld, const char *name, size_t len)
{
	char shown[LOG_QUOTE_MAX];
	const char *guess = param_suggest(name, len);

	if (guess != NULL)
		load_error(ld, name_shown(shown, name, len), "unknown parameter (did you mean %s?)", guess);
	else
		load_error(ld, name_shown(shown, name, len), "unknown parameter");
}

static void report_no_equals(struct config_load *ld, const char *s, size_t len)
{
	const char *word;
	size_t word_len;
	char shown[LOG_QUOTE_MAX];

	str_next_token(&s, &len, " \t", &word, &word_len);
	load_error(ld, name_shown(shown, word, word_len), "missing \"=\" (write name = value)");
}

/* load_assignment - "name = value", s[0..len) trimmed and not a comment. */
static void load_assignment(struct config_load *ld, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	if (eq == NULL) {
		report_no_equals(ld, s, len);
		return;
	}
	size_t name_len = (size_t)(eq - s), value_len = len - name_len - 1;
	const char *name = trim(s, &name_len), *value = trim(eq + 1, &value_len);
	if (name_len == 0) {
		load_error(ld, NULL, "no parameter name before \"=\"");
		return;
	}
	const struct config_param *p = param_find(name, name_len);
	if (p == NULL) {
		report_unknown(ld, name, name_len);
		return;
	}
	unsigned *first = &ld->set_line[param_index(p)];
	if (*first != 0 && !p->repeats) {
		load_error(ld, p->name, "given twice (first on line %u)", *first);
		return;
	}
	if (*first == 0)
		*first = ld->line;
	apply_value(ld, p, value, value_len);
}

static void load_line(struct config_load *ld, const char *s, size_t len)
{
	if (memchr(s, '\r', len) != NULL) {
		load_error(ld, NULL, "carriage return in line (write the file with LF line endings)");
		return;
	}
	if (memchr(s, '\0', len) != NULL) {
		load_error(ld, NULL, "NUL byte in line");
		return;
	}
	s = trim(s, &len);
	if (len == 0 || s[0] == '#')
		return;
	load_assignment(ld, s, len);
}

enum line_status {
	LINE_OK,
	LINE_TOO_LONG,
	LINE_EOF,
};

/*
 * read_line - the next line, without its LF, into buf (size bytes with the
 * NUL). A longer line is read to its end and dropped: LINE_TOO_LONG.
 */
static enum line_status read_line(FILE *f, char *buf, size_t size, size_t *len)
{
	size_t n = 0;
	bool too_long = false;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (n < size - 1)
			buf[n++] = (char)c;
		else
			too_long = true;
	}
	if (c == EOF && n == 0)
		return LINE_EOF;
	buf[n] = '\0';
	*len = n;
	return too_long ? LINE_TOO_LONG : LINE_OK;
}

static void load_stream(struct config_load *ld, FILE *f)
{
	char buf[CONFIG_LINE_MAX + 1];
	size_t len;
	enum line_status status;

	while ((status = read_line(f, buf, sizeof buf, &len)) != LINE_EOF) {
		ld->line++;
		if (status == LINE_TOO_LONG)
			load_error(ld, NULL, "line longer than %d bytes", CONFIG_LINE_MAX);
		else
			load_line(ld, buf, len);
	}
	ld->line = 0;
}

static void load_file(struct config_load *ld)
{
	FILE *f = fopen(ld->file, "r");

	if (f == NULL) {
		load_error(ld, ld->file, "cannot open: %s", strerror(errno));
		return;
	}
	load_stream(ld, f);
	if (ferror(f))
		load_error(ld, ld->file, "cannot read: %s", strerror(errno));
	fclose(f);
}

/* load_defaults - every parameter the file did not give, from its default text. */
static void load_defaults(struct config_load *ld)
{
	char buf[SMTP_PATH_MAX + 1];

	for (size_t i = 0; i < PARAM_COUNT; i++) {
		const struct config_param *p = &params[i];
		const char *text = p->default_text;
		if (ld->set_line[i] != 0)
			continue;
		if (p->default_fn != NULL) {
			if (!p->default_fn(ld, buf, sizeof buf)) {
				ld->bad[i] = true;
				continue;
			}
			text = buf;
		}
		apply_value(ld, p, text, strlen(text));
	}
}

static bool usable(const struct config_load *ld, const char *name)
{
	return !ld->bad[param_index(param_get(name))];
}

static unsigned given_on(const struct config_load *ld, const char *name)
{
	return ld->set_line[param_index(param_get(name))];
}

/* check_retry - the backoff cannot start above its own ceiling. */
static void check_retry(struct config_load *ld)
{
	const struct config *c = ld->config;
	char initial[32], max[32];

	if (!usable(ld, "retry_initial") || !usable(ld, "retry_max") || c->retry_max >= c->retry_initial)
		return;
	format_number(initial, sizeof initial, CONFIG_DURATION, c->retry_initial);
	format_number(max, sizeof max, CONFIG_DURATION, c->retry_max);
	if (given_on(ld, "retry_max") != 0) {
		ld->line = given_on(ld, "retry_max");
		load_error(ld, "retry_max", "%s is less than retry_initial (%s)", max, initial);
	} else {
		ld->line = given_on(ld, "retry_initial");
		load_error(ld, "retry_initial", "%s is more than retry_max (%s)", initial, max);
	}
	ld->line = 0;
}

/* check_postmaster - its mailbox is created at start, so it must be in a local domain. */
static void check_postmaster(struct config_load *ld)
{
	const struct config *c = ld->config;
	char q[LOG_QUOTE_MAX], d[LOG_QUOTE_MAX];

	if (!usable(ld, "postmaster") || !usable(ld, "local_domains") || c->postmaster == NULL)
		return;
	const char *domain = strchr(c->postmaster, '@') + 1;
	if (config_is_local_domain(c, domain, strlen(domain)))
		return;
	ld->line = given_on(ld, "postmaster");
	load_error(ld, "postmaster", "%s: %s is not one of local_domains",
	           quote(q, c->postmaster, strlen(c->postmaster)), quote(d, domain, strlen(domain)));
	ld->line = 0;
}

/* check_transports - a local domain's mail goes by local_delivery, so a transport for one would never be used. */
static void check_transports(struct config_load *ld)
{
	const struct config *c = ld->config;
	char q[LOG_QUOTE_MAX];

	if (!usable(ld, "transport") || !usable(ld, "local_domains"))
		return;
	for (size_t i = 0; i < c->transport_count; i++) {
		const char *domain = c->transports[i].domain;
		if (domain[0] == '.' || !config_is_local_domain(c, domain, strlen(domain)))
			continue;
		ld->line = c->transports[i].line;
		load_error(ld, "transport", "%s is one of local_domains: its mail goes by local_delivery",
		           quote(q, domain, strlen(domain)));
	}
	ld->line = 0;
}

static const struct config_route default_mx = {.kind = CONFIG_ROUTE_MX, .tls = CONFIG_TLS_MAY, .text = "mx"};

const struct config_route *config_route_for(const struct config *config, const char *domain, char *key, size_t keysize)
{
	const struct config_route *route = config_route_match(config->transports, config->transport_count, domain);
	if (route) {
		if (!str_format(key, keysize, "transport:%s", route->domain))
			key[0] = '\0'; /* cannot happen: domains are shorter */
		return route;
	}
	if (config->smarthost.text) {
		str_copy(key, keysize, "smarthost");
		return &config->smarthost;
	}
	key[0] = '\0';
	return &default_mx;
}

const struct config_route *config_route_by_key(const struct config *config, const char *key)
{
	if (!key || !key[0])
		return &default_mx;
	if (strcmp(key, "smarthost") == 0)
		return config->smarthost.text ? &config->smarthost : NULL;
	if (strncmp(key, "transport:", 10) != 0)
		return NULL;
	for (size_t i = 0; i < config->transport_count; i++)
		if (strcmp(config->transports[i].domain, key + 10) == 0)
			return &config->transports[i];
	return NULL;
}

/* config_load_with - the loader behind config_load and config_load_client. */
static struct config *config_load_with(const char *path, FILE *errors, bool skip_files)
{
	struct config_load ld = {
	        .config = xcalloc(1, sizeof *ld.config),
	        .file = path,
	        .errors = errors,
	        .set_line = xcalloc(PARAM_COUNT, sizeof *ld.set_line),
	        .bad = xcalloc(PARAM_COUNT, sizeof *ld.bad),
	        .skip_files = skip_files,
	};

	ld.config->refs = 1;
	if (path != NULL) {
		ld.config->path = str_dup(path);
		load_file(&ld);
	}
	load_defaults(&ld);
	check_retry(&ld);
	check_postmaster(&ld);
	check_transports(&ld);
	free(ld.set_line);
	free(ld.bad);
	free(ld.listener_lines);
	if (ld.error_count > 0) {
		config_unref(ld.config);
		return NULL;
	}
	return ld.config;
}

struct config *config_load(const char *path, FILE *errors)
{
	return config_load_with(path, errors, false);
}

struct config *config_load_client(const char *path, FILE *errors)
{
	return config_load_with(path, errors, true);
}

int config_sendmail_socket(const struct config *config, char *buf, size_t size)
{
	buf[0] = '\0';
	if (strcmp(config->sendmail_socket, "none") == 0)
		return 0;
	bool fits = config->sendmail_socket[0] ? str_copy(buf, size, config->sendmail_socket)
	                                       : str_format(buf, size, "%s/sendmail.sock", config->data_dir);
	return fits ? 1 : -1;
}

struct config *config_ref(struct config *config)
{
	/* Atomic: the store thread holds a configuration too (its routes). */
	int before = __atomic_fetch_add(&config->refs, 1, __ATOMIC_RELAXED);
	if (before <= 0)
		fatal("config_ref on a freed config (refs %d)", before);
	return config;
}

void config_unref(struct config *config)
{
	if (config == NULL)
		return;
	int after = __atomic_sub_fetch(&config->refs, 1, __ATOMIC_ACQ_REL);
	if (after < 0)
		fatal("config_unref on a freed config (refs %d)", after + 1);
	if (after > 0)
		return;
	for (size_t i = 0; i < PARAM_COUNT; i++)
		if (types[params[i].type].release != NULL)
			types[params[i].type].release(&params[i], config);
	free(config->path);
	free(config);
}

bool config_is_local_domain(const struct config *config, const char *domain, size_t len)
{
	for (size_t i = 0; i < config->local_domain_count; i++)
		if (str_ieq(domain, len, config->local_domains[i]))
			return true;
	return false;
}

bool config_needs_restart(const struct config *old_config, const struct config *new_config, char *buf, size_t size)
{
	size_t used = 0;
	bool any = false;

	if (buf != NULL && size > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < PARAM_COUNT; i++) {
		const struct config_param *p = &params[i];
		if (!p->restart || types[p->type].equal(p, old_config, new_config))
			continue;
		if (buf != NULL && used < size) {
			str_format(buf + used, size - used, "%s%s", any ? "," : "", p->name);
			used += strlen(buf + used);
		}
		any = true;
	}
	return any;
}

/* ---- the defaults listing ---- */

/* param_limits - "1k..2G", "at most 32 bytes" or "" for p's type. */
static const char *param_limits(char *buf, size_t size, const struct config_param *p)
{
	switch (p->type) {
	case CONFIG_SIZE:
	case CONFIG_COUNT:
	case CONFIG_DURATION:
		return format_range(buf, size, p);
	case CONFIG_STRING:
	case CONFIG_PATH:
		str_format(buf, size, "at most %llu bytes", (unsigned long long)p->max);
		return buf;
	case CONFIG_CHOICE:
	case CONFIG_CHOICES:
		return choice_list(p, buf, size);
	case CONFIG_REPLY:
		str_copy(buf, size, "4xx or 5xx");
		return buf;
	default:
		str_copy(buf, size, "");
		return buf;
	}
}

static const char plain_intro[] = "# tern configuration: every parameter with its built-in default, as\n"
                                  "# `tern config defaults` prints it. Without -c, tern uses exactly these.\n"
                                  "#\n"
                                  "# One \"name = value\" per line; a line starting with # is a comment.\n"
                                  "# Sizes take k, M or G (1024-based); durations s, m, h or d (bare: seconds).\n"
                                  "# listen and tls_certificate may repeat: the first in a file replaces the\n"
                                  "# default list, later ones add to it. SIGHUP reloads the file; parameters marked\n"
                                  "# \"restart\" only take effect when tern is restarted.\n";

static void print_plain_param(FILE *out, const struct config_param *p)
{
	char limits[64];

	param_limits(limits, sizeof limits, p);
	fprintf(out, "\n# %s (%s%s%s%s%s)\n# %s\n", p->name, types[p->type].name, limits[0] ? ", " : "", limits,
	        p->repeats ? ", may repeat" : "", p->restart ? ", restart" : "", p->doc);
	if (p->default_fn != NULL)
		fprintf(out, "# %s = %s\n", p->name, p->default_text);
	else if (p->default_text[0] == '\0')
		fprintf(out, "%s =\n", p->name);
	else
		fprintf(out, "%s = %s\n", p->name, p->default_text);
}

static const char markdown_intro[] =
        "# Configuration\n"
        "\n"
        "<!-- Generated by `tern config defaults --markdown` from the parameter table\n"
        "     in src/config/config.c (`make docs`). Do not edit by hand. -->\n"
        "\n"
        "tern reads one file, named with `-c FILE`. Without `-c` it runs on the\n"
        "built-in defaults below, the development default: loopback only, data in\n"
        "`./var`, local domain `localhost`. `tern config check -c FILE` checks a file\n"
        "without starting the server; `tern config defaults` prints the defaults as a\n"
        "commented file (etc/tern.conf.dev). etc/tern.conf.example is a production\n"
        "example.\n"
        "\n"
        "## Syntax\n"
        "\n"
        "- One `name = value` per line. Blanks around the name and the value are ignored.\n"
        "- A line whose first non-blank character is `#` is a comment; blank lines are\n"
        "  ignored. There are no comments after a value.\n"
        "- Lines end in LF. A carriage return anywhere, a NUL byte, or a line longer\n"
        "  than 4096 bytes is an error.\n"
        "- Each parameter may be given once, except `listen` and `tls_certificate`: the\n"
        "  first one in a file replaces the default list and later ones add to it. Two\n"
        "  listeners on the same address, or on the same port of the same family where\n"
        "  one is the wildcard address, are an error.\n"
        "- Values may not be empty, except `recipient_delimiter`, `user`,\n"
        "  `tls_certificate` and `relay_networks`.\n"
        "- `local_domains` is a list separated by commas or spaces; domains are\n"
        "  lower-cased, and `postmaster` must be in one of them.\n"
        "- Every problem in the file is reported, one line each, as\n"
        "  `FILE:LINE: PARAMETER: message`, for example\n"
        "  `tern.conf:7: max_message_size: \"12Q\" is not a size (use a number with k, M or G)`;\n"
        "  then tern exits 1. An unknown name close to a known one gets a suggestion.\n"
        "\n"
        "## Types and units\n"
        "\n";

static const char markdown_reload[] = "\n"
                                      "## Reload\n"
                                      "\n"
                                      "SIGHUP makes tern read the file again. A file with errors is refused and the\n"
                                      "running configuration stays. Sessions already open keep the configuration they\n"
                                      "started with; new sessions get the new one. Parameters marked *restart* (the\n"
                                      "listeners, the data directory, the user and the delivery threads) only change\n"
                                      "when tern is restarted; tern logs which of them differ.\n";

/* md_text - text for a table cell: "|" would end the cell, "<" start a tag, "`*_" markup. */
static void md_text(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (strchr("|<>`*_", *s) != NULL)
			fputc('\\', out);
		fputc(*s, out);
	}
}

static void print_markdown_param(FILE *out, const struct config_param *p)
{
	char limits[64];

	fprintf(out, "| `%s` | %s | ", p->name, types[p->type].name);
	if (p->default_fn != NULL)
		md_text(out, p->default_text);
	else if (p->default_text[0] == '\0')
		fputs("(empty)", out);
	else {
		fputc('`', out);
		md_text(out, p->default_text);
		fputc('`', out);
	}
	fprintf(out, " | %s | %s | ", param_limits(limits, sizeof limits, p), p->restart ? "restart" : "reload");
	md_text(out, p->doc);
	if (p->type == CONFIG_STRING) {
		fputs(" (", out);
		md_text(out, p->chars_doc);
		fputc(')', out);
	}
	fputs(" |\n", out);
}

static void print_markdown(FILE *out)
{
	fputs(markdown_intro, out);
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
		fprintf(out, "- **%s**: %s.\n", types[t].name, types[t].doc);
	fputs("\nValues outside a parameter's range are errors.\n\n## Parameters\n\n", out);
	fputs("| Parameter | Type | Default | Range | Change | Meaning |\n", out);
	fputs("|---|---|---|---|---|---|\n", out);
	for (size_t i = 0; i < PARAM_COUNT; i++)
		print_markdown_param(out, &params[i]);
	fputs(markdown_reload, out);
}

void config_print_defaults(FILE *out, bool markdown)
{
	if (markdown) {
		print_markdown(out);
		return;
	}
	fputs(plain_intro, out);
	for (size_t i = 0; i < PARAM_COUNT; i++)
		print_plain_param(out, &params[i]);
}
