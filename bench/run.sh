#!/bin/sh
# run.sh - tern against Postfix and smtp-sink on this machine, in one run.
#
# Usage: bench/run.sh TERN_BINARY                 (make bench builds tern and calls this)
#        bench/run.sh --submission TERN_BINARY    STARTTLS + AUTH PLAIN against Postfix with
#                                                 Dovecot's auth (make bench-submission)
#        bench/run.sh --relay TERN_BINARY         relaying to smtp-sink, end to end, against
#                                                 Postfix as a relay (make bench-relay)
#        bench/run.sh --relay-big TERN_BINARY     the same with 1 MiB and 10 MiB messages: peak
#                                                 memory and throughput (make bench-relay-big)
#        bench/run.sh --bounce-storm TERN_BINARY  DATA-to-250 latency without and during a
#                                                 storm of 5,000 bounces (make bench-bounce-storm)
#
# Environment (all optional):
#   BENCH_OUT=FILE            also write the report here (default: a file in $TMPDIR or /tmp)
#   BENCH_SECONDS=12          target length of each measured run (runs under
#                             min(10, BENCH_SECONDS - 2) seconds are done again)
#   BENCH_CONCURRENCY="1 10 50"  smtp-source session counts
#   BENCH_IDLE_N=2000         idle connections held open against tern
#   BENCH_IDLE_N_POSTFIX=N    the same against Postfix (default: BENCH_IDLE_N)
#   BENCH_SERVERS="sink postfix tern"  which servers to run
#   BENCH_KEEP=1              keep the temporary directory (logs, queues, mailboxes)
#   BENCH_TLS_KEY=rsa         --submission: certificate key, rsa (2048 bits) or ec (P-256)
#   BENCH_RELAY_SECONDS=20    --relay: seconds of load for the slower server in each scenario
#   BENCH_RELAY_MIN_SECONDS=8 --relay: and at least this for the faster one (the slower then
#                             runs longer, up to 3 x BENCH_RELAY_SECONDS)
#   BENCH_RELAY_CONCURRENCY="10 50"  --relay: smtp-source session counts
#   BENCH_RELAY_SIZES="5120 102400"  --relay: message body sizes (smtp-source -l)
#   BENCH_RELAY_REUSE=1       --relay: smtp-source -d (many messages per connection)
#   BENCH_BIG_SIZES="1048576 10485760"  --relay-big: body sizes (smtp-source -l)
#   BENCH_BIG_COUNTS="200 100"  --relay-big: messages of each size
#   BENCH_BIG_SESSIONS=50     --relay-big: smtp-source sessions (-s)
#   BENCH_BIG_TIMEOUT=300     --relay-big: seconds one run may take, start to sink
#   BENCH_STORM_*             --bounce-storm: see bench/README.md
#
# Needs root (Postfix's master runs as root) and Postfix's smtp-source and smtp-sink, and for
# --submission Dovecot, OpenSSL and a C compiler (scripts/install-deps.sh bench).
# See bench/README.md.
set -eu

driver=bench.py
mode=
if [ $# -ge 1 ] && [ "$1" = "--submission" ]; then
	driver=submission.py
	shift
elif [ $# -ge 1 ] && [ "$1" = "--relay" ]; then
	driver=relay.py
	shift
elif [ $# -ge 1 ] && [ "$1" = "--relay-big" ]; then
	driver=relay.py
	mode=--big
	shift
elif [ $# -ge 1 ] && [ "$1" = "--bounce-storm" ]; then
	driver=storm.py
	shift
fi
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
	echo "usage: $0 [--submission|--relay|--relay-big|--bounce-storm] TERN_BINARY" >&2
	exit 2
fi

# Room for the idle-connection test: descriptors in tern, in this driver and in Postfix.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

here=$(dirname "$0")
exec /usr/bin/python3 "$here/$driver" $mode "$1"
