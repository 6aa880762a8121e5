#!/usr/bin/env bash
# Quick start, command 1 of 2: install what tcpstate and its tests need
# (Debian 12 / Ubuntu packages), build it, and run it on the bundled demo
# capture. Safe to run again. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: compiler, meson/ninja, libpcap, uthash.
# Tests: tcpdump, iproute2 (ip netns, ss), nftables, python3 (real-kernel
# suite); tshark, jq (independent oracles); clang + libclang-rt (fuzzing,
# sanitizers); valgrind (leak checks); tcptrace and time (benchmark peers).
PACKAGES=(gcc pkg-config meson ninja-build libpcap-dev uthash-dev
	  tcpdump iproute2 nftables procps python3 tshark jq
	  clang libclang-rt-14-dev valgrind tcptrace time)

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

[ -d build ] || meson setup build >/dev/null   # the project's defaults: -O3 -g, LTO
ninja -C build >/dev/null
echo "setup: built build/tcpstate ($(build/tcpstate --version))"
echo "setup: running: build/tcpstate -r testdata/demo.pcap --close-wait-after 0.5"
echo "(the demo capture is 1 s long: a lower threshold shows its leaked sockets as stuck)"
echo
build/tcpstate -r testdata/demo.pcap --close-wait-after 0.5
