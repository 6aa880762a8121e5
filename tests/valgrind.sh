#!/usr/bin/env bash
# `meson test --setup valgrind` wrapper: valgrind.sh TCPSTATE PROG ARGS... A compiled
# test runs under valgrind directly; a script test (Python) runs as is, with the
# TCPSTATE path among its arguments swapped for a shim running tcpstate under
# valgrind, so every tcpstate run is checked and the interpreter is not. A memory
# error or a definite leak exits 99, which no test expects (tcpstate uses 0-2).
set -uo pipefail
tcpstate=$1 prog=$2
shift 2
vg=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --num-callers=30)

if [ "$(head -c 4 "$prog" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; then
	exec "${vg[@]}" "$prog" "$@"
fi
shimdir=$(mktemp -d "${TMPDIR:-/tmp}/tcpstate-vg.XXXXXX") || exit 1
trap 'rm -rf "$shimdir"' EXIT
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${vg[*]}" "$tcpstate" >"$shimdir/tcpstate"
chmod +x "$shimdir/tcpstate"
args=()
for a in "$@"; do
	if [ "$a" = "$tcpstate" ]; then
		args+=("$shimdir/tcpstate")
	else
		args+=("$a")
	fi
done
"$prog" "${args[@]}"
