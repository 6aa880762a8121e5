#!/usr/bin/env python3
"""Judge tcpstate on a recorded real-kernel capture (no root needed).

    check_expect.py TESTDATA/NAME.expect.json TCPSTATE [-v]
    check_expect.py --lint TESTLIST TESTDATA     every recording is listed

NAME.expect.json was written by `tests/kernel/ktest.py --record NAME` from a real run:
the capture NAME.pcap next to it and, for each snapshot, the time "at" and the
sockets `ss -tanH` showed inside the namespace at that moment. For every check,
tcpstate -r NAME.pcap --format json --at AT is judged by exactly the code the kernel
suite uses (tests/kernel/kcompare.py). Exit: 0 pass, 1 fail, 99 broken expectation.
"""

import json
import os
import sys

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'kernel'))

import kcompare  # noqa: E402

FORMAT = 'tcpstate-kernel-expect/1'


def load(path):
    with open(path) as f:
        doc = json.load(f)
    if doc.get('format') != FORMAT:
        raise kcompare.HarnessError('%s: format %r, expected %r'
                                    % (path, doc.get('format'), FORMAT))
    pcap = os.path.join(os.path.dirname(os.path.abspath(path)), doc['pcap'])
    if not os.path.exists(pcap):
        raise kcompare.HarnessError('%s: capture %s is missing' % (path, pcap))
    if not doc.get('checks'):
        raise kcompare.HarnessError('%s: no checks' % path)
    for chk in doc['checks']:
        # The human-readable table in the file must be what the capture + ss give:
        # a hand-edited or stale expectation is caught here, not trusted.
        if 'expected' in chk and chk['expected'] != kcompare.expected_table(pcap, chk):
            raise kcompare.HarnessError(
                '%s: check %r: the recorded "expected" table does not follow from the '
                'capture and the recorded ss sockets (stale or edited file?)'
                % (path, chk['name']))
    return doc, pcap


def lint(testlist, testdata):
    """Every testdata/*.expect.json is listed, every listed file exists."""
    listed, bad = set(), []
    with open(testlist) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith('#'):
                continue
            if len(fields) < 3:
                bad.append('TESTLIST:%d: need "name capture expected [options]"' % n)
                continue
            for fn in fields[1:3]:
                if not os.path.exists(os.path.join(testdata, fn)):
                    bad.append('TESTLIST:%d: %s is not in testdata/' % (n, fn))
            if fields[2].endswith('.expect.json'):
                listed.add(fields[2])
    for fn in sorted(os.listdir(testdata)):
        if fn.endswith('.expect.json') and fn not in listed:
            bad.append('testdata/%s is not listed in tests/e2e/TESTLIST' % fn)
    for b in bad:
        print('FAIL: ' + b)
    if not bad:
        print('PASS: %d recordings listed, all files present' % len(listed))
    return 1 if bad else 0


def main(argv):
    if argv[:1] == ['--lint'] and len(argv) == 3:
        return lint(argv[1], argv[2])
    verbose = '-v' in argv
    args = [a for a in argv if a != '-v']
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2].strip())
        return kcompare.EXIT_ERROR
    expect, tcpstate = args
    try:
        doc, pcap = load(expect)
        if not os.access(tcpstate, os.X_OK):
            raise kcompare.HarnessError('tcpstate not executable: %s' % tcpstate)
        print('%s: %s' % (doc['scenario'], doc.get('description', '')))
        for n in doc.get('notes', []):
            print('note: %s' % n)
        return kcompare.check(tcpstate, pcap, doc['checks'], doc['scenario'],
                              verbose=verbose)
    except kcompare.HarnessError as e:
        print('ERROR (expectation, not a tcpstate verdict): %s' % e)
        return kcompare.EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
