#!/usr/bin/env python3
"""Golden end-to-end test: tcpstate's output must equal a checked expected file.

    golden.py TCPSTATE TESTDATA NAME CAPTURE EXPECTED [OPTION ...]

(a TESTLIST line after TCPSTATE and the testdata folder). Runs
`TCPSTATE -r TESTDATA/CAPTURE OPTION ...` and compares stdout with TESTDATA/EXPECTED
byte for byte; on a difference prints a unified diff. Each expected file must have been
checked by hand or against an independent source when it was first written
(say how in TESTLIST's comment above its line). Exit: 0 pass, 1 fail, 99 error.
"""

import difflib
import os
import subprocess
import sys


def main(argv):
    if len(argv) < 5:
        print(__doc__.strip().splitlines()[2].strip())
        return 99
    tcpstate, testdata, _name, capture, expected = argv[:5]
    capture, expected = os.path.join(testdata, capture), os.path.join(testdata, expected)
    opts = argv[5:]
    if not os.path.exists(expected):
        print('ERROR: expected output %s is missing' % expected)
        return 99
    cmd = [tcpstate, '-r', capture] + opts
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    got = r.stdout.decode(errors='replace')
    with open(expected, encoding='utf-8', errors='replace') as f:
        want = f.read()
    if r.returncode not in (0, 1):
        print('FAIL: %s exited with %d\n%s' % (' '.join(cmd), r.returncode,
                                              r.stderr.decode(errors='replace')))
        return 1
    if got == want:
        print('PASS: %s' % ' '.join(cmd))
        return 0
    print('FAIL: %s differs from %s' % (' '.join(cmd), expected))
    sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                               'expected', 'tcpstate'))
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
