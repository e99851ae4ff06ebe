#!/usr/bin/env python3
# geoip-asn.t - asn_database, block_asns, allow_asns, allow lists as a union, the asn note.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()

country = make_db('country.mmdb', {
    '127.0.0.2/32': 'DE',
    '127.0.0.3/32': 'US',
    '127.0.0.6/32': 'DE',
    '::1/128': 'JP',
})
asn = make_db('asn.mmdb', {
    '127.0.0.2/32': '64500:Bad Hosting Ltd',
    '127.0.0.3/32': '15169:Example Search',
    '127.0.0.6/32': '64501',
    '::1/128': '4200000001:Far Away Networks',
}, layout='asn')
bad = Origin(host='127.0.0.2')
us = Origin(host='127.0.0.3')
good = Origin(host='127.0.0.6')
v6 = Origin(host='::1') if have_ipv6() else None


def body(rules):
    return '''
            database %s
            asn_database %s
%s
''' % (country, asn, rules)


d = Daemon(conf(body('            block_asns AS64500 4200000001'))).start()

r = curl_via(d.port, bad.url('/'))
is_(r.status, 403, 'blocked AS in an allowed country: 403')
is_(r.header('X-Portcullis-Block'), 'geoip; destination AS64500 (Bad Hosting Ltd) is blocked',
    'reason names the AS and its organisation')
e = wait_until(lambda: entry_for(d, bad.url('/')))
is_(note(e, 'asn'), '64500', 'access log: asn 64500 noted')
is_(note(e, 'country'), 'DE', 'access log: country DE noted too')

r = curl_via(d.port, good.url('/'))
is_(r.status, 200, 'other AS: 200')
e = wait_until(lambda: entry_for(d, good.url('/')))
is_(note(e, 'asn'), '64501', 'access log: asn 64501 noted')

if v6:
    r = curl_via(d.port, v6.url('/'))
    is_(r.status, 403, 'IPv6 address of a blocked 32-bit AS: 403')
    is_(r.header('X-Portcullis-Block'),
        'geoip; destination AS4200000001 (Far Away Networks) is blocked', 'IPv6 ASN reason')
else:
    skip('no IPv6 on this machine', 2)

# allow_asns alone: every other AS is not allowed.
d.write_conf(conf(body('            allow_asns 64501')))
like(d.reload(), r'configuration reloaded', 'reload: allow_asns 64501')
r = curl_via(d.port, us.url('/'))
is_(r.status, 403, 'AS not in allow_asns: 403')
is_(r.header('X-Portcullis-Block'),
    'geoip; destination country US, AS15169 (Example Search) is not allowed',
    'reason names country and AS')
r = curl_via(d.port, good.url('/again'))
is_(r.status, 200, 'AS in allow_asns: 200')

# allow_countries and allow_asns together: either one admits.
d.write_conf(conf(body('            allow_countries US\n            allow_asns 64501')))
like(d.reload(), r'configuration reloaded', 'reload: allow_countries US + allow_asns 64501')
is_(curl_via(d.port, us.url('/2')).status, 200, 'allowed by country')
is_(curl_via(d.port, good.url('/2')).status, 200, 'allowed by AS')
is_(curl_via(d.port, bad.url('/2')).status, 403, 'neither: 403')

# An ASN database alone.
d.write_conf(conf('''
            asn_database %s
            block_asns 15169
''' % asn))
like(d.reload(), r'configuration reloaded', 'reload: asn_database only')
r = curl_via(d.port, us.url('/3'))
is_(r.status, 403, 'ASN-only configuration blocks')
e = wait_until(lambda: entry_for(d, us.url('/3')))
ok(e is not None and note(e, 'asn') == '15169' and note(e, 'country') is None,
   'ASN-only: asn noted, no country')
is_(len(bad.requests), 0, 'the blocked AS64500 origin never got a request')
is_([q.target for q in us.requests], ['/2'], 'the US origin got only the allowed request')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
