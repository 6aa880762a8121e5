"""Compare tcpstate's per-endpoint TCP states with the kernel's truth.

Shared by the real-kernel suite (tests/kernel/ktest.py) and the recorded end-to-end
tests (tests/e2e/check_expect.py), so both judge tcpstate by exactly the same rules:

  * the truth is `ss -tan` taken inside the namespace at time AT (never tcpstate);
  * every TCP connection seen in the capture up to AT is found independently by
    reading the pcap here (no tshark, no tcpstate);
  * for the latest incarnation of each 4-tuple, an endpoint (local addr:port) with a
    socket in ss must have ss's state; an endpoint with no socket must be CLOSED;
  * earlier incarnations of a reused 4-tuple must be CLOSED on both sides, unless the
    expectation carries an explicit override.

Standard library only. Exit codes follow meson: 0 pass, 1 fail, 77 skip, 99 error.
"""

import ipaddress
import json
import struct
import subprocess
import sys

EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_ERROR = 0, 1, 77, 99

STATES = ('CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1',
          'FIN_WAIT_2', 'CLOSING', 'TIME_WAIT', 'CLOSE_WAIT', 'LAST_ACK')

# ss's state names -> RFC 793 names. LISTEN is no connection and is ignored;
# UNCONN is how ss prints TCP_CLOSE (a socket still held by its fd).
SS_STATES = {
    'ESTAB': 'ESTABLISHED', 'SYN-SENT': 'SYN_SENT', 'SYN-RECV': 'SYN_RECEIVED',
    'FIN-WAIT-1': 'FIN_WAIT_1', 'FIN-WAIT-2': 'FIN_WAIT_2', 'TIME-WAIT': 'TIME_WAIT',
    'CLOSE-WAIT': 'CLOSE_WAIT', 'LAST-ACK': 'LAST_ACK', 'CLOSING': 'CLOSING',
    'UNCONN': 'CLOSED', 'CLOSE': 'CLOSED', 'CLOSED': 'CLOSED',
}

# Float slack when comparing a record's "start" with AT (timestamps are microseconds).
EPS = 1e-6


class HarnessError(Exception):
    """The test itself could not run or its premises failed (exit 99)."""


class Skip(Exception):
    """The test cannot run on this machine (exit 77)."""


# --------------------------------------------------------------------------- endpoints

def endpoint(addr, port):
    """Canonical endpoint: (compressed address text, int port)."""
    return (ipaddress.ip_address(addr).compressed, int(port))


def parse_endpoint(text):
    """'127.0.0.1:80', '[::1]:80', '::ffff:127.0.0.1:80' or 'a%lo:80' -> endpoint."""
    host, _, port = text.rpartition(':')
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    host = host.split('%', 1)[0]
    return endpoint(host, port)


def fmt_ep(ep):
    addr, port = ep
    return ('[%s]:%d' if ':' in addr else '%s:%d') % (addr, port)


def canon(a, b):
    """Canonical key of a 4-tuple: the two endpoints in sorted order."""
    return (a, b) if a <= b else (b, a)


# --------------------------------------------------------------------------- ss

def parse_ss(text):
    """Parse `ss -tanH` output into [{'state','ss_state','local','peer'}].

    LISTEN sockets and sockets without a peer are not connections and are left out.
    Raises HarnessError on a state name we do not know, so a new kernel state can
    never be silently ignored.
    """
    socks = []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if len(f) < 5:
            raise HarnessError('cannot parse ss line: %r' % line)
        ss_state, local, peer = f[0], f[3], f[4]
        if ss_state == 'LISTEN' or peer.endswith(':*'):
            continue
        if ss_state not in SS_STATES:
            raise HarnessError('unknown ss state %r in line %r' % (ss_state, line))
        socks.append({'state': SS_STATES[ss_state], 'ss_state': ss_state,
                      'local': fmt_ep(parse_endpoint(local)),
                      'peer': fmt_ep(parse_endpoint(peer))})
    return socks


# --------------------------------------------------------------------------- pcap

class Packet:
    __slots__ = ('num', 'ts', 'src', 'dst', 'flags', 'seq', 'ack', 'win', 'paylen')

    def flag_str(self):
        return ''.join(c for c, bit in (('F', 1), ('S', 2), ('R', 4), ('P', 8),
                                        ('A', 16), ('U', 32), ('E', 64), ('W', 128))
                       if self.flags & bit) or '.'

    def describe(self, t0=None):
        ts = self.ts - t0 if t0 is not None else self.ts
        return ('#%-5d %10.6f %21s > %-21s %-4s seq=%u ack=%u win=%u len=%u'
                % (self.num, ts, fmt_ep(self.src), fmt_ep(self.dst), self.flag_str(),
                   self.seq, self.ack, self.win, self.paylen))


FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


def _ip_tcp(buf, off, num, ts):
    """Decode IPv4/IPv6 + TCP at buf[off:]; return a Packet or None."""
    if len(buf) - off < 1:
        return None
    ver = buf[off] >> 4
    if ver == 4:
        if len(buf) - off < 20:
            return None
        ihl = (buf[off] & 15) * 4
        total = struct.unpack_from('!H', buf, off + 2)[0]
        frag = struct.unpack_from('!H', buf, off + 6)[0] & 0x1fff
        if buf[off + 9] != 6 or frag != 0 or ihl < 20:
            return None
        src = ipaddress.IPv4Address(bytes(buf[off + 12:off + 16])).compressed
        dst = ipaddress.IPv4Address(bytes(buf[off + 16:off + 20])).compressed
        tcp = off + ihl
        l4len = total - ihl
    elif ver == 6:
        if len(buf) - off < 40:
            return None
        plen = struct.unpack_from('!H', buf, off + 4)[0]
        nxt = buf[off + 6]
        src = ipaddress.IPv6Address(bytes(buf[off + 8:off + 24])).compressed
        dst = ipaddress.IPv6Address(bytes(buf[off + 24:off + 40])).compressed
        tcp = off + 40
        l4len = plen
        for _ in range(8):          # bounded walk over extension headers
            if nxt in (0, 43, 60):
                if len(buf) - tcp < 2:
                    return None
                hlen = (buf[tcp + 1] + 1) * 8
                nxt = buf[tcp]
            elif nxt == 44:
                if len(buf) - tcp < 8 or struct.unpack_from('!H', buf, tcp + 2)[0] & 0xfff8:
                    return None
                hlen = 8
                nxt = buf[tcp]
            else:
                break
            tcp += hlen
            l4len -= hlen
        if nxt != 6:
            return None
    else:
        return None
    if len(buf) - tcp < 20:
        return None
    sport, dport, seq, ack, offflags, win = struct.unpack_from('!HHIIHH', buf, tcp)
    p = Packet()
    p.num, p.ts = num, ts
    p.src, p.dst = endpoint(src, sport), endpoint(dst, dport)
    p.seq, p.ack, p.win = seq, ack, win
    p.flags = offflags & 0xff
    p.paylen = max(0, l4len - (offflags >> 12) * 4)
    return p


def _link_offset(linktype, buf):
    """Offset of the network header for a link type, or None."""
    if linktype == 1:                               # Ethernet (+ 802.1Q/802.1ad tags)
        off, et = 12, None
        for _ in range(4):
            if len(buf) < off + 2:
                return None
            et = struct.unpack_from('!H', buf, off)[0]
            if et in (0x8100, 0x88a8, 0x9100):
                off += 4
                continue
            break
        return off + 2 if et in (0x0800, 0x86dd) else None
    if linktype == 113:                             # Linux cooked SLL
        return 16
    if linktype == 276:                             # Linux cooked SLL2
        return 20
    if linktype in (12, 14, 101, 228, 229):         # raw IP
        return 0
    if linktype in (0, 108):                        # BSD NULL / LOOP
        return 4
    return None


def read_pcap(path):
    """Yield the TCP packets of a classic pcap file (µs or ns timestamps)."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 24:
        raise HarnessError('%s: not a pcap file (too short)' % path)
    magic = data[:4]
    table = {b'\xd4\xc3\xb2\xa1': ('<', 1e-6), b'\xa1\xb2\xc3\xd4': ('>', 1e-6),
             b'\x4d\x3c\xb2\xa1': ('<', 1e-9), b'\xa1\xb2\x3c\x4d': ('>', 1e-9)}
    if magic not in table:
        raise HarnessError('%s: not a classic pcap file (magic %s)' % (path, magic.hex()))
    endian, scale = table[magic]
    linktype = struct.unpack_from(endian + 'I', data, 20)[0] & 0x0fffffff
    off, num = 24, 0
    while len(data) - off >= 16:
        sec, frac, caplen, _ = struct.unpack_from(endian + 'IIII', data, off)
        off += 16
        if caplen > len(data) - off:
            break                                   # truncated last record
        buf = memoryview(data)[off:off + caplen]
        off += caplen
        num += 1
        lo = _link_offset(linktype, buf)
        if lo is None:
            continue
        # Rounded to the µs, as tcpstate prints and as tcpdump stores it.
        p = _ip_tcp(buf, lo, num, round(sec + frac * scale, 6))
        if p is not None:
            yield p


class WireConn:
    """What the capture alone says about one 4-tuple."""

    def __init__(self, key):
        self.key = key
        self.packets = []
        self.incarnations = 0
        self.clients = []               # per incarnation: who sent the first SYN (or None)
        self._isn = {}                  # endpoint -> ISN of its SYN in this incarnation

    def add(self, p):
        self.packets.append(p)
        if p.flags & SYN:
            isn = self._isn.get(p.src)
            if isn is None:
                self._isn[p.src] = p.seq
                if self.incarnations == 0:
                    self.incarnations = 1
                    self.clients.append(p.dst if p.flags & ACK else p.src)
            elif isn != p.seq and not p.flags & ACK:
                # A new SYN with a new ISN: the 4-tuple is reused (RFC 793 / tcpstate's
                # contract: new ISN = new incarnation; a retransmission keeps its ISN).
                self.incarnations += 1
                self.clients.append(p.src)
                self._isn = {p.src: p.seq}
        elif self.incarnations == 0:
            self.incarnations = 1       # picked up mid-stream
            self.clients.append(None)

    def side(self, inc, ep):
        """'client' (sent the first SYN of incarnation INC), 'server', or '?'."""
        c = self.clients[inc] if inc < len(self.clients) else None
        return '?' if c is None else ('client' if c == ep else 'server')


def wire_connections(pcap, at=None):
    """canonical key -> WireConn for every TCP 4-tuple with packets up to AT."""
    conns = {}
    for p in read_pcap(pcap):
        if at is not None and p.ts > at + EPS:
            continue
        key = canon(p.src, p.dst)
        c = conns.get(key)
        if c is None:
            c = conns[key] = WireConn(key)
        c.add(p)
    return conns


def packets_between(pcap, t0, t1):
    return [p for p in read_pcap(pcap) if t0 - EPS <= p.ts <= t1 + EPS]


# --------------------------------------------------------------------------- tcpstate

def run_tcpstate(tcpstate, pcap, at, timeout=120):
    """Run tcpstate -r PCAP --format json --at AT; return its records.

    Raises ToolFailure (a test failure: the tool misbehaved) on a non-zero exit,
    a timeout or output that is not JSON Lines.
    """
    cmd = [tcpstate, '-r', pcap, '--format', 'json', '--at', '%.6f' % at]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolFailure('%s timed out after %d s' % (' '.join(cmd), timeout))
    except OSError as e:
        raise ToolFailure('cannot run %s: %s' % (tcpstate, e))
    err = r.stderr.decode(errors='replace')
    if r.returncode != 0:
        raise ToolFailure('%s exited with %d\nstderr:\n%s'
                          % (' '.join(cmd), r.returncode, err))
    records = []
    for n, line in enumerate(r.stdout.decode(errors='replace').splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as e:
            raise ToolFailure('%s: output line %d is not JSON (%s): %r'
                              % (' '.join(cmd), n, e, line[:200]))
    return records, cmd, err


class ToolFailure(Exception):
    """tcpstate itself failed (crash, non-zero exit, bad JSON): a test failure."""


def tool_connections(records, at):
    """canonical key -> [connection records sorted by start], start <= AT only."""
    conns = {}
    for r in records:
        if not isinstance(r, dict) or r.get('type') != 'connection':
            continue
        try:
            c = endpoint(r['client']['addr'], r['client']['port'])
            s = endpoint(r['server']['addr'], r['server']['port'])
            start = float(r['start'])
        except (KeyError, TypeError, ValueError) as e:
            raise ToolFailure('malformed connection record (%s): %s'
                              % (e, json.dumps(r)[:300]))
        if start > at + EPS:
            continue
        conns.setdefault(canon(c, s), []).append(r)
    for lst in conns.values():
        lst.sort(key=lambda r: (float(r['start']), r.get('id', 0)))
    return conns


# --------------------------------------------------------------------------- compare

class Row:
    __slots__ = ('key', 'inc', 'ninc', 'ep', 'peer', 'role', 'expected', 'why', 'got', 'ok')


class Result:
    def __init__(self):
        self.rows = []
        self.problems = []      # failures not tied to one endpoint row
        self.wire = {}
        self.tool = {}
        self.records = []

    @property
    def ok(self):
        return not self.problems and all(r.ok for r in self.rows)


def expectations(wire, sockets, overrides=()):
    """What the kernel says, per 4-tuple in the capture, without looking at tcpstate.

    Returns {key: [ {endpoint: (state, because)} per incarnation, oldest first ]}.
    The latest incarnation takes ss's states (no socket: CLOSED); earlier ones are
    CLOSED on both sides. OVERRIDES ({'local','peer','incarnation' (0-based),'state'})
    replace single cells where a scenario's construction says otherwise.
    Raises HarnessError when ss shows a connection the capture does not have.
    """
    truth = {}
    for s in sockets:
        local, peer = parse_endpoint(s['local']), parse_endpoint(s['peer'])
        key = canon(local, peer)
        if key not in wire:
            raise HarnessError('ss shows %s %s -> %s but the capture has no packet of '
                               'that connection before --at: capture incomplete'
                               % (s['state'], s['local'], s['peer']))
        if local in truth.get(key, {}):
            raise HarnessError('ss shows two sockets for %s -> %s' % (s['local'], s['peer']))
        if s['state'] not in STATES:
            raise HarnessError('unknown state %r in expectation' % s['state'])
        truth.setdefault(key, {})[local] = s['state']
    exp = {}
    for key, w in wire.items():
        incs = []
        for i in range(w.incarnations):
            latest = i == w.incarnations - 1
            cells = {}
            for e in key:
                if latest and e in truth.get(key, {}):
                    cells[e] = (truth[key][e], 'ss')
                elif latest:
                    cells[e] = ('CLOSED', 'no socket in ss')
                else:
                    cells[e] = ('CLOSED', 'earlier incarnation')
            incs.append(cells)
        exp[key] = incs
    for o in overrides:
        local, peer = parse_endpoint(o['local']), parse_endpoint(o['peer'])
        key, i = canon(local, peer), int(o['incarnation'])
        if key not in exp or not 0 <= i < len(exp[key]) or o['state'] not in STATES:
            raise HarnessError('override does not match the capture: %r' % (o,))
        exp[key][i][local] = (o['state'], 'override')
    return exp


def compare(pcap, at, sockets, records, overrides=()):
    """Judge tcpstate's RECORDS against the ss SOCKETS taken at AT; return a Result.

    Incarnations are matched from the latest backwards, so a tool that merges or
    splits incarnations is still judged on the one ss describes, and the count
    mismatch is reported on its own.
    """
    res = Result()
    res.records = records
    wire = res.wire = wire_connections(pcap, at)
    tool = res.tool = tool_connections(records, at)
    exp = expectations(wire, sockets, overrides)

    for key in sorted(wire):
        w = wire[key]
        recs = tool.get(key, [])
        name = '%s <-> %s' % (fmt_ep(key[0]), fmt_ep(key[1]))
        if not recs:
            res.problems.append('%s: %d packet(s) in the capture but no connection record '
                                'from tcpstate' % (name, len(w.packets)))
            continue
        if len(recs) != w.incarnations:
            res.problems.append('%s: the capture shows %d incarnation(s) (SYNs with distinct '
                                'ISNs), tcpstate reports %d' % (name, w.incarnations, len(recs)))
        incs = exp[key]
        off = len(incs) - len(recs)         # align the latest with the latest
        for i, r in enumerate(recs):
            j = i + off
            if 0 <= j < len(incs):
                cells = incs[j]
            else:
                cells = {e: ('CLOSED', 'extra record') for e in key}
            roles = {}
            for role in ('client', 'server'):
                try:
                    roles[endpoint(r[role]['addr'], r[role]['port'])] = role
                except (KeyError, TypeError, ValueError):
                    pass
            for e in key:
                row = Row()
                row.key, row.inc, row.ninc, row.ep = key, i, len(recs), e
                row.peer = key[1] if e == key[0] else key[0]
                role = roles.get(e)
                row.role = role or '?'
                row.expected, row.why = cells[e]
                got = r.get(role, {}).get('state') if role else None
                row.got = got if isinstance(got, str) else repr(got)
                row.ok = row.got == row.expected
                res.rows.append(row)

    for key in sorted(tool):
        if key not in wire:
            res.problems.append('tcpstate reports %s <-> %s, which has no TCP packet in the '
                                'capture before --at' % (fmt_ep(key[0]), fmt_ep(key[1])))
    return res


def expected_table(pcap, chk):
    """The expected state of every endpoint of CHK (no tcpstate involved), as rows
    for humans (recorded in expect.json) and for the coverage report."""
    wire = wire_connections(pcap, chk['at'])
    exp = expectations(wire, chk['sockets'], chk.get('overrides', ()))
    rows = []
    for key in sorted(exp):
        for inc, eps in enumerate(exp[key]):
            for e in key:
                state, why = eps[e]
                rows.append({'connection': '%s <-> %s' % (fmt_ep(key[0]),
                                                          fmt_ep(key[1])),
                             'incarnation': '%d/%d' % (inc + 1, len(exp[key])),
                             'endpoint': fmt_ep(e), 'side': wire[key].side(inc, e),
                             'state': state, 'because': why})
    return rows


def state_counts(rows, by_side=False):
    """{state: n}, or {'STATE/side': n} with BY_SIDE."""
    c = {}
    for r in rows:
        k = '%s/%s' % (r['state'], r.get('side', '?')) if by_side else r['state']
        c[k] = c.get(k, 0) + 1
    return c


# --------------------------------------------------------------------------- report

def print_table(res, out, only_bad=False, limit=None):
    hdr = '%-45s %-4s %-21s %-6s %-12s %-12s %-19s %s' % (
        'connection', 'inc', 'endpoint', 'role', 'expected', 'got', 'because', '')
    out.write(hdr.rstrip() + '\n')
    shown = 0
    for r in res.rows:
        if only_bad and r.ok:
            continue
        if limit is not None and shown >= limit:
            out.write('... (%d more rows not shown)\n'
                      % (sum(1 for x in res.rows if not (only_bad and x.ok)) - shown))
            break
        shown += 1
        conn = '%s <-> %s' % (fmt_ep(r.key[0]), fmt_ep(r.key[1]))
        out.write('%-45s %-4s %-21s %-6s %-12s %-12s %-19s %s\n' % (
            conn, '%d/%d' % (r.inc + 1, r.ninc), fmt_ep(r.ep), r.role, r.expected,
            r.got, r.why, 'ok' if r.ok else 'MISMATCH'))


def print_evidence(res, out, max_conns=4, max_packets=40):
    """For the first few failing connections: the wire and tcpstate's timeline."""
    bad = []
    for r in res.rows:
        if not r.ok and r.key not in bad:
            bad.append(r.key)
    for key in bad[:max_conns]:
        w = res.wire.get(key)
        out.write('\n--- %s <-> %s: capture (%d packets)\n'
                  % (fmt_ep(key[0]), fmt_ep(key[1]), len(w.packets) if w else 0))
        if w:
            t0 = w.packets[0].ts
            out.write('    (times relative to %.6f)\n' % t0)
            for p in w.packets[:max_packets]:
                out.write('    ' + p.describe(t0) + '\n')
            if len(w.packets) > max_packets:
                out.write('    ... %d more\n' % (len(w.packets) - max_packets))
        for rec in res.tool.get(key, []):
            out.write('--- tcpstate record id=%s start=%s flags=%s client=%s server=%s\n' % (
                rec.get('id'), rec.get('start'), rec.get('flags'),
                json.dumps(rec.get('client')), json.dumps(rec.get('server'))))
            for t in rec.get('timeline', []) or []:
                out.write('    %s\n' % json.dumps(t))
    if len(bad) > max_conns:
        out.write('\n(%d more failing connections not detailed)\n' % (len(bad) - max_conns))


def summarize(res):
    n = len(res.rows)
    bad = sum(1 for r in res.rows if not r.ok)
    return '%d endpoint(s) in %d connection record(s) checked, %d mismatch(es), %d other problem(s)' % (
        n, sum(len(v) for v in res.tool.values()), bad, len(res.problems))


def check(tcpstate, pcap, checks, label, out=sys.stdout, verbose=False, results=None):
    """Run tcpstate once per check (its own --at) and judge it; return an exit code.

    CHECKS: [{'name', 'at', 'sockets', optional 'overrides'}]. RESULTS, a list, gets
    one Result per check, or None where tcpstate itself failed (crash, bad output).
    """
    status = EXIT_PASS
    for chk in checks:
        name = '%s/%s' % (label, chk['name'])
        at = float(chk['at'])
        try:
            records, cmd, err = run_tcpstate(tcpstate, pcap, at)
            res = compare(pcap, at, chk['sockets'], records, chk.get('overrides', ()))
        except ToolFailure as e:
            out.write('FAIL %s: %s\n' % (name, e))
            status = EXIT_FAIL
            if results is not None:
                results.append(None)
            continue
        if results is not None:
            results.append(res)
        if res.ok:
            out.write('PASS %s: %s\n' % (name, summarize(res)))
            if verbose:
                print_table(res, out)
            continue
        status = EXIT_FAIL
        out.write('FAIL %s: %s\n' % (name, summarize(res)))
        out.write('  command: %s\n' % ' '.join(cmd))
        if err.strip():
            out.write('  tcpstate stderr:\n    %s\n' % err.strip().replace('\n', '\n    '))
        for p in res.problems[:50]:
            out.write('  problem: %s\n' % p)
        if len(res.problems) > 50:
            out.write('  ... %d more problems\n' % (len(res.problems) - 50))
        small = len(res.rows) <= 60
        out.write('\n  per-endpoint states at --at %.6f (%s):\n'
                  % (at, 'all endpoints' if small else 'mismatches only'))
        print_table(res, out, only_bad=not small, limit=None if small else 60)
        print_evidence(res, out)
        out.write('\n')
    return status


def ensure_states(states):
    for s in states:
        if s not in STATES:
            raise HarnessError('unknown state name %r' % s)
