#!/usr/bin/env python3
# https-intercept.t - TLS interception of a CONNECT to a valid origin: the page through curl trusting the local CA, the minted leaf (openssl verify), HTTPS requests through the plugin hooks, keep-alive and bodies, 421 for another Host, the access log lines.
import hashlib
import os
import re
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib')]
from pctest import *
from httpstest import *
from plugintest import PLUGIN_DIR, need_plugins

need_https()
need_plugins('tlsprobe')
set_timeout(120)

pki = Pki()
crt, key = pki.issue('good.test')
big = os.urandom(3 * 1024 * 1024 + 17)


def handler(req):
    if req.path == '/big':
        return Response(headers=[('Content-Type', 'application/octet-stream')], body=big)
    if req.method == 'POST':
        return Response(body=('got %d bytes sha256 %s\n' % (
            req.body_len, hashlib.sha256(req.body).hexdigest())).encode())
    return Response(headers=[('Content-Type', 'text/plain')],
                    body=('hello from good.test %s\n' % req.path).encode())


origin = TLSOrigin(crt, key, 'good.test', handler)
ca_dir = portcullis_ca()
cacrt = os.path.join(ca_dir, 'ca.crt')
trail = os.path.join(testdir(), 'trail')
d = Daemon(conf('''
connect_ports 443 %d
connect_require_tls 443 %d
plugin_dir %s
plugin tlsprobe {
    trail %s
    path_block /blocked*
}
''' % (origin.port, origin.port, PLUGIN_DIR, trail), ca_dir=ca_dir, upstream_ca=pki.ca),
           binary=hosts_binary(['good.test', 'other.test']))
rc, out = d.run_check()
is_(rc, 0, 'portcullis -t: the configuration with intercept on and the CA passes')
d.start()

url = origin.https_url('/page')
r = curl_https(d.port, url, cacrt)
is_(r.connect_status, 200, 'CONNECT answered 200')
is_(r.status, 200, 'intercepted GET: 200')
is_(r.body, b'hello from good.test /page\n', 'the page of the origin, through the proxy')
like(r.header('Via') or '', r'portcullis', 'the response came through the HTTP layer (Via)')
is_(origin.snis[-1:], ['good.test'], 'the origin saw the client\'s SNI')
is_(origin.alpns[-1:], ['http/1.1'], 'ALPN to the origin: http/1.1')

e = find_entry(d, 'GET', url)
ok(e is not None, 'access log: the request as an https:// URL')
is_((e or {}).get('code'), 'TCP_MISS', 'access log: TCP_MISS')
is_((e or {}).get('status'), 200, 'access log: status 200')
like((e or {}).get('hier', ''), r'^HIER_DIRECT/127\.0\.0\.1$', 'access log: HIER_DIRECT')
c = find_entry(d, 'CONNECT', 'good.test:%d' % origin.port)
is_((c or {}).get('code'), 'TCP_TUNNEL', 'access log: the CONNECT as TCP_TUNNEL')
is_(((c or {}).get('notes') or {}).get('tls'), 'intercepted', 'access log: note tls=intercepted')
is_(((c or {}).get('notes') or {}).get('sni'), 'good.test', 'access log: note sni')
like('\n'.join(d.access_log()), r'TCP_MISS/200 \d+ GET %s - HIER_DIRECT/127\.0\.0\.1 text/plain'
     % re.escape(url), 'squid log: the https URL')

r2 = curl_via(d.port, url)
ok(r2.rc != 0 and r2.status == 0, 'a client that does not trust the local CA refuses the '
   'minted certificate (curl rc %d)' % r2.rc)
like(r2.stderr, r'certificate', '... with a certificate error')


# The hooks see the request as https.
ok(wait_until(lambda: os.path.exists(trail) and 'request method=GET url=%s scheme=https '
              'sni=good.test' % url in open(trail).read()),
   'REQUEST_HEADERS sees url=https://..., scheme https and the SNI')

# Keep-alive on both sides: two requests, one client connection, and the
# connection verified in the handshake serves the first request.
conns = origin.connections
rc, out, err = curl('-x', 'http://127.0.0.1:%d' % d.port, '--cacert', cacrt, '-w',
                    '%{http_code} %{num_connects}\\n', '-o', '/dev/null', '-o', '/dev/null',
                    origin.https_url('/a'), origin.https_url('/b'))
is_(out.decode().split(), ['200', '1', '200', '0'], 'two requests on one intercepted '
    'connection')
is_(origin.connections - conns, 1, 'one upstream connection for the tunnel and both requests')

# Bodies both ways.
upload = os.urandom(1024 * 1024 + 3)
path = write_file('upload.bin', upload)
r = curl_https(d.port, origin.https_url('/up'), cacrt, '--data-binary', '@' + path)
is_(r.body.decode(), 'got %d bytes sha256 %s\n' % (len(upload), hashlib.sha256(upload).hexdigest()),
    'a 1 MiB upload arrives whole')
r = curl_https(d.port, origin.https_url('/big'), cacrt)
ok(r.status == 200 and r.body == big, 'a 3 MiB download arrives whole (%d bytes)' % len(r.body))

# A path rule of a plugin blocks inside TLS: the block page, not the origin.
before = len(origin.requests)
r = curl_https(d.port, origin.https_url('/blocked/x'), cacrt)
is_(r.status, 403, 'path blocked inside TLS: 403')
like(r.header('X-Portcullis-Block') or '', r'^tlsprobe; tlsprobe path_block$',
     'X-Portcullis-Block names the plugin')
like(r.body.decode('utf-8', 'replace'), r'https://good\.test:%d/blocked/x' % origin.port,
     'the block page shows the https URL')
is_(len(origin.requests), before, 'the origin never saw the blocked request')

# A request for another site inside the tunnel: 421 (RFC 9110 15.5.20).
r = curl_https(d.port, url, cacrt, '-H', 'Host: other.test:%d' % origin.port)
is_(r.status, 421, 'Host naming another site than the tunnel: 421 Misdirected Request')
is_(r.header('X-Portcullis-Error'), 'ERR_MISDIRECTED', '... ERR_MISDIRECTED')

# A new tunnel to the site: the verified idle connection of the pool
# serves it (no new connection, no second handshake with the origin).
conns = origin.connections
r = curl_https(d.port, origin.https_url('/again'), cacrt)
is_(r.status, 200, 'a second tunnel to the site: 200')
is_(origin.connections, conns, '... served by the verified idle connection (no new one)')

# Without the pool, new connections resume the TLS session of a verified
# handshake with the same name; another name on the same address is
# verified on its own (and fails here: the certificate is for good.test).
d.write_conf(d.template.replace('plugin_dir', 'upstream_pool_size 0\nplugin_dir'))
like(d.reload(), r'configuration reloaded', 'reload with upstream_pool_size 0')
n = len(origin.resumed)
for path in ('/r1', '/r2'):
    r = curl_https(d.port, origin.https_url(path), cacrt)
is_(r.status, 200, 'tunnels without the pool: 200')
ok(wait_until(lambda: len(origin.resumed) >= n + 2) and origin.resumed[-1] is True,
   'a new upstream connection resumes the session of a verified handshake (%s)' %
   origin.resumed[n:])
r = curl_https(d.port, 'https://other.test:%d/' % origin.port, cacrt)
is_(r.status, 502, 'another name on the same address is verified on its own: 502')
like(r.body.decode('utf-8', 'replace'), r'[Hh]ostname mismatch', '... hostname mismatch, '
     'never a resumed session of good.test')

# The minted leaf, as openssl sees it.
rc, out = s_client(d.port, 'good.test', origin.port, servername='good.test',
                   args=['-alpn', 'h2,http/1.1'], input=b'')
pem = first_cert(out)
ok(pem is not None, 's_client through the proxy gets a certificate')
like(out, r'ALPN protocol: http/1\.1', 'ALPN to the client: http/1.1 only (h2 offered)')
like(out, r'New, TLSv1\.3, Cipher is TLS_', 'TLS 1.3 with the client')
rc, vout = verify_leaf(pem or '', cacrt, 'good.test')
is_(rc, 0, 'openssl verify -purpose sslserver -verify_hostname good.test: OK')
rc, vout = verify_leaf(pem or '', cacrt, 'other.test')
isnt(rc, 0, 'the leaf is not valid for another name')
p = subprocess.run(['openssl', 'x509', '-noout', '-text'], input=(pem or '').encode(),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
text = p.stdout.decode()
like(text, r'DNS:good\.test\s*\n', 'subjectAltName: DNS:good.test only')
like(text, r'Issuer: .*Portcullis', 'issued by the local CA')
like(text, r'TLS Web Server Authentication', 'extendedKeyUsage serverAuth')
p = subprocess.run(['openssl', 'x509', '-noout', '-enddate'], input=(pem or '').encode(),
                   stdout=subprocess.PIPE)
q = subprocess.run(['openssl', 'x509', '-noout', '-enddate', '-in', crt], stdout=subprocess.PIPE)
is_(p.stdout, q.stdout, 'the leaf does not outlive the origin\'s certificate (same notAfter)')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
