#!/usr/bin/env python3
# streaming.t - backpressure: bodies stream through without being buffered
# whole. A 1 GiB download keeps the proxy's memory flat (VmHWM from
# /proc/PID/status), and a client that does not read, or an origin that does
# not read, leaves the proxy's memory bounded while it waits.
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(240)
MiB = 1024 * 1024
BLOCK = (bytes(range(256)) * 4096)[:MiB]
GIB_BLOCKS = 1024


def mem(pid):
    """(VmRSS, VmHWM) of pid in KiB."""
    vals = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'VmHWM'):
                vals[k] = int(v.split()[0])
    return vals['VmRSS'], vals['VmHWM']


def mem_bound(cond, name):
    """A memory bound; under valgrind (PCTEST_VALGRIND) the process grows
    with valgrind's own tables, so it is skipped there (the transfer itself
    is still checked)."""
    if VALGRIND:
        skip('%s: under valgrind the RSS is mostly valgrind\'s' % name.split(':')[0], 1)
    else:
        ok(cond, name)


def fast_source(blocks):
    """A handler writing `blocks` MiB as fast as the socket takes them."""
    def send(sock, req):
        sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n'
                     b'Content-Length: %d\r\n\r\n' % (blocks * MiB))
        for _ in range(blocks):
            sock.sendall(BLOCK)
        return True
    return send


sunk = {}


def handler(req):
    if req.path == '/gib':
        return fast_source(GIB_BLOCKS)
    if req.path == '/64m':
        return fast_source(64)
    if req.path == '/sink':
        return Response(body=b'%d' % req.body_len)
    return Response(body=b'ok\n')


origin = Origin(handler, keep_bodies=False, timeout=60)
CONF = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/%%NAME%%.error.log info
access_log %%TESTDIR%%/%%NAME%%.access.log squid
'''


def daemon(name):
    """A fresh daemon per phase, so one phase's memory is not the next
    one's baseline; warmed up with a 64 MiB download."""
    d = Daemon(CONF, name=name, subst={'NAME': name}).start()
    r = curl_via(d.port, origin.url('/64m'), '-o', '/dev/null')
    is_((r.rc, r.status), (0, 200), '%s: warm-up 64 MiB download' % name)
    return d


def finish(d):
    r = curl_via(d.port, origin.url('/after'))
    is_(r.status, 200, '%s: the proxy serves on' % d.name)
    ok(d.stop(), '%s: graceful stop' % d.name)
    d.check_logs()


# ---- 1 GiB through a reading client ---------------------------------------------

d = daemon('gib')
rss0, hwm0 = mem(d.pid)
start = time.monotonic()
rc, out, err = curl('-x', 'http://127.0.0.1:%d' % d.port, '-o', '/dev/null',
                    '-w', '%{http_code} %{size_download}', origin.url('/gib'), timeout=180)
took = time.monotonic() - start
is_((rc, out.decode()), (0, '200 %d' % (GIB_BLOCKS * MiB)), '1 GiB download complete')
rss1, hwm1 = mem(d.pid)
diag('1 GiB in %.1fs; VmHWM %d -> %d KiB, VmRSS %d -> %d KiB' % (took, hwm0, hwm1, rss0, rss1))
# The proxy holds at most a few 64 KiB buffers per direction (OUTQ_HIGH is
# 512 KiB); buffering the body would add hundreds of MiB.
mem_bound(hwm1 - hwm0 < 32 * 1024, '1 GiB download: peak RSS grew by %d KiB (< 32 MiB)'
          % (hwm1 - hwm0))
finish(d)

# ---- a client that stops reading ------------------------------------------------------

d = daemon('slow-reader')
rss0, _ = mem(d.pid)
c = RawClient(d.port, timeout=30)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/64m'))
first = c.recv(65536, timeout=10)
ok(first and first.startswith(b'HTTP/1.1 200 '), 'slow reader: the response started')
# Give the origin time to push as much as the proxy lets it.
time.sleep(2)
rss1, _ = mem(d.pid)
diag('client not reading: VmRSS %d -> %d KiB' % (rss0, rss1))
mem_bound(rss1 - rss0 < 24 * 1024,
          'client not reading a 64 MiB body: RSS grew by %d KiB (< 24 MiB)' % (rss1 - rss0))
# Now read it all: nothing was lost while the proxy held back.
got = len(first) - (first.index(b'\r\n\r\n') + 4) + len(c.buf)
c.buf = b''
c.sock.settimeout(10)
deadline = time.monotonic() + 60
while got < 64 * MiB and time.monotonic() < deadline:
    chunk = c.sock.recv(1 << 20)    # not c.recv(): it keeps every byte
    if not chunk:
        break
    got += len(chunk)
is_(got, 64 * MiB, 'slow reader: all 64 MiB arrive once it reads')
c.close()
finish(d)

# ---- an origin that stops reading an upload ----------------------------------------------

d = daemon('stalled-origin')
stalled = socket.socket()
stalled.bind(('127.0.0.1', 0))
stalled.listen(1)
stall_port = stalled.getsockname()[1]
accepted = []


def accept_and_stall():
    try:
        s, _ = stalled.accept()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        accepted.append(s)
    except OSError:
        pass


th = threading.Thread(target=accept_and_stall, daemon=True)
th.start()
rss0, _ = mem(d.pid)
c = RawClient(d.port, timeout=30)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
c.send('POST http://127.0.0.1:%d/up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n'
       % (stall_port, 64 * MiB))
c.sock.setblocking(False)
sent = 0
deadline = time.monotonic() + 3
while time.monotonic() < deadline and sent < 64 * MiB:
    try:
        sent += c.sock.send(BLOCK)
    except BlockingIOError:
        select.select([], [c.sock], [], 0.2)
rss1, _ = mem(d.pid)
diag('origin not reading: client pushed %d KiB; VmRSS %d -> %d KiB' % (sent // 1024, rss0, rss1))
ok(sent < 32 * MiB, 'origin not reading: the proxy stops taking the upload (%d KiB taken)'
   % (sent // 1024))
mem_bound(rss1 - rss0 < 24 * 1024,
          'origin not reading: RSS grew by %d KiB (< 24 MiB)' % (rss1 - rss0))
c.close()
for s in accepted:
    s.close()
stalled.close()
finish(d)
done_testing()
