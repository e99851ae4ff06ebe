#!/usr/bin/env python3
# urlcat-evasion.t - every normalisation trick as an evasion attempt: still blocked; hostile hosts and paths get 400.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

origin = Origin()
tree = make_ut1('ut1', {
    'adult': {
        'domains': ['evil.test', 'b\u00fccher.test', '10.9.0.0/16', 'fd00:bad::/32'],
        'urls': ['example.net/bad/path'],
        'expressions': ['/forbidden/'],
    },
})
d = Daemon(conf('''
            lists %s
            block adult
''' % tree)).start()


def send(target, method='GET'):
    data = '%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % (method, target)
    raw = raw_request(d.port, data.encode('latin-1'), timeout=5)
    return parse_response(raw) if raw else None


def still_blocked(target, name, method='GET'):
    r = send(target, method)
    st = r.status if r else 0
    ok(st == 403 and (r.header('X-Portcullis-Block') or '').startswith('urlcat;'),
       'evasion %s: still blocked (%s)' % (name, st))


def refused_400(target, name, method='GET'):
    r = send(target, method)
    is_(r.status if r else 0, 400, 'hostile %s: 400' % name)


# Sanity: the plain forms are blocked, and a clean URL passes.
still_blocked('http://evil.test/', 'none (plain host)')
still_blocked('http://example.net/bad/path', 'none (plain URL)')
r = send('http://127.0.0.1:%d/fine' % origin.port)
is_(r.status if r else 0, 200, 'a clean URL passes')

# Host spellings.
still_blocked('http://EVIL.Test/', 'upper case host')
still_blocked('http://evil.test./', 'trailing dot')
still_blocked('http://%65vil.test/', 'percent-escaped host')
still_blocked('http://%45VIL.TEST/', 'percent-escaped upper case')
still_blocked('http://www.evil.test:80/', 'subdomain with the default port')
still_blocked('http://evil.test:8080/', 'another port')
still_blocked('http://b%C3%BCcher.test/', 'percent-escaped UTF-8 (IDN)')
still_blocked('http://B%C3%9CCHER.test/', 'percent-escaped upper-case UTF-8 (IDN)')
still_blocked('http://xn--bcher-kva.test/', 'A-label')
still_blocked('http://%EF%BD%85%EF%BD%96%EF%BD%89%EF%BD%8C.test/', 'full-width letters')
still_blocked('http://evil%E3%80%82test/', 'ideographic full stop')
r = send('http://b\xc3\xbccher.test/')
ok(r is not None and r.status in (400, 403), 'raw UTF-8 host: refused or blocked (%s)' %
   (r.status if r else 0))

# Numeric hosts: every IPv4 form is the address (10.9.0.1).
still_blocked('http://10.9.0.1/', 'dotted quad')
still_blocked('http://168361985/', 'decimal address')
still_blocked('http://0x0a090001/', 'hex address')
still_blocked('http://0x0a.0x09.0.1/', 'hex parts')
still_blocked('http://012.011.0.1/', 'octal parts')
still_blocked('http://10.589825/', 'two-part short form')
still_blocked('http://10.9.1/', 'three-part short form')
still_blocked('http://[::ffff:10.9.0.1]/', 'IPv4-mapped IPv6')
still_blocked('http://[::ffff:a09:1]/', 'IPv4-mapped IPv6 in hex')
still_blocked('http://[FD00:BAD:0:0::1]/', 'IPv6 upper case, uncompressed')

# Path tricks on the URL entry example.net/bad/path.
still_blocked('http://example.net/bad/./path', 'dot segment')
still_blocked('http://example.net/x/../bad/path', 'dot-dot segment')
still_blocked('http://example.net/bad/%2e%2e/bad/path', 'escaped dot-dot')
still_blocked('http://example.net//bad///path', 'slash runs')
still_blocked('http://example.net/%62ad/%70ath', 'escaped unreserved letters')
still_blocked('http://example.net/BAD/Path', 'upper-case path')
still_blocked('http://example.net/bad/path#frag', 'fragment')
still_blocked('http://example.net/bad/path%2fmore', 'escaped slash after the entry')
still_blocked('http://www.example.net/bad/path/', 'www. prefix')
still_blocked('http://127.0.0.1:%d/a/%%66orbidden/' % origin.port, 'escaped letters vs an expression')

# CONNECT authorities are normalised the same way.
still_blocked('EVIL.TEST.:443', 'CONNECT upper case and trailing dot', 'CONNECT')
still_blocked('0x0a090001:443', 'CONNECT hex address', 'CONNECT')
still_blocked('[::ffff:10.9.0.1]:443', 'CONNECT IPv4-mapped', 'CONNECT')

# Hostile input cannot be matched: refused with 400, never passed.
refused_400('http://evil%00.test/', 'escaped NUL in the host')
refused_400('http://ev%01il.test/', 'control byte in the host')
refused_400('http://%C3%28.test/', 'invalid UTF-8 in the host')
refused_400('http://%C0%AF.test/', 'overlong UTF-8 in the host')
refused_400('http://%s.test/' % ('a' * 300), 'overlong host')
refused_400('http://%s.test/' % ('a' * 64), 'overlong label')
refused_400('http://a..test/', 'empty label')
refused_400('http://foo.123/', 'name ending in a number')
refused_400('http://256.1.1.1/', 'address part over 255')
refused_400('http://[fe80::1%25eth0]/', 'IPv6 zone')
refused_400('http://127.0.0.1:%d/a%%00b' % origin.port, 'escaped NUL in the path')
refused_400('http://127.0.0.1:%d/%%u0066orbidden/' % origin.port, 'IIS %u escape in the path')
refused_400('http://127.0.0.1:%d/a%%zz' % origin.port, 'bad escape in the path')
refused_400('evil%00.test:443', 'CONNECT NUL in the host', 'CONNECT')
origin.stop()
ok(all('/fine' == q.path for q in origin.requests), 'only the clean URL reached the origin')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
