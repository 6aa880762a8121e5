#!/usr/bin/env python3
"""The fast classic-pcap reader against libpcap's: same output, same errors.

    reader.py TCPSTATE

capture.c reads classic pcap 2.4 files in the host's byte order itself and
leaves everything else to libpcap. For damaged and odd files, built byte by
byte (pcapgen.py), this runs tcpstate four ways -- default,
TCPSTATE_PCAP_READER=libpcap, TCPSTATE_PCAP_READER=fast-only (which
refuses a file the fast reader cannot take, so a run that succeeds took the
fast reader, reading a regular file mapped in memory) and
TCPSTATE_PCAP_READER=fast-read (the same, but with read() calls instead of
the mapping) -- and requires identical exit status, stdout and stderr. Where
a file is damaged, the diagnostic is also checked against the record's byte
offset from the construction, so the two readers cannot agree on a wrong
answer. Files the fast reader must leave alone (opposite byte order, other
versions and magics, pipes) are checked to be refused by fast-only and read
the same by the other two. Exit 0 pass, 1 fail.
"""

import os
import random
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapgen import (ACK, FIN, PSH, SYN,  # noqa: E402
                     check, check_eq, fail, finish, main_in_temp_dir, run, tcp_frame,
                     write_temp)

MAGIC_MICRO, MAGIC_NANO, MAGIC_KUZNETZOV = 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34
HOST = '<' if sys.byteorder == 'little' else '>'
FOREIGN = '>' if HOST == '<' else '<'
REFUSED = 'TCPSTATE_PCAP_READER=%s: the fast reader cannot read this file'
FAST_MODES = ('fast-only', 'fast-read')
ARGS = (['--format', 'json', '--report', 'all', '--timeline'], ['--limit', '0'])


class Pcap:
    """A classic pcap in either byte order, with any magic and version;
    offsets[n] is where record n's header starts."""

    def __init__(self, order=HOST, magic=MAGIC_MICRO, snaplen=262144, major=2, minor=4,
                 linktype=1):
        self.order, self.magic = order, magic
        self.hdr = 24 if magic == MAGIC_KUZNETZOV else 16
        self.data = bytearray(struct.pack(order + 'IHHiIII', magic, major, minor, 0, 0,
                                          snaplen, linktype))
        self.offsets = {}
        self.sec, self.sub = 1700000000, 0

    def add(self, frame, caplen=None, wirelen=None, sec=None, sub=None):
        """A record holding frame; caplen/wirelen/sec/sub are the header's
        claims (raw 32-bit fields), by default the truth and 10 ms later."""
        if sec is None:
            self.sub += 10000 if self.magic != MAGIC_NANO else 10000000
            self.sec += self.sub // (1000000 if self.magic != MAGIC_NANO else 1000000000)
            self.sub %= 1000000 if self.magic != MAGIC_NANO else 1000000000
            sec, sub = self.sec, self.sub
        self.offsets[len(self.offsets) + 1] = len(self.data)
        cl = len(frame) if caplen is None else caplen
        wl = len(frame) if wirelen is None else wirelen
        self.data += struct.pack(self.order + 'IIII', sec & 0xffffffff, sub & 0xffffffff,
                                 cl & 0xffffffff, wl & 0xffffffff)
        if self.hdr == 24:
            self.data += b'\0' * 8          # ifindex, protocol, pkt_type, pad
        self.data += frame

    def raw(self, b):
        self.data += b

    def path(self):
        return write_temp(bytes(self.data))


def frame(sport, flags, payload=b'', dport=80, seq=1000):
    return tcp_frame('10.0.0.1', sport, '10.0.0.2', dport, seq, 0, flags, payload=payload)


def conversation(p, sport=40000, dport=80, payload=b''):
    """A handshake, a data segment, its ACK and a close, as records of p."""
    c, s = ('10.0.0.1', sport), ('10.0.0.2', dport)
    seq = {'c': 1000, 's': 5000}
    ack = {'c': 0, 's': 0}

    def send(who, flags, data=b''):
        src, dst = (c, s) if who == 'c' else (s, c)
        other = 's' if who == 'c' else 'c'
        p.add(tcp_frame(src[0], src[1], dst[0], dst[1], seq[who], ack[who], flags,
                        payload=data))
        seq[who] += len(data) + (1 if flags & (SYN | FIN) else 0)
        ack[other] = seq[who]
    send('c', SYN)
    send('s', SYN | ACK)
    send('c', ACK)
    send('c', ACK | PSH, payload)
    send('s', ACK)
    send('c', FIN | ACK)
    send('s', FIN | ACK)
    send('c', ACK)


def run_mode(t, mode, args, stdin=None):
    """tcpstate with TCPSTATE_PCAP_READER=mode (None: unset). stdin: bytes
    (a pipe) or a path (a regular file, opened here)."""
    saved = os.environ.pop('TCPSTATE_PCAP_READER', None)
    if mode is not None:
        os.environ['TCPSTATE_PCAP_READER'] = mode
    try:
        if isinstance(stdin, str):
            with open(stdin, 'rb') as f:
                f.seek(stdin_skip.get(stdin, 0))
                return run(t, args, stdin_file=f)
        return run(t, args, stdin=stdin)
    finally:
        os.environ.pop('TCPSTATE_PCAP_READER', None)
        if saved is not None:
            os.environ['TCPSTATE_PCAP_READER'] = saved


stdin_skip = {}     # path -> where the capture starts in it (standard input)


def same(t, name, args, fast, stdin=None):
    """Default, libpcap and (fast=True) fast-only and fast-read runs agree
    on everything; with fast=False fast-only and fast-read must refuse the
    file. Returns libpcap's (status, stdout, stderr)."""
    ref = run_mode(t, 'libpcap', args, stdin)
    got = run_mode(t, None, args, stdin)
    check_eq(got, ref, '%s %s: default reader vs libpcap' % (name, ' '.join(args[2:])))
    for mode in FAST_MODES:
        st, out, err = run_mode(t, mode, args, stdin)
        refused = REFUSED % mode
        if fast:
            check(refused not in err, '%s: %s refused it: %r' % (name, mode, err))
            check_eq((st, out, err), ref, '%s %s: %s vs libpcap'
                     % (name, ' '.join(args[2:]), mode))
        else:
            check(refused in err, '%s: %s did not refuse it: %r' % (name, mode, err))
            check_eq(st, 1, '%s: %s exit status' % (name, mode))
    return ref


def compare(t, name, path, fast=True, extra=(), damage=None, packets=None):
    """Every output format, all readers alike. damage: (packet number, byte
    offset, message) the diagnostic must give; packets: the JSON summary's
    packet count."""
    for args in ARGS:
        st, out, err = same(t, name, ['-r', path] + list(args) + list(extra), fast)
        if damage:
            n, off, msg = damage
            check_eq(err, 'tcpstate: %s: packet %d (byte offset %d): %s\n' % (path, n, off, msg),
                     '%s: diagnostic' % name)
            check_eq(st, 1, '%s: exit status' % name)
        else:
            check_eq(err, '', '%s: stderr' % name)
            check_eq(st, 0, '%s: exit status' % name)
        if packets is not None and args[1] == 'json':
            m = re.search(r'"packets":(\d+)', out.splitlines()[-1] if out else '')
            check(m is not None and int(m.group(1)) == packets,
                  '%s: %s packets in the summary, expected %d'
                  % (name, m.group(1) if m else 'no', packets))


# ---------------------------------------------------------------- cases

def clean_files(t):
    """Microsecond and nanosecond files, an empty one, odd timestamps."""
    for magic, what in ((MAGIC_MICRO, 'microseconds'), (MAGIC_NANO, 'nanoseconds')):
        p = Pcap(magic=magic)
        conversation(p, payload=b'hello')
        conversation(p, sport=40001, payload=b'x' * 1400)
        compare(t, what, p.path(), packets=16)
    compare(t, 'empty after the header', Pcap().path(), packets=0)
    compare(t, 'empty, nanoseconds', Pcap(magic=MAGIC_NANO).path(), packets=0)
    # Sub-second fields out of range or negative as 32-bit signed numbers
    # (libpcap scales microseconds on the signed value); seconds in 2038+.
    for magic in (MAGIC_MICRO, MAGIC_NANO):
        p = Pcap(magic=magic)
        for i, (sec, sub) in enumerate(((0x7fffffff, 999999), (0x80000000, 0),
                                        (0x80000000, 1000000), (0x80000001, 0x7fffffff),
                                        (0x80000002, 0x80000000), (0xfffffff0, 0xffffffff),
                                        (0xfffffff1, 999999999))):
            p.add(frame(41000 + i, SYN), sec=sec, sub=sub)
        compare(t, 'odd timestamps %x' % magic, p.path(), packets=7)


def damaged_files(t):
    """Cut record headers and data: libpcap's messages, exact offsets."""
    for magic in (MAGIC_MICRO, MAGIC_NANO):
        for n in (1, 8, 15):
            p = Pcap(magic=magic)
            conversation(p)
            off = len(p.data)
            p.raw(b'\x07' * n)
            compare(t, 'header cut after %d' % n, p.path(), packets=8,
                    damage=(9, off, 'truncated dump file; tried to read 16 header bytes, '
                            'only got %d' % n))
        for n in (0, 1, 53):
            p = Pcap(magic=magic)
            conversation(p)
            off = len(p.data)
            p.raw(struct.pack(HOST + 'IIII', 1700000100, 0, 54, 54) + b'\0' * n)
            compare(t, 'data cut after %d' % n, p.path(), packets=8,
                    damage=(9, off, 'truncated dump file; tried to read 54 captured bytes, '
                            'only got %d' % n))


def long_records(t):
    """caplen above the snapshot length (libpcap keeps the snapshot length's
    worth and skips the rest: the next record's offset must count it all),
    above libpcap's maximum of 262144, and exactly 262144."""
    # A SYN with 20 bytes of options and 80 of data: cut to 64 bytes, its
    # TCP header is incomplete (counted truncated_tcp), as libpcap hands it.
    big = tcp_frame('10.0.0.1', 40000, '10.0.0.2', 80, 1000, 0, SYN,
                    options=b'\x02\x04\x05\xb4\x04\x02\x08\x0a' + b'\0' * 8 + b'\x01\x03\x03\x07',
                    payload=b'x' * 80)
    check_eq(len(big), 154, 'long record (construction)')
    for tail, n, msg in (
            (b'', 0, None),
            (struct.pack(HOST + 'IIII', 1700000100, 0, 154, 154) + b'y' * 30, 2,
             'truncated dump file; tried to read 64 captured bytes, only got 30'),
            (struct.pack(HOST + 'IIII', 1700000100, 0, 154, 154) + b'y' * 64, 2,
             'truncated dump file; tried to read 154 captured bytes, only got 64'),
            (struct.pack(HOST + 'IIII', 1700000100, 0, 154, 154) + b'y' * 100, 2,
             'truncated dump file; tried to read 154 captured bytes, only got 100'),
            (struct.pack(HOST + 'IIII', 1700000100, 0, 300000, 300000) + b'y' * 100, 2,
             'invalid packet capture length 300000, bigger than snaplen of 64')):
        p = Pcap(snaplen=64)
        p.add(frame(40001, SYN))
        p.add(big)                      # cut to 64 by libpcap
        p.add(frame(40000, ACK, seq=1001))
        off = len(p.data)
        p.raw(tail)
        compare(t, 'over the snapshot length, then %r' % msg, p.path(),
                damage=(4, off, msg) if msg else None, packets=3)
    for snaplen, msg in ((262144, 'bigger than snaplen of 262144'),
                         (0, 'bigger than snaplen of 262144'),
                         (0x7fffffff, 'bigger than maximum of 262144'),
                         (262145, 'bigger than maximum of 262144')):
        p = Pcap(snaplen=snaplen)
        conversation(p)
        off = len(p.data)
        p.raw(struct.pack(HOST + 'IIII', 1700000100, 0, 262145, 262145) + b'z' * 1000)
        compare(t, 'caplen 262145, snaplen %d' % snaplen, p.path(), packets=8,
                damage=(9, off, 'invalid packet capture length 262145, ' + msg))
    p = Pcap()
    p.add(frame(40000, SYN))
    p.add(frame(40000, ACK | PSH, b'q' * (262144 - 54), seq=1001))  # 262144 bytes
    p.add(frame(40000, ACK | PSH, b'r' * 10, seq=1001 + 262144 - 54))
    compare(t, 'caplen 262144', p.path(), packets=3)


def filtered(t):
    """A filter that skips records before a damaged one: the packet number
    counts the records kept (as libpcap returned them), the offset is the
    damaged record's own."""
    p = Pcap()
    kept = 0
    for i in range(20):
        port = 443 if i % 3 == 0 else 80
        kept += port == 443
        p.add(frame(40000 + i, SYN, dport=port))
    for i in range(5):
        p.add(frame(41000 + i, SYN, dport=80))      # skipped just before the damage
    off = len(p.data)
    p.raw(struct.pack(HOST + 'IIII', 1700000100, 0, 54, 54) + b'\0' * 10)
    compare(t, 'filter, damage', p.path(), extra=['port', '443'], packets=kept,
            damage=(kept + 1, off, 'truncated dump file; tried to read 54 captured bytes, '
                    'only got 10'))
    compare(t, 'filter, no damage', Pcap().path(), extra=['port', '443'], packets=0)
    p = Pcap(snaplen=64)
    p.add(frame(40000, SYN, dport=443))
    p.add(frame(40001, ACK | PSH, b'x' * 100))      # cut to 64, and filtered out
    off = len(p.data)
    p.raw(b'\1\2\3')
    compare(t, 'filter, long record, damage', p.path(), extra=['port', '443'], packets=1,
            damage=(2, off, 'truncated dump file; tried to read 16 header bytes, only got 3'))


def buffer_edges(t):
    """Several MiB of records of assorted sizes (some near 64 KiB and 256
    KiB), so records straddle the fast reader's buffer refills, then cut
    inside the last record's data."""
    rnd = random.Random(1)
    p = Pcap()
    for i in range(3000):
        r = rnd.random()
        size = rnd.randrange(0, 1400) if r < 0.9 else rnd.randrange(60000, 66000) \
            if r < 0.995 else rnd.randrange(200000, 262090)
        p.add(frame(40000 + i % 5000, ACK | PSH, b'p' * size, seq=1000 + i))
    n = len(p.offsets)
    compare(t, 'buffer edges', p.path(), packets=n)
    off = len(p.data)
    p.raw(struct.pack(HOST + 'IIII', 1700009999, 0, 200000, 200000) + b'\0' * 150000)
    compare(t, 'buffer edges, cut', p.path(), packets=n,
            damage=(n + 1, off, 'truncated dump file; tried to read 200000 captured bytes, '
                    'only got 150000'))


def other_links(t):
    """Link types other than Ethernet (raw IP, Linux cooked) on the fast
    reader, which decodes them by the general path: a conversation, a
    frame that is not TCP, a record over the snapshot length, with and
    without a filter, then damage at an exact offset."""
    sll = struct.pack('>HHH8sH', 0, 1, 6, b'\x02\0\0\0\0\1\0\0', 0x0800)
    for linktype, head in ((101, b''), (113, sll)):
        for magic in (MAGIC_MICRO, MAGIC_NANO):
            p = Pcap(magic=magic, linktype=linktype, snaplen=96)
            inner = Pcap()
            conversation(inner, payload=b'x' * 100)     # the data segment is cut to 96
            for n in sorted(inner.offsets):
                start = inner.offsets[n] + 16
                end = inner.offsets[n + 1] if n + 1 in inner.offsets else len(inner.data)
                p.add(head + bytes(inner.data[start + 14:end]))
            p.add(head + b'\x45' + b'\0' * 30)          # IPv4, but not TCP and too short
            name = 'link type %d, magic %x' % (linktype, magic)
            compare(t, name, p.path(), packets=9)
            compare(t, name + ', filter', p.path(), extra=['tcp', 'port', '80'], packets=8)
            off = len(p.data)
            p.raw(struct.pack(HOST + 'IIII', 1700000100, 0, 54, 54) + b'\0' * 20)
            compare(t, name + ', damage', p.path(), packets=9,
                    damage=(10, off, 'truncated dump file; tried to read 54 captured bytes, '
                            'only got 20'))


def not_for_the_fast_reader(t):
    """Opposite byte order, versions 2.2 and 2.3, Kuznetzov's magic: libpcap
    reads them, fast-only refuses them, offsets stay exact."""
    for magic in (MAGIC_MICRO, MAGIC_NANO):
        p = Pcap(order=FOREIGN, magic=magic, snaplen=64)
        conversation(p, payload=b'x' * 100)         # the data segment is cut to 64
        off = len(p.data)
        p.raw(struct.pack(FOREIGN + 'IIII', 1700000100, 0, 54, 54) + b'\0' * 20)
        compare(t, 'opposite byte order %x' % magic, p.path(), fast=False, packets=8,
                damage=(9, off, 'truncated dump file; tried to read 54 captured bytes, '
                        'only got 20'))
    # Before 2.3 the record header's lengths came the other way round, and
    # 2.3 files were written either way: a record claiming 1000 bytes
    # captured of 154 on the wire holds 154 (cut to 64).
    for minor in (2, 3):
        p = Pcap(minor=minor, snaplen=64)
        conversation(p)
        p.add(frame(40000, ACK | PSH, b'x' * 100, seq=2000), caplen=1000, wirelen=154)
        off = len(p.data)
        p.raw(b'\0' * 10)
        compare(t, 'version 2.%d' % minor, p.path(), fast=False, packets=9,
                damage=(10, off, 'truncated dump file; tried to read 16 header bytes, '
                        'only got 10'))
    # Kuznetzov's records have 24-byte headers; libpcap adds 14 to the
    # snapshot length of his Ethernet files: 78, so the data segment is cut.
    p = Pcap(magic=MAGIC_KUZNETZOV, snaplen=64)
    conversation(p, payload=b'x' * 100)
    off = len(p.data)
    p.raw(b'\0' * 10)
    compare(t, 'Kuznetzov', p.path(), fast=False, packets=8,
            damage=(9, off, 'truncated dump file; tried to read 24 header bytes, only got 10'))


def standard_input(t):
    """-r - from a regular file (fast), starting where the file offset was
    left, and read once by "-r - -r -"; from a pipe (libpcap: fast-only
    refuses)."""
    p = Pcap(snaplen=64)
    conversation(p, payload=b'x' * 100)             # the data segment is cut to 64
    off = len(p.data)
    p.raw(b'\x05' * 7)
    prefix = b'not part of the capture'
    path = write_temp(prefix + bytes(p.data))
    stdin_skip[path] = len(prefix)
    for args in ARGS:
        st, out, err = same(t, 'stdin file', ['-r', '-'] + list(args), True, stdin=path)
        check_eq(err, 'tcpstate: -: packet 9 (byte offset %d): truncated dump file; tried '
                 'to read 16 header bytes, only got 7\n' % off, 'stdin file: diagnostic')
    whole = Pcap()
    conversation(whole)
    path = whole.path()
    st, out, err = same(t, 'stdin twice', ['-r', '-', '-r', '-', '--format', 'json'], True,
                        stdin=path)
    check('"packets":8' in out, 'stdin twice: the first read counts')
    check_eq(st, 1, 'stdin twice: the second read finds nothing')
    same(t, 'stdin pipe', ['-r', '-', '--format', 'json'], False, stdin=bytes(whole.data))


def main(argv):
    if len(argv) != 1:
        print('usage: reader.py TCPSTATE')
        return 2
    t = argv[0]
    os.environ.pop('TCPSTATE_PCAP_READER', None)
    for step in (clean_files, damaged_files, long_records, filtered, buffer_edges,
                 other_links, not_for_the_fast_reader, standard_input):
        step(t)
    return finish('reader')


if __name__ == '__main__':
    sys.exit(main_in_temp_dir(main, sys.argv[1:], 'tcpstate-reader-'))
