#!/usr/bin/env bash
# One bounded libFuzzer campaign as a meson test (suite 'fuzz', -Dfuzzing=true):
# `run-fuzzer.sh FUZZER NAME SRCDIR WORKDIR` runs FUZZER for FUZZ_SECONDS
# (default 10) over WORKDIR/corpus/NAME (kept between runs), make-seeds.sh's
# seeds and the reproducers in SRCDIR/regressions/NAME. A crash, leak, sanitizer
# report or timeout fails the test; the input is left in WORKDIR/artifacts/NAME/.
set -uo pipefail
fuzzer=$1 name=$2 src=$3 work=$4
secs=${FUZZ_SECONDS:-10}
case $name in
	capture) max_len=16384 ;;
	*) max_len=8192 ;;
esac

"$src/make-seeds.sh" "$work/seeds" >/dev/null || exit 1
mkdir -p "$work/corpus/$name" "$work/artifacts/$name"
echo "fuzz-$name: $secs s, corpus $work/corpus/$name"
# -close_fd_mask=2: tcpstate's own diagnostics (a damaged file on every other
# input) would drown the log; sanitizer reports still get through.
"$fuzzer" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -close_fd_mask=2 -artifact_prefix="$work/artifacts/$name/" \
	"$work/corpus/$name" "$work/seeds/$name" "$src/regressions/$name"
rc=$?
if [ $rc -ne 0 ]; then
	echo "fuzz-$name: FAILED (exit $rc). The input is in $work/artifacts/$name/;" \
	     "copy it to tests/fuzz/regressions/$name/ as a regression test."
fi
exit $rc
