#!/usr/bin/env python3
# timeouts.t - every wait has an end: client_header_timeout cuts off a
# slowloris client (408 or close) while other clients are served;
# client_idle_timeout closes idle kept-alive connections; read_timeout cuts
# a stalled upload; send_timeout a client that stopped reading;
# connect_timeout an upstream that never completes the handshake (a listener
# with a full backlog); upstream_idle_timeout closes pooled connections.
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
MiB = 1024 * 1024


def big(sock, req):
    sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % (64 * MiB))
    block = b'b' * MiB
    try:
        for _ in range(64):
            sock.sendall(block)
    except OSError:
        pass
    return False


def handler(req):
    if req.path == '/big':
        return big
    return Response(body=b'ok\n')


origin = Origin(handler, timeout=30)
# One worker: the upstream_idle_timeout checks count the connections of
# one idle pool (each worker has its own).
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
workers 1
client_header_timeout 1s
client_idle_timeout 1s
read_timeout 1s
send_timeout 1s
connect_timeout 1s
upstream_idle_timeout 1s
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()

# ---- slowloris ------------------------------------------------------------------------

HEAD = ('GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris\r\nX-Padding: %s\r\n\r\n'
        % (origin.url('/slowloris'), 'p' * 200)).encode()
results = {}


def slowloris(i):
    """Trickles the head a byte every 0.1 s; records how it ended."""
    c = RawClient(d.port, timeout=1)
    start = time.monotonic()
    sent = 0
    try:
        while sent < len(HEAD) and time.monotonic() - start < 8:
            c.send(HEAD[sent:sent + 1])
            sent += 1
            if c.recv(timeout=0.1) is not None or c.eof:
                break
    except OSError:
        pass
    c.wait_closed(3)
    results[i] = (sent, time.monotonic() - start, c.eof, c.data)
    c.close()


mark = d.log_mark('error')
threads = [threading.Thread(target=slowloris, args=(i,)) for i in range(5)]
for t in threads:
    t.start()
time.sleep(0.3)
# While five clients trickle, others are served normally.
served = [curl_via(d.port, origin.url('/normal%d' % i)).status for i in range(5)]
is_(served, [200] * 5, 'five normal requests served while five slowloris clients trickle')
for t in threads:
    t.join(15)
for i, (sent, took, eof, data) in sorted(results.items()):
    rs = parse_responses(data)
    ok(sent < len(HEAD) and eof and (not rs or rs[0].status == 408),
       'slowloris %d: cut off after %d of %d bytes (%s)' % (i, sent, len(HEAD),
                                                            rs[0].status if rs else 'closed'))
is_(len(results), 5, 'all slowloris clients ended')
ok(d.wait_for_log('error', r'\*\d+ client 127\.0\.0\.1 timed out sending the request head', since=mark),
   'slowloris: logged')
ok(not any(q.path == '/slowloris' for q in origin.requests), 'slowloris requests never forwarded')

# A client that connects and sends nothing at all.
with RawClient(d.port) as c:
    ok(c.wait_closed(5), 'a silent new connection is closed (client_header_timeout)')

# ---- client_idle_timeout -----------------------------------------------------------------

with RawClient(d.port) as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/idle'))
    is_(c.recv_response().status, 200, 'kept-alive connection served')
    start = time.monotonic()
    ok(c.wait_closed(5), 'idle kept-alive connection closed by client_idle_timeout')
    diag('closed %.1fs after the response (client_idle_timeout 1s)' % (time.monotonic() - start))

with RawClient(d.port) as c:
    alive = True
    for i in range(8):
        c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/busy%d' % i))
        r = c.recv_response()
        if r is None or r.status != 200:
            alive = False
            break
        time.sleep(0.25)
    ok(alive, 'a connection used every 0.25s stays open past client_idle_timeout')

# ---- a stalled upload: read_timeout -------------------------------------------------------

mark = d.log_mark('error')
with RawClient(d.port) as c:
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b' % origin.url('/upload'))
    ok(c.wait_closed(5), 'upload stalled after 10 of 100 bytes: connection closed')
ok(d.wait_for_log('error', r'\*\d+ client 127\.0\.0\.1 timed out sending the request body', since=mark),
   'stalled upload: logged')

# ---- a client that stops reading: send_timeout ---------------------------------------------

mark = d.log_mark('error')
c = RawClient(d.port, timeout=10)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/big'))
first = c.recv(timeout=5)
ok(first and first.startswith(b'HTTP/1.1 200'), 'big download started')
ok(d.wait_for_log('error', r'\*\d+ client 127\.0\.0\.1 timed out reading the response', timeout=10,
                  since=mark), 'client not reading for send_timeout: logged')
got = len(first)
c.sock.settimeout(5)
try:
    while True:
        chunk = c.sock.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
except OSError:
    pass
ok(got < 64 * MiB, 'the client not reading was cut off (%d of %d bytes)' % (got, 64 * MiB))
c.close()

# ---- connect_timeout: an upstream whose backlog is full ---------------------------------------

full = socket.socket()
full.bind(('127.0.0.1', 0))
full.listen(0)
fillers = []
for _ in range(4):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(full.getsockname())
        fillers.append(s)
    except OSError:
        s.close()
        break
probe = socket.socket()
probe.settimeout(1)
try:
    probe.connect(full.getsockname())
    backlog_full = False
except OSError:
    backlog_full = True
probe.close()
if backlog_full:
    mark = d.log_mark('error')
    start = time.monotonic()
    r = curl_via(d.port, 'http://127.0.0.1:%d/' % full.getsockname()[1], timeout=20)
    is_((r.status, r.header('X-Portcullis-Error')), (504, 'ERR_CONNECT_TIMEOUT'),
        'upstream never accepts: 504 ERR_CONNECT_TIMEOUT')
    diag('answered after %.1fs (connect_timeout 1s)' % (time.monotonic() - start))
    ok(d.wait_for_log('error', r'\*\d+ connect\(\) to 127\.0\.0\.1:%d failed: connection timed out'
                      % full.getsockname()[1], since=mark), 'connect timeout: logged')
else:
    skip('a listener with a full backlog still accepts connections here', 2)
for s in fillers:
    s.close()
full.close()

# ---- upstream_idle_timeout --------------------------------------------------------------------

o2 = Origin()
curl_via(d.port, o2.url('/one'))
curl_via(d.port, o2.url('/two'))
is_(o2.connections, 1, 'two quick requests share one pooled upstream connection')
time.sleep(1.5)     # past upstream_idle_timeout; the origin itself waits 10 s
curl_via(d.port, o2.url('/three'))
is_(o2.connections, 2, 'after upstream_idle_timeout the pooled connection is gone: a new one')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
