#!/usr/bin/env python3
# reload.t - SIGHUP reloads all or nothing: a broken config (syntax, value,
# missing include, an address that cannot be bound) is reported with
# FILE:LINE in the error log and the running config keeps serving; a good
# one takes effect (allow_clients, a listen address added and one removed,
# also on kept-alive connections); a slow transaction in flight completes.
import hashlib
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
SLOW = os.urandom(2 * 1024 * 1024)


def handler(req):
    if req.path == '/slow':
        # About 2 s of streaming, so a reload lands in the middle.
        return Response(body_iter=[(SLOW[i:i + 65536], 0.06) for i in range(0, len(SLOW), 65536)],
                        length=len(SLOW))
    return Response(body=b'ok\n')


origin = Origin(handler)
HEAD = '''
listen 127.0.0.1:%%PORT%%
allow_local_upstreams on
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
'''
d = Daemon(HEAD + 'allow_clients 127.0.0.1/32\n').start()


def status_from(source, port=None):
    try:
        data = raw_request(port or d.port, 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                           % origin.url('/probe'), source=source, timeout=5)
    except OSError as e:
        return 'error: %s' % e.strerror
    return parse_response(data).status if data else None


def listening(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1):
            return True
    except OSError:
        return False


is_((status_from('127.0.0.1'), status_from('127.0.0.2')), (200, 403), 'before: 127.0.0.1 allowed, 127.0.0.2 not')

# ---- broken configurations are refused as a whole ------------------------------------

broken = [
    ('unknown directive', HEAD + 'allow_clients 127.0.0.2/32\nfrobnicate yes\n',
     r"reload failed, keeping the running configuration: %s:7: unknown directive 'frobnicate'"),
    ('bad value', HEAD + 'allow_clients 127.0.0.2/32\nread_timeout soon\n',
     r"reload failed, keeping the running configuration: %s:7: read_timeout: invalid duration 'soon'"),
    ('missing include', HEAD + 'allow_clients 127.0.0.2/32\ninclude missing.conf\n',
     r"reload failed, keeping the running configuration: %s:7: include: cannot open"),
]
for what, text, regex in broken:
    d.write_conf(text)
    line = d.reload()
    like(line, regex % d.conf_path.replace('.', r'\.'), '%s: reload failed with FILE:LINE in the error log'
         % what)
    like(line, r'^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] ', '%s: logged as an error' % what)
    is_((status_from('127.0.0.1'), status_from('127.0.0.2')), (200, 403),
        '%s: the old allow_clients still rules' % what)

# A listen address that is taken fails the reload after parsing succeeded.
blocker = socket.socket()
blocker.bind(('127.0.0.1', 0))
blocker.listen(1)
d.write_conf(HEAD + 'allow_clients 127.0.0.2/32\nlisten 127.0.0.1:%d\n' % blocker.getsockname()[1])
line = d.reload()
like(line, r'reload failed, keeping the running configuration: listen 127\.0\.0\.1:%d: '
     r'Address already in use' % blocker.getsockname()[1], 'address in use: reload failed')
is_((status_from('127.0.0.1'), status_from('127.0.0.2')), (200, 403),
    'address in use: nothing of the new config applied')
blocker.close()
ok(d.running(), 'the daemon kept running through the failed reloads')

# ---- a good reload, with a slow transaction in flight ----------------------------------------

result = {}


def slow_download():
    result['r'] = curl_via(d.port, origin.url('/slow'))


# A kept-alive connection opened under the old configuration.
keep = RawClient(d.port)
keep.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/keep1'))
is_(keep.recv_response().status, 200, 'kept-alive connection served before the reload')

th = threading.Thread(target=slow_download)
th.start()
ok(wait_until(lambda: any(q.path == '/slow' for q in origin.requests), 5),
   'slow download started before the reload')
d.write_conf(HEAD + 'listen 127.0.0.1:%%PORT_second%%\nallow_clients 127.0.0.2/32\n')
second = d.ports['second']
line = d.reload()
like(line, r'configuration reloaded', 'good config: reloaded')
ok(wait_until(lambda: status_from('127.0.0.2') == 200, 5), 'new allow_clients: 127.0.0.2 now allowed')
is_(status_from('127.0.0.1'), 403, 'new allow_clients: 127.0.0.1 now denied')
ok(wait_until(lambda: listening(second), 5), 'the added listen address accepts connections')
is_(status_from('127.0.0.2', port=second), 200, 'and serves requests')
keep.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/keep2'))
r = keep.recv_response()
is_(r and r.status, 403, 'a kept-alive connection from 127.0.0.1 is denied under the new config too')
keep.close()
th.join(30)
r = result.get('r')
ok(r is not None and r.rc == 0 and r.status == 200 and
   hashlib.sha256(r.body).digest() == hashlib.sha256(SLOW).digest(),
   'the slow download in flight during the reload completed byte-exact')

# Remove the first address.
first = d.port
d.write_conf('''
listen 127.0.0.1:%%PORT_second%%
allow_local_upstreams on
allow_clients 127.0.0.0/8
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''')
like(d.reload(), r'configuration reloaded', 'reload without the first address')
ok(wait_until(lambda: not listening(first), 5), 'the removed listen address is closed')
is_(status_from('127.0.0.1', port=second), 200, 'the remaining address serves')

# Signals and reloads in a burst: still one consistent daemon.
before = d.error_log().count('configuration reloaded')
for i in range(5):
    d.signal(signal.SIGHUP)
# Signals close together may be delivered as one.
ok(wait_until(lambda: d.error_log().count('configuration reloaded') > before, 10),
   'a burst of SIGHUPs reloads')
is_(status_from('127.0.0.1', port=second), 200, 'serving after a burst of reloads')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
