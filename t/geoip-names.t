#!/usr/bin/env python3
# geoip-names.t - host names: each address the proxy tries is judged, so a name resolving to a blocked country is blocked.
#
# Test names need an /etc/hosts of their own, and a test must not edit the
# machine's. `localhost` needs nothing (127.0.0.1, and ::1 on most systems);
# the other names are served by a private /etc/hosts bind-mounted in a mount
# namespace that only the daemon sees (`unshare -m`, needs root; skipped
# otherwise).
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()

# 127.0.0.7 is DE and nothing listens there: connecting fails and the proxy
# tries the name's next address. It is listed first in /etc/hosts and is
# closer to the source 127.0.0.1 than 127.0.1.3 (RFC 6724 rule 9), so it is
# tried first whichever order getaddrinfo keeps.
db = make_db('country.mmdb', {
    '127.0.0.1/32': 'RU',
    '::1/128': 'RU',
    '127.0.0.2/32': 'DE',
    '127.0.0.7/32': 'DE',
    '127.0.1.3/32': 'RU',
})
local = Origin(host='127.0.0.1')
de = Origin(host='127.0.0.2')
ru = Origin(host='127.0.1.3')
body = '''
            database %s
            block_countries RU
''' % db

names = {
    'blocked.geoip.test': ['127.0.1.3'],
    'fallback.geoip.test': ['127.0.0.7', '127.0.1.3'],
    'allowed.geoip.test': ['127.0.0.7', '127.0.0.2'],
}
wrapper, why = hosts_wrapper(names)
d = Daemon(conf(body), binary=wrapper).start()

# localhost: 127.0.0.1 (and ::1) are RU in this database.
r = curl_via(d.port, 'http://localhost:%d/' % local.port)
is_(r.status, 403, 'localhost resolves to a blocked country: 403')
is_(r.header('X-Portcullis-Block'), 'geoip; destination country RU is blocked',
    'localhost: reason names the country')
is_(len(local.requests), 0, 'the origin behind localhost got nothing')
e = wait_until(lambda: entry_for(d, 'http://localhost:%d/' % local.port))
is_(note(e, 'country'), 'RU', 'localhost: country RU noted')

if wrapper is None:
    skip('private /etc/hosts not possible here: %s' % why, 9)
else:
    url = 'http://blocked.geoip.test:%d/' % ru.port
    r = curl_via(d.port, url)
    is_(r.status, 403, 'a name whose address is in a blocked country: 403')
    is_(r.header('X-Portcullis-Block'), 'geoip; destination country RU is blocked',
        'reason names the country')

    # The first address fails to connect; the second is RU and blocks.
    mark = d.log_mark('error')
    url = 'http://fallback.geoip.test:%d/' % ru.port
    r = curl_via(d.port, url)
    is_(r.status, 403, 'second address tried is RU: 403')
    like(d.wait_for_log('error', r'connect\(\) to 127\.0\.0\.7:%d failed' % ru.port, since=mark),
         r'127\.0\.0\.7', 'the first address (DE) was tried and failed')
    like(d.wait_for_log('error', r'blocked by geoip', since=mark),
         r'destination country RU is blocked', 'then the second address was judged')
    is_(len(ru.requests), 0, 'the RU origin got nothing')

    # Same shape, second address DE: the request goes through.
    url = 'http://allowed.geoip.test:%d/ok' % de.port
    r = curl_via(d.port, url)
    is_(r.status, 200, 'second address tried is DE: 200')
    is_(r.body, b'hello from origin\n', 'body from the DE origin')
    e = wait_until(lambda: entry_for(d, url))
    is_(note(e, 'country'), 'DE', 'the address connected to is the one noted')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
