#!/usr/bin/env python3
# https-policy.t - who is intercepted: the no_intercept list (label boundaries), per-network policy blocks, a plugin's txn_intercept(); blocked tunnels show the block page over TLS when intercepted; SNI hooks may defer; a reload with a new CA mints under the new CA; -t checks the CA and the policy blocks.
import os
import re
import shutil
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib')]
from pctest import *
from httpstest import *
from plugintest import PLUGIN_DIR, need_plugins

need_https()
need_plugins('tlsprobe')
set_timeout(180)

pki = Pki()
names = ['good.test', 'www.bank.test', 'notbank.test', 'vote-splice.test', 'vote-in.test',
         'cblocked.test', 'sblocked.test', 'other.test']
origins = {}
for n in names[:-1]:
    crt, key = pki.issue(n)
    origins[n] = TLSOrigin(crt, key, n)
ca_dir = portcullis_ca()
cacrt = os.path.join(ca_dir, 'ca.crt')
noint = write_file('no-intercept.txt', '# banks\nbank.test\n*.example.com\n')
trail = os.path.join(testdir(), 'trail')
ports = ' '.join(str(o.port) for o in origins.values())


def config(extra='', ca=ca_dir):
    return conf('''
connect_ports 443 %s
connect_require_tls 443 %s
no_intercept %s
plugin_dir %s
policy lan2 {
    clients 127.0.0.2
    intercept off
}
plugin tlsprobe {
    trail %s
    connect_block cblocked.test
    sni_block sblocked.test
    splice vote-splice.test
    intercept vote-in.test www.bank.test
    sni_defer 300ms
}
''' % (ports, ports, noint, PLUGIN_DIR, trail) + extra, ca_dir=ca, upstream_ca=pki.ca)


d = Daemon(config(), binary=hosts_binary(names)).start()


def fetch(name, cacert, *args):
    return curl_https(d.port, origins[name].https_url('/'), cacert, *args)


def intercepted(name, *args):
    """1 when the page came through a minted certificate, 0 when through
    the origin's own, None when neither worked."""
    if fetch(name, cacrt, *args).status == 200:
        return 1
    if fetch(name, pki.ca, *args).status == 200:
        return 0
    return None


is_(intercepted('good.test'), 1, 'intercept on: intercepted (the page with the local CA)')
is_(intercepted('www.bank.test'), 0, 'no_intercept bank.test covers www.bank.test: spliced '
    '(the origin\'s certificate), even though a plugin asked for interception')
is_(intercepted('notbank.test'), 1, 'no_intercept bank.test does not cover notbank.test')
is_(intercepted('good.test', '--interface', '127.0.0.2'), 0, 'policy lan2 (127.0.0.2, '
    'intercept off): spliced')
is_(intercepted('vote-splice.test'), 0, 'txn_intercept(0) from a plugin: spliced')
is_(intercepted('vote-in.test', '--interface', '127.0.0.2'), 1, 'txn_intercept(1) overrides '
    'the client\'s policy')
ok(os.path.exists(trail) and 'connect host=vote-in.test' in open(trail).read() and
   'vote=ok' in open(trail).read(), 'txn_intercept() accepted in the hooks')
ok(wait_until(lambda: 'sni host=good.test sni=good.test' in open(trail).read()),
   'the SNI hook deferred (sni_defer 300ms) and the tunnel went on')

# Blocked tunnels show the block page inside TLS when intercepted.
before = origins['cblocked.test'].connections
r = fetch('cblocked.test', cacrt)
is_(r.status, 403, 'CONNECT blocked by a plugin, client intercepted: the block page over TLS')
like(r.header('X-Portcullis-Block') or '', r'^tlsprobe; tlsprobe connect_block',
     '... X-Portcullis-Block names the plugin')
like(r.body.decode('utf-8', 'replace'), r'https://cblocked\.test:%d/' %
     origins['cblocked.test'].port, '... the page shows the https URL')
is_(origins['cblocked.test'].connections, before, '... and the origin was never contacted')
e = find_entry(d, 'GET', origins['cblocked.test'].https_url('/'))
is_(((e or {}).get('code'), (e or {}).get('status')), ('TCP_DENIED', 403), '... the request '
    'logged TCP_DENIED/403')
r = fetch('cblocked.test', cacrt, '--interface', '127.0.0.2')
is_(r.connect_status, 403, 'the same for a client that is not intercepted: 403 to the CONNECT')
r = fetch('sblocked.test', cacrt)
is_(r.status, 403, 'SNI blocked by a plugin, intercepted: the block page over TLS')
like(r.header('X-Portcullis-Block') or '', r'^tlsprobe; tlsprobe sni_block', '... from tlsprobe')
is_(origins['sblocked.test'].requests, [], '... and no request reached the origin')
rc, out = s_client(d.port, 'good.test', origins['good.test'].port, servername='other.test',
                   args=['-CAfile', cacrt, '-ign_eof'],
                   input=b'GET / HTTP/1.1\r\nHost: other.test:%d\r\nConnection: close\r\n\r\n'
                   % origins['good.test'].port)
like(out, r'HTTP/1\.1 403 .*\r?\n', 'domain fronting, intercepted: a 403 page inside TLS')
like(out, r'X-Portcullis-Block: core; TLS server name other\.test differs from the CONNECT '
     r'host good\.test', '... blocked by the core with the reason')
like(out, r'Verify return code: 0 ', '... under a certificate for the SNI from the local CA')

# A reload with another CA: new leaves come from it.
rc, out = s_client(d.port, 'good.test', origins['good.test'].port, servername='good.test')
old_leaf = first_cert(out)
ca2 = portcullis_ca('ca2')
d.write_conf(config(ca=ca2))
like(d.reload(), r'configuration reloaded', 'reload with a new CA in ca_dir')
rc, out = s_client(d.port, 'good.test', origins['good.test'].port, servername='good.test')
leaf = first_cert(out)
isnt(leaf, old_leaf, 'a new leaf after the CA changed (the cache was purged)')
is_(verify_leaf(leaf or '', os.path.join(ca2, 'ca.crt'), 'good.test')[0], 0,
    'the new leaf verifies with the new CA')
isnt(verify_leaf(leaf or '', cacrt, 'good.test')[0], 0, '... and not with the old one')
# A reload whose CA cannot load changes nothing.
broken = os.path.join(testdir(), 'ca-broken')
os.makedirs(broken)
shutil.copy(os.path.join(ca2, 'ca.crt'), broken)
d.write_conf(config(ca=broken))
like(d.reload(), r'reload failed', 'a reload with a missing CA key fails')
r = fetch('good.test', os.path.join(ca2, 'ca.crt'))
is_(r.status, 200, '... and the running CA keeps serving')

# -t checks the CA and the new directives.
d.write_conf(config(ca=os.path.join(testdir(), 'nowhere')))
rc, out = d.run_check()
ok(rc == 1 and 'ca_dir' in out, '-t: intercept on with no CA fails naming ca_dir (%s)' %
   out.strip())
d.write_conf(config(ca=os.path.join(testdir(), 'nowhere')).replace('intercept on',
                                                                      'intercept off'))
rc, out = d.run_check()
is_(rc, 0, '-t: intercept off everywhere does not need the CA')
d.write_conf(config(ca=os.path.join(testdir(), 'nowhere')).replace('intercept on',
             'intercept off').replace('intercept off\n}', 'intercept on\n}'))
rc, out = d.run_check()
is_(rc, 1, '-t: a policy with intercept on needs the CA')
for bad, msg in [('policy p {\n  clients 10.0.0.0/8\n  intercept maybe\n}\n',
                  r':\d+: policy p: '),
                 ('policy p {\n  intercept on\n}\n', r'policy p: no \'clients\''),
                 ('policy p {\n  clients 10.0.0.0/8\n  colour red\n}\n',
                  r'unknown directive \'colour\''),
                 ('policy lan2 {\n  clients 10.0.0.0/8\n}\n', r'\'lan2\' is duplicate'),
                 ('sni_mismatch maybe\n', r'sni_mismatch: invalid value \'maybe\''),
                 ('upstream_cert_error ignore\n', r'upstream_cert_error: invalid value'),
                 ('connect_require_tls 99999\n', r'connect_require_tls: invalid port'),
                 ('tls_peek_timeout 0\n', r'tls_peek_timeout: \'0\' is too short')]:
    d.write_conf(config() + bad)
    rc, out = d.run_check()
    ok(rc == 1 and re.search(msg, out), '-t refuses: %s' % bad.split('\n')[0] + ' ' + out.strip())

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
