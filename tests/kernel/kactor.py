"""The in-namespace side of a real-kernel scenario.

ktest.py runs `ip netns exec NS python3 ktest.py --actor SCENARIO`; that process calls
the scenario function with an Actor. Everything here runs INSIDE the test's own network
namespace: sockets, nft rules, tc qdiscs, sysctls and ss all touch that namespace only.

The actor reports to its parent with JSON lines on stdout:
    {"event": "snapshot", "name": ..., "at": ..., "ss": [...], "sockets": [...]}
    {"event": "done", "notes": [...], "facts": {...}}   the scenario finished
    {"event": "error", "message": ...}           the scenario could not be built
and then waits (bounded) for a line on stdin before it exits and its sockets close,
so the parent can stop tcpdump while the scenario's sockets are still open.
"""

import errno
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

from kcompare import HarnessError, parse_ss, STATES

SERVER = '127.0.0.1'
NFT_TABLE = 'tcpst'


class ScenarioError(HarnessError):
    """The scenario did not reach the situation it was built for."""


class Actor:
    def __init__(self, out=sys.stdout):
        self._out = out
        self.snapshots = []
        self.notes = []
        self.facts = {}             # figures for the report checks (kreports.py)
        self.keep = []              # sockets that must stay open until the end
        self._nft_ready = False
        self._tc = False
        self.t_start = time.time()

    # ------------------------------------------------------------------ plumbing
    def log(self, msg):
        sys.stderr.write('[actor %6.3f] %s\n' % (time.time() - self.t_start, msg))
        sys.stderr.flush()

    def note(self, msg):
        """A fact about the run worth showing in the report (and recorded in expect.json)."""
        self.notes.append(msg)
        self.log(msg)

    def fact(self, name, value):
        """A figure a report check compares tcpstate with: taken from the kernel
        (ss, nstat) or from the scenario's own construction (counts, times)."""
        self.facts[name] = value
        self.log('fact %s = %s' % (name, value))
        return value

    def now(self):
        """Wall-clock time, the clock tcpdump stamps the capture with."""
        return time.time()

    def emit(self, obj):
        self._out.write(json.dumps(obj) + '\n')
        self._out.flush()

    def run(self, *cmd, input=None, check=True):
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise HarnessError('%s failed (%d): %s' % (' '.join(cmd), r.returncode,
                                                       r.stderr.strip()))
        return r.stdout

    def sleep(self, seconds):
        time.sleep(seconds)

    # ------------------------------------------------------------------ kernel knobs
    def sysctl(self, name, value):
        self.run('sysctl', '-q', '-w', '%s=%s' % (name, value))

    def sysctl_try(self, name, value):
        """Set a sysctl this kernel may not have; True if it was set."""
        if not os.path.exists('/proc/sys/' + name.replace('.', '/')):
            self.note('sysctl %s not available on this kernel' % name)
            return False
        self.sysctl(name, value)
        return True

    def nft(self, script):
        """Apply an nft script inside the namespace (table inet tcpst exists)."""
        if not self._nft_ready:
            self.run('nft', '-f', '-', input=(
                'table inet %s {\n'
                ' chain input { type filter hook input priority 0; policy accept; }\n'
                ' chain output { type filter hook output priority 0; policy accept; }\n'
                '}\n' % NFT_TABLE))
            self._nft_ready = True
        self.run('nft', '-f', '-', input=script)

    def drop(self, hook, match, name='drop'):
        """Drop packets matching the nft expression MATCH in HOOK ('input'/'output').

        On lo an input drop is still in the capture (the observer saw it, the receiver
        never accepted it); an output drop is not. NAME labels the rule's counter.
        """
        self.drop_many([(hook, match, name)])

    def drop_many(self, rules):
        """Several drop rules [(hook, match, name)] installed by one nft call (atomic)."""
        script = ''
        for hook, match, name in rules:
            assert hook in ('input', 'output')
            script += ('add rule inet %s %s %s counter drop comment "%s"\n'
                       % (NFT_TABLE, hook, match, name))
        self.nft(script)
        for hook, match, name in rules:
            self.log('nft %s: drop %s (%s)' % (hook, match, name))

    def flush(self, hook=None):
        if not self._nft_ready:
            return
        for h in ([hook] if hook else ['input', 'output']):
            self.nft('flush chain inet %s %s\n' % (NFT_TABLE, h))
        self.log('nft flush %s' % (hook or 'all'))

    def dropped(self, name=None):
        """Packets counted so far by the drop rules (those labelled NAME, or all)."""
        if not self._nft_ready:
            return 0
        total = 0
        for line in self.run('nft', 'list', 'table', 'inet', NFT_TABLE).splitlines():
            f = line.split()
            if 'counter' not in f or 'packets' not in f:
                continue
            if name is not None and 'comment "%s"' % name not in line:
                continue
            total += int(f[f.index('packets') + 1])
        return total

    def wait_dropped(self, n, timeout, what, name=None):
        """Wait until drop rules (NAME or all) counted N packets: retransmissions came."""
        deadline = time.time() + timeout
        while self.dropped(name) < n:
            if time.time() > deadline:
                raise ScenarioError('%s: only %d of %d expected packets dropped after %.1f s'
                                    % (what, self.dropped(name), n, timeout))
            time.sleep(0.01)

    def delay_lo(self, rate='4kbit', burst=100):
        """Slow lo down to RATE with a token bucket (queueing delay, no netem needed).

        Packets wait in the qdisc before they are delivered and captured; the capture
        therefore still shows each packet once, at delivery.
        """
        self.run('tc', 'qdisc', 'replace', 'dev', 'lo', 'root', 'tbf', 'rate', rate,
                 'burst', str(burst), 'limit', '100000')
        self._tc = True
        self.log('tc: lo limited to %s (burst %d)' % (rate, burst))

    def undelay_lo(self):
        if self._tc:
            self.run('tc', 'qdisc', 'del', 'dev', 'lo', 'root', check=False)
            self._tc = False
            self.log('tc: lo delay removed')

    # ------------------------------------------------------------------ sockets
    def listen(self, port, addr=SERVER, backlog=16, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((addr, port))
        s.listen(backlog)
        self.keep.append(s)
        return s

    def socket(self, addr, port=0, reuse=False, sndbuf=None, rcvbuf=None):
        """A TCP socket bound to ADDR:PORT (PORT 0: the kernel picks one)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sndbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((addr, port))
        self.keep.append(s)
        return s

    def connect(self, addr, dst, port=0, reuse=False, timeout=3.0, **kw):
        """Blocking connect from ADDR:PORT to DST=(addr, port); returns the socket."""
        s = self.socket(addr, port, reuse=reuse, **kw)
        s.settimeout(timeout)
        s.connect(dst)
        s.settimeout(None)
        return s

    def connect_nb(self, addr, dst, port=0, reuse=False, **kw):
        """Start a non-blocking connect; the SYN is sent, the call returns at once."""
        s = self.socket(addr, port, reuse=reuse, **kw)
        s.setblocking(False)
        e = s.connect_ex(dst)
        if e not in (0, errno.EINPROGRESS):
            raise ScenarioError('connect_ex to %s: %s' % (dst, os.strerror(e)))
        return s

    def connect_refused(self, addr, dst, port=0):
        """Connect to a port without listener; assert the kernel refuses it (RST)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, port))
        s.settimeout(3.0)
        try:
            s.connect(dst)
        except ConnectionRefusedError:
            pass
        else:
            raise ScenarioError('connect to %s was not refused' % (dst,))
        finally:
            s.close()

    def accept(self, lsock, timeout=3.0):
        lsock.settimeout(timeout)
        try:
            c, _ = lsock.accept()
        except socket.timeout:
            raise ScenarioError('accept on %s timed out' % (lsock.getsockname(),))
        c.settimeout(None)
        self.keep.append(c)
        return c

    def pair(self, addr, lsock, port=0, reuse=False, **kw):
        """Connect ADDR:PORT to the listener; return (client socket, server socket)."""
        c = self.connect(addr, lsock.getsockname(), port=port, reuse=reuse, **kw)
        return c, self.accept(lsock)

    def exchange(self, c, s, request=b'GET / HTTP/1.0\r\n\r\n', reply=b'x' * 300):
        """A little request/response so the connection carries data both ways."""
        c.sendall(request)
        self.recv_exact(s, len(request))
        s.sendall(reply)
        self.recv_exact(c, len(reply))

    def recv_exact(self, s, n, timeout=3.0):
        s.settimeout(timeout)
        buf = b''
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ScenarioError('unexpected EOF after %d of %d bytes' % (len(buf), n))
            buf += chunk
        s.settimeout(None)
        return buf

    def recv_eof(self, s, timeout=3.0):
        """Read until the peer's FIN (EOF); return the bytes read."""
        s.settimeout(timeout)
        buf = b''
        deadline = time.time() + timeout
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                s.settimeout(None)
                return buf
            buf += chunk
        raise ScenarioError('no EOF within %.1f s' % timeout)

    @staticmethod
    def linger0(s):
        """SO_LINGER {1, 0}: close() sends RST and the socket vanishes."""
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))

    def close(self, *socks):
        for s in socks:
            s.close()
            if s in self.keep:
                self.keep.remove(s)

    # TCP_INFO's tcpi_state (include/net/tcp_states.h) -> RFC names.
    TCPI_STATES = {1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECEIVED', 4: 'FIN_WAIT_1',
                   5: 'FIN_WAIT_2', 6: 'TIME_WAIT', 7: 'CLOSED', 8: 'CLOSE_WAIT',
                   9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING'}

    def sock_state(self, s):
        """State of a socket we hold, from TCP_INFO: no subprocess, microseconds."""
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return self.TCPI_STATES.get(info[0], 'UNKNOWN(%d)' % info[0])

    def wait_sockets(self, want, timeout=5.0):
        """Busy-wait (1 ms) until each held socket in WANT {sock: state} has its state."""
        deadline = time.time() + timeout
        while True:
            have = {s: self.sock_state(s) for s in want}
            if have == want:
                return
            if time.time() >= deadline:
                raise ScenarioError('timed out after %.1f s waiting for %s, have %s'
                                    % (timeout, list(want.values()), list(have.values())))
            time.sleep(0.001)

    def udp_blip(self, addr='127.0.0.99', port=9, size=38):
        """One UDP datagram to a bound socket of ours (no ICMP): e.g. to take tokens
        out of a tbf bucket so that the next TCP packets queue."""
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind((addr, port))
        r.sendto(b'.' * size, (addr, port))
        r.close()

    def raw_syn(self, src, dst, seq=None, mss=65495):
        """Send one hand-made SYN from SRC=(addr, port) to DST=(addr, port).

        For spoofed clients: SRC may be any 127.0.0.0/8 address (all local on lo, so
        nothing leaves the namespace). Nothing answers the SYN-ACK unless a socket
        exists; drop those SYN-ACKs at input, or the stack answers them with RST.
        """
        import random
        seq = random.getrandbits(32) if seq is None else seq
        opts = struct.pack('!BBH', 2, 4, mss)                  # MSS option
        hdr_len = 20 + len(opts)
        tcp = struct.pack('!HHIIBBHHH', src[1], dst[1], seq, 0, (hdr_len // 4) << 4,
                          0x02, 65495, 0, 0) + opts
        pseudo = (socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) +
                  struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(tcp)))
        data = pseudo + tcp
        total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
        while total >> 16:
            total = (total & 0xffff) + (total >> 16)
        csum = ~total & 0xffff
        tcp = tcp[:16] + struct.pack('!H', csum) + tcp[18:]
        if not hasattr(self, '_raw'):
            self._raw = {}
        r = self._raw.get(src[0])
        if r is None:
            r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
            r.bind((src[0], 0))
            self._raw[src[0]] = r
            self.keep.append(r)
        r.sendto(tcp, (dst[0], 0))
        return seq

    def syn_flood(self, dst, sources, rate, limit_s):
        """Send one spoofed SYN from each (addr, port) in SOURCES to DST at RATE per
        second, on an absolute schedule; return (first, last) send times.

        One raw socket with the IP header built here (IPPROTO_RAW implies
        IP_HDRINCL), so any 127.0.0.0/8 source works without a socket per address;
        everything stays on the namespace's lo. Fails the scenario if sending took
        longer than LIMIT_S (the test's figures assume the pace held).
        """
        import random
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.keep.append(r)
        daddr = socket.inet_aton(dst[0])
        t0 = time.time()
        first = last = None
        for i, (addr, port) in enumerate(sources):
            due = t0 + i / rate
            while time.time() < due:
                time.sleep(max(0.0, min(due - time.time(), 0.002)))
            saddr = socket.inet_aton(addr)
            opts = struct.pack('!BBH', 2, 4, 65495)               # MSS
            tcp = struct.pack('!HHIIBBHHH', port, dst[1], random.getrandbits(32), 0,
                              (20 + len(opts)) // 4 << 4, 0x02, 65495, 0, 0) + opts
            pseudo = saddr + daddr + struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(tcp))
            tcp = tcp[:16] + struct.pack('!H', _csum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0x4000, 64,
                             socket.IPPROTO_TCP, 0, saddr, daddr)  # length, checksum: kernel
            r.sendto(ip + tcp, (dst[0], 0))
            last = time.time()
            if first is None:
                first = last
        if last - t0 > limit_s:
            raise ScenarioError('sending %d SYNs took %.2f s, over %.2f s'
                                % (len(sources), last - t0, limit_s))
        return first, last

    def nstat(self, *names):
        """Absolute values of the namespace's SNMP counters NAMES (nstat -az), without
        touching nstat's history file."""
        out = self.run('nstat', '-a', '-z', '-s', *names)
        vals = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 2 and f[0] in names:
                vals[f[0]] = int(f[1])
        missing = [n for n in names if n not in vals]
        if missing:
            raise HarnessError('nstat has no counter %s' % ' '.join(missing))
        return vals

    def kill_socket(self, local, peer):
        """ss -K: the kernel destroys the socket LOCAL -> PEER ('a:p' strings) as if
        its host lost it; it sends an RST (drop it first to lose the state silently)."""
        la, lp = local.rsplit(':', 1)
        pa, pp = peer.rsplit(':', 1)
        self.run('ss', '-K', 'src', la, 'sport', '=', ':' + lp, 'dst', pa, 'dport', '=',
                 ':' + pp, check=False)
        if self.state_of(local, peer) != 'CLOSED':
            raise ScenarioError('ss -K did not destroy %s -> %s (CONFIG_INET_DIAG_DESTROY?)'
                                % (local, peer))

    def tcp_info(self, local, peer):
        """ss -tin's extra fields of one socket as a dict (e.g. 'retrans': '0/4')."""
        la, lp = local.rsplit(':', 1)
        pa, pp = peer.rsplit(':', 1)
        out = self.run('ss', '-tinH', 'src', la, 'sport', '=', ':' + lp, 'dst', pa,
                       'dport', '=', ':' + pp)
        info = {}
        for tok in out.split():
            k, sep, v = tok.partition(':')
            if sep and k.replace('_', '').isalpha():
                info.setdefault(k, v)
        return info

    # ------------------------------------------------------------------ ss
    def ss_raw(self):
        return self.run('ss', '-tanH')

    def ss(self):
        return parse_ss(self.ss_raw())

    def state_of(self, local, peer):
        """ss state (RFC name) of the socket LOCAL -> PEER ('a:p' strings), or CLOSED."""
        for s in self.ss():
            if s['local'] == local and s['peer'] == peer:
                return s['state']
        return 'CLOSED'

    def wait_for(self, what, pred, timeout=5.0, interval=0.01):
        """Poll ss until PRED(sockets) is true; ScenarioError after TIMEOUT seconds."""
        deadline = time.time() + timeout
        while True:
            socks = self.ss()
            if pred(socks):
                return socks
            if time.time() >= deadline:
                raise ScenarioError('timed out after %.1f s waiting for %s; ss now:\n%s'
                                    % (timeout, what, self.ss_raw()))
            time.sleep(interval)

    def wait_states(self, want, timeout=5.0):
        """Wait until every (local, peer) in WANT has its state; WANT: {(l, p): state}."""
        def ok(socks):
            have = {(s['local'], s['peer']): s['state'] for s in socks}
            return all(have.get(k, 'CLOSED') == v for k, v in want.items())
        return self.wait_for('states %s' % want, ok, timeout)

    def wait_none_in(self, states, timeout=5.0):
        """Wait until no socket is in any of STATES (RFC names)."""
        return self.wait_for('no socket in %s' % (states,),
                             lambda socks: not any(s['state'] in states for s in socks),
                             timeout)

    def snapshot(self, name='final', require=(), tries=50):
        """Take the kernel's truth: ss twice around a timestamp until both agree.

        The states read before and after AT are identical, so they held at AT. REQUIRE
        lists states (RFC names) that must appear, i.e. what the scenario was built to
        produce; a scenario that misses them fails as a harness error, not as a
        tcpstate bug.
        """
        for s in require:
            if s not in STATES:
                raise HarnessError('unknown state %r' % s)
        for _ in range(tries):
            raw1 = self.ss_raw()
            at = time.time()
            raw2 = self.ss_raw()
            t2 = time.time()
            a, b = parse_ss(raw1), parse_ss(raw2)
            key = lambda lst: sorted((x['local'], x['peer'], x['state']) for x in lst)
            if key(a) == key(b):
                break
            time.sleep(0.005)
        else:
            raise ScenarioError('ss never stable for snapshot %r' % name)
        have = {x['state'] for x in b}
        missing = [s for s in require if s not in have]
        if missing:
            raise ScenarioError('snapshot %r: scenario did not produce %s; ss:\n%s'
                                % (name, missing, raw2))
        snap = {'event': 'snapshot', 'name': name, 'at': round(at, 6), 'window_end': t2,
                'ss': [l for l in raw2.splitlines() if l.strip()], 'sockets': b}
        self.snapshots.append(snap)
        self.emit(snap)
        counts = {}
        for x in b:
            counts[x['state']] = counts.get(x['state'], 0) + 1
        self.log('snapshot %r at %.6f: %s' % (name, at, counts))
        return b


def _csum(data):
    """The Internet checksum (RFC 1071) of DATA."""
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def actor_main(scenario):
    """Entry point inside the namespace: run SCENARIO, report, hold sockets, exit."""
    a = Actor()
    code = 0
    try:
        scenario.func(a)
        if not a.snapshots:
            raise HarnessError('scenario took no snapshot')
        a.emit({'event': 'done', 'notes': a.notes, 'facts': a.facts})
    except HarnessError as e:
        a.emit({'event': 'error', 'message': str(e)})
        code = 1
    except Exception as e:  # noqa: BLE001 -- any bug in a scenario is a harness error
        import traceback
        a.emit({'event': 'error', 'message': '%s: %s\n%s'
                % (type(e).__name__, e, traceback.format_exc())})
        code = 1
    # Hold every socket until the parent has stopped tcpdump (bounded wait).
    select.select([sys.stdin], [], [], 30.0)
    a.undelay_lo()
    return code
