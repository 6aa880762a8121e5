#!/usr/bin/env python3
"""Hostile captures: tcpstate must not crash, must not mislead, and must say
exactly what it could not use.

    hostile.py CASE TCPSTATE

Each CASE builds its capture byte by byte (pcapgen.py) and checks tcpstate's
exit status, diagnostics and figures against numbers that come from the
construction itself (packets written, the byte offset of the record that was
cut, the states the segments imply by RFC 793), never from tcpstate's own
output. Exit 0 pass, 1 fail, 77 skip.
"""

import errno
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapgen import (ACK, FIN, LINKTYPE_RAW, PSH, RECORD_HEADER_LEN, RST, SKIP, SYN,  # noqa: E402
                     Capture, Conn, check, check_eq, ether, finish, ipv4, ipv6, pcap_header,
                     main_in_temp_dir, pcapng, record_header, run, run_json, states_by_port, tcp,
                     tcp_frame, write_temp)

A, B = '10.0.0.1', '10.0.0.2'
DECODE_REASONS = ('not_ip', 'not_tcp', 'fragment', 'truncated_link', 'truncated_ip',
                  'truncated_tcp', 'invalid_ip_version', 'invalid_ip_header',
                  'invalid_ip_length', 'invalid_tcp_offset', 'unsupported_link')


def handshake_capture(**kw):
    """A capture holding one handshake: 3 records of 54 bytes (Ethernet 14,
    IPv4 20, TCP 20) after the 24-byte file header."""
    c = Capture(**kw)
    Conn(c).handshake()
    return c


def one_line(err):
    lines = err.splitlines()
    check_eq(len(lines), 1, 'diagnostic lines on stderr (%r)' % err)
    return lines[0] if lines else ''


def check_prefix(line, prefix, what):
    return check(line.startswith(prefix), '%s: %r does not start with %r' % (what, line, prefix))


def decode_counts(summary):
    return {k: v for k, v in summary['decode'].items() if v}


# ---------------------------------------------------------------- damage

def case_cut_file_header(t):
    """A file that ends inside its 24-byte header: nothing to read, exit 1,
    the (empty) report still written."""
    path = write_temp(pcap_header()[:10])
    conns, s, err = run_json(t, path, expect_status=1)
    line = one_line(err)
    check_prefix(line, 'tcpstate: %s: ' % path, 'diagnostic')
    check('truncated' in line, 'the diagnostic says the file is truncated: %r' % line)
    check_eq(s['packets'], 0, 'packets')
    check_eq(s['input_errors'], 1, 'input_errors')
    check_eq(conns, [], 'connections')
    st, out, _ = run(t, ['-r', path])
    check_eq(st, 1, 'text run exit status')
    check('no packets' in out, 'the text report is still written')


def damaged(tail, what):
    """A handshake (3 records), then `tail`: the damage is record 4 at byte
    offset 24 + 3 * (16 + 54) = 234, and the handshake before it counts."""
    c = handshake_capture()
    offset = len(c.data)
    check_eq(offset, 24 + 3 * (RECORD_HEADER_LEN + 54), 'offset of record 4 (construction)')
    c.raw(tail)
    path = write_temp(c.bytes())
    conns, s, err = run_json(t_global, path, expect_status=1)
    line = one_line(err)
    check_prefix(line, 'tcpstate: %s: packet 4 (byte offset %d): ' % (path, offset), what)
    check_eq(s['packets'], 3, 'packets before the damage')
    check_eq(s['tcp_segments'], 3, 'segments before the damage')
    check_eq(s['input_errors'], 1, 'input_errors')
    check_eq(states_by_port(conns), {40000: ('ESTABLISHED', 'ESTABLISHED')},
             'states from the handshake before the damage')
    st, out, err2 = run(t_global, ['-r', path])
    check_eq(st, 1, 'text run exit status')
    check('3 packets, 3 TCP segments' in out, 'the text report covers the 3 packets')
    check_eq(err2, err, 'same diagnostic in text mode')
    return line


def case_cut_record_header(t):
    line = damaged(b'\x01' * 8, 'record header cut after 8 of 16 bytes')
    check('truncated' in line, 'says truncated: %r' % line)


def case_cut_record_data(t):
    line = damaged(record_header(1700000001, 0, 54, 54) + b'\0' * 20,
                   'record data cut after 20 of 54 bytes')
    check('truncated' in line, 'says truncated: %r' % line)


def case_giant_record(t):
    """A record claiming a gigabyte: refused where it is, not allocated."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    line = damaged(record_header(1700000001, 0, 1 << 30, 1 << 30) + b'\0' * 100,
                   'record claiming 1 GiB')
    check(str(1 << 30) in line, 'names the length claimed (%d): %r' % (1 << 30, line))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    check(max(peak, before) < 512 * 1024, 'peak RSS %d KiB: tried to allocate the gigabyte?'
          % peak)


def case_cut_pcapng(t):
    """pcapng cut inside its third Enhanced Packet Block (SYN, SYN-ACK read)."""
    ng, offsets = pcapng(handshake_capture().bytes())
    path = write_temp(ng[:offsets[3] + 20], '.pcapng')
    conns, s, err = run_json(t, path, expect_status=1)
    line = one_line(err)
    check_prefix(line, 'tcpstate: %s: packet 3 (byte offset %d): ' % (path, offsets[3]),
                 'pcapng damage')
    check_eq(s['packets'], 2, 'packets before the damage')
    check_eq(states_by_port(conns), {40000: ('ESTABLISHED', 'SYN_RECEIVED')},
             'states after SYN and SYN-ACK')


def case_wrong_magic(t):
    """Not a capture: exit 1 with libpcap's reason; a good file given after
    it is still read (rotated files keep going past a bad one)."""
    bad = write_temp(b'\x00\x01\x02\x03' + pcap_header()[4:] + b'\0' * 70)
    good = write_temp(handshake_capture().bytes())
    st, out, err = run(t, ['-r', bad, '--format', 'json'])
    check_eq(st, 1, 'exit status')
    check_eq(err, 'tcpstate: %s: unknown file format\n' % bad, 'diagnostic')
    conns, s, err = run_json(t, bad, ['-r', good], expect_status=1)
    check_eq(err, 'tcpstate: %s: unknown file format\n' % bad, 'diagnostic with two files')
    check_eq(s['packets'], 3, 'packets of the good file')
    check_eq(s['input_errors'], 1, 'input_errors')
    check_eq(states_by_port(conns), {40000: ('ESTABLISHED', 'ESTABLISHED')}, 'states')


def case_damaged_then_good(t):
    """Rotated files: the first cut inside record 3, the second intact. Both
    are read, the first up to its damage; exit 1."""
    c1 = Capture()
    k = Conn(c1, client=(A, 40001))
    k.send('c', SYN)
    k.send('s', SYN | ACK)
    offset = len(c1.data)
    c1.raw(record_header(1700000001, 0, 54, 54) + b'\0' * 10)
    f1 = write_temp(c1.bytes())
    c2 = Capture()
    c2.ts += 100000                 # 0.1 s later: no retransmission timer is due
    Conn(c2, client=(A, 40002)).handshake()
    f2 = write_temp(c2.bytes())
    conns, s, err = run_json(t, f1, ['-r', f2], expect_status=1)
    line = one_line(err)
    check_prefix(line, 'tcpstate: %s: packet 3 (byte offset %d): ' % (f1, offset),
                 'damage in the first file')
    check_eq(s['packets'], 5, 'packets of both files')
    check_eq(s['input_errors'], 1, 'input_errors')
    check_eq(states_by_port(conns), {40001: ('ESTABLISHED', 'SYN_RECEIVED'),
                                     40002: ('ESTABLISHED', 'ESTABLISHED')}, 'states')


def case_stdin(t):
    """A damaged capture on a pipe: the same diagnostic (the byte offset
    when the C library can tell it on a pipe, glibc can); "-r - -r -" reads
    standard input once and says the second is empty instead of reading a
    closed stream."""
    c = handshake_capture()
    c.raw(b'\x01' * 8)
    st, out, err = run(t, ['-r', '-', '--format', 'json'], stdin=c.bytes())
    check_eq(st, 1, 'exit status')
    line = one_line(err)
    check(line.startswith('tcpstate: -: packet 4: ') or
          line.startswith('tcpstate: -: packet 4 (byte offset 234): '),
          'damage on a pipe: %r' % line)
    check('"packets":3' in out, 'the 3 packets before the damage are reported')
    st, out, err = run(t, ['-r', '-', '-r', '-', '--format', 'json'],
                       stdin=handshake_capture().bytes())
    check_eq(st, 1, 'stdin twice: exit status')
    line = one_line(err)
    check_prefix(line, 'tcpstate: -: ', 'stdin twice')
    check('"packets":3' in out, 'stdin twice: the first read counts')


# ---------------------------------------------------------------- odd lengths

def case_caplen_over_snaplen(t):
    """Snapshot length 64, but record 4 holds 154 bytes (100 of payload):
    libpcap hands over the first 64; the records after it must still be
    found where they are. Plus a record whose caplen exceeds its wire length."""
    c = Capture(snaplen=64)
    k = Conn(c)
    k.handshake()
    k.send('c', ACK | PSH, b'x' * 100)
    k.send('s', ACK)
    k.close('c')
    # caplen 54 > wire length 40: trusted for what it holds (a window update)
    c.add(tcp_frame(B, 80, A, 40000, k.seq['s'], k.seq['c'], ACK, window=999), wirelen=40)
    conns, s, err = run_json(t, write_temp(c.bytes()))
    check_eq(err, '', 'stderr')
    check_eq(s['packets'], 10, 'packets (every record found)')
    check_eq(s['tcp_segments'], 10, 'segments')
    check_eq(decode_counts(s), {}, 'decode failures')
    check_eq(len(conns), 1, 'connections')
    if conns:
        check_eq(conns[0]['bytes'], [100, 0], 'payload bytes (from the IP length)')
        check_eq(conns[0]['packets'], [5, 5], 'packets per side')
        check_eq((conns[0]['client']['state'], conns[0]['server']['state']),
                 ('TIME_WAIT', 'CLOSED'), 'states after the client closed first')


def case_zero_length(t):
    """Records of zero captured bytes: counted as truncated, nothing read
    past them, the handshake after them intact."""
    c = Capture()
    c.add(b'', caplen=0, wirelen=0)
    c.add(b'', caplen=0, wirelen=60)
    Conn(c).handshake()
    conns, s, err = run_json(t, write_temp(c.bytes()))
    check_eq(s['packets'], 5, 'packets')
    check_eq(s['tcp_segments'], 3, 'segments')
    check_eq(decode_counts(s), {'truncated_link': 2}, 'decode counts')
    check_eq(states_by_port(conns), {40000: ('ESTABLISHED', 'ESTABLISHED')}, 'states')
    raw = Capture(linktype=LINKTYPE_RAW)
    raw.add(b'', caplen=0, wirelen=0)
    raw.add(ipv4(A, B, tcp(40000, 80, 1000, 0, SYN)))
    conns, s, err = run_json(t, write_temp(raw.bytes()))
    check_eq(decode_counts(s), {'truncated_ip': 1}, 'raw IP: decode counts')
    check_eq(states_by_port(conns), {40000: ('SYN_SENT', 'CLOSED')}, 'raw IP: states')


def case_timestamps_backwards(t):
    """Time running backwards changes nothing but time: the same segments
    give the same states as in forward order; the summary's last time is the
    latest seen. The seconds field is unsigned (0xffffffff is 2106)."""
    base = 1700000000 * 1000000
    order = [('c', SYN), ('s', SYN | ACK), ('c', ACK), ('c', FIN | ACK), ('s', ACK)]
    results = {}
    for direction in (1, -1):
        c = Capture()
        k = Conn(c)
        for i, (who, fl) in enumerate(order):
            k.send(who, fl, ts_us=base + 10000 * (i if direction > 0 else len(order) - i))
        conns, s, _ = run_json(t, write_temp(c.bytes()))
        results[direction] = states_by_port(conns)
        latest = base + 10000 * (len(order) if direction < 0 else len(order) - 1)
        check_eq(s['last_ts'], latest / 1e6, 'last_ts is the latest time (direction %d)'
                 % direction)
    check_eq(results[1], {40000: ('FIN_WAIT_2', 'CLOSE_WAIT')}, 'forward states')
    check_eq(results[-1], results[1], 'backward states equal forward states')

    c = Capture()
    Conn(c, client=(A, 40001)).handshake()
    k = Conn(c, client=(A, 40002))
    for i, (who, fl) in enumerate([('c', SYN), ('s', SYN | ACK), ('c', ACK)]):
        k.send(who, fl, ts_us=i)        # back to 1970
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(states_by_port(conns), {40001: ('ESTABLISHED', 'ESTABLISHED'),
                                     40002: ('ESTABLISHED', 'ESTABLISHED')}, 'jump to 1970')
    check_eq(s['last_ts'], 1700000000.03, 'last_ts is the latest time seen')

    c = Capture()
    k = Conn(c)
    k.handshake()
    k.send('c', ACK | PSH, b'x', ts_us=0xffffffff * 1000000)
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(s['last_ts'], 4294967295.0, 'ts_sec 0xffffffff read unsigned (2106)')
    st, out, _ = run(t, ['-r', write_temp(c.bytes())])
    check('2106-02-07 06:28:15' in out, 'text shows 2106-02-07 06:28:15')


def span_scenarios(cap):
    """Connections in many states; returns {client port: expected states}."""
    want = {}
    k = Conn(cap, client=(A, 40001))
    k.handshake()
    k.send('c', ACK | PSH, b'a' * 100)
    k.send('s', ACK)
    k.close('c')
    want[40001] = ('TIME_WAIT', 'CLOSED')
    k = Conn(cap, client=(A, 40002))
    k.handshake()
    k.send('s', ACK | PSH, b'b' * 300)
    k.send('c', ACK)
    k.close('s')
    want[40002] = ('CLOSED', 'TIME_WAIT')
    k = Conn(cap, client=(A, 40003))
    k.send('c', SYN)
    k.send('s', RST | ACK, ack=k.seq['c'])
    want[40003] = ('CLOSED', 'CLOSED')
    k = Conn(cap, client=(A, 40004))
    k.send('c', SYN)
    want[40004] = ('SYN_SENT', 'CLOSED')
    k = Conn(cap, client=(A, 40005))
    k.handshake()
    k.send('c', RST | ACK)
    want[40005] = ('CLOSED', 'CLOSED')
    k = Conn(cap, client=(A, 40006))
    k.handshake()
    k.send('s', FIN | ACK)
    k.send('c', ACK)
    want[40006] = ('CLOSE_WAIT', 'FIN_WAIT_2')
    k = Conn(cap, client=(A, 40007))
    k.send('c', SYN)
    k.send('s', SYN | ACK)
    want[40007] = ('ESTABLISHED', 'SYN_RECEIVED')
    k = Conn(cap, client=(A, 40008))
    k.handshake()
    k.send('c', FIN | ACK)
    want[40008] = ('FIN_WAIT_1', 'CLOSE_WAIT')
    return want


class SpanCapture(Capture):
    """Every packet twice, 1 us apart, as a SPAN port mirroring both
    directions delivers them."""

    def add(self, frame, **kw):
        n = super().add(frame, **kw)
        super().add(frame, step_us=1)
        return n


def case_duplicates(t):
    plain, span = Capture(), SpanCapture()
    want = span_scenarios(plain)
    span_scenarios(span)
    n = plain.count
    check_eq(span.count, 2 * n, 'records in the SPAN capture (construction)')
    c1, s1, _ = run_json(t, write_temp(plain.bytes()))
    c2, s2, _ = run_json(t, write_temp(span.bytes()))
    check_eq(states_by_port(c1), want, 'states without duplicates')
    check_eq(states_by_port(c2), want, 'states with every packet twice')
    key = lambda c: (c['client']['port'], c['packets'], c['bytes'], c['flags'])  # noqa: E731
    check_eq(sorted(map(key, c2)), sorted(map(key, c1)), 'packets, bytes and flags per connection')
    check_eq(s2['packets'], 2 * n, 'packets read')
    check_eq(s2.get('duplicates'), n, 'duplicates counted')
    check_eq(s1.get('duplicates'), 0, 'no duplicates without SPAN')
    check_eq(s2['anomalies'], s1['anomalies'], 'anomalies')
    # A real retransmission (1 s later) is not a duplicate.
    c = Capture()
    k = Conn(c)
    k.send('c', SYN)
    k.send('c', SYN, seq=1000, step_us=1000000)
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(s.get('duplicates'), 0, 'a SYN retransmitted after 1 s is no duplicate')
    check_eq([x['packets'] for x in conns], [[2, 0]], 'both SYNs counted')


# ---------------------------------------------------------------- IP and TCP fields

def case_ip_length(t):
    """IP length 0 (TSO/GSO captures): the frame length stands in; longer
    than the frame on the wire: invalid; cut short by the snapshot length
    only: fine."""
    c = Capture()
    c.add(ether(ipv4(A, B, tcp(40000, 80, 1000, 0, SYN), total_len=0)))
    c.add(ether(ipv4(B, A, tcp(80, 40000, 5000, 1001, SYN | ACK), total_len=0)))
    c.add(ether(ipv4(A, B, tcp(40000, 80, 1001, 5001, ACK | PSH, payload=b'x' * 3000),
                     total_len=0)))
    c.add(ether(ipv4(A, B, tcp(40000, 80, 4001, 5001, ACK | PSH, payload=b'y' * 100),
                     total_len=200)))                                # 140 bytes in the frame
    c.add(ether(ipv4(A, B, tcp(40000, 80, 4001, 5001, ACK), total_len=10)))   # below IHL
    f = ether(ipv4(A, B, tcp(40000, 80, 4001, 5001, ACK | PSH, payload=b'z' * 1460)))
    c.add(f[:54], wirelen=len(f))                                    # -s 54
    seg = tcp(40000, 80, 1000, 0, SYN)
    c.add(ether(ipv6(1, 2, seg, plen=0), 0x86dd))                    # IPv6 TSO
    c.add(ether(ipv6(1, 2, seg, plen=400), 0x86dd))                  # longer than the frame
    conns, s, err = run_json(t, write_temp(c.bytes()))
    check_eq(s['packets'], 8, 'packets')
    check_eq(s['tcp_segments'], 5, 'segments used (3 TSO, 1 snaplen-cut, 1 IPv6 TSO)')
    check_eq(decode_counts(s), {'invalid_ip_length': 3}, 'decode counts')
    byport = {(x['client']['addr'], x['client']['port']): x for x in conns}
    v4 = byport.get((A, 40000))
    check(v4 is not None, 'the IPv4 connection is reported')
    if v4:
        check_eq(v4['bytes'], [3000 + 1460, 0], 'payload bytes from frame and wire lengths')
        check_eq((v4['client']['state'], v4['server']['state']), ('ESTABLISHED', 'ESTABLISHED'),
                 'IPv4 states')
    check(('2001:db8::1', 40000) in byport, 'the IPv6 TSO SYN made its connection')


def case_tcp_offset(t):
    """Data offsets 0-4 (below the 20-byte minimum) and 15 (past the
    segment) are invalid; an offset inside the segment but past the captured
    bytes is truncated; a correct one with options is used."""
    c = handshake_capture()
    for off in range(5):
        c.add(ether(ipv4(A, B, tcp(40000, 80, 1001, 5001, ACK, offset=off))))
    c.add(ether(ipv4(A, B, tcp(40000, 80, 1001, 5001, ACK, offset=15))))
    f = ether(ipv4(A, B, tcp(40000, 80, 1001, 5001, ACK, options=b'\x01' * 40)))
    c.add(f[:60], wirelen=len(f))
    c.add(ether(ipv4(A, B, tcp(40000, 80, 1001, 5001, ACK | PSH, options=b'\x01\x01\x01\x00',
                                 payload=b'ok'))))
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(s['packets'], 3 + 5 + 1 + 1 + 1, 'packets')
    check_eq(s['tcp_segments'], 4, 'segments used')
    check_eq(decode_counts(s), {'invalid_tcp_offset': 6, 'truncated_tcp': 1}, 'decode counts')
    if conns:
        check_eq(conns[0]['bytes'], [2, 0], 'payload after 4 bytes of options')


def case_tcp_options(t):
    """Malformed options stop the parse where they are; what came before
    still counts. Observable through window scaling: with the client's scale
    the server's window is 1000 << 7 = 128000 and an RST 50000 bytes ahead is
    in it (accepted); without, the window is 1000 and the RST is ignored."""
    ws = b'\x03\x03\x07'
    cases = [
        ('good', b'\x01' + ws, True),
        ('length 0', b'\x1e\x00\x01' + ws, False),
        ('length 1', b'\x1e\x01\x01' + ws, False),
        ('past the header', b'\x01\x03\x0a\x07', False),
        ('bad after the scale', b'\x01' + ws + b'\x02\x08', True),
        ('EOL first', b'\x00\x01' + ws, False),
    ]
    c = Capture()
    want = {}
    for i, (name, opts, scaled) in enumerate(cases):
        k = Conn(c, client=(A, 41000 + i))
        k.send('c', SYN, window=1000, options=opts)
        k.send('s', SYN | ACK, window=1000, options=b'\x01' + ws)
        k.send('c', ACK, window=1000)
        k.send('s', ACK, window=1000)
        k.send('c', RST | ACK, seq=k.seq['c'] + 50000)
        want[41000 + i] = ('CLOSED', 'CLOSED' if scaled else 'ESTABLISHED')
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(s['tcp_segments'], 5 * len(cases), 'every segment used despite its options')
    check_eq(decode_counts(s), {}, 'decode counts')
    check_eq(states_by_port(conns), want, 'RST accepted exactly where the scale was parsed')
    check_eq(s['anomalies']['rst_out_of_window'], sum(1 for x in cases if not x[2]),
             'RSTs outside the unscaled window')


def case_all_flags(t):
    """Every one of the 256 flag bytes as the first and only segment of its
    own connection (client port 40000 + flags, server port 80; a SYN+ACK goes
    server to client). PSH, URG, ECE and CWR change nothing. Impossible
    combinations (SYN with FIN or RST; no SYN, RST or ACK) make no
    connection: such a segment proves nothing about either endpoint."""
    c = Capture()
    want_client, want_server = {}, {}
    valid = 0
    for f in range(256):
        syn, ack, fin, rst = f & SYN, f & ACK, f & FIN, f & RST
        if syn and ack and not (fin or rst):
            c.add(tcp_frame(B, 80, A, 40000 + f, 5000, 1001, f), step_us=1000)
        else:
            c.add(tcp_frame(A, 40000 + f, B, 80, 1000, 5001 if ack else 0, f), step_us=1000)
        if syn and (fin or rst):
            continue                                   # impossible
        if rst:
            cs, ss = 'CLOSED', 'CLOSED'                # an RST opens nothing
        elif syn and ack:
            cs, ss = 'ESTABLISHED', 'SYN_RECEIVED'     # the client takes the SYN-ACK
        elif syn:
            cs, ss = 'SYN_SENT', 'CLOSED'              # a listener answers later, if ever
        elif not ack:
            continue                                   # impossible
        elif fin:
            cs, ss = 'FIN_WAIT_1', 'CLOSE_WAIT'        # picked up mid-stream, then a FIN
        else:
            cs, ss = 'ESTABLISHED', 'ESTABLISHED'      # picked up mid-stream
        valid += 1
        want_client[cs] = want_client.get(cs, 0) + 1
        want_server[ss] = want_server.get(ss, 0) + 1
    check_eq(valid, 128, 'valid flag bytes (construction)')
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(s['packets'], 256, 'packets')
    check_eq(s['tcp_segments'], 256, 'segments')
    check_eq(s['connections'], 128, 'connections')
    check_eq(s['anomalies']['bad_flags'], 128, 'bad_flags anomalies')
    check_eq({k: v for k, v in s['states']['client'].items() if v}, want_client, 'client states')
    check_eq({k: v for k, v in s['states']['server'].items() if v}, want_server, 'server states')


def case_seq_wrap(t):
    """Sequence numbers wrapping round 2^32: handshake, data and FINs across
    the wrap; a FIN at 0xffffffff acknowledged by 0; RSTs judged in the
    window modulo 2^32."""
    c = Capture()
    k = Conn(c, client=(A, 40001), cisn=0xfffffff0, sisn=0xffffffff)
    k.handshake()
    k.send('c', ACK | PSH, b'x' * 100)       # 0xfffffff1 .. 0x55
    k.send('s', ACK)
    k.send('s', ACK | PSH, b'y' * 50)        # 0 .. 0x32
    k.send('c', ACK)
    k.close('c')
    k = Conn(c, client=(A, 40002), cisn=0xfffffffe)
    k.handshake()
    k.send('c', FIN | ACK)                   # FIN at 0xffffffff
    check_eq(k.seq['c'], 0, 'the FIN ends at 0 (construction)')
    k.send('s', ACK)
    k = Conn(c, client=(A, 40003), cisn=0xffffff00)
    k.handshake()
    k.send('c', ACK | PSH, b'z' * 0x200)     # 0xffffff01 .. 0x101
    k.send('s', ACK)
    k.send('c', RST | ACK)                   # at 0x101: in the window
    k = Conn(c, client=(A, 40004), cisn=0xffffff00)
    k.handshake()
    k.send('c', ACK | PSH, b'z' * 0x200)
    k.send('s', ACK)
    k.send('c', RST | ACK, seq=0x7fff0000)   # half the sequence space away
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    check_eq(states_by_port(conns), {
        40001: ('TIME_WAIT', 'CLOSED'),
        40002: ('FIN_WAIT_2', 'CLOSE_WAIT'),
        40003: ('CLOSED', 'CLOSED'),
        40004: ('CLOSED', 'ESTABLISHED'),
    }, 'states')
    byport = {x['client']['port']: x for x in conns}
    if 40001 in byport:
        check_eq(byport[40001]['bytes'], [100, 50], 'bytes across the wrap')
    check_eq(s['anomalies']['rst_out_of_window'], 1, 'the far RST is outside the window')


# ---------------------------------------------------------------- scale

def syn_stream(n, out):
    """A nanosecond pcap of n SYNs from n different clients, 100 ns apart
    (all within 1 s: no timer fires), written to the file object out."""
    out.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 262144, 1))
    frame = bytearray(tcp_frame(A, 40000, B, 80, 1000, 0, SYN))
    rec = bytearray(record_header(0, 0, len(frame), len(frame)) + frame)
    base = 1700000000 * 1000000000
    chunk = bytearray()
    for i in range(n):
        ts = base + 100 * i
        struct.pack_into('<II', rec, 0, ts // 1000000000, ts % 1000000000)
        rec[16 + 26:16 + 30] = (0x0a000000 | i).to_bytes(4, 'big')   # source 10.x.y.z
        chunk += rec
        if len(chunk) >= 1 << 20:
            out.write(chunk)
            chunk = bytearray()
    out.write(chunk)


def case_max_connections(t):
    """10 million connections against --max-connections 100000: every one is
    counted, the table never holds more than the cap, the rest are evicted
    (and counted), memory stays bounded, nothing runs out."""
    total = int(os.environ.get('HOSTILE_CONNECTIONS', 10000000))
    cap = 100000
    probe = write_temp(handshake_capture().bytes())
    st, _, err = run(t, ['--max-connections', '1000', '-r', probe])
    if st == 2:
        print('SKIP: --max-connections not implemented (%s)' % err.strip().splitlines()[0])
        sys.exit(SKIP)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.Popen([t, '-r', '-', '--max-connections', str(cap), '--format', 'json'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err_box = []
    reader = threading.Thread(target=lambda: err_box.append(p.stderr.read()))
    reader.start()

    def feed():
        try:
            syn_stream(total, p.stdin)
            p.stdin.close()
        except BrokenPipeError:
            pass
    feeder = threading.Thread(target=feed)
    feeder.start()
    # Gigabytes of JSON Lines: count them in big chunks, keep only the tail
    # (the summary is the last line).
    records, tail = 0, b''
    while True:
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            break
        records += chunk.count(b'\n')
        tail = (tail + chunk)[-65536:]
    feeder.join()
    rc = p.wait()
    reader.join()
    summary = None
    for line in tail.splitlines():
        if line.startswith(b'{"type":"summary"'):
            summary = json.loads(line)
    err = err_box[0].decode('utf-8', 'replace') if err_box else ''
    check_eq(rc, 0, 'exit status (stderr: %s)' % err.strip()[:300])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if not check(summary is not None, 'a summary record'):
        return
    check_eq(summary['packets'], total, 'packets')
    check_eq(summary['connections'], total, 'connections (one per SYN)')
    check(summary['peak_open'] <= cap, 'peak_open %d <= cap %d' % (summary['peak_open'], cap))
    check_eq(summary['out_of_memory'], 0, 'out_of_memory')
    evicted = [k for k in summary if 'evict' in k]
    if check(evicted, 'the summary counts evictions (keys: %s)' % sorted(summary)):
        check_eq(summary[evicted[0]], total - cap, evicted[0])
    check_eq(summary['states']['client']['SYN_SENT'], total, 'clients in SYN_SENT')
    check_eq(summary['states']['server']['CLOSED'], total, 'servers CLOSED')
    check(max(peak_kib, before) < 1024 * 1024, 'peak RSS %d MiB bounded by the cap'
          % (peak_kib // 1024))
    print('%d connections, cap %d, peak RSS %d MiB, %d JSON lines' % (total, cap,
                                                                       peak_kib // 1024, records))


# ---------------------------------------------------------------- errors and counts

def case_errors(t):
    """Each failure has its own message and status: unreadable file 1 (with
    the OS's reason), unknown link type 1 (named), bad filter 2, bad option
    values 2; usage errors print no report."""
    good = write_temp(handshake_capture().bytes())
    missing = os.path.join(tempfile.gettempdir(), 'tcpstate-hostile-no-such-file.pcap')
    st, out, err = run(t, ['-r', missing, '--format', 'json'])
    check_eq(st, 1, 'missing file: exit status')
    check_eq(err, 'tcpstate: %s: %s\n' % (missing, os.strerror(errno.ENOENT)), 'missing file')
    check('"input_errors":1' in out, 'missing file: the report counts it')
    d = tempfile.mkdtemp(prefix='tcpstate-hostile-')
    st, out, err = run(t, ['-r', d])
    check_eq(st, 1, 'directory: exit status')
    check(err.startswith('tcpstate: %s: ' % d) and os.strerror(errno.EISDIR) in err,
          'directory: %r' % err)
    os.rmdir(d)
    for lt, text in ((147, 'link type 147 is not supported'),
                     (105, 'link type IEEE802_11 (105) is not supported')):
        path = write_temp(pcap_header(linktype=lt) + record_header(1, 0, 4, 4) + b'abcd')
        st, out, err = run(t, ['-r', path])
        check_eq(st, 1, 'link type %d: exit status' % lt)
        check_eq(err, 'tcpstate: %s: %s\n' % (path, text), 'link type %d' % lt)
    st, out, err = run(t, ['-r', good, 'port', 'and'])
    check_eq(st, 2, 'bad filter: exit status')
    check_eq(out, '', 'bad filter: no report on stdout')
    check_prefix(err, "tcpstate: %s: invalid filter expression 'port and': " % good, 'bad filter')
    bad_values = [
        (['--limit', 'x'], "invalid --limit 'x'"),
        (['-c', '0'], "invalid -c '0'"),
        (['-c', 'ten'], "invalid -c 'ten'"),
        (['--format', 'xml'], "invalid --format 'xml'"),
        (['--at', 'yesterday'], "invalid --at 'yesterday'"),
        (['--time-wait', '-1'], "invalid --time-wait '-1'"),
        (['--max-connections', 'lots'], '--max-connections'),
        (['--no-such-option'], '--no-such-option'),
    ]
    for args, needle in bad_values:
        st, out, err = run(t, ['-r', good] + args)
        check_eq(st, 2, '%s: exit status' % ' '.join(args))
        check_eq(out, '', '%s: nothing on stdout' % ' '.join(args))
        check(err.startswith('tcpstate: ') and needle in err.splitlines()[0],
              '%s: message %r names %r' % (' '.join(args), err, needle))
    st, out, err = run(t, [])
    check_eq(st, 2, 'no input: exit status')


def case_decode_counts(t):
    """One frame for every reason a packet cannot be used, after a handshake:
    each reason counted once, and packets = segments + everything counted."""
    c = handshake_capture()
    frames = {
        'not_ip': ether(b'\x00\x01\x08\x00\x06\x04\x00\x01' + b'\0' * 20, 0x0806),
        'not_tcp': ether(ipv4(A, B, struct.pack('!HHHH', 5353, 53, 8, 0), proto=17)),
        'fragment': ether(ipv4(A, B, b'\0' * 24, frag=100)),
        'truncated_link': (ether(b'')[:10], 60),
        'truncated_ip': (ether(ipv4(A, B, tcp(40000, 80, 1, 0, SYN)))[:24], 54),
        'truncated_tcp': (ether(ipv4(A, B, tcp(40000, 80, 1, 0, SYN)))[:44], 54),
        'invalid_ip_version': ether(ipv4(A, B, tcp(40000, 80, 1, 0, SYN), version=5)),
        'invalid_ip_header': ether(ipv4(A, B, tcp(40000, 80, 1, 0, SYN), ihl=4)),
        'invalid_ip_length': ether(ipv4(A, B, tcp(40000, 80, 1, 0, SYN), total_len=1000)),
        'invalid_tcp_offset': ether(ipv4(A, B, tcp(40000, 80, 1, 0, SYN, offset=3))),
    }
    for reason in DECODE_REASONS:
        if reason not in frames:
            continue
        f = frames[reason]
        if isinstance(f, tuple):
            c.add(f[0], wirelen=f[1])
        else:
            c.add(f)
    conns, s, _ = run_json(t, write_temp(c.bytes()))
    want = {r: 1 for r in frames}
    check_eq(decode_counts(s), want, 'decode counts')
    check_eq(set(s['decode']), set(DECODE_REASONS), 'every reason present in the summary')
    check_eq(s['packets'], 3 + len(frames), 'packets')
    check_eq(s['tcp_segments'], 3, 'segments')
    check_eq(s['packets'], s['tcp_segments'] + sum(s['decode'].values()),
             'every packet either used or counted by reason')
    st, out, _ = run(t, ['-r', write_temp(c.bytes())])
    line = [x for x in out.splitlines() if x.startswith('Packets not used: ')]
    check_eq(line, ['Packets not used: ' + ', '.join('1 ' + r for r in DECODE_REASONS
                                                     if r in frames)], 'text summary line')


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith('case_')}
t_global = None


def main(argv):
    global t_global
    if len(argv) != 2 or argv[0] not in CASES:
        print('usage: hostile.py CASE TCPSTATE; cases: ' + ' '.join(sorted(CASES)))
        return 2
    name, t_global = argv
    CASES[name](t_global)
    return finish(name)


if __name__ == '__main__':
    sys.exit(main_in_temp_dir(main, sys.argv[1:], 'tcpstate-hostile-'))
