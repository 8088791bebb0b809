#!/bin/sh
# check-names.sh - fail if a function or variable that src/FOLDER/FILE.c
# gives other files does not carry its module's prefix.
#
# The house rule (docs/HACKING.md): an extern name starts with its
# folder's prefix (smtpd_, store_, ...) or with its file's own module name
# (the file name without the folder: smtpd_txn.c may give txn_*,
# util_base64.c base64_*), so that a name says where it lives. Exempt:
# main, and the allocation wrappers of util_str.c (xmalloc, xcalloc,
# xrealloc), which every file uses like the C library's.
set -u
cd "$(dirname "$0")/.." || exit 2

bad=$(for f in src/*/*.c; do
	folder=$(basename "$(dirname "$f")")
	file=$(basename "$f" .c)
	module=${file#"${folder}_"}
	awk -v f="$f" -v folder="$folder" -v module="$module" '
		# A definition starts at column 0 and is not static, a directive, a comment or a type alone.
		/^[A-Za-z_]/ && !/^(static|typedef|extern|struct [A-Za-z_0-9]+ *\{|enum |union |#)/ && !/;[[:space:]]*$/ {
			line = $0
			if (match(line, /[A-Za-z_][A-Za-z_0-9]*[[:space:]]*\(/))
				name = substr(line, RSTART, RLENGTH)
			else if (match(line, /[A-Za-z_][A-Za-z_0-9]*[[:space:]]*(\[[^]]*\])?[[:space:]]*=/))
				name = substr(line, RSTART, RLENGTH)
			else
				next
			sub(/[[:space:]]*[\(\[=].*$/, "", name)
			if (name == "main" || name ~ /^x(malloc|calloc|realloc)$/ || name ~ /^_/)
				next
			if (index(name, folder "_") == 1 || index(name, module "_") == 1 || name == module)
				next
			print f ":" FNR ": " name
		}' "$f"
done)

if [ -n "$bad" ]; then
	echo "extern names without their module's prefix (folder_ or the file's module name):"
	echo "$bad"
	exit 1
fi
echo "check-names: ok"
