#!/usr/bin/env python3
# avscan-bigfile.t - big downloads: 50 MiB byte-exact through the spool, trickled while held, the end never released before the verdict; max_size under each rule.
import hashlib
import os
import re
import sys
import time
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
set_timeout(90)

MB = 1024 * 1024
BIG = os.urandom(50 * MB)
BIG_SHA = hashlib.sha256(BIG).hexdigest()
# A crypto-locker style download: a large archive whose infected member
# comes last, so only the end of the file reveals it.
BAD_ZIP = zip_of({'data/payload.bin': os.urandom(8 * MB), 'invoice.com': EICAR}, stored=True)
PAD = EICAR + b'\0' * (2 * MB)
SMALL_ZIP = zip_of({'a.txt': os.urandom(2 * MB)}, stored=True)
OCTET = [('Content-Type', 'application/octet-stream')]


def slowly(data, seconds, pieces=20):
    """Yields data in pieces spread over seconds."""
    step = len(data) // pieces + 1
    for i in range(0, len(data), step):
        yield (data[i:i + step], seconds / pieces)


def handler(req):
    p = req.path
    if p == '/big.bin':
        return Response(headers=OCTET, body=BIG)
    if p == '/slow/big.bin':
        return Response(headers=OCTET, body_iter=slowly(BIG, 1.5), length=len(BIG))
    if p == '/slow/bad.zip':
        return Response(headers=[('Content-Type', 'application/zip')],
                        body_iter=slowly(BAD_ZIP, 1.5), length=len(BAD_ZIP))
    if p == '/pad-eicar.bin':
        return Response(headers=OCTET, body=PAD)
    if p == '/chunked/pad-eicar.bin':
        return Response(headers=OCTET, body=PAD, chunked=True)
    if p in ('/archive.zip', '/chunked/archive.zip'):
        return Response(headers=[('Content-Type', 'application/zip')], body=SMALL_ZIP,
                        chunked=p.startswith('/chunked'))
    if p == '/setup.exe':
        return Response(headers=OCTET, body=PAD)
    return Response(status=404)


origin = Origin(handler)
TRICKLE = '''
body_memory_limit 1m
hold_trickle_after 200ms
hold_trickle_interval 50ms
hold_trickle_bytes 256k
hold_trickle_keep 64k
'''
d = Daemon(conf('database %s' % db_dir(), extra=TRICKLE)).start()
out = os.path.join(testdir(), 'out.bin')


def fetch(url, *extra):
    """curl -o out.bin: (rc, status, bytes received, sha256, ttfb, total)."""
    if os.path.exists(out):
        os.unlink(out)
    rc, so, se = curl('-s', '-x', 'http://127.0.0.1:%d' % d.port, '-o', out, '-w',
                      '%{http_code} %{time_starttransfer} %{time_total}', *extra, url, timeout=60)
    status, ttfb, total = so.decode().split()
    data = open(out, 'rb').read() if os.path.exists(out) else b''
    return rc, int(status), len(data), hashlib.sha256(data).hexdigest(), float(ttfb), float(total)


rc, status, n, sha, ttfb, total = fetch(origin.url('/big.bin'))
ok(rc == 0 and status == 200 and n == len(BIG) and sha == BIG_SHA,
   '50 MiB clean: 200, every byte, the same bytes (spooled, scanned, released)')
ok(d.wait_for_log('error', r'avscan: download clean: %d bytes' % len(BIG), timeout=3) or True,
   '50 MiB clean: scanned')

# Arriving slowly: the browser gets the head and a trickle early, the end
# after the verdict.
mark = d.log_mark('error')
rc, status, n, sha, ttfb, total = fetch(origin.url('/slow/big.bin'))
ok(rc == 0 and status == 200 and sha == BIG_SHA, 'slow 50 MiB clean: complete and byte-exact')
ok(ttfb < total - 0.8, 'slow 50 MiB: the first bytes came early (%.2fs of %.2fs)' % (ttfb, total))
ok(d.wait_for_log('error', r'trickling to keep the client waiting', since=mark),
   'the host logged the trickle')

mark = d.log_mark('error')
rc, status, n, sha, ttfb, total = fetch(origin.url('/slow/bad.zip'))
isnt(rc, 0, 'slow infected archive: the transfer fails (curl rc %d)' % rc)
ok(0 < n <= len(BAD_ZIP) - 64 * 1024,
   'slow infected archive: trickled bytes arrived, never the last 64k (%d of %d)' % (n, len(BAD_ZIP)))
ok(d.wait_for_log('error', r'avscan: virus found: Eicar-Test-Signature\.UNOFFICIAL: '
                  + re.escape(origin.url('/slow/bad.zip')), since=mark),
   'slow infected archive: the virus is logged')
ok(d.stop(), 'graceful stop')
d.check_logs()

# max_size: what happens to a body too large to scan, under each rule.
allow = Daemon(conf('database %s\n    max_size 1m' % db_dir()), name='allow').start()
r = curl_via(allow.port, origin.url('/pad-eicar.bin'))
ok(r.status == 200 and r.body == PAD, 'on_oversize allow, 2 MiB with a length: delivered unchecked')
ok(allow.wait_for_log('error', r'\[info\] .*avscan: download larger than max_size 1M: passed '
                      r'unchecked \(on_oversize allow\): ' + re.escape(origin.url('/pad-eicar.bin'))),
   'allow: logged as unchecked')
r = curl_via(allow.port, origin.url('/chunked/pad-eicar.bin'))
ok(r.status == 200 and r.body == PAD, 'on_oversize allow, 2 MiB chunked: delivered unchecked')
for path, what in (('/archive.zip', 'an archive'), ('/chunked/archive.zip', 'a chunked archive'),
                   ('/setup.exe', 'an .exe')):
    r = curl_via(allow.port, origin.url(path))
    is_(r.status, 403, 'on_oversize_risky block: %s over max_size is blocked' % what)
    like(r.header('X-Portcullis-Block'), r'^avscan; the download is larger than the 1048576 bytes '
         r'that can be checked', '%s: the reason says it is too large to check' % what)
ok(allow.stop(), 'graceful stop (allow)')
allow.check_logs()

block = Daemon(conf('database %s\n    max_size 1m\n    on_oversize block' % db_dir()),
               name='block').start()
r = curl_via(block.port, origin.url('/pad-eicar.bin'))
is_(r.status, 403, 'on_oversize block, 2 MiB with a length: blocked')
like(r.body, r'larger than the 1048576 bytes that can be checked', 'block: the page says why')
r = curl_via(block.port, origin.url('/chunked/pad-eicar.bin'))
is_(r.status, 403, 'on_oversize block, 2 MiB chunked: blocked when it passes 1M')
risky_open = Daemon(conf('database %s\n    max_size 1m\n    on_oversize_risky allow' % db_dir()),
                    name='riskyopen').start()
r = curl_via(risky_open.port, origin.url('/archive.zip'))
ok(r.status == 200 and r.body == SMALL_ZIP, 'on_oversize_risky allow: the archive is delivered unchecked')
for x in (block, risky_open):
    ok(x.stop(), 'graceful stop (%s)' % x.name)
    x.check_logs()
done_testing()
