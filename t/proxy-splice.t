#!/usr/bin/env python3
# proxy-splice.t - the zero-copy relay (splice on|off): Content-Length bodies
# and CONNECT tunnels byte-exact, the upstream connection reused after a
# spliced body, an upstream that breaks off mid-body, pipelined requests
# behind a spliced body, bodies a plugin looks at (never spliced), and the
# same results with splice off. Whether the relay ran is seen in the
# daemon's descriptors: it keeps the empty pipes of a relay for the next one.
import hashlib
import os
import re
import socket
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403
from plugintest import *  # noqa: E402,F403

need_plugins('testkit')
set_timeout(120)
MiB = 1024 * 1024
BIG = os.urandom(20 * MiB + 123)
BIG_SHA = hashlib.sha256(BIG).hexdigest()
CUT_LEN = 8 * MiB


def handler(req):
    p = req.path
    if p == '/big':
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=BIG)
    if p == '/cut-fin':
        # The server promises 8 MiB, sends 3 and closes cleanly.
        return Raw(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % CUT_LEN + BIG[:3 * MiB])
    if p == '/cut-rst':
        return Response(body=BIG[:CUT_LEN], abort_after=2 * MiB)
    m = re.match(r'^/n/(\d+)$', p)
    if m:
        n = int(m.group(1))
        return Response(body=BIG[:n])
    return Response(body=('ok %s\n' % p).encode())


def echo(s):
    """Echoes until EOF, then half-closes after a last word."""
    s.settimeout(30)
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            s.sendall(data)
        s.sendall(b'[eof seen]')
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        s.close()


echo_sock = socket.socket()
echo_sock.bind(('127.0.0.1', 0))
echo_sock.listen(16)
ECHO_PORT = echo_sock.getsockname()[1]


def echo_accept():
    while True:
        try:
            s, _ = echo_sock.accept()
        except OSError:
            return
        threading.Thread(target=echo, args=(s,), daemon=True).start()


threading.Thread(target=echo_accept, daemon=True).start()
origin = Origin(handler, keep_bodies=False, timeout=60)


def daemon(mode, name):
    return up(Daemon(conf('''
workers 1
splice %s
connect_ports %%%%ECHO%%%%
plugin testkit {
    trail_file %%%%TESTDIR%%%%/trail-%s
}
''' % (mode, name), logs=name + '-'), name=name, subst={'ECHO': ECHO_PORT}))


def pipes(d):
    """Pipes the daemon holds open (splice relays keep theirs pooled)."""
    n = 0
    for fd in os.listdir('/proc/%d/fd' % d.pid):
        try:
            if os.readlink('/proc/%d/fd/%s' % (d.pid, fd)).startswith('pipe:'):
                n += 1
        except OSError:
            pass
    return n


def fetch(d, path, *args):
    out = os.path.join(testdir(), 'out')
    r = curl_via(d.port, origin.url(path), '-o', out, *args, timeout=60)
    data = open(out, 'rb').read() if os.path.exists(out) else b''
    if os.path.exists(out):
        os.unlink(out)
    return r, data


def get(c, path, extra='', pause=0):
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n' % (origin.url(path), extra))
    # A client that waits before reading fills the socket buffers: the
    # relay must wait for it with bytes in its pipe (backpressure).
    time.sleep(pause)
    return c.recv_response(timeout=60)


def run(mode):
    name = 'splice-' + mode
    d = daemon(mode, name)
    spliced = mode == 'on'
    base = pipes(d)

    # 1. A large Content-Length body to a client slow to start reading,
    # then a second request on the same client connection: the upstream
    # connection went back to the pool.
    conns = origin.connections
    with RawClient(d.port, timeout=60) as c:
        r1 = get(c, '/big', pause=0.5)
        r2 = get(c, '/n/1000')
        is_((r1 and r1.status, r1 and len(r1.body)), (200, len(BIG)),
            '%s: 20 MiB Content-Length body, whole' % name)
        ok(r1 is not None and hashlib.sha256(r1.body).hexdigest() == BIG_SHA,
           '%s: 20 MiB body byte-exact (sha256)' % name)
        is_(r2 and r2.body, BIG[:1000], '%s: the next request on the connection' % name)
    is_(origin.connections - conns, 1, '%s: one upstream connection served both' % name)
    if spliced:
        ok(pipes(d) > base, '%s: the relay ran (its pipe is pooled: %d > %d)'
           % (name, pipes(d), base))
    else:
        is_(pipes(d), base, '%s: no pipe was made' % name)
    base = pipes(d)

    # 2. The upstream breaks off mid-body: a clean close and a reset. The
    # client sees a broken transfer, never a complete-looking response.
    for path, what in (('/cut-fin', 'closes'), ('/cut-rst', 'resets')):
        mark = d.log_mark('access')
        r, data = fetch(d, path)
        ok(r.rc == 18 and len(data) < CUT_LEN,
           '%s: upstream %s mid-body: curl exit 18 (got %d, %d bytes)'
           % (name, what, r.rc, len(data)))
        ok(BIG.startswith(data), '%s: what came before the break is exact' % name)
        ok(d.wait_for_log('access', r'TCP_MISS_ABORTED/200 \d+ GET %s'
                          % re.escape(origin.url(path)), since=mark),
           '%s: upstream %s mid-body: access log line' % (name, what))

    # 3. Pipelined requests behind a spliced body answered in order.
    with RawClient(d.port, timeout=60) as c:
        c.send(''.join('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url(p)
                       for p in ('/n/3000000', '/p1', '/n/2000000', '/p2')))
        rs = [c.recv_response(timeout=60) for _ in range(4)]
        is_([r and r.body for r in rs], [BIG[:3000000], b'ok /p1\n', BIG[:2000000], b'ok /p2\n'],
            '%s: pipelined requests after spliced bodies answered in order' % name)
    mark = d.log_mark('access')
    with RawClient(d.port, timeout=60) as c:
        get(c, '/n/5000000', 'Connection: close\r\n')
    ok(d.wait_for_log('access', r'TCP_MISS/200 (\d+) GET %s' % re.escape(origin.url('/n/5000000')),
                      since=mark), '%s: access log line' % name)
    sizes = [ln for ln in d.access_log() if '/n/5000000' in ln]
    like(sizes[-1] if sizes else '', r' TCP_MISS/200 50002\d\d GET ',
         '%s: access log size counts head and body' % name)

    # 4. A CONNECT tunnel, 20 MiB each way through an echo server; the
    # client half-closes and still receives the rest.
    c = RawClient(d.port, timeout=60)
    c.send(b'CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n' % ECHO_PORT)
    r = c.recv_response(head=True)
    is_(r and r.status, 200, '%s: CONNECT to the echo server' % name)
    got = []

    def reader():
        while True:
            data = c.sock.recv(1 << 20)
            if not data:
                break
            got.append(data)

    th = threading.Thread(target=reader)
    th.start()
    mark = d.log_mark('access')
    for i in range(0, len(BIG), 1 << 20):
        c.sock.sendall(BIG[i:i + (1 << 20)])
    c.shutdown_write()
    th.join(60)
    echoed = b''.join(got)
    ok(not th.is_alive(), '%s: the tunnel closed after both half-closes' % name)
    ok(echoed == BIG + b'[eof seen]',
       '%s: tunnel: %d bytes each way, byte-exact, the rest after the half-close (got %d)'
       % (name, len(BIG), len(echoed)))
    c.close()
    line = d.wait_for_log('access', r'TCP_TUNNEL/200 \d+ CONNECT', since=mark)
    like(line or '', r'TCP_TUNNEL/200 %d CONNECT' % (len(BIG) + len('[eof seen]') + 39),
         '%s: tunnel bytes to the client in the access log' % name)
    if spliced:
        ok(pipes(d) >= base + 2, '%s: the tunnel was spliced (two more pipes pooled)' % name)
    else:
        is_(pipes(d), base, '%s: the tunnel copied' % name)
    base = pipes(d)

    # 5. A plugin streaming the response body sees every byte: no splice.
    r, data = fetch(d, '/big', '-H', 'X-Test-Id: seen-' + mode, '-H',
                    'X-Test-Stream: testkit:response')
    ok(r.status == 200 and hashlib.sha256(data).hexdigest() == BIG_SHA,
       '%s: body streamed to a plugin arrives byte-exact' % name)
    trail = Trail(os.path.join(testdir(), 'trail-' + name))
    seen = wait_until(lambda: trail.lines('seen-' + mode, 'testkit', 'RESPONSE_BODY'), 5) or []
    is_([(ln.kv.get('size'), ln.kv.get('crc')) for ln in seen],
        [(str(len(BIG)), '%08x' % zlib.crc32(BIG))],
        '%s: the plugin saw every byte of the body' % name)
    is_(pipes(d), base, '%s: no relay for a body a plugin looks at' % name)

    ok(d.stop(), '%s: graceful stop' % name)
    d.check_logs()


run('on')
run('off')
done_testing()
