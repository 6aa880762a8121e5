#!/bin/sh
# Make testdata/demo.pcap from real kernel traffic, and its truth demo.expect.json.
#
# The 'demo' scenario (tests/kernel/scenarios.py) runs in a fresh network namespace
# (loopback only, deleted afterwards) and leaves, at the moment ss is read:
#   web      127.0.0.1:80    four clean closes (TIME_WAIT; one closed by the server)
#   api      127.0.0.1:8080  a CLOSE_WAIT leak: four clients gone, sockets never closed
#   db       127.0.0.1:5432  an unanswered SYN (dropped at input, retransmitted)
#   redis    127.0.0.1:6379  a refused connection (RST)
#   app      127.0.0.1:9000  an RST abort (SO_LINGER 0)
#   ssh      127.0.0.1:22    an idle established session
#   rsync    127.0.0.1:873   a half-close: client shut down, server still sending
# Needs root, iproute2, tcpdump, nftables, tc. Then try:
#   build/tcpstate -r testdata/demo.pcap
set -eu
cd "$(dirname "$0")/.."
python3 tests/kernel/ktest.py --record demo --out testdata/
ls -l testdata/demo.pcap testdata/demo.expect.json
