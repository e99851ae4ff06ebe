#!/usr/bin/env python3
# proxy-errors.t - upstream failures as a client sees them: refused (502),
# timed out (504), unresolvable (502), closed before answering (502), invalid
# answers (502), each an HTML page with X-Portcullis-Error and an error log
# line with the connection id; a body cut short by the origin reaches the
# client as a broken transfer (curl exit 18), never as a complete one; a
# pooled connection the origin closed is retried transparently for a GET.
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)
BIG = os.urandom(200000)


def cut_length(sock, req):
    """A Content-Length response cut short by a clean close (FIN)."""
    sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + b'x' * 1000)
    return False


def cut_chunked(sock, req):
    """A chunked response that ends without its last chunk."""
    sock.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                 b'400\r\n' + b'y' * 1024 + b'\r\n' + b'400\r\n' + b'z' * 100)
    return False


def silent_close(sock, req):
    return False


def handler(req):
    p = req.path
    if p == '/slow':
        return Response(delay=3, body=b'too late\n')
    if p == '/cut-length':
        return cut_length
    if p == '/cut-chunked':
        return cut_chunked
    if p == '/cut-chunk-boundary':
        return Raw(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
    if p == '/reset-length':
        return Response(body=BIG, abort_after=5000)
    if p == '/reset-chunked':
        return Response(body_iter=[BIG[:50000], BIG[50000:]], chunked=True, abort_after=60000)
    if p == '/no-answer':
        return silent_close
    if p == '/half-head':
        return Raw(b'HTTP/1.1 200 OK\r\nContent-Ty')
    if p == '/garbage':
        return Raw(b'SSH-2.0-OpenSSH_9.2\r\n\r\n')
    if p == '/bad-length':
        return Raw(b'HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nhello')
    if p == '/two-lengths':
        return Raw(b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello')
    if p == '/te-gzip-chunked':
        return Raw(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
    if p == '/cl-and-te':
        return Raw(b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
                   b'5\r\nhello\r\n0\r\n\r\n')
    if p == '/huge-head':
        return Raw(b'HTTP/1.1 200 OK\r\nX-Big: ' + b'h' * 70000 + b'\r\nContent-Length: 2\r\n\r\nok')
    if p == '/empty-name':
        return Raw(b'HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 2\r\n\r\nok')
    if p == '/te-gzip':
        return Raw(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello')
    if p == '/status-500':
        return Response(500, body=b'origin error page\n')
    return Response(body=b'fine\n')


origin = Origin(handler)
# One worker: the pooled-connection checks below need the idle pool the
# previous request left (each worker has its own).
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
workers 1
read_timeout 1s
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()


def error_page(name, url, status, errname, log, *curl_args):
    mark = d.log_mark('error')
    r = curl_via(d.port, url, *curl_args)
    is_((r.status, r.header('X-Portcullis-Error')), (status, errname), '%s: %d %s' % (name, status, errname))
    like(r.header('Content-Type'), r'^text/html', '%s: an HTML page' % name)
    like(r.body, r'(?s)<html.*%s.*</html>' % errname, '%s: the page names the error' % name)
    line = d.wait_for_log('error', r'\[error\] \d+#\d+: \*\d+ .*' + log, since=mark)
    ok(line, '%s: error log line with the connection id' % name)
    return r


# ---- no answer at all ----------------------------------------------------------------

s = socket.socket()
s.bind(('127.0.0.1', 0))
dead_port = s.getsockname()[1]
s.close()           # nothing listens there now
error_page('refused upstream', 'http://127.0.0.1:%d/' % dead_port, 502, 'ERR_CONNECT_FAIL',
           r'connect\(\) to 127\.0\.0\.1:%d failed: connection refused' % dead_port)
error_page('upstream timeout', origin.url('/slow'), 504, 'ERR_READ_TIMEOUT',
           r'upstream 127\.0\.0\.1 timed out')
error_page('DNS failure', 'http://no-such-host.invalid/', 502, 'ERR_DNS_FAIL',
           r'cannot resolve "no-such-host\.invalid"')

# Each of these needs a connection of its own: a pooled one would be retried.
quiet = Origin(lambda req: silent_close)
error_page('upstream closes before answering', quiet.url('/no-answer'), 502, 'ERR_ZERO_SIZE_OBJECT',
           r'upstream 127\.0\.0\.1 closed the connection before answering')
error_page('upstream closes in the response head', origin.url('/half-head'), 502, 'ERR_READ_ERROR',
           r'closed the connection before answering')
error_page('upstream answers garbage', origin.url('/garbage'), 502, 'ERR_INVALID_RESP',
           r'invalid response from upstream 127\.0\.0\.1')
error_page('malformed Content-Length in a response', origin.url('/bad-length'), 502,
           'ERR_INVALID_RESP', r'invalid response')
error_page('two Content-Length in a response', origin.url('/two-lengths'), 502,
           'ERR_INVALID_RESP', r'invalid response')

error_page('Content-Length and Transfer-Encoding in a response', origin.url('/cl-and-te'), 502,
           'ERR_INVALID_RESP', r'invalid response')
error_page('response header section over 64k', origin.url('/huge-head'), 502, 'ERR_INVALID_RESP',
           r'response header section too large')

# llhttp lets a line ": value" through; a client could read it any way
# (found by t/fuzz/fuzz_http_response).
error_page('response field without a name', origin.url('/empty-name'), 502, 'ERR_INVALID_RESP',
           r'upstream 127\.0\.0\.1 sent a header field without a name')

# A transfer coding the proxy would have to hide from the client.
error_page('response in "gzip, chunked"', origin.url('/te-gzip-chunked'), 502, 'ERR_INVALID_RESP',
           r'unsupported Transfer-Encoding')
error_page('response in "gzip" transfer coding', origin.url('/te-gzip'), 502, 'ERR_INVALID_RESP',
           r'unsupported Transfer-Encoding')

# An error from the origin itself is relayed as it is.
r = curl_via(d.port, origin.url('/status-500'))
is_((r.status, r.body, r.header('X-Portcullis-Error')), (500, b'origin error page\n', None),
    "the origin's own 500 is relayed untouched")

# ---- bodies cut short ----------------------------------------------------------------------

for path, what in (('/cut-length', 'Content-Length body, origin closes'),
                   ('/cut-chunked', 'chunked body, origin closes mid-chunk'),
                   ('/cut-chunk-boundary', 'chunked body, origin closes between chunks'),
                   ('/reset-length', 'Content-Length body, origin resets'),
                   ('/reset-chunked', 'chunked body, origin resets')):
    mark = d.log_mark('error')
    r = curl_via(d.port, origin.url(path))
    ok(r.status == 200 and r.rc == 18,
       '%s: curl sees a broken transfer (status %d, curl exit %d: %s)'
       % (what, r.status, r.rc, r.stderr.strip()))
    ok(d.wait_for_log('error', r'\[error\] \d+#\d+: \*\d+ upstream 127\.0\.0\.1 closed the '
                      r'connection in the middle of the response', since=mark),
       '%s: logged' % what)

# An HTTP/1.0 client of a chunked response it gets decoded: the cut must
# still show, as a connection closed early... which HTTP/1.0 cannot tell
# from the end. So the proxy must at least never add bytes; and a
# Content-Length body stays short of its length.
data = raw_request(d.port, 'GET %s HTTP/1.0\r\n\r\n' % origin.url('/cut-length'))
r = parse_response(data)
ok(not r.complete and r.header('Content-Length') == '100000',
   'HTTP/1.0 client: the short Content-Length body stays short (%d bytes)' % len(r.body))

ok(d.wait_for_log('access', r'TCP_MISS_ABORTED/200 \d+ GET %s ' % origin.url('/cut-length')),
   'access log: the cut transfer is logged as aborted')

# ---- a pooled connection the origin closed ------------------------------------------------


def once_per_connection(req):
    """Answers the first request on a connection; closes on the second
    without a word, as a server whose keep-alive timeout just fired."""
    if req.index == 1:
        return Response(body=('first on conn %d\n' % req.conn).encode())
    return silent_close


flaky = Origin(once_per_connection)
r1 = curl_via(d.port, flaky.url('/one'))
r2 = curl_via(d.port, flaky.url('/two'))
is_((r1.status, r1.body), (200, b'first on conn 1\n'), 'first GET on a new upstream connection')
is_((r2.status, r2.body), (200, b'first on conn 2\n'),
    'second GET: the pooled connection closed under it, retried on a new one')
is_([(q.path, q.conn) for q in flaky.requests], [('/one', 1), ('/two', 1), ('/two', 2)],
    'the origin saw the GET on the old connection, then again on a new one')

# A POST with a body is not retried: it may have had an effect.
mark = d.log_mark('error')
r3 = curl_via(d.port, flaky.url('/three'), '--data-binary', 'payload')
is_((r3.status, r3.header('X-Portcullis-Error')), (502, 'ERR_ZERO_SIZE_OBJECT'),
    'POST on a pooled connection that closes: 502, not retried')
is_([q.path for q in flaky.requests].count('/three'), 1, 'the POST went to the origin once')

# An idle pooled connection the origin closes is dropped; the next request
# simply gets a new one. (This origin's keep-alive timeout is 0.3 s.)
closer = Origin(lambda req: Response(body=b'bye soon\n'), timeout=0.3)
r = curl_via(d.port, closer.url('/a'))
is_(r.status, 200, 'request to an origin that closes idle connections')
time.sleep(0.8)
r = curl_via(d.port, closer.url('/b'))
is_((r.status, r.body, closer.connections), (200, b'bye soon\n', 2),
    'after the origin closed the idle connection: served on a new one')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
