/*
 * net_tls.c - server TLS contexts: certificates, SNI, protocol floor, and the
 * self-signed certificate of the development default; client contexts for
 * outbound delivery, unverified (opportunistic) or verifying.
 *
 * Choices: TLS 1.2 at least (RFC 8996 retired 1.0 and 1.1); for TLS 1.2
 * only ECDHE with AEAD ciphers, so every session has forward secrecy; TLS
 * 1.3 suites are OpenSSL's defaults. No renegotiation, no compression
 * (CRIME). Idle connections give their read and write buffers back
 * (SSL_MODE_RELEASE_BUFFERS): that is most of a TLS session's memory, and
 * mail servers hold many idle ones.
 */
#include "net/net_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net_dns.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* A self-signed certificate is for development: a little over two years, the most browsers accept. */
#define SELFSIGNED_DAYS 825

struct tls_server {
	int refs;
	SSL_CTX **ctxs; /* ctxs[0] is the default */
	size_t count;
};

const char *tls_error_text(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		str_copy(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* sni_select - pick the context whose certificate names the requested server. */
static int sni_select(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *server = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (size_t i = 1; i < server->count; i++) {
		X509 *cert = SSL_CTX_get0_certificate(server->ctxs[i]);
		if (cert && X509_check_host(cert, name, strlen(name), 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, server->ctxs[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	/* No match: go on with the default certificate, as other servers do. */
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_new(const struct tls_cert_files *files, bool min_tls13, char *err, size_t errlen)
{
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		str_format(err, errlen, "cannot make a TLS context: %s", tls_error_text(why, sizeof why));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, min_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Sessions resume across connections with tickets; the id context
	 * keeps them to this server. */
	static const unsigned char sid_ctx[] = "tern";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	/* One TLS 1.3 ticket, not OpenSSL's two: a mail client reconnects to one server. */
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		str_format(err, errlen, "cannot set the cipher list: %s", tls_error_text(why, sizeof why));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, files->cert_file) != 1) {
		str_format(err, errlen, "%s: cannot load the certificate: %s", files->cert_file,
		           tls_error_text(why, sizeof why));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, files->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		str_format(err, errlen, "%s: cannot load the key, or it does not match %s: %s", files->key_file,
		           files->cert_file, tls_error_text(why, sizeof why));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_server *tls_server_new(const struct tls_cert_files *certs, size_t count, bool min_tls13, char *err,
                                  size_t errlen)
{
	if (count == 0) {
		str_copy(err, errlen, "no certificate");
		return NULL;
	}
	struct tls_server *server = xcalloc(1, sizeof *server);
	server->refs = 1;
	server->ctxs = xcalloc(count, sizeof *server->ctxs);
	for (size_t i = 0; i < count; i++) {
		server->ctxs[i] = ctx_new(&certs[i], min_tls13, err, errlen);
		if (!server->ctxs[i]) {
			tls_server_unref(server);
			return NULL;
		}
		server->count++;
	}
	if (count > 1) {
		SSL_CTX_set_tlsext_servername_callback(server->ctxs[0], sni_select);
		SSL_CTX_set_tlsext_servername_arg(server->ctxs[0], server);
	}
	return server;
}

struct tls_server *tls_server_ref(struct tls_server *server)
{
	server->refs++;
	return server;
}

void tls_server_unref(struct tls_server *server)
{
	if (!server || --server->refs > 0)
		return;
	for (size_t i = 0; i < server->count; i++)
		SSL_CTX_free(server->ctxs[i]);
	free(server->ctxs);
	free(server);
}

SSL *tls_server_ssl(struct tls_server *server)
{
	SSL *ssl = SSL_new(server->ctxs[0]);
	if (!ssl)
		fatal("SSL_new failed");
	return ssl;
}

void tls_describe(SSL *ssl, const char **version, const char **cipher)
{
	*version = SSL_get_version(ssl);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	*cipher = c ? SSL_CIPHER_get_name(c) : "none";
}

void tls_close_notify(SSL *ssl)
{
	/* After a fatal alert or in the middle of a handshake there is no
	 * session to close, and OpenSSL says SSL_shutdown must not be called. */
	if (!SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return;
	/* 0: sent, the peer's has not come (we do not wait for it); -1 with
	 * WANT_WRITE: the socket is full, and a client that reads nothing
	 * would not see it anyway. */
	if (SSL_shutdown(ssl) < 0)
		ERR_clear_error();
}

/* ---- The client side ---- */

struct tls_client_ca {
	char *file;
	SSL_CTX *ctx;
};

struct tls_client {
	int refs;
	SSL_CTX *plain;  /* checks nothing: opportunistic TLS (RFC 7435) */
	SSL_CTX *system; /* trusts the system's CA store; NULL if no route needs it */
	struct tls_client_ca *cas;
	size_t ca_count;
};

/*
 * client_ctx_new - TLS 1.2 at least; verify: the handshake fails on a
 * certificate that does not verify (SSL_VERIFY_PEER), so nothing is ever
 * written to such a peer. Trust comes from ca_file, else the system's
 * store.
 */
static SSL_CTX *client_ctx_new(bool verify, const char *ca_file, char *err, size_t errlen)
{
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		str_format(err, errlen, "cannot make a client TLS context: %s", tls_error_text(why, sizeof why));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (!verify)
		return ctx;
	int loaded =
	        ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
	if (loaded != 1) {
		str_format(err, errlen, "%s: cannot load the CA certificates: %s",
		           ca_file ? ca_file : "system CA store", tls_error_text(why, sizeof why));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_client *tls_client_new(bool system_store, char *err, size_t errlen)
{
	struct tls_client *client = xcalloc(1, sizeof *client);
	client->refs = 1;
	client->plain = client_ctx_new(false, NULL, err, errlen);
	if (client->plain && system_store)
		client->system = client_ctx_new(true, NULL, err, errlen);
	if (!client->plain || (system_store && !client->system)) {
		tls_client_unref(client);
		return NULL;
	}
	return client;
}

static SSL_CTX *client_ca_find(const struct tls_client *client, const char *ca_file)
{
	for (size_t i = 0; i < client->ca_count; i++)
		if (strcmp(client->cas[i].file, ca_file) == 0)
			return client->cas[i].ctx;
	return NULL;
}

bool tls_client_add_ca(struct tls_client *client, const char *ca_file, char *err, size_t errlen)
{
	if (client_ca_find(client, ca_file))
		return true;
	SSL_CTX *ctx = client_ctx_new(true, ca_file, err, errlen);
	if (!ctx)
		return false;
	client->cas = xrealloc(client->cas, (client->ca_count + 1) * sizeof *client->cas);
	client->cas[client->ca_count].file = str_dup(ca_file);
	client->cas[client->ca_count].ctx = ctx;
	client->ca_count++;
	return true;
}

struct tls_client *tls_client_ref(struct tls_client *client)
{
	client->refs++;
	return client;
}

void tls_client_unref(struct tls_client *client)
{
	if (!client || --client->refs > 0)
		return;
	SSL_CTX_free(client->plain);
	SSL_CTX_free(client->system);
	for (size_t i = 0; i < client->ca_count; i++) {
		SSL_CTX_free(client->cas[i].ctx);
		free(client->cas[i].file);
	}
	free(client->cas);
	free(client);
}

/* client_expect_host - the certificate must be for host: its IP address, or its DNS name. */
static bool client_expect_host(SSL *ssl, const char *host)
{
	unsigned char literal[16];
	if (inet_pton(AF_INET, host, literal) == 1 || inet_pton(AF_INET6, host, literal) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	/* "*.example.com" matches one whole label; "mx*.example.com" does not (RFC 6125 6.4.3). */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set1_host(ssl, host) == 1;
}

SSL *tls_client_ssl(struct tls_client *client, bool verify, const char *ca_file, const char *host, char *why,
                    size_t why_size)
{
	SSL_CTX *ctx = !verify ? client->plain : ca_file ? client_ca_find(client, ca_file) : client->system;
	if (!ctx) {
		str_format(why, why_size, "no TLS context for %s", ca_file ? ca_file : "the system CA store");
		return NULL;
	}
	SSL *ssl = SSL_new(ctx);
	if (!ssl) {
		char e[256];
		str_format(why, why_size, "cannot make a TLS connection: %s", tls_error_text(e, sizeof e));
		return NULL;
	}
	/* SNI names a host, never an address (RFC 6066 3). */
	unsigned char literal[16];
	bool address = inet_pton(AF_INET, host, literal) == 1 || inet_pton(AF_INET6, host, literal) == 1;
	char name[256]; /* OpenSSL's macro takes a char *, not a const one */
	bool ok = address || (str_copy(name, sizeof name, host) && SSL_set_tlsext_host_name(ssl, name) == 1);
	ok = ok && (!verify || client_expect_host(ssl, host));
	if (!ok) {
		char e[256];
		str_format(why, why_size, "cannot set the TLS host name %s: %s", host, tls_error_text(e, sizeof e));
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

bool tls_client_refused(SSL *ssl, char *why, size_t why_size)
{
	long result = SSL_get_verify_result(ssl);
	if (result != X509_V_OK) {
		str_copy(why, why_size, X509_verify_cert_error_string(result));
		return true;
	}
	if (!SSL_is_init_finished(ssl))
		return false; /* the handshake failed before any certificate was judged */
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (!cert) {
		str_copy(why, why_size, "no certificate");
		return true;
	}
	return false;
}

/* ---- The self-signed certificate ---- */

static bool add_extension(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return false;
	bool ok = X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

static bool random_serial(X509 *cert)
{
	BIGNUM *bn = BN_new();
	bool ok = bn && BN_rand(bn, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
	          BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

static X509 *selfsigned_make(EVP_PKEY *key, const char *hostname)
{
	char names[600];
	/* A common name holds at most 64 characters (RFC 5280); the names that
	 * count are in subjectAltName anyway. */
	const char *common_name = strlen(hostname) <= 64 ? hostname : "localhost";
	X509 *cert = X509_new();
	if (!cert)
		return NULL;
	X509_NAME *subject = X509_get_subject_name(cert);
	bool ok = X509_set_version(cert, 2) == 1 && random_serial(cert) &&
	          X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
	          X509_gmtime_adj(X509_getm_notAfter(cert), (long)SELFSIGNED_DAYS * 86400) != NULL &&
	          X509_set_pubkey(cert, key) == 1 &&
	          X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, (const unsigned char *)"tern (self-signed)",
	                                     -1, -1, 0) == 1 &&
	          X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)common_name, -1, -1,
	                                     0) == 1 &&
	          X509_set_issuer_name(cert, subject) == 1 &&
	          str_format(names, sizeof names, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname) &&
	          add_extension(cert, NID_basic_constraints, "critical,CA:FALSE") &&
	          add_extension(cert, NID_key_usage, "critical,digitalSignature") &&
	          add_extension(cert, NID_ext_key_usage, "serverAuth") &&
	          add_extension(cert, NID_subject_alt_name, names) &&
	          add_extension(cert, NID_subject_key_identifier, "hash") && X509_sign(cert, key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

/* write_pem - write one PEM object to a temporary file, fsync it, rename it into place. */
static bool write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	char tmp[4096];
	if (!str_format(tmp, sizeof tmp, "%s.tmp", path))
		return false;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return false;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return false;
	}
	bool ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1 : PEM_write_X509(f, cert) == 1;
	ok = fflush(f) == 0 && ok && fsync(fd) == 0;
	ok = fclose(f) == 0 && ok;
	if (ok)
		ok = rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	return ok;
}

bool tls_selfsigned_ensure(const char *dir, const char *hostname, char *cert_path, char *key_path, size_t path_size,
                           char *err, size_t errlen)
{
	if (!str_format(cert_path, path_size, "%s/selfsigned.crt", dir) ||
	    !str_format(key_path, path_size, "%s/selfsigned.key", dir)) {
		str_copy(err, errlen, "data_dir path too long");
		return false;
	}
	if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
		return true;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		str_format(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return false;
	}
	char why[256];
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? selfsigned_make(key, hostname) : NULL;
	/* The key first: a certificate without its key would be taken as complete. */
	bool ok = cert && write_pem(key_path, 0600, key, NULL) && write_pem(cert_path, 0644, NULL, cert);
	if (!ok)
		str_format(err, errlen, "cannot make a self-signed certificate in %s: %s", dir,
		           errno ? strerror(errno) : tls_error_text(why, sizeof why));
	else
		log_warning("event=tls_selfsigned cert=%s reason=\"no tls_certificate configured; clients will not "
		            "trust it\"",
		            cert_path);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ok;
}
