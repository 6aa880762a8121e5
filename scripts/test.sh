#!/usr/bin/env bash
# Quick start, command 2 of 2: run the whole test suite (unit, end-to-end,
# corpus, real-kernel; the kernel suite needs root and skips with a reason
# without it). Extra arguments go to `meson test` (e.g. --suite kernel).
# Ends with the line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
[ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=debugoptimized >/dev/null || exit 1
ninja -C "$BUILD" >/dev/null || { ninja -C "$BUILD"; exit 1; }

meson test -C "$BUILD" --print-errorlogs "$@"
rc=$?

log="$BUILD/meson-logs/testlog.json"
if [ -f "$log" ]; then
	python3 - "$log" <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for line in open(sys.argv[1]):
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
print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
PY
fi
exit $rc
