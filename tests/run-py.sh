#!/bin/sh
# run-py.sh - run the Python test tiers (dialog, e2e, crash) with pytest.
#
# Usage: TERN_BIN=/abs/path/to/tern tests/run-py.sh [DIR...]
#   With no DIR, runs tests/dialog tests/e2e tests/crash.
#   TERN_SANITIZED=1 (or a binary path containing build-san) stretches the
#   deadlines and shrinks the crash test.
#   Extra pytest options can be passed in PYTEST_ADDOPTS.
#
# Uses Debian's interpreter explicitly: its pytest comes from python3-pytest.
# Exits with pytest's status, so a failure (or no test run) is non-zero.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
py=/usr/bin/python3

if [ -z "${TERN_BIN:-}" ]; then
	TERN_BIN=$repo/build/tern
fi
case "$TERN_BIN" in
/*) ;;
*) TERN_BIN=$(pwd)/$TERN_BIN ;;
esac
export TERN_BIN

if ! "$py" -c 'import pytest' 2>/dev/null; then
	echo "run-py: $py has no pytest (apt-get install python3-pytest)" >&2
	exit 2
fi

if [ "$#" -eq 0 ]; then
	set -- "$here/dialog" "$here/e2e" "$here/crash"
fi

cd "$repo" || exit 2
# -p no:cacheprovider: leave no .pytest_cache in the tree.
exec "$py" -m pytest -q --tb=short -p no:cacheprovider --rootdir="$here" "$@"
