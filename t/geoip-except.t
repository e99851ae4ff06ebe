#!/usr/bin/env python3
# geoip-except.t - except_domains and except_domains_file: exceptions by host name, at label boundaries, for GET and CONNECT.
import os
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()
require_programs('curl')

db = make_db('country.mmdb', {
    '127.0.0.1/32': 'RU',
    '::1/128': 'RU',
    '127.0.1.3/32': 'RU',
})
local = Origin(host='127.0.0.1')
ru = Origin(host='127.0.1.3')
lst = write_file('except.txt', '# partners abroad\npartner.geoip.test\n\n')

# Names from a private /etc/hosts (see geoip-names.t); localhost needs none.
names = {
    'www.partner.geoip.test': ['127.0.1.3'],
    'badpartner.geoip.test': ['127.0.1.3'],
}
wrapper, why = hosts_wrapper(names)
d = Daemon(conf('''
            database %s
            block_countries RU
            except_domains LOCALHOST.
            except_domains_file %s
''' % (db, lst), extra='connect_ports %d %d' % (local.port, ru.port)),
           binary=wrapper).start()

url = 'http://localhost:%d/x' % local.port
r = curl_via(d.port, url)
is_(r.status, 200, 'excepted name in a blocked country: 200')
e = wait_until(lambda: entry_for(d, url))
is_(note(e, 'country'), 'RU', 'the country is still noted')
like(d.wait_for_log('error', r'except_domains'),
     r'destination country RU is blocked; allowed: localhost is in except_domains',
     'error log (info) says why it was allowed')

r = curl_via(d.port, 'http://localhost:%d/t' % local.port, '-p')
is_(r.connect_status, 200, 'CONNECT to an excepted name: tunnel established')
is_(r.status, 200, 'GET through it: 200')

# The exception is for the name: the same address as an IP literal is not.
r = curl_via(d.port, 'http://127.0.0.1:%d/ip' % local.port)
is_(r.status, 403, 'IP literal of the same address: 403')

if wrapper is None:
    skip('private /etc/hosts not possible here: %s' % why, 3)
else:
    r = curl_via(d.port, 'http://www.partner.geoip.test:%d/' % ru.port)
    is_(r.status, 200, 'subdomain of a domain in except_domains_file: 200')
    r = curl_via(d.port, 'http://badpartner.geoip.test:%d/' % ru.port)
    is_(r.status, 403, 'a name that only ends with the same letters: 403 (label boundary)')
    r = curl_via(d.port, 'http://www.partner.geoip.test:%d/' % ru.port, '-p')
    is_(r.connect_status, 200, 'CONNECT to the excepted subdomain: 200')

# The list file is read again on reload.
write_file('except.txt', 'other.example\n')
like(d.reload(), r'configuration reloaded', 'reload with a changed list')
r = curl_via(d.port, 'http://localhost:%d/after' % local.port)
is_(r.status, 200, 'inline except_domains still applies')
if wrapper is None:
    skip('private /etc/hosts not possible here: %s' % why)
else:
    r = curl_via(d.port, 'http://www.partner.geoip.test:%d/after' % ru.port)
    is_(r.status, 403, 'the domain removed from the file is blocked again')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
