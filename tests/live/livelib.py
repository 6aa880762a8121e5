"""Shared harness of the live-capture tests (suite 'live').

Each test runs `tcpstate -i lo` for real, inside a network namespace it creates, while
python sockets in that namespace open, close and leak connections; the expected figures
come from the kernel (`ss -tanH`) or from the test's own construction, never from
tcpstate. The kernel suite's helpers are reused: kactor.Actor (sockets, nft drops, ss
snapshots) and kcompare (ss parser, exit codes, Skip/HarnessError).

    with LiveEnv('signals') as env:           # namespace created, this process moved in
        t = env.tcpstate('--interval', '1', '--format', 'json')
        t.wait_ticks(2)
        ...
    # every tcpstate started here is stopped (by its PID), the namespace deleted

The test process enters the namespace itself (setns(2) through ctypes, before any
thread exists), so its sockets, its `ss` and the tcpstate it starts all live there and
the test reads the clock that tcpstate and the kernel read. Only PIDs started here are
ever signalled. Exit codes (meson): 0 pass, 1 fail, 77 skip, 99 harness error.
"""

import ctypes
import io
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'kernel'))

from kcompare import (EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_ERROR,  # noqa: E402,F401
                      HarnessError, Skip)
import kactor  # noqa: E402

TOOLS = ('ip', 'ss', 'nft')
CLONE_NEWNET = 0x40000000
SERVER = '127.0.0.1'


def log(msg):
    sys.stderr.write('[live %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


class Failure(Exception):
    """tcpstate did not do what it should (exit 1)."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def sh(*cmd, check=True, timeout=20):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise HarnessError('%s failed (%d): %s' % (' '.join(cmd), r.returncode,
                                                   r.stderr.strip()))
    return r


# --------------------------------------------------------------------------- tcpstate

class Tcpstate:
    """One tcpstate process started by the test; its output read as it arrives.

    stdout: 'pipe' (lines with their arrival time), 'pty' (a pseudo-terminal: raw
    bytes kept), or a file path (read back at the end; for big outputs). HEAD: with
    'pipe', close the read end after that many lines (as `| head` does).
    """

    def __init__(self, binary, args, stdout='pipe', head=None):
        self.head = head
        self.args = [binary] + list(args)
        self.mode = stdout
        self.out = []               # [(arrival time, line)] ('pipe')
        self.raw = b''              # everything read ('pty')
        self.err = []               # [(arrival time, line)]
        self.cond = threading.Condition()
        self.path = None
        master = slave = fout = None
        if stdout == 'pty':
            master, slave = pty.openpty()
            target = slave
        elif stdout == 'pipe':
            target = subprocess.PIPE
        else:
            self.path = stdout
            fout = open(stdout, 'wb')
            target = fout
        self.t_start = time.time()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=target,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                      signal.SIG_DFL))
        self.pid = self.proc.pid
        if slave is not None:
            os.close(slave)
        if fout is not None:
            fout.close()
        self.master = master
        self.threads = [threading.Thread(target=self._read_lines,
                                         args=(self.proc.stderr, self.err), daemon=True)]
        if stdout == 'pipe':
            self.threads.append(threading.Thread(target=self._read_lines,
                                                 args=(self.proc.stdout, self.out), daemon=True))
        elif stdout == 'pty':
            self.threads.append(threading.Thread(target=self._read_pty, daemon=True))
        for th in self.threads:
            th.start()

    def _read_lines(self, stream, into):
        for line in iter(stream.readline, b''):
            with self.cond:
                into.append((time.time(), line.decode(errors='replace').rstrip('\n')))
                self.cond.notify_all()
                if into is self.out and self.head and len(into) >= self.head:
                    stream.close()
                    break
        with self.cond:
            self.cond.notify_all()

    def _read_pty(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:             # EIO: the child closed the terminal
                break
            if not chunk:
                break
            with self.cond:
                self.raw += chunk
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    # ---------------------------------------------------------------- waiting
    def wait_for(self, pred, timeout, what):
        """Wait until PRED(self) is true (returned) or tcpstate exits or TIMEOUT."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                v = pred(self)
                if v:
                    return v
                left = deadline - time.time()
                if left <= 0:
                    raise Failure('timed out after %.1f s waiting for %s\n%s'
                                  % (timeout, what, self.describe()))
                if self.proc.poll() is not None and not any(t.is_alive() for t in self.threads):
                    v = pred(self)
                    if v:
                        return v
                    raise Failure('tcpstate exited (status %s) while waiting for %s\n%s'
                                  % (self.proc.returncode, what, self.describe()))
                self.cond.wait(min(left, 0.1))

    def wait_started(self, timeout=10):
        self.wait_for(lambda t: any('listening on' in l for _, l in t.err), timeout,
                      '"listening on" on stderr')

    def records(self, since=0.0):
        """JSON records of stdout ('pipe'), [(arrival, record)], arrived after SINCE."""
        res = []
        for t, l in list(self.out):
            if t < since or not l.startswith('{'):
                continue
            try:
                res.append((t, json.loads(l)))
            except ValueError:
                raise Failure('stdout line is not JSON: %r' % l[:200])
        return res

    def ticks(self, since=0.0):
        return [(t, r) for t, r in self.records(since) if r.get('type') == 'tick']

    def wait_ticks(self, n, timeout=None, since=0.0):
        """Wait for N tick records arriving after SINCE; returns them."""
        timeout = timeout or n * 2 + 5
        return self.wait_for(lambda t: len(t.ticks(since)) >= n and t.ticks(since),
                             timeout, '%d tick record(s)' % n)

    def stderr_text(self):
        return '\n'.join(l for _, l in self.err)

    def stdout_text(self):
        if self.mode == 'pty':
            return self.raw.decode(errors='replace')
        if self.path:
            with open(self.path, errors='replace') as f:
                return f.read()
        return '\n'.join(l for _, l in self.out)

    def describe(self, tail=15):
        out = self.stdout_text().splitlines()
        return ('  command: %s\n  stderr:\n%s\n  stdout (last %d lines):\n%s'
                % (' '.join(self.args),
                   '\n'.join('    ' + l for _, l in self.err[-10:]),
                   tail, '\n'.join('    ' + l[:300] for l in out[-tail:])))

    # ---------------------------------------------------------------- control
    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure('tcpstate (pid %d) still running %.1f s later\n%s'
                          % (self.pid, timeout, self.describe()))
        for th in self.threads:
            th.join(timeout=5)
        return rc

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        """Cleanup: SIGINT, then SIGKILL, to this PID only."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log('tcpstate (pid %d) ignored SIGINT; killing it' % self.pid)
                self.proc.kill()
                self.proc.wait(timeout=5)
        for th in self.threads:
            th.join(timeout=2)
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None

    def proc_status(self, field):
        """A line of /proc/PID/status ('VmRSS', 'Uid', ...) split in fields, or None."""
        try:
            with open('/proc/%d/status' % self.pid) as f:
                for line in f:
                    k, _, v = line.partition(':')
                    if k == field:
                        return v.split()
        except OSError:
            return None
        return None


# --------------------------------------------------------------------------- namespace

def _setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise Skip('setns(%s) failed: %s' % (path, os.strerror(e)))
    finally:
        os.close(fd)


class Terminated(HarnessError):
    pass


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind through the finally blocks.
    raise Terminated('terminated by signal %d' % signum)


class LiveEnv:
    """A fresh namespace with lo up; this process enters it (no thread may exist yet)."""

    def __init__(self, name, binary=None):
        self.name = name
        self.ns = 'tcpst-live-%s-%d' % (name, os.getpid())
        self.binary = binary or (sys.argv[1] if len(sys.argv) > 1 else None)
        self.procs = []
        self.created = False
        self.actor = None

    def __enter__(self):
        signal.signal(signal.SIGTERM, _on_sigterm)
        if sys.platform != 'linux':
            raise Skip('live tests need Linux')
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise Skip('tcpstate binary not found or not executable: %r' % self.binary)
        if os.geteuid() != 0:
            raise Skip('live capture tests need root (network namespaces, packet capture)')
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise Skip('missing tools: %s (install iproute2 nftables)' % ' '.join(missing))
        if threading.active_count() != 1:
            raise HarnessError('LiveEnv must be entered before any thread starts')
        r = sh('ip', 'netns', 'add', self.ns, check=False)
        if r.returncode != 0:
            raise Skip('network namespaces unavailable: ip netns add: %s' % r.stderr.strip())
        self.created = True
        try:
            sh('ip', '-n', self.ns, 'link', 'set', 'lo', 'up')
            _setns('/run/netns/' + self.ns)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.actor = kactor.Actor(out=io.StringIO())
        # Many sockets in some tests: the hard limit, at most 65536.
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return self

    def tcpstate(self, *args, iface='lo', stdout='pipe', head=None, started=True):
        t = Tcpstate(self.binary, ['-i', iface] + list(args), stdout=stdout, head=head)
        self.procs.append(t)
        if started:
            t.wait_started()
        return t

    def run(self, *args, timeout=15):
        """tcpstate run to completion (no -i added): (status, stdout, stderr)."""
        r = subprocess.run([self.binary] + list(args), capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr

    def ss(self):
        return self.actor.ss()

    def __exit__(self, *exc):
        for t in self.procs:
            try:
                t.stop()
            except Exception as e:  # noqa: BLE001 -- keep cleaning up
                log('stopping tcpstate pid %d: %s' % (t.pid, e))
        if self.actor:
            for s in self.actor.keep:
                try:
                    s.close()
                except OSError:
                    pass
        if self.created:
            r = sh('ip', 'netns', 'del', self.ns, check=False)
            if r.returncode != 0:
                log('WARNING: ip netns del %s failed: %s' % (self.ns, r.stderr.strip()))
            self.created = False
        return False


def main(test):
    """Run TEST(env-less) and map its outcome to meson's exit codes."""
    t0 = time.time()
    try:
        test()
        log('PASS (%.1f s)' % (time.time() - t0))
        return EXIT_PASS
    except Skip as e:
        print('SKIP: %s' % e)
        return EXIT_SKIP
    except Failure as e:
        print('FAIL: %s' % e)
        return EXIT_FAIL
    except (HarnessError, TimeoutError) as e:
        print('ERROR (harness, not a tcpstate verdict): %s' % e)
        return EXIT_ERROR


# --------------------------------------------------------------------------- helpers

def role_of(sock, server_ports):
    """'server' if the socket's local port is a service port of the test, else 'client'."""
    return 'server' if int(sock['local'].rsplit(':', 1)[1]) in server_ports else 'client'


def ss_counts(socks, server_ports):
    """{'client': {STATE: n}, 'server': {...}} from parsed ss sockets."""
    res = {'client': {}, 'server': {}}
    for s in socks:
        side = res[role_of(s, server_ports)]
        side[s['state']] = side.get(s['state'], 0) + 1
    return res


class Churn(threading.Thread):
    """Background load: complete connections (connect, a request, both close) to
    LSOCK from CLIENT addresses, one every PERIOD seconds, until stopped. Bounded by
    MAX_SECONDS whatever happens."""

    def __init__(self, lsock, period=0.05, max_seconds=60, clients=('127.0.0.20',)):
        super().__init__(daemon=True)
        self.lsock, self.period, self.max_seconds = lsock, period, max_seconds
        self.clients = clients
        self.halt = threading.Event()
        self.count = 0
        self.error = None

    def run(self):
        import socket
        end = time.time() + self.max_seconds
        i = 0
        try:
            while not self.halt.is_set() and time.time() < end:
                c = socket.socket()
                c.bind((self.clients[i % len(self.clients)], 0))
                c.settimeout(3)
                c.connect(self.lsock.getsockname())
                self.lsock.settimeout(3)
                s, _ = self.lsock.accept()
                c.sendall(b'ping')
                s.recv(16)
                c.close()
                s.close()
                self.count += 1
                i += 1
                self.halt.wait(self.period)
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(timeout=5)
