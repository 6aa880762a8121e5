#!/usr/bin/env python3
"""Live capture: the text view (piped and on a terminal), and libpcap's counters in
every report.

    test_text_mode.py TCPSTATE

Four tcpstate processes watch lo at once, --interval 0.5, while a background thread
makes complete connections every 50 ms:

- text, piped: one line per tick, appended (the number of tick lines follows the
  elapsed time), no ANSI escape anywhere; every tick line ends with libpcap's
  "pcap N received, M dropped"; the SIGUSR1 report and the final report (SIGINT,
  exit 0) each carry the counters too ("Live capture on lo: N packets received ...").
- text on a pseudo-terminal (python's pty): every tick clears the screen and redraws
  (ESC[H ESC[2J) with its tick line; a SIGUSR1 report stays on the screen (no tick
  clears it afterwards) while ticks go on below it; SIGINT gives the final report,
  exit 0.
- JSON: every tick has "pcap" {received, dropped, if_dropped} with received at least
  the packets seen; "packets" and "tcp_segments" both count the interval (segments
  <= packets in every tick, their sums <= the summary's totals); the SIGUSR1 report and the final report each have a "capture"
  record with the counters, before their summary record (the summary stays last).
- --format zeek: stdout stays a Zeek conn.log (every line is a '#' header line or a
  row with as many fields as '#fields' names); the ticks go to stderr.
Then drops: a text and a JSON tcpstate with a 64 KiB kernel buffer (-B 64) are frozen
with SIGSTOP while DROP_BURST connections (6 packets each, far more than the ring
holds) are made, then resumed: the next tick shows dropped > 0 with the warning
(JSON "warning", text "(WARNING: states may be wrong)"), the final report's counters
carry it too, and stderr warns that some states may be wrong.
"""

import re
import signal
import socket
import sys
import time

from livelib import Churn, LiveEnv, check, main

INTERVAL = 0.5
DROP_BURST = 300
TICK = re.compile(r'^\d\d:\d\d:\d\d\.\d{6}  open \d+ \(\+\d+, -\d+\)(  [A-Z_0-9]+ \d+/\d+)*'
                  r'  \| stuck CLOSE_WAIT \d+ \(\+\d+\), half-open \d+ \(\+\d+\), SYN alerts \d+, '
                  r'TIME_WAIT \d+ \(peak \d+\)'
                  r'  \| pcap (\d+) received, (\d+) dropped( \(WARNING: states may be wrong\))?$')
CAPTURE_TEXT = re.compile(r'^Live capture on lo: (\d+) packets received by the filter, '
                          r'(\d+) dropped by the kernel, (\d+) dropped by the interface')
CLEAR = '\x1b[H\x1b[2J'


def tick_lines(text):
    """The tick lines of TEXT (on a terminal, a refresh's clear starts the line)."""
    return [l for l in text.replace('\r', '').replace(CLEAR, '\n').splitlines()
            if TICK.match(l)]


def test():
    with LiveEnv('text') as env:
        lsock = env.actor.listen(8080, backlog=64)
        iv = ['--interval', '%g' % INTERVAL]
        piped = env.tcpstate(*iv)
        tty = env.tcpstate(*iv, stdout='pty')
        js = env.tcpstate(*iv, '--format', 'json')
        zeek = env.tcpstate(*iv, '--format', 'zeek')
        churn = Churn(lsock, period=0.05, max_seconds=30)
        churn.start()
        try:
            t0 = time.time()
            piped.wait_for(lambda t: len(tick_lines(t.stdout_text())) >= 4, 6, '4 tick lines')
            tty.wait_for(lambda t: t.raw.decode(errors='replace').count(CLEAR) >= 4, 6,
                         '4 screen refreshes on the terminal')
            js.wait_ticks(4)

            # SIGUSR1 to each; the report shows; ticks go on.
            marks = {}
            for t in (piped, tty):
                t_sig = time.time()
                t.signal(signal.SIGUSR1)
                marks[t] = t_sig
            t_sig_js = time.time()
            js.signal(signal.SIGUSR1)
            piped.wait_for(lambda t: sum(1 for _, l in t.out if l.startswith('TOTAL ')) >= 1,
                           5, 'the SIGUSR1 text report (piped)')
            tty.wait_for(lambda t: 'TOTAL ' in t.raw.decode(errors='replace'), 5,
                         'the SIGUSR1 text report (terminal)')
            js.wait_for(lambda t: any(r.get('type') == 'summary' for _, r in t.records(t_sig_js)),
                        5, 'the SIGUSR1 JSON report')
            n_piped = len(piped.out)
            n_tty = len(tty.raw)
            t_after = time.time()
            piped.wait_for(lambda t: len(tick_lines('\n'.join(l for _, l in t.out[n_piped:]))) >= 2,
                           4, 'two tick lines after the SIGUSR1 report (piped)')
            tty.wait_for(lambda t: len(tick_lines(t.raw[n_tty:].decode(errors='replace'))) >= 2,
                         4, 'two ticks after the SIGUSR1 report (terminal)')
            js.wait_ticks(2, since=t_after)

            # Stop all; the final reports.
            for t in (piped, tty, js, zeek):
                t.signal(signal.SIGINT)
            for t in (piped, tty, js, zeek):
                rc = t.wait_exit(5)
                check(rc == 0, 'exit status %d after SIGINT\n%s' % (rc, t.describe()))
            elapsed = time.time() - t0
            check(churn.error is None, 'background load failed: %s' % churn.error)
        finally:
            churn.stop()

        # ---- piped text
        text = piped.stdout_text()
        check('\x1b' not in text, 'piped text output contains an escape sequence:\n'
              + piped.describe())
        ticks = tick_lines(text)
        check(len(ticks) >= int(elapsed / INTERVAL) - 2,
              'piped: %d tick lines in %.1f s at --interval %g (appended?)\n%s'
              % (len(ticks), elapsed, INTERVAL, piped.describe()))
        bad = [l for l in text.splitlines() if re.match(r'^\d\d:\d\d:\d\d\.\d{6}  open', l)
               and not TICK.match(l)]
        check(not bad, 'piped: tick lines without the pcap counters or malformed:\n  '
              + '\n  '.join(bad[:5]))
        caps = [l for l in text.splitlines() if CAPTURE_TEXT.match(l)]
        reports = [l for l in text.splitlines() if l.startswith('TOTAL ')]
        check(len(reports) == 2, 'piped: %d text reports, expected 2 (SIGUSR1, final)'
              % len(reports))
        check(len(caps) == 2, 'piped: libpcap counters in %d of the 2 reports:\n%s'
              % (len(caps), piped.describe(60)))
        last = CAPTURE_TEXT.match(caps[-1])
        check(int(last.group(2)) == 0, 'piped: the kernel dropped packets: ' + caps[-1])

        # ---- terminal
        raw = tty.raw.decode(errors='replace').replace('\r', '')
        frames = raw.split(CLEAR)
        check(len(frames) >= 5, 'terminal: only %d screen refreshes' % (len(frames) - 1))
        for f in frames[1:]:
            check(tick_lines(f), 'terminal: a refresh without a tick line: %r' % f[:300])
        rep_at = raw.find('TOTAL ')
        after = raw[rep_at:]
        final_at = after.find('TOTAL ', 1)
        between = after[:final_at] if final_at > 0 else after
        check(len(tick_lines(between)) >= 2, 'terminal: no ticks between the two reports')
        check(CLEAR not in between,
              'terminal: a tick cleared the screen after the SIGUSR1 report (the report '
              'is wiped a moment after it was asked for)')
        check(len([l for l in raw.splitlines() if CAPTURE_TEXT.match(l)]) == 2,
              'terminal: libpcap counters not in both reports')

        # ---- JSON
        recs = [r for _, r in js.records()]
        ticks = [r for r in recs if r.get('type') == 'tick']
        seen = segs = 0
        for r in recs:
            if r.get('type') == 'tick':
                seen += r['packets']
                segs += r['tcp_segments']
                check(r['tcp_segments'] <= r['packets'],
                      'JSON tick: %d tcp_segments but %d packets in the interval (is '
                      'tcp_segments a running total?)' % (r['tcp_segments'], r['packets']))
                pc = r.get('pcap')
                check(pc and {'received', 'dropped', 'if_dropped'} <= set(pc),
                      'JSON tick without pcap counters: %s' % r)
                check(pc['received'] >= seen, 'JSON tick: pcap received %d < %d packets seen'
                      % (pc['received'], seen))
        check(len(ticks) >= int(elapsed / INTERVAL) - 2, 'JSON: only %d ticks' % len(ticks))
        check(segs <= recs[-1]['tcp_segments'] and seen <= recs[-1]['packets'],
              'JSON: the ticks count more (%d packets, %d segments) than the summary (%s, %s)'
              % (seen, segs, recs[-1].get('packets'), recs[-1].get('tcp_segments')))
        summaries = [i for i, r in enumerate(recs) if r.get('type') == 'summary']
        check(len(summaries) == 2 and summaries[-1] == len(recs) - 1,
              'JSON: %d summary records (2 expected, the last one last)' % len(summaries))
        start = 0
        for i in summaries:
            report = recs[start:i]
            ticks_in = [k for k, r in enumerate(report) if r.get('type') == 'tick']
            report = report[ticks_in[-1] + 1:] if ticks_in else report
            caps = [r for r in report if r.get('type') == 'capture']
            check(len(caps) == 1, 'JSON: a report without its "capture" record (libpcap '
                  'counters): %s' % [r.get('type') for r in report])
            check(caps[0].get('interface') == 'lo' and caps[0]['received'] > 0
                  and caps[0]['dropped'] == 0, 'JSON capture record: %s' % caps[0])
            start = i + 1

        # ---- zeek
        lines = zeek.stdout_text().splitlines()
        fields = [l for l in lines if l.startswith('#fields')]
        check(len(fields) == 1, 'zeek: %d #fields lines' % len(fields))
        n = len(fields[0].split('\t')) - 1
        bad = [l for l in lines if not l.startswith('#') and len(l.split('\t')) != n]
        check(lines and not bad, 'zeek: stdout is not a conn.log, e.g.:\n  '
              + '\n  '.join(bad[:3]))
        check(tick_lines(zeek.stderr_text()),
              'zeek: no tick lines on stderr\n' + zeek.describe())

        # ---- drops: frozen while the ring overflows
        jd = env.tcpstate('--format', 'json', '--interval', '%g' % INTERVAL, '-B', '64')
        td = env.tcpstate('--interval', '%g' % INTERVAL, '-B', '64')
        jd.wait_ticks(1)
        for t in (jd, td):
            t.signal(signal.SIGSTOP)
        try:
            for _ in range(DROP_BURST):
                c = socket.socket()
                c.bind(('127.0.0.4', 0))
                c.settimeout(3)
                c.connect(lsock.getsockname())
                lsock.settimeout(3)
                s, _ = lsock.accept()
                c.close()
                s.close()
        finally:
            for t in (jd, td):
                t.signal(signal.SIGCONT)
        t_cont = time.time()
        jd.wait_ticks(1, since=t_cont)
        td.wait_for(lambda t: any(TICK.match(l) for ts, l in t.out if ts > t_cont), 5,
                    'a tick after SIGCONT')
        for t in (jd, td):
            t.signal(signal.SIGINT)
        for t in (jd, td):
            check(t.wait_exit(5) == 0, 'drops: exit status not 0\n' + t.describe())
            check('some states may be wrong' in t.stderr_text(),
                  'drops: no warning on stderr\n' + t.describe())
        tk = jd.ticks(t_cont)[0][1]
        check(tk['pcap']['dropped'] > 0 and 'warning' in tk,
              'drops: the tick after the overflow shows no drop or no warning: %s' % tk)
        cap = [r for _, r in jd.records() if r.get('type') == 'capture']
        check(cap and cap[-1]['dropped'] > 0 and 'warning' in cap[-1],
              'drops: the final report\'s counters show no drop or no warning: %s' % cap)
        lines = [TICK.match(l) for ts, l in td.out if ts > t_cont]
        lines = [m for m in lines if m]
        check(lines and int(lines[0].group(2)) > 0 and lines[0].group(3),
              'drops: the text tick after the overflow has no drop warning:\n' + td.describe())
        caps = [CAPTURE_TEXT.match(l) for l in td.stdout_text().splitlines()]
        caps = [m for m in caps if m]
        check(caps and int(caps[-1].group(2)) > 0 and 'WARNING' in caps[-1].string,
              'drops: the final text report\'s counters show no drop warning')


if __name__ == '__main__':
    sys.exit(main(test))
