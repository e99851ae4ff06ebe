#!/usr/bin/env python3
# avscan-testfiles.t - every file of Debian's clamav-testfiles (clam.exe packed, archived, mailed, embedded) is blocked as a download, with its name.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

TESTFILES = '/usr/share/clamav-testfiles'
need_avscan()
if not os.path.isdir(TESTFILES):
    skip_all('needs clamav-testfiles (tools/install-deps --test)')
set_timeout(120)

names = sorted(f for f in os.listdir(TESTFILES) if f.startswith('clam'))
files = {'/' + n: open(os.path.join(TESTFILES, n), 'rb').read() for n in names}
origin = Origin(lambda req: Response(headers=[('Content-Type', 'application/octet-stream')],
                                     body=files.get(req.path, b'clean\n')))
d = Daemon(conf('database %s' % db_dir())).start()

ok(len(names) >= 40, 'the clamav-testfiles set is there (%d files)' % len(names))
# One curl for all of them: keep-alive, each body held and scanned.
args = ['-s', '-w', '%{http_code}\\n', '-x', 'http://127.0.0.1:%d' % d.port]
for n in names:
    args += ['-o', '/dev/null', origin.url('/' + n)]
rc, out, err = curl(*args, timeout=90)
codes = out.decode().split()
is_(len(codes), len(names), 'one answer per file')
for n, code in zip(names, codes):
    url = origin.url('/' + n)
    ok(code == '403' and d.wait_for_log('error', r'avscan: virus found: ClamAV-Test-File\.UNOFFICIAL: '
                                        + re.escape(url) + ',', timeout=3),
       '%s: blocked as ClamAV-Test-File' % n)

# And the block page of one of them, as a browser sees it.
r = curl_via(d.port, origin.url('/clam.zip'))
is_(r.header('X-Portcullis-Block'), 'avscan; virus found: ClamAV-Test-File.UNOFFICIAL',
    'clam.zip: the header names the virus')
like(r.body, r'virus found: ClamAV-Test-File', 'clam.zip: the page names the virus')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
