#!/bin/sh
# Regenerate the recorded real-kernel captures in testdata/ and their truth.
#
# Each NAME runs tests/kernel/ktest.py --record NAME: a scenario in its own network
# namespace (loopback only), captured with tcpdump; the expected state of every
# endpoint is what `ss -tanH` showed inside the namespace at the recorded time.
# Writes testdata/NAME.pcap and testdata/NAME.expect.json (both committed; the e2e
# suite replays them without root). Needs root, iproute2, tcpdump, nftables, tc.
#
#   testdata/record.sh               all of them
#   testdata/record.sh NAME ...      only these
set -eu
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- close_client_first close_server_first close_wait_leak refused rst_abort \
         syn_unanswered last_ack_final_ack_lost half_close_data simultaneous_close \
         port_reuse
fi
for name in "$@"; do
  python3 tests/kernel/ktest.py --record "$name" --out testdata/
done
echo "recorded: $*"
echo "new names must also be listed in tests/e2e/TESTLIST"
