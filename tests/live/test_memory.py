#!/usr/bin/env python3
"""Live capture: bounded memory under many thousands of connections.

    test_memory.py TCPSTATE

A load process in the namespace runs for LOAD_SECONDS (a bounded loop) and every second
makes REAL_PER_S real connections to 127.0.0.1:8080 from 100 client addresses, each
with a request and a reply, then
    - a third closed by the client at once (client TIME_WAIT, server CLOSED),
    - a third kept ESTABLISHED and silent for HOLD seconds, then aborted (RST),
    - a third closed by the server with the client leaking CLOSE_WAIT for HOLD
      seconds, then closed;
and sends SYN_PER_S spoofed SYNs from 127.1.0.0/16 to a listener on 127.0.0.1:8081
whose SYN-ACKs an nft input rule drops (captured; nobody answers: half-open).

Three tcpstate processes watch at once (--interval 1, output to files):
 A  --format json, short idle timeouts for every state (2 s) and --time-wait 2;
 B  --format json, --max-connections CAP with the live defaults;
 C  text with --limit 0 ("list all") and A's timeouts: the text list may not keep
    every finished connection of a run that can last weeks.
Their VmRSS is read from /proc/PID/status every second. After a warm-up, the samples
are cut in thirds; for each of A, B and C:
    max(last third) <= 1.2 * max(first third) + 2 MiB       (memory stays flat)
and from the tick records:
 A  "open" stays bounded: its maximum in the last third is at most 1.2 x that of the
    first third + 100, and never above what the load made in the last
    OPEN_WINDOW seconds (the load's own count); "expired" > 0; the SYN flood (300
    SYNs/s, none completed, over the default --syn-rate 100) is alerted as it
    happens: a syn_flood record for 127.0.0.1:8081 before the last tick, and a tick
    with syn_alerts >= 1 during the load;
 B  "open" <= CAP in every tick, reaches CAP, and "evicted" > 0 and grows;
all end with exit 0 and their final report after SIGINT, and the load made more than 5000
connections (its own count).
"""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from livelib import Failure, HarnessError, LiveEnv, check, log, main

LOAD_SECONDS = int(os.environ.get("LIVE_LOAD_SECONDS", "24"))
WARMUP = 5
REAL_PER_S = 240
SYN_PER_S = 300
HOLD = 4.0
CAP = 500
IDLE = '2'
OPEN_WINDOW = 14       # longest stay of a connection in A: 2 x idle + linger 5 s + slack
MIB = 1024 * 1024

# Under AddressSanitizer (scripts/test.sh's asan stage), freed memory sits in
# ASan's quarantine to catch use-after-free, so RSS grows by design. Turn the
# quarantine off for the tcpstate processes started here: the check then
# measures tcpstate's own memory, sanitized or not.
if os.environ.get('TCPSTATE_SANITIZERS'):
    os.environ['ASAN_OPTIONS'] = (os.environ.get('ASAN_OPTIONS', '') +
                                  ':quarantine_size_mb=0').lstrip(':')


# --------------------------------------------------------------------------- the load

def syn_sender():
    """One raw socket with IP_HDRINCL: SYNs from any 127.1.x.y source."""
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    r.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)

    def csum(data):
        if len(data) % 2:
            data += b'\0'
        total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
        while total >> 16:
            total = (total & 0xffff) + (total >> 16)
        return ~total & 0xffff

    def send(src, sport, dst, dport):
        seq = random.getrandbits(32)
        opts = struct.pack('!BBH', 2, 4, 65495)
        tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, 0, 6 << 4, 0x02, 65495, 0, 0) + opts
        s, d = socket.inet_aton(src), socket.inet_aton(dst)
        c = csum(s + d + struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(tcp)) + tcp)
        tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0, 64,
                         socket.IPPROTO_TCP, 0, s, d)
        r.sendto(ip + tcp, (dst, 0))
    return send


def load_main():
    """Runs in a child process (inside the namespace); prints its counts as JSON."""
    l8080 = socket.socket()
    l8080.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l8080.bind(('127.0.0.1', 8080))
    l8080.listen(1024)
    l8081 = socket.socket()
    l8081.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l8081.bind(('127.0.0.1', 8081))
    l8081.listen(64)
    send_syn = syn_sender()
    held = []           # (close at, [sockets], rst?)
    made = []           # per second: connections started (real + SYN)
    real = syns = 0
    t0 = time.time()
    sec = 0
    linger0 = struct.pack('ii', 1, 0)
    while sec < LOAD_SECONDS:
        n_real = n_syn = 0
        slot_end = t0 + sec + 1
        while time.time() < slot_end:
            # Spread the second's work in 20 slices.
            frac = min(1.0, (time.time() - (t0 + sec)) * 1.05)
            while n_real < REAL_PER_S * frac:
                c = socket.socket()
                c.bind(('127.0.0.%d' % (100 + real % 100), 0))
                c.settimeout(3)
                c.connect(('127.0.0.1', 8080))
                s, _ = l8080.accept()
                c.sendall(b'GET')
                s.recv(16)
                s.sendall(b'x' * 100)
                c.recv(200)
                kind = real % 3
                if kind == 0:
                    c.close()
                    s.close()
                elif kind == 1:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
                    held.append((time.time() + HOLD, [c, s]))
                else:
                    s.close()
                    held.append((time.time() + HOLD, [c]))
                real += 1
                n_real += 1
            while n_syn < SYN_PER_S * frac:
                send_syn('127.1.%d.%d' % (random.randrange(256), random.randrange(1, 255)),
                         random.randrange(1024, 65535), '127.0.0.1', 8081)
                syns += 1
                n_syn += 1
            now = time.time()
            while held and held[0][0] <= now:
                for x in held.pop(0)[1]:
                    x.close()
            time.sleep(0.05)
        made.append(n_real + n_syn)
        sec += 1
    for _, socks in held:
        for x in socks:
            x.close()
    print(json.dumps({'real': real, 'syns': syns, 'per_second': made,
                      'seconds': time.time() - t0}), flush=True)
    return 0


# --------------------------------------------------------------------------- the test

def flat(samples, what):
    """max(last third) <= 1.2 * max(first third) + 2 MiB (after the warm-up)."""
    n = len(samples) // 3
    check(n >= 3, '%s: only %d samples' % (what, len(samples)))
    first, last = max(samples[:n]), max(samples[-n:])
    limit = first * 1.2 + 2 * MIB
    log('%s: VmRSS max first third %.1f MiB, last third %.1f MiB (limit %.1f MiB)'
        % (what, first / MIB, last / MIB, limit / MIB))
    check(last <= limit, '%s: memory grows: VmRSS max %.1f MiB in the first third, %.1f MiB '
          'in the last (limit %.1f MiB); samples (MiB): %s'
          % (what, first / MIB, last / MIB, limit / MIB,
             ' '.join('%.1f' % (x / MIB) for x in samples)))


def ticks_of(path, types=('tick', 'summary', 'syn_flood')):
    recs = []
    with open(path, errors='replace') as f:
        for line in f:
            if any(line.startswith('{"type":"%s"' % t) for t in types):
                recs.append(json.loads(line))
    return recs


def test():
    with LiveEnv('memory') as env:
        workdir = tempfile.mkdtemp(prefix='tcpst-live-memory-')
        ok = False
        try:
            run(env, workdir)
            ok = True
        finally:
            if ok:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                log('outputs kept in %s' % workdir)


def run(env, workdir):
    a = env.actor
    a.sysctl('net.ipv4.tcp_synack_retries', 1)
    a.drop('input', 'ip daddr 127.1.0.0/16', name='spoofed')
    out_a = os.path.join(workdir, 'live-memory-%d-a.json' % os.getpid())
    out_b = os.path.join(workdir, 'live-memory-%d-b.json' % os.getpid())
    idle = []
    for st in ('SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2',
               'CLOSING', 'CLOSE_WAIT', 'LAST_ACK'):
        idle += ['--idle-timeout', '%s=%s' % (st, IDLE)]
    common = ['--format', 'json', '--interval', '1', '-B', '4096']
    ta = env.tcpstate(*common, *idle, '--time-wait', IDLE, stdout=out_a)
    tb = env.tcpstate(*common, '--max-connections', str(CAP), stdout=out_b)
    out_c = os.path.join(workdir, 'live-memory-%d-c.txt' % os.getpid())
    tc = env.tcpstate('--interval', '1', '-B', '4096', '--limit', '0', *idle,
                      '--time-wait', IDLE, stdout=out_c)
    rss = {ta: [], tb: [], tc: []}
    load = None
    try:
        load = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--load'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.time()
        deadline = t0 + LOAD_SECONDS + 15
        while load.poll() is None:
            if time.time() > deadline:
                raise Failure('the load did not finish in time')
            for t in (ta, tb, tc):
                v = t.proc_status('VmRSS')
                if v is None or not t.running():
                    raise Failure('tcpstate pid %d ended during the load\n%s'
                                  % (t.pid, t.describe()))
                if time.time() - t0 >= WARMUP:
                    rss[t].append(int(v[0]) * 1024)
            time.sleep(1.0 - (time.time() - t0) % 1.0)
        out, err = load.communicate(timeout=10)
        if load.returncode != 0:
            raise HarnessError('load failed (%d): %s' % (load.returncode, err.decode()[-2000:]))
        made = json.loads(out.decode().strip().splitlines()[-1])
        log('load: %d real connections, %d spoofed SYNs in %.1f s'
            % (made['real'], made['syns'], made['seconds']))
        check(made['real'] + made['syns'] > 5000, 'the load made only %d connections'
              % (made['real'] + made['syns']))
        for t in (ta, tb, tc):
            t.signal(signal.SIGINT)
        for t in (ta, tb, tc):
            rc = t.wait_exit(15)
            check(rc == 0, 'exit status %d after SIGINT\n%s' % (rc, t.describe()))
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait(timeout=5)

    flat(rss[ta], 'A (idle timeouts 2 s)')
    flat(rss[tb], 'B (--max-connections %d)' % CAP)
    flat(rss[tc], 'C (text, --limit 0)')
    with open(out_c, errors='replace') as f:
        text_c = f.read()
    check('\nTOTAL ' in text_c, 'C: no final text report\n' + tc.describe())

    # A: open bounded, expiry happened.
    recs = ticks_of(out_a)
    check(recs and recs[-1]['type'] == 'summary', 'A: no summary at the end')
    ticks = [r for r in recs if r['type'] == 'tick']
    t_first = ticks[0]['ts']
    steady = [r for r in ticks if WARMUP <= r['ts'] - t_first <= LOAD_SECONDS]
    n = len(steady) // 3
    opens = [r['open'] for r in steady]
    log('A: open per tick: %s' % ' '.join(str(x) for x in opens))
    check(max(opens[-n:]) <= 1.2 * max(opens[:n]) + 100,
          'A: "open" grows: %s' % opens)
    window = max(sum(made['per_second'][i:i + OPEN_WINDOW])
                 for i in range(len(made['per_second'])))
    check(max(opens) <= window, 'A: "open" %d is above the %d connections the load made in '
          'any %d s' % (max(opens), window, OPEN_WINDOW))
    check(ticks[-1]['expired'] > 0, 'A: nothing expired with 2 s idle timeouts')
    last_tick = max(i for i, r in enumerate(recs) if r['type'] == 'tick')
    floods = [r for r in recs[:last_tick] if r['type'] == 'syn_flood'
              and r['target'] == {'addr': '127.0.0.1', 'port': 8081}]
    check(floods, 'A: no syn_flood record for 127.0.0.1:8081 while the flood went on')
    check(any(r['syn_alerts'] >= 1 for r in steady), 'A: no tick counts a SYN alert')
    pc = ticks[-1]['pcap']
    if pc['dropped'] or pc['if_dropped']:
        log('note: the kernel dropped packets for A: %s' % pc)

    # B: capped, evictions counted.
    recs = ticks_of(out_b)
    check(recs and recs[-1]['type'] == 'summary', 'B: no summary at the end')
    ticks = [r for r in recs if r['type'] == 'tick']
    opens = [r['open'] for r in ticks]
    log('B: open per tick: %s' % ' '.join(str(x) for x in opens))
    check(max(opens) <= CAP, 'B: "open" %d above --max-connections %d' % (max(opens), CAP))
    check(CAP in opens, 'B: "open" never reached --max-connections %d: %s' % (CAP, opens))
    ev = [r['evicted'] for r in ticks]
    check(ev[-1] > 0 and ev == sorted(ev), 'B: "evicted" not counted or not cumulative: %s'
          % ev)
    check(recs[-1].get('out_of_memory', 0) == 0, 'B: out of memory')


if __name__ == '__main__':
    if sys.argv[1:] == ['--load']:
        sys.exit(load_main())
    sys.exit(main(test))
