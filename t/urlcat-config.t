#!/usr/bin/env python3
# urlcat-config.t - `portcullis -t` names FILE:LINE for every bad urlcat directive and every bad list line.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

tree = make_ut1('ut1', {'adult': {'domains': ['evil.test']}, 'news': {'domains': ['n.test']}})
T = testdir()
seq = [0]


def check(body):
    seq[0] += 1
    d = Daemon(conf(body), name='c%d' % seq[0])
    rc, out = d.run_check()
    return rc, out, d.conf_path


def line_of(path, text):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    return 0


def refused(body, regex, name, conf_line_of=None):
    rc, out, path = check(body)
    is_(rc, 1, '%s: -t exits 1' % name)
    if conf_line_of:
        regex = regex.replace('CONF', re.escape('%s:%d' % (path, line_of(path, conf_line_of))))
    like(out, regex, '%s: message' % name)


def listfile(name, lines):
    p = os.path.join(T, name)
    write_lines(p, lines)
    return p


rc, out, _ = check('lists %s\nblock adult' % tree)
is_(rc, 0, 'a good config passes -t')
like(out, r'test is successful', 'a good config: success message')

# Directives.
refused('lists %s\nblock adult nosuch' % tree,
        r"CONF: block: unknown category 'nosuch' \(the lists have: adult, news\)",
        'unknown category in block', 'block adult nosuch')
refused('lists %s\nallow_category nosuch' % tree, r"CONF: allow_category: unknown category",
        'unknown category in allow_category', 'allow_category nosuch')
refused('lists %s/nonexistent' % T, r'CONF: lists .*nonexistent: No such file',
        'missing lists directory', 'lists ')
refused('domain_list %s/nonexistent.txt' % T, r'CONF: cannot open .*nonexistent\.txt',
        'missing domain_list file', 'domain_list')
refused('block adult', r"no lists: give 'lists DIR'", 'no lists at all')
refused('lists %s\npoll_interval 500ms' % tree, r'poll_interval must be 0 \(off\) or at least 1s',
        'poll_interval too short')
refused('lists %s\nlist_errors maybe' % tree, r"CONF: list_errors: 'maybe' is not one of fail, warn",
        'list_errors value', 'list_errors')
refused('lists %s\nlog_only perhaps' % tree, r"CONF: log_only: invalid flag 'perhaps'",
        'log_only value', 'log_only')
refused('lists %s\nbogus 1' % tree, r"CONF: unknown directive 'bogus'", 'unknown directive',
        'bogus')
refused('lists %s\npolicy p {\n block adult\n}' % tree, r"policy 'p' needs a 'clients' line",
        'policy without clients')
refused('lists %s\npolicy p {\n clients 10.0.0.0/33\n}' % tree,
        r"invalid prefix length in '10\.0\.0\.0/33'", 'bad clients CIDR')
refused('lists %s\npolicy p {\n clients 10.0.0.1\n}\npolicy p {\n clients 10.0.0.2\n}' % tree,
        r"policy 'p' is already defined", 'duplicate policy')
refused('lists %s\npolicy p {\n clients 10.0.0.1\n colour red\n}' % tree,
        r"CONF: unknown directive 'colour'", 'unknown directive in a policy', 'colour')
refused('lists %s\npolicy p {\n clients 10.0.0.1\n block nosuch\n}' % tree,
        r"CONF: block: unknown category 'nosuch'", 'unknown category in a policy',
        'block nosuch')

# List lines.
p = listfile('d1.txt', ['ok.test', 'bad..domain'])
refused('domain_list %s' % p, re.escape(p) + r":2: invalid domain 'bad\.\.domain': empty label",
        'bad domain line')
p = listfile('d2.txt', ['# c', '10.0.0.0/33'])
refused('domain_list %s' % p, re.escape(p) + r":2: invalid prefix length", 'bad CIDR line')
p = listfile('d3.txt', ['ok.test', 'x/y'])
refused('domain_list %s' % p, re.escape(p) + r":2: 'x/y' is not a domain", 'URL in a domain list')
p = listfile('d4.txt', ['ok.test', 'ex\x01ample.test'])
refused('domain_list %s' % p, re.escape(p) + r":2: invalid domain .*control character",
        'control byte in a domain line')
p = listfile('u1.txt', ['ok.test/a', 'http://bad..host/x'])
refused('url_list %s' % p, re.escape(p) + r":2: invalid host in URL", 'bad URL host')
p = listfile('u2.txt', ['ok.test/a%zz'])
refused('url_list %s' % p, re.escape(p) + r":1: invalid path in URL .*bad percent-escape",
        'bad URL path')
p = listfile('u3.txt', ['ok.test:80x/a'])
refused('url_list %s' % p, re.escape(p) + r":1: invalid port", 'bad URL port')
p = listfile('e1.txt', ['fine', '(unclosed'])
refused('expression_list %s' % p,
        re.escape(p) + r":2: invalid expression at offset 9: missing closing parenthesis",
        'bad expression')
p = listfile('i1.txt', ['.Include<i2.txt>'])
listfile('i2.txt', ['ok.test', '.Include<i1.txt>'])
refused('domain_list %s' % p, r'i2\.txt:2: include loop', 'include loop')
p = listfile('i3.txt', ['a.test', '.Include<missing.txt>'])
refused('domain_list %s' % p, re.escape(p) + r':2: cannot open .*missing\.txt', 'missing include')
p = listfile('i4.txt', ['.Include<'])
refused('domain_list %s' % p, re.escape(p) + r':1: bad \.Include line', 'bad include line')
p = listfile('l1.txt', ['a.test', 'b' * 70000 + '.test'])
refused('domain_list %s' % p, re.escape(p) + r':2: line longer than', 'overlong line')
bad = os.path.join(tree, 'news', 'expressions')
write_lines(bad, ['(a|'])
refused('lists %s' % tree, re.escape(bad) + r':1: invalid expression', 'bad line in a UT1 tree')
os.unlink(bad)

# list_errors warn: the bad line is skipped and said, the rest loads.
p = listfile('w1.txt', ['ok.test', 'bad..domain', 'good.test'])
rc, out, _ = check('domain_list %s warned\nblock warned\nlist_errors warn' % p)
is_(rc, 0, 'list_errors warn: -t passes')
like(out, re.escape(p) + r":2: invalid domain 'bad\.\.domain'.*line skipped",
     'list_errors warn: the bad line is named')
like(out, r'2 domains.* 1 skipped', 'list_errors warn: the rest is loaded')
done_testing()
