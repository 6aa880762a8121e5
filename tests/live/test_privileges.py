#!/usr/bin/env python3
"""Live capture: -Z, the root warning, -D, and the errors of opening a capture.

    test_privileges.py TCPSTATE

- `-Z nobody`: while it runs, /proc/PID/status shows nobody's uid in all four Uid
  fields (real, effective, saved, filesystem) and the same for Gid; the capture still
  works (a connection made after the drop is counted in a tick and listed in the final
  report); no "running as root" warning; SIGINT still ends it with exit 0.
- Without -Z: stderr warns that it runs as root.
- `-Z` with an unknown user: exit 1 with a message naming the user.
- `-D`: exit 0 and lists lo.
- A bad filter expression: exit 2 with a message about the filter, nothing on stdout.
- A non-existent interface: exit 1 with a message naming it, nothing on stdout.
"""

import grp
import pwd
import signal
import sys
import time

from livelib import LiveEnv, check, main


def test():
    with LiveEnv('priv') as env:
        nobody = pwd.getpwnam('nobody')
        a = env.actor
        lsock = a.listen(8080)

        # -Z nobody, and a run without -Z next to it.
        z = env.tcpstate('-Z', 'nobody', '--format', 'json', '--interval', '0.5')
        root = env.tcpstate('--format', 'json', '--interval', '0.5')
        uid = z.proc_status('Uid')
        gid = z.proc_status('Gid')
        check(uid == [str(nobody.pw_uid)] * 4,
              '-Z nobody: /proc/%d/status Uid is %s, expected %d in all four fields'
              % (z.pid, uid, nobody.pw_uid))
        check(gid == [str(nobody.pw_gid)] * 4,
              '-Z nobody: /proc/%d/status Gid is %s, expected %d in all four fields'
              % (z.pid, gid, nobody.pw_gid))
        groups = z.proc_status('Groups') or []
        want_groups = {str(g.gr_gid) for g in grp.getgrall() if 'nobody' in g.gr_mem}
        want_groups.add(str(nobody.pw_gid))
        check(set(groups) <= want_groups and '0' not in groups,
              '-Z nobody: supplementary groups %s (root\'s kept?)' % groups)
        check('running as root' not in z.stderr_text(),
              '-Z nobody still warns about root:\n' + z.describe())
        check('running as root' in root.stderr_text() and 'warning' in root.stderr_text(),
              'no warning about running as root without -Z:\n' + root.describe())

        # The capture still works after the drop: one connection, made now.
        t_conn = time.time()
        c, s = a.pair('127.0.0.2', lsock)
        a.exchange(c, s)
        cport = c.getsockname()[1]
        z.wait_for(lambda t: any(r['states']['client']['ESTABLISHED'] >= 1 and r['packets'] > 0
                                 for _, r in t.ticks(since=t_conn)),
                   5, 'a tick counting the connection made after -Z')
        check(z.proc_status('Uid') == [str(nobody.pw_uid)] * 4, 'uid changed while running')
        z.signal(signal.SIGINT)
        rc = z.wait_exit(5)
        check(rc == 0, '-Z nobody: exit status %d after SIGINT\n%s' % (rc, z.describe()))
        recs = [r for _, r in z.records()]
        check(recs and recs[-1].get('type') == 'summary',
              '-Z nobody: the last record is not the summary\n' + z.describe())
        conns = [r for r in recs if r.get('type') == 'connection'
                 and r['client']['port'] == cport]
        check(len(conns) == 1 and conns[0]['client']['state'] == 'ESTABLISHED'
              and conns[0]['server']['state'] == 'ESTABLISHED',
              '-Z nobody: the final report does not list 127.0.0.2:%d ESTABLISHED\n%s'
              % (cport, z.describe()))
        root.signal(signal.SIGINT)
        check(root.wait_exit(5) == 0, 'exit status after SIGINT is not 0')

        # -Z with a user that does not exist.
        rc, out, err = env.run('-i', 'lo', '-Z', 'no-such-user-tcpst', '--duration', '1')
        check(rc == 1 and 'no-such-user-tcpst' in err,
              '-Z unknown user: exit %d, stderr %r (expected 1 and a message)' % (rc, err))

        # -D lists the namespace's interfaces: lo.
        rc, out, err = env.run('-D')
        check(rc == 0, '-D: exit status %d, stderr %r' % (rc, err))
        names = [l.split('.', 1)[1].split()[0] for l in out.splitlines() if '.' in l]
        check('lo' in names, '-D does not list lo:\n' + out)

        # A bad filter: usage error.
        rc, out, err = env.run('-i', 'lo', '--duration', '1', 'tcp', 'and', 'and')
        check(rc == 2, 'bad filter: exit status %d (expected 2), stderr %r' % (rc, err))
        check('filter' in err and err.startswith('tcpstate:'),
              'bad filter: no message about the filter: %r' % err)
        check(out == '', 'bad filter: something on stdout: %r' % out[:200])

        # An interface that does not exist.
        rc, out, err = env.run('-i', 'nosuchif0', '--duration', '1')
        check(rc == 1, 'no such interface: exit status %d (expected 1), stderr %r' % (rc, err))
        check('nosuchif0' in err and err.startswith('tcpstate:'),
              'no such interface: message does not name it: %r' % err)
        check(out == '', 'no such interface: something on stdout: %r' % out[:200])
        c.close()
        s.close()


if __name__ == '__main__':
    sys.exit(main(test))
