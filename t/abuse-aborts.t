#!/usr/bin/env python3
# abuse-aborts.t - the client goes away at every phase of a transaction:
# in the middle of the request head, of a body upload, while the origin has
# not answered, while a plugin holds the response head (a deferral), in the
# middle of a download, and in the middle of a CONNECT tunnel. Each time
# the daemon goes on serving, the upstream connection is closed (not
# pooled: it is in an unknown state), the transaction is logged, and, in
# an ASan build, nothing leaks (LeakSanitizer runs at the graceful stop).
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403
from plugintest import PLUGIN_DIR, Trail, need_plugins  # noqa: E402

need_plugins('testkit')
set_timeout(90)
MiB = 1024 * 1024
BLOCK = os.urandom(MiB)


def big(sock, req):
    try:
        sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % (64 * MiB))
        for _ in range(64):
            sock.sendall(BLOCK)
    except OSError:
        pass
    return False


def handler(req):
    if req.path == '/big':
        return big
    if req.path == '/slow':
        return Response(body=b'late\n', delay=3)
    return Response(body=('got %d bytes\n' % req.body_len).encode())


# One origin per phase, so that "no connection to it left" means that
# phase's upstream connection was closed.
PHASES = ('head', 'upload', 'wait', 'held', 'download', 'tunnel')
origins = {p: Origin(handler, keep_bodies=False, timeout=30) for p in PHASES if p != 'tunnel'}

# The tunnel's far end: echoes, and says when its side was closed.
echo = socket.socket()
echo.bind(('127.0.0.1', 0))
echo.listen(8)
echo_closed = threading.Event()


def echo_serve():
    try:
        s, _ = echo.accept()
    except OSError:
        return
    with s:
        while True:
            try:
                data = s.recv(65536)
            except OSError:
                break
            if not data:
                break
            s.sendall(data)
    echo_closed.set()


threading.Thread(target=echo_serve, daemon=True).start()

d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
connect_ports %%ECHO%%
plugin_dir %%PLUGINS%%
plugin testkit {
    trail_file %%TESTDIR%%/trail
}
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''', subst={'ECHO': echo.getsockname()[1], 'PLUGINS': PLUGIN_DIR}).start()
trail = Trail(os.path.join(testdir(), 'trail'))


def no_upstream(phase, timeout=10):
    return wait_until(lambda: d.connections_to(origins[phase].port) == 0, timeout)


# ---- in the middle of the request head -----------------------------------------------------

c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Half: ' % origins['head'].url('/head'))
time.sleep(0.3)
c.close()
ok(d.wait_for_log('error', r'closed the connection in the middle of a request head'),
   'head: the proxy saw the client leave mid-head')
is_(len(origins['head'].requests), 0, 'head: nothing reached the origin')

# ---- in the middle of a body upload --------------------------------------------------------

c = RawClient(d.port)
c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % (origins['upload'].url('/upload'),
                                                                     10 * MiB))
c.sock.sendall(BLOCK)
ok(wait_until(lambda: d.connections_to(origins['upload'].port) == 1, 5),
   'upload: the body streams to an upstream connection')
c.close()
ok(no_upstream('upload'), 'upload: client gone after 1 of 10 MiB: the upstream connection is closed')
ok(d.wait_for_log('access', r'_ABORTED/\d+ \d+ POST ' + origins['upload'].url('/upload')),
   'upload: logged as aborted')

# ---- while the origin has not answered -----------------------------------------------------

c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origins['wait'].url('/slow'))
ok(wait_until(lambda: len(origins['wait'].requests) == 1, 5), 'wait: the request reached the origin')
c.close()
ok(no_upstream('wait', 2.5), 'wait: client gone before the answer: the upstream connection is '
   'closed (before the origin answered)')
ok(d.wait_for_log('access', r'_ABORTED/\S+ \d+ GET ' + origins['wait'].url('/slow')),
   'wait: logged as aborted')

# ---- while a plugin holds the response head ----------------------------------------------------

c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: held\r\n'
       'X-Test-Verdict: testkit:response=defer-never/20000\r\n\r\n' % origins['held'].url('/held'))
ok(trail.wait(lambda t: t.count('held', 'RESPONSE_HEADERS', 'testkit') == 1, 5),
   'held: the response head is held by the plugin\'s deferral')
c.close()
ok(trail.wait(lambda t: t.count('held', 'CANCEL', 'testkit') == 1, 5),
   'held: client gone: the deferral is cancelled')
ok(trail.wait(lambda t: t.count('held', 'TXN_END', 'testkit') == 1, 5),
   'held: the transaction ended once')
ok(no_upstream('held'), 'held: the upstream connection is closed')

# ---- in the middle of a download --------------------------------------------------------------

c = RawClient(d.port, timeout=10)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origins['download'].url('/big'))
got = 0
while got < 4 * MiB:
    chunk = c.sock.recv(1 << 20)
    if not chunk:
        break
    got += len(chunk)
ok(got >= 4 * MiB, 'download: 4 of 64 MiB received')
c.close()
ok(no_upstream('download'), 'download: client gone mid-body: the upstream connection is closed')
ok(d.wait_for_log('access', r'TCP_MISS_ABORTED/200 \d+ GET ' + origins['download'].url('/big')),
   'download: logged as aborted')

# ---- in the middle of a tunnel ------------------------------------------------------------------

c = RawClient(d.port, timeout=10)
c.send('CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n'
       % (echo.getsockname()[1], echo.getsockname()[1]))
r = c.recv_response(head=True)
is_(r and r.status, 200, 'tunnel: established')
c.send(b'ping through the tunnel')
is_(c.recv_until(b'tunnel', timeout=5), b'ping through the tunnel', 'tunnel: data both ways')
c.close()
ok(echo_closed.wait(5), 'tunnel: client gone: the far end\'s connection is closed')
ok(d.wait_for_log('access', r' CONNECT 127\.0\.0\.1:%d ' % echo.getsockname()[1]),
   'tunnel: logged')

# ---- the daemon goes on ---------------------------------------------------------------------

for p in ('head', 'upload', 'wait', 'held', 'download'):
    r = curl_via(d.port, origins[p].url('/after'))
    is_(r.status, 200, '%s: the origin is reachable through the proxy afterwards' % p)
ok(d.stop(), 'graceful stop (LeakSanitizer checks here in an ASan build)')
d.check_logs()
done_testing()
