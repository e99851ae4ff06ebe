#!/usr/bin/env python3
# abuse-headers.t - header floods against the default max_header_size (64k):
# a head that never ends (10 MB of one field), 100,000 tiny fields, 10,000
# fields that fit (forwarded), 200 connections holding 60 KB heads at once,
# 10,000 small pipelined requests sent before reading any answer, a flood
# of pipelined bad requests, and an origin whose response head never ends.
# Answers are 431/400/502 or 200 as they should be, and the proxy's memory
# stays bounded (reported; asserted without a sanitizer or valgrind).
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
MiB = 1024 * 1024
BOUNDED = not (sanitizer_build() or VALGRIND)


def endless_head(sock, req):
    try:
        sock.sendall(b'HTTP/1.1 200 OK\r\nX-Flood: ')
        for _ in range(64):
            sock.sendall(b'f' * 16384)
    except OSError:
        pass
    return False


def handler(req):
    if req.path == '/flood-head':
        return endless_head
    return Response(body=('%d fields\n' % len(req.headers)).encode())


origin = Origin(handler)
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()
U = origin.url('/h')
curl_via(d.port, U)
rss0 = d.rss_kib()


def flood(head_start, chunk, total):
    """Sends head_start, then chunk until total bytes or the proxy stops
    taking them; returns (the response, bytes sent)."""
    c = RawClient(d.port, timeout=10)
    sent = [0]

    def pump():
        try:
            c.sock.sendall(head_start)
            sent[0] = len(head_start)
            while sent[0] < total:
                c.sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    r = c.recv_response(timeout=10)
    closed = c.wait_closed(10)
    th.join(10)
    c.close()
    return r, closed, sent[0]


r, closed, sent = flood(('GET %s HTTP/1.1\r\nHost: x\r\nX-Flood: ' % U).encode(), b'a' * 65536,
                        10 * 1000 * 1000)
is_((r and r.status, r and r.header('X-Portcullis-Error')), (431, 'ERR_TOO_BIG'),
    'a field that never ends: 431')
ok(closed, '... and the connection is closed')
ok(sent < 10 * 1000 * 1000, '... and the proxy stopped taking it (%d KiB sent of 10 MB)'
   % (sent // 1024))

r, closed, sent = flood(('GET %s HTTP/1.1\r\nHost: x\r\n' % U).encode(), b'a:b\r\n' * 2000,
                        100000 * 5)
is_(r and r.status, 431, '100,000 tiny fields: 431')
ok(closed, '... and closed')

head = 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n' % (
    U, ''.join('x%d:1\r\n' % i for i in range(5000)))
r = parse_response(raw_request(d.port, head, timeout=20))
is_((r.status, r.body), (200, b'5002 fields\n'),
    '5,000 small fields within max_header_size (%d bytes): forwarded, all of them' % len(head))

# ---- many connections holding large unfinished heads ---------------------------------------

held = []
piece = ('GET %s HTTP/1.1\r\nHost: x\r\nX-Pad: %s' % (U, 'p' * 60000)).encode()
for _ in range(200):
    s = socket.create_connection(('127.0.0.1', d.port), timeout=10)
    s.sendall(piece)
    held.append(s)
time.sleep(1)
rss1 = d.rss_kib()
diag('200 connections with 60 KB unfinished heads: RSS %.1f -> %.1f MiB' % (rss0 / 1024.0,
                                                                          rss1 / 1024.0))
r = curl_via(d.port, origin.url('/meanwhile'))
is_(r.status, 200, 'served while 200 connections hold large unfinished heads')
if BOUNDED:
    # A head costs at most its input buffer and its copy (64k each).
    ok(rss1 - rss0 < 64 * 1024, 'their memory is bounded: %.1f MiB (< 64 MiB)'
       % ((rss1 - rss0) / 1024.0))
else:
    skip('memory bound: a sanitizer or valgrind build', 1)
for s in held:
    s.close()

# ---- pipelined floods ---------------------------------------------------------------------

N = 10000
rss_before = d.rss_kib()
c = RawClient(d.port, timeout=60)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
req = 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % U
c.send(req * N)
time.sleep(1)                     # nothing read yet: the answers pile up
rss2 = d.rss_kib()
got = []
buf = b''
deadline = time.monotonic() + 60
while len(got) < N and time.monotonic() < deadline:
    chunk = c.sock.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
    while True:
        end = buf.find(b'\r\n\r\n')
        if end < 0:
            break
        head_text = buf[:end].decode('latin-1')
        clen = 0
        for line in head_text.split('\r\n')[1:]:
            k, _, v = line.partition(':')
            if k.lower() == 'content-length':
                clen = int(v)
        if len(buf) < end + 4 + clen:
            break
        got.append(int(head_text.split(' ', 2)[1]))
        buf = buf[end + 4 + clen:]
c.close()
is_((len(got), set(got)), (N, {200}), '%d pipelined requests sent before reading: %d answers, '
    'all 200' % (N, len(got)))
diag('pipelined flood: RSS %.1f -> %.1f MiB while the answers waited'
     % (rss_before / 1024.0, rss2 / 1024.0))
if BOUNDED:
    # The proxy stops reading the client while its answers wait (OUTQ_HIGH).
    ok(rss2 - rss_before < 16 * 1024, 'pipelined flood: memory bounded (%.1f MiB more)'
       % ((rss2 - rss_before) / 1024.0))
else:
    skip('memory bound: a sanitizer or valgrind build', 1)

before = len(origin.requests)
data = raw_request(d.port, 'GET / HTTP/1.1\r\n\r\n' * 1000, timeout=10)
rs = parse_responses(data)
is_([x.status for x in rs], [400], '1,000 pipelined bad requests: one 400, then the close')
is_(len(origin.requests), before, '... and none reached the origin')

# ---- an origin whose response head never ends ------------------------------------------------

r = curl_via(d.port, origin.url('/flood-head'))
is_((r.status, r.header('X-Portcullis-Error')), (502, 'ERR_INVALID_RESP'),
    'a response head over max_header_size: 502')
ok(wait_until(lambda: d.connections_to(origin.port) <= 2, 5),
   '... and that upstream connection is closed')

rss3 = d.rss_kib()
diag('RSS at the end: %.1f MiB' % (rss3 / 1024.0))
r = curl_via(d.port, origin.url('/end'))
is_(r.status, 200, 'served after the floods')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
