#!/usr/bin/env python3
# avscan-range.t - Range requests cannot fetch an infected file piece by piece: ranges are stripped (or partial answers refused) for scanned types.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
set_timeout(60)

CLEAN = bytes(range(256)) * 4096           # 1 MiB
FILES = {'/eicar.com': ('application/octet-stream', EICAR),
         '/data.bin': ('application/octet-stream', CLEAN),
         '/movie.mp4': ('video/mp4', CLEAN),
         '/rogue/eicar.com': ('application/octet-stream', EICAR)}


def handler(req):
    ctype, body = FILES.get(req.path, ('text/plain', b'?'))
    rng = req.header('Range')
    # A server that sends 206 even without a Range (or ignores If-Range).
    if req.path.startswith('/rogue/'):
        rng = rng or 'bytes=0-33'
    m = re.match(r'bytes=(\d+)-(\d*)$', rng or '')
    if m:
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else len(body) - 1
        return Response(status=206, headers=[('Content-Type', ctype), ('Accept-Ranges', 'bytes'),
                                             ('Content-Range', 'bytes %d-%d/%d' % (a, b, len(body)))],
                        body=body[a:b + 1])
    return Response(headers=[('Content-Type', ctype), ('Accept-Ranges', 'bytes')], body=body)


origin = Origin(handler)
d = Daemon(conf('database %s' % db_dir())).start()

# range_requests strip (the default): the whole object is fetched and scanned.
for rng, what in (('0-33', 'first half'), ('34-67', 'second half'), ('60-', 'tail')):
    r = curl_via(d.port, origin.url('/eicar.com'), '-r', rng)
    is_((r.status, r.header('X-Portcullis-Block')),
        (403, 'avscan; virus found: Eicar-Test-Signature.UNOFFICIAL'),
        'EICAR, Range bytes=%s (%s): blocked' % (rng, what))
    is_(origin.requests[-1].header('Range'), None, 'bytes=%s: no Range reached the origin' % rng)
r = curl_via(d.port, origin.url('/eicar.com'), '-r', '0-9', '-H', 'If-Range: "etag"')
is_(origin.requests[-1].header('If-Range'), None, 'If-Range stripped with the Range')

r = curl_via(d.port, origin.url('/data.bin'), '-r', '100-199')
ok(r.status == 200 and r.body == CLEAN, 'clean file, Range: the whole file, 200, byte-exact')
like(access_entry(d, origin.url('/data.bin')), r'TCP_MISS/200', 'access log: 200')

# Streaming media is not scanned: its ranges stay (seeking works).
r = curl_via(d.port, origin.url('/movie.mp4'), '-r', '1000-1999')
ok(r.status == 206 and r.body == CLEAN[1000:2000], 'video .mp4, Range: 206 with the piece')
is_(origin.requests[-1].header('Range'), 'bytes=1000-1999', '.mp4: the Range reached the origin')

# A 206 nobody asked for, of a scanned type: refused.
r = curl_via(d.port, origin.url('/rogue/eicar.com'))
is_(r.status, 403, 'an unrequested 206 of a scanned type: blocked')
like(r.header('X-Portcullis-Block'), r'avscan; a partial download cannot be checked for viruses',
     '206: the reason says why')
ok(d.stop(), 'graceful stop')
d.check_logs()

# range_requests refuse: ranges go to the origin; a partial answer of a
# scanned type is blocked instead of delivered unchecked.
d2 = Daemon(conf('database %s\n    range_requests refuse' % db_dir()), name='refuse').start()
r = curl_via(d2.port, origin.url('/data.bin'), '-r', '100-199')
is_(origin.requests[-1].header('Range'), 'bytes=100-199', 'refuse: the Range reached the origin')
ok(r.status == 403 and 'partial download' in (r.header('X-Portcullis-Block') or ''),
   'refuse: the 206 of a scanned type is blocked')
r = curl_via(d2.port, origin.url('/eicar.com'), '-r', '34-67')
is_(r.status, 403, 'refuse: half of EICAR is blocked too')
r = curl_via(d2.port, origin.url('/data.bin'))
ok(r.status == 200 and r.body == CLEAN, 'refuse: a whole download is delivered')
r = curl_via(d2.port, origin.url('/movie.mp4'), '-r', '0-9')
ok(r.status == 206 and r.body == CLEAN[:10], 'refuse: skipped types keep their ranges')
ok(d2.stop(), 'graceful stop (refuse)')
d2.check_logs()
done_testing()
