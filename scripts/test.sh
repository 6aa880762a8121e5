#!/usr/bin/env bash
# Quick start, command 2 of 2: run the whole test suite (unit, end-to-end,
# hostile inputs, corpus, real-kernel, fuzz regressions; the kernel suite
# needs root and skips with a reason without it) in three stages:
#   plain  build/       the normal build
#   asan   build-asan/  the same suite again under ASan+UBSan (gcc)
#   fuzz   build-fuzz/  each libFuzzer harness for FUZZ_SECONDS (default 60;
#                       needs clang, skipped without it)
# Extra arguments go to `meson test` in the plain and asan stages (e.g.
# --suite kernel) and leave the fuzz stage out. STAGES="plain asan" picks
# stages. Ends with the line "N passed, N failed, N skipped" over all stages.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
if [ $# -gt 0 ]; then
	STAGES=${STAGES:-plain asan}
else
	STAGES=${STAGES:-plain asan fuzz}
fi
export FUZZ_SECONDS=${FUZZ_SECONDS:-60}

rc=0
logs=()

# count PREFIX LOG...: "PREFIXN passed, N failed, N skipped" over meson's logs.
count() {
	python3 - "$@" <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for log in sys.argv[2:]:
    for line in open(log):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif r == "SKIP":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
print(f"{sys.argv[1]}{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
PY
}

# run_stage NAME BUILDDIR [meson test args...]: run the tests, remember the log.
run_stage() {
	local name=$1 dir=$2
	shift 2
	echo "== stage $name ($dir) =="
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --no-rebuild --print-errorlogs "$@" || rc=1
	if [ -f "$dir/meson-logs/testlog.json" ]; then
		cp "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog-$name.json"
		logs+=("$dir/meson-logs/testlog-$name.json")
		count "stage $name: " "$dir/meson-logs/testlog-$name.json"
	fi
}

for stage in $STAGES; do
	start=$SECONDS
	case $stage in
	plain)
		[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null || exit 1
		ninja -C "$BUILD" >/dev/null || { ninja -C "$BUILD"; exit 1; }
		run_stage plain "$BUILD" "$@"
		;;
	asan)
		# Sanitizer findings abort the process, so every test that runs
		# tcpstate fails on them (meson sets similar defaults; be explicit).
		# The 10-million-connection test runs with a tenth of that here.
		[ -d "$BUILD_ASAN" ] || meson setup "$BUILD_ASAN" --buildtype=debugoptimized \
			-Db_sanitize=address,undefined -Db_lto=false >/dev/null || exit 1
		ninja -C "$BUILD_ASAN" >/dev/null || { ninja -C "$BUILD_ASAN"; exit 1; }
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1} \
		HOSTILE_CONNECTIONS=${HOSTILE_CONNECTIONS:-1000000} \
		TCPSTATE_SANITIZERS=address,undefined \
			run_stage asan "$BUILD_ASAN" "$@"
		;;
	fuzz)
		if ! command -v clang >/dev/null; then
			echo "== stage fuzz: skipped (no clang) =="
			continue
		fi
		[ -d "$BUILD_FUZZ" ] || CC=clang meson setup "$BUILD_FUZZ" --buildtype=debugoptimized \
			-Dfuzzing=true -Db_lto=false >/dev/null || exit 1
		# Only the harnesses: the suite is just theirs.
		ninja -C "$BUILD_FUZZ" tests/fuzz/fuzz_packets tests/fuzz/fuzz_capture \
			tests/fuzz/fuzz_packets_replay tests/fuzz/fuzz_capture_replay >/dev/null ||
			{ ninja -C "$BUILD_FUZZ"; exit 1; }
		run_stage fuzz "$BUILD_FUZZ" --suite fuzz
		;;
	*)
		echo "unknown stage '$stage' (plain, asan, fuzz)" >&2
		exit 2
		;;
	esac
	echo "stage $stage: $((SECONDS - start)) s with its build"
done

count "" "${logs[@]}"
exit $rc
