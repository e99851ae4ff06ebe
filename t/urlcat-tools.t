#!/usr/bin/env python3
# urlcat-tools.t - tools/urlcat-urlhaus (malware category from Debian's uBlock Origin) and tools/urlcat-ut1 (the UT1 tarball) feed a running daemon.
import os
import re
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

URLHAUS = ('/usr/share/chromium/extensions/ublock-origin/assets/thirdparties/'
           'urlhaus-filter/urlhaus-filter-online.txt')
T = testdir()


def run(*argv):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    return p.returncode, p.stdout


# urlcat-urlhaus on a small file in the list's syntax: exact results.
src = os.path.join(T, 'urlhaus.txt')
write_lines(src, [
    '! Title: Online Malicious URL Blocklist',
    '1.2.3.4',
    'bad-host.test',
    '||dropper.test^$all',
    '||files.test/payload/x.exe^$all',
    '||files.test/100%25/a.zip^$all',
    '||broken.test/a%zz^$all',
    '##.cosmetic-filter',
])
lists = os.path.join(T, 'lists')
rc, out = run(tool('urlcat-urlhaus'), '--source', src, lists)
is_(rc, 0, 'urlcat-urlhaus: exit 0')
like(out, r'3 domains, 2 urls \(2 lines skipped\)', 'urlcat-urlhaus: counts')
with open(os.path.join(lists, 'malware', 'domains')) as f:
    is_(f.read().split(), ['1.2.3.4', 'bad-host.test', 'dropper.test'], 'domains file')
with open(os.path.join(lists, 'malware', 'urls')) as f:
    is_(f.read().split(), ['files.test/payload/x.exe', 'files.test/100%25/a.zip'], 'urls file')
rc, out = run(tool('urlcat-urlhaus'), '--source', os.path.join(T, 'missing'), '--category',
              'empty', lists)
is_(rc, 0, 'missing source: exit 0 (an empty category, so configs still start)')
like(out, r'warning: .*missing not found', 'missing source: warning')
ok(os.path.getsize(os.path.join(lists, 'empty', 'domains')) == 0, 'missing source: empty list')

d = Daemon(conf('''
            lists %s
            block malware
            poll_interval 1s
''' % lists)).start()
for url, name in (('http://www.dropper.test/', '||host^ entry (subdomain)'),
                  ('http://1.2.3.4/', 'address entry'),
                  ('http://files.test/payload/x.exe', '||host/path^ entry')):
    r = curl_via(d.port, url)
    is_(r.status, 403, 'urlhaus list blocks: %s' % name)
    like(block_header(r), r'URL category malware', 'urlhaus list: category malware (%s)' % name)
r = curl_via(d.port, 'http://files.test/other')
ok(r.status != 403, 'urlhaus list: other paths of a URL entry pass')

# The real list from Debian's webext-ublock-origin-chromium.
if os.path.exists(URLHAUS):
    rc, out = run(tool('urlcat-urlhaus'), lists)
    is_(rc, 0, 'real URLhaus list: exit 0')
    m = re.search(r'(\d+) domains, (\d+) urls', out)
    ok(m and int(m.group(1)) > 100 and int(m.group(2)) > 100,
       'real URLhaus list: hundreds of entries (%s)' % out.strip())
    host = None
    with open(URLHAUS) as f:
        for line in f:
            line = line.strip()
            if line.startswith('||') and '/' not in line:
                host = line[2:].split('^')[0]
                break
    ok(d.wait_for_log('error', r'list files changed; lists loaded in', timeout=10),
       'the running daemon picks up the new list')
    r = curl_via(d.port, 'http://%s/' % host)
    is_(r.status, 403, 'a real URLhaus host is blocked (%s)' % host)
else:
    skip('webext-ublock-origin-chromium not installed (tools/install-deps)', 4)

# urlcat-ut1: a tarball in the download's exact layout.
src1 = make_ut1('ut1-v1', {'adult': {'domains': ['evil.test']},
                           'gambling': {'domains': ['casino.test']}},
                aliases={'porn': 'adult'})
tar1 = ut1_tarball(src1, os.path.join(T, 'blacklists.tar.gz'))
with open(os.path.join(T, 'MD5SUM.LST'), 'w') as f:
    import hashlib
    f.write('%s  blacklists.tar.gz\n' % hashlib.md5(open(tar1, 'rb').read()).hexdigest())
ut1 = os.path.join(T, 'var', 'ut1')
rc, out = run(tool('urlcat-ut1'), '--md5', os.path.join(T, 'MD5SUM.LST'), tar1, ut1)
is_(rc, 0, 'urlcat-ut1: exit 0')
like(out, r'installed 2 categories', 'urlcat-ut1: categories counted (the alias is a link)')
ok(os.path.islink(os.path.join(ut1, 'porn')), 'urlcat-ut1: UT1 symlinks kept')
with open(os.path.join(T, 'bad.md5'), 'w') as f:
    f.write('0' * 32 + '  blacklists.tar.gz\n')
rc, out = run(tool('urlcat-ut1'), '--md5', os.path.join(T, 'bad.md5'), tar1, ut1)
is_(rc, 1, 'urlcat-ut1: MD5 mismatch refused')
with open(os.path.join(T, 'junk.tar.gz'), 'wb') as f:
    f.write(b'\x1f\x8b not really gzip')
rc, out = run(tool('urlcat-ut1'), os.path.join(T, 'junk.tar.gz'), ut1)
is_(rc, 1, 'urlcat-ut1: a damaged tarball refused')
ok(os.path.exists(os.path.join(ut1, 'adult', 'domains')), 'urlcat-ut1: tree kept after refusals')

d2 = Daemon(conf('''
            lists %s
            block porn gambling
            poll_interval 1s
''' % ut1), name='ut1').start()
is_(curl_via(d2.port, 'http://evil.test/').status, 403, 'UT1 tree: blocked through the alias')
is_(curl_via(d2.port, 'http://casino.test/').status, 403, 'UT1 tree: second category')
src2 = make_ut1('ut1-v2', {'adult': {'domains': ['evil.test', 'worse.test']},
                           'gambling': {'domains': ['casino.test']}},
                aliases={'porn': 'adult'})
tar2 = ut1_tarball(src2, os.path.join(T, 'v2', 'blacklists.tar.gz'))
mark = d2.log_mark('error')
rc, out = run(tool('urlcat-ut1'), tar2, ut1)
is_(rc, 0, 'urlcat-ut1: a new tarball over the old tree')
ok(d2.wait_for_log('error', r'list files changed; lists loaded .* 3 domains', timeout=10,
                   since=mark), 'the running daemon loads the new tree')
is_(curl_via(d2.port, 'http://worse.test/').status, 403, 'new tree: new entry blocks')
ok(not [n for n in os.listdir(os.path.dirname(ut1)) if n.startswith('.ut1')],
   'urlcat-ut1: no work directory left behind')

for x in (d, d2):
    ok(x.stop(), 'graceful stop (%s)' % x.name)
    x.check_logs()
done_testing()
