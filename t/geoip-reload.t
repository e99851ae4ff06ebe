#!/usr/bin/env python3
# geoip-reload.t - database changes: polled and swapped in without a restart; corrupt or missing files keep the old database (polling and SIGHUP).
import os
import time
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()


def version(cc_of_2):
    """A database where 127.0.0.2 is in cc_of_2 and 127.0.0.3 in RU."""
    return make_db('build.mmdb', {'127.0.0.2/32': cc_of_2, '127.0.0.3/32': 'RU'})


def read(path):
    with open(path, 'rb') as f:
        return f.read()


db = os.path.join(testdir(), 'country.mmdb')
replace_file(db, read(version('DE')))
origin = Origin(host='127.0.0.2')
body = '''
            database %s
            block_countries RU
            poll_interval %s
'''
# One worker: the pooled upstream connection to the origin is reused, and
# must be judged again with the new database.
d = Daemon(conf(body % (db, '200ms'), workers=1)).start()
pid = d.pid

r = curl_via(d.port, origin.url('/1'))
is_(r.status, 200, 'DE: 200 with the first database')

# A new file, renamed into place as geoipupdate does.
mark = d.log_mark('error')
replace_file(db, read(version('RU')))
like(d.wait_for_log('error', r'geoip: database .*country\.mmdb changed: reloaded', since=mark),
     r'\[notice\].*\(GeoLite2-Country, IPv6, built ', 'the change is noticed and logged')
r = curl_via(d.port, origin.url('/2'))
is_(r.status, 403, 'the same address is RU in the new database: 403, without a restart')
is_(r.header('X-Portcullis-Block'), 'geoip; destination country RU is blocked', 'reason')
is_(origin.connections, 1, 'the idle upstream connection of request 1 was the one judged')
is_(d.pid, pid, 'same process')
unlike(d.error_log(), r'configuration reloaded', 'no configuration reload happened')

# A corrupt file: logged once, the loaded database keeps serving.
mark = d.log_mark('error')
replace_file(db, corrupt_bytes(db))
like(d.wait_for_log('error', r'geoip: database: cannot open', since=mark),
     r'\[error\].*geoip: database: cannot open .*country\.mmdb: The MaxMind DB file '
     r'contains invalid metadata; keeping the loaded one \(GeoLite2-Country',
     'corrupt file: error logged, old database kept')
r = curl_via(d.port, origin.url('/3'))
is_(r.status, 403, 'still judged with the last good database (RU)')
time.sleep(0.8)
tail = open(d.error_log_path, 'rb').read()[mark:].decode()
is_(len(re.findall(r'cannot open', tail)), 1,
    'the same bad file is reported once, not at every poll')

# A missing file: the same.
mark = d.log_mark('error')
os.unlink(db)
like(d.wait_for_log('error', r'geoip: database: cannot open .*country\.mmdb: No such file',
                    since=mark),
     r'\[error\].*No such file or directory; keeping the loaded one \(GeoLite2-Country',
     'missing file: error logged')
is_(curl_via(d.port, origin.url('/4')).status, 403, 'still judged with the last good database')

# A good file again: back to DE.
mark = d.log_mark('error')
replace_file(db, read(version('DE')))
ok(d.wait_for_log('error', r'country\.mmdb changed: reloaded', since=mark),
   'a good file after the errors is loaded')
is_(curl_via(d.port, origin.url('/5')).status, 200, 'DE again: 200')

# SIGHUP: the configuration opens the file itself; polling off.
d.write_conf(conf(body % (db, '0'), workers=1))
like(d.reload(), r'configuration reloaded', 'reload with poll_interval 0')
replace_file(db, corrupt_bytes(db))
line = d.reload()
like(line, r'reload failed, keeping the running configuration: .*portcullis\.conf:\d+: '
     r'database: cannot open .*country\.mmdb: The MaxMind DB file contains invalid metadata',
     'SIGHUP with a corrupt database: reload refused with FILE:LINE')
is_(curl_via(d.port, origin.url('/6')).status, 200, 'the running database (DE) keeps serving')
time.sleep(0.5)
is_(curl_via(d.port, origin.url('/7')).status, 200, 'poll_interval 0: the file is not polled')

replace_file(db, read(version('RU')))
like(d.reload(), r'configuration reloaded', 'SIGHUP with a good new database')
is_(curl_via(d.port, origin.url('/8')).status, 403, 'the new database (RU) is used')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
