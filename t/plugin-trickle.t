#!/usr/bin/env python3
# plugin-trickle.t - long holds: the head and a trickle go out early, the last hold_trickle_keep bytes only after the verdict.
import hashlib
import os
import re
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('testkit')
set_timeout(60)

TOTAL = 256 * 1024
KEEP = 64 * 1024
DATA = os.urandom(TOTAL)
SHA = hashlib.sha256(DATA).hexdigest()


def handler(req):
    if req.path == '/chunked':
        return Response(chunked=True, body_iter=[DATA[i:i + 65536] for i in range(0, TOTAL, 65536)])
    return Response(headers=[('Content-Type', 'application/octet-stream')], body=DATA)


origin = Origin(handler)
d = up(Daemon(conf('''
hold_trickle_after 1s
hold_trickle_interval 200ms
hold_trickle_bytes 8k
hold_trickle_keep 64k
body_memory_limit 64k
plugin testkit {
    trail_file %%TESTDIR%%/trail
}
''')))
trail = Trail(os.path.join(testdir(), 'trail'))
SCAN_MS = 3000


def watch(path, verdict, id):
    """Fetches through a raw connection while the plugin takes SCAN_MS to
    decide; returns (head, body bytes seen at 0.7 s, just before the
    verdict, and at the end, the whole body, closed cleanly)."""
    c = RawClient(d.port, timeout=10)
    t0 = time.monotonic()
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: %s\r\nX-Test-Hold: response\r\n'
           'X-Test-Verdict: respbody=defer-thread%s/%d\r\nConnection: close\r\n\r\n'
           % (origin.url(path), id, verdict, SCAN_MS))

    def body_len_at(t):
        while time.monotonic() - t0 < t:
            c.recv(1 << 20, timeout=max(0.01, t - (time.monotonic() - t0)))
        i = c.data.find(b'\r\n\r\n')
        return (c.data[:i].decode('latin-1') if i >= 0 else None,
                len(c.data) - (i + 4) if i >= 0 else 0)
    _, early = body_len_at(0.7)
    head, before = body_len_at(SCAN_MS / 1000.0 - 0.3)
    c.recv_all(timeout=5)
    raw = c.data
    c.close()
    return head, early, before, raw


for path, framing in (('/length', 'Content-Length'), ('/chunked', 'chunked')):
    head, early, before, raw = watch(path, '', 'ok' + path)
    what = 'trickle (%s)' % framing
    is_(early, 0, '%s: nothing before hold_trickle_after' % what)
    like(head, r'^HTTP/1\.1 200 ', '%s: the head went out after hold_trickle_after' % what)
    if framing == 'Content-Length':
        like(head, r'(?i)\r\nContent-Length: %d\r\n' % TOTAL, '%s: with the length' % what)
    ok(0 < before <= TOTAL - KEEP + (16 * 1024 if framing == 'chunked' else 0),
       '%s: some bytes trickled, never the last hold_trickle_keep before the verdict '
       '(%d of %d)' % (what, before, TOTAL))
    r = parse_response(raw)
    ok(r.complete and hashlib.sha256(r.body).hexdigest() == SHA,
       '%s: after the verdict the rest came, byte-exact' % what) or diag(len(r.body))

# A block after trickling began cannot show a page: the transfer breaks.
mark = d.log_mark('error')
r = curl_via(d.port, origin.url('/length'), '-H', 'X-Test-Id: blocked', '-H', 'X-Test-Hold: response',
             '-H', 'X-Test-Verdict: respbody=defer-thread:block/%d' % SCAN_MS)
is_(r.rc, 18, 'blocked after trickling: curl sees a partial file (exit 18)')
ok(0 < len(r.body) <= TOTAL - KEEP, 'the client got only the trickle (%d bytes)' % len(r.body))
ok(d.wait_for_log('error', r'blocked by testkit: testkit says no', since=mark),
   'the block is logged')
ok(d.wait_for_log('error', r'transaction aborted: blocked after the response started', since=mark),
   'and why the transfer broke')
ok(trail.wait(lambda t: t.count('blocked', 'TXN_END') == 1), 'TXN_END once')

# A quick verdict never trickles.
t0 = time.monotonic()
r = curl_via(d.port, origin.url('/length'), '-H', 'X-Test-Hold: response',
             '-H', 'X-Test-Verdict: respbody=defer-thread/100')
ok(r.status == 200 and hashlib.sha256(r.body).hexdigest() == SHA, 'a quick verdict: byte-exact')
is_(len(re.findall(r'trickling to keep the client waiting', d.error_log())), 3,
    'only the three slow holds trickled')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
