#!/usr/bin/env python3
# workers.t - several event loops: "workers 0" means one per CPU the daemon
# may run on; each worker accepts on a socket of its own (a SO_REUSEPORT
# group), so new connections are spread over every worker; a second daemon
# on the same address is refused as with one socket; a reload that adds
# and removes a listen address gives every worker the new one and closes
# the old one; a graceful stop lets a slow download on each worker finish.
import hashlib
import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
SLOW = os.urandom(1024 * 1024)


def handler(req):
    if req.path.startswith('/slow'):
        # About 1.5 s of streaming, so the stop lands in the middle.
        return Response(body_iter=[(SLOW[i:i + 65536], 0.1) for i in range(0, len(SLOW), 65536)],
                        length=len(SLOW))
    return Response(body=b'ok\n')


origin = Origin(handler)
CONF = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
workers %%WORKERS%%
error_log %%TESTDIR%%/%%NAME%%.error.log debug
access_log %%TESTDIR%%/%%NAME%%.access.log squid
'''
ACCEPT_RE = re.compile(r'^\S+ \S+ \[debug\] \d+#(\d+): \*\d+ accepted connection from '
                       r'127\.0\.0\.1:(\d+)$', re.M)


def workers_of(d, since, ports):
    """The worker that accepted each of the client ports, from the debug log."""
    d.wait_for_log('error', r'accepted connection from 127\.0\.0\.1:%d$' % ports[-1], since=since)
    text = open(d.error_log_path, errors='replace').read()[since:]
    seen = {int(m.group(2)): int(m.group(1)) for m in ACCEPT_RE.finditer(text)}
    return [seen.get(p) for p in ports]


def clients(port, n):
    """n requests, each on a connection of its own; returns (statuses, client ports)."""
    statuses, ports = [], []
    for _ in range(n):
        with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
            ports.append(s.getsockname()[1])
            s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                      % origin.url('/n').encode())
            data = b''
            s.settimeout(5)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            r = parse_response(data) if data else None
            statuses.append(r.status if r else None)
    return statuses, ports


# ---- workers 0: one per CPU of the affinity mask ------------------------------------------

if hasattr(os, 'sched_setaffinity') and len(os.sched_getaffinity(0)) >= 1:
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mask)})      # the daemon inherits one CPU
    try:
        d0 = Daemon(CONF, name='auto', subst={'WORKERS': 0, 'NAME': 'auto'}).start()
    finally:
        os.sched_setaffinity(0, mask)
    ok(d0.wait_for_log('error', r'started \(pid \d+, 1 worker\)'),
       'workers 0 started on one allowed CPU: 1 worker')
    ok(d0.stop(), 'workers 0: graceful stop')
    d0.check_logs()
    if len(mask) >= 2:
        d0 = Daemon(CONF, name='auto2', subst={'WORKERS': 0, 'NAME': 'auto2'}).start()
        ok(d0.wait_for_log('error', r'started \(pid \d+, %d workers\)' % len(mask)),
           'workers 0 with %d allowed CPUs: %d workers' % (len(mask), len(mask)))
        ok(d0.stop(), 'workers 0 (all CPUs): graceful stop')
        d0.check_logs()
    else:
        skip('only one CPU: the one-per-CPU count is the case above', 4)

# ---- accept balanced over the workers ---------------------------------------------------------

d = Daemon(CONF, subst={'WORKERS': 2, 'NAME': 'main'}).start()
ok(d.wait_for_log('error', r'started \(pid \d+, 2 workers\), listening on 127\.0\.0\.1:%d' % d.port),
   'workers 2: started with two workers')

# Two listening sockets on the address, both the daemon's.
def listening_sockets(pid, port):
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:['):
            inodes.add(link[8:-1])
    n = 0
    with open('/proc/net/tcp') as f:
        next(f)
        for row in f:
            cols = row.split()
            if cols[3] == '0A' and int(cols[1].rsplit(':', 1)[1], 16) == port and cols[9] in inodes:
                n += 1
    return n


is_(listening_sockets(d.pid, d.port), 2, 'one listening socket per worker (a SO_REUSEPORT group)')

mark = d.log_mark('error')
statuses, ports = clients(d.port, 40)
is_(statuses, [200] * 40, '40 connections, one request each: all served')
who = workers_of(d, mark, ports)
ok(None not in who, 'every connection was accepted by a worker (debug log)')
counts = {w: who.count(w) for w in set(who) if w is not None}
# The kernel picks by a hash of the address pair: all 40 on one worker would
# happen once in 2^39 runs.
is_(sorted(counts), [1, 2], 'both workers accepted connections: %s' % counts)

# ---- a second daemon on the same address is refused ----------------------------------------

d2 = Daemon(CONF.replace('%%PORT%%', str(d.port)), name='second',
            subst={'WORKERS': 2, 'NAME': 'second'})
rc, out = None, ''
try:
    d2.start(timeout=5)
    rc = 'started'
except DaemonError as e:
    out = str(e)
    rc = d2.returncode
ok(rc not in ('started', None) and re.search(r'Address already in use', out),
   'a second daemon on the same address does not join the group: address in use')
if rc == 'started':
    d2.stop()
statuses, ports = clients(d.port, 10)
is_(statuses, [200] * 10, 'the first daemon still serves every connection')

# ---- reload: a new address on every worker, the old one closed ------------------------------

old_port = d.port
new_port = free_port()
d.write_conf(CONF.replace('%%PORT%%', str(new_port)))
like(d.reload(), r'configuration reloaded', 'reload with the listen address changed')
is_(listening_sockets(d.pid, new_port), 2, 'after reload: two sockets on the new address')
is_(listening_sockets(d.pid, old_port), 0, 'after reload: none left on the old address')
mark = d.log_mark('error')
statuses, ports = clients(new_port, 40)
is_(statuses, [200] * 40, 'new address: 40 connections served')
who = workers_of(d, mark, ports)
is_(sorted(set(w for w in who if w is not None)), [1, 2], 'new address: both workers accept on it')
def refused(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


ok(refused(old_port), 'old address: connection refused')

# A reload that cannot bind keeps both workers on the current address.
blocker = socket.socket()
blocker.bind(('127.0.0.1', 0))
blocker.listen(1)
d.write_conf(CONF.replace('%%PORT%%', str(new_port)) + 'listen 127.0.0.1:%d\n' % blocker.getsockname()[1])
like(d.reload(), r'reload failed', 'reload with an address in use: refused as a whole')
blocker.close()
is_(listening_sockets(d.pid, new_port), 2, 'after the failed reload: both sockets kept')
statuses, ports = clients(new_port, 4)
is_(statuses, [200] * 4, 'after the failed reload: still served')

# ---- graceful stop with a download on each worker ----------------------------------------------

results = {}


def download(i):
    try:
        data = raw_request(new_port, 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                           % origin.url('/slow%d' % i), timeout=20)
        r = parse_response(data)
        results[i] = (r.status, hashlib.sha256(r.body).hexdigest(), r.complete)
    except Exception as e:  # noqa: BLE001
        results[i] = repr(e)


# Enough downloads that both workers have some (the hash picks).
mark = d.log_mark('error')
threads = [threading.Thread(target=download, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
ok(wait_until(lambda: sum(1 for r in origin.requests if r.path.startswith('/slow')) == 8, 10),
   'eight slow downloads in flight')
text = open(d.error_log_path, errors='replace').read()[mark:]
busy = sorted(set(int(m.group(1)) for m in ACCEPT_RE.finditer(text)))
ok(d.stop(timeout=20), 'graceful stop with downloads in flight on workers %s' % busy)
for t in threads:
    t.join(20)
want = (200, hashlib.sha256(SLOW).hexdigest(), True)
is_([results.get(i) for i in range(8)], [want] * 8, 'every download finished byte-exact')
d.check_logs()
done_testing()
