#!/usr/bin/env python3
"""The text listing's ZEEK column against --format json, connection by
connection, at several --limit values: on a capture made by tcpstate-gen
(3,000 connections over two minutes, many retired while the capture goes
on), and on one written here in which the listing's first connection is a
clean one that a later unclean one must displace.

In text, the tracker models Zeek's view only for connections the listing can
still show (report_zeek_upto()): once --limit unclean ones are kept, a later
connection cannot get in. JSON writes every connection's Zeek fields, so they
are always modelled there; a listed connection that lost its model would show
other letters (or "-") than its JSON record.

usage: zeek_listing.py TCPSTATE TCPSTATE_GEN"""
import json
import os
import struct
import subprocess
import sys
import tempfile


def write_pcap(path, packets):
    """packets: (seconds, from_client, client_port, flags, seq, ack, payload
    bytes) between 10.0.0.1 (client) and 10.0.0.2:80, Ethernet, IPv4."""
    bits = {'F': 1, 'S': 2, 'R': 4, 'P': 8, 'A': 16}
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for ts, from_client, cport, flags, seq, ack, n in packets:
            src, dst = (b'\x0a\x00\x00\x01', b'\x0a\x00\x00\x02')[::1 if from_client else -1]
            sport, dport = (cport, 80) if from_client else (80, cport)
            tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4,
                              sum(bits[c] for c in flags), 65535, 0, 0) + b'x' * n
            ip = bytearray(struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6,
                                       0, src, dst))
            csum = sum(struct.unpack('!10H', ip))
            csum = (csum & 0xffff) + (csum >> 16)
            ip[10:12] = struct.pack('!H', ~((csum & 0xffff) + (csum >> 16)) & 0xffff)
            frame = b'\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00' + bytes(ip) + tcp
            f.write(struct.pack('<IIII', int(ts), round(ts % 1 * 1e6), len(frame), len(frame)))
            f.write(frame)


# Connection 1 closes cleanly at 0.1 s: its client's TIME_WAIT runs out at
# 60.1 s and it is retired, clean, at the next packet (61 s), filling a
# one-row listing. Connection 2, open since 1 s, sends data at 61 s and is
# reset at 61.1 s: unclean, it takes the row. Its Zeek view must include
# those last segments (history "ShADr" by Zeek's rules: SYN, SYN-ACK, ACK,
# client data, server RST), although a clean connection filled the listing
# before they came.
DISPLACE = [
    (0.0, True, 40001, 'S', 100, 0, 0), (0.0, False, 40001, 'SA', 500, 101, 0),
    (0.0, True, 40001, 'A', 101, 501, 0), (0.1, True, 40001, 'FA', 101, 501, 0),
    (0.1, False, 40001, 'A', 501, 102, 0), (0.1, False, 40001, 'FA', 501, 102, 0),
    (0.1, True, 40001, 'A', 102, 502, 0),
    (1.0, True, 40002, 'S', 1000, 0, 0), (1.0, False, 40002, 'SA', 7000, 1001, 0),
    (1.0, True, 40002, 'A', 1001, 7001, 0),
    (61.0, True, 40002, 'PA', 1001, 7001, 10), (61.1, False, 40002, 'RA', 7001, 1011, 0),
]


def listing(tcpstate, cap, limit):
    """{id: "conn_state history"} of the text listing, and its header's total."""
    out = subprocess.run([tcpstate, '-r', cap, '--limit', str(limit)], capture_output=True,
                         text=True, check=True).stdout
    lines = out.splitlines()
    rows, unclean = {}, None
    for i, line in enumerate(lines):
        if line.endswith('not closed cleanly'):
            unclean = int(line.split(', ')[1].split()[0])
        if line.startswith('CONNECTIONS ('):
            assert lines[i + 1].split()[0] == 'ID', lines[i + 1]
            for row in lines[i + 2:]:
                if not row.strip() or row.startswith('...'):
                    break
                f = row.split()
                assert len(f) == 12, row   # ID CLIENT SERVER 2 states START DURATION P B ZEEK(2) FLAGS
                rows[int(f[0])] = f[9] + ' ' + f[10]
            break
    return rows, unclean


def main():
    tcpstate, gen = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as d:
        cap = os.path.join(d, 'gen.pcap')
        subprocess.run([gen, '-o', cap, '--packets', '40000', '--connections', '3000',
                        '--concurrent', '300', '--rate', '300', '--quiet'], check=True)
        zeek = {}
        out = subprocess.run([tcpstate, '-r', cap, '--format', 'json'], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            o = json.loads(line)
            if o['type'] == 'connection':
                zeek[o['id']] = o['conn_state'] + ' ' + (o['history'] or '-')
        assert len(zeek) == 3000, len(zeek)
        failed = 0
        for limit in (1, 2, 7, 50, 0):
            rows, unclean = listing(tcpstate, cap, limit)
            # enough unclean connections that the listing fills with them
            assert unclean is not None and unclean > 50, unclean
            want = limit if limit else len(zeek)
            if len(rows) != want:
                print(f'--limit {limit}: {len(rows)} rows listed, expected {want}')
                failed += 1
            same = 0
            for cid, z in sorted(rows.items()):
                if zeek.get(cid) == z:
                    same += 1
                else:
                    print(f'--limit {limit}: connection {cid}: listed "{z}", JSON "{zeek.get(cid)}"')
                    failed += 1
            print(f'--limit {limit}: {len(rows)} listed, ZEEK column as in JSON for {same}')
        cap = os.path.join(d, 'displace.pcap')
        write_pcap(cap, DISPLACE)
        rows, _ = listing(tcpstate, cap, 1)
        print(f'clean connection displaced: listed {rows}')
        if rows != {2: 'RSTR ShADr'}:
            print('expected {2: \'RSTR ShADr\'}')
            failed += 1
        if failed:
            print(f'FAIL: {failed} differences')
            return 1
        print(f'ok: {unclean} of 3000 connections not closed cleanly; every listed ZEEK column '
              'matches JSON at --limit 1, 2, 7, 50 and 0')
        return 0


if __name__ == '__main__':
    sys.exit(main())
