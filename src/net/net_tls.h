/*
 * net_tls.h - TLS (RFC 8446, RFC 5246) on OpenSSL 3. The server side: the
 * contexts made from the configured certificates, SNI, and the self-signed
 * certificate of a fresh installation. The client side: one context that
 * checks nothing (opportunistic TLS, RFC 7435) and verifying ones (the
 * system's CA store, or a CA file of a route's), and the per-connection SSL
 * with SNI and the name the peer's certificate must carry. Connections use
 * them through net/net_conn.h.
 *
 * A struct tls_server is immutable once made and reference counted: each
 * session that uses it holds a reference for as long as its SSL lives, so a
 * reload (SIGHUP) can swap in a new one while older sessions finish on the
 * old. Only the loop thread takes and drops references.
 */
#ifndef TERN_NET_TLS_H
#define TERN_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* OpenSSL's SSL, without its headers: only net/ uses OpenSSL. */
struct ssl_st;
struct tls_server;

/* One certificate chain file (the server's own first) and its private key file. */
struct tls_cert_files {
	const char *cert_file;
	const char *key_file;
};

/*
 * tls_server_new - a context per certificate. The first is the default;
 * the others are chosen when the client's SNI name matches one of their
 * DNS names (X509_check_host, wildcards included). min_tls13: refuse
 * TLS 1.2. NULL on error, with the file and OpenSSL's reason in err.
 */
struct tls_server *tls_server_new(const struct tls_cert_files *certs, size_t count, bool min_tls13, char *err,
                                  size_t errlen);
struct tls_server *tls_server_ref(struct tls_server *server);
void tls_server_unref(struct tls_server *server);

/* tls_server_ssl - a new SSL for one connection, in accept mode. */
struct ssl_st *tls_server_ssl(struct tls_server *server);

/*
 * tls_selfsigned_ensure - the paths of DIR/selfsigned.crt and .key,
 * making them first if they are not there: an ECDSA P-256 key and a
 * certificate for hostname, localhost, 127.0.0.1 and ::1. The key file is
 * written mode 0600, in a temporary file renamed into place.
 */
bool tls_selfsigned_ensure(const char *dir, const char *hostname, char *cert_path, char *key_path, size_t path_size,
                           char *err, size_t errlen);

/* tls_describe - "TLSv1.3" and "TLS_AES_256_GCM_SHA384" of an established connection. */
void tls_describe(struct ssl_st *ssl, const char **version, const char **cipher);

/*
 * tls_close_notify - send the close_notify alert (RFC 8446 6.1) on an
 * established connection, without waiting for the peer's: best effort on
 * a non-blocking socket, nothing if the handshake never finished or the
 * connection already failed. Clears the error queue.
 */
void tls_close_notify(struct ssl_st *ssl);

/*
 * A struct tls_client holds the client contexts one configuration needs,
 * made when the configuration is loaded, never per connection: the
 * unverified one, the one that trusts the system's CA store (OpenSSL's
 * default paths), and one per CA file a route names. Reference counted
 * like tls_server: a delivery keeps the set of the configuration it
 * started with. Only the loop thread takes and drops references.
 */
struct tls_client;

/* tls_client_new - the unverified context and, if system_store, the one trusting the system's CAs. */
struct tls_client *tls_client_new(bool system_store, char *err, size_t errlen);

/* tls_client_add_ca - a verifying context trusting the CAs in ca_file (PEM), made once per file. */
bool tls_client_add_ca(struct tls_client *client, const char *ca_file, char *err, size_t errlen);

struct tls_client *tls_client_ref(struct tls_client *client);
void tls_client_unref(struct tls_client *client);

/*
 * tls_client_ssl - a new SSL for one connection, in connect mode. host is
 * the name the route names (a host name, or an address): SNI carries it
 * when it is a name (RFC 6066 3). verify: the handshake fails unless the
 * chain leads to a trusted CA (ca_file's, or the system's when NULL) and
 * the certificate is for host (RFC 6125: DNS names, no partial wildcards;
 * an address must be one of its IP addresses). NULL with why if the
 * context it needs was not made.
 */
struct ssl_st *tls_client_ssl(struct tls_client *client, bool verify, const char *ca_file, const char *host,
                              char *why, size_t why_size);

/*
 * tls_client_refused - after a handshake on a verifying SSL (failed or
 * not): true, with OpenSSL's reason in why ("hostname mismatch",
 * "self-signed certificate", ...), if the peer's certificate was not
 * accepted. Belt and braces on success: no certificate at all is refused.
 */
bool tls_client_refused(struct ssl_st *ssl, char *why, size_t why_size);

/* tls_error_text - the first queued OpenSSL error as text (and clear the queue). */
const char *tls_error_text(char *buf, size_t size);

#endif
