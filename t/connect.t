#!/usr/bin/env python3
# connect.t - CONNECT tunnels: only to connect_ports (else 403
# ERR_CONNECT_PORT), a byte-exact splice both ways (several MiB through an
# echo server), half-close in both directions, bytes sent right behind the
# CONNECT head, curl's proxytunnel, upstream errors, the tunnel idle timeout
# and the access log line.
import hashlib
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
MiB = 1024 * 1024


class TcpServer:
    """A raw TCP server; serve(sock) runs on a thread per connection."""

    def __init__(self, serve):
        self.serve = serve
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._run, args=(s,), daemon=True).start()

    def _run(self, s):
        try:
            s.settimeout(30)
            self.serve(s)
        except OSError:
            pass
        finally:
            s.close()


def echo(s):
    """Echoes until EOF, then half-closes after a last word."""
    while True:
        data = s.recv(65536)
        if not data:
            break
        s.sendall(data)
    s.sendall(b'[eof seen]')
    s.shutdown(socket.SHUT_WR)


server_got = {}


def speak_first(s):
    """Says hello and half-closes at once, then reports what it read."""
    s.sendall(b'hello, then EOF from the server')
    s.shutdown(socket.SHUT_WR)
    got = b''
    while True:
        data = s.recv(65536)
        if not data:
            break
        got += data
    server_got['speak_first'] = got


echo_srv = TcpServer(echo)
first_srv = TcpServer(speak_first)
origin = Origin()
closed = socket.socket()
closed.bind(('127.0.0.1', 0))
closed_port = closed.getsockname()[1]
closed.close()

d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
connect_ports %%ECHO%% %%FIRST%% %%ORIGIN%%-%%ORIGIN%% %%CLOSED%%
tunnel_idle_timeout 1s
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''', subst={'ECHO': echo_srv.port, 'FIRST': first_srv.port, 'ORIGIN': origin.port,
            'CLOSED': closed_port}).start()


def tunnel(port, extra=b''):
    """A client with an established tunnel to 127.0.0.1:port."""
    c = RawClient(d.port, timeout=20)
    c.send(b'CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n' % (port, port) + extra)
    r = c.recv_response(head=True)
    return c, r


# ---- refused tunnels -------------------------------------------------------------------

for target, what in (('127.0.0.1:443', 'port 443 not in connect_ports'),
                     ('127.0.0.1:1', 'a low port'),
                     ('localhost:22', 'ssh port')):
    mark = d.log_mark('error')
    data = raw_request(d.port, 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (target, target))
    r = parse_response(data)
    is_((r.status, r.header('X-Portcullis-Error')), (403, 'ERR_CONNECT_PORT'),
        'CONNECT to %s (%s): 403 ERR_CONNECT_PORT' % (target, what))
    ok(d.wait_for_log('error', r'\[warn\] \d+#\d+: \*\d+ CONNECT to %s denied' % target, since=mark),
       'CONNECT to %s: logged' % target)
r = curl_via(d.port, 'https://127.0.0.1:443/')
is_((r.connect_status, r.status), (403, 0), 'curl: CONNECT to 443 refused with 403')

# What follows a refused CONNECT was meant for the tunnel: it must never be
# read as the next request, so the connection ends with the refusal.
with RawClient(d.port) as c:
    c.send('CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n'
           'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/behind-connect'))
    ok(c.wait_closed(5), 'refused CONNECT: the connection is closed')
    rs = parse_responses(c.data)
    is_([(r.status, r.header('Connection')) for r in rs], [(403, 'close')],
        'refused CONNECT: one 403 with Connection: close')
is_([q.path for q in origin.requests if q.path == '/behind-connect'], [],
    'bytes behind a refused CONNECT never become a request')

data = raw_request(d.port, 'CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n' % closed_port)
r = parse_response(data)
is_((r.status, r.header('X-Portcullis-Error')), (502, 'ERR_CONNECT_FAIL'),
    'CONNECT to an allowed port where nothing listens: 502')
data = raw_request(d.port, 'CONNECT no-such-host.invalid:%d HTTP/1.1\r\nHost: x\r\n\r\n' % echo_srv.port)
r = parse_response(data)
is_((r.status, r.header('X-Portcullis-Error')), (502, 'ERR_DNS_FAIL'), 'CONNECT to an unknown name: 502')

# ---- the splice ----------------------------------------------------------------------------

c, r = tunnel(echo_srv.port)
is_(r and r.status, 200, 'CONNECT to the echo server: 200')
upload = os.urandom(6 * MiB + 777)
got = []


def reader():
    while True:
        data = c.sock.recv(1 << 20)
        if not data:
            break
        got.append(data)


th = threading.Thread(target=reader)
th.start()
for i in range(0, len(upload), 100000):
    c.sock.sendall(upload[i:i + 100000])
c.shutdown_write()
th.join(30)
echoed = b''.join(got)
ok(not th.is_alive(), 'tunnel: the echo came back and the tunnel closed')
is_(len(echoed), len(upload) + len(b'[eof seen]'), 'tunnel: every byte came back')
ok(hashlib.sha256(echoed).hexdigest() ==
   hashlib.sha256(upload + b'[eof seen]').hexdigest(),
   'tunnel: %d bytes each way, byte-exact; the client half-closed and still got the rest' % len(upload))
c.close()

# The server half-closes first; the client keeps talking.
c, r = tunnel(first_srv.port)
is_(r and r.status, 200, 'CONNECT to a server that half-closes first')
is_(c.recv_until(b'EOF from the server'), b'hello, then EOF from the server', 'its greeting arrives')
is_(c.recv(timeout=3), b'', "the server's half-close reaches the client as EOF")
c.send(b'client still talking')
c.shutdown_write()
ok(c.wait_closed(5), 'tunnel ends once both sides closed')
ok(wait_until(lambda: server_got.get('speak_first') == b'client still talking', 5),
   'after the server half-closed, the client\'s bytes still reached it (%r)'
   % server_got.get('speak_first'))
c.close()

# Bytes right behind the CONNECT head (a ClientHello, typically) go first.
c, r = tunnel(echo_srv.port, extra=b'early bytes')
is_(r and r.status, 200, 'CONNECT with bytes right behind the head')
c.shutdown_write()
is_(c.recv_all(timeout=5), b'early bytes[eof seen]', 'the early bytes went through the tunnel')
c.close()

# A real client: curl's proxytunnel to an HTTP origin.
r = curl_via(d.port, origin.url('/through-tunnel'), '-p')
is_((r.connect_status, r.status, r.body), (200, 200, b'hello from origin\n'),
    'curl -p: HTTP through a CONNECT tunnel')
is_(origin.requests[-1].target, '/through-tunnel', 'the origin got the request as sent in the tunnel')
ok(origin.requests[-1].header('Via') is None, 'nothing added inside the tunnel')

# ---- idle timeout -------------------------------------------------------------------------

mark = d.log_mark('error')
c, r = tunnel(echo_srv.port)
is_(r and r.status, 200, 'tunnel for the idle timeout')
c.send(b'ping')
is_(c.recv_until(b'ping'), b'ping', 'tunnel works')
start = time.monotonic()
ok(c.wait_closed(10), 'idle tunnel closed by tunnel_idle_timeout')
diag('idle tunnel closed after %.1fs (tunnel_idle_timeout 1s)' % (time.monotonic() - start))
ok(d.wait_for_log('error', r'\*\d+ tunnel to 127\.0\.0\.1:%d idle for 1000 ms' % echo_srv.port,
                  since=mark), 'idle tunnel: logged')
c.close()

# A busy tunnel outlives the idle timeout.
c, r = tunnel(echo_srv.port)
alive = True
for i in range(8):
    c.send(b'tick%d' % i)
    if c.recv_until(b'tick%d' % i, timeout=3) != b'tick%d' % i:
        alive = False
        break
    time.sleep(0.25)
ok(alive, 'a tunnel with traffic every 0.25s stays open past 1s')
c.close()

ok(d.wait_for_log('access', r'^\d+\.\d{3} +\d+ 127\.0\.0\.1 TCP_TUNNEL/200 \d+ CONNECT '
                  r'127\.0\.0\.1:%d - HIER_DIRECT/127\.0\.0\.1 -$' % echo_srv.port),
   'access log: TCP_TUNNEL/200 CONNECT line')
ok(d.wait_for_log('access', r' TCP_DENIED/403 \d+ CONNECT 127\.0\.0\.1:443 - HIER_NONE/- '),
   'access log: the refused CONNECT')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
