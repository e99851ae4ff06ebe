#!/usr/bin/env python3
# proxy-basic.t - the HTTP/1.1 forward proxy seen by one request at a time:
# absolute-form requests, the request line and Host sent upstream, Via both
# ways, hop-by-hop fields removed both ways, HEAD, 204/304, 1xx (103 and
# 100-continue), HTTP/1.0 clients, and origin-form requests to the proxy.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)

HOP = ['Connection', 'Keep-Alive', 'TE', 'Upgrade', 'Proxy-Connection',
       'Proxy-Authorization', 'Proxy-Authenticate', 'X-Named-By-Connection']


def handler(req):
    p = req.path
    if p == '/hop':
        return Response(headers=[('Connection', 'X-Named-By-Connection, keep-alive'),
                                 ('X-Named-By-Connection', 'secret'),
                                 ('Keep-Alive', 'timeout=5, max=100'),
                                 ('Upgrade', 'h2c'),
                                 ('Proxy-Connection', 'keep-alive'),
                                 ('Proxy-Authenticate', 'Basic realm="x"'),
                                 ('TE', 'trailers'),
                                 ('X-End-To-End', 'kept')],
                        body=b'hop\n')
    if p == '/204':
        return Response(204, headers=[('X-S', '204')])
    if p == '/304':
        return Response(304, headers=[('ETag', '"v1"'), ('Content-Length', '1234')])
    if p == '/103':
        return Response(interim=[(103, [('Link', '</style.css>; rel=preload')])],
                        body=b'after early hints\n')
    if p == '/echo':
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=req.body)
    if p == '/chunked':
        return Response(chunked=True, body_iter=[b'chunk-one,', b'chunk-two,', b'chunk-three'])
    if p == '/eof':
        return Response(body=b'delimited by close', length='none')
    if p == '/length':
        return Response(body=b'0123456789')
    return Response(headers=[('Content-Type', 'text/plain'), ('X-Target', req.target)],
                    body=b'hello from origin\n')


origin = Origin(handler)
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
visible_hostname test-proxy
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()
VIA = r'^1\.1 test-proxy \(portcullis/[^)]+\)$'

# ---- a plain GET ----------------------------------------------------------------

r = curl_via(d.port, origin.url('/a/b?c=1&d=%7E'), '-H', 'Host: evil.example:81')
is_((r.rc, r.status, r.body), (0, 200, b'hello from origin\n'), 'GET through the proxy')
req = origin.requests[-1]
is_((req.method, req.target, req.version), ('GET', '/a/b?c=1&d=%7E', 'HTTP/1.1'),
    'origin gets an origin-form request line')
is_(req.headers_all('Host'), [origin.authority], 'Host rebuilt from the URL, the client one dropped')
like(req.header('Via'), VIA, 'Via added upstream')
like(r.header('Via'), VIA, 'Via added downstream')
is_(r.header('X-Target'), '/a/b?c=1&d=%7E', 'response headers relayed')

# A URL without a path gets "/"; a query without a path too.
data = raw_request(d.port, 'GET http://%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n'
                   % (origin.authority, origin.authority))
is_((parse_response(data).status, origin.requests[-1].target), (200, '/'), 'empty path becomes /')
data = raw_request(d.port, 'GET http://%s?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                   % origin.authority)
is_((parse_response(data).status, origin.requests[-1].target), (200, '/?q=1'),
    'query without a path becomes /?q=1')

# An existing Via is kept and ours appended.
data = raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: x\r\nVia: 1.0 upstream-cache\r\n'
                   'Connection: close\r\n\r\n' % origin.url('/via'))
is_(parse_response(data).status, 200, 'request with a Via header')
vias = origin.requests[-1].headers_all('Via')
ok(len(vias) == 2 and vias[0] == '1.0 upstream-cache' and re.match(VIA, vias[1]),
   'earlier Via kept, ours added after it (%r)' % vias)

# ---- hop-by-hop fields -------------------------------------------------------

n = len(origin.requests)
data = raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: %s\r\n'
                   'Connection: X-Named-By-Connection, keep-alive\r\n'
                   'X-Named-By-Connection: secret\r\n'
                   'Keep-Alive: 300\r\n'
                   'TE: trailers\r\n'
                   'Upgrade: websocket\r\n'
                   'Proxy-Connection: keep-alive\r\n'
                   'Proxy-Authorization: Basic dXNlcjpwYXNz\r\n'
                   'X-End-To-End: kept\r\n\r\n' % (origin.url('/hop'), origin.authority),
                   read_until_close=False)
r = parse_response(data)
is_(r.status, 200, 'request with hop-by-hop fields answered')
req = origin.requests[n]
left = [h for h in HOP if req.header(h) is not None]
is_(left, [], 'hop-by-hop request fields removed (Connection and what it names, Keep-Alive, TE, '
    'Upgrade, Proxy-Connection, Proxy-Authorization)')
is_(req.header('X-End-To-End'), 'kept', 'end-to-end request field kept')
left = [h for h in HOP if h != 'Connection' and r.header(h) is not None]
is_(left, [], 'hop-by-hop response fields removed (Keep-Alive, TE, Upgrade, Proxy-Connection, '
    'Proxy-Authenticate, the field Connection named)')
ok(r.header('Connection') in (None, 'keep-alive', 'close')
   and 'x-named' not in (r.header('Connection') or '').lower(),
   "the origin's Connection field not relayed (%r)" % r.header('Connection'))

# A Connection field naming Connection itself must not hide what a second
# Connection field names (found by t/fuzz/fuzz_http_request).
n = len(origin.requests)
data = raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: %s\r\n'
                   'Connection: Connection, keep-alive\r\n'
                   'Connection: X-Second-Named\r\n'
                   'X-Second-Named: secret\r\n\r\n' % (origin.url('/hop'), origin.authority),
                   read_until_close=False)
is_(parse_response(data).status, 200, 'request with two Connection fields answered')
is_(origin.requests[n].header('X-Second-Named'), None,
    'a field named by the second Connection field removed')
is_(r.header('X-End-To-End'), 'kept', 'end-to-end response field kept')

# ---- HEAD, 204, 304: no body, and the connection stays usable -----------------------

with RawClient(d.port) as c:
    c.send('HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/length'))
    r = c.recv_response(head=True)
    is_((r.status, r.header('Content-Length'), r.body), (200, '10', b''),
        'HEAD: Content-Length of the GET, no body')
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/204'))
    r = c.recv_response()
    is_((r.status, r.header('X-S'), r.body, r.header('Transfer-Encoding')), (204, '204', b'', None),
        '204: no body, not chunked')
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nIf-None-Match: "v1"\r\n\r\n' % origin.url('/304'))
    r = c.recv_response()
    is_((r.status, r.header('ETag'), r.body), (304, '"v1"', b''), '304: no body')
    c.send('HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/chunked'))
    r = c.recv_response(head=True)
    is_((r.status, r.body), (200, b''), 'HEAD of a chunked resource: no body')
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/length'))
    r = c.recv_response()
    is_((r.status, r.body), (200, b'0123456789'),
        'after HEAD/204/304 the same connection serves the next GET')
    is_(c.recv(timeout=0.3), None, 'no stray bytes after the responses')
rc, out, err = curl('-s', '-I', '-x', 'http://127.0.0.1:%d' % d.port, origin.url('/length'))
like(out, r'(?i)^HTTP/1\.1 200 OK\r\n(.*\r\n)*content-length: 10\r\n', 'curl -I through the proxy')

# ---- 1xx -----------------------------------------------------------------------

r = curl_via(d.port, origin.url('/103'))
is_((r.rc, r.status, r.body), (0, 200, b'after early hints\n'), '103: final response arrives')
blocks = [b['status_line'] for b in r.header_blocks]
ok(len(blocks) == 2 and blocks[0].startswith('HTTP/1.1 103'), '103 relayed before the 200 (%r)'
   % blocks)
is_(r.header_blocks[0]['headers'] if r.header_blocks else None,
    [('Link', '</style.css>; rel=preload')], '103 keeps its Link field')

body = os.urandom(300000)
upload = write_file('upload.bin', body)
n = len(origin.requests)
rc, out, err = curl('-v', '-x', 'http://127.0.0.1:%d' % d.port, '-H', 'Expect: 100-continue',
                    '--data-binary', '@' + upload, origin.url('/echo'))
is_(rc, 0, '100-continue: curl upload succeeds')
like(err, r'< HTTP/1.1 100 Continue', '100-continue: 100 Continue relayed to curl')
ok(out == body, '100-continue: the body went through and came back byte-exact')
is_(origin.requests[n].header('Expect'), '100-continue', 'Expect forwarded to the origin')

# HTTP/1.0 clients never see a 1xx (RFC 9110 15.2).
data = raw_request(d.port, 'GET %s HTTP/1.0\r\n\r\n' % origin.url('/103'))
ok(data.startswith(b'HTTP/1.1 200 '), 'HTTP/1.0 client: no 103, the 200 first (%r)' % data[:40])

# ---- HTTP/1.0 clients -------------------------------------------------------------

data = raw_request(d.port, 'GET %s HTTP/1.0\r\n\r\n' % origin.url('/chunked'))
r = parse_response(data)
is_((r.status, r.body, r.header('Transfer-Encoding'), r.header('Content-Length')),
    (200, b'chunk-one,chunk-two,chunk-three', None, None),
    'HTTP/1.0 client, chunked origin: decoded, close-delimited body')
is_(r.header('Connection'), 'close', 'HTTP/1.0 client, chunked origin: Connection: close')

data = raw_request(d.port, 'GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' % origin.url('/chunked'))
r = parse_response(data)
is_((r.body, r.header('Transfer-Encoding'), r.header('Connection')),
    (b'chunk-one,chunk-two,chunk-three', None, 'close'),
    'HTTP/1.0 keep-alive client, chunked origin: no keep-alive possible, closed')

with RawClient(d.port) as c:
    c.send('GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' % origin.url('/length'))
    r = c.recv_response()
    is_((r.status, r.body, r.header('Connection')), (200, b'0123456789', 'keep-alive'),
        'HTTP/1.0 keep-alive client, sized body: Connection: keep-alive')
    c.send('GET %s HTTP/1.0\r\n\r\n' % origin.url('/length'))
    r = c.recv_response()
    is_((r and r.status, r and r.body), (200, b'0123456789'),
        'HTTP/1.0 keep-alive: second request on the same connection')
    ok(c.wait_closed(3), 'HTTP/1.0 without keep-alive: closed after the response')

data = raw_request(d.port, 'GET %s HTTP/1.0\r\n\r\n' % origin.url('/eof'))
r = parse_response(data)
is_((r.body, r.header('Transfer-Encoding')), (b'delimited by close', None),
    'HTTP/1.0 client, close-delimited origin: body until close')
data = raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % origin.url('/eof'))
r = parse_response(data)
is_((r.body, r.chunked), (b'delimited by close', True),
    'HTTP/1.1 client, close-delimited origin: re-chunked')

# ---- origin-form requests are for the proxy itself ----------------------------------

n = len(origin.requests)
data = raw_request(d.port, 'GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                   'Connection: close\r\n\r\n' % d.port)
r = parse_response(data)
is_((r.status, r.header('X-Portcullis-Error')), (404, 'ERR_NOT_FOUND'),
    'origin-form request: 404 ERR_NOT_FOUND')
like(r.header('Content-Type'), r'^text/html', 'origin-form request: an HTML page')
is_(len(origin.requests), n, 'origin-form request: nothing forwarded')

ok(d.wait_for_log('access', r' TCP_MISS/200 \d+ GET http://127\.0\.0\.1:%d/a/b\?c=1&d=%%7E - '
                  r'HIER_DIRECT/127\.0\.0\.1 text/plain$' % origin.port),
   'access log has the first GET, its URL as sent')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
