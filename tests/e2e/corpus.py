#!/usr/bin/env python3
"""Robustness smoke test: tcpstate reads every capture of a corpus without crashing.

    corpus.py TCPSTATE CORPUS_DIR

For every pcap/pcapng file under CORPUS_DIR (found by magic number, not by name):
run `tcpstate -r FILE` (text) and `tcpstate -r FILE --format json`. Each run must
end by itself within the time limit with exit 0 or 1 (1: input problem, e.g. a
damaged file, reported on stderr), never by a signal or another code; stderr must
carry no sanitizer report; the JSON run must print valid JSON Lines. The states are
not judged here (see the kernel and e2e suites). Exit 77 when CORPUS_DIR is absent.
"""

import json
import os
import subprocess
import sys

MAGICS = (b'\xd4\xc3\xb2\xa1', b'\xa1\xb2\xc3\xd4', b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\x3c\x4d',
          b'\x0a\x0d\x0d\x0a')
SANITIZER = ('AddressSanitizer', 'LeakSanitizer', 'UndefinedBehaviorSanitizer',
             'runtime error:', 'MemorySanitizer', 'ThreadSanitizer')


def captures(root):
    for d, _, files in sorted(os.walk(root)):
        for fn in sorted(files):
            p = os.path.join(d, fn)
            try:
                with open(p, 'rb') as f:
                    if f.read(4) in MAGICS:
                        yield p
            except OSError:
                continue


def run(cmd, timeout=60):
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, b'', b'timed out after %d s' % timeout
    return r.returncode, r.stdout, r.stderr


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip())
        return 99
    tcpstate, root = argv
    if not os.path.isdir(root):
        print('SKIP: corpus folder %s is absent' % root)
        return 77
    files = list(captures(root))
    if not files:
        print('SKIP: no capture files under %s' % root)
        return 77
    bad = 0
    for p in files:
        name = os.path.relpath(p, root)
        for fmt in ('text', 'json'):
            cmd = [tcpstate, '-r', p] + (['--format', 'json'] if fmt == 'json' else [])
            code, out, err = run(cmd)
            errs = err.decode(errors='replace')
            problem = None
            if code is None:
                problem = errs
            elif code < 0:
                problem = 'killed by signal %d' % -code
            elif code not in (0, 1):
                problem = 'exit status %d' % code
            elif any(s in errs for s in SANITIZER):
                problem = 'sanitizer report'
            elif fmt == 'json':
                for n, line in enumerate(out.decode(errors='replace').splitlines(), 1):
                    try:
                        json.loads(line)
                    except ValueError:
                        problem = 'output line %d is not JSON: %r' % (n, line[:120])
                        break
            if problem:
                bad += 1
                print('FAIL %s (%s): %s' % (name, fmt, problem))
                if errs.strip():
                    print('    ' + errs.strip()[:2000].replace('\n', '\n    '))
            elif code == 1:
                print('ok   %s (%s): exit 1: %s' % (name, fmt, errs.strip().splitlines()[-1]
                                                     if errs.strip() else ''))
    print('%d capture(s), %d run(s) failed' % (len(files), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
