#!/usr/bin/env python3
# banlist-dynamic.t - dynamic bans by control command: block page, keep-alive, CONNECT, expiry, persistence.
import os
import re
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from banlisttest import conf, ctl, get

set_timeout(60)

origin = Origin()
url = origin.url('/a.txt')
write_file('lists/exc-clients', '127.0.0.99\n')
write_file('lists/exc-sites', 'trusted.test\n')
BLOCK = '''
plugin banlist {
    exception_clients lists/exc-clients
    exception_sites   lists/exc-sites
    state             %%TESTDIR%%/banlist.state
}
'''
d = Daemon(conf(BLOCK)).start()
state = os.path.join(testdir(), 'banlist.state')


def status(r):
    return r.status, r.header('X-Portcullis-Block')


# -- a client ban: the page says why and until when
r = get(d.port, url, '127.0.0.2')
is_(r.status, 200, 'before the ban the client gets through')
t0 = time.monotonic()
rc, out, err = ctl(d, 'ban', '127.0.0.2', '1h', 'crypto-locker on the accounts PC')
is_(rc, 0, 'ctl ban: exit status 0') or diag(err)
like(out, r'^banned client 127\.0\.0\.2 for 1h, until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: '
     r'crypto-locker on the accounts PC$', 'ctl ban: what was done')
r = get(d.port, url, '127.0.0.2')
delay = time.monotonic() - t0
is_(status(r), (403, 'banlist; crypto-locker on the accounts PC'),
    'the next request after ctl ban is blocked, no reload')
diag('ctl ban returned and the next request was blocked within %.1f ms' % (delay * 1000))
like(r.body, r'<dt>Reason</dt><dd>crypto-locker on the accounts PC</dd>', 'block page: the reason')
m = re.search(r'<dt>Banned until</dt><dd>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)</dd>', r.body.decode())
ok(m, 'block page: until when')
if m:
    until = time.mktime(time.strptime(m.group(1), '%Y-%m-%d %H:%M:%S UTC')) - time.timezone
    ok(3590 < until - time.time() < 3610, 'block page: the end is an hour away')
r = get(d.port, 'https://example.test/', '127.0.0.2')
is_(r.connect_status, 403, 'a banned client\'s CONNECT is refused')
passed = get(d.port, url, '127.0.0.3')
is_(passed.status, 200, 'another client is not affected')

# -- a ban made while a keep-alive connection is open
with RawClient(d.port, source='127.0.0.4') as c:
    req = 'GET %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (url, origin.authority)
    c.send(req)
    r1 = c.recv_response()
    is_(r1 and r1.status, 200, 'keep-alive: first request passes')
    is_(ctl(d, 'ban', '127.0.0.4', '10m', 'caught mid-connection')[0], 0, 'ctl ban while connected')
    c.send(req)
    r2 = c.recv_response()
    is_(r2 and r2.status, 403, 'keep-alive: the next request on the same connection is blocked')
    like(r2 and r2.header('X-Portcullis-Block'), r'caught mid-connection', 'keep-alive: with the reason')

# -- a connection refused at accept carries the until too, and is closed
with RawClient(d.port, source='127.0.0.4') as c:
    c.send('GET %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (url, origin.authority))
    r = c.recv_response()
    is_(r and r.status, 403, 'a banned client\'s new connection is blocked at accept')
    like(r and r.body, r'Banned until', 'blocked at accept: the page says until when')
    is_(r and r.header('Connection'), 'close', 'blocked at accept: the connection is closed after')
    ok(c.wait_closed(5), 'blocked at accept: the proxy closes it')

# -- unban
rc, out, err = ctl(d, 'unban', '127.0.0.4')
is_((rc, out.strip()), (0, 'unbanned client 127.0.0.4'), 'ctl unban')
is_(get(d.port, url, '127.0.0.4').status, 200, 'after unban the client gets through at once')
rc, out, err = ctl(d, 'unban', '127.0.0.4')
is_(rc, 1, 'ctl unban of what is not banned fails')
like(err, r'no ban on client 127\.0\.0\.4', 'ctl unban: says so')

# -- CIDR bans: the most specific ban answers
ctl(d, 'ban', '127.0.1.0/24', '1h', 'lab network')
ctl(d, 'ban', '127.0.1.7', '1h', 'this one PC')
is_(get(d.port, url, '127.0.1.9').header('X-Portcullis-Block'), 'banlist; lab network',
    'a CIDR ban covers its clients')
is_(get(d.port, url, '127.0.1.7').header('X-Portcullis-Block'), 'banlist; this one PC',
    'the most specific ban gives the reason')
rc, out, err = ctl(d, 'unban', '127.0.1.9')
like(err, r'covered by the ban on 127\.0\.1\.0/24', 'unban inside a CIDR names the covering ban')
rc, out, err = ctl(d, 'bancheck', '127.0.1.9')
like(out, r'client 127\.0\.1\.9: banned by the ban on 127\.0\.1\.0/24 until .*: lab network',
     'bancheck explains')

# -- site bans
is_(ctl(d, 'ban', 'Malware.Test', 'forever', 'drive-by downloads')[0], 0, 'ctl ban of a site')
r = get(d.port, 'http://www.malware.test/x')
is_(status(r), (403, 'banlist; drive-by downloads'), 'a banned site and its subdomains')
like(r.body, r'<dt>Banned until</dt><dd>further notice</dd>', 'a ban for ever says so')
is_(get(d.port, 'https://malware.test/').connect_status, 403, 'CONNECT to a banned site refused')
is_(ctl(d, 'ban', 'site:127.0.0.1', '1h', 'the origin itself')[0], 0, 'site:ADDRESS bans an address as a site')
is_(get(d.port, url, '127.0.0.3').header('X-Portcullis-Block'), 'banlist; the origin itself',
    'site ban by address')
ctl(d, 'unban', 'site:127.0.0.1')

# -- exceptions win
rc, out, err = ctl(d, 'ban', '127.0.0.99', '1h', 'x')
is_(rc, 1, 'ctl ban of an exception client is refused')
like(err, r'client 127\.0\.0\.99 is in exception_clients', 'and says why')
rc, out, err = ctl(d, 'ban', 'trusted.test', '1h', 'x')
like(err, r'site trusted\.test is in exception_sites', 'ctl ban of an exception site is refused')
ctl(d, 'ban', '127.0.0.96/30', '1h', 'covers an exception')
is_(get(d.port, url, '127.0.0.99').status, 200, 'an exception client inside a banned CIDR passes')

# -- bans: the listing
rc, out, err = ctl(d, 'bans')
is_(rc, 0, 'ctl bans')
like(out, r'(?m)^KIND +TARGET +LEFT +UNTIL +SOURCE +REASON$', 'bans: a header')
like(out, r'(?m)^client 127\.0\.0\.2 +(59m\d+s|1h) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ctl +crypto-locker on the accounts PC$',
     'bans: client, time left, until, source, reason')
like(out, r'(?m)^site +malware\.test +forever +- +ctl +drive-by downloads$', 'bans: a site for ever')
like(out, r'(?m)^5 bans$', 'bans: the count')
rc, out, err = ctl(d, 'bans', 'sites')
ok('malware.test' in out and '127.0.0.2' not in out, 'bans sites: only sites')
rc, out, err = ctl(d, 'stats')
like(out, r'(?m)^banlist_bans 5$', 'stats: the bans in force')
like(out, r'(?m)^banlist_blocked [1-9]\d*$', 'stats: blocked requests counted')
like(out, r'(?m)^banlist_bans_removed 2$', 'stats: unbans counted')

# -- expiry
is_(ctl(d, 'ban', '127.0.0.5', '2s', 'short')[0], 0, 'a 2 s ban')
is_(get(d.port, url, '127.0.0.5').status, 403, 'blocked during the 2 s')
ok(wait_until(lambda: get(d.port, url, '127.0.0.5').status == 200, timeout=5),
   'the ban ends by itself')
ok(d.wait_for_log('error', r'ban on client 127\.0\.0\.5 ended \(short\)', timeout=3),
   'the end is logged')
ok('127.0.0.5' not in ctl(d, 'bans')[1], 'an ended ban is no longer listed')

# -- the state file, written atomically
text = wait_until(lambda: (lambda t: t if 'malware.test' in t and '127.0.0.5' not in t else None)(
    open(state).read() if os.path.exists(state) else ''), timeout=3)
ok(text, 'the state file holds the bans')
like(text, r'(?m)^client 127\.0\.0\.2 \d{4}-\d\d-\d\dT[\d:.]+Z [\d\-T:.]+Z ctl crypto-locker on the accounts PC$',
     'state file: one line per ban')
like(text, r'(?m)^site malware\.test forever ', 'state file: a ban for ever')
ok(not os.path.exists(state + '.tmp'), 'state file: no temporary file left')

# -- persistence across a restart
ok(d.stop(), 'stop')
mark = d.log_mark()
d.start()
ok(d.wait_for_log('error', r'5 bans restored from .*banlist\.state', since=mark),
   'restart: the bans are restored')
r = get(d.port, url, '127.0.0.2')
is_(status(r), (403, 'banlist; crypto-locker on the accounts PC'), 'restart: the client is still banned')
is_(get(d.port, 'http://malware.test/').status, 403, 'restart: the site is still banned')
like(ctl(d, 'bans')[1], r'client 127\.0\.0\.2 +(59m\d+s|1h) ', 'restart: the time left continues')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
