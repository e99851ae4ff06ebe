#!/usr/bin/env python3
# abuse-idle.t - 10,000 idle client connections (from 40 loopback addresses,
# 250 each: under max_connections_per_client): the proxy takes them all,
# still serves new clients and the idle ones when they speak, and its
# memory stays small (reported; bounded only without a sanitizer or valgrind).
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
N, SOURCES = 10000, 40
# The test holds N sockets and the daemon N + its own: both need the limit
# raised (the daemon inherits it, and raises its soft limit to the hard one).
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = N + 1000
if hard != resource.RLIM_INFINITY and hard < want:
    skip_all('the hard open file limit is %d; this test needs %d (ulimit -Hn)' % (hard, want))
resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else hard, hard))

origin = Origin(lambda req: Response(body=b'ok\n'))
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
max_connections 12000
# Idle on purpose: no head within the test's time is not a timeout here.
client_header_timeout 5m
client_idle_timeout 5m
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()
r = curl_via(d.port, origin.url('/warm'))
is_(r.status, 200, 'served before')
fds0, rss0 = d.open_fds(), d.rss_kib()

socks = []
t0 = time.monotonic()
failed = None
try:
    for i in range(N):
        s = socket.socket()
        s.bind(('127.0.0.%d' % (2 + i % SOURCES), 0))
        s.settimeout(10)
        s.connect(('127.0.0.1', d.port))
        socks.append(s)
except OSError as e:
    failed = '%s after %d connections' % (e, len(socks))
is_(failed, None, '%d connections opened' % N)
took = time.monotonic() - t0
ok(wait_until(lambda: d.open_fds() >= fds0 + N, 30),
   'the proxy accepted all %d (it holds %d descriptors more)' % (N, d.open_fds() - fds0))
time.sleep(0.5)
rss1 = d.rss_kib()
per_conn = (rss1 - rss0) * 1024.0 / N
diag('%d idle connections opened in %.1f s; proxy RSS %.1f MiB -> %.1f MiB (%.0f bytes per '
     'connection)' % (N, took, rss0 / 1024.0, rss1 / 1024.0, per_conn))

r = curl_via(d.port, origin.url('/busy'))
is_(r.status, 200, 'a new client is served while %d connections idle' % N)
# Some of the idle ones speak up: they are alive and served.
statuses = []
for s in socks[::1000]:
    s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/woke').encode())
for s in socks[::1000]:
    data = b''
    while b'\r\n\r\n' not in data or not data.endswith(b'ok\n'):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    statuses.append(parse_response(data).status if data else None)
is_(statuses, [200] * len(statuses), 'idle connections that send a request are served (%d)'
    % len(statuses))

if sanitizer_build() or VALGRIND:
    skip('memory bound: sanitizers and valgrind add their own per-allocation overhead', 1)
else:
    # The target (issue 9) is 100 MB for 10,000 connections; the proxy
    # needs far less, so this bound holds on any machine.
    ok(rss1 < 100 * 1024, 'RSS with %d idle connections: %.1f MiB (< 100 MB)' % (N, rss1 / 1024.0))

for s in socks:
    s.close()
ok(wait_until(lambda: d.open_fds() <= fds0 + 50, 30), 'all closed again')
diag('RSS after they closed: %.1f MiB' % (d.rss_kib() / 1024.0))
r = curl_via(d.port, origin.url('/after'))
is_(r.status, 200, 'served after')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
