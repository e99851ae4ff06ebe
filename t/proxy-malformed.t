#!/usr/bin/env python3
# proxy-malformed.t - strict request parsing over raw sockets: ambiguous
# framing (CL+TE smuggling, duplicate or malformed Content-Length, bad
# chunks, unknown transfer codings), bare LF, obs-fold, oversized header
# sections (431) and URLs (414), HTTP/0.9, missing or repeated Host. Each is
# refused, logged with its connection id, and never forwarded.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)

origin = Origin(lambda req: Response(body=b'origin saw %s\n' % req.target.encode()))
d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
max_header_size 8k
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
''').start()
U = origin.url('/target')
SMUGGLED = 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/smuggled')


def refused(name, data, status=400, error='ERR_INVALID_REQ', log=r'bad request from 127\.0\.0\.1: '):
    """Sends data on a fresh connection: expects one error response, the
    connection closed, an error log line and nothing at the origin."""
    mark = d.log_mark('error')
    alog = len(d.access_log())
    before = len(origin.requests)
    with RawClient(d.port, timeout=5) as c:
        # A list is sent in pieces, a pause between them: separate reads.
        for k, part in enumerate(data if isinstance(data, list) else [data]):
            if k:
                time.sleep(0.3)
            c.send(part.encode('latin-1') if isinstance(part, str) else part)
        closed = c.wait_closed(5)
        got = c.data
    rs = parse_responses(got)
    r = rs[0] if rs else None
    ok(r is not None and r.status == status and r.header('X-Portcullis-Error') == error
       and len(rs) == 1,
       '%s: %d %s (got %r)' % (name, status, error, got[:60]))
    ok(closed, '%s: connection closed' % name)
    line = d.wait_for_log('error', r'\[info\] \d+#\d+: \*\d+ ' + log, since=mark)
    ok(line, '%s: logged with the connection id' % name)
    # The access log gets its line when the transaction ends.
    wait_until(lambda: len(d.access_log()) > alog, 2)
    like('\n'.join(d.access_log()[alog:]), r' TAG_NONE/%d ' % status, '%s: access log line' % name)
    is_([q.target for q in origin.requests[before:]], [], '%s: nothing reached the origin' % name)
    return line


# ---- message framing ----------------------------------------------------------------

refused('CL+TE smuggling attempt',
        'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n'
        '0\r\n\r\n%s' % (U, SMUGGLED))
refused('TE+CL, TE first',
        'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n'
        '0\r\n\r\n%s' % (U, SMUGGLED))
refused('two different Content-Length',
        'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhello%s'
        % (U, SMUGGLED))
refused('two equal Content-Length', 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
        'Content-Length: 5\r\n\r\nhello' % U)
refused('Content-Length list', 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello' % U)
refused('Content-Length not a number', 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello' % U)
refused('negative Content-Length', 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello' % U)
refused('Content-Length with a sign', 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello' % U)
refused('Content-Length overflow', 'POST %s HTTP/1.1\r\nHost: x\r\n'
        'Content-Length: 184467440737095516160\r\n\r\nhello' % U)
refused('chunked in an HTTP/1.0 request',
        'POST %s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' % U)
refused('unknown transfer coding', 'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n'
        'hello' % U)
refused('chunked not the last coding', 'POST %s HTTP/1.1\r\nHost: x\r\n'
        'Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n' % U)
refused('a coding the proxy cannot pass on', 'POST %s HTTP/1.1\r\nHost: x\r\n'
        'Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n' % U, status=501, error='ERR_UNSUP_REQ',
        log=r'unsupported transfer coding')

# Bad chunks come after the head: the head may already have gone upstream,
# but never a byte of the broken body; the origin then sees a cut request.
for name, body in (('chunk size not hex', 'zz\r\nhello\r\n0\r\n\r\n'),
                   ('chunk size overflow', '1ffffffffffffffffff\r\nhello\r\n0\r\n\r\n'),
                   ('chunk data longer than its size', '5\r\nhelloXX\r\n0\r\n\r\n'),
                   ('chunk size with a sign', '+5\r\nhello\r\n0\r\n\r\n')):
    mark = d.log_mark('error')
    before = len(origin.requests)
    data = raw_request(d.port, 'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%s%s'
                       % (U, body, SMUGGLED), timeout=5)
    rs = parse_responses(data)
    ok(len(rs) == 1 and rs[0].status in (400, 502), '%s: one error response (%r)' % (name, data[:40]))
    ok(d.wait_for_log('error', r'\*\d+ .*(bad request|invalid|aborted)', since=mark),
       '%s: logged' % name)
    is_([q.target for q in origin.requests[before:]], [],
        '%s: no complete request reached the origin' % name)

# ---- lines and fields -----------------------------------------------------------------

refused('bare LF after the request line', 'GET %s HTTP/1.1\nHost: x\r\n\r\n' % U)
# The verdict must not depend on where TCP cuts the line (found by
# t/fuzz/fuzz_http_request): the LF alone in the next read.
refused('bare LF after the request line, in the next read',
        ['GET %s HTTP/1.1' % U, '\nHost: x\r\n\r\n'])
refused('bare LF line ends everywhere', 'GET %s HTTP/1.1\nHost: x\n\n' % U)
refused('bare LF after a field', 'GET %s HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n' % U)
refused('bare CR', 'GET %s HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n' % U)
refused('obs-fold', 'GET %s HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n' % U)
refused('obs-fold with a tab', 'GET %s HTTP/1.1\r\nX-Folded: a\r\n\tHost: x\r\n\r\n' % U)
refused('space before the colon', 'GET %s HTTP/1.1\r\nHost : x\r\n\r\n' % U)
refused('whitespace before the first field', 'GET %s HTTP/1.1\r\n Host: x\r\n\r\n' % U)
refused('NUL in a field value', 'GET %s HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n' % U)
refused('empty field name', 'GET %s HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n' % U,
        log=r'bad request from 127\.0\.0\.1: empty header field name')
refused('bad character in a field name', 'GET %s HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n' % U)
refused('missing Host (HTTP/1.1)', 'GET %s HTTP/1.1\r\nAccept: */*\r\n\r\n' % U,
        log=r'bad request from 127\.0\.0\.1: missing Host header')
refused('two Host fields', 'GET %s HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' % U,
        log=r'bad request from 127\.0\.0\.1: more than one Host header')
refused('HTTP/0.9 request', 'GET /\r\n', log=r'bad request from 127\.0\.0\.1: HTTP/0\.9')
refused('HTTP/0.9 absolute-form request', 'GET %s\r\n' % U)
refused('lower-case version', 'GET %s http/1.1\r\nHost: x\r\n\r\n' % U)
refused('space in the target', 'GET http://127.0.0.1:%d/a b HTTP/1.1\r\nHost: x\r\n\r\n' % origin.port)
refused('not HTTP at all', b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + bytes(range(64)))

# ---- sizes ------------------------------------------------------------------------------

refused('one field over max_header_size', 'GET %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n'
        % (U, 'a' * 9000), status=431, error='ERR_TOO_BIG')
refused('many fields over max_header_size', 'GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n'
        % (U, ''.join('X-F%d: %s\r\n' % (i, 'v' * 20) for i in range(400))),
        status=431, error='ERR_TOO_BIG')
refused('URL over max_header_size', 'GET %s?%s HTTP/1.1\r\nHost: x\r\n\r\n' % (U, 'q' * 9000),
        status=414, error='ERR_URI_TOO_LONG')
# Just under the limit is fine.
r = parse_response(raw_request(d.port, 'GET %s?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                               % (U, 'q' * 6000)))
is_(r.status, 200, 'a 6000-byte URL under an 8k limit is served')

# ---- well-formed requests the proxy answers itself ----------------------------------------

data = raw_request(d.port, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n'
                   % d.port)
r = parse_response(data)
is_((r.status, r.header('X-Portcullis-Error')), (404, 'ERR_NOT_FOUND'),
    'origin-form request to the proxy: 404 ERR_NOT_FOUND')
data = raw_request(d.port, 'GET %s HTTP/2.0\r\nHost: x\r\n\r\n' % U)
is_(parse_response(data).status, 505, 'HTTP/2.0 in an HTTP/1 request line: 505')
data = raw_request(d.port, 'GET ftp://127.0.0.1/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
is_(parse_response(data).header('X-Portcullis-Error'), 'ERR_UNSUP_REQ', 'ftp:// URL: ERR_UNSUP_REQ')
data = raw_request(d.port, 'GET http://user:pw@%s/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                   % origin.authority)
is_(parse_response(data).header('X-Portcullis-Error'), 'ERR_INVALID_URL', 'user:password@ in a URL')
data = raw_request(d.port, 'GET %s HTTP/1.1\r\nHost: x\r\nExpect: something\r\nConnection: close\r\n\r\n' % U)
is_(parse_response(data).status, 417, 'unknown expectation: 417')
ok(not any(q.path in ('/target', '/smuggled') for q in origin.requests[:-1])
   and not any(q.path == '/smuggled' for q in origin.requests),
   'the smuggled request never reached the origin')

# Empty lines before a request line are allowed (RFC 9112 2.2).
data = raw_request(d.port, '\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % U)
is_(parse_response(data).status, 200, 'empty lines before the request line are skipped')

# After all that the proxy still works on a kept-alive connection.
with RawClient(d.port) as c:
    for i in range(3):
        c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % origin.url('/ok%d' % i))
        r = c.recv_response()
        is_(r and r.body, b'origin saw /ok%d\n' % i, 'a good request %d after the bad ones' % i)

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
