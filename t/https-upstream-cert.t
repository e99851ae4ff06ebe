#!/usr/bin/env python3
# https-upstream-cert.t - an intercepted origin whose certificate fails (expired, wrong host, self-signed, unknown CA, no TLS at all): the client gets the proxy's 502 ERR_UPSTREAM_CERT page over TLS naming the error, never the origin's content; upstream_cert_error refuse ends the tunnel with a TLS alert instead.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib')]
from pctest import *
from httpstest import *

need_https()
set_timeout(120)

pki = Pki()
cases = [
    # name, kind, SAN, what the page and the log must say
    ('expired.test', 'expired', None, r'certificate has expired'),
    ('wronghost.test', 'good', 'other.test', r'[Hh]ostname mismatch'),
    ('selfsigned.test', 'selfsigned', None, r'self-signed certificate'),
    ('unknownca.test', 'unknownca', None, r'unable to get local issuer certificate'),
]
origins = []
for name, kind, san, _ in cases:
    crt, key = pki.issue(name, kind, san)
    origins.append(TLSOrigin(crt, key, name))
plain = Origin(lambda req: Response(body=b'hello from plain.test\n'))
ca_dir = portcullis_ca()
cacrt = os.path.join(ca_dir, 'ca.crt')
ports = ' '.join(str(o.port) for o in origins + [plain])
names = [c[0] for c in cases] + ['plain.test', 'other.test']
d = Daemon(conf('connect_ports 443 %s\nconnect_require_tls 443 %s\n' % (ports, ports),
                ca_dir=ca_dir, upstream_ca=pki.ca),
           binary=hosts_binary(names)).start()

for (name, kind, san, why), o in zip(cases, origins):
    url = o.https_url('/secret')
    r = curl_https(d.port, url, cacrt)
    is_(r.status, 502, '%s: 502 from the proxy' % name)
    is_(r.header('X-Portcullis-Error'), 'ERR_UPSTREAM_CERT', '%s: X-Portcullis-Error: '
        'ERR_UPSTREAM_CERT' % name)
    like(r.body.decode('utf-8', 'replace'), why, '%s: the page names the error' % name)
    unlike(r.body.decode('utf-8', 'replace'), r'hello from', '%s: nothing of the origin' % name)
    is_(len(o.requests), 0, '%s: no request reached the origin' % name)
    ok(d.wait_for_log('error', r'%s .*failed TLS verification: .*%s' % (name.replace('.', r'\.'),
                                                                       why)),
       '%s: the error log says why' % name)
    e = find_entry(d, 'GET', url)
    is_(((e or {}).get('code'), (e or {}).get('status')), ('TCP_MISS', 502),
        '%s: logged TCP_MISS/502 with the https URL' % name)

# Every request on such a connection gets the page, and the certificate
# that carries it is ours (valid for the name, from the local CA): the
# page is the proxy's, whoever the origin pretends to be.
rc, out, err = curl('-x', 'http://127.0.0.1:%d' % d.port, '--cacert', cacrt, '-s', '-o',
                    '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n',
                    origins[0].https_url('/a'), origins[0].https_url('/b'))
is_(out.decode().split(), ['502', '1', '502', '0'], 'two requests on one connection: both '
    'get the error page')
rc, out = s_client(d.port, 'expired.test', origins[0].port, servername='expired.test')
rc, vout = verify_leaf(first_cert(out) or '', cacrt, 'expired.test')
is_(rc, 0, 'the leaf carrying the error page verifies for expired.test')

# Not TLS at all behind the CONNECT.
r = curl_https(d.port, 'https://plain.test:%d/' % plain.port, cacrt)
is_(r.status, 502, 'an origin that speaks no TLS: 502')
like(r.body.decode('utf-8', 'replace'), r'TLS handshake', '... the page says the TLS '
     'handshake failed')
unlike(r.body.decode('utf-8', 'replace'), r'hello from', '... nothing of the origin')

# upstream_cert_error refuse: a TLS alert, no page.
d.write_conf(conf('connect_ports 443 %s\nconnect_require_tls 443 %s\n'
                  'upstream_cert_error refuse\n' % (ports, ports),
                  ca_dir=ca_dir, upstream_ca=pki.ca))
like(d.reload(), r'configuration reloaded', 'reload with upstream_cert_error refuse')
r = curl_https(d.port, origins[0].https_url('/refused'), cacrt)
is_(r.connect_status, 200, 'refuse: the CONNECT itself was answered')
ok(r.rc != 0 and r.status == 0, 'refuse: no HTTP response (curl rc %d)' % r.rc)
like(r.stderr, r'handshake failure', 'refuse: the client sees a handshake_failure alert')
e = find_entry(d, 'CONNECT', 'expired.test:%d' % origins[0].port)
is_(((e or {}).get('code'), (e or {}).get('status')), ('TCP_MISS', 502),
    'refuse: the CONNECT logged TCP_MISS/502')
is_(len(origins[0].requests), 0, 'refuse: nothing reached the origin')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
