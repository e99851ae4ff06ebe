#!/usr/bin/env python3
# geoip-allowlist.t - allow_countries with the CC0 ip-location-db layout (country_code, no IPv4 aliasing), and the unknown rule.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()

# Like @ip-location-db/geo-whois-asn-country-mmdb: top-level country_code,
# nothing under ::ffff:0:0/96, so an IPv4-mapped address is only found when
# the plugin looks up the IPv4 address.
db = make_db('iploc.mmdb', {
    '127.0.0.2/32': 'DE',
    '127.0.0.3/32': 'RU',
    '::1/128': 'JP',
}, layout='iploc')
de = Origin(host='127.0.0.2')
ru = Origin(host='127.0.0.3')
unknown = Origin(host='127.0.0.5')
v6 = Origin(host='::1') if have_ipv6() else None

d = Daemon(conf('''
            database %s
            allow_countries DE JP
''' % db)).start()

r = curl_via(d.port, de.url('/'))
is_(r.status, 200, 'allowed country DE: 200')
e = wait_until(lambda: entry_for(d, de.url('/')))
is_(note(e, 'country'), 'DE', 'country_code layout read: DE noted')

r = curl_via(d.port, ru.url('/'))
is_(r.status, 403, 'country not in allow_countries: 403')
is_(r.header('X-Portcullis-Block'), 'geoip; destination country RU is not allowed',
    'reason says the country is not allowed')
is_(len(ru.requests), 0, 'RU origin got no request')

r = curl_via(d.port, 'http://[::ffff:127.0.0.2]:%d/mapped' % de.port)
is_(r.status, 200, 'IPv4-mapped DE in a database without aliasing: 200')
e = wait_until(lambda: entry_for(d, 'http://[::ffff:127.0.0.2]:%d/mapped' % de.port))
is_(note(e, 'country'), 'DE', 'IPv4-mapped: looked up as IPv4 (DE noted)')
r = curl_via(d.port, 'http://[::ffff:127.0.0.3]:%d/mapped' % ru.port)
is_(r.status, 403, 'IPv4-mapped RU: 403')

if v6:
    r = curl_via(d.port, v6.url('/'))
    is_(r.status, 200, 'IPv6 JP allowed: 200')
else:
    skip('no IPv6 on this machine')

# Not in the database: unknown allow by default, even in allow-list mode.
r = curl_via(d.port, unknown.url('/'))
is_(r.status, 200, 'unknown address with unknown allow (default): 200')

# unknown block, by reload.
d.write_conf(conf('''
            database %s
            allow_countries DE JP
            unknown block
''' % db))
like(d.reload(), r'configuration reloaded', 'reload with unknown block')
r = curl_via(d.port, unknown.url('/again'))
is_(r.status, 403, 'unknown address with unknown block: 403')
is_(r.header('X-Portcullis-Block'),
    'geoip; destination 127.0.0.5 is not in the GeoIP database',
    'reason names the address')
r = curl_via(d.port, de.url('/still'))
is_(r.status, 200, 'DE still allowed after the reload')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
