#!/usr/bin/env python3
# banlist-auto.t - automatic bans from events: an infected download, and too many blocked requests.
import os
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from banlisttest import conf, ctl, get, plugin_path

set_timeout(60)

# The scanner: avscan with the project's test signatures (EICAR) when it
# is built; else the fake engine of the SDK tests (t/plugins/fakescan),
# which publishes av.infected through fakescan-user exactly as avscan does.
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*')
if os.path.exists(plugin_path('avscan')):
    SCANNER = 'avscan'
    SCANNER_PLUGINS = ('avscan',)
    os.makedirs(os.path.join(testdir(), 'clamdb'), exist_ok=True)
    SCANNER_CONF = '''
plugin avscan {
    database         %s
    test_signatures  %s
}
''' % (os.path.join(testdir(), 'clamdb'), os.path.join(top_srcdir(), 'plugins', 'avscan', 'sigs'))
    VIRUS_BODY = EICAR
    VIRUS_BLOCK = r'^avscan; virus found: Eicar-Test-Signature'
    VIRUS_LOG = r'avscan: virus found: Eicar-Test-Signature'
else:
    SCANNER = 'fakescan'
    SCANNER_PLUGINS = ('fakescan', 'fakescan-user')
    SCANNER_CONF = '''
plugin fakescan {
    marker      FAKE-VIRUS
    virus_name  Fake.Test.Ransom
}
plugin fakescan-user {
    max 1M
}
'''
    VIRUS_BODY = b'MZ...FAKE-VIRUS...payload\n'
    VIRUS_BLOCK = r'^fakescan-user; virus found: Fake\.Test\.Ransom$'
    VIRUS_LOG = r'infected .*Fake\.Test\.Ransom'
for p in SCANNER_PLUGINS + ('example', 'testkit'):
    if not os.path.exists(plugin_path(p)):
        skip_all('%s not built (make check builds it)' % plugin_path(p))
diag('scanner: %s' % SCANNER)
PLUGINS = SCANNER_PLUGINS + ('example', 'testkit')


def handler(req):
    if req.path.startswith('/virus'):
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=VIRUS_BODY)
    return Response(headers=[('Content-Type', 'text/plain')], body=b'clean\n')


origin = Origin(handler)
clean = origin.url('/clean.txt')
write_file('lists/sites', 'banlisted.test\n')
write_file('lists/exc-clients', '127.0.0.99\n')
CONF = SCANNER_CONF + '''
plugin example {
    block_host  *.blocked.test
    reason      "blocked by the example plugin"
}
plugin banlist {
    ban_sites          lists/sites
    exception_clients  lists/exc-clients
    auto_ban           av.infected 1 1h "infected download: machine quarantined"
    auto_ban           txn.blocked 3/10s 30m
}
'''
d = Daemon(conf(CONF + '''
plugin testkit {
}
''', plugins=PLUGINS)).start()

# -- one infected download bans the client for an hour
is_(get(d.port, clean, '127.0.0.2').status, 200, 'before: the client gets through')
r = get(d.port, origin.url('/virus.bin'), '127.0.0.2')
is_(r.status, 403, 'the infected download is blocked by the scanner')
like(r.header('X-Portcullis-Block'), VIRUS_BLOCK, 'by the scanner, naming the virus')
line = d.wait_for_log('error', r'banlist: banned client 127\.0\.0\.2 for 1h', timeout=5)
ok(line, 'banlist bans the client after one infected download')
like(line, r'by auto:av\.infected: infected download: machine quarantined', 'with the rule\'s reason')
r = get(d.port, clean, '127.0.0.2')
is_((r.status, r.header('X-Portcullis-Block')), (403, 'banlist; infected download: machine quarantined'),
    'the client\'s next request, to a clean page, is blocked')
like(r.body, r'<dt>Banned until</dt><dd>\d{4}-', 'the block page says until when')
like(ctl(d, 'bans')[1], r'client 127\.0\.0\.2 +(59m\d+s|1h) .* auto:av\.infected +infected download',
     'ctl bans shows the automatic ban and its source')
is_(get(d.port, clean, '127.0.0.3').status, 200, 'other clients are not affected')

# -- an exception client is never banned automatically
mark = d.log_mark()
get(d.port, origin.url('/virus.bin'), '127.0.0.99')
ok(d.wait_for_log('error', VIRUS_LOG, timeout=3, since=mark),
   'the exception client\'s download was found infected')
time.sleep(0.3)  # events reach banlist on the main loop, soon after
is_(get(d.port, clean, '127.0.0.99').status, 200, 'an exception client is not banned automatically')

# -- 3 blocked requests within 10 s ban the client for 30 minutes
for i in range(2):
    is_(get(d.port, 'http://x%d.blocked.test/' % i, '127.0.0.4').status, 403,
        'blocked request %d of 3' % (i + 1))
is_(get(d.port, clean, '127.0.0.4').status, 200, 'two blocked requests are not enough')
get(d.port, 'http://x3.blocked.test/', '127.0.0.4')
ok(d.wait_for_log('error', r'banned client 127\.0\.0\.4 for 30m', timeout=5),
   'the third blocked request within 10 s bans the client')
r = get(d.port, clean, '127.0.0.4')
is_(r.status, 403, 'banned after three blocked requests')
like(r.header('X-Portcullis-Block'), r'^banlist; automatic: 3 txn\.blocked within 10s '
     r'\(last: blocked by the example plugin\)$', 'a made-up reason says why')

# -- banlist's own blocks do not count (a banned client retrying would be
# banned for ever)
for i in range(5):
    is_(get(d.port, 'http://banlisted.test/', '127.0.0.5').status, 403,
        'a request to a banned site (%d)' % (i + 1))
ok(d.wait_for_log('error', r'blocked by banlist: banned site.*127\.0\.0\.5', timeout=3),
   'the blocks happened')
time.sleep(0.3)  # let their events arrive
is_(get(d.port, clean, '127.0.0.5').status, 200, 'blocks by banlist itself do not lead to a ban')

# -- a rule on a new event, added by a reload, works at once
d.write_conf(conf(CONF.replace('auto_ban           txn.blocked 3/10s 30m',
                               'auto_ban           txn.blocked 3/10s 30m\n'
                               '    auto_ban           custom.alarm 2/1m 15m "custom alarm"') +
                  'plugin testkit {\n}\n', plugins=PLUGINS))
like(d.reload(), r'configuration reloaded', 'reload with a rule on a new event')
for i in range(2):
    get(d.port, clean, '127.0.0.6', '-H', 'X-Test-Publish: custom.alarm')
ok(d.wait_for_log('error', r'banned client 127\.0\.0\.6 for 15m, .* by auto:custom\.alarm: custom alarm',
                  timeout=5), 'two custom.alarm events ban the client')
is_(get(d.port, clean, '127.0.0.6').header('X-Portcullis-Block'), 'banlist; custom alarm',
    'the new rule\'s ban applies')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
