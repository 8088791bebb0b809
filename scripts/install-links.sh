#!/bin/sh
# install-links.sh - make the names programs send mail through (sendmail,
# mailq, newaliases) links to the installed tern, but only where no other
# mail system has them: a path that is absent, or already leads to tern.
#
# Usage: scripts/install-links.sh DESTDIR TARGET LINK...
#   DESTDIR  staging root ("" for the live system), as in make install
#   TARGET   the installed tern as the system will see it (/usr/local/sbin/tern)
#   LINK     each path to link, as the system will see it (/usr/sbin/sendmail)
#
# A path owned by another mail system (Postfix, Exim, ...) is left alone, and
# what to do instead is printed. Exits 0 either way: tern is installed.
set -eu

destdir=$1
target=$2
shift 2

# leads_to_tern PATH - PATH (under DESTDIR) is tern, or links lead there
# (absolute links are followed inside DESTDIR, at most 8 of them).
leads_to_tern() {
	p=$1
	n=0
	while [ -L "$p" ] && [ "$n" -lt 8 ]; do
		t=$(readlink "$p")
		case "$t" in
		/*) p=$destdir$t ;;
		*) p=$(dirname "$p")/$t ;;
		esac
		n=$((n + 1))
	done
	[ "$p" = "$destdir$target" ] || [ "$(basename "$p")" = tern ]
}

taken=""
for link in "$@"; do
	path=$destdir$link
	if { [ -e "$path" ] || [ -L "$path" ]; } && ! leads_to_tern "$path"; then
		taken="$taken $link"
		continue
	fi
	mkdir -p "$(dirname "$path")"
	ln -sfn "$target" "$path"
	echo "install: $link -> $target"
done

if [ -n "$taken" ]; then
	cat >&2 <<EOF
install: left alone, another mail system has them:$taken
  Local programs that run sendmail go on using that mail system. To have them
  use tern instead, either remove it (e.g. apt-get remove postfix) and run
  make install again, or point each program at tern, e.g. PHP's
    sendmail_path = "$target sendmail -t -i"
  (see docs/CLIENTS.md).
EOF
fi
