#!/usr/bin/env python3
# dns.t - name resolution: every address of a name is tried in turn (IPv4
# after IPv4, IPv6 before IPv4 and the other way round), IP literals
# (127.0.0.5, [::1]) need no lookup, lookups are asynchronous (a lookup
# held by the DNS server stalls no other client), answers are cached for
# dns_ttl (failures for dns_negative_ttl) and concurrent lookups of one name
# share one query.
#
# The daemon runs in a mount namespace of its own (unshare -m, so root is
# needed) where /etc/hosts, /etc/resolv.conf and /etc/gai.conf are the
# test's files, and the resolver asks a stub DNS server on loopback.
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

if os.geteuid() != 0:
    skip_all('needs root for a mount namespace (unshare -m)')
if shutil.which('unshare') is None or \
        subprocess.run(['unshare', '-m', 'true'], stderr=subprocess.DEVNULL).returncode != 0:
    skip_all('unshare -m does not work here')
set_timeout(120)


class StubDNS:
    """A UDP DNS server: A records from self.a (name -> [addresses]),
    NXDOMAIN for other names, no AAAA records. Names in self.hold wait
    for self.release before their A answer."""

    def __init__(self):
        self.a = {}
        self.hold = set()
        self.release = threading.Event()
        self.queries = []           # (name, qtype)
        self.answered = []          # names whose A answer went out
        self.sock = None
        for last in range(53, 80):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(('127.0.0.%d' % last, 53))
                self.sock, self.addr = s, '127.0.0.%d' % last
                break
            except OSError:
                s.close()
        if self.sock:
            threading.Thread(target=self._serve, daemon=True).start()

    def count(self, name, qtype=1):
        return sum(1 for q in self.queries if q == (name, qtype))

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            threading.Thread(target=self._answer, args=(data, peer), daemon=True).start()

    def _answer(self, data, peer):
        i, labels = 12, []
        while data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode('ascii', 'replace').lower())
            i += 1 + data[i]
        qtype = struct.unpack('>H', data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        name = '.'.join(labels)
        self.queries.append((name, qtype))
        addrs = self.a.get(name)
        if addrs is None:
            flags, answers = 0x8183, []         # NXDOMAIN
        else:
            flags, answers = 0x8180, addrs if qtype == 1 else []
        if qtype == 1 and name in self.hold:
            self.release.wait(30)
        resp = data[:2] + struct.pack('>HHHHH', flags, 1, len(answers), 0, 0) + question
        for a in answers:
            resp += b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + socket.inet_aton(a)
        if qtype == 1:
            self.answered.append(name)
        self.sock.sendto(resp, peer)


dns = StubDNS()
HOSTS = '''127.0.0.1 localhost
127.0.0.3 multi.test
127.0.0.4 multi.test
127.0.0.5 multi.test
::1 dual.test
127.0.0.1 dual.test
'''
write_file('ns/hosts', HOSTS)
write_file('ns/resolv.conf', 'nameserver %s\noptions timeout:10 attempts:1\n' % (dns.addr or '127.0.0.1'))
write_file('ns/gai-v4-first.conf', 'precedence ::ffff:0:0/96 100\n')
real = os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')


def ns_wrapper(name, gai=None):
    """A binary that runs the daemon in a mount namespace with the test's
    resolver files (same pid: unshare and sh exec)."""
    mounts = 'mount --bind %s/ns/hosts /etc/hosts && mount --bind %s/ns/resolv.conf /etc/resolv.conf' \
        % (testdir(), testdir())
    if gai:
        mounts += ' && mount --bind %s/ns/%s /etc/gai.conf' % (testdir(), gai)
    return write_file('ns/%s' % name, '#!/bin/sh\nexec unshare -m sh -c \'%s && '
                      'exec $PCTEST_DAEMON_PREFIX "$0" "$@"\' %s "$@"\n'
                      % (mounts, real), mode=0o755)


def free_on(host, port):
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def origin_only_on(host, other):
    """An origin on host whose port is free on the other address."""
    for _ in range(20):
        o = Origin(host=host)
        if free_on(other, o.port):
            return o
        o.stop()
    raise RuntimeError('no port free on both %s and %s' % (host, other))


CONF = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
dns_ttl 2s
dns_negative_ttl 2s
# The DNS cache is per worker: one, so that "from the cache" is certain.
workers 1
error_log %%TESTDIR%%/%%NAME%%.error.log info
access_log %%TESTDIR%%/%%NAME%%.access.log squid
'''
o5 = Origin(host='127.0.0.5')
d = Daemon(CONF, name='v6first', binary=ns_wrapper('v6first'), subst={'NAME': 'v6first'}).start()

# ---- every address in turn -----------------------------------------------------------------

mark = d.log_mark('error')
r = curl_via(d.port, 'http://multi.test:%d/multi' % o5.port)
is_((r.status, r.body), (200, b'hello from origin\n'),
    'multi.test (127.0.0.3, .4, .5; origin on .5 only): served')
is_(o5.requests[-1].header('Host'), 'multi.test:%d' % o5.port, 'Host is the name, not the address')
ok(d.wait_for_log('error', r'\*\d+ connect\(\) to 127\.0\.0\.3:%d failed: connection refused' % o5.port,
                  since=mark), 'the first address was tried and failed first')
ok(d.wait_for_log('access', r' TCP_MISS/200 \d+ GET http://multi\.test:%d/multi - '
                  r'HIER_DIRECT/127\.0\.0\.5 ' % o5.port),
   'access log: HIER_DIRECT/ the address that answered')

if have_ipv6():
    o4 = origin_only_on('127.0.0.1', '::1')
    mark = d.log_mark('error')
    r = curl_via(d.port, 'http://dual.test:%d/dual' % o4.port)
    is_(r.status, 200, 'dual.test (::1 first, then 127.0.0.1; origin on 127.0.0.1 only): served')
    ok(d.wait_for_log('error', r'\*\d+ connect\(\) to ::1:%d failed' % o4.port, since=mark),
       '::1 was tried first and failed')
    o6 = Origin(host='::1')
    r = curl_via(d.port, 'http://[::1]:%d/literal6' % o6.port, '-g')
    is_((r.status, o6.requests[-1].header('Host') if o6.requests else None),
        (200, '[::1]:%d' % o6.port), 'IPv6 literal [::1]: served, Host keeps the brackets')
else:
    skip('no IPv6 on loopback', 4)

r = curl_via(d.port, 'http://127.0.0.5:%d/literal4' % o5.port)
is_(r.status, 200, 'IPv4 literal 127.0.0.5: served')
ok(not any(q[0].startswith('127.') or q[0].startswith('::') for q in dns.queries),
   'IP literals were never sent to DNS')

# ---- the DNS server: asynchronous lookups, the cache ---------------------------------------------

if dns.sock:
    dns.a.update({'slow.test': ['127.0.0.5'], 'fast.test': ['127.0.0.5']})
    dns.hold.add('slow.test')
    box = {}

    def slow():
        box['r'] = curl_via(d.port, 'http://slow.test:%d/slow' % o5.port)
    th = threading.Thread(target=slow)
    th.start()
    ok(wait_until(lambda: dns.count('slow.test') == 1, 5), 'the lookup of slow.test reached DNS')
    r = curl_via(d.port, 'http://fast.test:%d/fast' % o5.port, timeout=10)
    is_(r.status, 200, 'while slow.test waits for DNS, fast.test (also looked up) is served')
    ok('slow.test' not in dns.answered and th.is_alive(), 'slow.test was still unanswered then')

    # A second request for the name being looked up waits for the same query.
    box2 = {}

    def slow2():
        box2['r'] = curl_via(d.port, 'http://slow.test:%d/slow-again' % o5.port)
    th2 = threading.Thread(target=slow2)
    th2.start()
    time.sleep(0.3)
    dns.release.set()
    th.join(10)
    th2.join(10)
    is_((box['r'].status, box2['r'].status), (200, 200), 'both requests for slow.test served once DNS answered')
    is_(dns.count('slow.test'), 1, 'concurrent lookups of one name: one DNS query')

    # An origin that closes every connection: a pooled connection would
    # spare the lookup.
    oc = Origin(lambda req: Response(body=b'closing\n', close=True), host='127.0.0.5')
    dns.a['cache.test'] = ['127.0.0.5']
    r = curl_via(d.port, 'http://cache.test:%d/first' % oc.port)
    n = dns.count('cache.test')
    is_((r.status, n), (200, 1), 'cache.test looked up once')
    r = curl_via(d.port, 'http://cache.test:%d/cached' % oc.port)
    is_((r.status, dns.count('cache.test'), oc.connections), (200, n, 2),
        'within dns_ttl: a new connection, the address from the cache')
    time.sleep(2.3)
    r = curl_via(d.port, 'http://cache.test:%d/expired' % oc.port)
    is_((r.status, dns.count('cache.test')), (200, n + 1), 'after dns_ttl 2s: looked up again')

    r = curl_via(d.port, 'http://nx.test:%d/' % o5.port)
    is_((r.status, r.header('X-Portcullis-Error')), (502, 'ERR_DNS_FAIL'), 'NXDOMAIN: 502 ERR_DNS_FAIL')
    n = dns.count('nx.test')
    dns.a['nx.test'] = ['127.0.0.5']
    r = curl_via(d.port, 'http://nx.test:%d/' % o5.port)
    is_((r.status, dns.count('nx.test')), (502, n), 'within dns_negative_ttl: the failure is cached')
    time.sleep(2.3)
    r = curl_via(d.port, 'http://nx.test:%d/' % o5.port)
    is_(r.status, 200, 'after dns_negative_ttl 2s: looked up again, now it resolves')
else:
    skip('no loopback address free for a DNS server on port 53', 11)

ok(d.stop(), 'graceful stop')
d.check_logs()

# ---- IPv4 preferred: the other way round -----------------------------------------------------------

if have_ipv6():
    o6 = origin_only_on('::1', '127.0.0.1')
    d = Daemon(CONF, name='v4first', binary=ns_wrapper('v4first', 'gai-v4-first.conf'),
               subst={'NAME': 'v4first'}).start()
    mark = d.log_mark('error')
    r = curl_via(d.port, 'http://dual.test:%d/dual' % o6.port)
    is_(r.status, 200, 'dual.test with IPv4 preferred (origin on ::1 only): served')
    ok(d.wait_for_log('error', r'\*\d+ connect\(\) to 127\.0\.0\.1:%d failed' % o6.port, since=mark),
       '127.0.0.1 was tried first and failed')
    ok(d.stop(), 'graceful stop')
    d.check_logs()
else:
    skip('no IPv6 on loopback', 5)
done_testing()
