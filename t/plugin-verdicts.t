#!/usr/bin/env python3
# plugin-verdicts.t - hook order across plugins, continue/allow/block, block pages and logs, notes, headers, events.
import json
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('testkit', 'testkit2')
set_timeout(60)


def handler(req):
    return Response(headers=[('Content-Type', 'text/plain'),
                             ('X-Seen-Added', req.header('X-Added', '-'))],
                    body=b'hello from origin\n')


origin = Origin(handler)
TWO = '''
connect_ports 1-65535
access_log %%TESTDIR%%/access.json json
plugin testkit {
    trail_file %%TESTDIR%%/trail
    event_file %%TESTDIR%%/events
    subscribe txn.blocked custom.topic
    tag first
}
plugin testkit2 {
    trail_file %%TESTDIR%%/trail
}
'''
d = up(Daemon(conf(TWO)))
trail = Trail(os.path.join(testdir(), 'trail'))
events = os.path.join(testdir(), 'events')


def get(id, *args, url=None, port=None):
    return curl_via(port or d.port, url or origin.url('/' + id), '-H', 'X-Test-Id: ' + id, *args)


def json_log(id):
    path = os.path.join(testdir(), 'access.json')
    for line in open(path).read().splitlines():
        rec = json.loads(line)
        if rec.get('url', '').endswith('/' + id):
            return rec
    return None


def ended_once(id, plugins=('testkit', 'testkit2'), slots=('testkit',)):
    """TXN_END once per plugin, each slot destroyed once, after TXN_END."""
    ok(trail.wait(lambda t: all(t.count(id, 'SLOT_DTOR', p) == 1 for p in slots)),
       '%s: slots destroyed' % id)
    is_([trail.count(id, 'TXN_END', p) for p in plugins], [1] * len(plugins),
        '%s: TXN_END exactly once per plugin' % id)
    hooks = trail.hooks(id, 'testkit')
    ok('SLOT_DTOR' in hooks and hooks.index('SLOT_DTOR') > hooks.index('TXN_END'),
       '%s: the slot dies after TXN_END' % id)


# ---- order --------------------------------------------------------------------

r = get('order')
is_((r.status, r.body), (200, b'hello from origin\n'), 'continue everywhere: 200 from the origin')
calls = [c for c in trail.calls('order')]
is_(calls, [('testkit', 'REQUEST_HEADERS'), ('testkit2', 'REQUEST_HEADERS'),
            ('testkit', 'UPSTREAM_ADDR'), ('testkit2', 'UPSTREAM_ADDR'),
            ('testkit', 'RESPONSE_HEADERS'), ('testkit2', 'RESPONSE_HEADERS'),
            ('testkit', 'TXN_END'), ('testkit2', 'TXN_END'),
            ('testkit', 'SLOT_DTOR'), ('testkit2', 'SLOT_DTOR')],
    'every hook runs the plugins in configuration order, TXN_END then slots last')
is_(r.header('X-Test-Trail'), 'testkit:REQUEST_HEADERS testkit2:REQUEST_HEADERS '
    'testkit:UPSTREAM_ADDR testkit2:UPSTREAM_ADDR testkit:RESPONSE_HEADERS '
    'testkit2:RESPONSE_HEADERS', 'the shared note saw the same order; response header set by a plugin')
is_((r.header('X-Tag-testkit'), r.header('X-Tag-testkit2')), ('first', 'none'),
    'each plugin sees its own configuration object')
line = trail.lines('order', 'testkit', 'REQUEST_HEADERS')[0]
is_((line.kv.get('url'), line.kv.get('host'), line.kv.get('port'), line.kv.get('path'),
     line.kv.get('method')),
    (origin.url('/order'), '127.0.0.1', str(origin.port), '/order', 'GET'),
    'txn_url, txn_host, txn_port, txn_path, txn_method')
ok(trail.lines(plugin='testkit', what='ACCEPT') and trail.lines(plugin='testkit2', what='ACCEPT'),
   'ACCEPT ran for both plugins')
ok(trail.wait(lambda t: len(t.lines(plugin='testkit2', what='CONN_CLOSE')) >= 1),
   'CONN_CLOSE ran when the client left')

# ---- allow --------------------------------------------------------------------

r = get('allow', '-H', 'X-Test-Verdict: testkit:request=allow')
is_(r.status, 200, 'allow: the request goes through')
is_(trail.count('allow', 'REQUEST_HEADERS', 'testkit2'), 0,
    'allow: the next plugin is skipped for this hook')
is_(trail.count('allow', 'RESPONSE_HEADERS', 'testkit2'), 1, 'allow: later hooks still run')
ended_once('allow')

# An allow by the second plugin does not stop the first from blocking.
r = get('allow2', '-H', 'X-Test-Verdict: testkit2:request=allow,testkit:response=block')
is_(r.status, 403, 'allow at one hook, block at a later one: blocked')

# ---- block --------------------------------------------------------------------

nreq = len(origin.requests)
mark = d.log_mark('error')
r = get('block', '-H', 'X-Test-Verdict: testkit:request=block', '-H',
        'X-Test-Reason: not on this network', '-H', 'X-Test-Category: games')
is_(r.status, 403, 'block: 403')
is_(r.header('X-Portcullis-Block'), 'testkit; not on this network',
    'block: X-Portcullis-Block: <plugin>; <reason>')
like(r.body, r'<dt>Reason</dt><dd>not on this network</dd>', 'block page: the reason')
like(r.body, r'<dt>Category</dt><dd>games</dd>', 'block page: the category')
like(r.body, r'<dt>Blocked by</dt><dd>testkit</dd>', 'block page: the plugin')
like(r.body, re.escape(origin.url('/block')), 'block page: the URL')
like(r.header('Content-Type'), r'^text/html', 'block page: HTML')
is_(len(origin.requests), nreq, 'block: nothing reached the origin')
is_(trail.count('block', 'REQUEST_HEADERS', 'testkit2'), 0, 'block: later plugins not asked')
ok(wait_until(lambda: any(re.search(r'TCP_DENIED/403 \d+ GET %s ' % re.escape(origin.url('/block')), l)
                          for l in d.access_log()), 3),
   'access.log: TCP_DENIED/403 with the URL')
ok(d.wait_for_log('error', r'\[info\] \d+#\d+: \*\d+ blocked by testkit: not on this network, '
                  r'client: 127\.0\.0\.1, url: ' + re.escape(origin.url('/block')), since=mark),
   'error log: who blocked, why, client and URL')
rec = json_log('block')
is_((rec or {}).get('block_plugin'), 'testkit', 'JSON access log: block_plugin')
ended_once('block', slots=('testkit',))

r = get('status', '-H', 'X-Test-Verdict: testkit2:request=block', '-H', 'X-Test-Status: 451')
is_((r.status, r.header('X-Portcullis-Block')), (451, 'testkit2; testkit2 says no'),
    'block with a status from txn_block(); the second plugin named')

# Details given with txn_block() but then PC_CONTINUE: not a block.
r = get('detail', '-H', 'X-Test-Verdict: testkit:request=detail-continue')
is_((r.status, r.header('X-Portcullis-Block')), (200, None),
    'txn_block() followed by PC_CONTINUE: not blocked')
ok(wait_until(lambda: json_log('detail'), 3) and 'block_plugin' not in json_log('detail'),
   '... and not logged as blocked') or diag(json_log('detail'))
r = get('detail2', '-H', 'X-Test-Verdict: testkit:request=detail-continue,testkit2:request=block',
        '-H', 'X-Test-Reason: two')
is_(r.header('X-Portcullis-Block'), 'testkit2; two',
    'a later plugin that blocks is the one named, with its own details')

# ---- block at UPSTREAM_ADDR ---------------------------------------------------

fresh = Origin()
r = get('upaddr', '-H', 'X-Test-Verdict: testkit2:upstream=block', url=fresh.url('/upaddr'))
is_((r.status, r.header('X-Portcullis-Block')), (403, 'testkit2; testkit2 says no'),
    'UPSTREAM_ADDR: a block before connecting')
is_(len(fresh.requests), 0, 'UPSTREAM_ADDR block: the origin heard nothing')
ended_once('upaddr')

# ---- notes and header changes ---------------------------------------------------

r = get('hdrs', '-H', 'X-Test-Note: color=blue', '-H', 'X-Test-Note: size=big',
        '-H', 'X-Test-Set-Header: request:X-Added=from-plugin',
        '-H', 'X-Test-Set-Header: response:X-Resp=changed',
        '-H', 'Connection: X-Hop', '-H', 'X-Hop: secret')
is_(r.status, 200, 'notes and header changes: 200')
is_(r.header('X-Seen-Added'), 'from-plugin', 'txn_set_header(PC_REQUEST) reached the origin')
is_(r.header('X-Resp'), 'changed', 'txn_set_header(PC_RESPONSE) reached the client')
req = origin.requests[-1]
is_(req.header('X-Hop'), None, 'hop-by-hop fields removed before the hooks')
like(req.header('Via'), r'portcullis', 'Via added after the hooks')
rec = wait_until(lambda: json_log('hdrs'), 3) or {}
is_({k: v for k, v in (rec.get('notes') or {}).items() if k != 'trail'},
    {'color': 'blue', 'size': 'big'}, 'txn_note(): notes in the JSON access log, in order')

# ---- events ---------------------------------------------------------------------

r = get('pub', '-H', 'X-Test-Publish: custom.topic')
ok(wait_until(lambda: os.path.exists(events) and 'custom.topic' in open(events).read(), 3),
   'event_publish() from a hook reaches the subscriber')
like(open(events).read() if os.path.exists(events) else '',
     r'EVENT testkit topic=custom\.topic plugin=testkit client=127\.0\.0\.1 subject=%s '
     r'detail=published by testkit value=42' % re.escape(origin.url('/pub')),
     'the event carries topic, publisher, client, subject, detail and value')
ok(wait_until(lambda: 'topic=txn.blocked' in open(events).read(), 3),
   'txn.blocked events reach the subscriber')
like(open(events).read(), r'topic=txn\.blocked plugin=testkit client=127\.0\.0\.1 subject=%s '
     r'detail=not on this network' % re.escape(origin.url('/block')),
     'txn.blocked names the blocking plugin and the reason')

# ---- CONNECT --------------------------------------------------------------------

r = curl_via(d.port, 'https://127.0.0.1:%d/' % origin.port, '-p', '--proxy-header',
             'X-Test-Verdict: testkit:connect=block', '--proxy-header', 'X-Test-Id: conn-block')
is_(r.connect_status, 403, 'block at CONNECT: 403 to the CONNECT')
blocks = [b for b in r.header_blocks if ' 403 ' in b['status_line']]
is_(blocks and dict(blocks[0]['headers']).get('X-Portcullis-Block'), 'testkit; testkit says no',
    'block at CONNECT: X-Portcullis-Block')
is_(trail.hooks('conn-block', 'testkit')[:1], ['CONNECT'], 'the CONNECT hook saw it')
ended_once('conn-block')

d2 = up(Daemon(conf('''
connect_ports 1-65535
plugin testkit {
    trail_file %%TESTDIR%%/trail2
    block_host blocked.example
}
'''), name='hostblock'))
r = curl_via(d2.port, 'https://blocked.example/', '-p')
is_(r.connect_status, 403, 'CONNECT to a blocked host: 403 before any DNS lookup')
r = curl_via(d2.port, 'http://blocked.example/x')
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'testkit; host blocked.example is blocked (tag none)'), 'GET to a blocked host: 403')
ok(d2.stop(), 'second daemon: graceful stop')
d2.check_logs()

# ---- block at ACCEPT: every request of the connection ---------------------------

d3 = up(Daemon(conf('''
plugin testkit {
    trail_file %%TESTDIR%%/trail3
    accept_block on
}
'''), name='accept'))
trail3 = Trail(os.path.join(testdir(), 'trail3'))
nreq = len(origin.requests)
for i in (1, 2):
    with RawClient(d3.port) as c:
        c.send('GET %s HTTP/1.1\r\nHost: x\r\nX-Test-Id: acc%d\r\n\r\n' % (origin.url('/acc'), i))
        resp = c.recv_response()
        is_(resp and (resp.status, resp.header('X-Portcullis-Block')),
            (403, 'testkit; this client is refused by testkit'),
            'blocked at ACCEPT: connection %d gets the block page' % i)
        like(resp and resp.body, r'this client is refused by testkit', '... with the reason')
        ok(c.wait_closed(3), '... and is closed after it (the next one meets ACCEPT again)')
with RawClient(d3.port) as c:
    c.send('CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\nX-Test-Id: acc3\r\n\r\n')
    resp = c.recv_response()
    is_(resp and resp.status, 403, 'blocked at ACCEPT: its CONNECT is refused')
is_(len(origin.requests), nreq, 'blocked at ACCEPT: the origin heard nothing')
ok(trail3.wait(lambda t: all(t.count('acc%d' % i, 'TXN_END') == 1 for i in (1, 2, 3))),
   'blocked at ACCEPT: TXN_END once for each of its transactions')
is_(trail3.count('acc1', 'REQUEST_HEADERS'), 0, 'no request hooks for a refused connection')
ok(d3.stop(), 'accept-block daemon: graceful stop')
d3.check_logs()

d5 = up(Daemon(conf('''
plugin testkit {
    accept_detail on
}
'''), name='acceptdetail'))
r = curl_via(d5.port, origin.url('/acc-detail'))
is_((r.status, r.header('X-Portcullis-Block')), (200, None),
    'conn_block() details followed by PC_CONTINUE at ACCEPT: the connection is served')
ok(d5.stop(), 'accept-detail daemon: graceful stop')
d5.check_logs()

# ---- the block page template ----------------------------------------------------

write_file('block.html', '<html><body>S={{status}} T={{title}} M={{message}} E={{error}} '
           'U={{url}} C={{client}} P={{plugin}} R={{reason}} K={{category}} '
           'X={{proxy}} V={{version}} Z={{nosuch}}.</body></html>\n')
d4 = up(Daemon(conf('''
block_page %%TESTDIR%%/block.html
visible_hostname proxy.test
plugin testkit {
}
'''), name='page'))
evil_url = origin.url('/p?q=<script>alert(1)</script>&x="y"')
r = curl_via(d4.port, evil_url, '-H', 'X-Test-Verdict: request=block',
             '-H', "X-Test-Reason: <script>alert('r')</script> & co",
             '-H', 'X-Test-Category: <b>cat</b>')
is_(r.status, 403, 'custom block page: 403')
body = r.body.decode('latin-1')
unlike(body, r'<script>|<b>', 'no markup from the URL, reason or category survives')
like(body, r'U=%s' % re.escape(origin.url('/p?q=&lt;script&gt;alert(1)&lt;/script&gt;'
                                           '&amp;x=&quot;y&quot;')), 'the URL, escaped')
like(body, r'R=&lt;script&gt;alert\(&#39;r&#39;\)&lt;/script&gt; &amp; co ', 'the reason, escaped')
like(body, r'K=&lt;b&gt;cat&lt;/b&gt; ', 'the category, escaped')
like(body, r'S=403 T=Blocked M=\S.* E=ERR_BLOCKED U=', 'status, title, message, error')
like(body, r'C=127\.0\.0\.1 P=testkit R=', 'client and plugin')
like(body, r'X=proxy\.test V=\d+\.\d+\.\d+ Z=\.', 'proxy, version; an unknown name is empty')
is_(r.header('X-Portcullis-Block'), "testkit; <script>alert('r')</script> & co",
    'the header carries the reason as text (it is no HTML)')
ok(d4.stop(), 'block page daemon: graceful stop')
d4.check_logs()

ok(d.stop(), 'graceful stop')
ok(trail.wait(lambda t: t.lines('-', 'testkit', 'SHUTDOWN')), 'drain and shutdown ran')
is_([ln.what for ln in trail.lines('-', 'testkit') if ln.what in ('INIT', 'DRAIN', 'SHUTDOWN')],
    ['INIT', 'DRAIN', 'SHUTDOWN'], 'life cycle: init, drain, shutdown, once each')
d.check_logs()
done_testing()
