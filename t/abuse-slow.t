#!/usr/bin/env python3
# abuse-slow.t - slow clients are cut off by their timeouts and do not slow
# the others: connections that never send a byte, slowloris heads trickled a
# byte at a time (408 at client_header_timeout), a slow upload stalled
# midway, and slow readers of a large download (cut at send_timeout, their
# upstream connections closed). Meanwhile a normal client is served; its
# latency is reported (diag), not asserted.
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(90)
MiB = 1024 * 1024
BLOCK = os.urandom(MiB)


def big(sock, req):
    """32 MiB as fast as the socket takes them (more than the socket buffers
    of a client that does not read can hold)."""
    try:
        sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % (32 * MiB))
        for _ in range(32):
            sock.sendall(BLOCK)
    except OSError:
        pass
    return False


origin = Origin(lambda req: Response(body=b'ok\n'))
uporigin = Origin(lambda req: Response(body=b'got it\n'), keep_bodies=False, timeout=30)
bigorigin = Origin(lambda req: big, keep_bodies=False, timeout=30)
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
client_header_timeout 2s
client_idle_timeout 2s
read_timeout 2s
send_timeout 2s
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()

# ---- the attack, all at once --------------------------------------------------------

N_SILENT, N_LORIS, N_UPLOAD, N_READERS = 40, 40, 10, 10
silent = [RawClient(d.port, timeout=15) for _ in range(N_SILENT)]
loris = [RawClient(d.port, timeout=15) for _ in range(N_LORIS)]
for c in loris:
    c.sock.settimeout(None)     # blocking: MSG_DONTWAIT reads return at once
uploads = [RawClient(d.port, timeout=15) for _ in range(N_UPLOAD)]
readers = []
for _ in range(N_READERS):
    c = RawClient(d.port, timeout=15)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % bigorigin.url('/big'))
    readers.append(c)
for c in uploads:
    # A body announced, a little of it sent, then nothing.
    c.send('POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n%s'
           % (uporigin.url('/up'), 'x' * 1000))

HEAD = ('GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: loris\r\n' % origin.url('/loris')).encode()
loris_closed = {}
loris_408 = {}
stop = threading.Event()


def trickle():
    """One byte of a never-ending head on every loris connection, every
    200 ms, until the proxy hangs up on it."""
    pos = 0
    while not stop.is_set() and len(loris_closed) < len(loris):
        for i, c in enumerate(loris):
            if i in loris_closed:
                continue
            byte = HEAD[pos:pos + 1] if pos < len(HEAD) else b'X'
            try:
                if i not in loris_408:
                    try:
                        if c.sock.recv(4096, socket.MSG_DONTWAIT).startswith(b'HTTP/1.1 408 '):
                            loris_408[i] = time.monotonic()
                    except BlockingIOError:
                        pass
                c.sock.sendall(byte)
            except OSError:
                loris_closed[i] = time.monotonic()
        pos += 1
        stop.wait(0.2)


started = time.monotonic()
t = threading.Thread(target=trickle, daemon=True)
t.start()

# ---- a normal client meanwhile ----------------------------------------------------

def normal_get(path):
    """One GET on a new connection; (status, seconds)."""
    t0 = time.monotonic()
    data = raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                       % origin.url(path), timeout=10)
    took = time.monotonic() - t0
    r = parse_response(data) if data else None
    return (r.status if r else None), took


latencies, statuses = [], []
while time.monotonic() - started < 4:
    status, took = normal_get('/normal')
    latencies.append(took)
    statuses.append(status)
    time.sleep(0.05)
is_(set(statuses), {200}, 'a normal client is served during the attack (%d requests)' % len(statuses))
lat = sorted(latencies)
diag('normal client during the attack: %d requests, latency min %.1f ms, median %.1f ms, '
     'max %.1f ms' % (len(lat), lat[0] * 1000, lat[len(lat) // 2] * 1000, lat[-1] * 1000))
quiet = sorted(normal_get('/after')[1] for _ in range(20))
diag('the same client after the slow clients were cut off: median %.1f ms'
     % (quiet[len(quiet) // 2] * 1000))

# ---- every attacker was cut off ------------------------------------------------------


def closed_after(clients, timeout):
    """How many of clients the proxy closed (EOF or reset) within timeout s."""
    n = 0
    for c in clients:
        try:
            if c.wait_closed(timeout):
                n += 1
        except OSError:
            n += 1
    return n


is_(closed_after(silent, 10), N_SILENT,
    'connections that never send a byte: all closed (client_header_timeout)')
ok(wait_until(lambda: len(loris_closed) == N_LORIS, 10),
   'slowloris heads, a byte every 200 ms: all cut off (%d of %d)' % (len(loris_closed), N_LORIS))
stop.set()
t.join(5)
is_(len(loris_408), N_LORIS, 'slowloris: each got a 408 before the close')
if loris_408 and loris_closed:
    cut = sorted(v - started for v in loris_408.values())
    gone = sorted(v - started for v in loris_closed.values())
    diag('slowloris: 408 after %.1f to %.1f s (client_header_timeout 2s), closed after %.1f '
         'to %.1f s (the lingering close reads on for up to 5 s)'
         % (cut[0], cut[-1], gone[0], gone[-1]))
ok(d.wait_for_log('error', r'client 127\.0\.0\.1 timed out sending the request head'),
   'slowloris: logged as a head timeout')
ok(wait_until(lambda: any('TAG_NONE/408 ' in line for line in d.access_log()), 5),
   'slowloris: a 408 in the access log')
is_(closed_after(uploads, 10), N_UPLOAD, 'stalled uploads: all closed (read_timeout)')
ok(d.wait_for_log('error', r'timed out sending the request body'),
   'stalled upload: logged')

# The slow readers: the proxy gives up once nothing moved for send_timeout,
# with a reset (the kernel drops what it still held for them).
n = 0
for c in readers:
    got, how = 0, 'open'
    try:
        c.sock.settimeout(5)
        while got <= 33 * MiB:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                how = 'eof'
                break
            got += len(chunk)
    except ConnectionResetError:
        how = 'reset'
    except OSError:
        how = 'timeout'
    if how in ('reset', 'eof') and got < 32 * MiB:
        n += 1
is_(n, N_READERS, 'slow readers of a 32 MiB body: all cut off before the end')
ok(wait_until(lambda: sum(1 for line in d.access_log()
                          if 'TCP_MISS_ABORTED/200' in line and '/big ' in line) == N_READERS, 5),
   'slow readers: each logged as an aborted transfer')
ok(d.wait_for_log('error', r'client 127\.0\.0\.1 timed out reading the response'),
   'slow reader: logged as a send timeout')
ok(wait_until(lambda: d.connections_to(bigorigin.port) == 0, 10),
   'slow readers: their upstream connections are closed')
ok(wait_until(lambda: d.connections_to(uporigin.port) == 0, 10),
   'stalled uploads: their upstream connections are closed')

for c in silent + loris + uploads + readers:
    c.close()
r = curl_via(d.port, origin.url('/end'))
is_(r.status, 200, 'after the attack: served')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
