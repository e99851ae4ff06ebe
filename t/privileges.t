#!/usr/bin/env python3
# privileges.t - started as root with "user nobody [GROUP]", the daemon
# binds, opens its logs and pid file, then runs as that user (uid, gid,
# supplementary groups from /proc/PID/status) and still serves, reloads,
# reopens logs it may write and removes its pid file; an unknown user stops
# the start. Skipped unless run as root.
import grp
import os
import pwd
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

if os.geteuid() != 0:
    skip_all('not running as root')
try:
    nobody = pwd.getpwnam('nobody')
except KeyError:
    skip_all('no user nobody')
set_timeout(60)


def ids(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key in ('Uid', 'Gid', 'Groups'):
                out[key] = [int(x) for x in value.split()]
    return out


# The unprivileged daemon must still read its config and write its logs
# and pid file, as after "make install" (logs and run directories it owns).
os.chmod(testdir(), 0o755)
for sub in ('logs', 'run'):
    os.makedirs(os.path.join(testdir(), sub))
    os.chown(os.path.join(testdir(), sub), nobody.pw_uid, nobody.pw_gid)
origin = Origin()
CONF = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
user %%USER%%
pid_file %%TESTDIR%%/run/portcullis.pid
error_log %%TESTDIR%%/logs/%%NAME%%.error.log info
access_log %%TESTDIR%%/logs/%%NAME%%.access.log squid
'''

d = Daemon(CONF, name='nobody', subst={'USER': 'nobody', 'NAME': 'nobody'}).start()
# It listens (as root) a moment before it switches.
wait_until(lambda: ids(d.pid)['Uid'][0] != 0, 5)
st = ids(d.pid)
is_(st['Uid'], [nobody.pw_uid] * 4, 'user nobody: real, effective, saved and fs uid are nobody')
is_(st['Gid'], [nobody.pw_gid] * 4, "user nobody: every gid is nobody's primary group")
ok(0 not in st['Groups'], "no supplementary group of root's left (%r)" % st['Groups'])
r = curl_via(d.port, origin.url('/as-nobody'))
is_(r.status, 200, 'serves after dropping privileges')
like(d.reload(), r'configuration reloaded', 'SIGHUP: reloads as nobody')
logs = os.path.join(testdir(), 'logs')
os.rename(os.path.join(logs, 'nobody.access.log'), os.path.join(logs, 'nobody.access.log.1'))
mark = d.log_mark('error')
d.reopen_logs()
ok(d.wait_for_log('error', 'reopening log files', since=mark), 'SIGUSR1: reopening logged')
curl_via(d.port, origin.url('/after-reopen'))
ok(d.wait_for_log('access', r'/after-reopen '), 'the reopened access log (created by nobody) gets lines')
unlike(d.error_log(), r'cannot reopen', 'no reopen error')
pid_path = os.path.join(testdir(), 'run', 'portcullis.pid')
is_(open(pid_path).read().strip(), str(d.pid), 'pid file written')
ok(d.stop(), 'graceful stop')
ok(not os.path.exists(pid_path), 'pid file removed by the unprivileged daemon')
d.check_logs()

try:
    nogroup = grp.getgrnam('nogroup')
except KeyError:
    nogroup = None
if nogroup:
    d = Daemon(CONF, name='group', subst={'USER': 'nobody nogroup', 'NAME': 'group'}).start()
    wait_until(lambda: ids(d.pid)['Uid'][0] != 0, 5)
    st = ids(d.pid)
    is_((st['Uid'][1], st['Gid']), (nobody.pw_uid, [nogroup.gr_gid] * 4), 'user nobody nogroup: that group')
    ok(d.stop(), 'graceful stop')
    d.check_logs()
else:
    skip('no group nogroup', 4)

# An unknown user stops the start (before any worker runs).
path = write_file('nosuch.conf', CONF.replace('%%PORT%%', str(free_port()))
                  .replace('%%USER%%', 'no-such-user-here').replace('%%NAME%%', 'nosuch')
                  .replace('%%TESTDIR%%', testdir()))
binary = os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')
p = subprocess.run([binary, '-c', path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=30)
is_(p.returncode, 1, 'unknown user: exit status 1')
like(p.stdout.decode('utf-8', 'replace'), r"user 'no-such-user-here' does not exist",
     'unknown user: says why')
done_testing()
