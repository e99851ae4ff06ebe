#!/usr/bin/env python3
# geoip-clients.t - check_clients on: client addresses judged by country when they connect.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()
require_programs('curl')

db = make_db('country.mmdb', {
    '127.0.0.1/32': 'DE',
    '127.0.0.8/32': 'CN',
    '127.0.0.2/32': 'DE',
})
origin = Origin(host='127.0.0.2')


def body(rules):
    return '''
            database %s
            check_clients on
%s
''' % (db, rules)


d = Daemon(conf(body('            block_client_countries CN'),
                extra='connect_ports %d' % origin.port)).start()

r = curl_via(d.port, origin.url('/'))
is_(r.status, 200, 'client in DE: 200')

r = curl_via(d.port, origin.url('/cn'), '--interface', '127.0.0.8')
is_(r.status, 403, 'client in CN: 403')
is_(r.header('X-Portcullis-Block'), 'geoip; client country CN is blocked',
    'reason names the client country')
like(r.body, r'client country CN is blocked', 'block page shows it')
r = curl_via(d.port, origin.url('/cn'), '--interface', '127.0.0.8', '-p')
is_(r.connect_status, 403, 'CONNECT from a client in CN: 403')
ok(all(q.target != '/cn' for q in origin.requests), 'the origin got nothing from the CN client')

r = curl_via(d.port, origin.url('/other'), '--interface', '127.0.0.9')
is_(r.status, 200, 'client not in the database: allowed (unknown_clients allow)')

d.write_conf(conf(body('            allow_client_countries DE\n            unknown_clients block'),
                  extra='connect_ports %d' % origin.port))
like(d.reload(), r'configuration reloaded', 'reload: allow_client_countries DE, unknown_clients block')
r = curl_via(d.port, origin.url('/cn2'), '--interface', '127.0.0.8')
is_(r.header('X-Portcullis-Block'), 'geoip; client country CN is not allowed',
    'client country outside allow_client_countries')
r = curl_via(d.port, origin.url('/unknown'), '--interface', '127.0.0.9')
is_(r.header('X-Portcullis-Block'), 'geoip; client 127.0.0.9 is not in the GeoIP database',
    'unknown client with unknown_clients block')
r = curl_via(d.port, origin.url('/de'))
is_(r.status, 200, 'client in DE still allowed')

# Destinations are not judged by the client rules.
d.write_conf(conf(body('            block_client_countries DE'),
                  extra='connect_ports %d' % origin.port))
like(d.reload(), r'configuration reloaded', 'reload: block_client_countries DE')
r = curl_via(d.port, origin.url('/dst'), '--interface', '127.0.0.8')
is_(r.status, 200, 'client CN to a DE destination: client rules do not apply to destinations')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
