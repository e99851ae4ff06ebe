#!/usr/bin/env python3
# geoip-countries.t - block_countries with a GeoLite2-layout database: IPv4, IPv6, IPv4-mapped, registered_country, unknown, notes, block page.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()

# 127.0.0.4 has only a registered_country (MaxMind does that for some
# networks); 127.0.0.5 is in no record at all.
db = make_db('country.mmdb', {
    '127.0.0.2/32': 'DE',
    '127.0.0.3/32': 'RU',
    '127.0.0.4/32': '/CN',
    '::1/128': 'JP',
})
de = Origin(host='127.0.0.2')
ru = Origin(host='127.0.0.3')
cn = Origin(host='127.0.0.4')
unknown = Origin(host='127.0.0.5')
v6 = Origin(host='::1') if have_ipv6() else None

# One worker: the second request to an origin must find the first one's
# idle upstream connection in that worker's pool.
d = Daemon(conf('''
            database %s
            block_countries RU cn
''' % db, workers=1)).start()

# An allowed country: the request goes through, the country is logged.
r = curl_via(d.port, de.url('/a'))
is_(r.status, 200, 'DE destination: 200')
is_(r.body, b'hello from origin\n', 'DE destination: body from the origin')
e = wait_until(lambda: entry_for(d, de.url('/a')))
is_(note(e, 'country'), 'DE', 'DE destination: JSON access log notes country DE')

# The same origin again: the proxy reuses its idle upstream connection, and
# the address is still judged and logged.
r = curl_via(d.port, de.url('/b'))
is_(r.status, 200, 'DE again (pooled upstream connection): 200')
e = wait_until(lambda: entry_for(d, de.url('/b')))
is_(note(e, 'country'), 'DE', 'DE again: country noted on a reused connection')
is_(de.connections, 1, 'DE again: the upstream connection was reused')

# A blocked country: 403, the block page and header name it.
r = curl_via(d.port, ru.url('/x'))
is_(r.status, 403, 'RU destination: 403')
is_(r.header('X-Portcullis-Block'), 'geoip; destination country RU is blocked',
    'RU destination: X-Portcullis-Block names the country')
like(r.body, r'destination country RU is blocked', 'block page shows the reason')
like(r.body, r'<dd>geoip</dd>', 'block page shows the category geoip')
is_(len(ru.requests), 0, 'RU origin got no request')
e = wait_until(lambda: entry_for(d, ru.url('/x')))
is_((e or {}).get('status'), 403, 'access log: 403')
is_((e or {}).get('block_plugin'), 'geoip', 'access log: block_plugin geoip')
is_((e or {}).get('category'), 'geoip', 'access log: category geoip')
is_(note(e, 'country'), 'RU', 'access log: country RU noted')

# registered_country when the record has no country.
r = curl_via(d.port, cn.url('/'))
is_(r.status, 403, 'registered_country CN: 403')
is_(r.header('X-Portcullis-Block'), 'geoip; destination country CN is blocked',
    'registered_country read when country is missing')

# Not in the database: unknown allow (the default).
r = curl_via(d.port, unknown.url('/u'))
is_(r.status, 200, 'address not in the database: allowed by default')
e = wait_until(lambda: entry_for(d, unknown.url('/u')))
ok(e is not None and note(e, 'country') is None, 'unknown address: no country note')

# IPv4-mapped IPv6 literals are the IPv4 address.
r = curl_via(d.port, 'http://[::ffff:127.0.0.3]:%d/m' % ru.port)
is_(r.status, 403, 'IPv4-mapped literal of a RU address: 403')
r = curl_via(d.port, 'http://[::ffff:127.0.0.2]:%d/m' % de.port)
is_(r.status, 200, 'IPv4-mapped literal of a DE address: 200')

# IPv6.
if v6:
    r = curl_via(d.port, v6.url('/six'))
    is_(r.status, 200, 'IPv6 ::1 (JP): 200')
    e = wait_until(lambda: entry_for(d, v6.url('/six')))
    is_(note(e, 'country'), 'JP', 'IPv6: country JP noted')
else:
    skip('no IPv6 on this machine', 2)

like(d.wait_for_log('error', r'geoip: database .*country\.mmdb \(GeoLite2-Country, IPv6, built'),
     r'read as country\.iso_code, registered_country\.iso_code \| country_code',
     'error log says which database and paths are used')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
