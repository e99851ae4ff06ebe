#!/usr/bin/env python3
# urlcat-https.t - HTTPS: CONNECT hosts matched like URLs (domains, addresses, "whole site" URL entries) and the TLS SNI.
import os
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

require_programs('openssl')
origin = Origin()
tls_port = free_port()
tree = make_ut1('ut1', {
    'adult': {'domains': ['evil.test', '127.0.0.9'], 'urls': ['wholesite.test/',
                                                               'partial.test/some/page']},
})
d = Daemon(conf('''
            lists %s
            block adult
''' % tree, extra='connect_ports 443 %d %d' % (origin.port, tls_port))).start()

# CONNECT to a blocked domain: the tunnel is refused with 403.
r = curl_via(d.port, 'https://www.evil.test/')
is_(r.connect_status, 403, 'CONNECT to a subdomain of a blocked domain: 403')
e = wait_entry(d, 'www.evil.test:443')
is_(note(e, 'category'), 'adult', 'CONNECT: category noted in the access log')
is_((e or {}).get('block_plugin'), 'urlcat', 'CONNECT: blocked by urlcat')
r = curl_via(d.port, 'https://EVIL.test./')
is_(r.connect_status, 403, 'CONNECT host normalised (case, trailing dot)')
r = curl_via(d.port, 'https://wholesite.test/')
is_(r.connect_status, 403, 'CONNECT: a "host/" URL entry blocks the whole site')
r = curl_via(d.port, 'https://partial.test/')
ok(r.connect_status != 403, 'CONNECT: a deeper URL entry cannot judge a tunnel (%d)' %
   r.connect_status)

# A blocked address, and an allowed tunnel that carries traffic.
raw = raw_request(d.port, b'CONNECT 127.0.0.9:443 HTTP/1.1\r\nHost: 127.0.0.9:443\r\n\r\n')
like(raw.decode('latin-1'), r'^HTTP/1\.1 403', 'CONNECT to a blocked address: 403')
with RawClient(d.port) as c:
    c.send(('CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n' %
            (origin.port, origin.port)).encode())
    head = c.recv_until(b'\r\n\r\n')
    like((head or b'').decode('latin-1'), r'^HTTP/1\.1 200', 'allowed CONNECT: 200')
    c.send(b'GET /through HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    resp = c.recv_response()
    is_(resp.status if resp else 0, 200, 'allowed CONNECT: traffic passes the tunnel')

# SNI: a TLS server on an allowed address, a ClientHello naming a blocked
# host. urlcat's PC_HOOK_TLS_SNI sees the SNI the core peeked after the
# 200 and blocks; without interception the tunnel ends with a TLS
# access_denied alert, before a byte reaches the server.
tdir = testdir()
key, crt = os.path.join(tdir, 'k.pem'), os.path.join(tdir, 'c.pem')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
                '-out', crt, '-days', '1', '-subj', '/CN=evil.test'],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
srv = subprocess.Popen(['openssl', 's_server', '-accept', '127.0.0.1:%d' % tls_port,
                        '-cert', crt, '-key', key, '-www', '-quiet'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    wait_until(lambda: subprocess.run(['openssl', 's_client', '-connect',
                                       '127.0.0.1:%d' % tls_port],
                                      input=b'', stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL,
                                      timeout=10).returncode == 0, timeout=10)
    mark = d.log_mark('access')
    p = subprocess.run(['openssl', 's_client', '-proxy', '127.0.0.1:%d' % d.port,
                        '-connect', '127.0.0.1:%d' % tls_port, '-servername', 'www.evil.test'],
                       input=b'GET / HTTP/1.0\r\n\r\n', stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode('latin-1')
    entry = wait_entry(d, '127.0.0.1:%d' % tls_port)
    like(out, r'alert access denied', 'SNI naming a blocked host: a TLS access_denied alert, '
         'no TLS session through the tunnel')
    is_(note(entry, 'category'), 'adult', 'SNI: category noted in the access log')
finally:
    srv.terminate()
    srv.wait(timeout=10)

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
