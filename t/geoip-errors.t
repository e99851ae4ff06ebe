#!/usr/bin/env python3
# geoip-errors.t - a database whose records cannot be read: lookups count as unknown, the error is logged once, the unknown rule decides.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()

# Sound metadata and search tree, garbage records: the file opens (none of
# the probe addresses has a record), and every lookup of 127.0.0.2 fails.
db = make_db('bad-records.mmdb', {'127.0.0.2/32': 'DE'}, corrupt_data=True)
origin = Origin(host='127.0.0.2')


def body(unknown):
    return '''
            database %s
            allow_countries DE
            unknown %s
''' % (db, unknown)


d = Daemon(conf(body('block'))).start()
r = curl_via(d.port, origin.url('/1'))
is_(r.status, 403, 'unreadable record with unknown block: 403 (fails closed)')
is_(r.header('X-Portcullis-Block'), 'geoip; destination 127.0.0.2 is not in the GeoIP database',
    'treated as an unknown address')
like(d.wait_for_log('error', r'geoip: lookup in'),
     r'\[error\].*geoip: lookup in .*bad-records\.mmdb failed: The MaxMind DB file\'s data '
     r'section contains bad data .*\(address treated as unknown; logged at most once a minute\)',
     'the lookup error is logged with the file and libmaxminddb\'s reason')
for i in range(2, 5):
    curl_via(d.port, origin.url('/%d' % i))
e = wait_until(lambda: entry_for(d, origin.url('/4')))
ok(e is not None and note(e, 'country') is None, 'no country noted for a failed lookup')
is_(len(re.findall(r'geoip: lookup in', d.error_log())), 1,
    'four failed lookups, one error line')
is_(len(origin.requests), 0, 'the origin got nothing')

d.write_conf(conf(body('allow')))
like(d.reload(), r'configuration reloaded', 'reload with unknown allow')
is_(curl_via(d.port, origin.url('/5')).status, 200, 'unreadable record with unknown allow: 200')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
