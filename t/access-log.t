#!/usr/bin/env python3
# access-log.t - the access log: one Squid native line per transaction
# (misses, CONNECT tunnels, denials, errors, bad requests) with the exact
# field layout "time.ms elapsed client code/status bytes method URL -
# HIER_x/addr type"; the JSON lines of "access_log PATH json"; SIGUSR1
# reopening every log after rotation.
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
SQUID = re.compile(r'^(?P<time>\d{10})\.(?P<ms>\d{3}) +(?P<elapsed>\d+) (?P<client>\S+) '
                   r'(?P<code>[A-Z_]+)/(?P<status>\d{3}) (?P<bytes>\d+) (?P<method>[A-Z]+) '
                   r'(?P<url>\S+) (?P<user>-) (?P<hier>HIER_[A-Z]+)/(?P<peer>\S+) (?P<type>\S+)$')


def echo_server():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(4)

    def run():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
            c.close()
    threading.Thread(target=run, daemon=True).start()
    return s.getsockname()[1]


def handler(req):
    if req.path.startswith('/html'):
        return Response(headers=[('Content-Type', 'text/html; charset=utf-8')], body=b'<p>x</p>' * 100)
    if req.path == '/slow':
        return Response(delay=0.3, body=b'slow\n')
    return Response(headers=[('Content-Type', 'text/plain')], body=req.body or b'plain\n')


origin = Origin(handler)
echo_port = echo_server()
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.1/32
allow_local_upstreams on
connect_ports %%ECHO%%
error_log %%TESTDIR%%/logs/error.log info
access_log %%TESTDIR%%/logs/access.log squid
access_log %%TESTDIR%%/logs/access.json json
''', subst={'ECHO': echo_port})
os.makedirs(os.path.join(testdir(), 'logs'))
d.start()
json_path = os.path.join(testdir(), 'logs', 'access.json')


def lines_after(n, count, timeout=5):
    """Waits for count more squid lines after the first n; returns them."""
    wait_until(lambda: len(d.access_log()) >= n + count, timeout)
    return d.access_log()[n:]


def fields(line):
    m = SQUID.match(line or '')
    ok(m, 'squid layout: %s' % line)
    return m.groupdict() if m else {}


# ---- one line per transaction ----------------------------------------------------------

n = len(d.access_log())
t0 = time.time()
with RawClient(d.port) as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/html?a=%7E1'))
    r1 = c.recv_response()
    raw1 = c.data
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world' % origin.url('/post'))
    r2 = c.recv_response()
    raw2 = c.data[len(raw1):]
t1 = time.time()
got = lines_after(n, 2)
is_(len(got), 2, 'two requests on one connection: two lines')
f = fields(got[0] if got else None)
ok(f and t0 - 1 <= int(f['time']) + int(f['ms']) / 1000.0 <= t1 + 1, 'time.ms is the end time')
is_((f.get('client'), f.get('code'), f.get('status'), f.get('method'), f.get('url'), f.get('hier'),
     f.get('peer'), f.get('type')),
    ('127.0.0.1', 'TCP_MISS', '200', 'GET', origin.url('/html?a=%7E1'), 'HIER_DIRECT', '127.0.0.1',
     'text/html'), 'GET line: client, TCP_MISS/200, method, URL as sent, HIER_DIRECT/origin, type')
is_(int(f.get('bytes', -1)), len(raw1), 'GET line: bytes = what the client received (%d)' % len(raw1))
f = fields(got[1] if len(got) > 1 else None)
is_((f.get('code'), f.get('status'), f.get('method'), f.get('url'), f.get('type')),
    ('TCP_MISS', '200', 'POST', origin.url('/post'), 'text/plain'), 'POST line')
is_(int(f.get('bytes', -1)), len(raw2), 'POST line: bytes')

n = len(d.access_log())
r = curl_via(d.port, origin.url('/slow'))
f = fields(lines_after(n, 1)[0])
ok(int(f.get('elapsed', 0)) >= 300, 'elapsed is in milliseconds (%s for a 0.3s answer)'
   % f.get('elapsed'))

# A tunnel: one line when it ends.
n = len(d.access_log())
with RawClient(d.port) as c:
    c.send('CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n' % echo_port)
    head = c.recv_response(head=True)
    c.send(b'x' * 1000)
    echoed = c.recv_until(b'x' * 1000)
    c.shutdown_write()
    c.wait_closed(5)
    received = len(c.data)
f = fields(lines_after(n, 1)[0])
is_((head.status, len(echoed)), (200, 1000), 'tunnel worked')
is_((f.get('code'), f.get('status'), f.get('method'), f.get('url'), f.get('hier'), f.get('peer'),
     f.get('type')),
    ('TCP_TUNNEL', '200', 'CONNECT', '127.0.0.1:%d' % echo_port, 'HIER_DIRECT', '127.0.0.1', '-'),
    'CONNECT line: TCP_TUNNEL/200 CONNECT host:port')
is_(int(f.get('bytes', -1)), received, 'CONNECT line: bytes = established + tunnelled (%d)' % received)

# A denial and errors.
n = len(d.access_log())
raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/denied'), source='127.0.0.2')
f = fields(lines_after(n, 1)[0])
is_((f.get('client'), f.get('code'), f.get('status'), f.get('url'), f.get('hier'), f.get('peer')),
    ('127.0.0.2', 'TCP_DENIED', '403', origin.url('/denied'), 'HIER_NONE', '-'),
    'denied client: TCP_DENIED/403, HIER_NONE/-')

s = socket.socket()
s.bind(('127.0.0.1', 0))
dead = s.getsockname()[1]
s.close()
n = len(d.access_log())
curl_via(d.port, 'http://127.0.0.1:%d/nothing-here' % dead)
f = fields(lines_after(n, 1)[0])
is_((f.get('code'), f.get('status'), f.get('url'), f.get('type')),
    ('TCP_MISS', '502', 'http://127.0.0.1:%d/nothing-here' % dead, 'text/html'),
    'refused upstream: TCP_MISS/502')

n = len(d.access_log())
raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked'
            '\r\n\r\n' % origin.url('/smuggle'))
f = fields(lines_after(n, 1)[0])
is_((f.get('code'), f.get('status'), f.get('method')), ('TAG_NONE', '400', 'GET'),
    'bad request: TAG_NONE/400')
n = len(d.access_log())
raw_request(d.port, b'\x16\x03\x01\x00\x10garbage-bytes\r\n\r\n')
f = fields(lines_after(n, 1)[0])
is_((f.get('code'), f.get('status'), f.get('method'), f.get('url')),
    ('TAG_NONE', '400', 'NONE', 'error:invalid-request'),
    'garbage on the connection: TAG_NONE/400 NONE error:invalid-request')
n = len(d.access_log())
raw_request(d.port, 'GET /local-page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
f = fields(lines_after(n, 1)[0])
is_((f.get('status'), f.get('url'), f.get('hier')), ('404', '/local-page', 'HIER_NONE'),
    'origin-form request: 404, HIER_NONE')

# Every line has the layout; none is logged twice.
all_lines = d.access_log()
bad = [x for x in all_lines if not SQUID.match(x)]
is_(bad, [], 'every access log line has the squid layout')

# ---- JSON lines ---------------------------------------------------------------------------



def json_lines():
    with open(json_path) as fh:
        return [x for x in fh.read().splitlines() if x]


wait_until(lambda: len(json_lines()) >= len(all_lines), 5)
jl = json_lines()
is_(len(jl), len(all_lines), 'one JSON line per squid line')
try:
    recs = [json.loads(x) for x in jl]
    ok(True, 'every JSON line parses')
except ValueError as e:
    recs = []
    ok(False, 'every JSON line parses: %s' % e)
first = recs[0] if recs else {}
is_((first.get('client'), first.get('code'), first.get('status'), first.get('method'),
     first.get('url'), first.get('hier'), first.get('mime')),
    ('127.0.0.1', 'TCP_MISS', 200, 'GET', origin.url('/html?a=%7E1'), 'HIER_DIRECT/127.0.0.1',
     'text/html; charset=utf-8'), 'JSON line: the fields of the first GET')
ok(isinstance(first.get('time'), float) and isinstance(first.get('conn'), int)
   and first.get('bytes') == len(raw1), 'JSON line: time, conn and bytes are numbers')
is_([x.get('code') for x in recs if x.get('method') == 'CONNECT'], ['TCP_TUNNEL'], 'JSON: the tunnel')
post = [x for x in recs if x.get('method') == 'POST']
is_(post and post[0].get('bytes_in'), 11, 'JSON line: bytes_in of the POST body')

# ---- SIGUSR1 reopens the logs after rotation ------------------------------------------------

logs = os.path.join(testdir(), 'logs')
for name in ('access.log', 'access.json', 'error.log'):
    os.rename(os.path.join(logs, name), os.path.join(logs, name + '.1'))
ok(d.reopen_logs(), 'SIGUSR1 sent')
ok(wait_until(lambda: all(os.path.exists(os.path.join(logs, n))
                          for n in ('access.log', 'access.json', 'error.log')), 5),
   'new access.log, access.json and error.log created')
rotated = open(os.path.join(logs, 'access.log.1')).read()
r = curl_via(d.port, origin.url('/after-rotation'))
is_(r.status, 200, 'request after the rotation')
ok(d.wait_for_log('access', r'GET %s ' % re.escape(origin.url('/after-rotation'))),
   'the new access.log gets the line')
ok(wait_until(lambda: '/after-rotation' in open(json_path).read(), 5), 'the new access.json too')
is_(open(os.path.join(logs, 'access.log.1')).read(), rotated, 'the rotated file gets nothing more')
curl_via(d.port, 'http://127.0.0.1:%d/after-rotation' % dead)
ok(d.wait_for_log('error', r'\[error\] .*connect\(\) to 127\.0\.0\.1:%d failed' % dead),
   'the new error.log gets the next error')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
