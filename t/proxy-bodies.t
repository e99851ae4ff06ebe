#!/usr/bin/env python3
# proxy-bodies.t - bodies streamed both ways and byte-exact (sha256), several
# MiB each: Content-Length and chunked uploads, Content-Length, chunked and
# close-delimited downloads, trailers, chunk extensions, empty bodies, and an
# origin that answers before it read the upload.
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
MiB = 1024 * 1024
BLOB = os.urandom(6 * MiB + 12345)
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


def pieces(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


def handler(req):
    p = req.path
    if p == '/cl':
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=BLOB)
    if p == '/chunked':
        # Odd chunk sizes, so chunk and read boundaries never line up.
        return Response(chunked=True, body_iter=pieces(BLOB, 99991), trailers=[('X-Sum', BLOB_SHA)])
    if p == '/eof':
        return Response(body_iter=pieces(BLOB, 65537))
    if p == '/upload':
        return Response(body=('%d %s %s' % (req.body_len, req.body_sha256,
                                            'chunked' if req.chunked else 'length')).encode())
    return Response(body=b'ok\n')


def early(req):
    if req.path == '/early':
        return Response(413, body=b'too big for me\n', close=True)
    return None


origin = Origin(handler, keep_bodies=False, on_headers=early)
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()
upload = write_file('upload.bin', BLOB)
out = os.path.join(testdir(), 'out.bin')


def sha_file(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---- downloads --------------------------------------------------------------------

for path, what in (('/cl', 'Content-Length'), ('/chunked', 'chunked'), ('/eof', 'close-delimited')):
    if os.path.exists(out):
        os.unlink(out)
    r = curl_via(d.port, origin.url(path), '-o', out)
    is_((r.rc, r.status), (0, 200), '%s download: curl succeeds' % what)
    is_(sha_file(out), BLOB_SHA, '%s download: %d bytes byte-exact' % (what, len(BLOB)))

r = curl_via(d.port, origin.url('/cl'), '-o', '/dev/null')
is_(r.header('Content-Length'), str(len(BLOB)), 'Content-Length download: length relayed')
r = curl_via(d.port, origin.url('/chunked'), '-o', '/dev/null')
is_(r.header('Transfer-Encoding'), 'chunked', 'chunked download: still chunked for HTTP/1.1')

# Trailers of a chunked response reach an HTTP/1.1 client.
with RawClient(d.port, timeout=20) as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n' % origin.url('/chunked'))
    r = c.recv_response()
    ok(r is not None and r.complete and hashlib.sha256(r.body).hexdigest() == BLOB_SHA,
       'raw client: chunked body complete and byte-exact')
    is_(r and r.trailers, [('X-Sum', BLOB_SHA)], 'trailer field relayed')

# ---- uploads ------------------------------------------------------------------------

r = curl_via(d.port, origin.url('/upload'), '--data-binary', '@' + upload,
             '-H', 'Content-Type: application/octet-stream')
is_((r.rc, r.status), (0, 200), 'Content-Length upload: curl succeeds')
is_(r.body.decode(), '%d %s length' % (len(BLOB), BLOB_SHA),
    'Content-Length upload: origin got %d bytes, byte-exact, with a length' % len(BLOB))

r = curl_via(d.port, origin.url('/upload'), '--data-binary', '@' + upload,
             '-H', 'Transfer-Encoding: chunked')
is_((r.rc, r.status), (0, 200), 'chunked upload: curl succeeds')
is_(r.body.decode(), '%d %s chunked' % (len(BLOB), BLOB_SHA),
    'chunked upload: origin got the bytes chunked and byte-exact')

r = curl_via(d.port, origin.url('/upload'), '-T', upload)
is_((r.rc, r.body.decode()), (0, '%d %s length' % (len(BLOB), BLOB_SHA)), 'PUT upload (curl -T)')

# Chunk extensions, odd sizes and trailers in a request, by hand.
with RawClient(d.port) as c:
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
           '5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n'
           % origin.url('/upload'))
    r = c.recv_response()
    is_(r and r.body.decode(), '16 %s chunked' % hashlib.sha256(b'hello 0123456789').hexdigest(),
        'chunk extensions and sizes: body decoded right')
    req = origin.requests[-1]
    is_(req.trailers, [('X-Trailer', 'yes')], 'request trailer field forwarded')

# Empty bodies.
with RawClient(d.port) as c:
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' % origin.url('/upload'))
    r = c.recv_response()
    is_(r and r.body.decode(), '0 %s length' % hashlib.sha256(b'').hexdigest(),
        'POST with Content-Length: 0')
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
           % origin.url('/upload'))
    r = c.recv_response()
    is_(r and r.body.decode(), '0 %s chunked' % hashlib.sha256(b'').hexdigest(),
        'POST with an empty chunked body')

# ---- an origin that answers before it read the body -----------------------------------

with RawClient(d.port) as c:
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n' % origin.url('/early')
           + 'z' * 1000)
    r = c.recv_response()
    is_((r and r.status, r and r.body), (413, b'too big for me\n'), 'early 413 relayed to the client')
    is_(r and r.header('Connection'), 'close', 'early answer: the client connection will close')
    try:
        c.send('z' * 5000)
    except OSError:
        pass
    ok(c.wait_closed(5), 'early answer: connection closed without the rest of the body')
r = curl_via(d.port, origin.url('/after'))
is_(r.status, 200, 'the proxy serves on after the early answer')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
