#!/bin/sh
# install-deps.sh - install the Debian packages tern needs to build, test and benchmark.
#
# Usage: scripts/install-deps.sh [build|run|test|bench]
#   build  the libraries and the compiler (the default)
#   run    build, plus swaks, which the README's first commands use
#   test   build, plus the real clients, servers and tools the test suite drives
#          (Postfix and nsd among them, as peers and DNS for outbound delivery;
#          Dovecot's LMTP server for local delivery, and its auth service as
#          Postfix's SASL server for a smarthost; the mail clients of the client
#          matrix, and Node.js with npm unless node and npm are already there;
#          tests/e2e/test_clients.py installs Nodemailer with npm ci; PHP's command
#          line and s-nail are also real callers of tern's sendmail command)
#   bench  test, plus SQLite for Dovecot's auth service, Postfix's SASL server in the
#          submission bench (Postfix's smtp-source and smtp-sink are the load tools)
#
# Only missing packages are installed, so a second run costs one dpkg query.
set -eu

what=${1:-build}

build_pkgs="make gcc pkg-config libevent-dev libssl-dev libsqlite3-dev libunbound-dev libcrypt-dev sqlite3"
test_pkgs="clang python3 python3-pytest swaks libnet-ssleay-perl libauthen-sasl-perl msmtp openssl procps nsd bind9-dnsutils python3-unbound postfix dovecot-core dovecot-lmtpd"
# The client matrix (tests/clients): PHPMailer, curl, s-nail, Net::SMTP with TLS.
test_pkgs="$test_pkgs php-cli libphp-phpmailer curl s-nail libio-socket-ssl-perl"
bench_pkgs="dovecot-sqlite"

case "$what" in
build) pkgs="$build_pkgs" ;;
run) pkgs="$build_pkgs swaks" ;;
test) pkgs="$build_pkgs $test_pkgs" ;;
bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
*) echo "usage: $0 [build|run|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
# Node.js for Nodemailer: Debian's, unless a node and an npm are already
# installed (from another source, whose packages Debian's npm would clash with).
case "$what" in
test | bench)
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
	;;
esac
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages:$missing (run as root to install them)" >&2
	exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix is only a load tool and a peer for tests: install it without a system
# configuration so that it does not start listening on port 25 by itself.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# The tests start their own nsd, Postfix and Dovecot on loopback: the packages'
# system services must not start on installation (policy-rc.d, the Debian way),
# and the rule is removed again if this script put it there.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
