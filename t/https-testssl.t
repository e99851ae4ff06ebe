#!/usr/bin/env python3
# https-testssl.t - the TLS an intercepted client gets, as testssl.sh (through the proxy, --proxy) and openssl s_client probes see it: TLS 1.2 and 1.3 only, no weak cipher, forward secrecy, no renegotiation or compression.
import json
import os
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib')]
from pctest import *
from httpstest import *

need_https()
require_programs('testssl')
set_timeout(290)

pki = Pki()
crt, key = pki.issue('good.test')
origin = TLSOrigin(crt, key, 'good.test')
ca_dir = portcullis_ca()
cacrt = os.path.join(ca_dir, 'ca.crt')
wrapper = hosts_binary(['good.test'])
d = Daemon(conf('connect_ports 443 %d\nconnect_require_tls 443 %d\n' % (origin.port, origin.port),
                ca_dir=ca_dir, upstream_ca=pki.ca), binary=wrapper).start()

# testssl.sh runs in a namespace of its own where good.test is an address
# nothing listens on: a probe that would go around the proxy (its proxy
# support is "experimental") fails instead of measuring the origin.
hosts = write_file('ns/testssl-hosts', '127.0.0.1 localhost\n127.0.0.99 good.test\n')
out_json = os.path.join(testdir(), 'testssl.json')
cmd = ('mount --bind %s /etc/hosts && exec testssl --quiet --color 0 --warnings off '
       '--connect-timeout 10 --openssl-timeout 10 --proxy 127.0.0.1:%d -p -s -f -R -C '
       '--jsonfile %s https://good.test:%d/' % (hosts, d.port, out_json, origin.port))
p = subprocess.run(['unshare', '-m', 'sh', '-c', cmd], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=260)
text = p.stdout.decode('utf-8', 'replace')
try:
    with open(out_json) as f:
        findings = {e['id']: e for e in json.load(f)}
except (OSError, ValueError):
    findings = {}
ok(findings, 'testssl.sh ran through the proxy and wrote its findings')
if not findings:
    diag(text[-3000:])


def finding(fid):
    return (findings.get(fid) or {}).get('finding', '')


for proto in ('SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'):
    like(finding(proto), r'^not offered', '%s not offered' % proto)
like(finding('TLS1_2'), r'^offered', 'TLS 1.2 offered')
like(finding('TLS1_3'), r'^offered', 'TLS 1.3 offered')
for cat in ('cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW',
            'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE'):
    like(finding(cat), r'^not offered', '%s: not offered' % cat)
like(finding('cipherlist_STRONG'), r'^offered', 'strong ciphers (AEAD, forward secrecy) offered')
unlike(' '.join(finding('PFS_ciphers').split()), r'CBC|SHA1\b|-SHA( |$)',
       'forward-secret ciphers: AEAD only')
like(finding('PFS'), r'^offered', 'forward secrecy')
like(finding('PFS_ECDHE_curves'), r'^(prime256v1|secp384r1|X25519)( (secp384r1|X25519))*$',
     'key exchange groups: X25519, P-256, P-384 only')
like(finding('secure_client_renego'), r'not vulnerable', 'no client-initiated renegotiation')
like(finding('CRIME_TLS'), r'not vulnerable', 'no TLS compression (CRIME)')
bad = [e for e in findings.values()
       if e.get('severity') in ('HIGH', 'CRITICAL')]
is_([(e['id'], e['finding']) for e in bad], [], 'no HIGH or CRITICAL finding')

# The same promises, probed with openssl s_client directly.
for args, what in [(['-tls1_1'], 'TLS 1.1'), (['-tls1'], 'TLS 1.0'),
                   (['-tls1_2', '-cipher', 'AES128-SHA:AES256-SHA:DES-CBC3-SHA'],
                    'TLS 1.2 with static-RSA/CBC/3DES ciphers'),
                   (['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA'],
                    'TLS 1.2 with CBC-SHA1 ciphers')]:
    rc, out = s_client(d.port, 'good.test', origin.port, servername='good.test',
                       args=args + ['-CAfile', cacrt])
    unlike(out, r'New, TLSv1[.0-9]*, Cipher is [A-Z]', '%s refused' % what)
rc, out = s_client(d.port, 'good.test', origin.port, servername='good.test',
                   args=['-tls1_2', '-CAfile', cacrt])
like(out, r'New, TLSv1\.2, Cipher is ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)',
     'TLS 1.2: ECDHE with an AEAD cipher')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
