#!/usr/bin/env python3
# urlcat-match.t - urlcat matching rules: UT1 tree, label boundaries, URL prefixes, expressions, addresses, e2guardian lists, block page and log.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

origin = Origin()
O = '127.0.0.1:%d' % origin.port

tree = make_ut1('ut1', {
    'adult': {
        'domains': ['# UT1 adult', 'amex.com', 'Evil.Example.ORG  trailing words',
                    '10.9.0.0/16', '1.2.3.4', 'b\u00fccher.example', ''],
        'urls': ['example.net/bad/path', 'http://user@www.example.net:8080/dir/',
                 '%s/secret/area' % O],
        'expressions': ['(^|[-/_.])porn([-/_.]|$)', 'Casino'],
    },
    'malware': {'domains': ['malware.test']},
    'news': {'domains': ['news.test']},
}, aliases={'porn': 'adult'}, titles={'adult': 'Adult'})

# e2guardian-style lists: #listcategory, .Include (relative), inline
# comments, *. prefixes, the "**" blanket in its own list.
e2 = os.path.join(testdir(), 'e2')
write_lines(os.path.join(e2, 'bannedsitelist'), [
    '#listcategory: "Ads Sites"',
    'ads.test   # an ad server',
    '*.tracker.test',
    '.Include<more/sites>',
])
write_lines(os.path.join(e2, 'more', 'sites'), ['# included', 'beacon.test #x'])
write_lines(os.path.join(e2, 'bannedurllist'), ['#listcategory: games',
                                              'play.test/flash/'])
write_lines(os.path.join(e2, 'bannedregexpurllist'), ['gambl(e|ing)'])

d = Daemon(conf('''
            lists %s
            domain_list %s
            url_list %s
            expression_list %s betting
            block porn malware "Ads Sites" games betting
''' % (tree, os.path.join(e2, 'bannedsitelist'), os.path.join(e2, 'bannedurllist'),
       os.path.join(e2, 'bannedregexpurllist')))).start()
like(d.error_log(), r'urlcat: lists loaded in [0-9.]+ s: 9 domains, 4 urls, 3 expressions, '
     r'1 address ranges in 6 categories .*MiB', 'load logged with counts and memory')


def blocked(url, cat, name, *args):
    r = curl_via(d.port, url, *args)
    is_(r.status, 403, '%s: 403' % name)
    like(block_header(r), r'^urlcat; URL category %s' % cat,
         '%s: X-Portcullis-Block names the category' % name)
    return r


def passed(url, name, status=None):
    r = curl_via(d.port, url)
    is_(block_header(r), '', '%s: not blocked' % name)
    if status:
        is_(r.status, status, '%s: %d' % (name, status))
    return r


# Domains: themselves and subdomains at a label boundary.
r = blocked('http://www.amex.com/', 'adult', 'subdomain of a listed domain')
like(r.body.decode('utf-8', 'replace'), r'adult', 'block page shows the category')
e = wait_entry(d, 'http://www.amex.com/')
is_(note(e, 'category'), 'adult', 'JSON access log notes the category')
is_((e or {}).get('category'), 'adult', 'JSON access log category field')
blocked('http://amex.com/', 'adult', 'the listed domain itself')
blocked('http://a.b.c.amex.com/x', 'adult', 'deep subdomain')
passed('http://aamex.com/', 'a name that only ends with the domain (aamex.com)')
passed('http://amex.com.evil.test/', 'the domain as a left part (amex.com.evil.test)')
passed('http://mex.com/', 'a parent of the listed domain (mex.com)')
blocked('http://evil.example.org/', 'adult', 'first token of a line, lowercased')
blocked('http://xn--bcher-kva.example/', 'adult', 'IDN entry as an A-label')
blocked('http://malware.test/', 'malware', 'second category')
blocked('http://sub.malware.test/', 'malware', 'subdomain in the second category')

# URLs: path prefixes ending at a boundary; scheme, user info, port and
# www stripped from entries.
blocked('http://example.net/bad/path', 'adult', 'URL entry exactly')
blocked('http://example.net/bad/path/more', 'adult', 'URL entry followed by /')
blocked('http://example.net/bad/path?x=1', 'adult', 'URL entry followed by a query')
passed('http://example.net/bad/pathology', 'URL prefix not at a boundary')
passed('http://example.net/bad', 'shorter than the URL entry')
passed('http://other.example.net/bad/path', 'URL entries do not cover subdomains')
blocked('http://example.net/dir/file', 'adult', 'entry with scheme, user, port and www')
blocked('http://www2.example.net/dir/', 'adult', 'www2. stripped from the request')
passed('http://example.net/directory', 'entry "dir/" does not cover "directory"')
blocked('http://%s/secret/area/x' % O, 'adult', 'URL entry with an address host')
passed('http://%s/secret/areas' % O, 'URL entry with an address host, no boundary', 200)

# Expressions over the whole URL, case-insensitive by default.
blocked('http://%s/porn/' % O, 'adult', 'expression')
passed('http://%s/pornography' % O, 'expression anchored on separators', 200)
blocked('http://%s/CASINO-royale' % O, 'adult', 'expression matches any case')
blocked('http://%s/a?q=gambling' % O, 'betting', 'expression list with a category argument')

# Addresses and CIDRs.
blocked('http://10.9.200.1/', 'adult', 'address in a listed CIDR')
blocked('http://1.2.3.4/', 'adult', 'listed address')
passed('http://1.2.3.5/', 'neighbouring address')

# A category that does not block is still logged.
passed('http://news.test/', 'unblocked category')
e = wait_entry(d, 'http://news.test/')
is_(note(e, 'category'), 'news', 'unblocked category noted in the access log')
e = wait_entry(d, 'http://%s/pornography' % O)
is_(note(e, 'category'), None, 'no category note when nothing matched')

# e2guardian-style lists.
blocked('http://ads.test/', 'ads sites', '#listcategory and an inline comment')
blocked('http://x.tracker.test/', 'ads sites', '*. prefix')
blocked('http://beacon.test/', 'ads sites', '.Include<relative path>')
blocked('http://play.test/flash/game', 'games', 'e2guardian URL list')
passed('http://play.test/other', 'e2guardian URL list, other path')

ok(d.stop(), 'graceful stop')
d.check_logs()

# expressions_caseless off: the expression keeps its case.
d2 = Daemon(conf('''
            lists %s
            block porn
            expressions_caseless off
''' % tree), name='caseless').start()
r = curl_via(d2.port, 'http://%s/casino' % O)
is_(block_header(r), '', 'expressions_caseless off: "Casino" does not match "casino"')
r = curl_via(d2.port, 'http://%s/Casino' % O)
is_(r.status, 403, 'expressions_caseless off: "Casino" matches "Casino"')
ok(d2.stop(), 'graceful stop (caseless off)')
d2.check_logs()
done_testing()
