#!/bin/sh
# run.sh - build each fuzz target with libFuzzer and the sanitizers, run it.
#
# Usage: fuzz/run.sh [SECONDS]     (default 60 seconds per target)
#
# Each fuzz/fuzz_NAME.c is built into build-fuzz/fuzz_NAME with only the
# sources it needs, then run for SECONDS on a copy of fuzz/corpus/NAME in
# build-fuzz/corpus/NAME (so the committed seed corpus does not grow) with
# the dictionary fuzz/smtp.dict. Crash inputs land in build-fuzz/crashes/NAME/.
# Exits non-zero if any target fails to build or finds a crash.
#
# Environment: FUZZ_CC (default clang; libFuzzer needs clang), FUZZ_TARGETS (default: all of them),
# FUZZ_FLAGS (extra libFuzzer options).
set -u

seconds=${1:-60}
case "$seconds" in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build-fuzz
cc=${FUZZ_CC:-clang}
cflags="-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-Isrc -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wno-unused-parameter -Werror"

# sources_for - the library sources a target links with.
sources_for() {
	case "$1" in
	command) echo "src/smtp/smtp_command.c src/smtp/smtp_address.c" ;;
	address) echo "src/smtp/smtp_address.c" ;;
	data) echo "src/smtp/smtp_data.c" ;;
	client_reply) echo "src/smtp/smtp_client_reply.c" ;;
	dns) echo "src/net/net_dns.c src/util/util_str.c src/util/util_log.c" ;;
	header) echo "src/msg/msg_header.c" ;;
	msg_address) echo "src/msg/msg_address.c src/msg/msg_header.c src/smtp/smtp_address.c" ;;
	msg_7bit) echo "src/msg/msg_7bit.c" ;;
	msg_submit) echo "src/msg/msg_submit.c src/msg/msg_address.c src/smtp/smtp_address.c src/util/util_base64.c src/util/util_str.c src/util/util_log.c" ;;
	msg_dsn) echo "src/msg/msg_dsn.c src/util/util_str.c src/util/util_time.c src/util/util_log.c" ;;
	sasl) echo "src/auth/auth_sasl.c src/auth/auth_secret.c src/util/util_base64.c src/util/util_str.c src/util/util_log.c" ;;
	# A whole session: the connection layer, the session, and all it reaches.
	session) echo src/*/*.c ;;
	*) return 1 ;;
	esac
}

# flags_for - extra compiler flags of a target, if any.
flags_for() {
	case "$1" in
	# The whole tree is compiled: clang warns of one deliberate string concatenation in the store.
	session) echo "-Wno-string-concatenation" ;;
	esac
}

# libs_for - the system libraries a target links with, if any.
libs_for() {
	case "$1" in
	sasl) echo "-lcrypto -lcrypt" ;;
	dns) echo "-lunbound -levent_core" ;;
	msg_7bit) echo "-levent_core" ;;
	msg_submit) echo "-lcrypto" ;;
	session) pkg-config --libs libevent_core libevent_pthreads libevent_openssl openssl sqlite3 libunbound
		echo "-lcrypt -pthread" ;;
	esac
}

targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
	for f in "$root"/fuzz/fuzz_*.c; do
		name=${f##*/fuzz_}
		targets="$targets ${name%.c}"
	done
fi
cd "$root" || exit 2
mkdir -p "$out"
status=0
for t in $targets; do
	if ! src=$(sources_for "$t"); then
		echo "fuzz: $t: no sources listed in fuzz/run.sh" >&2
		status=1
		continue
	fi
	bin=$out/fuzz_$t
	# shellcheck disable=SC2086,SC2046 # word splitting of the flag, source and library lists is intended
	if ! $cc $cflags $(flags_for "$t") -o "$bin" "fuzz/fuzz_$t.c" $src $(libs_for "$t"); then
		echo "fuzz: $t: build failed" >&2
		status=1
		continue
	fi
	rm -rf "$out/corpus/$t"
	mkdir -p "$out/corpus/$t" "$out/crashes/$t"
	[ -d "fuzz/corpus/$t" ] && cp -R "fuzz/corpus/$t/." "$out/corpus/$t/"
	echo "fuzz: $t: running for ${seconds}s"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$seconds" -dict=fuzz/smtp.dict -print_final_stats=1 \
		-artifact_prefix="$out/crashes/$t/" ${FUZZ_FLAGS:-} "$out/corpus/$t" \
		>"$out/fuzz_$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$t.log" | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		echo "fuzz: $t: FAILED (exit $rc), see $out/fuzz_$t.log and $out/crashes/$t/" >&2
		tail -n 30 "$out/fuzz_$t.log" >&2
		status=1
	else
		echo "fuzz: $t: ok, ${execs:-?} executions"
	fi
done
exit $status
