#!/usr/bin/env bash
# Make the seed corpora of the fuzz harnesses in OUTDIR/capture and
# OUTDIR/packets: the project's own test captures (testdata/*.pcap, when
# present) plus small crafted ones (seeds.py), so the fuzzers start from real
# handshakes and closes instead of from nothing. Never copies third-party
# captures into the project. Usage: make-seeds.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: make-seeds.sh OUTDIR}
shopt -s nullglob
pcaps=("$here"/../../testdata/*.pcap)
python3 "$here/seeds.py" capture "$out/capture" "${pcaps[@]}"
python3 "$here/seeds.py" packets "$out/packets" "${pcaps[@]}"
