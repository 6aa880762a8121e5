#!/usr/bin/env python3
"""Real-kernel test harness for tcpstate.

    ktest.py SCENARIO TCPSTATE            run one scenario and check tcpstate (meson test)
    ktest.py coverage [TCPSTATE]          check that the suite covers all ten states
    ktest.py --all TCPSTATE               run every suite scenario serially
    ktest.py --truth SCENARIO             run a scenario, print the kernel's truth only
    ktest.py --record SCENARIO --out DIR  write DIR/SCENARIO.pcap + SCENARIO.expect.json
    ktest.py --list                       list the scenarios

For each scenario: a fresh network namespace `tcpst-<scenario>-<pid>` with lo up;
tcpdump inside it; the scenario's sockets driven by a child process that runs inside
the namespace (`ip netns exec NS python3 ktest.py --actor SCENARIO`); the kernel's truth
taken with `ss -tanH` while the sockets are still open; tcpdump stopped with SIGINT to
its own PID; then `tcpstate -r PCAP --format json --at <snapshot time>` is judged by
kcompare. The namespace is deleted whatever happens; only the PIDs started here are
ever signalled. Exit codes (meson): 0 pass, 1 fail, 77 skip, 99 harness error.
"""

import argparse
import datetime
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kcompare  # noqa: E402
import kreports  # noqa: E402
from kcompare import (EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_ERROR, HarnessError,  # noqa: E402
                      Skip, STATES)
import scenarios as scen_mod  # noqa: E402

TOOLS = ('ip', 'tcpdump', 'ss', 'nft', 'tc', 'sysctl')
EXPECT_FORMAT = 'tcpstate-kernel-expect/1'


def log(msg):
    sys.stderr.write('[ktest %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------- prerequisites

def check_prereqs():
    """Raise Skip with a clear reason when this machine cannot run kernel scenarios."""
    if sys.platform != 'linux':
        raise Skip('real-kernel tests need Linux')
    if os.geteuid() != 0:
        raise Skip('real-kernel tests need root (network namespaces, tcpdump, nft)')
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise Skip('missing tools: %s (install iproute2 tcpdump nftables procps)'
                   % ' '.join(missing))


def sh(*cmd, check=True, timeout=20):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise HarnessError('%s failed (%d): %s' % (' '.join(cmd), r.returncode,
                                                   r.stderr.strip()))
    return r


# --------------------------------------------------------------------------- one run

class Run:
    """Everything one scenario run produced."""

    def __init__(self, scenario, pcap):
        self.scenario, self.pcap = scenario, pcap
        self.snapshots, self.notes = [], []
        self.facts = {}
        self.duration = 0.0
        self.tcpdump_stats = ''


def _kill(proc, name, grace):
    """Stop a process WE started, by its PID only: SIGINT, wait, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log('%s (pid %d) ignored SIGINT; killing it' % (name, proc.pid))
        proc.kill()
        proc.wait(timeout=5)


def _child_signals():
    """In our children: default SIGINT, even if this harness inherited it ignored
    (a background job), so SIGINT to their PID stops them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_pending = {}                       # fd -> bytes read past the last line returned


def _read_line(stream, deadline):
    """Read one line from STREAM before DEADLINE (None at EOF or timeout).

    Reads in chunks (a snapshot of thousands of sockets is one long line) and keeps
    what follows the line for the next call; only this function reads these pipes.
    """
    fd = stream.fileno()
    buf = _pending.pop(fd, b'')
    while b'\n' not in buf:
        left = deadline - time.time()
        if left <= 0:
            _pending[fd] = buf
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            _pending[fd] = buf
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return buf.decode() if buf else None
        buf += chunk
    line, _, rest = buf.partition(b'\n')
    if rest:
        _pending[fd] = rest
    return line.decode()


def _settle_capture(pcap, quiet=0.15, limit=3.0):
    """Wait until the capture file has not grown for QUIET seconds (at most LIMIT)."""
    size, since, end = -1, time.time(), time.time() + limit
    while time.time() < end:
        now = os.path.getsize(pcap) if os.path.exists(pcap) else -1
        if now != size:
            size, since = now, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.03)


def _rest(stream):
    """Everything left on STREAM, what _read_line kept included (blocks until EOF)."""
    return _pending.pop(stream.fileno(), b'') + stream.read()


def run_scenario(sc, workdir, pcap_name=None):
    """Run scenario SC in its own namespace; return a Run. Raises Skip/HarnessError."""
    check_prereqs()
    ns = 'tcpst-%s-%d' % (sc.name, os.getpid())
    pcap = os.path.join(workdir, pcap_name or (sc.name + '.pcap'))
    run = Run(sc, pcap)
    tcpdump = actor = None
    t_begin = time.time()
    created = False
    try:
        r = sh('ip', 'netns', 'add', ns, check=False)
        if r.returncode != 0:
            raise Skip('ip netns add %s failed: %s' % (ns, r.stderr.strip()))
        created = True
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')

        if os.path.exists(pcap):
            os.unlink(pcap)
        # -Z root: Debian's tcpdump otherwise drops to user tcpdump before opening -w.
        tcpdump = subprocess.Popen(
            ['ip', 'netns', 'exec', ns, 'tcpdump', '-i', 'lo', '-s', '128', '-U',
             '--immediate-mode', '-Z', 'root', '-w', pcap],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_child_signals)
        deadline = time.time() + 10
        while True:
            line = _read_line(tcpdump.stderr, deadline)
            if line is None:
                _kill(tcpdump, 'tcpdump', 2)
                raise HarnessError('tcpdump did not start (exit %s): %s' % (
                    tcpdump.poll(), _rest(tcpdump.stderr).decode(errors='replace').strip()))
            if 'listening on' in line:
                break

        actor = subprocess.Popen(
            ['ip', 'netns', 'exec', ns, sys.executable, os.path.abspath(__file__),
             '--actor', sc.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, cwd=HERE,
            preexec_fn=_child_signals)
        deadline = time.time() + sc.timeout
        error = None
        while True:
            line = _read_line(actor.stdout, deadline)
            if line is None:
                error = ('scenario did not finish within %d s' % sc.timeout
                         if time.time() >= deadline else
                         'scenario process ended unexpectedly (exit %s)' % actor.poll())
                break
            try:
                ev = json.loads(line)
            except ValueError:
                log('actor: %s' % line)
                continue
            if ev.get('event') == 'snapshot':
                run.snapshots.append(ev)
            elif ev.get('event') == 'done':
                run.notes = ev.get('notes', [])
                run.facts = ev.get('facts', {})
                break
            elif ev.get('event') == 'error':
                error = ev.get('message')
                break

        # The scenario still holds its sockets: stop the capture first, once tcpdump
        # has written what is in its ring (on SIGINT it stops without draining it).
        _settle_capture(pcap)
        _kill(tcpdump, 'tcpdump', 10)
        run.tcpdump_stats = _rest(tcpdump.stderr).decode(errors='replace').strip()
        try:
            actor.stdin.write(b'exit\n')
            actor.stdin.close()
        except OSError:
            pass
        try:
            actor.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill(actor, 'actor', 5)
        if error:
            raise HarnessError('scenario %s: %s' % (sc.name, error))
        m = [l for l in run.tcpdump_stats.splitlines() if 'dropped by kernel' in l]
        if m and not m[0].strip().startswith('0 '):
            raise HarnessError('tcpdump lost packets: %s' % m[0])
        if not os.path.exists(pcap):
            raise HarnessError('tcpdump wrote no capture file')
        if sc.verifier:
            wire = kcompare.wire_connections(pcap)
            sc.verifier(wire, run.snapshots)
    finally:
        _kill(actor, 'actor', 5)
        _kill(tcpdump, 'tcpdump', 5)
        _pending.clear()
        if created:
            r = sh('ip', 'netns', 'del', ns, check=False)
            if r.returncode != 0:
                log('WARNING: ip netns del %s failed: %s' % (ns, r.stderr.strip()))
    run.duration = time.time() - t_begin
    return run


def known_failure(sc, name, status, results):
    """A known disagreement of the state machine with the kernel (sc.xfail_states:
    reason, predicate on a mismatching kcompare.Row): a state check failing with only
    such rows passes; passing outright fails, so the marker goes with the fix."""
    reason, known = sc.xfail_states
    bad = [r for res in results if res for r in res.rows if not r.ok]
    if status == EXIT_FAIL and all(results) and not any(res.problems for res in results) \
            and all(known(r) for r in bad):
        print('XFAIL %s: %d endpoint(s) differ from ss as known: %s' % (name, len(bad), reason))
        return EXIT_PASS
    if status == EXIT_PASS:
        print('XPASS %s: the state check passes now; remove xfail_states from the scenario '
              '(%s)' % (name, reason))
        return EXIT_FAIL
    other = [r for r in bad if not known(r)]
    if other:
        print('FAIL %s: %d mismatch(es) beyond the known one, e.g. %s expected %s got %s'
              % (name, len(other), kcompare.fmt_ep(other[0].ep), other[0].expected,
                 other[0].got))
    return status


def run_checks(run):
    """The snapshots of a run in the form kcompare.check takes."""
    return [{'name': s['name'], 'at': s['at'], 'sockets': s['sockets']}
            for s in run.snapshots]


def print_truth(run, out=sys.stdout):
    for chk in run_checks(run):
        rows = kcompare.expected_table(run.pcap, chk)
        out.write('truth %s/%s at %.6f: %s\n' % (run.scenario.name, chk['name'], chk['at'],
                                                  kcompare.state_counts(rows)))
        for r in rows[:40]:
            out.write('  %-45s %-4s %-21s %-6s %-12s %s\n' % (
                r['connection'], r['incarnation'], r['endpoint'], r['side'], r['state'],
                r['because']))
        if len(rows) > 40:
            out.write('  ... %d more endpoints\n' % (len(rows) - 40))


def write_result(results_dir, run, status):
    """Per-scenario result for the coverage test: which states were expected."""
    if not results_dir:
        return
    os.makedirs(results_dir, exist_ok=True)
    states = {}
    for chk in run_checks(run):
        rows = kcompare.expected_table(run.pcap, chk)
        for st, n in kcompare.state_counts(rows, by_side=True).items():
            states[st] = states.get(st, 0) + n
    with open(os.path.join(results_dir, run.scenario.name + '.json'), 'w') as f:
        json.dump({'scenario': run.scenario.name, 'status': status, 'time': time.time(),
                   'duration': round(run.duration, 3), 'expected_states': states}, f)


# --------------------------------------------------------------------------- commands

def cmd_test(name, tcpstate, keep=None, results=None, verbose=False):
    sc = scen_mod.SCENARIOS.get(name)
    if sc is None:
        raise HarnessError('unknown scenario %r (see --list)' % name)
    if not tcpstate or not os.access(tcpstate, os.X_OK):
        raise Skip('tcpstate binary not found or not executable: %r' % tcpstate)
    check_prereqs()
    if not keep and results:
        # Under meson: artifacts next to the results, kept only when the test fails.
        keep_default = os.path.join(os.path.dirname(os.path.abspath(results)),
                                    'artifacts', name)
        shutil.rmtree(keep_default, ignore_errors=True)
        workdir = keep_default
        keep_on_pass = False
    else:
        workdir = keep or tempfile.mkdtemp(prefix='tcpst-%s-' % name)
        keep_on_pass = bool(keep)
    os.makedirs(workdir, exist_ok=True)
    ok = False
    try:
        run = run_scenario(sc, workdir)
        log('%s: scenario ran in %.2f s, %d snapshot(s); capture %s (%d bytes)'
            % (name, run.duration, len(run.snapshots), run.pcap, os.path.getsize(run.pcap)))
        for n in run.notes:
            log('note: ' + n)
        print_truth(run)
        judged = []
        status = kcompare.check(tcpstate, run.pcap, run_checks(run), name, verbose=verbose,
                                results=judged)
        if sc.xfail_states:
            status = known_failure(sc, name, status, judged)
        write_result(results, run, status)
        if sc.reports_fn and status in (EXIT_PASS, EXIT_FAIL):
            rstatus = kreports.check(sc, tcpstate, run.pcap, run.snapshots, run.facts,
                                     sys.stdout)
            status = max(status, rstatus)
        ok = status == EXIT_PASS
        return status
    finally:
        if ok and not keep_on_pass:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log('artifacts kept in %s' % workdir)


def cmd_truth(name, keep=None):
    sc = scen_mod.SCENARIOS[name]
    workdir = keep or tempfile.mkdtemp(prefix='tcpst-%s-' % name)
    os.makedirs(workdir, exist_ok=True)
    run = run_scenario(sc, workdir)
    log('%s: %.2f s; capture %s (%d bytes)' % (name, run.duration, run.pcap,
                                                os.path.getsize(run.pcap)))
    for n in run.notes:
        log('note: ' + n)
    print_truth(run)
    for s in run.snapshots:
        print('ss at %.6f (%s):' % (s['at'], s['name']))
        for l in s['ss']:
            print('  ' + l)
    return EXIT_PASS


def dump_json(obj, indent=''):
    """JSON for review: objects and lists indented, lists of flat objects one per line."""
    flat = lambda x: not isinstance(x, (dict, list)) or (
        isinstance(x, dict) and all(not isinstance(v, (dict, list)) for v in x.values()))
    inner = indent + '  '
    if isinstance(obj, dict) and obj and not flat(obj):
        return '{\n' + ',\n'.join('%s%s: %s' % (inner, json.dumps(k), dump_json(v, inner))
                                   for k, v in obj.items()) + '\n' + indent + '}'
    if isinstance(obj, list) and obj and not all(isinstance(x, str) and len(x) < 20
                                                  for x in obj):
        return '[\n' + ',\n'.join(inner + (json.dumps(x) if flat(x) else dump_json(x, inner))
                                   for x in obj) + '\n' + indent + ']'
    return json.dumps(obj)


def cmd_record(name, out, tcpstate=None, max_bytes=50 * 1024):
    sc = scen_mod.SCENARIOS.get(name)
    if sc is None:
        raise HarnessError('unknown scenario %r' % name)
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='tcpst-rec-%s-' % name)
    try:
        run = run_scenario(sc, tmp)
        size = os.path.getsize(run.pcap)
        if size > max_bytes:
            raise HarnessError('%s: capture is %d bytes, over the %d limit for testdata'
                               % (name, size, max_bytes))
        checks = []
        for chk in run_checks(run):
            snap = next(s for s in run.snapshots if s['name'] == chk['name'])
            checks.append({'name': chk['name'], 'at': chk['at'], 'ss': snap['ss'],
                           'sockets': chk['sockets'],
                           'expected': kcompare.expected_table(run.pcap, chk)})
        doc = {'format': EXPECT_FORMAT, 'scenario': name, 'description': sc.doc,
               'pcap': name + '.pcap',
               'truth': 'ss -tanH inside the namespace at "at"; endpoints without a '
                        'socket are CLOSED; earlier incarnations CLOSED',
               'recorded': {'date': datetime.datetime.now(datetime.timezone.utc)
                            .strftime('%Y-%m-%dT%H:%M:%SZ'),
                            'kernel': os.uname().release,
                            'command': 'tests/kernel/ktest.py --record %s --out testdata/'
                                       % name},
               'notes': run.notes, 'checks': checks}
        shutil.copyfile(run.pcap, os.path.join(out, name + '.pcap'))
        with open(os.path.join(out, name + '.expect.json'), 'w') as f:
            f.write(dump_json(doc) + '\n')
        log('recorded %s: %s.pcap (%d bytes), %s.expect.json' % (name, name, size, name))
        print_truth(run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if tcpstate:
        return kcompare.check(tcpstate, os.path.join(out, name + '.pcap'),
                              checks, name)
    return EXIT_PASS


def cmd_coverage(results=None, registered=None):
    """The ten states must each be an expected state of some suite scenario.

    REGISTERED (from meson.build) must list every suite scenario, so none is forgotten.
    """
    cov = scen_mod.suite_coverage()
    bad_reg = []
    if registered is not None:
        suite = [n for n, s in scen_mod.SCENARIOS.items() if s.in_suite]
        bad_reg = [n for n in suite if n not in registered]
        unknown = [n for n in registered if n not in scen_mod.SCENARIOS]
        if unknown:
            print('FAIL: meson registers unknown scenarios: %s' % ' '.join(unknown))
            return EXIT_FAIL
        if bad_reg:
            print('FAIL: suite scenarios missing from tests/kernel/meson.build: %s'
                  % ' '.join(bad_reg))
            return EXIT_FAIL
    seen = {}
    if results and os.path.isdir(results):
        for fn in sorted(os.listdir(results)):
            if fn.endswith('.json'):
                with open(os.path.join(results, fn)) as f:
                    r = json.load(f)
                for st, n in sorted(r.get('expected_states', {}).items()):
                    state, _, side = st.partition('/')
                    seen.setdefault(state, []).append('%s:%s(%d)' % (r['scenario'], side or '?', n))
    bad = []
    for st in STATES:
        print('%s\n  built by:      %s\n  expected in last runs (scenario:side(endpoints)): %s'
              % (st, ', '.join(cov[st]) or '-', ', '.join(seen.get(st, [])) or '-'))
        if not cov[st]:
            bad.append(st)
    if results and os.path.isdir(results):
        unseen = [st for st in STATES if st not in seen]
        if unseen:
            print('note: not (yet) seen as an expected state in recorded runs: %s'
                  % ' '.join(unseen))
    if bad:
        print('FAIL: no suite scenario is built to produce %s' % ' '.join(bad))
        return EXIT_FAIL
    print('PASS: all %d states are covered by the suite' % len(STATES))
    return EXIT_PASS


def cmd_all(tcpstate, names=None, keep=None):
    names = names or [n for n, s in scen_mod.SCENARIOS.items() if s.in_suite]
    summary, t0 = [], time.time()
    for n in names:
        t = time.time()
        try:
            st = cmd_test(n, tcpstate, keep=os.path.join(keep, n) if keep else None)
        except Skip as e:
            print('SKIP %s: %s' % (n, e))
            st = EXIT_SKIP
        except HarnessError as e:
            print('ERROR %s: %s' % (n, e))
            st = EXIT_ERROR
        summary.append((n, st, time.time() - t))
    print('\n%-26s %-6s %s' % ('scenario', 'result', 'seconds'))
    names_ = {EXIT_PASS: 'pass', EXIT_FAIL: 'FAIL', EXIT_SKIP: 'skip', EXIT_ERROR: 'ERROR'}
    for n, st, dt in summary:
        print('%-26s %-6s %.1f' % (n, names_.get(st, st), dt))
    print('total %.1f s' % (time.time() - t0))
    return max((st for _, st, _ in summary if st != EXIT_SKIP), default=EXIT_PASS)


class Terminated(HarnessError):
    pass


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind through the finally blocks so the
    # namespace is deleted and our tcpdump/actor are stopped.
    raise Terminated('terminated by signal %d' % signum)


def main(argv):
    signal.signal(signal.SIGTERM, _on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('scenario', nargs='?')
    ap.add_argument('tcpstate', nargs='?')
    ap.add_argument('--actor', metavar='SCENARIO', help=argparse.SUPPRESS)
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--all', metavar='TCPSTATE')
    ap.add_argument('--truth', metavar='SCENARIO')
    ap.add_argument('--record', metavar='SCENARIO')
    ap.add_argument('--out', default='testdata')
    ap.add_argument('--tcpstate', dest='tcpstate_opt')
    ap.add_argument('--keep', metavar='DIR', help='keep captures in DIR')
    ap.add_argument('--results', metavar='DIR', help='write per-scenario results here')
    ap.add_argument('--registered', nargs='*', metavar='SCENARIO',
                    help='coverage: the scenarios meson.build registers')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args(argv)

    if args.actor:
        import kactor
        try:
            return kactor.actor_main(scen_mod.SCENARIOS[args.actor])
        except (KeyboardInterrupt, Terminated):
            return 130                  # stopped by the harness: quietly
    try:
        if args.list:
            for n, s in scen_mod.SCENARIOS.items():
                print('%-26s %s%s' % (n, '' if s.in_suite else '(not in suite) ', s.doc))
            return EXIT_PASS
        if args.all:
            return cmd_all(args.all, [args.scenario] if args.scenario else None, args.keep)
        if args.truth:
            return cmd_truth(args.truth, args.keep)
        if args.record:
            return cmd_record(args.record, args.out, args.tcpstate_opt)
        if args.scenario == 'coverage':
            return cmd_coverage(args.results, args.registered)
        if not args.scenario:
            ap.print_usage()
            return EXIT_ERROR
        return cmd_test(args.scenario, args.tcpstate or args.tcpstate_opt, args.keep,
                        args.results, args.verbose)
    except Skip as e:
        print('SKIP: %s' % e)
        return EXIT_SKIP
    except HarnessError as e:
        print('ERROR (harness, not a tcpstate verdict): %s' % e)
        return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
