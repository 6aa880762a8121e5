#!/bin/bash
# Smoke test for the benchmark tools (meson suite 'bench'): generate a tiny
# capture and check that libpcap (pcap-floor) and, when installed, tcpdump and
# tshark read it with the packet count the truth file promises, and that tshark's
# sequence analysis finds no gap. Usage: smoke.sh GEN FLOOR WORKDIR
set -euo pipefail
gen=$1 floor=$2 dir=$3
f=$dir/bench-smoke.pcap

fail() { echo "bench-gen-smoke: $*" >&2; exit 1; }

"$gen" -o "$f" --packets 2000 --connections 120 --concurrent 40 --seed 7 --syn-flood 50 --quiet
[ -s "$f.truth.json" ] || fail "no truth file"
want=$(sed -n 's/^  "packets": \([0-9]*\),$/\1/p' "$f.truth.json")
conns=$(sed -n 's/^  "connections": \([0-9]*\),$/\1/p' "$f.truth.json")
[ -n "$want" ] && [ "$want" -gt 1500 ] && [ "$want" -lt 2600 ] || fail "truth packets '$want' not about 2000"
[ "$conns" = 170 ] || fail "truth connections '$conns', want 170"

got=$("$floor" "$f" | sed -n 's/^packets \([0-9]*\) .*/\1/p')
[ "$got" = "$want" ] || fail "pcap-floor read '$got' packets, truth says $want"

if command -v tcpdump >/dev/null; then
	got=$(tcpdump -nn -r "$f" 2>/dev/null | wc -l)
	[ "$got" = "$want" ] || fail "tcpdump read $got packets, truth says $want"
fi
if command -v tshark >/dev/null; then
	bad=$(tshark -r "$f" -Y 'tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment' 2>/dev/null | wc -l)
	[ "$bad" = 0 ] || fail "tshark: $bad segments with a sequence gap"
	got=$(tshark -r "$f" -q -z conv,tcp 2>/dev/null | grep -c '<->')
	[ "$got" = "$conns" ] || fail "tshark counts $got conversations, truth says $conns"
fi
echo "bench-gen-smoke: ok ($want packets, $conns connections)"
