#!/usr/bin/env python3
# avscan-timeout.t - a scan that hits its deadline follows on_error: blocked (the default) or delivered unchecked, and logged either way.
import hashlib
import os
import re
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
set_timeout(60)

# 50 MiB take libclamav far longer than 20 ms, on any machine, while EICAR
# takes far less. Under valgrind (PCTEST_VALGRIND) everything is 20 to 50
# times slower: 500 ms keep both true.
DEADLINE_MS = 500 if VALGRIND else 20
BIG = os.urandom(50 * 1024 * 1024)
origin = Origin(lambda req: Response(headers=[('Content-Type', 'application/octet-stream')],
                                     body=BIG if req.path == '/big.bin' else EICAR))
TIMEOUT_RE = (r'the download could not be checked for viruses: (the scan did not finish within '
              r'its %d ms deadline|' % DEADLINE_MS + r'the scan reached scan_timeout)')

sock = os.path.join(testdir(), 'ctl.sock')
d = Daemon(conf('database %s\n    scan_timeout %dms' % (db_dir(), DEADLINE_MS),
                extra='control_socket %s' % sock)).start()


def idle():
    """The timed-out scan still occupies its thread until libclamav
    returns (its result is thrown away); wait for that."""
    p = subprocess.run([d.binary, 'ctl', '-s', sock, 'avscan'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return re.search(r'running: 0, queued: 0', p.stdout.decode())

r = curl_via(d.port, origin.url('/big.bin'))
is_(r.status, 403, 'on_error block (default): a scan past scan_timeout is blocked')
like(r.header('X-Portcullis-Block'), '^avscan; ' + TIMEOUT_RE, 'the reason says the check did not finish')
like(r.body, r'<dt>Category</dt><dd>unchecked</dd>', 'block page: category unchecked')
ok(d.wait_for_log('error', r'\[warn\] .*avscan: download not checked \(.*\): blocked by on_error: '
                  + re.escape(origin.url('/big.bin'))), 'logged: not checked, blocked by on_error')
ok(wait_until(idle, 20), 'the abandoned scan ends (ctl avscan: running 0)')
r = curl_via(d.port, origin.url('/eicar.com'))
is_(r.status, 403, 'small files still scan in time: EICAR blocked')
like(r.header('X-Portcullis-Block'), 'virus found: Eicar', '... as a virus')
ok(d.stop(), 'graceful stop')
d.check_logs()

d2 = Daemon(conf('database %s\n    scan_timeout %dms\n    on_error allow' % (db_dir(), DEADLINE_MS)),
            name='allow').start()
r = curl_via(d2.port, origin.url('/big.bin'))
ok(r.status == 200 and hashlib.sha256(r.body).digest() == hashlib.sha256(BIG).digest(),
   'on_error allow: the download is delivered, byte-exact')
ok(d2.wait_for_log('error', r'\[warn\] .*avscan: download not checked \(.*\): passed by on_error '
                   r'allow: ' + re.escape(origin.url('/big.bin'))), 'logged: passed by on_error allow')
like(access_entry(d2, origin.url('/big.bin')), r'TCP_MISS/200', 'access log: 200')
ok(d2.stop(), 'graceful stop (allow)')
d2.check_logs()
done_testing()
