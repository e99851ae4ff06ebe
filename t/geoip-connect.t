#!/usr/bin/env python3
# geoip-connect.t - CONNECT tunnels are judged by the address connected to: IPv4, IPv6, IPv4-mapped.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()
require_programs('curl')

db = make_db('country.mmdb', {
    '127.0.0.2/32': 'DE',
    '127.0.0.3/32': 'RU',
    '::1/128': 'KP',
})
de = Origin(host='127.0.0.2')
ru = Origin(host='127.0.0.3')
v6 = Origin(host='::1') if have_ipv6() else None
ports = ' '.join(str(o.port) for o in (de, ru, v6) if o)

d = Daemon(conf('''
            database %s
            block_countries RU KP
''' % db, extra='connect_ports %s' % ports)).start()

# -p: curl opens a CONNECT tunnel and sends its GET through it.
r = curl_via(d.port, de.url('/tunnel'), '-p')
is_(r.connect_status, 200, 'CONNECT to a DE address: tunnel established')
is_(r.status, 200, 'GET through the tunnel: 200')
is_(r.body, b'hello from origin\n', 'body through the tunnel')
e = wait_until(lambda: entry_for(d, de.authority))
is_((e or {}).get('method'), 'CONNECT', 'access log: the CONNECT line')
is_(note(e, 'country'), 'DE', 'access log: country DE noted for the tunnel')

r = curl_via(d.port, ru.url('/tunnel'), '-p')
is_(r.connect_status, 403, 'CONNECT to a RU address: 403')
blocks = [v for h in r.header_blocks for (k, v) in h['headers'] if k.lower() == 'x-portcullis-block']
is_(blocks, ['geoip; destination country RU is blocked'],
    'CONNECT answer carries X-Portcullis-Block')
is_(len(ru.requests), 0, 'RU origin got nothing')
e = wait_until(lambda: entry_for(d, ru.authority))
is_(note(e, 'country'), 'RU', 'access log: country RU noted for the refused tunnel')

r = curl_via(d.port, 'http://[::ffff:127.0.0.3]:%d/' % ru.port, '-p')
is_(r.connect_status, 403, 'CONNECT to an IPv4-mapped RU literal: 403')

if v6:
    r = curl_via(d.port, v6.url('/'), '-p')
    is_(r.connect_status, 403, 'CONNECT to IPv6 ::1 (KP): 403')
    blocks = [v for h in r.header_blocks for (k, v) in h['headers'] if k.lower() == 'x-portcullis-block']
    is_(blocks, ['geoip; destination country KP is blocked'], 'IPv6 tunnel reason')
else:
    skip('no IPv6 on this machine', 2)

# A raw CONNECT, as a browser sends it: the 403 has the block page.
resp = parse_response(raw_request(d.port, 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n'
                                  % (ru.authority, ru.authority)))
is_(resp.status, 403, 'raw CONNECT: 403')
like(resp.body, r'destination country RU is blocked', 'raw CONNECT: block page with the reason')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
