#!/usr/bin/env python3
# urlcat-policy.t - exception lists and categories win over blocks; per-network policies; log-only mode.
import os
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

tree = make_ut1('ut1', {
    'adult': {'domains': ['evil.test', 'mixed.test'], 'urls': ['example.net/bad/path']},
    'malware': {'domains': ['malware.test']},
    'games': {'domains': ['games.test']},
    'liste_blanche': {'domains': ['mixed.test']},
})
allow = os.path.join(testdir(), 'allow.txt')
write_lines(allow, [
    '# site-wide exceptions: hosts, URLs, addresses',
    'safe.evil.test',
    'example.net/bad/path/ok   # an inline comment',
    '.Include<allow-more.txt>',
])
write_lines(os.path.join(testdir(), 'allow-more.txt'), ['10.9.9.9'])
kids_allow = os.path.join(testdir(), 'kids-allow.txt')
write_lines(kids_allow, ['evil.test/kidsafe/'])

d = Daemon(conf('''
            lists %s
            block adult malware
            allow %s
            allow_category liste_blanche
            policy kids {
                clients 127.0.0.2
                block adult malware games
                allow %s
            }
            policy staff {
                clients 127.0.0.3/32 10.0.0.0/8
                block malware
            }
            policy audit {
                clients 127.0.0.4
                block adult
                log_only on
            }
''' % (tree, allow, kids_allow), extra='control_socket %%TESTDIR%%/ctl.sock')).start()


def ctl(*args):
    p = subprocess.run([d.binary, 'ctl', '-s', os.path.join(testdir(), 'ctl.sock')] +
                       list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=10)
    return p.returncode, p.stdout


def get(url, source='127.0.0.1'):
    return curl_via(d.port, url, '--interface', source)


def blocked(url, name, source='127.0.0.1', cat=None):
    r = get(url, source)
    is_(r.status, 403, '%s: 403' % name)
    if cat:
        like(block_header(r), r'URL category %s' % cat, '%s: category %s' % (name, cat))


def passed(url, name, source='127.0.0.1'):
    r = get(url, source)
    ok(r.status != 403 and block_header(r) == '',
       '%s: not blocked (%d %s)' % (name, r.status, block_header(r)))


# The default policy (clients no policy names).
blocked('http://evil.test/', 'default policy blocks adult', cat='adult')
passed('http://safe.evil.test/', 'exception host wins over the blocked parent domain')
e = wait_entry(d, 'http://safe.evil.test/')
is_(note(e, 'urlcat'), 'exception', 'exception noted in the access log')
is_(note(e, 'category'), 'adult', 'the category it overrode is noted')
like(note(e, 'urlcat_exception') or '', r'allow\.txt$', 'the exception list is noted')
blocked('http://example.net/bad/path', 'URL entry blocked')
passed('http://example.net/bad/path/ok/x', 'exception URL under a blocked URL')
passed('http://10.9.9.9/', 'exception address from an included file')
passed('http://mixed.test/', 'allow_category wins over a blocked category')
passed('http://games.test/', 'default policy does not block games')
blocked('http://evil.test/kidsafe/', 'another policy\'s exception list does not apply')

# kids: its own blocks and exceptions, plus the site-wide ones.
blocked('http://games.test/', 'kids: games blocked', '127.0.0.2', 'games')
blocked('http://evil.test/', 'kids: adult blocked', '127.0.0.2')
passed('http://evil.test/kidsafe/page', 'kids: its own exception list', '127.0.0.2')
passed('http://safe.evil.test/', 'kids: site-wide exception list too', '127.0.0.2')
passed('http://mixed.test/', 'kids: site-wide allow_category too', '127.0.0.2')

# staff: only malware.
passed('http://evil.test/', 'staff: adult not blocked', '127.0.0.3')
blocked('http://malware.test/', 'staff: malware blocked', '127.0.0.3', 'malware')

# audit: log-only.
mark = d.log_mark('error')
passed('http://evil.test/audit', 'log_only: not blocked', '127.0.0.4')
e = wait_entry(d, 'http://evil.test/audit')
is_(note(e, 'urlcat'), 'log-only', 'log_only: noted in the access log')
is_(note(e, 'category'), 'adult', 'log_only: the category is noted')
ok(d.wait_for_log('error', r'log_only: would block http://evil\.test/audit '
                  r'\(category adult\) for 127\.0\.0\.4', since=mark),
   'log_only: "would block" in the error log')

# portcullis ctl urlcat: what a client would get, without a request.
rc, out = ctl('urlcat', 'check', 'http://WWW.Evil.Test./x/../a')
is_(rc, 0, 'ctl urlcat check: exit 0')
like(out, r'url: http://www\.evil\.test/a\n', 'ctl: the normalised URL')
like(out, r'policy: default\ncategories: adult\nverdict: blocked \(adult\)',
     'ctl: default policy, category, verdict')
rc, out = ctl('urlcat', 'check', 'games.test:443', '127.0.0.2')
like(out, r'\(a tunnel\)\npolicy: kids\ncategories: games\nverdict: blocked \(games\)',
     'ctl: a tunnel for a kids client')
rc, out = ctl('urlcat', 'check', 'http://evil.test/', '127.0.0.3')
like(out, r'policy: staff\ncategories: adult\nverdict: not blocked', 'ctl: staff policy')
rc, out = ctl('urlcat', 'check', 'http://safe.evil.test/')
like(out, r'verdict: allowed by the exception .*allow\.txt \(over adult\)',
     'ctl: exception named')
rc, out = ctl('urlcat', 'check', 'http://evil.test/', '127.0.0.4')
like(out, r'verdict: logged only \(would block: adult\)', 'ctl: log-only')
rc, out = ctl('urlcat', 'check', 'http://bad%00.test/')
ok(rc != 0 and 'refused (400)' in out, 'ctl: a hostile host is refused (%s)' % out.strip())
rc, out = ctl('urlcat', 'lists')
like(out, r'lists loaded in [0-9.]+ s: 6 domains, 3 urls, .* in 4 categories \(2 exception lists\)',
     'ctl urlcat lists: the summary')

ok(d.stop(), 'graceful stop')
d.check_logs()

# Top-level log_only on: every policy without its own setting inherits it.
d2 = Daemon(conf('''
            lists %s
            block adult
            log_only on
            policy strict {
                clients 127.0.0.2
                block adult
                log_only off
            }
''' % tree), name='logonly').start()
r = curl_via(d2.port, 'http://evil.test/')
ok(r.status != 403, 'top-level log_only on: not blocked (%d)' % r.status)
r = curl_via(d2.port, 'http://evil.test/', '--interface', '127.0.0.2')
is_(r.status, 403, 'a policy with log_only off still blocks')
ok(d2.stop(), 'graceful stop (log_only)')
d2.check_logs()
done_testing()
