#!/usr/bin/env python3
"""Seed corpora for the fuzz harnesses, made from the project's own captures.

    seeds.py capture OUTDIR [PCAP ...]   whole files for fuzz_capture
    seeds.py packets OUTDIR [PCAP ...]   fuzz_packets' frame format

Each PCAP given (testdata/*.pcap) becomes a seed; small captures crafted here
with tests/hostile/pcapgen.py are added either way (handshakes, closes, resets,
every flag class, IPv6, VLAN, raw IP, pcapng), so the corpus is never empty.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'hostile'))
import pcapgen as g  # noqa: E402

# Link types in the order of fuzz_packets.c's link_types[] (keep in step).
PACKETS_LINKTYPES = {1: 0, 101: 1, 0: 2, 108: 3, 9: 4, 113: 5, 276: 6, 104: 7, 10: 8,
                     51: 9, 50: 10, 228: 11, 229: 12}


def crafted():
    """(name, linktype, pcap bytes) of small hand-made captures."""
    out = []

    c = g.Capture()
    k = g.Conn(c)
    k.handshake()
    k.send('c', g.ACK | g.PSH, b'GET / HTTP/1.0\r\n\r\n')
    k.send('s', g.ACK | g.PSH, b'HTTP/1.0 200 OK\r\n\r\n')
    k.close('c')
    out.append(('close_client_first', c))

    c = g.Capture()
    k = g.Conn(c)
    k.handshake()
    k.close('s')
    k = g.Conn(c, client=('10.0.0.1', 40001))
    k.send('c', g.SYN)
    k.send('s', g.RST | g.ACK)
    k = g.Conn(c, client=('10.0.0.1', 40002))
    k.handshake()
    k.send('c', g.RST | g.ACK)
    k = g.Conn(c, client=('10.0.0.1', 40003))
    k.send('c', g.SYN)
    k.send('c', g.SYN, step_us=1000000)
    out.append(('mixed', c))

    c = g.Capture()
    k = g.Conn(c, cisn=0xfffffff0, sisn=0xffffffff)
    k.handshake()
    k.send('c', g.ACK | g.PSH, b'x' * 40)
    k.send('c', g.FIN | g.ACK)
    k.send('s', g.FIN | g.ACK)
    k.send('c', g.ACK)
    k.send('s', g.ACK, step_us=61000000)
    out.append(('wrap_time_wait', c))

    c = g.Capture()
    for f in range(0, 256, 7):
        c.add(g.tcp_frame('10.0.0.1', 30000 + f, '10.0.0.2', 443, 1000, 1, f))
    out.append(('flags', c))

    c = g.Capture()
    seg = g.tcp(40000, 80, 1000, 0, g.SYN, options=b'\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02'
                b'\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00')
    ip6 = struct.pack('!IHBB16s16s', 0x60000000, len(seg), 6, 64, b'\x20\x01' + b'\0' * 13 + b'\1',
                      b'\x20\x01' + b'\0' * 13 + b'\2') + seg
    c.add(g.ether(ip6, 0x86dd))
    c.add(g.ether(b'\x00\x07\x08\x00' + g.ipv4('10.0.0.1', '10.0.0.2', seg), 0x8100))
    c.add(g.ether(g.ipv4('10.0.0.1', '10.0.0.2', seg, total_len=0)))
    c.add(g.ether(g.ipv4('10.0.0.1', '10.0.0.2', seg, frag=0x2000)))
    out.append(('ipv6_vlan_tso', c))

    # Every encapsulation the decoder follows, one SYN inside each.
    c = g.Capture()
    syn = g.ipv4('10.0.0.1', '10.0.0.2', g.tcp(40000, 80, 1000, 0, g.SYN))
    inner_eth = g.ether(syn)
    c.add(g.ether(b'\x00\x01\x01\x40' + syn, 0x8847))                        # MPLS
    c.add(g.ether(b'\x11\x00\x00\x01' + struct.pack('!H', len(syn) + 2) + b'\x00\x21' + syn,
                  0x8864))                                                     # PPPoE
    c.add(g.ether(g.ipv4('192.0.2.1', '192.0.2.2', b'\x00\x00\x08\x00' + syn, proto=47)))
    c.add(g.ether(g.ipv4('192.0.2.1', '192.0.2.2', struct.pack('!HHHH', 50000, 4789,
                                                              16 + len(inner_eth), 0) +
                         b'\x08\x00\x00\x00\x00\x00\x2a\x00' + inner_eth, proto=17)))
    c.add(g.ether(g.ipv4('192.0.2.1', '192.0.2.2', struct.pack('!HHHH', 50000, 6081,
                                                              16 + len(inner_eth), 0) +
                         b'\x00\x00\x65\x58\x00\x00\x2a\x00' + inner_eth, proto=17)))
    c.add(g.ether(g.ipv4('192.0.2.1', '192.0.2.2', syn, proto=4)))               # IP-in-IP
    seg = g.tcp(40000, 80, 1000, 0, g.SYN)
    c.add(g.ether(g.ipv6(1, 2, b'\x06\x00' + b'\x01\x04\x00\x00\x00\x00' + seg, nh=0),
                  0x86dd))                                                     # hop-by-hop
    out.append(('tunnels', c))

    c = g.Capture(linktype=g.LINKTYPE_RAW)
    k = g.Conn(c)
    for n, (who, fl) in enumerate([('c', g.SYN), ('s', g.SYN | g.ACK), ('c', g.ACK)]):
        fr = g.tcp_frame('10.0.0.1' if who == 'c' else '10.0.0.2', 40000 if who == 'c' else 80,
                         '10.0.0.2' if who == 'c' else '10.0.0.1', 80 if who == 'c' else 40000,
                         1000 + (n > 1) if who == 'c' else 5000, 5001 if n > 1 else
                         (1001 if who == 's' else 0), fl)
        c.add(fr[14:])
    out.append(('raw_ip', c))
    return [(name, cap.bytes()) for name, cap in out]


def linktype_of(pcap_bytes):
    magic = pcap_bytes[:4]
    e = '<' if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    return struct.unpack_from(e + 'I', pcap_bytes, 20)[0]


def to_frames(pcap_bytes, flags):
    """fuzz_packets' format: link selector, run flags, then the frames."""
    lt = linktype_of(pcap_bytes)
    if lt not in PACKETS_LINKTYPES:
        return None
    out = bytearray([PACKETS_LINKTYPES[lt], flags, 0])
    prev = None
    for s, u, data, wl in g.records(pcap_bytes):
        now = s * 1000000 + u
        d_ms = 0 if prev is None else max(0, now - prev) // 1000
        prev = now
        step = (0x80 | min(d_ms // 1000, 127)) if d_ms >= 128 else d_ms
        data = data[:0xffff]
        extra = min(max(0, wl - len(data)) // 64, 255)
        out += struct.pack('<HBB', len(data), step, extra) + data
    return bytes(out)


def main(argv):
    if len(argv) < 2 or argv[0] not in ('capture', 'packets'):
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    kind, outdir, given = argv[0], argv[1], argv[2:]
    os.makedirs(outdir, exist_ok=True)
    seeds = []
    for path in given:
        with open(path, 'rb') as f:
            seeds.append(('testdata-' + os.path.basename(path), f.read()))
    seeds += [('crafted-' + n + '.pcap', b) for n, b in crafted()]
    n = 0
    for name, data in seeds:
        if kind == 'capture':
            outs = [(name, data)]
            if linktype_of(data) is not None and name.startswith('crafted-'):
                outs.append((name + 'ng', g.pcapng(data)[0]))
        else:
            # text with --timeline, and JSON (fuzz_packets.c's byte 1)
            outs = [(name + '.%s.frames' % f, to_frames(data, fl))
                    for f, fl in (('text', 0x04), ('json', 0x01))]
            outs = [(n, d) for n, d in outs if d]
        for oname, odata in outs:
            with open(os.path.join(outdir, oname), 'wb') as f:
                f.write(odata)
            n += 1
    print('%s: %d seeds in %s' % (kind, n, outdir))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
