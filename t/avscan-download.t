#!/usr/bin/env python3
# avscan-download.t - downloads scanned with libclamav: EICAR plain, zipped, nested, gzip/deflate-encoded, chunked; the block page names the virus.
import hashlib
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan(scanuser=True)
set_timeout(60)

CLEAN = b'<html><body>' + b'nothing to see here\n' * 2000 + b'</body></html>\n'
OCTET = [('Content-Type', 'application/octet-stream')]
FILES = {
    '/eicar.com': (OCTET, EICAR),
    '/eicar.zip': ([('Content-Type', 'application/zip')], zip_of({'eicar.com': EICAR})),
    '/nested.zip': (OCTET, zip_of({'docs/inner.zip': zip_of({'readme.txt': b'hi', 'eicar.com': EICAR})})),
    '/gzip/eicar.com': (OCTET + [('Content-Encoding', 'gzip')], gzip_of(EICAR)),
    '/deflate/eicar.com': (OCTET + [('Content-Encoding', 'deflate')], deflate_of(EICAR)),
    '/rawdeflate/eicar.com': (OCTET + [('Content-Encoding', 'deflate')], deflate_of(EICAR, raw=True)),
    '/gzip/clean.html': ([('Content-Type', 'text/html'), ('Content-Encoding', 'gzip')], gzip_of(CLEAN)),
    '/clean.html': ([('Content-Type', 'text/html')], CLEAN),
    '/brotli/page.html': ([('Content-Type', 'text/html'), ('Content-Encoding', 'br')], b'\x1b\x00\x00'),
    '/media/movie.mp4': ([('Content-Type', 'video/mp4')], EICAR),
    '/media/movie.exe': ([('Content-Type', 'video/mp4')], EICAR),
    '/download': (OCTET + [('Content-Disposition', 'attachment; filename="report.exe"')], EICAR),
}


def handler(req):
    path = req.path.split('?')[0]
    if path.startswith('/chunked/'):
        return Response(headers=OCTET, body=FILES['/' + path.split('/', 2)[2]][1], chunked=True)
    if path.startswith('/close/'):
        return Response(headers=OCTET, body=FILES['/' + path.split('/', 2)[2]][1], length='none')
    if path == '/not-modified':
        return Response(status=304, headers=[('ETag', '"x"')])
    headers, body = FILES.get(path, (OCTET, b'missing\n'))
    return Response(headers=headers, body=body)


origin = Origin(handler)
events = os.path.join(testdir(), 'events')
db = db_dir()
d = Daemon(conf('database %s' % db, scanuser='event_file %s' % events)).start()


def blocked(path, name='Eicar-Test-Signature.UNOFFICIAL', what=None, *args):
    url = origin.url(path)
    r = curl_via(d.port, url, *args)
    what = what or path
    is_((r.status, r.header('X-Portcullis-Block')), (403, 'avscan; virus found: ' + name),
        '%s: 403, X-Portcullis-Block names the virus' % what)
    like(r.body, r'<dt>Reason</dt><dd>virus found: %s</dd>' % re.escape(name),
         '%s: the block page names the virus' % what)
    return r


r = blocked('/eicar.com', what='EICAR plain')
like(r.body, r'<dt>Category</dt><dd>virus</dd>', 'block page: category virus')
like(r.body, re.escape(origin.url('/eicar.com')), 'block page: the URL')
ok(d.wait_for_log('error', r'\[warn\] .*avscan: virus found: Eicar-Test-Signature\.UNOFFICIAL: '
                  + re.escape(origin.url('/eicar.com')) + r', client 127\.0\.0\.1, 68 bytes'),
   'error log: virus, URL, client and size')
ok(wait_until(lambda: re.search(r'TCP_DENIED/403 \d+ GET ' + re.escape(origin.url('/eicar.com')),
                                '\n'.join(d.access_log())), 3),
   'access log: TCP_DENIED/403')
ok(wait_until(lambda: os.path.exists(events) and origin.url('/eicar.com') in open(events).read(), 3),
   'the av.infected event was published')
like(open(events).read() if os.path.exists(events) else '',
     r'av\.infected client=127\.0\.0\.1 subject=%s detail=Eicar-Test-Signature\.UNOFFICIAL '
     r'value=1 plugin=avscan' % re.escape(origin.url('/eicar.com')),
     'event: client, URL and virus name (value 1: a download)')

blocked('/eicar.zip', what='EICAR zipped')
blocked('/nested.zip', what='EICAR in a zip in a zip')
blocked('/gzip/eicar.com', what='EICAR with Content-Encoding gzip')
blocked('/deflate/eicar.com', what='EICAR with Content-Encoding deflate (zlib)')
blocked('/rawdeflate/eicar.com', what='EICAR with Content-Encoding deflate (raw)')
blocked('/chunked/eicar.com', what='EICAR chunked')
blocked('/chunked/eicar.zip', what='EICAR zipped, chunked')
blocked('/close/eicar.com', what='EICAR close-delimited')
blocked('/download?id=7', what='EICAR with Content-Disposition')
blocked('/media/movie.exe', what='a video/mp4 named .exe (risky extension: never skipped)')
# HTTP/1.0 clients get the same.
blocked('/eicar.com', 'Eicar-Test-Signature.UNOFFICIAL', 'EICAR over HTTP/1.0', '--http1.0')

# Clean things arrive byte for byte, in the coding the origin chose.
r = curl_via(d.port, origin.url('/clean.html'))
ok(r.status == 200 and r.body == CLEAN, 'clean page: 200, byte-exact')
r = curl_via(d.port, origin.url('/gzip/clean.html'))
ok(r.status == 200 and r.body == FILES['/gzip/clean.html'][1] and r.header('Content-Encoding') == 'gzip',
   'clean gzip page: delivered still encoded, byte-exact')
r = curl_via(d.port, origin.url('/gzip/clean.html'), '--compressed')
ok(r.status == 200 and r.body == CLEAN, 'clean gzip page: decodes to the original')
r = curl_via(d.port, origin.url('/chunked/clean.html'))
ok(r.status == 200 and r.body == CLEAN, 'clean chunked page: byte-exact')
e = access_entry(d, origin.url('/chunked/clean.html'))
like(e, r'TCP_MISS/200', 'access log: the clean download')

# A coding we cannot decode is not delivered unchecked (on_error block).
r = curl_via(d.port, origin.url('/brotli/page.html'))
is_(r.status, 403, 'Content-Encoding br: blocked (cannot be decoded for scanning)')
like(r.header('X-Portcullis-Block'), r"avscan; the download could not be checked for viruses: "
     r"its content coding 'br' cannot be decoded", 'br: the reason says why')
# ... and origins are not offered codings we cannot decode.
r = curl_via(d.port, origin.url('/clean.html'), '-H', 'Accept-Encoding: gzip, deflate, br, zstd')
is_(origin.requests[-1].header('Accept-Encoding'), 'gzip, deflate',
    'Accept-Encoding: br and zstd removed on the way to the origin')

# Skip rules: streaming media is not held.
r = curl_via(d.port, origin.url('/media/movie.mp4'))
ok(r.status == 200 and r.body == EICAR, 'video/mp4 is skipped (skip_mime video/*): delivered')
like(access_entry(d, origin.url('/media/movie.mp4')), r'TCP_MISS/200', 'skipped: logged as a normal hit')

# Nothing to scan.
rc, out, err = curl('-s', '-I', '-x', 'http://127.0.0.1:%d' % d.port, origin.url('/eicar.com'))
like(out, br'^HTTP/1\.1 200', 'HEAD: answered (no body to scan)')
r = curl_via(d.port, origin.url('/not-modified'))
is_(r.status, 304, '304: passed')

# Keep-alive: a block does not spoil the connection for the next request.
rc, out, err = curl('-s', '-w', '%{http_code} ', '-x', 'http://127.0.0.1:%d' % d.port,
                    '-o', '/dev/null', origin.url('/eicar.com'), '-o', '/dev/null',
                    origin.url('/clean.html'), '-o', '/dev/null', origin.url('/eicar.zip'))
is_(out.decode().split(), ['403', '200', '403'], 'three downloads on one connection: 403 200 403')

ok(d.stop(), 'graceful stop')
d.check_logs()

# Many at once over two workers and three scan threads: every answer right.
d2 = Daemon(conf('database %s\n    threads 3' % db, extra='workers 2'), name='parallel').start()
urls = []
for i in range(60):
    urls.append(origin.url(('/eicar.com?%d', '/clean.html?%d', '/gzip/eicar.com?%d',
                            '/chunked/clean.html?%d')[i % 4] % i))
args = ['-s', '-Z', '--parallel-max', '30', '-w', '%{url_effective} %{http_code}\\n',
        '-x', 'http://127.0.0.1:%d' % d2.port]
for u in urls:
    args += ['-o', '/dev/null', u]
rc, out, err = curl(*args, timeout=60)
got = dict(line.split() for line in out.decode().splitlines() if line.strip())
want = {u: '403' if 'eicar' in u else '200' for u in urls}
is_(got, want, '60 parallel downloads (workers 2, threads 3): each infected one blocked, each clean one delivered')
ok(d2.stop(), 'graceful stop (parallel)')
d2.check_logs()
done_testing()
