"""Check tcpstate's troubleshooting reports against the kernel's own figures.

After the state check, a scenario's `reports` function (scenarios.py, `@name.reports`)
gets a Reports object: it runs tcpstate on the scenario's capture with the report
options it needs and compares the records (CLOSE_WAIT groups, half-open connections,
SYN-flood alerts, TIME_WAIT counts, listeners) with figures the scenario recorded while
it ran (`a.fact(...)`: from `ss`, `nstat`, or its own construction: how many SYNs it
sent, when it closed) and with its `ss` snapshots. An expected figure never comes from
tcpstate itself. Every comparison is printed, with where the expected figure came from.
"""

import json
import subprocess

from kcompare import EXIT_PASS, EXIT_FAIL, endpoint


class ReportFailure(Exception):
    """tcpstate crashed or wrote something that is not JSON Lines."""


class Reports:
    def __init__(self, tcpstate, pcap, snapshots, facts, out):
        self.tcpstate, self.pcap, self.out = tcpstate, pcap, out
        self.snaps = {s['name']: s for s in snapshots}
        self.facts = facts
        self.checked = self.failed = 0

    # ---------------------------------------------------------------- running tcpstate
    def snap(self, name='final'):
        return self.snaps[name]

    def _run(self, args, timeout=120):
        cmd = [self.tcpstate, '-r', self.pcap] + [str(a) for a in args]
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ReportFailure('%s timed out' % ' '.join(cmd))
        except OSError as e:
            raise ReportFailure('cannot run %s: %s' % (self.tcpstate, e))
        if r.returncode != 0:
            raise ReportFailure('%s exited with %d: %s' % (
                ' '.join(cmd), r.returncode, r.stderr.decode(errors='replace').strip()))
        self.out.write('  $ %s\n' % ' '.join(cmd))
        return r.stdout.decode(errors='replace')

    def json(self, *opts, at=None):
        """tcpstate --format json --report all [OPTS] --at AT (default: the final
        snapshot); the records as a list."""
        at = self.snap()['at'] if at is None else at
        text = self._run(['--format', 'json', '--report', 'all', '--at', '%.6f' % at]
                         + list(opts))
        recs = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    raise ReportFailure('output line %d is not JSON (%s): %r' % (n, e, line[:200]))
        return recs

    def text(self, *opts, at=None):
        at = self.snap()['at'] if at is None else at
        return self._run(['--at', '%.6f' % at] + list(opts))

    # ---------------------------------------------------------------- picking records
    @staticmethod
    def _ep_is(obj, want):
        """OBJ ({"addr","port"} from tcpstate) is the endpoint WANT ('a:p' string)?"""
        host, _, port = want.rpartition(':')
        try:
            return endpoint(obj['addr'], obj['port']) == endpoint(host, port)
        except (KeyError, TypeError, ValueError):
            return False

    def select(self, recs, rtype, **match):
        """Records of type RTYPE whose fields equal MATCH; an endpoint field (a dict
        with addr and port) matches an 'addr:port' string."""
        found = []
        for r in recs:
            if r.get('type') != rtype:
                continue
            ok = True
            for k, v in match.items():
                got = r.get(k)
                if isinstance(got, dict) and isinstance(v, str):
                    ok = self._ep_is(got, v)
                else:
                    ok = got == v
                if not ok:
                    break
            if ok:
                found.append(r)
        return found

    def one(self, recs, rtype, **match):
        """The single record of RTYPE matching MATCH; a failed check (and {}) otherwise."""
        found = self.select(recs, rtype, **match)
        self.eq('number of %s records %s' % (rtype, _fmt_match(match)), len(found), 1,
                'the scenario built one')
        return found[0] if len(found) == 1 else {}

    # ---------------------------------------------------------------- comparisons
    def _report(self, ok, what, detail):
        self.checked += 1
        if not ok:
            self.failed += 1
        self.out.write('  %s %s: %s\n' % ('ok  ' if ok else 'FAIL', what, detail))
        return ok

    def eq(self, what, got, want, source):
        return self._report(got == want, what, 'got %r, expected %r (%s)' % (got, want, source))

    def near(self, what, got, want, tol, source):
        ok = isinstance(got, (int, float)) and abs(got - want) <= tol
        return self._report(ok, what, 'got %r, expected %.6f +- %g (%s)' % (got, want, tol, source))

    def between(self, what, got, lo, hi, source):
        ok = isinstance(got, (int, float)) and lo <= got <= hi
        return self._report(ok, what, 'got %r, expected in [%.6f, %.6f] (%s)' % (got, lo, hi, source))

    def true(self, what, cond, detail):
        return self._report(bool(cond), what, detail)

    def status(self):
        return EXIT_PASS if not self.failed else EXIT_FAIL


def _fmt_match(match):
    return '(%s)' % ', '.join('%s=%s' % kv for kv in sorted(match.items())) if match else ''


def check(scenario, tcpstate, pcap, snapshots, facts, out):
    """Run SCENARIO's report checks; return an exit code (0 pass, 1 fail)."""
    rep = Reports(tcpstate, pcap, snapshots, facts, out)
    out.write('reports %s:\n' % scenario.name)
    try:
        scenario.reports_fn(rep)
    except ReportFailure as e:
        out.write('FAIL %s/reports: %s\n' % (scenario.name, e))
        return EXIT_FAIL
    out.write('%s %s/reports: %d check(s), %d failed\n'
              % ('PASS' if not rep.failed else 'FAIL', scenario.name, rep.checked, rep.failed))
    return rep.status()
