#!/usr/bin/env python3
"""SYN, SYN-ACK, FIN and RST counts of every TCP stream against tshark's.

Usage: check_tshark.py TCPSTATE CORPUS_DIR

The corpus (../shared/corpus, README "tshark oracle") has for each capture a
<name>.tshark.csv: per tcp.stream the first packet's endpoints and how many
pure SYN, SYN+ACK, FIN and RST segments the stream holds (both directions
together). tcpstate's JSON gives the same counts per direction in
"flag_counts"; their sums must agree. Streams are paired with tcpstate's
incarnations of the same 5-tuple in order of their first packet; when the
two split a 5-tuple into a different number of connections, the 5-tuple's
totals are compared instead. Prints the agreement and every disagreement;
fails on any. Exit 77 (skip) without the corpus.
"""
import csv
import glob
import ipaddress
import json
import os
import subprocess
import sys

KINDS = ("syn", "synack", "fin", "rst")

# Streams tcpstate does not track, each for a reason outside flag counting
# (README "Conformance"). Anything else that disagrees fails the test.
KNOWN = {
    "misc/sv-ppp-ipv4-frag-tcp-syn": "the TCP header is split over 8-byte IP fragments; "
        "tshark reassembles them, tcpstate's decoder does not reassemble IP fragments",
    "misc/td-beep-oobr": "the frame holds only part of the TCP header (truncated_tcp); "
        "tshark still opens a stream from the ports",
    "tcpdump/heapoverflow-tcp_print": "the frame holds only part of the TCP header (truncated_tcp)",
    "tcpdump/tcp-auth-heapoverflow": "the frame holds only part of the TCP header (truncated_tcp)",
    "tcpdump/mptcp-dss-oobr": "the record holds 73 of the frame's 74 bytes: the TCP "
        "header's last option byte is missing (truncated_tcp)",
    "misc/td-bgp-aigp": "link type JUNIPER_ETHER (178) is not decoded by tcpstate",
    "misc/td-ipoib": "link type IPOIB (242) is not decoded by tcpstate",
    "tcpdump/tcp_eight_lowest_weight_flags_set": "a lone segment with all eight flags set: "
        "the tracker makes no connection from impossible flags (NULL/Xmas scans)",
    "zeek/ldap-gap-data-missing": "pcapng whose interfaces have different snapshot lengths: "
        "libpcap refuses to read it",
}


def norm(a):
    try:
        return str(ipaddress.ip_address(a))
    except ValueError:
        return a


def key_of(h1, p1, h2, p2):
    return frozenset({(norm(h1), int(p1)), (norm(h2), int(p2))})


def tunnel_match(k, by_key_o, by_key_t):
    """For tunnelled packets the oracle took the first (outer) ip.src/ip.dst
    with the inner TCP ports. Pair such a stream with the one tcpstate
    connection of the same two ports that no stream claims by address."""
    ports = sorted(p for _, p in k)
    hits = [ko for ko in by_key_o if ko not in by_key_t and sorted(p for _, p in ko) == ports]
    return hits[0] if len(hits) == 1 else None


def ours(tcpstate, pcap):
    res = subprocess.run([tcpstate, "-r", pcap, "--format", "json"], capture_output=True,
                         text=True, check=False)
    conns = []
    for line in res.stdout.splitlines():
        d = json.loads(line)
        if d.get("type") != "connection":
            continue
        c, s = d["client"], d["server"]
        fc = d["flag_counts"]
        conns.append({"key": key_of(c["addr"], c["port"], s["addr"], s["port"]),
                      "first": d["first_packet"],
                      "counts": tuple(fc[k][0] + fc[k][1] for k in KINDS)})
    conns.sort(key=lambda x: x["first"])
    return conns


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tcpstate, corpus = sys.argv[1], sys.argv[2]
    oracles = sorted(glob.glob(os.path.join(corpus, "*", "*.tshark.csv")))
    if not oracles:
        print(f"SKIP: no *.tshark.csv under {corpus}")
        return 77
    n_streams = n_ok = 0
    bad, known = [], []
    for oracle in oracles:
        stem = oracle[:-len(".tshark.csv")]
        pcap = next((stem + e for e in (".pcap", ".pcapng") if os.path.isfile(stem + e)), None)
        label = os.path.relpath(oracle, corpus)[:-len(".tshark.csv")]
        if pcap is None:
            bad.append(f"{label}: capture missing")
            continue
        with open(oracle, newline="", encoding="utf-8") as f:
            streams = list(csv.DictReader(f))
        mine = ours(tcpstate, pcap)
        by_key_t, by_key_o = {}, {}
        for s in streams:
            k = key_of(s["first_src"], s["first_sport"], s["first_dst"], s["first_dport"])
            by_key_t.setdefault(k, []).append(tuple(int(s[x]) for x in KINDS))
        for c in mine:
            by_key_o.setdefault(c["key"], []).append(c["counts"])
        for k, t_list in by_key_t.items():
            o_list = by_key_o.get(k, [])
            if not o_list:
                k2 = tunnel_match(k, by_key_o, by_key_t)
                if k2 is not None:
                    o_list = by_key_o[k2]
            ends = " - ".join(f"{a}:{p}" for a, p in sorted(k))
            if len(t_list) == len(o_list):
                pairs = list(zip(t_list, o_list))
            else:
                tot = lambda lst: tuple(sum(x[i] for x in lst) for i in range(4))
                pairs = [(tot(t_list), tot(o_list) if o_list else None)]
                note = (f" (tshark {len(t_list)} streams, tcpstate {len(o_list)} connections;"
                        " compared as totals)")
            for t, o in pairs:
                n_streams += 1
                if o == t:
                    n_ok += 1
                    continue
                show = lambda v: "none" if v is None else \
                    " ".join(f"{n}={x}" for n, x in zip(KINDS, v))
                extra = note if len(t_list) != len(o_list) else ""
                line = f"{label}: {ends}: tcpstate {show(o)} vs tshark {show(t)}{extra}"
                if label in KNOWN:
                    known.append(f"{line}\n      known: {KNOWN[label]}")
                else:
                    bad.append(line)
    pct = 100.0 * n_ok / n_streams if n_streams else 100.0
    print(f"tshark flag counts (SYN, SYN-ACK, FIN, RST per stream, {len(oracles)} captures): "
          f"{n_ok}/{n_streams} streams agree = {pct:.1f}%")
    print(f"{len(known)} known disagreements (streams tcpstate does not track):")
    for k in known:
        print(f"  {k}")
    print(f"{len(bad)} unexplained disagreements:")
    for b in bad:
        print(f"  {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
