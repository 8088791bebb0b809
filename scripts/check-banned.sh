#!/bin/sh
# check-banned.sh - fail if a banned C string function appears in the source.
# These copy or convert without a bound, or keep hidden state; docs/HACKING.md
# says what to use instead (src/util/util_str.h).
set -u
cd "$(dirname "$0")/.." || exit 2
pattern='\b(strcpy|strcat|strncpy|sprintf|vsprintf|strtok|atoi|atol|gets)[[:space:]]*\('
hits=$(grep -rnE "$pattern" src fuzz tests/unit --include='*.c' --include='*.h' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)')
if [ -n "$hits" ]; then
	echo "banned functions in use:"
	echo "$hits"
	exit 1
fi
# Only the connection layer and the TLS contexts (src/net) use OpenSSL's
# TLS: the sessions in src/smtpd and src/mta go through net/net_conn.h.
tls_hits=$(grep -nE '#include <openssl/|\b(SSL|SSL_CTX)_[a-z_0-9]+[[:space:]]*\(|bufferevent_openssl_' src/smtpd/*.c src/smtpd/*.h \
	src/mta/*.c src/mta/*.h)
if [ -n "$tls_hits" ]; then
	echo "OpenSSL outside src/net (use net/net_conn.h):"
	echo "$tls_hits"
	exit 1
fi
echo "check-banned: ok"
