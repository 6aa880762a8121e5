#!/usr/bin/env bash
# Build tcpstate with profile-guided optimisation (gcc -fprofile-generate /
# -fprofile-use through meson's b_pgo): build it instrumented, run it on
# captures the project's generator makes (normal traffic with a SYN flood,
# in text, JSON and Zeek form), then build it again using that profile.
# 5-8% fewer instructions a packet on the bench captures; fewer cycles on
# the 1M capture, not reliably on the 20M one (bench/ROUNDS.md). The
# output is the same.
#
# usage: scripts/build-pgo.sh [BUILD_DIR]     (default build-pgo)
# The binary is BUILD_DIR/tcpstate. Needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build-pgo}
if [ -d "$dir" ] && [ ! -f "$dir/build.ninja" ]; then
	echo "build-pgo: $dir exists and is not a meson build directory" >&2
	exit 2
fi
train=$(mktemp -d)
trap 'rm -rf "$train"' EXIT

# Each step's messages go to a log, shown with the failing command if one fails.
step() {
	if ! "$@" >>"$train/log" 2>&1; then
		echo "build-pgo: failed: $*" >&2
		tail -n 40 "$train/log" >&2
		exit 1
	fi
}
# a training run: its report is not wanted, its errors are
train_run() {
	step sh -c '"$@" >/dev/null' sh "$@"
}

[ -f "$dir/build.ninja" ] || step meson setup "$dir" --buildtype=release
step meson configure "$dir" -Db_pgo=generate
# stale counts from an earlier training would be merged into the new ones
find "$dir" -name '*.gcda' -delete
step ninja -C "$dir" tcpstate bench/tcpstate-gen

step "$dir/bench/tcpstate-gen" -o "$train/traffic.pcap" --packets 1000000 --concurrent 5000 --quiet
step "$dir/bench/tcpstate-gen" -o "$train/flood.pcap" --packets 50000 --syn-flood 200000 --quiet
for f in "$train/traffic.pcap" "$train/flood.pcap"; do
	train_run "$dir/tcpstate" -r "$f"
	train_run "$dir/tcpstate" -r "$f" --format json
	train_run "$dir/tcpstate" -r "$f" --format zeek
done

step meson configure "$dir" -Db_pgo=use
step ninja -C "$dir" tcpstate
echo "build-pgo: built $dir/tcpstate with a profile from $(basename "$train")/{traffic,flood}.pcap"
