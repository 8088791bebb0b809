/*
 * tls.h - TLS (RFC 8446, RFC 5246) on OpenSSL 3: the server's contexts
 * made from the configured certificates, SNI, the self-signed certificate
 * of a fresh installation, and the client's context for outbound mail.
 * Connections use them through net/net_conn.h.
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

/*
 * The client side: one context for every outbound connection.
 * Opportunistic TLS (RFC 7435): encrypt when offered, without refusing a
 * certificate it cannot verify.
 */
struct tls_client;
struct tls_client *tls_client_new(char *err, size_t errlen);
void tls_client_free(struct tls_client *client);

/*
 * tls_client_ssl - a new SSL for one outbound connection to host, in
 * connect mode: the one place a client SSL is made. host is sent as SNI
 * unless it is an address literal (RFC 6066 3).
 */
struct ssl_st *tls_client_ssl(struct tls_client *client, const char *host);

/* tls_client_verify_result - what checking the peer's certificate found: "ok" or OpenSSL's reason. */
const char *tls_client_verify_result(struct ssl_st *ssl);

/* tls_describe - "TLSv1.3" and "TLS_AES_256_GCM_SHA384" of an established connection. */
void tls_describe(struct ssl_st *ssl, const char **version, const char **cipher);

/*
 * tls_close_notify - send the close_notify alert (RFC 8446 6.1) on an
 * established connection, without waiting for the peer's: best effort on
 * a non-blocking socket, nothing if the handshake never finished or the
 * connection already failed. Clears the error queue.
 */
void tls_close_notify(struct ssl_st *ssl);

/* tls_error_text - the first queued OpenSSL error as text (and clear the queue). */
const char *tls_error_text(char *buf, size_t size);

#endif
