#!/usr/bin/env python3
# avscan-policy.t - the shipped policy signatures (sigs/policy/portcullis-policy.cdb): executables inside archives and double extensions like invoice.pdf.exe.
import io
import os
import re
import sys
import tarfile
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
set_timeout(60)


def tgz_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


HARMLESS = b'MZ just some bytes, no virus here\n'
FILES = {
    '/setup.zip': zip_of({'setup.exe': HARMLESS}),
    '/invoice.zip': zip_of({'Invoice 2026-11.pdf.exe': HARMLESS}),
    '/scripts.tgz': tgz_of({'docs/readme.txt': b'hi', 'docs/run.js': b'WScript.Echo(1)'}),
    '/photo.zip': zip_of({'scan.jpg.scr': HARMLESS}),
    '/report.zip': zip_of({'report.pdf': b'%PDF-1.4 harmless', 'data.csv': b'a,b\n'}),
    '/setup.exe': HARMLESS,
}
origin = Origin(lambda req: Response(headers=[('Content-Type', 'application/octet-stream')],
                                     body=FILES.get(req.path, b'?')))
d = Daemon(conf('database %s\n    signatures %s' % (db_dir(sigs=True), POLICY))).start()
ok(d.wait_for_log('error', r'avscan: signatures loaded: 4 signatures .* and extra files'),
   'the policy file is loaded on top of the databases')
for path, name, what in (
        ('/setup.zip', 'Portcullis.Policy.ExecutableInArchive', 'an .exe in a zip'),
        ('/scripts.tgz', 'Portcullis.Policy.ExecutableInArchive', 'a .js in a tar.gz'),
        ('/invoice.zip', 'Portcullis.Policy.DoubleExtension', 'invoice .pdf.exe in a zip'),
        ('/photo.zip', 'Portcullis.Policy.DoubleExtension', 'scan.jpg.scr in a zip')):
    r = curl_via(d.port, origin.url(path))
    is_((r.status, r.header('X-Portcullis-Block')), (403, 'avscan; virus found: %s.UNOFFICIAL' % name),
        '%s: blocked as %s' % (what, name))
r = curl_via(d.port, origin.url('/report.zip'))
ok(r.status == 200 and r.body == FILES['/report.zip'], 'a zip of documents: delivered')
r = curl_via(d.port, origin.url('/setup.exe'))
is_(r.status, 200, 'a plain (clean) .exe download is not an archive member: delivered')
ok(d.stop(), 'graceful stop')
d.check_logs()

d2 = Daemon(conf('database %s' % db_dir('plain', sigs=True)), name='nopolicy').start()
r = curl_via(d2.port, origin.url('/setup.zip'))
is_(r.status, 200, 'without the policy file: an .exe in a zip is delivered (opt-in policy)')
ok(d2.stop(), 'graceful stop (no policy)')
d2.check_logs()
done_testing()
