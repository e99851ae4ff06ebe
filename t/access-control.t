#!/usr/bin/env python3
# access-control.t - who may use the proxy: a client outside allow_clients
# gets 403 ERR_ACCESS_DENIED (plain requests and CONNECT) with a log line
# and nothing forwarded; over max_connections or max_connections_per_client
# a connection gets a clean 503 refusal, and the proxy recovers when
# connections close.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
origin = Origin()

# ---- allow_clients ---------------------------------------------------------------------

d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.1/32
allow_local_upstreams on
connect_ports %%OPORT%%
error_log %%TESTDIR%%/acl.error.log info
access_log %%TESTDIR%%/acl.access.log squid
''', name='acl', subst={'OPORT': origin.port}).start()

r = curl_via(d.port, origin.url('/allowed'))
is_((r.status, r.body), (200, b'hello from origin\n'), '127.0.0.1 is allowed')

mark = d.log_mark('error')
with RawClient(d.port, source='127.0.0.2') as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/denied'))
    closed = c.wait_closed(5)
    r = parse_response(c.data)
is_((r.status, r.header('X-Portcullis-Error')), (403, 'ERR_ACCESS_DENIED'),
    '127.0.0.2 is not in allow_clients: 403 ERR_ACCESS_DENIED')
like(r.body, r'not allowed to use this proxy', 'the page says why')
ok(closed, 'denied client: connection closed')
ok(d.wait_for_log('error', r'\[warn\] \d+#\d+: \*\d+ access denied: client 127\.0\.0\.2 is not in '
                  r'allow_clients', since=mark), 'denied client: logged with the connection id')

rc, out, err = curl('-x', 'http://127.0.0.1:%d' % d.port, '--interface', '127.0.0.2',
                    '-w', '%{http_code}', '-o', '/dev/null', origin.url('/denied-curl'))
is_(out, b'403', 'curl from 127.0.0.2: 403')

data = raw_request(d.port, 'CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\nearly' % origin.port,
                   source='127.0.0.2')
r = parse_response(data)
is_((r.status, r.header('X-Portcullis-Error')), (403, 'ERR_ACCESS_DENIED'), 'denied client: CONNECT 403')

# A denied client gets nothing else on its connection either.
with RawClient(d.port, source='127.0.0.2') as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\n\r\n'
           % (origin.url('/denied-1'), origin.url('/denied-2')))
    c.wait_closed(5)
    is_([x.status for x in parse_responses(c.data)], [403], 'pipelined requests of a denied client: one 403')
is_([q.path for q in origin.requests if q.path.startswith('/denied')], [],
    'nothing from the denied client reached the origin')

ok(d.wait_for_log('access', r'^\d+\.\d{3} +\d+ 127\.0\.0\.2 TCP_DENIED/403 \d+ GET %s - '
                  r'HIER_NONE/- ' % origin.url('/denied')),
   'access log: TCP_DENIED/403 for the denied client')
ok(d.wait_for_log('access', r' 127\.0\.0\.2 TCP_DENIED/403 \d+ CONNECT 127\.0\.0\.1:%d ' % origin.port),
   'access log: the denied CONNECT')
ok(d.stop(), 'acl: graceful stop')
d.check_logs()

# ---- connection limits ------------------------------------------------------------------

d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
max_connections 4
max_connections_per_client 2
error_log %%TESTDIR%%/limits.error.log info
access_log %%TESTDIR%%/limits.access.log squid
''', name='limits').start()


def served(source):
    """Whether a new connection from source gets an answer (not a 503)."""
    with RawClient(d.port, source=source) as c:
        c.send('GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % origin.url('/probe'))
        r = c.recv_response()
        return r.status if r else None


def hold(source):
    """An open connection from source that the proxy has accepted (one
    request answered, kept alive)."""
    c = RawClient(d.port, source=source)
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/hold'))
    r = c.recv_response()
    if r is None or r.status != 200:
        raise AssertionError('hold from %s: %r' % (source, r))
    return c


mark = d.log_mark('error')
a = [hold('127.0.0.1'), hold('127.0.0.1')]
with RawClient(d.port, source='127.0.0.1') as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/third'))
    closed = c.wait_closed(5)
    r = parse_response(c.data) if c.data else None
is_((r and r.status, r and r.body), (503, b'Too many connections; try again soon.\n'),
    'third connection from one client: 503 (max_connections_per_client 2)')
ok(closed, 'the refused connection is closed')
ok(d.wait_for_log('error', r'\[warn\] .*connection from 127\.0\.0\.1 refused: '
                  r'max_connections_per_client reached', since=mark), 'per-client refusal logged')
ok(not any(q.path == '/third' for q in origin.requests), 'the refused request was not forwarded')

b = [hold('127.0.0.3'), hold('127.0.0.3')]
is_(served('127.0.0.4'), 503, 'fifth connection overall: 503 (max_connections 4)')

# Recovery: close one connection of each client.
a.pop().close()
ok(wait_until(lambda: served('127.0.0.1') == 200, 5), 'after one closed, 127.0.0.1 is served again')
b.pop().close()
ok(wait_until(lambda: served('127.0.0.4') == 200, 5), 'and a new client too')

# A burst far over the limit is refused cleanly and the proxy stays up.
burst = []
refused = 0
for i in range(100):
    try:
        c = RawClient(d.port, source='127.0.0.5', timeout=2)
        burst.append(c)
    except OSError:
        continue
for c in burst:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/burst'))
for c in burst:
    r = c.recv_response(timeout=2)
    if r is not None and r.status == 503:
        refused += 1
    c.close()
ok(refused >= 98, 'burst of 100 connections from one client: at least 98 refused with 503 (%d)' % refused)
for c in a + b:
    c.close()
ok(wait_until(lambda: served('127.0.0.5') == 200, 5), 'after the burst the client is served again')
ok(d.running(), 'the daemon survived')
ok(d.stop(), 'limits: graceful stop')
d.check_logs()
done_testing()
