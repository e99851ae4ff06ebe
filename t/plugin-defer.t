#!/usr/bin/env python3
# plugin-defer.t - deferral tokens: resume on the loop and from threads, deadlines, cancels, late resumes, TXN_END once.
import os
import re
import signal
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('testkit', 'testkit2')
set_timeout(90)


def handler(req):
    if req.path == '/slowbody':
        return Response(body_iter=[(b'x' * 1000, 0), (b'y' * 1000, 3)], length=2000)
    if req.path == '/cut':
        return Response(body=b'z' * 100000, abort_after=5000)
    if req.path == '/late':
        return Response(body=b'late\n', delay=2)
    if req.path == '/split':
        # The head alone first: the deferred head keeps no body bytes.
        return Response(body_iter=[(b'split body\n', 0.1)], length=11)
    return Response(headers=[('Content-Type', 'text/plain')], body=b'hello from origin\n')


origin = Origin(handler)
d = up(Daemon(conf('''
connect_ports 1-65535
read_timeout 700ms
drain_timeout 1s
defer_timeout 800ms
plugin testkit {
    trail_file %%TESTDIR%%/trail
}
plugin testkit2 {
    trail_file %%TESTDIR%%/trail
}
''')))
trail = Trail(os.path.join(testdir(), 'trail'))


def get(id, verdict, path=None, *args):
    t0 = time.monotonic()
    r = curl_via(d.port, origin.url(path or '/' + id), '-H', 'X-Test-Id: ' + id,
                 '-H', 'X-Test-Verdict: ' + verdict, *args)
    r.elapsed = time.monotonic() - t0
    return r


def ended_once(id, plugins=('testkit', 'testkit2'), slot=True):
    """TXN_END once for each plugin, testkit's slot destroyed once (when a
    hook before TXN_END made one)."""
    done = trail.wait(lambda t: all(t.count(id, 'TXN_END', p) == 1 for p in plugins)
                      and t.count(id, 'SLOT_DTOR', 'testkit') == int(slot))
    return ok(done and all(trail.count(id, 'TXN_END', p) == 1 for p in plugins)
              and trail.count(id, 'SLOT_DTOR', 'testkit') == int(slot),
              '%s: TXN_END exactly once per plugin, the slot destroyed once' % id) or \
        diag(trail.lines(id))


# ---- resumes ----------------------------------------------------------------

r = get('loop', 'testkit:request=defer-resume/200')
is_(r.status, 200, 'defer_resume from the loop (loop_post): continue -> 200')
ok(r.elapsed >= 0.19, 'the transaction waited for the resume (%.2fs)' % r.elapsed)
is_(trail.calls('loop')[:2], [('testkit', 'REQUEST_HEADERS'), ('testkit2', 'REQUEST_HEADERS')],
    'the chain went on with the next plugin after the resume')
ended_once('loop')

r = get('loop-block', 'testkit:request=defer-resume:block/50', None,
        '-H', 'X-Test-Reason: decided later')
is_((r.status, r.header('X-Portcullis-Block')), (403, 'testkit; decided later'),
    'defer_resume(PC_BLOCK) after txn_block(): the block page with the details')
is_(trail.count('loop-block', 'REQUEST_HEADERS', 'testkit2'), 0, '... and the chain stopped')

r = get('thread', 'testkit:request=defer-thread/100,testkit2:request=defer-thread/100')
is_(r.status, 200, 'defer_resume_threadsafe from a thread, two plugins in turn: 200')
ok(r.elapsed >= 0.19, 'both deferrals were waited for in turn (%.2fs)' % r.elapsed)
is_(trail.count('thread', 'BAD_LOOP_CURRENT'), 0, 'loop_current() is NULL on a thread of our own')

r = get('thread-block', 'testkit2:request=defer-thread:block/100', None,
        '-H', 'X-Test-Reason: from a thread', '-H', 'X-Test-Category: threads',
        '-H', 'X-Test-Status: 451')
is_((r.status, r.header('X-Portcullis-Block')), (451, 'testkit2; from a thread'),
    'resume_threadsafe(PC_BLOCK, 451, reason): status and reason arrive')
like(r.body, r'<dt>Category</dt><dd>threads</dd>', '... and the category')
ended_once('thread-block')

r = get('work', 'testkit:request=defer-work/100')
is_(r.status, 200, 'work_queue(): blocking work on the host pool, done() resumes: 200')

r = get('inline', 'testkit:request=defer-inline')
is_(r.status, 200, 'resumed inside its own hook before returning PC_DEFER: 200')
r = get('inline-block', 'testkit:request=defer-inline:block')
is_(r.status, 403, '... and with PC_BLOCK: 403')
ended_once('inline-block')

r = get('resp', 'testkit:response=defer-thread/200,testkit2:response=defer-resume/100')
is_((r.status, r.body), (200, b'hello from origin\n'), 'deferred response head: the response follows')
ok(r.elapsed >= 0.29, 'the response waited for both plugins (%.2fs)' % r.elapsed)
for i in range(3):
    r = get('resp-split%d' % i, 'testkit:response=defer-resume/50', '/split')
    is_((r.status, r.body), (200, b'split body\n'),
        'deferred head that came alone, body after the resume (%d)' % i)

r = get('resp-block', 'testkit2:response=defer-thread:block/100')
is_((r.status, r.header('X-Portcullis-Block')), (403, 'testkit2; testkit2 says no'),
    'a deferred response head can still be blocked with a page')
ended_once('resp-block')

# CONNECT (curl tunnels plain HTTP with -p).
r = curl_via(d.port, origin.url('/tunnel'), '-p', '--proxy-header',
             'X-Test-Verdict: testkit:connect=defer-thread/100', '--proxy-header', 'X-Test-Id: tun')
is_((r.connect_status, r.status, r.body), (200, 200, b'hello from origin\n'),
    'deferred CONNECT resumed from a thread: the tunnel works')
r = curl_via(d.port, origin.url('/tunnel'), '-p', '--proxy-header',
             'X-Test-Verdict: testkit:connect=defer-resume:block/50', '--proxy-header',
             'X-Test-Id: tun-block')
is_(r.connect_status, 403, 'deferred CONNECT resumed with PC_BLOCK: 403')
ended_once('tun')
ended_once('tun-block')

# ---- deadlines ----------------------------------------------------------------

mark = d.log_mark('error')
r = get('timeout', 'testkit:request=defer-timeout/300')
is_(r.status, 200, 'deadline with fallback continue: the request goes on')
ok(0.28 <= r.elapsed < 2, 'after the deadline (%.2fs)' % r.elapsed)
ok(d.wait_for_log('error', r'\[warn\] .*\*\d+ plugin testkit did not decide in time; applying '
                  r'its fallback verdict \(continue\)', since=mark), 'the fallback is logged')
ok(trail.count('timeout', 'CANCEL', 'testkit') == 1,
   'the plugin hears that its token died (cancel callback at the deadline)')
ok(trail.wait(lambda t: t.count('timeout', 'LATE_RESUME_THREADSAFE') == 1, 3),
   'a late resume_threadsafe(PC_BLOCK) came after the deadline')
ended_once('timeout')

r = get('host-default', 'testkit:request=defer-never')
ok(r.status == 200 and 0.75 <= r.elapsed < 3,
   'a deferral without its own timeout ends at defer_timeout (%.2fs)' % r.elapsed)
is_(trail.count('host-default', 'CANCEL', 'testkit'), 1, '... with a cancel')

r = get('timeout-block', 'testkit:request=defer-timeout-block/300')
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'testkit; the check did not finish in time'), 'deadline with fallback block: 403')
ok(trail.wait(lambda t: t.count('timeout-block', 'LATE_RESUME_THREADSAFE') == 1, 3),
   'a late resume (continue) came after the block')
ended_once('timeout-block')

# A late resume must not reach the next transaction on the same connection,
# nor any other: the first request's late PC_BLOCK arrives while the second
# one waits for its own deadline.
with RawClient(d.port, timeout=10) as c:
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: ka1\r\n'
           'X-Test-Verdict: testkit:request=defer-timeout/200\r\n\r\n' % origin.url('/ka1'))
    r1 = c.recv_response()
    t0 = time.monotonic()
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: ka2\r\n'
           'X-Test-Verdict: testkit:request=defer-never/1500\r\n\r\n' % origin.url('/ka2'))
    r2 = c.recv_response()
    el = time.monotonic() - t0
is_(r1 and r1.status, 200, 'keep-alive: the first request passes at its deadline')
is_(r2 and r2.status, 200, 'keep-alive: the late PC_BLOCK of the first did not block the second')
ok(el >= 1.4, 'the second waited for its own deadline (%.2fs)' % el)
ok(trail.count('ka1', 'LATE_RESUME_THREADSAFE') == 1, 'the late resume did happen meanwhile')

# ---- cancels: the client goes away during a deferral -------------------------

for how, verdict, late in (('never', 'defer-never/10000', None),
                           ('thread', 'defer-thread/700', 'LATE_RESUME_THREADSAFE'),
                           ('loop', 'defer-resume/700', 'LATE_RESUME'),
                           ('work', 'defer-work/700', 'LATE_RESUME'),
                           ('resp', None, None)):
    id = 'abort-' + how
    v = 'testkit:request=' + verdict if verdict else 'testkit:response=defer-never/10000'
    c = RawClient(d.port)
    c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: %s\r\nX-Test-Verdict: %s\r\n\r\n'
           % (origin.url('/' + id), id, v))
    time.sleep(0.3)
    c.close()
    ok(trail.wait(lambda t: t.count(id, 'CANCEL', 'testkit') == 1, 3),
       '%s: the client left during the deferral: cancel callback ran once' % id)
    ended_once(id)
    if late:
        ok(trail.wait(lambda t: t.count(id, late) == 1, 3),
           '%s: the resume that came after the cancel was a harmless no-op' % id)
r = get('after-aborts', 'testkit:request=continue')
is_(r.status, 200, 'the proxy still serves after the aborted deferrals')

# ---- TXN_END in every other ending ------------------------------------------------

dead = Origin()
dead_url = dead.url('/gone')
dead.stop()
r = curl_via(d.port, dead_url, '-H', 'X-Test-Id: refused')
is_(r.status, 502, 'upstream connection refused: 502')
ended_once('refused')

r = get('timeout-up', 'continue', '/late')
is_(r.status, 504, 'upstream read timeout: 504')
ended_once('timeout-up')

r = get('cut', 'continue', '/cut')
ok(r.rc != 0 and len(r.body) < 100000, 'upstream reset in the middle of the body: a broken transfer')
ended_once('cut')

c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: client-gone\r\n\r\n' % origin.url('/slowbody'))
c.recv_until(b'x' * 1000, timeout=3)
c.close()
ended_once('client-gone')

r = raw_request(d.port, 'GET %s HTTP/1.1\r\nX-Test-Id: nohost\r\n\r\n' % origin.url('/x'))
is_(parse_response(r).status, 400, 'a request without Host: 400')
ended_once('nohost', slot=False)

# Stopping: a transaction deferred forever is cancelled by the drain
# timeout; a thread still holding a token resumes it while the daemon is
# already tearing down (after the workers exited, before the plugins'
# shutdown() returned): a no-op, with no use of freed host memory.
c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: at-stop\r\n'
       'X-Test-Verdict: testkit:request=defer-never/20000\r\n\r\n' % origin.url('/at-stop'))
c2 = RawClient(d.port)
c2.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: at-stop-thread\r\n'
        'X-Test-Verdict: testkit:request=defer-thread/1800\r\n\r\n' % origin.url('/at-stop'))
time.sleep(0.3)
ok(d.stop(), 'graceful stop with deferred transactions (drain_timeout 1s)')
c.close()
c2.close()
is_(trail.count('at-stop', 'CANCEL', 'testkit'), 1, 'stop: the deferral was cancelled')
ended_once('at-stop')
ended_once('at-stop-thread')
is_(trail.count('at-stop-thread', 'LATE_RESUME_THREADSAFE'), 1,
    'stop: the thread resumed its dead token during the teardown')
like(trail.text(), r'- testkit SHUTDOWN threads=0', 'every resumer thread had finished by shutdown()')
d.check_logs()
done_testing()
