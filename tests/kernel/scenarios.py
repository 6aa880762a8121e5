"""Real-kernel scenarios: one function each, run inside a fresh network namespace.

A scenario drives plain sockets through one situation, then calls a.snapshot() while
it still holds its sockets; the harness (ktest.py) captured everything with tcpdump and
checks tcpstate against that ss snapshot. To add one:

    @scenario('name', covers={'STATE', ...}, doc='one line')
    def name(a):            # a: kactor.Actor, already inside the namespace
        ...
        a.snapshot(require=['STATE'])     # fails the scenario if ss lacks STATE

    @name.verify                       # optional: check the capture shows the situation
    def _(wire, snaps): ...            # wire: {key: kcompare.WireConn}; raise ScenarioError

    @name.reports                      # optional: check tcpstate's troubleshooting reports
    def _(r): ...                      # r: kreports.Reports; figures from r.facts / ss

`covers` names the states (RFC names) the scenario is built to make the kernel show,
including CLOSED for endpoints with no socket; the kernel-coverage test checks that the
suite covers all ten. Servers listen on 127.0.0.1, clients bind other 127.0.0.x
addresses, and nothing ever leaves the namespace's loopback.
"""

import socket
import threading
import time

from kcompare import STATES, SYN, ACK, FIN, RST, endpoint
from kactor import SERVER, ScenarioError

SCENARIOS = {}


class Scenario:
    def __init__(self, name, func, covers, doc, record, in_suite, timeout, xfail_states):
        self.name, self.func, self.doc = name, func, doc
        self.covers = frozenset(covers)
        self.record, self.in_suite, self.timeout = record, in_suite, timeout
        self.xfail_states = xfail_states
        self.verifier = None
        self.reports_fn = None
        bad = self.covers - set(STATES)
        if bad:
            raise ValueError('%s: unknown states %s' % (name, bad))

    def verify(self, fn):
        self.verifier = fn
        return fn

    def reports(self, fn):
        self.reports_fn = fn
        return fn


def scenario(name, covers, doc, record=False, in_suite=True, timeout=60, xfail_states=None):
    """Register a scenario. XFAIL_STATES: (why, predicate on a kcompare.Row): a known
    tracker disagreement with the kernel. A state check whose only mismatches satisfy
    the predicate passes (XFAIL); one that passes outright fails (XPASS), so the
    marker is removed with the tracker's fix."""
    def deco(fn):
        if name in SCENARIOS:
            raise ValueError('duplicate scenario %s' % name)
        SCENARIOS[name] = Scenario(name, fn, covers, doc, record, in_suite, timeout,
                                   xfail_states)
        return SCENARIOS[name]
    return deco


def ep(text):
    """'127.0.0.2:40000' -> the canonical endpoint tuple used by kcompare."""
    host, _, port = text.rpartition(':')
    return endpoint(host, port)


def conn_packets(wire, a, b):
    """Packets of the 4-tuple a <-> b ('addr:port' strings), in capture order."""
    key = tuple(sorted((ep(a), ep(b))))
    if key not in wire:
        raise ScenarioError('capture has no packet of %s <-> %s' % (a, b))
    return wire[key].packets


# ============================================================================ closes

@scenario('close_client_first', covers={'TIME_WAIT', 'CLOSED'}, record=True,
          doc='three connections closed by the client first: client TIME_WAIT, server CLOSED')
def close_client_first(a):
    lsock = a.listen(8080)
    pairs = [a.pair('127.0.0.%d' % (2 + i), lsock, port=40000 + i) for i in range(3)]
    for c, s in pairs:
        a.exchange(c, s)
    for c, s in pairs:
        a.close(c)                  # FIN from the client
        a.recv_eof(s)
        a.close(s)                  # server's FIN: LAST_ACK, then CLOSED on the last ACK
    a.wait_none_in({'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING'})
    a.snapshot(require=['TIME_WAIT'])


@scenario('close_server_first', covers={'TIME_WAIT', 'CLOSED'}, record=True,
          doc='three connections closed by the server first: server TIME_WAIT, client CLOSED')
def close_server_first(a):
    lsock = a.listen(8080)
    pairs = [a.pair('127.0.0.%d' % (2 + i), lsock, port=40000 + i) for i in range(3)]
    for c, s in pairs:
        a.exchange(c, s)
    for c, s in pairs:
        a.close(s)
        a.recv_eof(c)
        a.close(c)
    a.wait_none_in({'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING'})
    a.snapshot(require=['TIME_WAIT'])


@scenario('close_wait_leak', covers={'CLOSE_WAIT', 'FIN_WAIT_2'}, record=True,
          doc='four clients close, the server never closes: CLOSE_WAIT leak, clients FIN_WAIT_2')
def close_wait_leak(a):
    lsock = a.listen(8080)
    pairs = [a.pair('127.0.0.%d' % (2 + i), lsock, port=40000 + i) for i in range(4)]
    for c, s in pairs:
        a.exchange(c, s)
    for i, (c, s) in enumerate(pairs):
        if i % 2:
            c.shutdown(socket.SHUT_WR)  # fd kept: FIN_WAIT_2 for good
        else:
            a.close(c)                  # orphan: FIN_WAIT_2 until tcp_fin_timeout
        a.recv_eof(s)                   # the application saw EOF ... and leaks the socket
    a.wait_for('4 CLOSE_WAIT and 4 FIN_WAIT_2', lambda ss: (
        sum(x['state'] == 'CLOSE_WAIT' for x in ss) == 4 and
        sum(x['state'] == 'FIN_WAIT_2' for x in ss) == 4))
    a.sleep(0.3)
    a.snapshot(require=['CLOSE_WAIT', 'FIN_WAIT_2'])


@scenario('last_ack_final_ack_lost', covers={'LAST_ACK', 'TIME_WAIT'}, record=True,
          doc="client closes, server closes, the client's final ACK is dropped at the "
              "server's input: server LAST_ACK (FIN retransmitted), client TIME_WAIT")
def last_ack_final_ack_lost(a):
    lsock = a.listen(8080)
    c, s = a.pair('127.0.0.2', lsock, port=40000)
    a.exchange(c, s)
    a.close(c)
    a.recv_eof(s)
    a.wait_states({('127.0.0.2:40000', '127.0.0.1:8080'): 'FIN_WAIT_2',
                   ('127.0.0.1:8080', '127.0.0.2:40000'): 'CLOSE_WAIT'})
    # From now on nothing the client sends is accepted by the server (still captured).
    a.drop('input', 'ip saddr 127.0.0.2 ip daddr 127.0.0.1 tcp sport 40000 tcp dport 8080')
    a.close(s)
    # Final ACK + the client's answers to two retransmitted FINs.
    a.wait_dropped(3, 4.0, 'final ACK and two re-ACKs')
    a.snapshot(require=['LAST_ACK', 'TIME_WAIT'])


@last_ack_final_ack_lost.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.1:8080', '127.0.0.2:40000')
    fins = [p for p in pk if p.src == ep('127.0.0.1:8080') and p.flags & FIN]
    if len(fins) < 2:
        raise ScenarioError('server FIN was not retransmitted (%d FINs)' % len(fins))


# ============================================================================ aborts

@scenario('rst_abort', covers={'CLOSED'}, record=True,
          doc='SO_LINGER {1,0} close on the client of one connection and the server of '
              'another: RST, both ends CLOSED')
def rst_abort(a):
    lsock = a.listen(8080)
    c1, s1 = a.pair('127.0.0.2', lsock, port=40000)
    c2, s2 = a.pair('127.0.0.3', lsock, port=40001)
    a.exchange(c1, s1)
    a.exchange(c2, s2)
    a.linger0(c1)
    a.close(c1)                     # client aborts; s1 stays open in the application
    a.linger0(s2)
    a.close(s2)                     # server aborts; c2 stays open in the application
    a.wait_for('no connection left', lambda ss: not ss)
    a.snapshot()


@rst_abort.verify
def _(wire, snaps):
    for cl in ('127.0.0.2:40000', '127.0.0.3:40001'):
        if not any(p.flags & RST for p in conn_packets(wire, cl, '127.0.0.1:8080')):
            raise ScenarioError('no RST on %s' % cl)


@scenario('refused', covers={'CLOSED'}, record=True,
          doc='three connects to a port without listener, answered by RST: all CLOSED')
def refused(a):
    a.listen(8080)                  # a listener exists, but on another port
    for i in range(3):
        a.connect_refused('127.0.0.%d' % (2 + i), (SERVER, 9), port=40000 + i)
    a.sleep(0.1)
    a.snapshot()


@refused.reports
def _(r):
    recs = r.json()
    lis = r.one(recs, 'listener', endpoint='127.0.0.1:9')
    r.eq('refused', lis.get('refused'), 3, 'three connect()s refused with ECONNREFUSED')
    r.eq('accepted', lis.get('accepted'), 0, 'nothing listens on port 9')
    r.eq('listening', lis.get('listening'), False, 'nothing listens on port 9')
    r.eq('no record for 8080', len(r.select(recs, 'listener', endpoint='127.0.0.1:8080')), 0,
         'no SYN was sent to the real listener')
    r.eq('no half-open', len(r.select(recs, 'half_open')), 0, 'refused: both ends CLOSED')


@scenario('syn_unanswered', covers={'SYN_SENT', 'CLOSED'}, record=True,
          doc="SYNs dropped at the server's input (captured, never answered): "
              "client SYN_SENT, server CLOSED")
def syn_unanswered(a):
    a.listen(8080)
    a.drop('input', 'ip daddr 127.0.0.1 tcp flags & (syn | ack) == syn')
    a.fact('t_connect', a.now())
    a.connect_nb('127.0.0.2', (SERVER, 8080), port=40000)
    a.connect_nb('127.0.0.3', (SERVER, 8081), port=40001)     # no listener there either
    a.wait_dropped(4, 3.0, 'two SYNs and their first retransmissions')
    a.snapshot(require=['SYN_SENT'])


@syn_unanswered.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.2:40000', '127.0.0.1:8080')
    if sum(1 for p in pk if p.flags & SYN) < 2 or any(p.src != ep('127.0.0.2:40000') for p in pk):
        raise ScenarioError('expected only retransmitted SYNs from the client')


@syn_unanswered.reports
def _(r):
    f, socks = r.facts, r.snap()['sockets']
    recs = r.json()
    for cl, sv in (('127.0.0.2:40000', '127.0.0.1:8080'), ('127.0.0.3:40001', '127.0.0.1:8081')):
        h = r.one(recs, 'half_open', kind='syn_unanswered', endpoint=cl)
        r.eq('%s peer' % cl, r._ep_is(h.get('peer', {}), sv), True, 'it connects to %s' % sv)
        r.between('%s since' % cl, h.get('since'), f['t_connect'], f['t_connect'] + 0.1,
                  'its connect()')
        r.true('%s segments' % cl, (h.get('evidence') or {}).get('segments', 0) >= 2,
               'the SYN and its retransmission(s): %s' % (h.get('evidence') or {}).get('segments'))
        lis = r.one(recs, 'listener', endpoint=sv)
        r.eq('%s unanswered' % sv, lis.get('unanswered'), 1, 'its SYNs were dropped at input')
    r.eq('half_open syn_unanswered', len(r.select(recs, 'half_open', kind='syn_unanswered')),
         sum(1 for x in socks if x['state'] == 'SYN_SENT'), 'ss SYN-SENT')


@scenario('syn_received_ack_lost', covers={'SYN_RECEIVED', 'ESTABLISHED'},
          doc="the client's handshake ACK is dropped at the server's input: "
              "client ESTABLISHED, server SYN_RECEIVED (SYN-ACK retransmitted)")
def syn_received_ack_lost(a):
    lsock = a.listen(8080)
    a.drop('input', 'ip saddr 127.0.0.2 tcp dport 8080 tcp flags & (syn | ack) == ack')
    a.fact('t_connect', a.now())
    a.connect('127.0.0.2', (SERVER, 8080), port=40000)        # returns on the SYN-ACK
    a.fact('t_connected', a.now())
    # The ACK, then the re-ACK of the SYN-ACK retransmitted after about 1 s.
    a.wait_dropped(2, 4.0, 'handshake ACK and its repetition')
    a.snapshot(require=['SYN_RECEIVED', 'ESTABLISHED'])


@syn_received_ack_lost.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.2:40000', '127.0.0.1:8080')
    if sum(1 for p in pk if p.flags & (SYN | ACK) == SYN | ACK) < 2:
        raise ScenarioError('SYN-ACK was not retransmitted')


@syn_received_ack_lost.reports
def _(r):
    f, at = r.facts, r.snap()['at']
    recs = r.json()
    h = r.one(recs, 'half_open', kind='handshake_incomplete', endpoint='127.0.0.1:8080')
    r.between('since', h.get('since'), f['t_connect'], f['t_connected'],
              'the SYN: the request is held from then (ss SYN-RECV)')
    r.between('age', h.get('age'), at - f['t_connected'], at - f['t_connect'],
              'snapshot time minus the connect()')
    r.eq('peer_state', h.get('peer_state'), 'ESTABLISHED', 'ss state of the client')
    lis = r.one(recs, 'listener', endpoint='127.0.0.1:8080')
    r.eq('listener accepted', lis.get('accepted'),
         sum(1 for x in r.snap()['sockets'] if x['local'] == '127.0.0.1:8080'
             and x['state'] not in ('SYN_RECEIVED', 'CLOSED')),
         'ss: the server socket is SYN-RECV, no handshake completed')


# ============================================================================ simultaneous

@scenario('simultaneous_open', covers={'ESTABLISHED'},
          doc='two sockets connect to each other at once; their first SYNs cross on the '
              'wire (held at input), the retransmissions complete the open: both ESTABLISHED')
def simultaneous_open(a):
    A, B = ('127.0.0.2', 5001), ('127.0.0.3', 5002)
    a.drop('input', 'tcp flags & (syn | ack) == syn')
    sa = a.connect_nb(A[0], B, port=A[1], reuse=True)
    sb = a.connect_nb(B[0], A, port=B[1], reuse=True)
    a.wait_dropped(2, 2.0, 'both first SYNs')
    a.flush('input')
    a.wait_states({('127.0.0.2:5001', '127.0.0.3:5002'): 'ESTABLISHED',
                   ('127.0.0.3:5002', '127.0.0.2:5001'): 'ESTABLISHED'}, timeout=5.0)
    for x in (sa, sb):
        x.setblocking(True)
    sa.sendall(b'hello from A')
    a.recv_exact(sb, 12)
    sb.sendall(b'hello from B')
    a.recv_exact(sa, 12)
    a.sleep(0.1)
    a.snapshot(require=['ESTABLISHED'])


@simultaneous_open.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.2:5001', '127.0.0.3:5002')
    first_synack = next((i for i, p in enumerate(pk) if p.flags & (SYN | ACK) == SYN | ACK),
                        len(pk))
    senders = {p.src for p in pk[:first_synack] if p.flags & (SYN | ACK) == SYN}
    if len(senders) != 2:
        raise ScenarioError('the two SYNs did not cross on the wire')


@scenario('simultaneous_close', covers={'CLOSING', 'TIME_WAIT'}, record=True,
          doc='both sides shut down at once, FINs cross (held in a slow tbf queue), the '
              'ACKs are dropped at input: both CLOSING; then released: both TIME_WAIT')
def simultaneous_close(a):
    # RTO pinned to 1 s (min and max, where this kernel has the knobs): no FIN
    # retransmission can overtake the crossing FINs, and later ones come each second.
    a.sysctl_try('net.ipv4.tcp_rto_min_us', 1000000)
    a.sysctl_try('net.ipv4.tcp_rto_max_ms', 1000)
    lsock = a.listen(8080)
    c, s = a.pair('127.0.0.2', lsock, port=40000)
    a.exchange(c, s)
    a.sleep(0.1)                    # delayed ACKs out: a quiet connection
    between = ('ip saddr { 127.0.0.1, 127.0.0.2 } ip daddr { 127.0.0.1, 127.0.0.2 } '
               'tcp sport { 8080, 40000 } tcp dport { 8080, 40000 } ')
    # Pure ACKs between the two are never accepted (captured all the same): whatever
    # the timing, neither FIN gets acknowledged, so both sides stay in CLOSING.
    a.drop('input', between + 'tcp flags & fin == 0', name='acks')
    # A token bucket with room for ~one packet, emptied by a UDP datagram: both FINs
    # then wait ~130 ms each in the queue, so each is sent before the other arrives.
    a.delay_lo(rate='4kbit', burst=100)
    a.udp_blip()
    c.shutdown(socket.SHUT_WR)
    s.shutdown(socket.SHUT_WR)
    a.wait_sockets({c: 'CLOSING', s: 'CLOSING'}, timeout=3.0)
    # Freeze: nothing more between them is accepted; the queue is discarded.
    a.drop_many([('input', 'ip saddr 127.0.0.2 ip daddr 127.0.0.1 ' + between + 'tcp flags & fin == fin',
                  'fin-to-server'),
                 ('input', 'ip saddr 127.0.0.1 ip daddr 127.0.0.2 ' + between + 'tcp flags & fin == fin',
                  'fin-to-client')])
    a.undelay_lo()
    # Two retransmitted FINs from each side: each side's second one shows that the
    # peer's FIN+ACK before it was not accepted (the evidence an observer needs).
    a.wait_dropped(2, 8.0, 'FIN retransmissions of the client', name='fin-to-server')
    a.wait_dropped(2, 8.0, 'FIN retransmissions of the server', name='fin-to-client')
    a.snapshot('closing', require=['CLOSING'])
    a.flush('input')
    # The next pair of retransmitted FINs, each acknowledging the other's FIN, is now
    # accepted: both go to TIME_WAIT without a further packet (a TIME_WAIT is its own
    # mini-socket, so ask ss, not the fds). The snapshot waits one more RTO (1 s):
    # the capture then shows that no retransmission followed them.
    CL, SV = '127.0.0.2:40000', '127.0.0.1:8080'
    a.wait_states({(CL, SV): 'TIME_WAIT', (SV, CL): 'TIME_WAIT'}, timeout=8.0)
    a.sleep(1.3)
    a.snapshot('time_wait', require=['TIME_WAIT'])


@simultaneous_close.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.2:40000', '127.0.0.1:8080')
    fins = [p for p in pk if p.flags & FIN]
    if len(fins) < 2 or fins[0].src == fins[1].src:
        raise ScenarioError('no FIN from both sides')
    f1, f2 = fins[0], fins[1]
    # Crossing: the second FIN does not acknowledge the first one.
    if (f2.ack - (f1.seq + f1.paylen + 1)) % 2**32 < 2**31:
        raise ScenarioError('the FINs did not cross: the second FIN acknowledges the first')


# ============================================================================ reuse, volume

@scenario('port_reuse', covers={'ESTABLISHED', 'TIME_WAIT', 'CLOSED'}, record=True,
          doc='one 4-tuple reconnected out of the client\'s TIME_WAIT (tcp_tw_reuse) and one '
              'out of the server\'s TIME_WAIT: two incarnations each')
def port_reuse(a):
    # The namespace defaults, set explicitly: reuse needs timestamps (PAWS) and
    # tcp_tw_reuse (2: loopback only).
    a.sysctl('net.ipv4.tcp_timestamps', 1)
    a.sysctl('net.ipv4.tcp_tw_reuse', 2)
    lsock = a.listen(8080)
    T1, T2, SV = '127.0.0.2:40000', '127.0.0.3:40001', '127.0.0.1:8080'
    # Tuple 1: client closes first -> the client holds TIME_WAIT.
    c, s = a.pair('127.0.0.2', lsock, port=40000, reuse=True)
    a.exchange(c, s)
    a.close(c)
    a.recv_eof(s)
    a.close(s)
    # Tuple 2: server closes first -> the server holds TIME_WAIT.
    c, s = a.pair('127.0.0.3', lsock, port=40001, reuse=True)
    a.exchange(c, s)
    a.close(s)
    a.recv_eof(c)
    a.close(c)
    a.wait_states({(T1, SV): 'TIME_WAIT', (SV, T2): 'TIME_WAIT', (SV, T1): 'CLOSED',
                   (T2, SV): 'CLOSED'})
    # tcp_tw_reuse needs the TIME_WAIT's last timestamp to be over a second old.
    a.sleep(1.2)
    c1, s1 = a.pair('127.0.0.2', lsock, port=40000, reuse=True)   # reuses client TIME_WAIT
    a.exchange(c1, s1)
    c2, s2 = a.pair('127.0.0.3', lsock, port=40001, reuse=True)   # server TIME_WAIT takes SYN
    a.exchange(c2, s2)
    a.close(c2)
    a.recv_eof(s2)
    a.close(s2)
    a.wait_states({(T1, SV): 'ESTABLISHED', (SV, T1): 'ESTABLISHED',
                   (T2, SV): 'TIME_WAIT', (SV, T2): 'CLOSED'})
    a.snapshot(require=['ESTABLISHED', 'TIME_WAIT'])


@port_reuse.verify
def _(wire, snaps):
    for cl in ('127.0.0.2:40000', '127.0.0.3:40001'):
        key = tuple(sorted((ep(cl), ep('127.0.0.1:8080'))))
        if wire[key].incarnations != 2:
            raise ScenarioError('%s: %d incarnations on the wire, not 2'
                                % (cl, wire[key].incarnations))


@scenario('many_short', covers={'TIME_WAIT', 'CLOSED'}, timeout=90,
          doc='1000 short request/response connections closed by the client: '
              '1000 client TIME_WAIT, 1000 server CLOSED')
def many_short(a, n=1000):
    lsock = a.listen(8080, backlog=256)
    for i in range(n):
        c = a.connect('127.0.0.%d' % (2 + i % 4), (SERVER, 8080))
        s = a.accept(lsock)
        c.sendall(b'ping %d\n' % i)
        a.recv_exact(s, len(b'ping %d\n' % i))
        s.sendall(b'pong\n')
        a.recv_exact(c, 5)
        a.close(c)
        a.recv_eof(s)
        a.close(s)
    a.wait_none_in({'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING'},
                   timeout=10.0)
    socks = a.snapshot(require=['TIME_WAIT'])
    tw = sum(1 for x in socks if x['state'] == 'TIME_WAIT')
    if tw != n:
        raise ScenarioError('expected %d TIME_WAIT sockets, ss shows %d' % (n, tw))


@scenario('idle_established', covers={'ESTABLISHED'},
          doc='five idle connections (one never carried data): all ESTABLISHED')
def idle_established(a):
    lsock = a.listen(8080)
    for i in range(5):
        c, s = a.pair('127.0.0.%d' % (2 + i), lsock, port=40000 + i)
        if i:
            a.exchange(c, s)
    a.sleep(0.5)
    a.snapshot(require=['ESTABLISHED'])


@scenario('half_close_data', covers={'FIN_WAIT_2', 'CLOSE_WAIT'}, record=True,
          doc='shutdown(SHUT_WR) while the peer keeps sending (once by the client, once by '
              'the server): the half-closer FIN_WAIT_2, the other CLOSE_WAIT')
def half_close_data(a):
    lsock = a.listen(8080)
    c, s = a.pair('127.0.0.2', lsock, port=40000)
    a.exchange(c, s)
    c.shutdown(socket.SHUT_WR)              # client is done sending ...
    a.recv_eof(s)
    for i in range(5):                      # ... the server's reply keeps flowing
        s.sendall(b'%d' % i * 1000)
        a.recv_exact(c, 1000)
        a.sleep(0.02)
    c2, s2 = a.pair('127.0.0.3', lsock, port=40001)
    s2.shutdown(socket.SHUT_WR)             # the server half-closes an upload
    a.recv_eof(c2)
    for i in range(5):
        c2.sendall(b'%d' % i * 1000)
        a.recv_exact(s2, 1000)
        a.sleep(0.02)
    a.sleep(0.1)
    a.snapshot(require=['FIN_WAIT_2', 'CLOSE_WAIT'])


@half_close_data.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.2:40000', '127.0.0.1:8080')
    fin = next(i for i, p in enumerate(pk) if p.flags & FIN)
    if not any(p.paylen and p.src == ep('127.0.0.1:8080') for p in pk[fin:]):
        raise ScenarioError('no server data after the client FIN')


@scenario('fin_wait_1_unacked', covers={'FIN_WAIT_1', 'ESTABLISHED'},
          doc="the client's FIN is dropped at the server's input (captured, retransmitted): "
              "client FIN_WAIT_1, server ESTABLISHED; once with shutdown, once with close")
def fin_wait_1_unacked(a):
    lsock = a.listen(8080)
    c1, s1 = a.pair('127.0.0.2', lsock, port=40000)
    c2, s2 = a.pair('127.0.0.3', lsock, port=40001)
    a.exchange(c1, s1)
    a.exchange(c2, s2)
    a.drop('input', 'ip saddr { 127.0.0.2, 127.0.0.3 } tcp dport 8080 '
                    'tcp flags & fin == fin')
    c1.shutdown(socket.SHUT_WR)
    a.close(c2)
    a.wait_dropped(4, 4.0, 'both FINs and a retransmission of each')
    a.snapshot(require=['FIN_WAIT_1', 'ESTABLISHED'])


@scenario('zero_window', covers={'ESTABLISHED'},
          doc='the server stops reading until its window is zero while the client has '
              'unsent data: zero-window probes, both ESTABLISHED')
def zero_window(a):
    lsock = a.listen(8080, rcvbuf=4096)
    c = a.connect('127.0.0.2', (SERVER, 8080), port=40000, sndbuf=4096)
    a.accept(lsock)                         # accepted, never read
    c.setblocking(False)
    sent = 0
    for _ in range(2000):                   # bounded: stops at EAGAIN
        try:
            sent += c.send(b'z' * 1024)
        except BlockingIOError:
            break
    else:
        raise ScenarioError('send buffer never filled')
    a.note('client queued %d bytes before EAGAIN' % sent)
    a.sleep(1.6)                            # probes at about +0.2, +0.6, +1.4 s
    a.snapshot(require=['ESTABLISHED'])


@zero_window.verify
def _(wire, snaps):
    pk = conn_packets(wire, '127.0.0.2:40000', '127.0.0.1:8080')
    zero = next((i for i, p in enumerate(pk)
                 if p.src == ep('127.0.0.1:8080') and p.win == 0 and not p.flags & SYN), None)
    if zero is None:
        raise ScenarioError('the server never advertised a zero window')
    if not any(p.src == ep('127.0.0.2:40000') for p in pk[zero + 1:]):
        raise ScenarioError('no zero-window probe after the window closed')


# ============================================================================ reports
# The troubleshooting reports (issue 3). Each scenario records, as facts, the figures
# its report check expects: from the kernel (ss, nstat) or from its own construction
# (how many it made, when); the check (kreports.py) runs tcpstate with the report
# options and compares. The state check runs first, as for every scenario.

def _ss_count(socks, state, local=None, peer=None, local_addr=None):
    """ss sockets in STATE, optionally with that local/peer 'a:p' or local address."""
    return sum(1 for x in socks if x['state'] == state
               and (local is None or x['local'] == local)
               and (peer is None or x['peer'] == peer)
               and (local_addr is None or x['local'].rpartition(':')[0] == local_addr))


@scenario('close_wait_report', covers={'CLOSE_WAIT', 'FIN_WAIT_2'},
          doc='127.0.0.1:8080 leaks 13 sockets in CLOSE_WAIT (10 silent, 3 still sending '
              'after the FIN) and :9090 leaks 2, then 2 fresh ones: the stuck-CLOSE_WAIT report')
def close_wait_report(a):
    web, small = a.listen(8080, backlog=64), a.listen(9090)
    fins = {}                       # client 'a:p' -> [service, FIN before, after, sending]

    def leak(lsock, i, sending=False):
        c, s = a.pair('127.0.0.%d' % (10 + i), lsock, port=41000 + i)
        a.exchange(c, s)
        t0 = a.now()
        if sending:
            c.shutdown(socket.SHUT_WR)  # the client is done; the server answers on
        else:
            a.close(c)                  # the client hangs up (orphan FIN_WAIT_2)
        t1 = a.now()
        a.recv_eof(s)                   # the application saw EOF ... and never closes
        if sending:
            s.sendall(b'r' * 1000)
            a.recv_exact(c, 1000)
        fins['127.0.0.%d:%d' % (10 + i, 41000 + i)] = [
            '%s:%d' % lsock.getsockname(), t0, t1, sending]

    for i in range(10):
        leak(web, i)
    for i in range(10, 13):
        leak(web, i, sending=True)
    for i in range(20, 22):
        leak(small, i)
    a.sleep(1.3)
    for i in range(30, 32):             # fresh: not stuck at the check's threshold
        leak(web, i)
    a.sleep(0.3)
    a.wait_for('17 CLOSE_WAIT', lambda ss: _ss_count(ss, 'CLOSE_WAIT') == 17)
    a.fact('fins', fins)
    a.fact('close_wait_after', 1.0)     # between the fresh (~0.3 s) and stuck (>1.6 s) ages
    a.fact('bytes_after_fin', 1000)
    a.snapshot(require=['CLOSE_WAIT', 'FIN_WAIT_2'])


@close_wait_report.reports
def _(r):
    at, socks, f = r.snap()['at'], r.snap()['sockets'], r.facts
    after = f['close_wait_after']
    stuck = {cl: v for cl, v in f['fins'].items() if v[2] < at - after}
    recs = r.json('--close-wait-after', after)
    for svc in ('127.0.0.1:8080', '127.0.0.1:9090'):
        mine = {cl: v for cl, v in stuck.items() if v[0] == svc}
        # The kernel's CLOSE_WAIT sockets of SVC whose FIN came before the threshold.
        want = sum(1 for x in socks if x['state'] == 'CLOSE_WAIT' and x['local'] == svc
                   and x['peer'] in mine)
        g = r.one(recs, 'close_wait_group', service=svc)
        r.eq('%s count' % svc, g.get('count'), want, 'ss CLOSE-WAIT of the service, FIN older '
             'than --close-wait-after by the scenario\'s clock')
        r.eq('%s silent' % svc, g.get('silent'), sum(not v[3] for v in mine.values()),
             'connections the server never wrote to after the FIN')
        r.eq('%s sending' % svc, g.get('sending'), sum(v[3] for v in mine.values()),
             'connections the server kept writing to')
        r.eq('%s peer_fin_wait_2' % svc, g.get('peer_fin_wait_2'),
             sum(1 for x in socks if x['state'] == 'FIN_WAIT_2' and x['peer'] == svc
                 and x['local'] in mine), 'ss FIN-WAIT-2 of those clients')
        first = min(mine.values(), key=lambda v: v[1])
        r.between('%s oldest_since' % svc, g.get('oldest_since'), first[1] - 0.001,
                  first[2] + 0.05, 'the first close() of the scenario')
        r.between('%s oldest_age' % svc, g.get('oldest_age'), at - first[2] - 0.05,
                  at - first[1] + 0.001, 'snapshot time minus that close()')
        r.eq('%s ages.lt_1m' % svc, (g.get('ages') or {}).get('lt_1m'), want,
             'every leak is seconds old')
    groups = r.select(recs, 'close_wait_group')
    r.true('worst group first', groups and r._ep_is(groups[0]['service'], '127.0.0.1:8080'),
           'first close_wait_group: %s' % (groups[0]['service'] if groups else None))
    cw = r.select(recs, 'close_wait')
    r.eq('close_wait endpoints', sorted('%s:%d' % (x['peer']['addr'], x['peer']['port'])
                                        for x in cw), sorted(stuck), 'the stuck leaks')
    r.eq('bytes_after_fin of the senders',
         sorted(x['bytes_after_fin'] for x in cw if f['fins'].get(
             '%s:%d' % (x['peer']['addr'], x['peer']['port']), [0, 0, 0, False])[3]),
         [f['bytes_after_fin']] * sum(v[3] for v in stuck.values()), 'what the server wrote')
    r.eq('fin_wait_2 endpoints', sorted('%s:%d' % (x['endpoint']['addr'], x['endpoint']['port'])
                                        for x in r.select(recs, 'fin_wait_2')),
         sorted(x['local'] for x in socks if x['state'] == 'FIN_WAIT_2' and x['local'] in stuck),
         'ss FIN-WAIT-2 clients whose FIN is older than the threshold')
    text = r.text('--report', 'close_wait', '--close-wait-after', after)
    lines = text.splitlines()
    head = next((i for i, l in enumerate(lines) if l.startswith('STUCK CLOSE_WAIT')), None)
    lead = lines[head + 1] if head is not None and head + 1 < len(lines) else ''
    n8080 = sum(1 for v in stuck.values() if v[0] == '127.0.0.1:8080')
    silent = sum(1 for v in stuck.values() if v[0] == '127.0.0.1:8080' and not v[3])
    r.true('text leads with the worst service',
           lead.startswith('  127.0.0.1:8080 holds %d connections in CLOSE_WAIT, oldest ' % n8080)
           and lead.endswith(', %d silent since the peer\'s FIN' % silent), repr(lead))


def _syn_flood(a, cookies, backlog, n=600, rate=222.0):
    """N spoofed SYNs, one per source address in 127.0.1.0/24-127.0.3.0/24, at RATE/s to
    a listener with BACKLOG; their SYN-ACKs are dropped at input (captured, no RST)."""
    a.sysctl('net.ipv4.tcp_syncookies', 1 if cookies else 0)
    a.sysctl('net.ipv4.tcp_max_syn_backlog', 2048)
    a.listen(8080, backlog=backlog)
    a.drop('input', 'ip daddr { 127.0.1.0/24, 127.0.2.0/24, 127.0.3.0/24 } '
                    'tcp flags & (syn | ack) == syn | ack', name='synack')
    sources = [('127.0.%d.%d' % (1 + i // 250, 1 + i % 250), 20000 + i) for i in range(n)]
    # The whole flood within three 1 s buckets from its first SYN, the capture's first
    # packet: every SYN lands in a bucket over the default 100 SYNs/s.
    first, last = a.syn_flood((SERVER, 8080), sources, rate, limit_s=2.9)
    a.fact('sent', n)
    a.fact('first', first)
    a.fact('last', last)
    a.fact('rate', rate)
    per_prefix = {}
    for addr, _ in sources:
        pfx = addr.rpartition('.')[0] + '.0/24'
        per_prefix[pfx] = per_prefix.get(pfx, 0) + 1
    a.fact('per_prefix', per_prefix)
    a.fact('syncookies', int(a.run('sysctl', '-n', 'net.ipv4.tcp_syncookies').strip()))
    # Past the tracker's evidence window (2 s without a retransmission: no state).
    a.sleep(max(0.0, last + 2.4 - a.now()))
    socks = a.snapshot(require=['SYN_RECEIVED'])
    a.fact('nstat', a.nstat('TcpExtSyncookiesSent', 'TcpExtListenOverflows',
                            'TcpExtListenDrops', 'TcpExtTCPReqQFullDrop',
                            'TcpExtTCPReqQFullDoCookies'))
    a.fact('syn_recv', _ss_count(socks, 'SYN_RECEIVED', local='127.0.0.1:8080'))
    return socks


@scenario('syn_flood_cookies', covers={'SYN_RECEIVED', 'CLOSED'},
          doc='600 spoofed SYNs in 2.7 s, backlog 16, syncookies on: ~17 SYN_RECEIVED, the rest '
              'answered by cookies (CLOSED): a syn_flood alert with syn_cookies true')
def syn_flood_cookies(a):
    _syn_flood(a, cookies=True, backlog=16)


@scenario('syn_flood_nocookies', covers={'SYN_RECEIVED', 'CLOSED'},
          doc='600 spoofed SYNs in 2.7 s, backlog 128, syncookies off: ~129 SYN_RECEIVED, the '
              'rest dropped unanswered: a syn_flood alert, no cookies, backlog full')
def syn_flood_nocookies(a):
    _syn_flood(a, cookies=False, backlog=128)


def _syn_flood_reports(r):
    f, socks = r.facts, r.snap()['sockets']
    ns, sent, syn_recv = f['nstat'], f['sent'], f['syn_recv']
    cookies = f['syncookies'] == 1
    dropped = ns['TcpExtTCPReqQFullDrop']
    recs = r.json()
    fl = r.one(recs, 'syn_flood', target='127.0.0.1:8080')
    r.eq('syns', fl.get('syns'), sent, 'SYNs the test sent')
    r.eq('syn_cookies', fl.get('syn_cookies'), cookies, 'sysctl net.ipv4.tcp_syncookies')
    r.eq('completed', fl.get('completed'), 0, 'no spoofed source completes a handshake')
    r.eq('completion_ratio', fl.get('completion_ratio'), 0, 'no handshake completed')
    r.near('start', fl.get('start'), f['first'], 0.01, 'the first SYN sent (the first packet)')
    r.between('end', fl.get('end'), f['last'], f['last'] + 1.0,
              'the bucket of the last SYN sent')
    r.between('peak_rate', fl.get('peak_rate'), f['rate'] * 0.95, f['rate'] * 1.05,
              'the pace of the flood')
    r.eq('synacks', fl.get('synacks'), ns['TcpExtSyncookiesSent'] + syn_recv,
         'nstat TcpExtSyncookiesSent + ss SYN-RECV (one SYN-ACK per cookie or request)')
    r.between('synacks_retransmitted', fl.get('synacks_retransmitted'), syn_recv, 2 * syn_recv,
              'each ss SYN-RECV request retransmits once ~1 s after its SYN-ACK')
    r.eq('unanswered', fl.get('unanswered'), dropped, 'nstat TcpExtTCPReqQFullDrop')
    r.eq('backlog_full', fl.get('backlog_full'), dropped > 0, 'nstat TcpExtTCPReqQFullDrop > 0')
    r.near('sources', fl.get('sources'), sent, 0.1 * sent,
           'one address per SYN (HyperLogLog estimate)')
    got = sorted(x.get('prefix') for x in fl.get('top_prefixes', []))
    r.eq('top_prefixes', got, sorted(f['per_prefix']), 'the /24s the test spoofed')
    r.true('top_prefixes counts', all(1 <= x['count'] <= f['per_prefix'].get(x['prefix'], 0)
                                      for x in fl.get('top_prefixes', [])),
           'at most what the test sent from each /24: %s' % f['per_prefix'])
    r.true('top_sources counts', fl.get('top_sources') and
           all(x['count'] == 1 for x in fl.get('top_sources', [])),
           'every spoofed address sent one SYN')
    r.eq('half_open_peak', fl.get('half_open_peak'), syn_recv,
         'ss SYN-RECV: the requests the kernel held')
    rates = r.select(recs, 'syn_rate', target='127.0.0.1:8080')
    r.eq('syn_rate records', len(rates), 3, 'three 1 s buckets')
    r.eq('syn_rate syns summed', sum(x['syns'] for x in rates), sent, 'SYNs the test sent')
    conns = r.select(recs, 'connection', server='127.0.0.1:8080')
    r.eq('server SYN_RECEIVED endpoints', sum(1 for c in conns if c['server']['state'] ==
                                             'SYN_RECEIVED'), syn_recv, 'ss SYN-RECV')
    r.eq('half_open handshake_incomplete', len(r.select(recs, 'half_open',
                                                       kind='handshake_incomplete')),
         syn_recv, 'ss SYN-RECV')
    lis = r.one(recs, 'listener', endpoint='127.0.0.1:8080')
    r.eq('listener syns', lis.get('syns'), sent, 'SYNs the test sent')
    r.eq('listener accepted', lis.get('accepted'), 0, 'no handshake completed')
    r.eq('listener unanswered', lis.get('unanswered'), dropped, 'nstat TcpExtTCPReqQFullDrop')
    r.eq('nstat ListenDrops == ReqQFullDrop', ns['TcpExtListenDrops'], dropped,
         'the kernel dropped only for a full request queue')
    text = r.text('--report', 'syn_flood')
    r.true('text alert', '127.0.0.1:8080 from ' in text and ': %d SYNs, peak ' % sent in text,
           'SYN FLOOD section names the target and the SYNs')
    r.true('text cookies line', ('SYN cookies: likely' in text) == cookies,
           'SYN cookies line %s' % ('present' if cookies else 'absent'))
    r.true('text backlog line', ('backlog full' in text) == (dropped > 0),
           'backlog full line %s' % ('present' if dropped else 'absent'))


syn_flood_cookies.reports(_syn_flood_reports)
syn_flood_nocookies.reports(_syn_flood_reports)


@scenario('busy_healthy', covers={'TIME_WAIT', 'CLOSED'}, timeout=90,
          doc='a busy healthy server: 3200 short connections at 1000/s, all complete, the server '
              'closes first: no SYN-flood alert; server TIME_WAIT per host and pair')
def busy_healthy(a):
    lsock = a.listen(8080, backlog=512)
    rate, n_max = 1000.0, 3200          # 3.2 s at 1000/s: three full 1 s buckets and more
    t0, n = a.now(), 0
    while n < n_max:
        while a.now() < t0 + n / rate:  # paced: the same load on a fast or a slow machine
            time.sleep(0.0005)
        # 200 client addresses: few reuses of a 4-tuple out of the server's TIME_WAIT
        c = a.connect('127.0.0.%d' % (2 + n % 200), (SERVER, 8080))
        s = a.accept(lsock)
        c.sendall(b'GET /%d\n' % n)
        a.recv_exact(s, len(b'GET /%d\n' % n))
        s.sendall(b'200 OK\n')
        a.recv_exact(c, 7)
        a.close(s)
        a.recv_eof(c)
        a.close(c)
        n += 1
    t1 = a.now()
    if n / (t1 - t0) < 300:
        raise ScenarioError('%d connections took %.2f s: not busy enough' % (n, t1 - t0))
    a.fact('connections', n)
    a.fact('rate', n / (t1 - t0))
    a.wait_none_in({'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING'},
                   timeout=10.0)
    a.snapshot(require=['TIME_WAIT'])


@busy_healthy.reports
def _(r):
    f, socks = r.facts, r.snap()['sockets']
    recs = r.json()
    r.eq('syn_flood records', len(r.select(recs, 'syn_flood')), 0,
         'every handshake completed (%.0f/s, above the SYN rate threshold)' % f['rate'])
    r.eq('syn_rate records', len(r.select(recs, 'syn_rate')), 0, 'no alert')
    lis = r.one(recs, 'listener', endpoint='127.0.0.1:8080')
    r.eq('listener accepted', lis.get('accepted'), f['connections'], 'connections the test made')
    r.eq('listener syns', lis.get('syns'), f['connections'], 'one SYN each')
    r.eq('listener refused', lis.get('refused'), 0, 'none refused')
    r.eq('listener unanswered', lis.get('unanswered'), 0, 'none unanswered')
    tw = _ss_count(socks, 'TIME_WAIT', local='127.0.0.1:8080')
    h = r.one(recs, 'time_wait', host='127.0.0.1')
    r.eq('time_wait count of the server', h.get('count'), tw, 'ss TIME-WAIT on 127.0.0.1:8080')
    p = r.one(recs, 'time_wait_pair', host='127.0.0.1', side='server')
    r.eq('time_wait_pair (server side)', p.get('count'), tw, 'ss TIME-WAIT on 127.0.0.1:8080')
    text = r.text('--report', 'syn_flood')
    r.true('text: no alert', 'SYN FLOOD ALERTS (0;' in text and '  none' in text, 'none')


@scenario('time_wait_pressure', covers={'TIME_WAIT', 'CLOSED'}, timeout=90,
          doc='1000 short connections from 127.0.0.2 and 100 from 127.0.0.3, closed by the '
              'client, and 20 ended by RST: TIME_WAIT per host and pair, the port warning')
def time_wait_pressure(a, n=1000, n_other=100, n_rst=20):
    lsock = a.listen(8080, backlog=256)

    def short(addr, rst=False):
        c = a.connect(addr, (SERVER, 8080))
        s = a.accept(lsock)
        c.sendall(b'ping\n')
        a.recv_exact(s, 5)
        s.sendall(b'pong\n')
        a.recv_exact(c, 5)
        if rst:
            a.linger0(c)
            a.close(c)              # RST: no TIME_WAIT anywhere
            a.close(s)
            return
        a.close(c)
        a.recv_eof(s)
        a.close(s)

    for i in range(n):
        if i == n - 1:
            a.fact('last_close', a.now())
        short('127.0.0.2')
    for i in range(n_other):
        short('127.0.0.3')
    for i in range(n_rst):
        short('127.0.0.2', rst=True)
    a.fact('made', {'127.0.0.2': n, '127.0.0.3': n_other, 'rst': n_rst})
    lo, hi = a.run('sysctl', '-n', 'net.ipv4.ip_local_port_range').split()
    a.fact('port_range', [int(lo), int(hi)])
    a.wait_none_in({'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING'},
                   timeout=10.0)
    socks = a.snapshot(require=['TIME_WAIT'])
    tw = _ss_count(socks, 'TIME_WAIT', local_addr='127.0.0.2')
    if tw != n:
        raise ScenarioError('expected %d TIME_WAIT sockets of 127.0.0.2, ss shows %d' % (n, tw))


@time_wait_pressure.reports
def _(r):
    f, socks, at = r.facts, r.snap()['sockets'], r.snap()['at']
    lo, hi = f['port_range']
    recs = r.json()
    total = _ss_count(socks, 'TIME_WAIT')
    for host in ('127.0.0.2', '127.0.0.3'):
        tw = _ss_count(socks, 'TIME_WAIT', local_addr=host)
        h = r.one(recs, 'time_wait', host=host)
        r.eq('%s count' % host, h.get('count'), tw, 'ss TIME-WAIT of the host')
        r.eq('%s peak' % host, h.get('peak'), tw, 'none expires within the run (60 s)')
        p = r.one(recs, 'time_wait_pair', host=host, side='client', service='127.0.0.1:8080')
        r.eq('%s pair count' % host, p.get('count'),
             _ss_count(socks, 'TIME_WAIT', local_addr=host, peer='127.0.0.1:8080'),
             'ss TIME-WAIT of the pair')
        r.eq('%s ephemeral_share' % host, p.get('ephemeral_share'),
             round(tw / (hi - lo + 1), 4), 'ss count / net.ipv4.ip_local_port_range')
        r.eq('%s warning (default 0.5)' % host, p.get('warning'), False, 'far below half')
        r.eq('%s reset' % host, p.get('reset'), f['made']['rst'] if host == '127.0.0.2' else 0,
             'connections the test ended with SO_LINGER {1, 0}')
    h = r.one(recs, 'time_wait', host='127.0.0.2')
    r.between('127.0.0.2 peak_at', h.get('peak_at'), f['last_close'], at,
              'the last clean close of the host, before the snapshot')
    r.eq('no server TIME_WAIT record', len(r.select(recs, 'time_wait', host='127.0.0.1')), 0,
         'the clients closed first')
    warn = r.json('--tw-warn', 0.03)
    for host, want in (('127.0.0.2', True), ('127.0.0.3', False)):
        p = r.one(warn, 'time_wait_pair', host=host, side='client')
        r.eq('%s warning at --tw-warn 0.03' % host, p.get('warning'), want,
             '%d of %d ports' % (p.get('count', 0), hi - lo + 1))
    text = r.text('--report', 'time_wait', '--tw-warn', 0.03)
    r.true('text total', 'TIME_WAIT (%d endpoints at the reference time;' % total in text,
           'ss TIME-WAIT total %d' % total)
    r.true('text warning', '127.0.0.2 -> 127.0.0.1:8080: %d client ports in TIME_WAIT' %
           f['made']['127.0.0.2'] in text and 'WARNING: ephemeral port exhaustion ahead' in text,
           'the pair line with its warning')
    r.true('text resets', '%d connections ended by RST (no TIME_WAIT)' % f['made']['rst'] in text,
           'RST-ended connections counted apart')


@scenario('peer_vanished', covers={'ESTABLISHED'},
          doc='after an exchange every packet of the client is dropped at output (never '
              'captured); the server sends and retransmits: half-open, peer_vanished')
def peer_vanished(a):
    lsock = a.listen(8080)
    c, s = a.pair('127.0.0.2', lsock, port=40000)
    a.fact('t_exchange', a.now())
    a.exchange(c, s)
    a.sleep(0.1)                    # the client's last ACK is out
    a.drop('output', 'ip saddr 127.0.0.2', name='vanished')
    a.fact('t_gone', a.now())
    s.sendall(b'are you still there?\n')
    # Copies at about +0, +TLP, +0.2, +0.6, +1.4, +3.0 s (RTO doubling from 200 ms).
    a.sleep(2.5)
    a.fact('vanished_after', 2.0)
    info1 = a.tcp_info('127.0.0.1:8080', '127.0.0.2:40000')
    a.snapshot(require=['ESTABLISHED'])
    info2 = a.tcp_info('127.0.0.1:8080', '127.0.0.2:40000')
    if info1.get('retrans') != info2.get('retrans'):
        raise ScenarioError('a retransmission raced the snapshot: %s %s' % (info1, info2))
    a.fact('retrans', info2.get('retrans'))     # current/total (ss -ti)
    a.fact('client_state', a.state_of('127.0.0.2:40000', '127.0.0.1:8080'))


@peer_vanished.reports
def _(r):
    f, at = r.facts, r.snap()['at']
    total = int(f['retrans'].split('/')[1])
    recs = r.json('--vanished-after', f['vanished_after'])
    h = r.one(recs, 'half_open', kind='peer_vanished')
    r.true('endpoint / peer', r._ep_is(h.get('endpoint', {}), '127.0.0.1:8080') and
           r._ep_is(h.get('peer', {}), '127.0.0.2:40000'), 'the server waits on the client')
    r.between('since', h.get('since'), f['t_exchange'], f['t_gone'],
              'the client\'s last packet: before the drop rule')
    r.between('age', h.get('age'), at - f['t_gone'], at - f['t_exchange'],
              'snapshot time minus that')
    r.eq('segments', (h.get('evidence') or {}).get('segments'), 1 + total,
         'the data segment + ss -ti retrans total (%s)' % f['retrans'])
    r.eq('peer_state', h.get('peer_state'), f['client_state'], 'ss state of the client')
    r.eq('others', len(r.select(recs, 'half_open')), 1, 'one vanished peer')
    r.eq('not yet at the default 30 s', len(r.select(r.json(), 'half_open')), 0,
         'silent for less than --vanished-after 30')


@scenario('peer_lost_state', covers={'CLOSED'},
          doc='ss -K destroys the server side of one connection and the client side of '
              'another (their RSTs dropped at output); the other sides send and get RST: '
              'half-open, peer_lost_state')
def peer_lost_state(a):
    lsock = a.listen(8080)
    A, SV, B = '127.0.0.2:40000', '127.0.0.1:8080', '127.0.0.3:40001'
    ca, sa = a.pair('127.0.0.2', lsock, port=40000)
    cb, sb = a.pair('127.0.0.3', lsock, port=40001)
    a.exchange(ca, sa)
    a.exchange(cb, sb)
    a.drop('output', 'tcp flags & rst == rst', name='kill')
    a.kill_socket(SV, A)            # the server host lost connection A
    a.kill_socket(B, SV)            # the client host lost connection B
    a.wait_dropped(2, 2.0, 'the RSTs of ss -K', name='kill')
    a.flush('output')
    # The survivors still think the connections are open.
    a.fact('before', {'A': a.state_of(A, SV), 'B': a.state_of(SV, B)})
    a.fact('t_send', a.now())
    ca.send(b'hello?\n')            # answered by RST from the server host
    sb.send(b'hello?\n')            # answered by RST from the client host
    a.wait_states({(A, SV): 'CLOSED', (SV, B): 'CLOSED'}, timeout=3.0)
    a.fact('t_reset', a.now())
    a.snapshot()


@peer_lost_state.reports
def _(r):
    import kcompare
    f = r.facts
    recs = r.json()
    rsts = {}
    for p in kcompare.read_pcap(r.pcap):
        if p.flags & kcompare.RST:
            rsts.setdefault(kcompare.fmt_ep(p.src), p.num)
    for name, lost, peer in (('A', '127.0.0.1:8080', '127.0.0.2:40000'),
                             ('B', '127.0.0.3:40001', '127.0.0.1:8080')):
        hs = [h for h in r.select(recs, 'half_open', kind='peer_lost_state', endpoint=lost)
              if r._ep_is(h['peer'], peer)]
        r.eq('%s records' % name, len(hs), 1, 'one connection lost its state')
        h = hs[0] if hs else {}
        r.eq('%s peer_state' % name, h.get('peer_state'), f['before'][name],
             'ss state of %s after ss -K, before it sent' % peer)
        r.between('%s since' % name, h.get('since'), f['t_send'], f['t_reset'],
                  'between the send and the reset')
        want = next((n for ep, n in rsts.items() if ep == lost), None)
        r.eq('%s rst_packet' % name, (h.get('evidence') or {}).get('rst_packet'), want,
             'the RST of %s in the capture' % lost)
    text = r.text('--report', 'half_open')
    r.true('text', '  peer_lost_state: 2' in text, 'the HALF-OPEN section counts both')


# ============================================================================ demo

@scenario('demo', covers={'TIME_WAIT', 'CLOSE_WAIT', 'FIN_WAIT_2', 'SYN_SENT',
                          'ESTABLISHED', 'CLOSED'}, record=True,
          doc='testdata/demo.pcap: clean closes, a CLOSE_WAIT leak, an unanswered SYN, a '
              'refused connect, an RST abort, an idle connection and a half-close')
def demo(a):
    web, api, ssh, rsync, app = (a.listen(p) for p in (80, 8080, 22, 873, 9000))
    a.listen(5432)
    # A database whose SYNs vanish (dropped at its input): the client waits in SYN_SENT.
    a.drop('input', 'ip daddr 127.0.0.1 tcp dport 5432 tcp flags & (syn | ack) == syn')
    a.connect_nb('127.0.0.20', (SERVER, 5432), port=41000)
    # Web: three requests closed by the client, one by the server.
    for i in range(4):
        c, s = a.pair('127.0.0.10', web)
        a.exchange(c, s, reply=b'<html>%d</html>' % i * 20)
        first, second = (s, c) if i == 3 else (c, s)
        a.close(first)
        a.recv_eof(second)
        a.close(second)
    # API: the clients hang up, the service never closes -> CLOSE_WAIT leak.
    for i in range(4):
        c, s = a.pair('127.0.0.%d' % (11 + i), api)
        a.exchange(c, s, request=b'{"op":"get","n":%d}' % i, reply=b'{"ok":true}')
        a.close(c)
        a.recv_eof(s)
    # A refused connection (nothing listens on 6379).
    a.connect_refused('127.0.0.21', (SERVER, 6379))
    # An application that aborts with RST.
    c, s = a.pair('127.0.0.22', app)
    a.exchange(c, s)
    a.linger0(c)
    a.close(c)
    # An idle interactive session.
    c, s = a.pair('127.0.0.30', ssh)
    a.exchange(c, s, request=b'SSH-2.0-demo\r\n', reply=b'SSH-2.0-demo\r\n')
    # A half-close: the client sent its request and shut down; the server streams on.
    c, s = a.pair('127.0.0.40', rsync)
    a.exchange(c, s, request=b'@RSYNCD: 31.0\n', reply=b'@RSYNCD: OK\n')
    c.shutdown(socket.SHUT_WR)
    a.recv_eof(s)
    for i in range(3):
        s.sendall(b'file-%d ' % i * 100)
        a.recv_exact(c, 700)
    a.wait_dropped(2, 3.0, 'SYN to 5432 and its retransmission')
    a.wait_none_in({'LAST_ACK', 'FIN_WAIT_1'})
    a.snapshot(require=['TIME_WAIT', 'CLOSE_WAIT', 'FIN_WAIT_2', 'SYN_SENT',
                        'ESTABLISHED'])


def suite_coverage():
    """state -> [scenario names in the suite built to produce it]."""
    cov = {s: [] for s in STATES}
    for sc in SCENARIOS.values():
        if sc.in_suite:
            for st in sc.covers:
                cov[st].append(sc.name)
    return cov
