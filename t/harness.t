#!/usr/bin/env python3
# harness.t - self-test of t/lib/pctest.py: TAP output and exit status, the
# stub origin (answered by curl and raw clients), the response parser, curl
# helpers, and the Daemon class driven against a stand-in daemon.
import os
import re
import socket
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403
import pctest  # noqa: E402

LIB = os.path.dirname(os.path.abspath(pctest.__file__))


def run_script(name, body, env=None):
    """Runs a small test file using pctest; returns (rc, stdout)."""
    path = write_file('scripts/%s.t' % name, 'import sys\nsys.path.insert(0, %r)\n'
                      'from pctest import *\n' % LIB + textwrap.dedent(body))
    e = dict(os.environ)
    e.pop('PCTEST_KEEP', None)
    # The scripts check the harness itself, with fake daemons and exact
    # expected output: valgrind (PCTEST_VALGRIND) has nothing to check
    # there, and its diagnostics and slowdown would change that output.
    e.pop('PCTEST_VALGRIND', None)
    e['PCTEST_TMPDIR'] = os.path.join(testdir(), 'tmp')
    e.update(env or {})
    p = subprocess.run([sys.executable, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=e, timeout=60)
    return p.returncode, p.stdout.decode('utf-8', 'replace')


# ---------------------------------------------------------------------------
# TAP and exit status

rc, out = run_script('pass', '''
    import sys
    print(testdir(), file=sys.stderr)
    ok(1, 'one'); is_(2, 2, 'two'); like('abc', r'b', 'three'); unlike(b'abc', r'x', 'four')
    done_testing()
''')
is_(rc, 0, 'passing file exits 0')
like(out, r'(?m)^ok 4 - four$', 'passing file prints its points')
like(out, r'(?m)^1\.\.4$', 'done_testing() prints the plan')
kept = out.splitlines()[0]
ok(kept.startswith(os.path.join(testdir(), 'tmp')) and not os.path.exists(kept),
   'test directory removed on success')

rc, out = run_script('fail', '''
    write_file('x', 'y')
    is_(1, 2, 'compare # numbers')
    done_testing()
''')
is_(rc, 1, 'failing file exits 1')
like(out, r'(?m)^not ok 1 - compare \\# numbers$', 'not ok with "#" escaped')
like(out, r"(?m)^#\s+got: 1\n#\s+expected: 2$", 'is_ shows got and expected')
m = re.search(r'(?m)^# test directory kept: (\S+)$', out)
ok(m and os.path.isfile(os.path.join(m.group(1), 'x')), 'test directory kept on failure')

rc, out = run_script('exception', '''
    ok(1, 'before')
    raise RuntimeError('boom')
''')
is_(rc, 1, 'uncaught exception: exit 1')
like(out, r'(?m)^not ok 2 - uncaught exception: RuntimeError: boom$', 'uncaught exception: not ok')
like(out, r'(?m)^# Traceback', 'uncaught exception: traceback as diag')
like(out, r'(?m)^1\.\.2$', 'uncaught exception: plan still printed')

rc, out = run_script('noplan', '''
    ok(1, 'only')
''')
is_(rc, 1, 'no done_testing(): exit 1')
like(out, r'not ok 2 - test file ended without', 'no done_testing(): reported')

rc, out = run_script('plan', '''
    plan(3)
    ok(1)
''')
is_(rc, 1, 'plan not met: exit 1')
like(out, r'planned 3 test points but ran 1', 'plan not met: reported')

rc, out = run_script('skipall', '''
    skip_all('no frobnicator')
''')
is_((rc, out.strip()), (0, '1..0 # SKIP no frobnicator'), 'skip_all')

rc, out = run_script('skip', '''
    skip('later', 2); done_testing()
''')
is_((rc, out.split('\n')[:2]), (0, ['ok 1 # SKIP later', 'ok 2 # SKIP later']), 'skip')

start = time.monotonic()
rc, out = run_script('timeout', '''
    import time
    time.sleep(30)
''', env={'PCTEST_TIMEOUT': '1'})
ok(rc == 1 and time.monotonic() - start < 20, 'PCTEST_TIMEOUT stops a hung file')
like(out, r'uncaught exception: TestTimeout', 'timeout reported as not ok')

# ---------------------------------------------------------------------------
# free_port

ports = [free_port() for _ in range(20)]
is_(len(set(ports)), 20, 'free_port: 20 different ports')
s = socket.socket()
try:
    s.bind(('127.0.0.1', ports[-1]))
    ok(True, 'free_port: the port can be bound')
except OSError as e:
    ok(False, 'free_port: the port can be bound (%s)' % e)
finally:
    s.close()

# ---------------------------------------------------------------------------
# Origin answering curl


def handler(req):
    if req.path == '/chunked':
        return Response(chunked=True, body_iter=[b'abc', (b'def', 0.05)],
                        trailers=[('X-Trailer', 't')])
    if req.path == '/raw':
        return b'HTTP/1.1 299 Odd\r\nX-Raw: yes\r\nContent-Length: 3\r\n\r\nabc'
    if req.path == '/echo':
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=req.body)
    if req.path == '/abort':
        return Response(body=b'x' * 200000, abort_after=1000)
    if req.path == '/noclen':
        return Response(body=b'until close', length='none')
    if req.path == '/interim':
        return Response(interim=[(103, [('Link', '</s.css>; rel=preload')])], body=b'final')
    if req.path == '/slow':
        return Response(delay=0.3, body=b'late')
    if req.path == '/broken':
        raise ValueError('handler bug')
    return pctest.default_handler(req)


origin = Origin(handler)
is_(origin.url('/a'), 'http://127.0.0.1:%d/a' % origin.port, 'origin.url')

rc, body, err = curl('-i', origin.url('/hello'))
is_((rc, err), (0, ''), 'curl to the origin: rc 0')
like(body, r'^HTTP/1.1 200 OK\r\n', 'default handler: 200 OK')
like(body, r'\r\nContent-Type: text/plain\r\n', 'default handler: text/plain')
ok(body.endswith(b'\r\n\r\nhello from origin\n'), 'default handler: body')
req = origin.requests[0]
is_((req.method, req.target, req.version), ('GET', '/hello', 'HTTP/1.1'), 'request line recorded')
is_(req.header('HOST'), origin.authority, 'header() is case-insensitive')
is_([n for n, _ in req.headers][:3], ['Host', 'User-Agent', 'Accept'], 'header names in wire order and case')
is_(req.conn, 1, 'connection number recorded')

rc, body, err = curl(origin.url('/k1'), origin.url('/k2'))
is_(body, b'hello from origin\n' * 2, 'two requests with one curl')
is_(origin.connections, 2, 'keep-alive: one connection for both')
is_([(r.target, r.conn, r.index) for r in origin.requests[1:]],
    [('/k1', 2, 1), ('/k2', 2, 2)], 'keep-alive: both on connection 2')

rc, body, err = curl(origin.url('/chunked'))
is_((rc, body), (0, b'abcdef'), 'chunked response through curl')
data = raw_request(origin.port, 'GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
like(data, r'\r\nTransfer-Encoding: chunked\r\n', 'chunked: Transfer-Encoding sent')
like(data, r'\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\nX-Trailer: t\r\n\r\n$', 'chunked: framing on the wire')
r = parse_response(data)
is_((r.status, r.body, r.chunked, r.trailers), (200, b'abcdef', True, [('X-Trailer', 't')]),
    'chunked: parse_response decodes it')
is_(r.header('connection'), 'close', 'Connection: close echoed when the client closes')

upload = write_file('upload.bin', os.urandom(5000))
rc, body, err = curl('-v', '-H', 'Expect: 100-continue', '--data-binary', '@' + upload,
                     origin.url('/echo'))
is_(rc, 0, '100-continue: curl upload succeeded')
like(err, r'< HTTP/1.1 100 Continue', '100-continue: origin sent 100 Continue')
with open(upload, 'rb') as f:
    ok(body == f.read(), '100-continue: body reached the origin and came back')

with RawClient(origin.port) as c:
    c.send('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
    r = c.recv_response(skip_interim=False)
    is_(r and r.status, 100, 'RawClient: 100 Continue before the body')
    c.send('hello')
    r = c.recv_response()
    is_((r.status, r.body), (200, b'hello'), 'RawClient: final response after the body')

silent = Origin(send_continue=False)
with RawClient(silent.port) as c:
    c.send('PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n')
    is_(c.recv_response(timeout=0.5), None, 'send_continue=False: no 100 Continue')
    c.send('ok')
    r = c.recv_response()
    is_(r.status, 200, 'send_continue=False: answer after the body')
    ok(not r.interim, 'send_continue=False: no interim response')
silent.stop()

early = Origin(on_headers=lambda req: Response(417, body=b'no') if req.header('Expect') else None)
with RawClient(early.port) as c:
    c.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n')
    r = c.recv_response()
    is_((r.status, r.body), (417, b'no'), 'on_headers: answer before the body')
    ok(c.wait_closed(3), 'on_headers: connection closed afterwards')
is_(early.requests[0].body, b'', 'on_headers: body not read')
early.stop()

data = raw_request(origin.port, 'GET /raw HTTP/1.1\r\nHost: x\r\n\r\n')
is_(data, b'HTTP/1.1 299 Odd\r\nX-Raw: yes\r\nContent-Length: 3\r\n\r\nabc', 'raw response sent as is')

data = raw_request(origin.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                   'Connection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n')
is_(parse_response(data).body, b'hello world', 'chunked request body decoded')
req = origin.requests[-1]
is_((req.chunked, req.body_len, req.trailers), (True, 11, [('X-Sum', '1')]), 'chunked request recorded')

n = len(origin.requests)
data = raw_request(origin.port, 'GET /p1 HTTP/1.1\r\nHost: x\r\nX-B: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n'
                   'GET /p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
rs = parse_responses(data)
is_([r.status for r in rs], [200, 200], 'pipelined: two responses')
is_([(r.target, r.index) for r in origin.requests[n:]], [('/p1', 1), ('/p2', 2)],
    'pipelined: both requests on one connection')
is_(origin.requests[n].headers_all('x-b'), ['1', '3'], 'headers_all keeps repeats in order')
is_(origin.requests[n].headers[1:], [('X-B', '1'), ('x-a', '2'), ('X-B', '3')],
    'header case and order preserved')

rc, body, err = curl(origin.url('/abort'))
ok(rc in (18, 56), 'abort_after: curl sees a broken transfer (rc %d)' % rc)
is_(len(body), 1000, 'abort_after: exactly 1000 body bytes arrived')

data = raw_request(origin.port, 'GET /noclen HTTP/1.1\r\nHost: x\r\n\r\n')
r = parse_response(data)
is_((r.header('Content-Length'), r.header('Connection'), r.body), (None, 'close', b'until close'),
    "length='none': close-delimited body")

data = raw_request(origin.port, 'HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
r = parse_response(data, head=True)
is_((r.header('Content-Length'), r.body), ('18', b''), 'HEAD: length but no body')
ok(data.endswith(b'\r\n\r\n'), 'HEAD: nothing after the head')

data = raw_request(origin.port, 'GET /interim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
r = parse_response(data)
is_(([i.status for i in r.interim], r.interim[0].header('link'), r.status, r.body),
    ([103], '</s.css>; rel=preload', 200, b'final'), 'interim 103 before the final response')

start = time.monotonic()
data = raw_request(origin.port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n', read_until_close=False)
ok(time.monotonic() - start >= 0.3 and data.endswith(b'late'),
   'delay, and read_until_close=False returns after one response')

start = time.monotonic()
data = raw_request(origin.port, 'GET /hello HTTP/1.0\r\n\r\n', timeout=5)
ok(time.monotonic() - start < 3 and parse_response(data).status == 200,
   'HTTP/1.0 without keep-alive: origin closes after the response')

data = raw_request(origin.port, 'GET /broken HTTP/1.1\r\nHost: x\r\n\r\n')
is_((parse_response(data).status, [str(e) for e in origin.errors]), (500, ['handler bug']),
    'handler exception: 500 and origin.errors')
origin.errors.clear()

data = raw_request(origin.port, 'NONSENSE\r\n\r\n')
is_(parse_response(data).status, 400, 'malformed request line: 400')

data = raw_request(origin.port, 'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                   source='127.0.0.2')
is_(parse_response(data).status, 200, 'raw_request from source 127.0.0.2')

if have_ipv6():
    o6 = Origin(host='::1')
    rc, body, err = curl('-g', o6.url('/six'))
    is_((o6.url('/'), rc, body), ('http://[::1]:%d/' % o6.port, 0, b'hello from origin\n'), 'IPv6 origin')
    o6.stop()
else:
    skip('no IPv6 on loopback')

# ---------------------------------------------------------------------------
# parse_response on hand-written bytes

r = parse_response(b'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX: a\r\nx: b\r\n\r\nnoEXTRA')
is_((r.version, r.status, r.reason, r.body, r.headers_all('X')),
    ('HTTP/1.1', 404, 'Not Found', b'no', ['a', 'b']), 'parse_response: Content-Length body')
r = parse_response(b'HTTP/1.1 200 \r\nContent-Length: 10\r\n\r\n12345')
is_((r.reason, r.body, r.complete), ('', b'12345', False), 'parse_response: short body marked incomplete')
r = parse_response(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n')
is_((r.body, r.complete), (b'abcd', False), 'parse_response: chunked without last chunk is incomplete')
rs = parse_responses(b'HTTP/1.1 204 No Content\r\nX: 1\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n'
                     b'HTTP/1.0 200 OK\r\n\r\nrest')
is_([(r.status, r.body) for r in rs], [(204, b''), (304, b''), (200, b'rest')],
    'parse_responses: 204 and 304 have no body, then close-delimited')
try:
    parse_response(b'HTTP/1.1 200 OK\r\nContent-')
    ok(False, 'parse_response: incomplete head raises')
except ValueError:
    ok(True, 'parse_response: incomplete head raises')

# ---------------------------------------------------------------------------
# curl helpers: the stub origin plays the proxy


def fake_proxy(req):
    if req.method == 'CONNECT':
        return Response(403, headers=[('X-Portcullis-Block', 'test; no')], body=b'', close=True)
    return Response(headers=[('X-Target', req.target), ('X-Portcullis-Block', 'urlcat; adult')],
                    body=b'proxied\n')


proxy = Origin(fake_proxy)
os.environ['http_proxy'] = os.environ['HTTPS_PROXY'] = 'http://127.0.0.1:9'
rc, body, err = curl(origin.url('/direct'))
is_((rc, body), (0, b'hello from origin\n'), 'curl() ignores http_proxy from the environment')
r = curl_via(proxy.port, 'http://example.invalid/x?y=1')
is_((r.rc, r.status, r.body), (0, 200, b'proxied\n'), 'curl_via: rc, status and body')
is_(r.header('x-target'), 'http://example.invalid/x?y=1', 'curl_via: absolute-form request to the proxy')
is_(r.header('X-Portcullis-Block'), 'urlcat; adult', 'curl_via: response headers')
r = curl_via(proxy.port, 'https://example.invalid/')
is_((r.connect_status, r.status), (403, 0), 'curl_via: CONNECT refused, connect_status')
ok(r.rc != 0 and r.header_blocks and r.header_blocks[0]['status_line'].startswith('HTTP/1.1 403'),
   'curl_via: CONNECT response head kept')
del os.environ['http_proxy'], os.environ['HTTPS_PROXY']
proxy.stop()
origin.stop()

# ---------------------------------------------------------------------------
# Daemon, against a stand-in daemon with the same command line and signals

FAKE = r'''#!/usr/bin/env python3
import os, re, signal, socket, sys, time
args = sys.argv[1:]
conf = args[args.index('-c') + 1]
text = open(conf).read()
if '-t' in args:
    for n, line in enumerate(text.splitlines(), 1):
        if line.split()[:1] == ['bogus']:
            print('%s:%d: unknown directive "bogus"' % (conf, n))
            sys.exit(1)
    sys.exit(0)
def directive(name):
    m = re.search(r'(?m)^\s*' + name + r'\s+(\S+)', text)
    return m and m.group(1)
errlog = directive('error_log')
def log(level, msg):
    with open(errlog, 'a') as f:
        f.write(time.strftime('%Y/%m/%d %H:%M:%S') + ' [%s] %d#0: %s\n' % (level, os.getpid(), msg))
if directive('fail'):
    print('fatal: cannot start: ' + directive('fail'))
    sys.exit(1)
s = socket.socket()
try:
    s.bind(('127.0.0.1', int(directive('listen').rsplit(':', 1)[1])))
except OSError as e:
    print('bind() failed: %s' % e.strerror)
    sys.exit(1)
s.listen(5)
log('notice', 'started')
def hup(*a):
    log('notice', 'configuration reloaded')
def usr1(*a):
    log('notice', 'reopening logs')
def term(*a):
    if directive('crit'):
        log('crit', 'something bad')
        print('==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1')
    log('notice', 'exiting')
    sys.exit(0)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGUSR1, usr1)
signal.signal(signal.SIGTERM, signal.SIG_IGN if directive('ignore_term') else term)
# Ready once the signals are handled, as the real daemon says it (systemd's
# notify protocol).
if os.environ.get('NOTIFY_SOCKET'):
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = os.environ['NOTIFY_SOCKET']
    n.sendto(b'READY=1', '\0' + addr[1:] if addr.startswith('@') else addr)
    n.close()
while True:
    signal.pause()
'''
fake = write_file('fake-portcullis', FAKE, mode=0o755)
CONF = '''
listen 127.0.0.1:%%PORT%%
control 127.0.0.1:%%PORT_ctl%%
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
'''

d = Daemon(CONF, binary=fake)
isnt(d.ports['ctl'], d.port, 'named %%PORT_x%% gets its own port')
is_((d.error_log_path, d.access_log_path),
    (os.path.join(testdir(), 'error.log'), os.path.join(testdir(), 'access.log')),
    'log paths taken from the config')
with open(d.conf_path) as f:
    like(f.read(), r'(?m)^listen 127\.0\.0\.1:%d$' % d.port, 'config written with the port')
d.start()
ok(d.running() and isinstance(d.pid, int), 'start(): running')
with socket.create_connection(('127.0.0.1', d.port), timeout=2):
    ok(True, 'start(): listening when start() returns')
like(d.wait_for_log('error', r'\[notice\] \d+#0: started'), r'started$', 'wait_for_log finds a line')
like(d.reload(), r'configuration reloaded$', 'reload() waits for the reload line')
mark = d.log_mark('error')
ok(d.reopen_logs() and d.wait_for_log('error', 'reopening logs', since=mark), 'reopen_logs(): SIGUSR1')
is_(d.wait_for_log('error', 'never written', timeout=0.3), None, 'wait_for_log: None after timeout')
is_(d.run_check(), (0, ''), 'run_check(): config accepted')
old_port = d.port
d.write_conf(CONF + 'bogus directive\n')
rc, out = d.run_check()
is_((rc, out.strip()), (1, '%s:6: unknown directive "bogus"' % d.conf_path), 'run_check(): FILE:LINE error')
is_(d.port, old_port, 'write_conf() keeps the ports')
ok(d.stop(), 'stop(): exit status 0')
like(d.error_log(), r'exiting\n$', 'stop() sent SIGTERM')
d.check_logs()

try:
    Daemon(CONF + 'x %%NOPE%%\n', binary=fake)
    ok(False, 'unknown placeholder raises')
except ValueError:
    ok(True, 'unknown placeholder raises')

bad = Daemon(CONF + 'fail on_purpose\n', name='bad', binary=fake)
try:
    bad.start()
    ok(False, 'start() raises when the daemon dies')
except DaemonError as e:
    like(str(e), r'exited during startup with exit status 1(.|\n)*cannot start: on_purpose',
         'start() raises with the stderr tail when the daemon dies')

busy = Daemon(CONF, name='busy', binary=fake)
blocker = socket.socket()
blocker.bind(('127.0.0.1', busy.port))
blocker.listen(1)
blocked = busy.port
busy.start()
ok(busy.running() and busy.port != blocked, 'start() retries on a new port when the address is in use')
like(busy.stderr(), r'Address already in use', 'the failed attempt is in the stderr file')
ok(busy.stop(), 'retried daemon stops')
blocker.close()

rc, out = run_script('daemon-bad-logs', '''
    d = Daemon(%r, binary=%r)
    d.start()
    d.stop()
    d.check_logs()
    done_testing()
''' % (CONF + 'crit yes\n', fake))
is_(rc, 1, 'check_logs() failures fail the file')
FAILED_AT = r'\n#   Failed test at .* line \d+\.'
like(out, r'(?m)^not ok 1 - portcullis: no alert, crit or emerg in the error log' + FAILED_AT +
     r'\n# .*\[crit\] \d+#0: something bad$',
     'check_logs(): [crit] line reported')
like(out, r'(?m)^not ok 2 - portcullis: no sanitizer report' + FAILED_AT +
     r'\n# ==1==ERROR: AddressSanitizer',
     'check_logs(): sanitizer report shown')

rc, out = run_script('daemon-hang', '''
    d = Daemon(%r, binary=%r)
    d.start()
    ok(not d.stop(timeout=1), 'stop() returns False')
    ok(not d.running(), 'killed')
    done_testing()
''' % (CONF + 'ignore_term yes\n', fake))
is_(rc, 1, 'a daemon ignoring SIGTERM fails the file')
like(out, r'(?m)^not ok 1 - portcullis stops within 1s of SIGTERM' + FAILED_AT +
     r'\nok 2 - stop\(\) returns False\nok 3 - killed$',
     'stop(): killed after the timeout and reported')

rc, out = run_script('daemon-left', '''
    d = Daemon(%r, binary=%r)
    d.start()
    print(d.pid)
    done_testing()
''' % (CONF, fake))
pid = int(out.split('\n')[0])
ok(rc == 0 and 'was still running at exit: killed' in out and not os.path.exists('/proc/%d' % pid),
   'a daemon left running is killed at exit')

done_testing()
