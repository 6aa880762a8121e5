#!/usr/bin/env python3
"""Every capture under ../shared/corpus is read without a crash.

For each *.pcap / *.pcapng in the public corpus (third-party captures with
their own expected results), run tcpstate --format json and require: no
signal (crash, sanitizer abort), exit status 0 or 1 (1 only with a
'tcpstate: FILE: packet N' diagnostic), every stdout line valid JSON, exactly
one summary record as the last line, and the summary's packet count equal to
what tshark reads from the file (an independent reader).
Skips (exit 77) with a message when the corpus folder is absent.
"""
import glob
import json
import os
import re
import subprocess
import sys


def oracle_count(path):
    """Frames Wireshark's reader finds in the file - an independent reader.
    capinfos counts without dissecting (50x faster than tshark); on a damaged
    file it gives up, and tshark counts the frames before the damage."""
    r = subprocess.run(["capinfos", "-c", "-M", "-T", "-r", path], capture_output=True, text=True)
    fields = r.stdout.strip().split("\t")
    if r.returncode == 0 and len(fields) == 2 and fields[1].isdigit():
        return int(fields[1])
    r = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.number"],
                       capture_output=True, text=True)
    return len(r.stdout.splitlines())


def main():
    tcpstate, corpus = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(corpus, "*", "*.pcap")) +
                   glob.glob(os.path.join(corpus, "*", "*.pcapng")))
    if not files:
        print(f"SKIP: no captures under {corpus} (the shared corpus is not on this machine)")
        return 77
    have_oracle = subprocess.run(["which", "tshark"], capture_output=True).returncode == 0
    failures = []
    for f in files:
        r = subprocess.run([tcpstate, "-r", f, "--format", "json"], capture_output=True, text=True)
        name = os.path.relpath(f, corpus)
        if r.returncode < 0 or r.returncode > 2 or "Sanitizer" in r.stderr or "runtime error" in r.stderr:
            failures.append(f"{name}: exit {r.returncode}: {r.stderr.strip()[:300]}")
            continue
        if r.returncode == 2:
            # unsupported link type is an input problem with a clear message
            failures.append(f"{name}: usage error? {r.stderr.strip()[:200]}")
            continue
        if r.returncode == 1 and not re.search(r"^tcpstate: .+: ", r.stderr, re.M):
            failures.append(f"{name}: exit 1 without a diagnostic")
            continue
        lines = r.stdout.splitlines()
        try:
            recs = [json.loads(l) for l in lines]
        except json.JSONDecodeError as e:
            failures.append(f"{name}: invalid JSON: {e}")
            continue
        if not recs or recs[-1].get("type") != "summary":
            failures.append(f"{name}: no summary record last")
            continue
        if sum(1 for x in recs if x.get("type") == "summary") != 1:
            failures.append(f"{name}: more than one summary")
        if have_oracle:
            # A clean read must see every frame tshark sees; a read that
            # stopped at damage (exit 1, diagnosed above) no more than that.
            n = oracle_count(f)
            got = recs[-1]["packets"]
            if (r.returncode == 0 and got != n) or got > n:
                failures.append(f"{name}: tcpstate read {got} packets, tshark {n}")
        conns = [x for x in recs if x.get("type") == "connection"]
        print(f"ok: {name}: {recs[-1]['packets']} packets, {len(conns)} connections, exit {r.returncode}"
              + (f" ({r.stderr.strip().splitlines()[0]})" if r.returncode else ""))
    print(f"{len(files)} captures, {len(failures)} failures")
    for m in failures:
        print("FAIL:", m)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
