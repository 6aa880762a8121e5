"""pcapgen - crafted capture files for the hostile-input tests, stdlib only.

Builds pcap (and pcapng) files byte by byte with struct, any header field
overridable and any length a lie, keeping each record's byte offset so a test
predicts tcpstate's "packet N (byte offset O)" from its own construction.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
PCAP_HEADER_LEN = 24
RECORD_HEADER_LEN = 16

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

SKIP = 77


def pcap_header(linktype=LINKTYPE_ETHERNET, snaplen=262144, magic=0xa1b2c3d4,
                major=2, minor=4):
    """The 24-byte file header, little-endian (the magic says which order)."""
    return struct.pack('<IHHiIII', magic, major, minor, 0, 0, snaplen, linktype)


def record_header(ts_sec, ts_usec, caplen, wirelen):
    """A 16-byte record header; ts_sec/ts_usec as unsigned 32-bit fields."""
    return struct.pack('<IIII', ts_sec & 0xffffffff, ts_usec & 0xffffffff,
                       caplen & 0xffffffff, wirelen & 0xffffffff)


def ip_aton(s):
    return bytes(int(x) for x in s.split('.'))


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def tcp(sport, dport, seq, ack, flags, window=65535, options=b'', payload=b'',
        offset=None):
    """A TCP header (+ payload). offset: data offset in 32-bit words; the
    default fits the options (padded with EOL to a multiple of 4)."""
    if len(options) % 4:
        options += b'\0' * (4 - len(options) % 4)
    if offset is None:
        offset = 5 + len(options) // 4
    hdr = struct.pack('!HHIIBBHHH', sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                      (offset & 0xf) << 4, flags & 0xff, window, 0, 0)
    return hdr + options + payload


def ipv4(src, dst, payload, proto=6, total_len=None, ihl=5, frag=0, version=4,
         options=b''):
    """An IPv4 header (+ payload). total_len overrides the length field."""
    if total_len is None:
        total_len = ihl * 4 + len(payload)
    hdr = struct.pack('!BBHHHBBH4s4s', (version << 4) | (ihl & 0xf), 0, total_len & 0xffff,
                      0, frag, 64, proto, 0, ip_aton(src), ip_aton(dst))
    hdr = hdr[:10] + struct.pack('!H', checksum(hdr)) + hdr[12:]
    return hdr + options + payload


def ipv6(src_last, dst_last, payload, nh=6, plen=None):
    """An IPv6 header (2001:db8::SRC_LAST -> 2001:db8::DST_LAST) + payload;
    plen overrides the payload length field."""
    if plen is None:
        plen = len(payload)
    pre = b'\x20\x01\x0d\xb8' + b'\0' * 11
    return struct.pack('!IHBB16s16s', 0x60000000, plen & 0xffff, nh, 64,
                       pre + bytes([src_last]), pre + bytes([dst_last])) + payload


def ether(payload, ethertype=0x0800):
    return b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + \
        struct.pack('!H', ethertype) + payload


def tcp_frame(src, sport, dst, dport, seq, ack, flags, window=65535, options=b'',
              payload=b'', **kw):
    """Ethernet + IPv4 + TCP in one go."""
    return ether(ipv4(src, dst, tcp(sport, dport, seq, ack, flags, window, options, payload),
                      **kw))


class Capture:
    """A pcap file being written. add() appends a record and returns its
    1-based number; offsets[n] is the byte offset of record n's header."""

    def __init__(self, linktype=LINKTYPE_ETHERNET, snaplen=262144, header=None):
        self.data = bytearray(header if header is not None else pcap_header(linktype, snaplen))
        self.offsets = {}
        self.count = 0
        self.ts = 1700000000 * 1000000  # microseconds

    def add(self, frame, ts_us=None, caplen=None, wirelen=None, step_us=10000):
        """Append frame; caplen/wirelen override the record header's claims
        (the bytes written are always the frame itself)."""
        if ts_us is None:
            self.ts += step_us
            ts_us = self.ts
        self.count += 1
        self.offsets[self.count] = len(self.data)
        cl = len(frame) if caplen is None else caplen
        wl = len(frame) if wirelen is None else wirelen
        self.data += record_header(ts_us // 1000000, ts_us % 1000000, cl, wl)
        self.data += frame
        return self.count

    def raw(self, b):
        """Append raw bytes (a damaged tail)."""
        self.data += b

    def bytes(self):
        return bytes(self.data)


class Conn:
    """One TCP connection's two directions, with sequence numbers kept."""

    def __init__(self, cap, client=('10.0.0.1', 40000), server=('10.0.0.2', 80),
                 cisn=1000, sisn=5000):
        self.cap, self.c, self.s = cap, client, server
        self.seq = {'c': cisn, 's': sisn}
        self.ack = {'c': 0, 's': 0}

    def send(self, who, flags, payload=b'', seq=None, ack=None, window=65535, options=b'',
             **kw):
        """who: 'c' or 's'. Advances the sender's sequence number by the
        payload and SYN/FIN; the ACK field is what the sender last received."""
        src, dst = (self.c, self.s) if who == 'c' else (self.s, self.c)
        other = 's' if who == 'c' else 'c'
        s = self.seq[who] if seq is None else seq
        a = self.ack[who] if ack is None else ack
        frame = tcp_frame(src[0], src[1], dst[0], dst[1], s, a, flags, window, options,
                          payload)
        n = self.cap.add(frame, **kw)
        adv = len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if seq is None and not flags & RST:
            self.seq[who] = (self.seq[who] + adv) & 0xffffffff
            self.ack[other] = self.seq[who]
        return n

    def handshake(self):
        self.send('c', SYN)
        self.send('s', SYN | ACK)
        self.send('c', ACK)

    def close(self, first='c'):
        second = 's' if first == 'c' else 'c'
        self.send(first, FIN | ACK)
        self.send(second, ACK)
        self.send(second, FIN | ACK)
        self.send(first, ACK)


def pcapng(pcap_bytes):
    """The records of a classic pcap as a pcapng file (SHB, IDB, one EPB
    each). Returns (bytes, offsets): offsets[n] is where EPB n starts."""
    def block(btype, body):
        body += b'\0' * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack('<II', btype, n) + body + struct.pack('<I', n)
    linktype = struct.unpack_from('<I', pcap_bytes, 20)[0]
    out = block(0x0a0d0d0a, struct.pack('<IHHq', 0x1a2b3c4d, 1, 0, -1))
    out += block(1, struct.pack('<HHI', linktype, 0, 262144))
    offsets = {}
    for n, (ts_sec, ts_usec, data, wirelen) in enumerate(records(pcap_bytes), 1):
        ts = ts_sec * 1000000 + ts_usec
        offsets[n] = len(out)
        out += block(6, struct.pack('<IIIII', 0, ts >> 32, ts & 0xffffffff, len(data),
                                    wirelen) + data)
    return out, offsets


def records(pcap_bytes):
    """(ts_sec, ts_usec, data, wirelen) of a classic pcap (either byte order)."""
    magic = pcap_bytes[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        e = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '>'
    else:
        return
    nano = magic in (b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\x3c\x4d')
    pos = PCAP_HEADER_LEN
    while pos + RECORD_HEADER_LEN <= len(pcap_bytes):
        s, u, cl, wl = struct.unpack_from(e + 'IIII', pcap_bytes, pos)
        pos += RECORD_HEADER_LEN
        data = pcap_bytes[pos:pos + cl]
        pos += cl
        yield s, (u // 1000 if nano else u), data, wl


def main_in_temp_dir(main, argv, prefix):
    """main(argv) with tempfile's directory a fresh one of its own, removed
    with everything in it afterwards, so that the files write_temp() makes
    do not outlive the test."""
    tempfile.tempdir = tempfile.mkdtemp(prefix=prefix)
    try:
        return main(argv)
    finally:
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)


def write_temp(data, suffix='.pcap'):
    fd, path = tempfile.mkstemp(prefix='tcpstate-hostile-', suffix=suffix)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    return path


SANITIZER = ('AddressSanitizer', 'LeakSanitizer', 'UndefinedBehaviorSanitizer',
             'runtime error:', 'MemorySanitizer')
VALGRIND_STATUS = 99    # tests/valgrind.sh: a memory error or a leak


def run(tcpstate, args, stdin=None, timeout=120, stdin_file=None):
    """Run tcpstate; returns (status, stdout, stderr) as text. A signal or a
    sanitizer report is a failure of the test whatever it expects. stdin is
    bytes fed through a pipe; stdin_file an open file that becomes standard
    input itself (a regular file, not a pipe)."""
    if stdin_file is not None:
        r = subprocess.run([tcpstate] + args, stdin=stdin_file, capture_output=True,
                           timeout=timeout)
    else:
        r = subprocess.run([tcpstate] + args, input=stdin, capture_output=True,
                           timeout=timeout)
    out = r.stdout.decode('utf-8', 'replace')
    err = r.stderr.decode('utf-8', 'replace')
    if r.returncode < 0:
        fail('tcpstate %s killed by signal %d\n%s' % (' '.join(args), -r.returncode, err))
    if r.returncode == VALGRIND_STATUS or re.search(r'^==\d+== ', err, re.M):
        fail('tcpstate %s: valgrind report:\n%s' % (' '.join(args), err))
    for s in SANITIZER:
        if s in err:
            fail('tcpstate %s: sanitizer report:\n%s' % (' '.join(args), err))
    return r.returncode, out, err


def run_json(tcpstate, path, extra=(), expect_status=0):
    """tcpstate -r path --format json: (connection records, summary, stderr);
    the analyses' records (listeners, anomalies...) are left out."""
    st, out, err = run(tcpstate, ['-r', path, '--format', 'json'] + list(extra))
    check(st == expect_status, 'exit status %d, expected %d (stderr: %s)'
          % (st, expect_status, err.strip()))
    conns, summary = [], None
    for line in out.splitlines():
        obj = json.loads(line)
        if obj.get('type') == 'summary':
            summary = obj
        elif obj.get('type') == 'connection':
            conns.append(obj)
    check(summary is not None, 'no summary record in the JSON output')
    return conns, summary, err


def states_by_port(conns):
    """{client port: (client state, server state)}."""
    return {c['client']['port']: (c['client']['state'], c['server']['state']) for c in conns}


failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print('FAIL: ' + msg)
    return cond


def check_eq(got, want, what):
    return check(got == want, '%s: got %r, expected %r' % (what, got, want))


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def finish(name):
    if failures:
        print('%s: %d check(s) failed' % (name, len(failures)))
        return 1
    print('%s: ok' % name)
    return 0
