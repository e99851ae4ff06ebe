#!/usr/bin/env python3
# https-pac.t - the PAC file the proxy serves at /wpad.dat and /proxy.pac, evaluated by pactester (libpacparser): external URLs (http and https) go through the proxy, local networks, plain host names and pac_bypass_domains go DIRECT; pac_proxy and pac_direct_fallback; only allow_clients get it.
import os
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib')]
from pctest import *

require_programs('pactester', 'curl')

d = Daemon('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.1/32
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
pac_bypass_domains example.lan
''').start()


def fetch(path='/wpad.dat', *args):
    rc, out, err = curl('-s', '-D', '-', 'http://127.0.0.1:%d%s' % (d.port, path), *args)
    head, _, body = out.partition(b'\r\n\r\n')
    return head.decode('latin-1'), body


def pac_for(body, url):
    path = write_file('pac-%d.js' % abs(hash(body)), body)
    p = subprocess.run(['pactester', '-p', path, '-u', url], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return p.stdout.decode().strip()


head, pac = fetch()
like(head, r'^HTTP/1\.1 200', '/wpad.dat: 200')
like(head, r'(?mi)^Content-Type: application/x-ns-proxy-autoconfig\r?$',
     '/wpad.dat: Content-Type application/x-ns-proxy-autoconfig')
head2, pac2 = fetch('/proxy.pac')
is_(pac2, pac, '/proxy.pac: the same file')

proxy = 'PROXY 127.0.0.1:%d' % d.port
for url, want, what in [
        ('http://www.example.com/', proxy, 'an external http URL: the proxy'),
        ('https://www.example.com/login', proxy, 'an external https URL: the proxy '
         '(CONNECT, where the SNI is checked and interception may happen)'),
        ('http://93.184.216.34/', proxy, 'an external address: the proxy'),
        ('http://intranet/', 'DIRECT', 'a plain host name: DIRECT'),
        ('http://localhost:8080/', 'DIRECT', 'localhost: DIRECT'),
        ('https://wiki.example.lan/', 'DIRECT', 'pac_bypass_domains example.lan: DIRECT'),
        ('https://example.lan/', 'DIRECT', '... the domain itself too'),
        ('http://notexample.lan/', proxy, '... but not notexample.lan'),
        ('http://10.1.2.3/', 'DIRECT', '10.0.0.0/8: DIRECT'),
        ('http://192.168.1.10/', 'DIRECT', '192.168.0.0/16: DIRECT'),
        ('http://172.20.0.1/', 'DIRECT', '172.16.0.0/12: DIRECT'),
        ('http://127.0.0.1:3000/', 'DIRECT', 'loopback: DIRECT')]:
    is_(pac_for(pac, url), want, what)

# Named proxies and the fallback.
d.write_conf('''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.1/32
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
pac_proxy proxy.example.lan:3128 backup.example.lan:3128
pac_bypass_networks 10.0.0.0/8
pac_direct_fallback on
''')
like(d.reload(), r'configuration reloaded', 'reload with pac_proxy, pac_bypass_networks, '
     'pac_direct_fallback')
head, pac = fetch()
is_(pac_for(pac, 'https://www.example.com/'),
    'PROXY proxy.example.lan:3128; PROXY backup.example.lan:3128; DIRECT',
    'pac_proxy in order, then DIRECT (pac_direct_fallback on)')
is_(pac_for(pac, 'http://192.168.1.10/'),
    'PROXY proxy.example.lan:3128; PROXY backup.example.lan:3128; DIRECT',
    'pac_bypass_networks replaces the default networks')
is_(pac_for(pac, 'http://10.9.9.9/'), 'DIRECT', '... and bypasses its own')

# Only allowed clients get it (served without authentication, but not to
# the world).
rc, out, err = curl('-s', '-o', '/dev/null', '-w', '%{http_code}', '--interface', '127.0.0.2',
                    'http://127.0.0.1:%d/wpad.dat' % d.port)
is_(out, b'403', 'a client outside allow_clients: 403')
like('\n'.join(d.access_log()), r'TCP_MISS/200 \d+ GET /wpad\.dat ', 'access log: the PAC '
     'request')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
