#!/bin/bash
# Test of scripts/build-pgo.sh (meson suite 'bench'): it builds a
# profile-guided tcpstate in a scratch directory, training it on generated
# captures; the build must then use the profile (b_pgo=use, counts present)
# and its binary must write exactly what the tested build writes, in every
# format, on the project's own captures and on one the generator makes.
# Usage: pgo-check.sh SOURCE_ROOT TCPSTATE GEN WORKDIR
set -euo pipefail
src=$1 ref=$2 gen=$3 work=$4
dir=$work/pgo-check
fail() { echo "build-pgo: $*" >&2; exit 1; }

rm -rf "$dir"
"$src/scripts/build-pgo.sh" "$dir" || fail "scripts/build-pgo.sh failed"
meson configure "$dir" | grep -Eq '^ *b_pgo +use ' || fail "the build does not use the profile"
find "$dir" -name '*.gcda' | grep -q . || fail "training left no profile counts"
"$gen" -o "$work/pgo-check.pcap" --packets 20000 --syn-flood 2000 --seed 3 --quiet
n=0
for f in "$src"/testdata/*.pcap "$work/pgo-check.pcap"; do
	for args in "--report all" "--format json --report all" "--format zeek" "--limit 0 --timeline"; do
		# shellcheck disable=SC2086
		a=$("$ref" -r "$f" $args 2>&1; echo "rc=$?")
		# shellcheck disable=SC2086
		b=$("$dir/tcpstate" -r "$f" $args 2>&1; echo "rc=$?")
		[ "$a" = "$b" ] || fail "output differs: $(basename "$f") $args"
		n=$((n + 1))
	done
done
echo "build-pgo: profile used, $n outputs identical to the tested build"
rm -rf "$dir"
