#!/usr/bin/env python3
# plugin-scanner.t - the "scanner" service: a provider, a user holding bodies, clean/infected/error, deadlines, cancels, events.
import hashlib
import os
import re
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('fakescan', 'fakescan-user', 'testkit')
set_timeout(60)

SMALL_CLEAN = b'just some text\n' * 10
SMALL_BAD = b'hello ' + b'FAKE-VIRUS' + b' bye\n'
SMALL_ERR = b'xx FAKE-ERROR xx\n'
BIG = os.urandom(200 * 1024).replace(b'FAKE', b'fake')
# The marker straddles the 64 KiB read boundary of the engine.
BIG_BAD = BIG[:65536 - 4] + b'FAKE-VIRUS' + BIG[65536 + 6:]
BIG_ERR = BIG[:150000] + b'FAKE-ERROR' + BIG[150010:]
BODIES = {'small-clean': SMALL_CLEAN, 'small-bad': SMALL_BAD, 'small-err': SMALL_ERR,
          'big-clean': BIG, 'big-bad': BIG_BAD, 'big-err': BIG_ERR}


def handler(req):
    name = req.path.strip('/').split('/')[0]
    if name in BODIES:
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=BODIES[name])
    return Response(headers=[('X-Got-Sha', req.body_sha256)], body=b'stored\n')


origin = Origin(handler)
CONF = '''
body_memory_limit 64k
hold_trickle_after 0
plugin fakescan-user {
    on_error %%ON_ERROR%%
    scan_deadline %%DEADLINE%%
    scan_uploads on
}
plugin fakescan {
    delay %%DELAY%%
}
plugin testkit {
    event_file %%TESTDIR%%/events
    subscribe av.infected
}
'''
d = up(Daemon(conf(CONF), subst={'ON_ERROR': 'open', 'DEADLINE': '5s', 'DELAY': '0'}))
events = os.path.join(testdir(), 'events')


def events_text():
    return open(events).read() if os.path.exists(events) else ''


for name in ('small', 'big'):
    how = 'mem' if name == 'small' else 'fd'
    mark = d.log_mark('error')
    r = curl_via(d.port, origin.url('/%s-clean' % name))
    ok(r.status == 200 and r.body == BODIES[name + '-clean'],
       '%s body (scanned from %s), clean: delivered' % (name, how))
    ok(d.wait_for_log('error', r'\[info\] .*\*\d+ fakescan-user: clean \(%s, %d bytes\)'
                      % (how, len(BODIES[name + '-clean'])), since=mark),
       '%s, clean: scanned %s, every byte' % (name, how))

    url = origin.url('/%s-bad' % name)
    r = curl_via(d.port, url)
    is_((r.status, r.header('X-Portcullis-Block')),
        (403, 'fakescan-user; virus found: Fake.Test.Virus'),
        '%s, infected: blocked with the virus name in the reason' % name)
    like(r.body, r'virus found: Fake\.Test\.Virus', '%s, infected: the block page says so' % name)
    like(r.body, r'<dt>Category</dt><dd>malware</dd>', '%s, infected: category malware' % name)
    ok(d.wait_for_log('error', r'\[warn\] .*fakescan-user: infected \(%s\): Fake\.Test\.Virus in %s'
                      % (how, re.escape(url)), since=mark), '%s, infected: logged' % name)
    ok(wait_until(lambda: url in events_text(), 3), '%s, infected: the av.infected event arrived' % name)
    like(events_text(), r'EVENT testkit topic=av\.infected plugin=fakescan-user client=127\.0\.0\.1 '
         r'subject=%s detail=Fake\.Test\.Virus value=%d' % (re.escape(url), len(BODIES[name + '-bad'])),
         '%s, infected: client, URL, virus name and size in the event' % name)

    r = curl_via(d.port, origin.url('/%s-err' % name))
    ok(r.status == 200 and r.body == BODIES[name + '-err'],
       '%s, scan error with on_error open: delivered' % name)
    ok(d.wait_for_log('error', r'\[warn\] .*fakescan-user: scan failed \(%s\): the engine failed'
                      % how, since=mark), '%s, scan error: logged' % name)

# Uploads.
upfile = write_file('up-bad', BIG_BAD)
nreq = len(origin.requests)
r = curl_via(d.port, origin.url('/upload'), '--data-binary', '@' + upfile)
is_((r.status, r.header('X-Portcullis-Block')), (403, 'fakescan-user; virus found: Fake.Test.Virus'),
    'infected upload (spooled): blocked')
is_(len(origin.requests), nreq, 'infected upload: the origin never saw it')
upfile = write_file('up-ok', BIG)
r = curl_via(d.port, origin.url('/upload'), '--data-binary', '@' + upfile)
is_((r.status, r.header('X-Got-Sha')), (200, hashlib.sha256(BIG).hexdigest()),
    'clean upload: the origin got it byte-exact')

# A slow engine: reconfigured by a reload (the provider's reconfigure()).
d.subst.update({'ON_ERROR': 'closed', 'DEADLINE': '600ms', 'DELAY': '2s'})
d.write_conf(conf(CONF))
ok(d.reload(r'configuration reloaded'), 'reload: a slow engine and a short deadline')
t0 = time.monotonic()
r = curl_via(d.port, origin.url('/small-clean'))
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'fakescan-user; the download could not be checked: deadline passed'),
    'a scan past its deadline with on_error closed: blocked')
ok(time.monotonic() - t0 < 1.8, 'the deadline, not the engine, decided (%.2fs)' % (time.monotonic() - t0))
like(d.error_log(), r'fakescan-user: still scanning \(\d+ ms\)', 'the engine sent keep-alive ticks meanwhile')

# The client goes away during a scan: the user cancels it; the engine's
# late result never calls back.
mark = d.log_mark('error')
c = RawClient(d.port)
c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/big-clean'))
time.sleep(0.3)
c.close()
ok(d.wait_for_log('error', r'fakescan-user: scan cancelled', since=mark), 'client gone: the scan was cancelled')
time.sleep(2.2)
after = d.error_log()[mark:]
unlike(after, r'fakescan-user: (clean|infected|scan failed)', 'no callback came after the cancel')
unlike(after[after.find('scan cancelled'):], r'still scanning', 'no tick either')
d.subst.update({'ON_ERROR': 'open', 'DEADLINE': '5s', 'DELAY': '0'})
d.write_conf(conf(CONF))
ok(d.reload(r'configuration reloaded'), 'reload back to a fast engine')
r = curl_via(d.port, origin.url('/small-bad'))
is_(r.status, 403, 'still scanning after the cancels')

ok(d.stop(), 'graceful stop')
log = d.error_log()
ok(re.search(r'fakescan-user: releasing fakescan.*\n(.*\n)*.*fakescan: engine stopped after \d+ scans',
             log), 'shutdown: the user before the provider')
d.check_logs()

# The same with the provider listed first: shutdown follows the reverse of
# the init order, not the file.
d2 = up(Daemon(conf('''
plugin fakescan {
}
plugin fakescan-user {
}
''', logs='order-'), name='order'))
ok(d2.stop(), 'provider listed first: graceful stop')
ok(re.search(r'fakescan-user: releasing fakescan.*\n(.*\n)*.*fakescan: engine stopped after \d+ scans',
             d2.error_log()), 'provider listed first: the user still stops first')
d2.check_logs()
done_testing()
