#!/usr/bin/env python3
"""Live capture: the interval records and the final report against the kernel (ss).

    test_ticks_vs_ss.py TCPSTATE

`tcpstate -i IFACE --interval 1 --format json --close-wait-after 3 [FILTER]` watches,
three times at once: on lo, on "any", and on lo with the filter `tcp port 8080` (it
must not see the 8081 connections); meanwhile this process builds, with real sockets
(servers on 127.0.0.1:8080, clients on 127.0.0.x):

    ESTABLISHED   3 pairs that exchanged a request and a reply and stay open
    CLOSE_WAIT    3 old leaks on the server (client closed, server never does) and
                  2 old leaks on the client (server closed first); 1 young server leak
                  made just before the snapshot (younger than --close-wait-after)
    TIME_WAIT     4 clients that closed first (servers LAST_ACK -> CLOSED)
    CLOSED        2 pairs aborted with RST (SO_LINGER 0)
    SYN_SENT      2 clients whose SYNs to 127.0.0.1:8081 an nft input rule drops
                  (captured, never answered: half-open)

Then `ss -tanH` is read twice around a moment T (until both reads agree) while nothing
changes any more, and for each watcher the first tick record written at least 0.3 s
after T is checked against the ss sockets its filter lets through:
- for each side (client = the endpoint that connected, server = the one on 8080/8081)
  and each state other than CLOSED, the tick's count equals the count of ss's sockets;
- close_wait_stuck == the ss CLOSE-WAIT sockets that are older than --close-wait-after
  at the tick (their age known from when this test made them);
- half_open == the SYN-SENT sockets in ss (nothing else is half-open here);
- what changed: the ticks up to this one, summed, report as many new stuck
  CLOSE_WAIT (new_close_wait_stuck) as there are stuck ones, and as many new
  half-open connections (new_half_open) as there are SYN-SENT sockets (each was
  new once, none went away);
- time_wait == the TIME-WAIT sockets in ss;
- pcap: received >= the packets counted so far, dropped == 0.
Finally ss is read again (still unchanged), SIGINT is sent, and each endpoint of the
final report's connection records must have ss's state (CLOSED when ss has no socket),
every non-listening ss socket must appear in the report, the summary is last, exit 0.
"""

import signal
import sys
import time

from livelib import Failure, LiveEnv, check, log, main, ss_counts

SERVER_PORTS = {8080, 8081}
CW_AFTER = 3.0


def test():
    with LiveEnv('ticks') as env:
        a = env.actor
        opts = ['--interval', '1', '--format', 'json', '--close-wait-after', '%g' % CW_AFTER]
        watchers = [('lo', env.tcpstate(*opts), lambda x: True),
                    ('any', env.tcpstate(*opts, iface='any'), lambda x: True),
                    ('lo, tcp port 8080', env.tcpstate(*opts, 'tcp', 'port', '8080'),
                     lambda x: '8080' in (x['local'].rsplit(':', 1)[1],
                                          x['peer'].rsplit(':', 1)[1]))]
        lsock = a.listen(8080, backlog=64)
        a.drop('input', 'ip daddr 127.0.0.1 tcp dport 8081', name='syn8081')
        born = {}           # (local, peer) of a CLOSE_WAIT socket -> when it leaked

        def ep(sock):
            return tuple('%s:%d' % x for x in (sock.getsockname(), sock.getpeername()))

        def leak_on_server(addr):
            c, s = a.pair(addr, lsock)
            a.exchange(c, s)
            a.close(c)                          # client closes first: server CLOSE_WAIT
            a.wait_sockets({s: 'CLOSE_WAIT'})
            born[ep(s)] = time.time()
            return s

        est = []
        for i in range(3):
            c, s = a.pair('127.0.0.%d' % (10 + i), lsock)
            a.exchange(c, s)
            est += [c, s]
        for i in range(3):
            leak_on_server('127.0.0.%d' % (20 + i))
        for i in range(2):
            c, s = a.pair('127.0.0.%d' % (30 + i), lsock)
            a.exchange(c, s)
            a.close(s)                          # server closes first: client CLOSE_WAIT
            a.wait_sockets({c: 'CLOSE_WAIT'})
            born[ep(c)] = time.time()
        for i in range(4):
            c, s = a.pair('127.0.0.%d' % (40 + i), lsock)
            a.exchange(c, s)
            a.close(c)
            a.recv_eof(s)
            a.close(s)                          # client TIME_WAIT, server LAST_ACK->CLOSED
        for i in range(2):
            c, s = a.pair('127.0.0.%d' % (50 + i), lsock)
            a.exchange(c, s)
            a.linger0(c)
            a.close(c)                          # RST: both CLOSED
            a.close(s)
        for i in range(2):
            a.connect_nb('127.0.0.%d' % (60 + i), ('127.0.0.1', 8081))
        a.wait_for('4 TIME-WAIT, 2 SYN-SENT, nothing closing',
                   lambda socks: sum(x['state'] == 'TIME_WAIT' for x in socks) == 4 and
                   sum(x['state'] == 'SYN_SENT' for x in socks) == 2 and
                   not any(x['state'] in ('LAST_ACK', 'FIN_WAIT_1', 'CLOSING', 'SYN_RECEIVED')
                           for x in socks))
        # Let the leaks age past --close-wait-after, then one young leak.
        aged = max(born.values()) + CW_AFTER + 0.5
        time.sleep(max(0.0, aged - time.time()))
        young = leak_on_server('127.0.0.70')
        a.wait_none_in(('FIN_WAIT_1', 'LAST_ACK', 'CLOSING'))

        socks = a.snapshot('ticks', require=['ESTABLISHED', 'CLOSE_WAIT', 'TIME_WAIT',
                                              'FIN_WAIT_2', 'SYN_SENT'])
        at = a.snapshots[-1]['at']
        check(len(socks) == 3 * 2 + 6 * 2 + 4 + 2, 'test construction: ss shows %d sockets'
              % len(socks))
        for name, t, keep in watchers:
            check_tick(name, t, [x for x in socks if keep(x)], at, born)

        # The final reports against ss read just before SIGINT.
        socks2 = a.snapshot('final')
        t_sig = time.time()
        for name, t, keep in watchers:
            t.signal(signal.SIGINT)
        for name, t, keep in watchers:
            check_final(name, t, [x for x in socks2 if keep(x)], t_sig)
        young.close()
        for s in est:
            s.close()


def check_tick(name, t, socks, at, born):
    """The first tick at least 0.3 s after AT against the ss sockets SOCKS."""
    want = ss_counts(socks, SERVER_PORTS)
    log('%s: ss at %.3f: %s' % (name, at, want))
    ticks = t.wait_for(lambda tt: [(ts, r) for ts, r in tt.ticks() if r['ts'] >= at + 0.3],
                       5, '%s: a tick at least 0.3 s after the ss snapshot' % name)
    tick = ticks[0][1]
    upto = [r for _, r in t.ticks() if r['ts'] <= tick['ts']]
    check(tick['ts'] - at < 1.6, '%s: the first tick after the snapshot came %.2f s later'
          % (name, tick['ts'] - at))
    errors = []
    for side in ('client', 'server'):
        for st in tick['states'][side]:
            if st == 'CLOSED':
                continue
            exp = want[side].get(st, 0)
            if tick['states'][side][st] != exp:
                errors.append('%s %s: tick %d, ss %d' % (side, st, tick['states'][side][st], exp))
    stuck = sum(1 for x in socks if x['state'] == 'CLOSE_WAIT'
                and tick['ts'] - born[(x['local'], x['peer'])] >= CW_AFTER)
    check(stuck == 5, 'test construction: %d old CLOSE_WAIT leaks, built 5' % stuck)
    if tick['close_wait_stuck'] != stuck:
        errors.append('close_wait_stuck: tick %d, expected %d (ss CLOSE-WAIT older than %g s)'
                      % (tick['close_wait_stuck'], stuck, CW_AFTER))
    half = sum(1 for x in socks if x['state'] in ('SYN_SENT', 'SYN_RECEIVED'))
    if tick['half_open'] != half:
        errors.append('half_open: tick %d, ss %d SYN-SENT' % (tick['half_open'], half))
    new_cw = sum(r['new_close_wait_stuck'] for r in upto)
    if new_cw != stuck:
        errors.append('new_close_wait_stuck: %d over the ticks so far (%s), expected %d'
                      % (new_cw, [r['new_close_wait_stuck'] for r in upto], stuck))
    new_ho = sum(r['new_half_open'] for r in upto)
    if new_ho != half:
        errors.append('new_half_open: %d over the ticks so far (%s), expected %d'
                      % (new_ho, [r['new_half_open'] for r in upto], half))
    tw = sum(1 for x in socks if x['state'] == 'TIME_WAIT')
    if tick['time_wait'] != tw:
        errors.append('time_wait: tick %d, ss %d' % (tick['time_wait'], tw))
    pc = tick.get('pcap')
    if not pc:
        errors.append('no pcap counters in the tick')
    elif pc['dropped'] or pc['if_dropped']:
        errors.append('the kernel dropped packets: %s' % pc)
    if errors:
        raise_fail('%s: tick at %.3f vs ss at %.3f' % (name, tick['ts'], at), errors, socks, tick)


def check_final(name, t, socks, t_sig):
    """The final report (after SIGINT at T_SIG) against the ss sockets SOCKS."""
    rc = t.wait_exit(10)
    check(rc == 0, '%s: exit status %d after SIGINT' % (name, rc))
    recs = [r for _, r in t.records(t_sig)]
    check(recs and recs[-1].get('type') == 'summary',
          '%s: the final report does not end with the summary\n%s' % (name, t.describe()))
    have = {}           # (local, peer) of an endpoint -> (state, id), final report
    for r in recs:
        if r.get('type') != 'connection':
            continue
        cl, sv = ('%s:%d' % (r[x]['addr'], r[x]['port']) for x in ('client', 'server'))
        have[(cl, sv)] = (r['client']['state'], r['id'])
        have[(sv, cl)] = (r['server']['state'], r['id'])
    truth = {(x['local'], x['peer']): x['state'] for x in socks}
    errors = []
    for e, st in sorted(truth.items()):
        got = have.get(e)
        if got is None:
            errors.append('%s -> %s: %s in ss, missing from the final report' % (e + (st,)))
        elif got[0] != st:
            errors.append('%s -> %s: ss %s, final report %s (connection %d)' % (e + (st,) + got))
    for e, (st, cid) in sorted(have.items()):
        if e not in truth and st != 'CLOSED':
            errors.append('%s -> %s: no socket in ss (CLOSED), final report %s (connection %d)'
                          % (e + (st, cid)))
    if errors:
        raise_fail('%s: final report vs ss' % name, errors, socks, None)


def raise_fail(what, errors, socks, tick):
    msg = '%s:\n  %s\n  ss:\n%s' % (what, '\n  '.join(errors),
                                     '\n'.join('    %-12s %-21s %s' % (x['state'], x['local'], x['peer'])
                                               for x in socks))
    if tick:
        msg += '\n  tick: %s' % tick
    raise Failure(msg)


if __name__ == '__main__':
    sys.exit(main(test))
