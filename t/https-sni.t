#!/usr/bin/env python3
# https-sni.t - the ClientHello peek on CONNECT without interception: the SNI reaches PC_HOOK_TLS_SNI, a spliced tunnel forwards the hello unchanged (the origin's own certificate verified end to end), SNI blocks and domain fronting end with a TLS alert, no TLS on a connect_require_tls port is refused, other ports splice (also server-first protocols).
import os
import re
import socket
import sys
import threading
import time
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
good = TLSOrigin(crt, key, 'good.test')
bcrt, bkey = pki.issue('blocked.test')
blocked = TLSOrigin(bcrt, bkey, 'blocked.test')
plain = Origin(lambda req: Response(body=b'hello from plain.test\n'))


class RawOrigin:
    """A TCP server that records what each connection sends; with banner
    set, it speaks first (a server-first protocol such as SMTP)."""

    def __init__(self, banner=None):
        self.banner = banner
        self.received = []
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        buf = bytearray()
        self.received.append(buf)
        s.settimeout(10)
        try:
            if self.banner:
                s.sendall(self.banner)
            while True:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
                if self.banner:
                    s.sendall(b'echo ' + data)
        except OSError:
            pass
        s.close()


raw = RawOrigin()
smtp = RawOrigin(banner=b'220 smtp.test ESMTP\r\n')
silent = RawOrigin()
trail = os.path.join(testdir(), 'trail')
tls_ports = '%d %d %d %d' % (good.port, blocked.port, raw.port, silent.port)
base = '''
connect_ports 443 %s %d %d
connect_require_tls 443 %s
tls_peek_timeout 2s
plugin_dir %s
plugin tlsprobe {
    trail %s
    sni_block blocked.test
}
''' % (tls_ports, plain.port, smtp.port, tls_ports, PLUGIN_DIR, trail)
hosts = ['good.test', 'blocked.test', 'other.test', 'plain.test', 'smtp.test', 'raw.test',
         'curl.example.org', 'silent.test']
cfg = conf(base).replace('intercept on', 'intercept off')
d = Daemon(cfg, binary=hosts_binary(hosts)).start()


def trail_has(text):
    return wait_until(lambda: os.path.exists(trail) and text in open(trail).read())


def connect(port, authority):
    c = RawClient(d.port, timeout=10)
    c.send(('CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (authority, authority)).encode())
    head = c.recv_until(b'\r\n\r\n')
    return c, (head or b'').decode('latin-1')


# A spliced tunnel: the client verifies the origin's own certificate.
url = good.https_url('/')
r = curl_https(d.port, url, pki.ca)
is_(r.status, 200, 'spliced: 200 with the ORIGIN\'s CA (its certificate passed through)')
is_(r.body, b'hello from good.test\n', 'spliced: the page')
is_(good.snis[-1:], ['good.test'], 'spliced: the origin saw the SNI')
ok(trail_has('sni host=good.test sni=good.test'), 'PC_HOOK_TLS_SNI saw the CONNECT host and '
   'the SNI')
e = find_entry(d, 'CONNECT', 'good.test:%d' % good.port)
is_((e or {}).get('code'), 'TCP_TUNNEL', 'spliced: logged TCP_TUNNEL')
is_(((e or {}).get('notes') or {}).get('tls'), 'spliced', 'spliced: note tls=spliced')

# The hello goes upstream byte for byte.
hello = bytes.fromhex(re.sub(r'[^0-9a-f]', '', open(os.path.join(
    top_srcdir(), 't', 'unit', 'fixtures', 'sni', 'curl.hex')).read()))
c, head = connect(raw.port, 'curl.example.org:%d' % raw.port)
like(head, r'^HTTP/1\.1 200', 'CONNECT answered before the hello')
c.send(hello[:100])
time.sleep(0.2)
c.send(hello[100:] + b'after')
ok(wait_until(lambda: raw.received and bytes(raw.received[-1]) == hello + b'after'),
   'the ClientHello (sent in two pieces) and what follows reach the origin unchanged')
c.close()
ok(trail_has('sni host=curl.example.org sni=curl.example.org'), 'the hook saw the SNI of a '
   'captured curl hello')

# An SNI a plugin blocks: a TLS alert (no CA to show a page with).
before = len(blocked.snis)
r = curl_https(d.port, blocked.https_url('/'), pki.ca)
ok(r.rc != 0 and r.status == 0, 'SNI blocked: no response (curl rc %d)' % r.rc)
like(r.stderr, r'access denied', 'SNI blocked: the client gets an access_denied alert')
is_(len(blocked.snis), before, 'SNI blocked: the origin never got the hello')
e = find_entry(d, 'CONNECT', 'blocked.test:%d' % blocked.port)
is_(((e or {}).get('code'), (e or {}).get('status'), (e or {}).get('block_plugin')),
    ('TCP_DENIED', 403, 'tlsprobe'), 'SNI blocked: logged TCP_DENIED/403 by tlsprobe')

# Domain fronting: CONNECT to one name, SNI of another.
rc, out = s_client(d.port, 'good.test', good.port, servername='other.test')
like(out, r'alert access denied', 'SNI other.test on a CONNECT to good.test: access_denied')
e = find_entry(d, 'CONNECT', 'good.test:%d' % good.port)
is_(((e or {}).get('code'), (e or {}).get('block_plugin'), (e or {}).get('category')),
    ('TCP_DENIED', 'core', 'domain-fronting'), 'domain fronting: logged TCP_DENIED, core, '
    'category domain-fronting')
ok(d.wait_for_log('error', r'TLS server name other\.test differs from the CONNECT host '
                  r'good\.test'), 'domain fronting: the error log names both')
# An IP authority has no name to compare; the SNI is what is filtered.
rc, out = s_client(d.port, '127.0.0.1', good.port, servername='good.test', input=b'')
like(out, r'New, TLSv1\.[23]', 'CONNECT to an IP with an SNI: spliced (no mismatch check)')
rc, out = s_client(d.port, '127.0.0.1', blocked.port, servername='blocked.test')
like(out, r'alert access denied', '... but the SNI still meets the hooks (blocked.test)')

# No TLS where it is required: closed, nothing forwarded.
n = len(raw.received)
c, head = connect(raw.port, 'raw.test:%d' % raw.port)
c.send(b'GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n')
ok(c.wait_closed(timeout=5), 'no TLS on a connect_require_tls port: closed')
c.close()
time.sleep(0.3)
ok(all(len(b) == 0 for b in raw.received[n:]), '... and nothing reached the origin')
e = find_entry(d, 'CONNECT', 'raw.test:%d' % raw.port)
is_(((e or {}).get('code'), (e or {}).get('status')), ('TCP_DENIED', 403),
    '... logged TCP_DENIED/403')
# Silence on such a port: closed after tls_peek_timeout.
c, head = connect(silent.port, 'silent.test:%d' % silent.port)
t0 = time.monotonic()
ok(c.wait_closed(timeout=8), 'nothing sent on a required port: closed')
ok(time.monotonic() - t0 >= 1.5, '... after tls_peek_timeout (2s)')
c.close()

# Elsewhere anything may go through: plain HTTP inside a tunnel...
r = curl_via(d.port, 'http://plain.test:%d/x' % plain.port, '--proxytunnel')
ok(r.connect_status == 200 and r.status == 200 and r.body == b'hello from plain.test\n',
   'plain HTTP through a tunnel to a port that does not require TLS: spliced')
# ... and a protocol where the server speaks first gets its banner at once.
c, head = connect(smtp.port, 'smtp.test:%d' % smtp.port)
t0 = time.monotonic()
banner = c.recv_until(b'\r\n', timeout=5)
is_(banner, b'220 smtp.test ESMTP\r\n', 'server-first protocol: the banner comes through')
ok(time.monotonic() - t0 < 1.5, '... without waiting for tls_peek_timeout')
c.send(b'EHLO me\r\n')
is_(c.recv_until(b'me\r\n', timeout=5), b'echo EHLO me\r\n', '... and the tunnel carries both '
    'ways')
c.close()

# sni_mismatch allow: fronting is let through (spliced, the SNI goes on).
d.write_conf(cfg + 'sni_mismatch allow\n')
like(d.reload(), r'configuration reloaded', 'reload with sni_mismatch allow')
rc, out = s_client(d.port, 'good.test', good.port, servername='other.test', input=b'')
like(out, r'New, TLSv1\.[23]', 'sni_mismatch allow: the tunnel is spliced')
ok(wait_until(lambda: 'other.test' in good.snis), '... and the origin sees the SNI other.test')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
