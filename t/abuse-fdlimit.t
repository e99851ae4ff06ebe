#!/usr/bin/env python3
# abuse-fdlimit.t - a daemon started with 64 open files at most (soft and
# hard limit, as LimitNOFILE=64 would): it says so at start; connections
# beyond what it can hold get a 503 and a close, or at worst a close,
# never a hang; at the limit it stays idle (no busy loop: its CPU time is
# measured while new connections keep coming); once connections close it
# serves again.
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(90)
LIMIT = 64
# The limit is set between fork and exec by a small wrapper (pctest's
# Daemon has no hook there); under valgrind (PCTEST_VALGRIND) the wrapper
# runs the daemon without it, and valgrind needs descriptors of its own.
if VALGRIND:
    skip_all('valgrind needs descriptors of its own below a limit of %d' % LIMIT)
real = os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')
wrapper = write_file('limited', '''#!%s
import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d))
os.execv(%r, [%r] + sys.argv[1:])
''' % (sys.executable, LIMIT, LIMIT, real, real), mode=0o755)

origin = Origin(lambda req: Response(body=b'ok\n'))
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
workers 2
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''', binary=wrapper).start()
ok(d.wait_for_log('error', r'\[warn\] .*the open file limit \(RLIMIT_NOFILE\) is %d, and '
                  r'max_connections 4096 may need' % LIMIT),
   'the low limit is reported at start')
r = curl_via(d.port, origin.url('/first'))
is_(r.status, 200, 'served below the limit')


def answer(s, timeout=5):
    """What a connection gets for a request: a status, 'closed' (EOF or
    reset without a response) or 'hang'."""
    try:
        s.settimeout(timeout)
        s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/x').encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return 'hang'
    except OSError:
        return 'closed'
    if not data:
        return 'closed'
    return parse_response(data).status


# Twice as many connections as the daemon has descriptors, held open.
held = []
for _ in range(2 * LIMIT):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(('127.0.0.1', d.port))
        held.append(s)
    except OSError:
        s.close()
time.sleep(0.5)
got = [answer(s) for s in held]
counts = {k: got.count(k) for k in set(got)}
diag('%d connections at a limit of %d descriptors: %s' % (len(held), LIMIT, counts))
ok('hang' not in counts, 'no connection hangs: each gets an answer or a close')
ok(set(counts) <= {200, 502, 503, 'closed'},
   'answers are 200, 502 (no descriptor for the upstream), 503 or a close')
ok(counts.get(503, 0) + counts.get('closed', 0) > 0, 'connections beyond the limit are refused')
ok(counts.get(200, 0) + counts.get(502, 0) > 0,
   'the ones it took are answered (200, or 502 when no descriptor is left for the upstream)')
ok(d.wait_for_log('error', r'refused: the open file limit \(RLIMIT_NOFILE\) reached'),
   'the refusals are logged')

# At the limit, with new connections still coming, the daemon must idle.
stop = threading.Event()
tries = []


def knock():
    while not stop.is_set():
        try:
            with socket.create_connection(('127.0.0.1', d.port), timeout=2) as s:
                tries.append(answer(s, 2))
        except OSError:
            tries.append('refused')


# Several at once: the descriptor a worker frees to refuse a connection
# cleanly can be taken by another worker's thread first (libuv's own
# accept() spun the loop then).
threads = [threading.Thread(target=knock, daemon=True) for _ in range(4)]
for th in threads:
    th.start()
cpu0, t0 = d.cpu_seconds(), time.monotonic()
time.sleep(3)
cpu = (d.cpu_seconds() - cpu0) / (time.monotonic() - t0)
stop.set()
for th in threads:
    th.join(5)
diag('at the limit, %d new connections in 3 s: the daemon used %.1f%% of a CPU'
     % (len(tries), cpu * 100))
ok(cpu < 0.25, 'no busy loop at the limit (%.1f%% of a CPU)' % (cpu * 100))
ok('hang' not in tries, 'connections at the limit: none hangs')

for s in held:
    s.close()


def served():
    r = curl_via(d.port, origin.url('/again'), timeout=5)
    return r.status == 200


ok(wait_until(served, 10), 'once the connections closed, it serves again')
statuses = [curl_via(d.port, origin.url('/n%d' % i)).status for i in range(10)]
is_(statuses, [200] * 10, 'and keeps serving')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
