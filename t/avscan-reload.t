#!/usr/bin/env python3
# avscan-reload.t - signatures dropped into the database directory take effect without a restart; a bad database keeps the old engine; SIGHUP and ctl.
import os
import re
import subprocess
import sys
import time
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
set_timeout(60)

MARKER = b'PORTCULLIS-RELOAD-TEST-MARKER-0123456789'
origin = Origin(lambda req: Response(headers=[('Content-Type', 'application/octet-stream')],
                                     body={'/marker.bin': MARKER, '/eicar.com': EICAR}.get(req.path, b'x')))
db = db_dir(sigs=True)
sock = os.path.join(testdir(), 'ctl.sock')
TEMPLATE = 'database ' + db + '''
    check_interval 300ms
    %%MAXFILES%%'''
d = Daemon(conf(TEMPLATE, extra='control_socket %s' % sock),
           subst={'MAXFILES': ''}).start()


def status(path):
    return curl_via(d.port, origin.url(path)).status


def ctl(*args):
    p = subprocess.run([d.binary, 'ctl', '-s', sock] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return p.returncode, p.stdout.decode()


ok(d.wait_for_log('error', r'avscan: signatures loaded: 2 signatures'), 'started with 2 signatures')
unlike(d.error_log(), r'NO CLAMAV DATABASES', 'a database directory with signatures: no test-only warning')
is_(status('/marker.bin'), 200, 'before: the marker file is clean')
is_(status('/eicar.com'), 403, 'before: EICAR blocked')

# freshclam (or an admin) adds a database file.
mark = d.log_mark('error')
write_file('db/reload.ndb', 'Portcullis.Test.Reload:0:*:%s\n' % MARKER.hex())
line = d.wait_for_log('error', r'\[notice\] .*avscan: signatures reloaded: 3 signatures in \d+ ms',
                      since=mark)
ok(line, 'the change is noticed and a new engine loaded, with its signature count and load time')
ok(d.wait_for_log('error', r'\[info\] .*avscan: database change detected: reloading', since=mark),
   'the reload says why')
r = curl_via(d.port, origin.url('/marker.bin'))
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'avscan; virus found: Portcullis.Test.Reload.UNOFFICIAL'),
    'after: the new signature blocks, without a restart')
is_(status('/eicar.com'), 403, 'after: the old signatures still block')

# A database that does not load keeps the engine in force.
mark = d.log_mark('error')
write_file('db/broken.ndb', 'this is not a signature\n')
ok(d.wait_for_log('error', r'\[error\] .*avscan: signature reload failed, keeping the engine in force '
                  r'\(3 signatures\): cannot load the signatures in %s: Malformed database' % re.escape(db),
                  since=mark), 'a broken database: reload failed, logged')
like(d.error_log()[mark:], r'libclamav: Can.t load %s/broken\.ndb' % re.escape(db),
     "libclamav's own message names the file")
time.sleep(1.0)  # three more check intervals
is_(len(re.findall(r'signature reload failed', d.error_log()[mark:])), 1,
    'the same failure is not retried every interval')
is_(status('/marker.bin'), 403, 'broken database: the engine in force still scans')
# Fixed in place (same file, same second): noticed all the same.
mark = d.log_mark('error')
write_file('db/broken.ndb', 'Portcullis.Test.Fixed:0:0:%s\n' % b'FIXED-MARKER'.hex())
ok(d.wait_for_log('error', r'avscan: signatures reloaded: 4 signatures', since=mark),
   'the broken file fixed in place: reloaded')

# The control command.
rc, out = ctl('avscan')
is_(rc, 0, 'ctl avscan: exit 0')
like(out, r'engine: ClamAV [\d.]+, 4 signatures from %s' % re.escape(db), 'ctl avscan: the engine')
like(out, r'scans: \d+, clean: \d+, infected: [1-9]', 'ctl avscan: counters')
like(out, r'reloads: 2 \(last ', 'ctl avscan: reloads counted')
mark = d.log_mark('error')
rc, out = ctl('avscan', 'reload')
ok(rc == 0 and 'reload started' in out, 'ctl avscan reload: started')
ok(d.wait_for_log('error', r'avscan: reload asked for: reloading', since=mark) and
   d.wait_for_log('error', r'avscan: signatures reloaded: 4 signatures', since=mark),
   'ctl avscan reload: the signatures are reloaded even when unchanged')

# SIGHUP: settings that do not touch the engine keep it; others rebuild it.
mark = d.log_mark('error')
ok(d.reload(), 'SIGHUP with the same configuration')
unlike(d.error_log()[mark:], r'new engine in force', 'unchanged database settings: the engine is kept')
d.subst['MAXFILES'] = 'max_files 5000'
d.write_conf(d.template)
mark = d.log_mark('error')
ok(d.reload(), 'SIGHUP with max_files changed')
ok(d.wait_for_log('error', r'avscan: configuration reloaded, new engine in force: 4 signatures',
                  since=mark), 'a changed limit: a new engine')
is_(status('/marker.bin'), 403, 'and it scans with the same signatures')
ok(d.stop(), 'graceful stop')
d.check_logs()

# A first run before freshclam: the test signatures, loudly; then the
# real databases arrive and take over.
db2 = db_dir('db2')
d2 = Daemon(conf('database %s\n    check_interval 300ms' % db2), name='fresh').start()
ok(d2.wait_for_log('error', r'\[warn\] .*avscan: NO CLAMAV DATABASES in %s: only the Portcullis TEST'
                   % re.escape(db2)), 'empty database directory: a loud warning')
is_(curl_via(d2.port, origin.url('/eicar.com')).status, 403, 'test signatures: EICAR blocked')
mark = d2.log_mark('error')
write_file('db2/local.ndb', 'Portcullis.Test.Reload:0:*:%s\n' % MARKER.hex())
ok(d2.wait_for_log('error', r'avscan: signatures reloaded: 1 signatures .* from %s'
                   % re.escape(db2), since=mark), 'the new databases are picked up')
unlike(d2.error_log()[mark:], r'NO CLAMAV DATABASES', 'no warning any more')
is_(curl_via(d2.port, origin.url('/marker.bin')).status, 403, 'the new database blocks')
is_(curl_via(d2.port, origin.url('/eicar.com')).status, 200,
    'and the test signatures are gone (EICAR is not in that database)')
ok(d2.stop(), 'graceful stop (fresh)')
d2.check_logs()
done_testing()
