#!/usr/bin/env python3
# stop.t - graceful stop: SIGTERM (and SIGINT) stop accepting at once, close
# idle kept-alive connections, let an in-flight slow download finish
# byte-exact, then exit 0; drain_timeout cuts what takes too long; a second
# signal stops at once; pid_file is written at start and removed at exit.
import hashlib
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
SLOW = os.urandom(1024 * 1024)


def handler(req):
    if req.path == '/slow':
        # About 1.5 s of streaming.
        return Response(body_iter=[(SLOW[i:i + 65536], 0.1) for i in range(0, len(SLOW), 65536)],
                        length=len(SLOW))
    if req.path == '/during':
        return Response(delay=0.8, body=b'answered during the drain\n')
    if req.path == '/very-slow':
        return Response(body_iter=[(b'x' * 1000, 0.5) for _ in range(40)], length=40000)
    return Response(body=b'ok\n')


origin = Origin(handler)
CONF = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
pid_file %%TESTDIR%%/run/portcullis.pid
error_log %%TESTDIR%%/%%NAME%%.error.log info
access_log %%TESTDIR%%/%%NAME%%.access.log squid
'''
os.makedirs(os.path.join(testdir(), 'run'))
pid_path = os.path.join(testdir(), 'run', 'portcullis.pid')


def connectable(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as s:
            s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % origin.url('/x').encode())
            s.settimeout(2)
            return s.recv(100).startswith(b'HTTP/1.1 200')
    except OSError:
        return False


def start_download(d, path):
    box = {}
    n = len(origin.requests)

    def run():
        box['r'] = curl_via(d.port, origin.url(path))
    th = threading.Thread(target=run)
    th.start()
    ok(wait_until(lambda: any(q.path == path for q in origin.requests[n:]), 5),
       '%s: %s in flight' % (d.name, path))
    return th, box


# ---- SIGTERM with a download in flight ---------------------------------------------------

d = Daemon(CONF, name='term', subst={'NAME': 'term'}).start()
ok(wait_until(lambda: os.path.exists(pid_path), 5), 'pid_file written')
is_(open(pid_path).read().strip(), str(d.pid), 'pid_file holds the daemon pid')

idle = RawClient(d.port)
idle.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/idle'))
is_(idle.recv_response().status, 200, 'an idle kept-alive connection')
th, box = start_download(d, '/slow')
busy = RawClient(d.port)
mark = d.log_mark('error')
d.signal(signal.SIGTERM)
ok(d.wait_for_log('error', r'\[notice\] .*stopping: no new connections', since=mark),
   'SIGTERM: stopping logged')
ok(idle.wait_closed(3), 'SIGTERM: the idle kept-alive connection is closed')
ok(wait_until(lambda: not connectable(d.port), 3), 'SIGTERM: no new connections accepted')
th.join(20)
r = box.get('r')
ok(r is not None and r.rc == 0 and r.status == 200 and
   hashlib.sha256(r.body).digest() == hashlib.sha256(SLOW).digest(),
   'SIGTERM: the download in flight finished byte-exact')
try:
    d.proc.wait(10)
except Exception:
    pass
is_(d.proc.returncode, 0, 'SIGTERM: exit status 0 once the download finished')
ok(not os.path.exists(pid_path), 'pid_file removed at exit')
like(d.error_log(), r'\[notice\] \d+#0: stopped\n', 'stopped logged')
like('\n'.join(d.access_log()), r' TCP_MISS/200 \d+ GET %s ' % re.escape(origin.url('/slow')),
     'the finished download is in the access log')
busy.close()
idle.close()
d.check_logs()

# A request in flight on a kept-alive connection when the stop comes is
# answered, with Connection: close.
d = Daemon(CONF, name='keepalive', subst={'NAME': 'keepalive'}).start()
th, box = start_download(d, '/slow')
c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/first'))
is_(c.recv_response().status, 200, 'kept-alive connection before the stop')
n = len(origin.requests)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/during'))
ok(wait_until(lambda: any(q.path == '/during' for q in origin.requests[n:]), 5),
   'second request on it in flight (the origin answers in 0.8 s)')
d.signal(signal.SIGTERM)
r = c.recv_response()
is_((r and r.status, r and r.body, r and r.header('Connection')),
    (200, b'answered during the drain\n', 'close'), 'the request in flight is answered, Connection: close')
ok(c.wait_closed(5), 'and the connection is closed')
c.close()
th.join(20)
is_(box['r'].status, 200, 'the download still finished')
ok(d.proc.wait(10) == 0, 'exit status 0')
d.check_logs()

# ---- drain_timeout, SIGINT, and a second signal ---------------------------------------------

d = Daemon(CONF + 'drain_timeout 1s\n', name='drain', subst={'NAME': 'drain'}).start()
th, box = start_download(d, '/very-slow')
start = time.monotonic()
d.signal(signal.SIGINT)
th.join(30)
took = time.monotonic() - start
r = box.get('r')
is_((r.status, r.rc), (200, 18), 'drain_timeout 1s: a 20s download is cut (curl exit 18)')
ok(d.proc.wait(10) == 0, 'SIGINT: exit status 0 after the drain timeout')
diag('stopped %.1fs after SIGINT (drain_timeout 1s)' % took)
like(d.error_log(), r'drain timeout: closing 1 connections still open', 'drain timeout logged')
d.check_logs()

d = Daemon(CONF, name='twice', subst={'NAME': 'twice'}).start()
th, box = start_download(d, '/very-slow')
d.signal(signal.SIGTERM)
time.sleep(0.3)
ok(d.running(), 'one SIGTERM: still draining the 20s download')
d.signal(signal.SIGTERM)
th.join(30)
is_(box['r'].rc, 18, 'second SIGTERM: the download is cut at once')
ok(d.proc.wait(10) == 0, 'second SIGTERM: exit status 0')
like(d.error_log(), r'second stop signal: closing every connection now', 'second signal logged')
d.check_logs()
done_testing()
