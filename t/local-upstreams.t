#!/usr/bin/env python3
# local-upstreams.t - with allow_local_upstreams off (the default), requests
# and CONNECTs to loopback or to the proxy's own addresses are refused with
# 403 ERR_LOCAL_UPSTREAM, by IP (in its odd spellings too) and by a name
# that resolves there; with allow_local_upstreams on they go through.
import fcntl
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(120)


def own_ipv4():
    """The non-loopback IPv4 addresses of this machine's interfaces."""
    out = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                r = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                                struct.pack('256s', name.encode()[:15]))
            except OSError:
                continue
            addr = socket.inet_ntoa(r[20:24])
            if not addr.startswith('127.'):
                out.append(addr)
    finally:
        s.close()
    return out


def own_ipv6():
    """Global (not link-local, not loopback) IPv6 addresses."""
    out = []
    try:
        with open('/proc/net/if_inet6') as f:
            for line in f:
                hexaddr = line.split()[0]
                addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
                if addr != '::1' and not addr.startswith('fe80'):
                    out.append(addr)
    except OSError:
        pass
    return out


# The origins listen on every address, so a request that got through would
# reach them: they must stay untouched while the proxy refuses.
origin = Origin(host='0.0.0.0')
o6 = Origin(host='::') if have_ipv6() else None
v4 = own_ipv4()
v6 = own_ipv6() if o6 else []
diag('own addresses: %s' % (v4 + v6))

CONF = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
connect_ports 1-65535
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
'''
d = Daemon(CONF).start()

targets = [('127.0.0.1', origin.port, 'loopback IPv4'),
           ('127.0.0.2', origin.port, 'another loopback address'),
           ('127.1', origin.port, 'short form 127.1'),
           ('2130706433', origin.port, 'loopback as one decimal number'),
           ('0.0.0.0', origin.port, 'the unspecified address (means this host)'),
           ('localhost', origin.port, 'a name resolving to loopback'),
           ('LocalHost.', origin.port, 'the same name, odd case, trailing dot')]
for a in v4:
    targets.append((a, origin.port, "the proxy's own address"))
if o6:
    targets += [('[::1]', o6.port, 'loopback IPv6'),
                ('[::]', o6.port, 'the unspecified IPv6 address'),
                ('[::ffff:127.0.0.1]', origin.port, 'IPv4-mapped loopback')]
    for a in v6:
        targets.append(('[%s]' % a, o6.port, "the proxy's own IPv6 address"))
else:
    skip('no IPv6 on this machine', 15)

for host, port, what in targets:
    mark = d.log_mark('error')
    r = curl_via(d.port, 'http://%s:%d/x' % (host, port), '-g')
    is_((r.status, r.header('X-Portcullis-Error')), (403, 'ERR_LOCAL_UPSTREAM'),
        'GET to %s (%s): 403 ERR_LOCAL_UPSTREAM' % (host, what))
    # The host is logged as the URL parser normalised it (127.1 is 127.0.0.1).
    ok(d.wait_for_log('error', r'\[warn\] \d+#\d+: \*\d+ refused upstream \S+ for "[^"]+": address '
                      r'is local', since=mark),
       'GET to %s: logged' % host)
    data = raw_request(d.port, 'CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n' % (host, port, host, port))
    r = parse_response(data)
    is_((r.status, r.header('X-Portcullis-Error')), (403, 'ERR_LOCAL_UPSTREAM'),
        'CONNECT to %s (%s): 403 ERR_LOCAL_UPSTREAM' % (host, what))

is_((origin.connections, o6.connections if o6 else 0), (0, 0), 'no origin was ever contacted')
ok(d.wait_for_log('access', r' TCP_DENIED/403 \d+ GET http://localhost:%d/x - HIER_NONE/- '
                  % origin.port), 'access log: the refusal is TCP_DENIED/403')

# The same requests go through once local upstreams are allowed.
d.write_conf(CONF + 'allow_local_upstreams on\n')
ok(d.reload(), 'reload with allow_local_upstreams on')
for host, port, what in (('127.0.0.1', origin.port, 'loopback IPv4'),
                         ('localhost', origin.port, 'name'),
                         (v4[0] if v4 else '127.0.0.2', origin.port, 'own address')):
    r = curl_via(d.port, 'http://%s:%d/x' % (host, port))
    is_((r.status, r.body), (200, b'hello from origin\n'), 'allowed: GET to %s (%s)' % (host, what))
r = curl_via(d.port, origin.url('/tunnelled'), '-p')
is_((r.connect_status, r.status), (200, 200), 'allowed: CONNECT to loopback')
if o6:
    r = curl_via(d.port, 'http://[::1]:%d/x' % o6.port, '-g')
    is_(r.status, 200, 'allowed: GET to [::1]')
else:
    skip('no IPv6')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
