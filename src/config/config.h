/*
 * config.h - tern's configuration: one parameter table drives the parser,
 * `tern config check`, `tern config defaults` and docs/CONFIG.md.
 *
 * A struct config is immutable once loaded and reference counted: a session
 * keeps the configuration it started with, and SIGHUP swaps in a new one.
 * Only the loop thread takes and drops references.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config/config_route.h"
#include "util/util_log.h"

enum listener_kind {
	LISTENER_MX,          /* port 25: mail for local domains, STARTTLS offered, no AUTH */
	LISTENER_SUBMISSION,  /* port 587: STARTTLS, then AUTH before MAIL (RFC 6409) */
	LISTENER_SUBMISSIONS, /* port 465: implicit TLS (RFC 8314), then AUTH before MAIL */
	LISTENER_LOCAL,       /* sendmail_socket: local users, known by their uid; no TLS, no AUTH */
};

/* Longest path of a UNIX-domain socket: sun_path holds 108 bytes with the NUL (unix(7)). */
#define CONFIG_SOCKET_PATH_MAX 107

/* A certificate chain file and its private key (tls_certificate). */
struct config_cert {
	char *cert_file;
	char *key_file;
};

/* An address block (relay_networks): IPv4 as IPv4-mapped IPv6, prefix counted on 128 bits. */
struct config_network {
	unsigned char addr[16];
	unsigned prefix;
};

/* tls_min_version, in the order of its choices. */
enum config_tls_version { CONFIG_TLS_1_2, CONFIG_TLS_1_3 };

/* auth_without_tls, in the order of its choices. */
enum config_auth_tls { CONFIG_AUTH_TLS_ALWAYS, CONFIG_AUTH_TLS_EXCEPT_LOOPBACK };

/* Bits of auth_mechanisms: the same order as enum sasl_mech. */
#define CONFIG_MECH_PLAIN         (1u << 0)
#define CONFIG_MECH_LOGIN         (1u << 1)
#define CONFIG_MECH_CRAM_MD5      (1u << 2)
#define CONFIG_MECH_SCRAM_SHA_256 (1u << 3)

/* A reply tern sends in place of one of its own (suppression_reply): "CODE X.Y.Z TEXT". */
struct config_reply {
	unsigned code;   /* 4xx or 5xx (RFC 5321 4.2) */
	char status[12]; /* enhanced status code of the same class (RFC 3463) */
	char *text;      /* printable ASCII */
};

struct config_listener {
	char text[80];                /* "127.0.0.1:2525", as written, for logs */
	struct sockaddr_storage addr; /* parsed with getaddrinfo(AI_NUMERICHOST) */
	socklen_t addr_len;
	enum listener_kind kind;
};

struct config {
	int refs;
	char *path; /* the file it came from, or NULL for the built-in defaults */

	char *hostname;
	char *data_dir;
	struct config_listener *listeners;
	size_t listener_count;
	char *sendmail_socket; /* "": DATA_DIR/sendmail.sock; "none": off (config_sendmail_socket) */
	char **local_domains;  /* lower-cased */
	size_t local_domain_count;
	char *postmaster;          /* lower-cased address */
	char *recipient_delimiter; /* "" when off */

	uint64_t max_message_size; /* bytes */
	uint64_t max_recipients;
	uint64_t max_errors;
	uint64_t max_connections;
	uint64_t max_connections_per_ip;
	uint64_t command_timeout; /* seconds (all durations) */
	uint64_t data_timeout;
	uint64_t session_timeout;
	uint64_t max_hops;
	enum log_level log_level;
	char *user; /* "" when not set */
	uint64_t delivery_workers;
	uint64_t retry_initial;
	uint64_t retry_max;
	uint64_t max_queue_lifetime;
	uint64_t delay_warning;
	uint64_t shutdown_timeout;
	uint64_t bounce_retention; /* 0: bounced recipients stay until deleted */
	uint64_t queue_min_free;   /* bytes; 0: MAIL is not refused for lack of space */

	/* TLS */
	struct config_cert *tls_certs; /* none: a self-signed one in data_dir/tls */
	size_t tls_cert_count;
	unsigned tls_min_version; /* enum config_tls_version */

	/* AUTH and relaying */
	uint64_t auth_mechanisms;  /* CONFIG_MECH_* bits */
	unsigned auth_without_tls; /* enum config_auth_tls */
	struct config_network *relay_networks;
	size_t relay_network_count;
	uint64_t auth_fail_delay;
	uint64_t auth_fail_limit;             /* per client address and user name */
	uint64_t auth_fail_limit_per_address; /* per client address, whatever the user */
	uint64_t auth_fail_window;
	uint64_t auth_lockout;
	uint64_t auth_cache_ttl;
	uint64_t user_message_rate; /* per hour; 0: no limit */
	uint64_t user_recipient_rate;
	uint64_t ip_message_rate;
	uint64_t ip_recipient_rate;

	/* The suppression list */
	unsigned suppression;     /* 0 no, 1 yes */
	uint64_t suppression_ttl; /* 0: until deleted */
	struct config_reply suppression_reply;

	/* Remote delivery */
	char *dns_resolver; /* "system", "recursive", or a forwarder "ADDRESS" / "ADDRESS@PORT" */
	uint64_t remote_port;
	uint64_t remote_max_connections;
	uint64_t remote_max_per_destination;
	uint64_t remote_connect_timeout;
	uint64_t remote_command_timeout;
	uint64_t remote_data_timeout;
	uint64_t remote_idle_timeout;
	uint64_t remote_destination_ttl;  /* an unused destination is forgotten after this */
	uint64_t remote_max_destinations; /* destinations known at once */
	uint64_t remote_messages_per_connection;
	uint64_t remote_rate_interval_us; /* remote_rate_per_destination: least time between two messages; 0: none */
	struct config_route smarthost;    /* text NULL: none */
	struct config_route *transports;
	size_t transport_count;
	struct config_route local_delivery;
};

/*
 * config_load - read path (NULL: the built-in defaults only) into a new
 * config with refs = 1. On error returns NULL after writing one line per
 * problem to errors, each "FILE:LINE: PARAM: message" (FILE:LINE omitted
 * for problems that belong to no line, e.g. "postmaster: ..."). All problems
 * in the file are reported, not only the first.
 */
struct config *config_load(const char *path, FILE *errors);

/*
 * config_load_client - config_load for commands any local user runs (tern
 * sendmail): the files the configuration names (tls_certificate, the
 * auth= credentials of smarthost and transport) are not opened, since a
 * key or password only root may read is no error for them, and no
 * business of theirs (a route's auth_user and auth_password stay NULL).
 */
struct config *config_load_client(const char *path, FILE *errors);

/*
 * config_sendmail_socket - the path of the local submission socket into
 * buf[0..size): sendmail_socket, or DATA_DIR/sendmail.sock when that is
 * empty. Returns 1, 0 when sendmail_socket is "none" (no socket), or -1
 * when the path does not fit (a default made from a long data_dir).
 */
int config_sendmail_socket(const struct config *config, char *buf, size_t size);

struct config *config_ref(struct config *config);
void config_unref(struct config *config);

/* config_is_local_domain - domain[0..len) is one of local_domains (case-insensitive). */
bool config_is_local_domain(const struct config *config, const char *domain, size_t len);

/*
 * config_route_for - where mail for domain (lower case, not local) goes:
 * its transport line, else smarthost, else its MX hosts. key (keysize
 * bytes) gets the rule that decided, for config_route_by_key:
 * "transport:DOMAIN" (as the line wrote its domain), "smarthost", or ""
 * for the MX hosts by default.
 */
const struct config_route *config_route_for(const struct config *config, const char *domain, char *key, size_t keysize);

/* config_routing_equal - smarthost and transport are the same in a and b (routes decided by one hold in the other). */
bool config_routing_equal(const struct config *a, const struct config *b);

/* config_route_by_key - the route of the rule key names (config_route_for's), or NULL if config has none now. */
const struct config_route *config_route_by_key(const struct config *config, const char *key);

/* config_duration_parse - "90s", "30m", "4h", "2d" or bare seconds, as durations are written in the file. */
bool config_duration_parse(const char *s, size_t len, uint64_t *seconds);

/* config_network_contains - the 16-byte address (IPv4 mapped) is in one of relay_networks. */
bool config_in_relay_networks(const struct config *config, const unsigned char addr[16]);

/*
 * config_print_defaults - every parameter with its default and its one-line
 * doc: as a commented config file, or (markdown) as the docs/CONFIG.md page.
 */
void config_print_defaults(FILE *out, bool markdown);

/*
 * config_needs_restart - names (comma separated, into buf) of parameters
 * that differ between old and new but only take effect at a restart
 * (listen, data_dir, user, delivery_workers). Returns true if any.
 */
bool config_needs_restart(const struct config *old_config, const struct config *new_config, char *buf, size_t size);

#endif
