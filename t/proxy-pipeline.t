#!/usr/bin/env python3
# proxy-pipeline.t - connections on both sides: persistent client
# connections, pipelined requests answered in order, and the idle upstream
# pool (per host:port; a connection goes back only after its response ended
# cleanly), counted with origin.connections.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)


def handler(req):
    p = req.path
    if p.startswith('/slow'):
        return Response(delay=0.4, body=('slow %s\n' % p).encode())
    if p == '/close':
        return Response(body=b'closing\n', close=True)
    if p == '/eof':
        return Response(body=b'until close', length='none')
    if p == '/zero':
        return Response(headers=[('Content-Length', '0')])
    if p == '/204':
        return Response(204)
    if p == '/junk':
        # Two bytes more than the Content-Length: the connection cannot be
        # trusted with another request.
        return Raw(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK', close=False)
    if p == '/big':
        # The rest of the body comes late: a pooled half-read connection
        # would be taken by the next request and break it.
        return Response(body_iter=[b'x' * 65536, (b'y' * 65536, 3.0)], length=2 * 65536)
    if p == '/echo':
        return Response(body=req.body)
    if p == '/chunked':
        return Response(chunked=True, body_iter=[b'a' * 100, b'b' * 100])
    return Response(body=('ok %s\n' % p).encode())


origin = Origin(handler)
other = Origin(lambda req: Response(body=b'other\n'))
# The idle upstream pool is per worker; the connection counts below assume
# one pool.
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
workers 1
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()


def get(c, path, o=origin, extra=''):
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n' % (o.url(path), extra))
    return c.recv_response()


# ---- persistent client connections ---------------------------------------------------

with RawClient(d.port) as c:
    bodies = [get(c, '/k%d' % i).body for i in range(5)]
    is_(bodies, [b'ok /k%d\n' % i for i in range(5)], 'five requests on one client connection')
    is_(c.recv(timeout=0.2), None, 'client connection still open, nothing extra')

# ---- pipelining -----------------------------------------------------------------

with RawClient(d.port) as c:
    c.send(''.join('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url(p)
                   for p in ('/slow1', '/fast1', '/slow2', '/fast2')))
    rs = [c.recv_response() for _ in range(4)]
    is_([r and r.body for r in rs], [b'slow /slow1\n', b'ok /fast1\n', b'slow /slow2\n',
                                     b'ok /fast2\n'],
        'four pipelined requests answered in order (slow ones first)')

# Pipelined requests with bodies and a HEAD between them.
with RawClient(d.port) as c:
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
           'HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n'
           'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
           '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'
           'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
           % (origin.url('/echo'), origin.url('/h'), origin.url('/echo'), origin.url('/last')))
    r1 = c.recv_response()
    r2 = c.recv_response(head=True)
    r3 = c.recv_response()
    r4 = c.recv_response()
    is_([r and r.status for r in (r1, r2, r3, r4)], [200, 200, 200, 200],
        'pipelined POST, HEAD, chunked POST, GET: four answers')
    is_((r1 and r1.body, r2 and r2.body, r3 and r3.body, r4 and r4.body),
        (b'hello', b'', b'abcde', b'ok /last\n'), 'pipelined bodies kept apart')
    ok(c.wait_closed(3), 'closed after the request with Connection: close')

# A pipelined request after one that ends the connection is not answered.
with RawClient(d.port) as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
           'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % (origin.url('/first'), origin.url('/second')))
    data = c.recv_all(timeout=3)
    is_([r.body for r in parse_responses(data)], [b'ok /first\n'],
        'nothing answered after Connection: close')
ok(not any(r.path == '/second' for r in origin.requests), 'the request after it never went upstream')

# ---- the upstream pool -------------------------------------------------------------


def conns_for(fn):
    """Runs fn(); returns how many new origin connections it took."""
    before = origin.connections
    fn()
    return origin.connections - before


def seq(paths, o=origin):
    def run():
        with RawClient(d.port) as c:
            for p in paths:
                r = get(c, p, o)
                if r is None or r.status != 200 and r.status != 204:
                    raise AssertionError('%s: %r' % (p, r))
    return run


# Let the pool settle: the connections above may still be idle in it.
n = conns_for(seq(['/p%d' % i for i in range(6)]))
ok(n <= 1, 'six sequential requests: at most one new upstream connection (%d)' % n)
is_(conns_for(seq(['/q%d' % i for i in range(6)])), 0,
    'six more requests: all on the pooled connection')


def separate_clients():
    for i in range(4):
        r = curl_via(d.port, origin.url('/curl%d' % i))
        if r.status != 200:
            raise AssertionError(r)


is_(conns_for(separate_clients), 0, 'four curl runs (four client connections) share the pool')
is_(conns_for(seq(['/zero', '/204', '/h1'])), 0,
    'Content-Length: 0 and 204 responses end cleanly: connection reused')


def head_then_get():
    with RawClient(d.port) as c:
        c.send('HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/head'))
        if c.recv_response(head=True).status != 200:
            raise AssertionError('HEAD')
        if get(c, '/after-head').body != b'ok /after-head\n':
            raise AssertionError('GET after HEAD')


is_(conns_for(head_then_get), 0, 'HEAD response reused')
is_(conns_for(seq(['/chunked', '/after-chunked'])), 0, 'chunked response ended cleanly: reused')

# Responses that do not end cleanly never go back to the pool.
is_(conns_for(seq(['/close', '/after-close'])), 1,
    'origin sent Connection: close: next request on a new connection')
is_(conns_for(seq(['/eof', '/after-eof'])), 1,
    'close-delimited response: next request on a new connection')
is_(conns_for(seq(['/junk', '/after-junk'])), 1,
    'bytes after the end of a response: connection not reused')
is_(conns_for(seq(['/p1'])), 0, 'and the new connection is pooled again')


def abort_mid_body():
    c = RawClient(d.port)
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/big'))
    if not c.recv(timeout=5):
        raise AssertionError('no response to /big')
    c.close()               # the client gave up mid-body
    time.sleep(0.2)         # let the proxy see it
    seq(['/after-abort'])()


is_(conns_for(abort_mid_body), 1, 'client left mid-body: the upstream connection is not reused')

# The pool is keyed by host:port: two origins, alternating, two connections.
base = other.connections
for i in range(3):
    seq(['/a%d' % i], origin)()
    seq(['/b%d' % i], other)()
is_(other.connections - base, 1, 'second origin: one connection for three requests')
is_(conns_for(seq(['/a9'])), 0, 'first origin: still its own pooled connection')

# Keep-alive with the origin does not depend on the client's: an HTTP/1.0
# client without keep-alive still leaves the upstream connection pooled.
n = conns_for(lambda: raw_request(d.port, 'GET %s HTTP/1.0\r\n\r\n' % origin.url('/ten')))
is_(n, 0, 'HTTP/1.0 client: served from the pool')
is_(conns_for(seq(['/after-ten'])), 0, 'and the upstream connection stays pooled')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
