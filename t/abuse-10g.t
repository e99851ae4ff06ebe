#!/usr/bin/env python3
# abuse-10g.t - a 10 GiB download streams through with flat memory: the
# proxy's RSS is sampled every 200 ms and may not grow past its level after
# the first tenth. Under valgrind (some fifty times slower) it is scaled to
# 256 MiB; the size is in the test's output.
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(600 if VALGRIND else 180)
MiB = 1024 * 1024
BLOCK = (bytes(range(256)) * 4096)[:MiB]
BLOCKS = 256 if VALGRIND else 10240


def source(sock, req):
    sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n'
                 b'Content-Length: %d\r\n\r\n' % (BLOCKS * MiB))
    for _ in range(BLOCKS):
        sock.sendall(BLOCK)
    return True


origin = Origin(lambda req: source if req.path == '/huge' else Response(body=b'ok\n'),
                keep_bodies=False, timeout=120)
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()

samples = []
stop = threading.Event()


def sample():
    while not stop.is_set():
        try:
            samples.append((time.monotonic(), d.rss_kib()))
        except OSError:
            pass
        stop.wait(0.2)


th = threading.Thread(target=sample, daemon=True)
t0 = time.monotonic()
th.start()
rc, out, err = curl('-x', 'http://127.0.0.1:%d' % d.port, '-o', '/dev/null',
                    '-w', '%{http_code} %{size_download}', origin.url('/huge'),
                    timeout=500 if VALGRIND else 150)
took = time.monotonic() - t0
stop.set()
th.join(5)
is_((rc, out.decode()), (0, '200 %d' % (BLOCKS * MiB)),
    '%d GiB download complete, every byte' % (BLOCKS // 1024) if BLOCKS >= 1024
    else '%d MiB download complete, every byte' % BLOCKS)
# The level after the first tenth of the transfer (buffers and pools warm)
# against the highest sample afterwards.
warm = [rss for t, rss in samples if t - t0 >= took / 10] or [rss for _, rss in samples]
early = warm[0] if warm else 0
peak = max(warm) if warm else 0
diag('%d MiB in %.1f s (%.0f MiB/s); proxy RSS after the first tenth %.1f MiB, peak afterwards '
     '%.1f MiB, %d samples' % (BLOCKS, took, BLOCKS / took, early / 1024.0, peak / 1024.0,
                               len(samples)))
if VALGRIND:
    # valgrind's own translations grow the process while it runs; and the
    # smaller transfer may end before the sampler saw it.
    skip('memory flat: under valgrind the RSS is mostly valgrind\'s', 2)
else:
    ok(len(warm) >= 3, 'RSS sampled during the transfer (%d samples)' % len(warm))
    ok(peak - early < 16 * 1024, 'memory flat: RSS grew by %d KiB over the transfer (< 16 MiB)'
       % (peak - early))
ok(d.wait_for_log('access', r'TCP_MISS/200 \d+ GET ' + re.escape(origin.url('/huge')) + ' '),
   'one access log line for it')
r = curl_via(d.port, origin.url('/after'))
is_(r.status, 200, 'served after')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
