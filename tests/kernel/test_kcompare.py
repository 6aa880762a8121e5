#!/usr/bin/env python3
"""Self-test of the judge (kcompare): hand-written captures and fake tcpstate output.

The kernel and e2e suites are only as good as the code that compares; this checks it
passes a correct answer and catches every kind of wrong one. No root, no tcpstate.
"""

import io
import json
import os
import stat
import struct
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kcompare as K  # noqa: E402

T0 = 1700000000.0
C, S = ('127.0.0.2', 40000), ('127.0.0.1', 8080)


def tcp_frame(src, dst, flags, seq=0, ack=0, payload=b'', win=512):
    """Ethernet + IPv4 + TCP (no options), addresses as (ip, port)."""
    fl = {'F': 1, 'S': 2, 'R': 4, 'P': 8, 'A': 16}
    f = sum(fl[c] for c in flags)
    tcp = struct.pack('!HHIIBBHHH', src[1], dst[1], seq, ack, 5 << 4, f, win, 0, 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     bytes(map(int, src[0].split('.'))), bytes(map(int, dst[0].split('.'))))
    return b'\0' * 12 + b'\x08\x00' + ip + tcp


def write_pcap(path, packets):
    """PACKETS: [(ts, frame)]; classic pcap, µs, Ethernet."""
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in packets:
            sec = int(ts)
            f.write(struct.pack('<IIII', sec, int(round((ts - sec) * 1e6)), len(fr), len(fr)))
            f.write(fr)


def close_client_first(t, c=C, s=S, isn_c=1000, isn_s=5000):
    """A full connection closed by the client, starting at time t."""
    return [
        (t + 0.000, tcp_frame(c, s, 'S', isn_c)),
        (t + 0.001, tcp_frame(s, c, 'SA', isn_s, isn_c + 1)),
        (t + 0.002, tcp_frame(c, s, 'A', isn_c + 1, isn_s + 1)),
        (t + 0.003, tcp_frame(c, s, 'FA', isn_c + 1, isn_s + 1)),
        (t + 0.004, tcp_frame(s, c, 'FA', isn_s + 1, isn_c + 2)),
        (t + 0.005, tcp_frame(c, s, 'A', isn_c + 2, isn_s + 2)),
    ]


def rec(cid, client, server, cstate, sstate, start, **extra):
    r = {'type': 'connection', 'id': cid,
         'client': {'addr': client[0], 'port': client[1], 'state': cstate},
         'server': {'addr': server[0], 'port': server[1], 'state': sstate},
         'start': start, 'end': start + 0.005, 'packets': [3, 3], 'bytes': [0, 0],
         'flags': [], 'timeline': []}
    r.update(extra)
    return r


def sock(state, local, peer):
    return {'state': state, 'local': '%s:%d' % local, 'peer': '%s:%d' % peer}


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='kcompare-test-')
        self.pcap = os.path.join(self.dir, 't.pcap')

    def tearDown(self):
        for fn in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, fn))
        os.rmdir(self.dir)


class TestParsers(Base):
    def test_ss(self):
        text = ('LISTEN 0 16 127.0.0.1:8080 0.0.0.0:*\n'
                'ESTAB 0 0 127.0.0.2:40000 127.0.0.1:8080\n'
                'TIME-WAIT 0 0 [::1]:80 [::1]:5555\n'
                'SYN-RECV 0 0 127.0.0.1:8080 127.0.0.3:1\n'
                'UNCONN 0 0 127.0.0.9:7 0.0.0.0:*\n')
        got = K.parse_ss(text)
        self.assertEqual([(x['state'], x['local'], x['peer']) for x in got], [
            ('ESTABLISHED', '127.0.0.2:40000', '127.0.0.1:8080'),
            ('TIME_WAIT', '[::1]:80', '[::1]:5555'),
            ('SYN_RECEIVED', '127.0.0.1:8080', '127.0.0.3:1')])

    def test_ss_unknown_state_is_an_error(self):
        with self.assertRaises(K.HarnessError):
            K.parse_ss('NEW-SYN-RECV 0 0 127.0.0.1:1 127.0.0.2:2\n')

    def test_pcap_and_incarnations(self):
        pk = close_client_first(T0)
        pk += [(T0 + 0.1, tcp_frame(C, S, 'S', 9000))]              # new ISN: reuse
        pk += [(T0 + 0.2, tcp_frame(C, S, 'S', 9000))]              # retransmission
        pk += [(T0 + 0.3, tcp_frame(('127.0.0.3', 1), S, 'A', 1, 1))]  # mid-stream
        write_pcap(self.pcap, pk)
        w = K.wire_connections(self.pcap)
        self.assertEqual(w[K.canon(K.endpoint(*C), K.endpoint(*S))].incarnations, 2)
        self.assertEqual(w[K.canon(K.endpoint('127.0.0.3', 1), K.endpoint(*S))]
                         .incarnations, 1)
        w = K.wire_connections(self.pcap, at=T0 + 0.05)
        self.assertEqual(len(w), 1)
        self.assertEqual(next(iter(w.values())).incarnations, 1)

    def test_simultaneous_open_is_one_incarnation(self):
        a, b = ('127.0.0.2', 5001), ('127.0.0.3', 5002)
        write_pcap(self.pcap, [(T0, tcp_frame(a, b, 'S', 10)), (T0, tcp_frame(b, a, 'S', 20)),
                               (T0 + 1, tcp_frame(a, b, 'SA', 10, 21)),
                               (T0 + 1, tcp_frame(b, a, 'SA', 20, 11))])
        self.assertEqual(next(iter(K.wire_connections(self.pcap).values())).incarnations, 1)


class TestCompare(Base):
    def setUp(self):
        super().setUp()
        write_pcap(self.pcap, close_client_first(T0))
        self.at = T0 + 1
        self.truth = [sock('TIME_WAIT', C, S)]

    def test_correct_answer_passes(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0),
                         {'type': 'summary', 'connections': 1}, {'type': 'future-thing'}])
        self.assertTrue(res.ok, [r.got for r in res.rows] + res.problems)
        self.assertEqual(len(res.rows), 2)

    def test_wrong_state_fails_with_a_row(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'FIN_WAIT_2', 'CLOSED', T0)])
        self.assertFalse(res.ok)
        bad = [r for r in res.rows if not r.ok]
        self.assertEqual([(K.fmt_ep(r.ep), r.expected, r.got) for r in bad],
                         [('127.0.0.2:40000', 'TIME_WAIT', 'FIN_WAIT_2')])
        out = io.StringIO()
        K.print_table(res, out)
        self.assertIn('MISMATCH', out.getvalue())

    def test_no_socket_means_closed(self):
        res = K.compare(self.pcap, self.at, [],
                        [rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0)])
        self.assertFalse(res.ok)

    def test_swapped_roles_are_judged_per_endpoint(self):
        # tcpstate calls the server the client: states still belong to endpoints.
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, S, C, 'CLOSED', 'TIME_WAIT', T0)])
        self.assertTrue(res.ok)

    def test_missing_connection(self):
        res = K.compare(self.pcap, self.at, self.truth, [])
        self.assertFalse(res.ok)
        self.assertIn('no connection record', res.problems[0])

    def test_phantom_connection(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0),
                         rec(2, ('127.0.0.9', 1), S, 'CLOSED', 'CLOSED', T0)])
        self.assertFalse(res.ok)
        self.assertIn('no TCP packet', res.problems[0])

    def test_records_after_at_are_ignored(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0),
                         rec(2, C, S, 'SYN_SENT', 'CLOSED', self.at + 5)])
        self.assertTrue(res.ok)

    def test_socket_missing_from_capture_is_a_harness_error(self):
        with self.assertRaises(K.HarnessError):
            K.compare(self.pcap, self.at, [sock('ESTABLISHED', ('127.0.0.7', 1), S)], [])

    def test_malformed_record_is_a_tool_failure(self):
        with self.assertRaises(K.ToolFailure):
            K.compare(self.pcap, self.at, self.truth,
                      [{'type': 'connection', 'client': {}, 'start': T0}])


class TestIncarnations(Base):
    def setUp(self):
        super().setUp()
        pk = close_client_first(T0) + close_client_first(T0 + 2, isn_c=90000, isn_s=7000)
        pk = pk[:-3]            # second incarnation stays established
        write_pcap(self.pcap, pk)
        self.at = T0 + 3
        self.truth = [sock('ESTABLISHED', C, S), sock('ESTABLISHED', S, C)]

    def test_latest_gets_ss_earlier_closed(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(2, C, S, 'ESTABLISHED', 'ESTABLISHED', T0 + 2),
                         rec(1, C, S, 'CLOSED', 'CLOSED', T0)])
        self.assertTrue(res.ok, res.problems)

    def test_earlier_not_closed_fails(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0),
                         rec(2, C, S, 'ESTABLISHED', 'ESTABLISHED', T0 + 2)])
        self.assertFalse(res.ok)
        self.assertEqual([(r.inc, r.why) for r in res.rows if not r.ok],
                         [(0, 'earlier incarnation')])

    def test_merged_incarnations_fail(self):
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'ESTABLISHED', 'ESTABLISHED', T0)])
        self.assertFalse(res.ok)
        self.assertIn('2 incarnation(s)', res.problems[0])

    def test_override(self):
        ovr = [{'local': '127.0.0.2:40000', 'peer': '127.0.0.1:8080', 'incarnation': 0,
                'state': 'TIME_WAIT'}]
        res = K.compare(self.pcap, self.at, self.truth,
                        [rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0),
                         rec(2, C, S, 'ESTABLISHED', 'ESTABLISHED', T0 + 2)], ovr)
        self.assertTrue(res.ok, res.problems)


class TestCheckWithFakeTool(Base):
    """kcompare.check() end to end with a fake tcpstate executable."""

    def fake(self, output, code=0, stderr=''):
        out = os.path.join(self.dir, 'out.jsonl')
        with open(out, 'w') as f:
            f.write(output)
        prog = os.path.join(self.dir, 'tcpstate')
        with open(prog, 'w') as f:
            f.write('#!%s\nimport sys\nargs = sys.argv[1:]\n'
                    'assert args[0] == "-r" and args[2:5] == ["--format", "json", "--at"], args\n'
                    'float(args[5])\n'
                    'sys.stdout.write(open(%r).read())\nsys.stderr.write(%r)\nsys.exit(%d)\n'
                    % (sys.executable, out, stderr, code))
        os.chmod(prog, os.stat(prog).st_mode | stat.S_IEXEC)
        return prog

    def run_check(self, prog):
        write_pcap(self.pcap, close_client_first(T0))
        out = io.StringIO()
        code = K.check(prog, self.pcap, [{'name': 'final', 'at': T0 + 1,
                                          'sockets': [sock('TIME_WAIT', C, S)]}],
                       'fake', out=out)
        return code, out.getvalue()

    def test_pass(self):
        line = json.dumps(rec(1, C, S, 'TIME_WAIT', 'CLOSED', T0)) + '\n'
        code, out = self.run_check(self.fake(line + '{"type":"summary"}\n'))
        self.assertEqual(code, K.EXIT_PASS, out)

    def test_mismatch_prints_table_and_evidence(self):
        line = json.dumps(rec(1, C, S, 'ESTABLISHED', 'CLOSED', T0,
                              timeline=[{'ts': T0, 'side': 'client', 'from': 'CLOSED',
                                         'to': 'SYN_SENT', 'packet': 1,
                                         'tcp_flags': 'S'}])) + '\n'
        code, out = self.run_check(self.fake(line))
        self.assertEqual(code, K.EXIT_FAIL)
        self.assertIn('MISMATCH', out)
        self.assertIn('127.0.0.2:40000', out)
        self.assertIn('SYN_SENT', out)          # timeline shown
        self.assertIn('FA', out)                # packets shown

    def test_crash_is_a_failure(self):
        code, out = self.run_check(self.fake('', code=134, stderr='Aborted'))
        self.assertEqual(code, K.EXIT_FAIL)
        self.assertIn('exited with 134', out)

    def test_bad_json_is_a_failure(self):
        code, out = self.run_check(self.fake('{"type": "connection", oops\n'))
        self.assertEqual(code, K.EXIT_FAIL)
        self.assertIn('not JSON', out)


if __name__ == '__main__':
    unittest.main(verbosity=1)
