#!/usr/bin/env python3
"""Live capture: how a run stops, and the full report on demand.

    test_signals.py TCPSTATE

Six tcpstate processes watch the same namespace's lo at once while a background
thread makes complete connections (connect, request, close) every 50 ms:

- SIGINT  -> the full final report (connection records, the "capture" record with
             libpcap's counters, then the summary record last), exit status 0, promptly;
- SIGTERM -> the same;
- SIGUSR1 -> a full report (a summary record) while the capture goes on: ticks keep
             coming after it, the process is still running; SIGINT later ends it with
             a second report and exit 0;
- -c 25   -> stops by itself after 25 packets: summary.packets == 25, exit 0;
- --duration 3 -> stops by itself after about 3 s (not before), exit 0;
- its output closed (`| head -2`) -> stops within a few ticks with a message on
             stderr and exit status 1, instead of capturing for nobody.

Right before each signal, BURST more connections are made and closed as fast as
possible (from 127.0.0.3 to another listener): every report's summary must count at
least the connections completed before the signal (the thread's count plus the
burst; the test's own counts, not tcpstate's), i.e. packets the kernel had captured
before the signal are in the report.
"""

import signal
import socket
import sys
import time

from livelib import Churn, LiveEnv, check, log, main

INTERVAL = '0.5'
BURST = 40


def burst(lsock, n=BURST):
    """N complete connections, back to back; returns N once all are closed."""
    for _ in range(n):
        c = socket.socket()
        c.bind(('127.0.0.3', 0))
        c.settimeout(3)
        c.connect(lsock.getsockname())
        lsock.settimeout(3)
        s, _ = lsock.accept()
        c.close()
        s.close()
    return n


def final_report_ok(t, what, since):
    """The records written after SINCE end with a summary; returns (records, summary)."""
    recs = [r for ts, r in t.records(since)]
    check(recs, '%s: no output after the signal\n%s' % (what, t.describe()))
    last = recs[-1]
    check(last.get('type') == 'summary',
          '%s: the last record is %r, not the summary\n%s'
          % (what, last.get('type'), t.describe()))
    check(t.stdout_text().rstrip('\n').splitlines()[-1].startswith('{"type":"summary"'),
          '%s: the summary is not the last line of stdout' % what)
    # Full: the open connections (the load's clients sit in TIME_WAIT for 60 s) are
    # listed, with libpcap's counters.
    check(any(r.get('type') == 'connection' for r in recs),
          '%s: the report lists no connection\n%s' % (what, t.describe()))
    check(any(r.get('type') == 'capture' for r in recs),
          '%s: the report has no "capture" record (libpcap counters)' % what)
    return recs, last


def test():
    with LiveEnv('signals') as env:
        lsock = env.actor.listen(8080, backlog=64)
        lburst = env.actor.listen(8090, backlog=64)
        common = ['--format', 'json', '--interval', INTERVAL]
        t_int = env.tcpstate(*common)
        t_term = env.tcpstate(*common)
        t_usr1 = env.tcpstate(*common)
        t_dur = env.tcpstate(*common, '--duration', '3')
        t_dur_start = t_dur.t_start
        churn = Churn(lsock, period=0.05, max_seconds=30)
        churn.start()
        t_cnt = env.tcpstate(*common, '-c', '25')
        t_head = env.tcpstate(*common, head=2)
        try:
            for t in (t_int, t_term, t_usr1):
                t.wait_ticks(2)

            # SIGINT and SIGTERM: the final report, exit 0.
            bursts = 0
            for t, sig, name in ((t_int, signal.SIGINT, 'SIGINT'),
                                 (t_term, signal.SIGTERM, 'SIGTERM')):
                bursts += burst(lburst)     # t_term sees this one and the next
                done_before = churn.count + (bursts if t is t_term else BURST)
                t_sig = time.time()
                t.signal(sig)
                rc = t.wait_exit(5)
                check(rc == 0, '%s: exit status %d\n%s' % (name, rc, t.describe()))
                check(time.time() - t_sig < 3, '%s: took %.1f s to stop'
                      % (name, time.time() - t_sig))
                recs, summ = final_report_ok(t, name, t_sig)
                check(summ['connections'] >= done_before,
                      '%s: summary counts %d connections, the load completed %d before'
                      % (name, summ['connections'], done_before))
                check(any(r.get('type') == 'tick' for _, r in t.records()),
                      '%s: no tick before the signal' % name)

            # SIGUSR1: a full report, the capture goes on.
            bursts += burst(lburst)         # t_usr1 saw all three
            done_before = churn.count + bursts
            t_sig = time.time()
            t_usr1.signal(signal.SIGUSR1)
            t_usr1.wait_for(lambda t: any(r.get('type') == 'summary' for _, r in t.records(t_sig)),
                            5, 'the summary record of the SIGUSR1 report')
            t_rep = max(ts for ts, r in t_usr1.records(t_sig) if r.get('type') == 'summary')
            summ1 = [r for _, r in t_usr1.records(t_sig) if r.get('type') == 'summary'][0]
            check(summ1['connections'] >= done_before,
                  'SIGUSR1: summary counts %d connections, the load completed %d before'
                  % (summ1['connections'], done_before))
            later = t_usr1.wait_ticks(2, since=t_rep + 0.001)
            check(t_usr1.running(), 'SIGUSR1 stopped tcpstate\n' + t_usr1.describe())
            check(any(r['packets'] > 0 for _, r in later),
                  'SIGUSR1: the ticks after the report saw no packets (capture stopped?)\n'
                  + t_usr1.describe())
            t_sig2 = time.time()
            t_usr1.signal(signal.SIGINT)
            rc = t_usr1.wait_exit(5)
            check(rc == 0, 'SIGUSR1 then SIGINT: exit status %d' % rc)
            recs, summ2 = final_report_ok(t_usr1, 'SIGUSR1 then SIGINT', t_sig2)
            check(summ2['connections'] >= summ1['connections'],
                  'the final summary counts fewer connections (%d) than the SIGUSR1 one (%d)'
                  % (summ2['connections'], summ1['connections']))
            n_summ = sum(1 for _, r in t_usr1.records() if r.get('type') == 'summary')
            check(n_summ == 2, 'SIGUSR1 then SIGINT: %d summary records, expected 2' % n_summ)

            # -c 25: stops by itself after 25 packets.
            rc = t_cnt.wait_exit(10)
            check(rc == 0, '-c 25: exit status %d\n%s' % (rc, t_cnt.describe()))
            recs, summ = final_report_ok(t_cnt, '-c 25', 0)
            check(summ['packets'] == 25, '-c 25: summary counts %d packets' % summ['packets'])

            # --duration 3: stops by itself, not before 3 s.
            rc = t_dur.wait_exit(10)
            took = time.time() - t_dur_start
            check(rc == 0, '--duration 3: exit status %d\n%s' % (rc, t_dur.describe()))
            check(took >= 3.0, '--duration 3: stopped after %.2f s' % took)
            end_t = t_dur.out[-1][0] - t_dur_start
            check(end_t < 5.0, '--duration 3: final report only %.2f s after the start' % end_t)
            recs, summ = final_report_ok(t_dur, '--duration 3', 0)
            check(summ['packets'] > 0, '--duration 3: no packets counted')

            # Output closed after two lines: it stops by itself.
            t_head.wait_for(lambda t: len(t.out) >= 2, 5, 'two lines')
            t_closed = time.time()
            rc = t_head.wait_exit(5)
            check(rc == 1, 'output closed: exit status %d (expected 1)\n%s' % (rc, t_head.describe()))
            check('cannot write' in t_head.stderr_text(),
                  'output closed: no message on stderr\n' + t_head.describe())
            log('output closed: stopped %.1f s later' % (time.time() - t_closed))
            check(churn.error is None, 'background load failed: %s' % churn.error)
        finally:
            churn.stop()


if __name__ == '__main__':
    sys.exit(main(test))
