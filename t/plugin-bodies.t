#!/usr/bin/env python3
# plugin-bodies.t - held and streamed bodies across the memory/disk boundary, byte-exact both ways; fail-open/closed.
import hashlib
import os
import re
import sys
import zlib
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('testkit', 'testkit2')
set_timeout(120)

LIMIT = 64 * 1024
BIG = 50 * 1024 * 1024
SIZES = [0, 1, LIMIT - 1, LIMIT, LIMIT + 1, BIG]
DATA = {n: os.urandom(n) for n in SIZES}
DATA[300 * 1024] = os.urandom(300 * 1024)
DATA[1024 * 1024] = os.urandom(1024 * 1024)
SHA = {n: hashlib.sha256(b).hexdigest() for n, b in DATA.items()}
CRC = {n: '%08x' % zlib.crc32(b) for n, b in DATA.items()}


def pieces(data, size=256 * 1024):
    return [data[i:i + size] for i in range(0, len(data), size)]


def handler(req):
    m = re.match(r'^/bytes/(\d+)/(\w+)', req.path)
    if m:
        data = DATA[int(m.group(1))]
        if m.group(2) == 'chunked':
            return Response(chunked=True, body_iter=pieces(data))
        if m.group(2) == 'eof':
            return Response(body_iter=pieces(data))
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=data)
    return Response(headers=[('X-Got-Len', str(req.body_len)), ('X-Got-Sha', req.body_sha256)],
                    body=b'stored\n')


origin = Origin(handler, keep_bodies=False, timeout=60)
d = up(Daemon(conf('''
body_memory_limit 64k
hold_trickle_after 0
plugin testkit {
    trail_file %%TESTDIR%%/trail
}
plugin testkit2 {
    trail_file %%TESTDIR%%/trail
}
''')))
trail = Trail(os.path.join(testdir(), 'trail'))


def sha_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def fetch(id, path, *args):
    out = os.path.join(testdir(), 'out-' + id)
    r = curl_via(d.port, origin.url(path), '-H', 'X-Test-Id: ' + id, '-o', out, *args, timeout=60)
    r.sha = sha_file(out) if os.path.exists(out) else None
    r.size = os.path.getsize(out) if os.path.exists(out) else -1
    if os.path.exists(out):
        os.unlink(out)
    return r


def seen(id, hook, plugin='testkit'):
    """The BODY hook's report for id, once it is there."""
    trail.wait(lambda t: t.lines(id, plugin, hook), 5)
    lines = trail.lines(id, plugin, hook)
    return lines[-1].kv if lines else {}


def where(n):
    return 'mem' if n <= LIMIT else 'fd'


# ---- held responses -------------------------------------------------------------

for n in SIZES:
    for framing in (('len', 'chunked', 'eof') if n < BIG else ('len', 'chunked')):
        id = 'resp-%d-%s' % (n, framing)
        r = fetch(id, '/bytes/%d/%s' % (n, framing), '-H', 'X-Test-Hold: testkit:response')
        what = 'held response of %d bytes (%s)' % (n, framing)
        is_((r.rc, r.status), (0, 200), '%s: 200' % what)
        ok(r.sha == SHA[n], '%s: delivered byte-exact (sha256)' % what) or diag(r.size)
        is_(r.header('Content-Length'), str(n), '%s: sent with its length' % what)
        kv = seen(id, 'RESPONSE_BODY')
        is_((kv.get('held'), kv.get('size'), kv.get('crc'), kv.get('total'), kv.get('last')),
            (where(n), str(n), CRC[n], str(n), '1'),
            '%s: the plugin saw the whole body (%s)' % (what, where(n)))

# Two holders: both see the same body, in configuration order.
r = fetch('two', '/bytes/%d/len' % (LIMIT + 1), '-H', 'X-Test-Hold: response')
ok(r.status == 200 and r.sha == SHA[LIMIT + 1], 'two plugins hold: delivered byte-exact')
is_([(ln.plugin, ln.kv.get('crc')) for ln in trail.lines('two', what='RESPONSE_BODY')],
    [('testkit', CRC[LIMIT + 1]), ('testkit2', CRC[LIMIT + 1])],
    'two plugins hold: both BODY hooks saw it, in configuration order')

# ---- held uploads ---------------------------------------------------------------

for n in SIZES:
    upload = write_file('up-%d' % n, DATA[n])
    for chunked in (False, True):
        id = 'req-%d-%s' % (n, 'chunked' if chunked else 'len')
        what = 'held upload of %d bytes (%s)' % (n, 'chunked' if chunked else 'Content-Length')
        args = ['-H', 'X-Test-Hold: testkit:request', '--data-binary', '@' + upload,
                '-H', 'Content-Type: application/octet-stream']
        if chunked:
            args += ['-H', 'Transfer-Encoding: chunked']
        r = fetch(id, '/upload/' + id, *args)
        is_((r.rc, r.status), (0, 200), '%s: 200' % what)
        is_((r.header('X-Got-Len'), r.header('X-Got-Sha')), (str(n), SHA[n]),
            '%s: the origin got it byte-exact' % what)
        if n == 0 and not chunked:
            is_(trail.lines(id, 'testkit', 'WANT')[0].kv.get('rc') if trail.lines(id, 'testkit', 'WANT')
                else None, '-1', '%s: no body to hold (txn_body_want says -1)' % what)
            continue
        kv = seen(id, 'REQUEST_BODY')
        is_((kv.get('held'), kv.get('size'), kv.get('crc'), kv.get('last')),
            (where(n), str(n), CRC[n], '1'), '%s: the plugin saw the whole body (%s)' % (what, where(n)))
    os.unlink(upload)

# ---- past the plugin's max ------------------------------------------------------

N = 300 * 1024
mark = d.log_mark('error')
r = fetch('open', '/bytes/%d/len' % N, '-H', 'X-Test-Hold: testkit:response:100k:open')
ok(r.status == 200 and r.sha == SHA[N], 'fail-open past max: delivered unchecked, byte-exact')
ok(d.wait_for_log('error', r'\[warn\] .*\*\d+ the download is larger than 102400 bytes: passed '
                  r'on unchecked', since=mark), 'fail-open: the warning is in the error log')
is_(seen('open', 'RESPONSE_BODY').get('oversize', 'x'), 'x', 'fail-open: the BODY hook heard of it')
ok(any(ln.text.find('oversize') >= 0 for ln in trail.lines('open', 'testkit', 'RESPONSE_BODY')),
   'fail-open: ... flagged PC_BODY_OVERSIZE')

r = fetch('closed', '/bytes/%d/chunked' % N, '-H', 'X-Test-Hold: testkit:response:100k:closed')
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'testkit; the download is larger than the 102400 bytes that can be checked'),
    'fail-closed past max: the block page')

r = fetch('exact', '/bytes/%d/len' % N, '-H', 'X-Test-Hold: testkit:response:300k:closed')
ok(r.status == 200 and r.sha == SHA[N], 'a body of exactly max is checked and passes')

upfile = write_file('up-big', DATA[N])
r = fetch('up-open', '/upload/open', '-H', 'X-Test-Hold: testkit:request:100k:open',
          '--data-binary', '@' + upfile)
is_((r.status, r.header('X-Got-Sha')), (200, SHA[N]), 'upload fail-open past max: the origin gets it all')
nreq = len(origin.requests)
r = fetch('up-closed', '/upload/closed', '-H', 'X-Test-Hold: testkit:request:100k:closed',
          '--data-binary', '@' + upfile)
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'testkit; the upload is larger than the 102400 bytes that can be checked'),
    'upload fail-closed past max: the block page')
is_(len(origin.requests), nreq, 'upload fail-closed: nothing reached the origin')

# ---- verdicts on held bodies ----------------------------------------------------

r = fetch('body-block', '/bytes/%d/len' % (LIMIT + 1), '-H', 'X-Test-Hold: testkit2:response',
          '-H', 'X-Test-Verdict: testkit2:respbody=defer-thread:block/100',
          '-H', 'X-Test-Reason: bad bytes')
is_((r.status, r.header('X-Portcullis-Block')), (403, 'testkit2; bad bytes'),
    'a held response blocked after a deferral: still a block page')
nreq = len(origin.requests)
r = fetch('up-block', '/upload/blocked', '-H', 'X-Test-Hold: testkit:request',
          '-H', 'X-Test-Verdict: testkit:reqbody=block', '--data-binary', '@' + upfile)
is_(r.status, 403, 'a held upload blocked: 403')
is_(len(origin.requests), nreq, '... and the origin never saw it')

# ---- streamed bodies --------------------------------------------------------------

M = 1024 * 1024
r = fetch('stream', '/bytes/%d/chunked' % M, '-H', 'X-Test-Stream: testkit:response',
          '-H', 'X-Test-Hold: testkit2:response')
ok(r.status == 200 and r.sha == SHA[M], 'one plugin streams, another holds: byte-exact')
kv = seen('stream', 'RESPONSE_BODY')
is_((kv.get('mode'), kv.get('size'), kv.get('crc')), ('stream', str(M), CRC[M]),
    'the streaming plugin saw every piece, in order')
ok(int(kv.get('pieces', 0)) > 1, 'in several pieces (%s)' % kv.get('pieces'))
is_(seen('stream', 'RESPONSE_BODY', 'testkit2').get('crc'), CRC[M], 'the holder saw it whole')

upm = write_file('up-m', DATA[M])
r = fetch('stream-up', '/upload/stream', '-H', 'X-Test-Stream: testkit:request',
          '--data-binary', '@' + upm)
is_(r.header('X-Got-Sha'), SHA[M], 'streamed upload: the origin got it byte-exact')
is_(seen('stream-up', 'REQUEST_BODY').get('crc'), CRC[M], 'streamed upload: the plugin saw it all')

r = fetch('stream-block', '/bytes/%d/len' % M, '-H', 'X-Test-Stream: testkit:response:300000')
ok(r.rc != 0 and r.size < M, 'a block while streaming a download: a broken transfer '
   '(curl %d, %d bytes)' % (r.rc, r.size))
ok(trail.count('stream-block', 'STREAM_BLOCK') == 1, '... decided by the plugin')
ok(trail.wait(lambda t: t.count('stream-block', 'TXN_END', 'testkit') == 1), '... TXN_END ran once')

ok(d.stop(), 'graceful stop')
d.check_logs()
left = [f for f in os.listdir(testdir()) if f.startswith('#') or f.startswith('.tmp')]
is_(left, [], 'no spool file left in spool_dir (they are unlinked)')
done_testing()
