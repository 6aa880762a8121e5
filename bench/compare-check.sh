#!/bin/bash
# Test of bench/compare (meson suite 'bench'): on a generated capture, a
# binary against itself must be reported the same (text and JSON, exit 0); a
# wrapper that adds a line to its output must be reported as differing (exit
# 1), as must a binary that fails, with a message; a bad option is a usage
# error (exit 2). Where perf works, a binary run twice must show the same
# instruction count within 2%; without perf that part is skipped, with a
# message.
# Usage: compare-check.sh SOURCE_ROOT TCPSTATE GEN WORKDIR
set -euo pipefail
src=$1 tcpstate=$(realpath "$2") gen=$3 work=$4/compare-check
fail() { echo "bench-compare: $*" >&2; exit 1; }
compare=$src/bench/compare

rm -rf "$work"
mkdir -p "$work"
"$gen" -o "$work/c.pcap" --packets 5000 --syn-flood 500 --seed 5 --quiet
printf '#!/bin/sh\n"%s" "$@"\necho one more line\n' "$tcpstate" >"$work/wrapped"
chmod +x "$work/wrapped"

expect() { # RC NAME command... : run it, its stdout in $work/NAME
	local want=$1 name=$2 rc=0
	shift 2
	"$@" >"$work/$name" 2>"$work/$name.err" || rc=$?
	[ $rc = "$want" ] || fail "$name: exit $rc, want $want: $(cat "$work/$name.err")"
}

expect 0 text env PERF= "$compare" -n 2 "$work/c.pcap" "$tcpstate" "$tcpstate"
grep -q "^A:  ref .*$tcpstate\$" "$work/text" || fail "text: no reference row"
grep -q "^B:  same .*$tcpstate\$" "$work/text" || fail "text: B not reported the same"
expect 0 json env PERF= "$compare" -n 1 -a "--format json" "$work/c.pcap" "$tcpstate" "$tcpstate"
grep -q '^B:  same ' "$work/json" || fail "json: B not reported the same"
expect 1 differ env PERF= "$compare" -n 1 "$work/c.pcap" "$tcpstate" "$work/wrapped"
grep -q '^B:  DIFFERS ' "$work/differ" || fail "differ: B not reported as differing"
expect 2 usage "$compare" -n 0 "$work/c.pcap" "$tcpstate" "$tcpstate"
printf '#!/bin/sh\nexit 3\n' >"$work/failing"
chmod +x "$work/failing"
expect 1 fails env PERF= "$compare" -n 1 "$work/c.pcap" "$tcpstate" "$work/failing"
grep -q "failing exited 3" "$work/fails.err" || fail "fails: no message naming the run"

# perf that runs but has no counters (a guest without them) prints "<not
# supported>" and exits 0: only a number means it counts.
if command -v perf >/dev/null && perf stat -x, -e instructions:u true 2>&1 >/dev/null | grep -q '^[0-9]'; then
	expect 0 perf "$compare" -n 1 "$work/c.pcap" "$tcpstate" "$tcpstate"
	awk '/^[AB]:/ { n++; v[n] = $3 } END {
		if (n != 2 || v[1] !~ /^[0-9]+$/ || v[2] !~ /^[0-9]+$/) exit 1
		d = v[1] - v[2]; if (d < 0) d = -d
		exit !(d <= v[1] * 0.02 + 1) }' "$work/perf" ||
		fail "perf: instruction counts missing or apart: $(cat "$work/perf")"
	echo "bench-compare: identity, difference, usage and instruction counts checked"
else
	echo "bench-compare: identity, difference and usage checked; perf not usable here, its counts not checked"
fi
rm -rf "$work"
