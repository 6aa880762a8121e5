#!/bin/bash
# The benchmark at its smoke size (meson suite 'bench'): bench/run --size smoke
# with the bench tools and the tcpstate this build made (--tools), then its
# TSV is checked against its own inputs: every tool ran, or says why not; the
# floor and tcpstate ran three times; the floor read the packets the truth
# file promises; and every derived column (packets/s, share of the floor,
# ratios to the peers, bytes per open connection) agrees with the raw
# columns it is computed from. Times are not checked: a benchmark, not a
# timed test. Then once more with --snaplen 0 (whole frames).
# Usage: run-check.sh SOURCE_ROOT TCPSTATE BENCH_BUILD_DIR WORKDIR
set -euo pipefail
src=$1 tcpstate=$(realpath "$2") tools=$(realpath "$3") work=$4/bench-run-check
fail() { echo "bench-run-smoke: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
rc=0
TCPSTATE=$tcpstate "$src/bench/run" --size smoke --tools "$tools" --dir "$work" \
	>"$work/out" 2>"$work/err" || rc=$?
[ $rc = 0 ] || fail "bench/run exited $rc: $(tail -n 5 "$work/err")"
if grep -q 'warning: pcap-floor read' "$work/err"; then
	fail "$(grep 'warning: pcap-floor read' "$work/err")"
fi
for name in 100k flood-100k; do
	grep -q "^== $name: " "$work/out" || fail "no table for $name"
done
[ "$(grep -c '^  tcpstate text: .* of floor (target >= 50% on the 20M capture), .* B/tracked conn, TIME_WAIT included (<= 256 + a small constant; [0-9]* B/conn open on the wire)' "$work/out")" = 2 ] ||
	fail "not one summary line for tcpstate text per capture"

python3 - "$work" <<'EOF'
import csv, json, shutil, sys

work = sys.argv[1]
problems = []
rows = list(csv.DictReader(open(f"{work}/results-smoke.tsv"), delimiter="\t"))
by = {(r["capture"], r["tool"]): r for r in rows}

def check(cond, what):
    if not cond:
        problems.append(what)

def close(a, b, tol):
    return abs(float(a) - float(b)) <= tol

peers = {"tshark": shutil.which("tshark"), "tcptrace": shutil.which("tcptrace")}
for cap in ("100k", "flood-100k"):
    truth = json.load(open(f"{work}/{cap}-seed1.pcap.truth.json"))
    floor = by.get((cap, "floor"))
    if floor is None or floor["status"] != "ok":
        problems.append(f"{cap}: floor did not run")
        continue
    for tool in ("floor", "tcpstate-text", "tcpstate-json", "tshark", "tcptrace"):
        r = by.get((cap, tool))
        if r is None:
            problems.append(f"{cap}: no row for {tool}")
            continue
        if tool in peers and not peers[tool]:
            check(r["status"] == "not installed", f"{cap} {tool}: status {r['status']!r}")
            continue
        # tcptrace keeps every connection: on the flood it may hit the memory limit
        if tool == "tcptrace" and r["status"] == "out of memory":
            continue
        check(r["status"] == "ok", f"{cap} {tool}: status {r['status']!r}")
        if r["status"] != "ok":
            continue
        check(int(r["runs"]) == 3, f"{cap} {tool}: {r['runs']} runs, want 3")
        check(int(r["packets"]) == truth["packets"], f"{cap} {tool}: packets {r['packets']}")
        pps = int(r["packets"]) / float(r["wall_s"])
        check(close(r["pps"], pps, 1), f"{cap} {tool}: pps {r['pps']}, packets/wall {pps:.0f}")
        check(close(r["pct_of_floor"], 100 * int(r["pps"]) / int(floor["pps"]), 0.051),
              f"{cap} {tool}: pct_of_floor {r['pct_of_floor']}")
        for peer, col in (("tshark", "x_tshark"), ("tcptrace", "x_tcptrace")):
            p = by.get((cap, peer))
            if p is not None and p["status"] == "ok":
                check(close(r[col], int(r["pps"]) / int(p["pps"]), 0.0051),
                      f"{cap} {tool}: {col} {r[col]}")
            else:
                check(r[col] == "-", f"{cap} {tool}: {col} {r[col]!r} without {peer}")
        grown = max(0, int(r["peak_rss_kb"]) - int(r["baseline_rss_kb"])) * 1024
        check(close(r["bytes_per_open_conn"], grown / int(r["max_open"]), 0.51),
              f"{cap} {tool}: bytes_per_open_conn {r['bytes_per_open_conn']}")
        check(int(r["max_open"]) == truth["max_open"], f"{cap}: max_open {r['max_open']}")
        check(float(r["cpu_s"]) > 0 and int(r["peak_rss_kb"]) > 0, f"{cap} {tool}: no rusage")

if problems:
    print("bench-run-smoke: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"bench-run-smoke: {len(rows)} rows consistent")
EOF

# --snaplen: the captures store whole frames, under names of their own, and
# the floor still reads every packet the truth file promises
rc=0
TCPSTATE=$tcpstate "$src/bench/run" --size smoke --tools "$tools" --dir "$work/s0" --snaplen 0 \
	--repeat 1 >"$work/s0.out" 2>"$work/s0.err" || rc=$?
[ $rc = 0 ] || fail "bench/run --snaplen 0 exited $rc: $(tail -n 5 "$work/s0.err")"
if grep -q 'warning: pcap-floor read' "$work/s0.err"; then
	fail "--snaplen 0: $(grep 'warning: pcap-floor read' "$work/s0.err")"
fi
grep -q '^== 100k-s0: .*(snaplen 262144, ' "$work/s0.out" || fail "--snaplen 0: no table for 100k-s0"
python3 - "$work" <<'EOF' || exit 1
import json, sys

work = sys.argv[1]
short = json.load(open(f"{work}/100k-seed1.pcap.truth.json"))
whole = json.load(open(f"{work}/s0/100k-s0-seed1.pcap.truth.json"))
# the same traffic, whole frames: payloads make the file several times larger
if whole["packets"] != short["packets"] or whole["snaplen"] != 262144 or \
        whole["file_bytes"] < 3 * short["file_bytes"]:
    sys.exit(f"bench-run-smoke: --snaplen 0: {whole['packets']} packets, snaplen "
             f"{whole['snaplen']}, {whole['file_bytes']} bytes against {short['file_bytes']}")
EOF
rc=0
"$src/bench/run" --snaplen 20 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "bench/run --snaplen 20 exited $rc, want 2"
echo "bench-run-smoke: --snaplen 0 ran on whole frames"
rm -rf "$work"
