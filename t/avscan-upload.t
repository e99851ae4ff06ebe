#!/usr/bin/env python3
# avscan-upload.t - scan_uploads on: POST/PUT bodies (raw, multipart form files, chunked, gzip-encoded) are scanned before they reach the server.
import hashlib
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan(scanuser=True)
set_timeout(60)

origin = Origin(lambda req: Response(headers=[('X-Got-Sha', req.body_sha256)], body=b'stored\n'))
events = os.path.join(testdir(), 'events')
d = Daemon(conf('database %s\n    scan_uploads on' % db_dir(), extra='body_memory_limit 1m',
                scanuser='event_file %s' % events)).start()
eicar = write_file('eicar.com', EICAR)
clean = write_file('photo.jpg', os.urandom(3 * 1024 * 1024))
clean_sha = hashlib.sha256(open(clean, 'rb').read()).hexdigest()


def upload(*args, url='/upload'):
    n = len(origin.requests)
    r = curl_via(d.port, origin.url(url), *args)
    return r, len(origin.requests) - n


r, reached = upload('--data-binary', '@' + eicar, '-H', 'Content-Type: application/octet-stream')
is_((r.status, r.header('X-Portcullis-Block')),
    (403, 'avscan; virus found in upload: Eicar-Test-Signature.UNOFFICIAL'),
    'POST of EICAR: blocked, the virus named')
is_(reached, 0, 'POST of EICAR: the server never saw it')
like(r.body, r'virus found in upload: Eicar-Test-Signature', 'the block page names the virus')
ok(wait_until(lambda: os.path.exists(events) and
              re.search(r'av\.infected client=127\.0\.0\.1 subject=\S+/upload detail=Eicar\S* value=0',
                        open(events).read()), 3), 'av.infected published for the upload (value 0)')

r, reached = upload('-T', eicar, url='/put/eicar.com')
ok(r.status == 403 and reached == 0, 'PUT of EICAR: blocked before the server')

if CLAM_EXE:
    exe = write_file('setup.exe', CLAM_EXE)
    r, reached = upload('-F', 'comment=hello', '-F', 'file=@%s' % exe)
    is_((r.status, r.header('X-Portcullis-Block')),
        (403, 'avscan; virus found in upload setup.exe: ClamAV-Test-File.UNOFFICIAL'),
        'a form upload of clam.exe: blocked, naming the file and the virus')
    is_(reached, 0, 'form upload: the server never saw it')
else:
    skip('clamav-testfiles not installed', 2)

r, reached = upload('-F', 'file=@%s;filename=notes.txt' % eicar, '-F', 'other=@%s' % clean)
ok(r.status == 403 and 'notes.txt' in (r.header('X-Portcullis-Block') or ''),
   'EICAR as one of two form files (3 MiB, spooled): blocked, the part named')

r, reached = upload('--data-binary', '@' + eicar, '-H', 'Transfer-Encoding: chunked')
ok(r.status == 403 and reached == 0, 'chunked upload of EICAR: blocked')

gz = write_file('eicar.gz', gzip_of(EICAR))
r, reached = upload('--data-binary', '@' + gz, '-H', 'Content-Encoding: gzip')
ok(r.status == 403 and reached == 0, 'gzip-encoded upload of EICAR: decoded and blocked')

# Clean uploads reach the server intact.
r, reached = upload('--data-binary', '@' + clean, '-H', 'Expect: 100-continue')
ok(r.status == 200 and reached == 1, 'clean 3 MiB POST (100-continue): delivered')
is_(r.header('X-Got-Sha'), clean_sha, 'clean 3 MiB POST: the server got every byte')
r, reached = upload('-F', 'file=@%s' % clean, '-F', 'note=just a photo')
ok(r.status == 200 and reached == 1, 'clean form upload: delivered')
ok(origin.requests[-1].body.find(open(clean, 'rb').read()) > 0, 'clean form upload: the file is in it, intact')
ok(d.stop(), 'graceful stop')
d.check_logs()

# max_size for uploads, and scan_uploads off.
d2 = Daemon(conf('database %s\n    scan_uploads on\n    max_size 1m\n    on_oversize block' % db_dir()),
            name='small').start()
r = curl_via(d2.port, origin.url('/upload'), '--data-binary', '@' + clean)
is_(r.status, 403, 'on_oversize block: a 3 MiB upload over max_size 1M is blocked')
like(r.header('X-Portcullis-Block'), r'^avscan; the upload is larger than the 1048576 bytes that can be checked',
     'the reason says why')
ok(d2.stop(), 'graceful stop (small)')
d2.check_logs()
d3 = Daemon(conf('database %s' % db_dir()), name='off').start()
n = len(origin.requests)
r = curl_via(d3.port, origin.url('/upload'), '--data-binary', '@' + eicar)
ok(r.status == 200 and len(origin.requests) == n + 1, 'scan_uploads off (the default): uploads are not scanned')
ok(d3.stop(), 'graceful stop (off)')
d3.check_logs()
done_testing()
