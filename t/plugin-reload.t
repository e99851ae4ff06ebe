#!/usr/bin/env python3
# plugin-reload.t - SIGHUP with plugins: all or nothing, new configuration for new transactions, old snapshot kept.
import os
import re
import sys
import threading
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('testkit', 'testkit2', 'testkit3', 'fakescan')
set_timeout(60)


def handler(req):
    if req.path == '/slow':
        return Response(body=b'slow answer\n', delay=2)
    return Response(body=b'hello\n')


origin = Origin(handler)
TRAIL = os.path.join(testdir(), 'trail')
BASE = '''
plugin testkit {
    trail_file %%TESTDIR%%/trail
    tag %%TAG%%
%%BLOCK%%}
%%MORE%%'''
d = Daemon(conf(BASE), subst={'TAG': 'one', 'BLOCK': '    block_host blocked.test\n', 'MORE': ''})
up(d)
trail = Trail(os.path.join(testdir(), 'trail'))


def reconf(tag, block='', more=''):
    d.subst.update({'TAG': tag, 'BLOCK': block, 'MORE': more})
    d.write_conf(conf(BASE))


def blocked():
    r = curl_via(d.port, 'http://blocked.test/x')
    return r.status == 403 and r.header('X-Portcullis-Block', '').startswith('testkit;')


def tag_now():
    return curl_via(d.port, origin.url('/t')).header('X-Tag-testkit')


ok(blocked(), 'start: blocked.test is blocked')
is_(tag_now(), 'one', 'start: tag one')

# ---- a plugin rejects the new configuration: nothing changes ------------------

reconf('two', '', 'plugin testkit2 {\n    tag bad\n    fail_finish on\n}\n')
rc, out = d.run_check()
is_(rc, 1, '-t on the rejected configuration fails too')
line = d.reload()
like(line, r'\[error\] .*reload failed, keeping the running configuration: %s:%d: '
     r"plugin 'testkit2': fail_finish is set \(tag bad\)"
     % (re.escape(d.conf_path), d.conf_text.splitlines().index('plugin testkit2 {') + 1),
     'the error log names FILE:LINE of the plugin that refused')
ok(blocked(), 'after the rejected reload: blocked.test is still blocked')
is_(tag_now(), 'one', 'after the rejected reload: still tag one')
is_(trail.lines(what='RECONFIGURE'), [], 'no plugin was reconfigured')
ok(trail.wait(lambda t: t.lines('-', 'testkit', 'CONF_FREE')
              and t.lines('-', 'testkit', 'CONF_FREE')[-1].kv.get('tag') == 'two'),
   "the rejected configuration's objects were freed")

# ---- a new plugin's init() fails: nothing changes, and the plugin that did
# start in that attempt keeps a valid configuration ----------------------------

reconf('two', '', 'plugin testkit3 {\n    trail_file ' + TRAIL + '\n    tag three-a\n}\n'
       'plugin fakescan {\n    fail_init on\n}\n')
line = d.reload()
like(line, r"reload failed, keeping the running configuration: .*:\d+: plugin 'fakescan' "
     r"failed to start: fail_init is set", 'a failing init() fails the reload, FILE:LINE')
like(trail.text(), r'- testkit3 INIT tag=three-a', 'testkit3 did start in that attempt')
ok(blocked(), 'after the failed init: still the old configuration')
r = curl_via(d.port, origin.url('/t'), '-H', 'X-Test-Id: after-failed-init')
is_(trail.count('after-failed-init', 'REQUEST_HEADERS', 'testkit3'), 0,
    'testkit3 is not part of the running configuration')

# ---- a good reload ------------------------------------------------------------

# A transaction under the old snapshot, held by a slow origin.
slow = {}


def slow_get():
    slow['r'] = curl_via(d.port, origin.url('/slow'), '-H', 'X-Test-Id: slow')


th = threading.Thread(target=slow_get)
th.start()
ok(origin.wait_requests(len(origin.requests) + 1, 3) or True, 'the slow request is under way')
time.sleep(0.3)
reconf('three', '', 'plugin testkit3 {\n    trail_file ' + TRAIL + '\n    tag three-b\n}\n')
ok(d.reload(r'configuration reloaded'), 'a good reload')
ok(not blocked(), 'new transactions: the new configuration (blocked.test no longer blocked)')
is_(tag_now(), 'three', 'new transactions: tag three')
r = curl_via(d.port, origin.url('/t'), '-H', 'X-Test-Id: new')
is_(r.header('X-Tag-testkit3'), 'three-b', 'testkit3 joined with its new configuration')
like(trail.text(), r'- testkit RECONFIGURE old_tag=one new_tag=three',
     'testkit: reconfigure(old, new) with the running object as old')
like(trail.text(), r'- testkit3 RECONFIGURE old_tag=three-a new_tag=three-b',
     'testkit3: reconfigure() got the object its init() had, still alive')
unlike(trail.text(), r'CONF_FREE tag=one\b', 'the old snapshot lives while a transaction uses it')
th.join(10)
r = slow.get('r')
is_(r and (r.status, r.body, r.header('X-Tag-testkit')), (200, b'slow answer\n', 'one'),
    'the transaction that started before completes under the old snapshot')
ok(trail.wait(lambda t: t.lines('-', 'testkit', 'CONF_FREE')
              and any(ln.kv.get('tag') == 'one' for ln in t.lines('-', 'testkit', 'CONF_FREE')), 3),
   'then the old configuration object is freed')
end = [i for i, ln in enumerate(trail.all()) if ln.id == 'slow' and ln.what == 'TXN_END']
free = [i for i, ln in enumerate(trail.all()) if ln.what == 'CONF_FREE' and ln.kv.get('tag') == 'one']
ok(end and free and end[0] < free[0], '... only after that transaction ended')

# ---- a plugin dropped and added back ------------------------------------------

reconf('four')
ok(d.reload(r'configuration reloaded'), 'reload without testkit3')
r = curl_via(d.port, origin.url('/t'), '-H', 'X-Test-Id: dropped')
is_(trail.count('dropped', 'REQUEST_HEADERS', 'testkit3'), 0, 'a plugin dropped from the file is not called')
for _ in range(3):
    curl_via(d.port, origin.url('/t'))
reconf('five', '', 'plugin testkit3 {\n    trail_file ' + TRAIL + '\n    tag three-c\n}\n')
ok(d.reload(r'configuration reloaded'), 'reload with testkit3 again')
like(trail.text(), r'- testkit3 RECONFIGURE old_tag=three-b new_tag=three-c',
     'added back: reconfigure() from the object it last had, still alive')
r = curl_via(d.port, origin.url('/t'))
is_(r.header('X-Tag-testkit3'), 'three-c', 'added back: it serves with the new object')

ok(d.stop(), 'graceful stop')
is_(len([ln for ln in trail.lines('-', 'testkit3') if ln.what == 'INIT']), 1,
    'testkit3 init() ran once over all the reloads')
d.check_logs()
done_testing()
