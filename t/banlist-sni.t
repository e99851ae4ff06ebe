#!/usr/bin/env python3
# banlist-sni.t - site bans by the TLS server name of a CONNECT tunnel (ClientHello SNI).
import os
import socket
import ssl
import subprocess
import sys
import threading
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from banlisttest import conf, ctl, plugin_dir

set_timeout(60)
require_programs('openssl')

# A TLS server on loopback, the tunnels' far end: it completes handshakes
# and answers "hello" on each connection.
key, cert = os.path.join(testdir(), 'key.pem'), os.path.join(testdir(), 'cert.pem')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=test',
                '-keyout', key, '-out', cert, '-days', '1'], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(16)
tls_port = srv.getsockname()[1]


def serve():
    while True:
        try:
            s, _ = srv.accept()
        except OSError:
            return
        try:
            s.settimeout(5)
            t = sctx.wrap_socket(s, server_side=True)
            t.sendall(b'hello\n')
            t.close()
        except (OSError, ssl.SSLError):
            s.close()


threading.Thread(target=serve, daemon=True).start()

write_file('lists/sites', 'banned.test\n')
d = Daemon(conf('''
plugin banlist {
    ban_sites  lists/sites
}
''', extra='connect_ports 443 %d' % tls_port)).start()


def tunnel(sni):
    """CONNECT to the TLS server by address, then a TLS handshake naming
    sni. Returns (CONNECT status line, what came through the tunnel or the
    error)."""
    s = socket.create_connection(('127.0.0.1', d.port), timeout=5)
    s.sendall(b'CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n' % (tls_port, tls_port))
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b'\r\n')[0].decode('latin-1')
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    try:
        t = cctx.wrap_socket(s, server_hostname=sni)
        data = t.recv(100)
        t.close()
        return status, data
    except (OSError, ssl.SSLError) as e:
        s.close()
        return status, 'error: %s' % e


status, got = tunnel('fine.test')
like(status, r' 200 ', 'CONNECT by address is accepted')
is_(got, b'hello\n', 'a TLS server name that is not banned: the tunnel works')
mark = d.log_mark()
status, got = tunnel('www.banned.test')
ok(not isinstance(got, bytes), 'a banned TLS server name: the handshake never reaches the server') \
    or diag(got)
ok(d.wait_for_log('error', r'blocked by banlist: banned site: banned\.test, client: 127\.0\.0\.1',
                  since=mark), 'the block is logged with the site')
mark = d.log_mark()
is_(ctl(d, 'ban', 'sni-dyn.test', '1h', 'dynamic')[0], 0, 'a dynamic site ban')
status, got = tunnel('sni-dyn.test')
ok(not isinstance(got, bytes), 'a dynamically banned TLS server name is refused too')
ok(d.wait_for_log('error', r'blocked by banlist: dynamic', since=mark), 'with the ban\'s reason')

ok(d.stop(), 'graceful stop')
d.check_logs()
srv.close()
done_testing()
