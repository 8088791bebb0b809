#!/bin/sh
# check-alloc.sh - fail if an allocation in src/ is not checked.
#
# The house rule (docs/HACKING.md): memory comes from the x* wrappers of
# src/util/util_str.c (xmalloc, xcalloc, xrealloc, str_dup, str_dup_n),
# which abort with a message when there is none. So:
#   1. malloc, calloc, realloc, reallocarray, strdup, strndup, asprintf and
#      vasprintf appear nowhere else, unless the line says why it may
#      (a comment holding "check-alloc: handled", where the caller fails
#      one message or connection instead);
#   2. what a library allocates (libevent's evbuffer_new, event_new,
#      evtimer_new, evsignal_new, event_base_new, bufferevent_*_new,
#      evconnlistener_new*; OpenSSL's SSL_new, SSL_CTX_new, BIO_new*,
#      X509_new, BN_new, EVP_*_new; sqlite3_mprintf; ub_ctx_create) is
#      assigned and then tested: "!x", "x == NULL", "x != NULL", "if (x)",
#      "x ?", "x &&" or "x ||" on it or within the next four lines, or NULL is
#      compared on the line itself (or, for one that returns a status, 0).
set -u
cd "$(dirname "$0")/.." || exit 2

raw='(^|[^A-Za-z0-9_])(malloc|calloc|realloc|reallocarray|strdup|strndup|asprintf|vasprintf)[[:space:]]*\('
hits=$(grep -rnE "$raw" src --include='*.c' --include='*.h' |
	grep -v '^src/util/util_str\.c:' |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' |
	grep -v 'check-alloc: handled')

lib='(evbuffer_new|event_new|evtimer_new|evsignal_new|event_base_new|bufferevent_[a-z_]*new|evconnlistener_new[a-z_]*|SSL_new|SSL_CTX_new|BIO_new[a-z_]*|X509_new|BN_new|EVP_[A-Za-z_]*_new|sqlite3_mprintf|ub_ctx_create)[[:space:]]*\('
unchecked=$(find src -name '*.c' | sort | xargs awk -v lib="$lib" '
	function checked(var, text) {
		return index(text, "!" var) || index(text, var " == NULL") || index(text, var " != NULL") ||
		       index(text, "if (" var ")") || index(text, var " ?") || index(text, var " &&") ||
		       index(text, var " ||")
	}
	# Calls waiting for their check: report those whose four lines passed without one.
	function settle(last,    i, kept) {
		kept = 0
		for (i = 0; i < n; i++) {
			if (!last && FNR > at[i] && checked(var[i], $0))
				continue
			if (last || FNR >= at[i] + 4) {
				print file ":" at[i] ": " text[i]
				continue
			}
			var[kept] = var[i]; at[kept] = at[i]; text[kept] = text[i]; kept++
		}
		n = kept
	}
	FNR == 1 { settle(1); file = FILENAME }
	{ settle(0) }
	# A function that returns a status (bufferevent_pair_new) is checked on its line: "!= 0", "< 0".
	$0 ~ lib && $0 !~ /^[[:space:]]*(\/?\*|\/\/)/ && $0 !~ /NULL/ && $0 !~ /\) (!=|==) 0\)|\) < 0\)/ {
		pos = match($0, lib)
		prefix = substr($0, 1, pos - 1)
		if (!match(prefix, /[A-Za-z_][A-Za-z0-9_>.-]*(\[[^]]*\])?[ \t]*=[^=]/)) {
			print FILENAME ":" FNR ": " $0 " (not assigned)"
			next
		}
		v = substr(prefix, RSTART, RLENGTH)
		sub(/[ \t]*=.*$/, "", v)
		var[n] = v; at[n] = FNR; text[n] = $0; n++
	}
	END { settle(1) }
')

status=0
if [ -n "$hits" ]; then
	echo "raw allocation outside the x* wrappers (use xmalloc, xcalloc, xrealloc, str_dup):"
	echo "$hits"
	status=1
fi
if [ -n "$unchecked" ]; then
	echo "allocation whose result is not checked:"
	echo "$unchecked"
	status=1
fi
[ "$status" -eq 0 ] && echo "check-alloc: ok"
exit "$status"
