#!/usr/bin/env python3
# avscan-service.t - the scanner service as another plugin uses it (the mail and share scanners' way): a buffer, a file descriptor, a cancel, a deadline.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan(scanuser=True)
set_timeout(60)

origin = Origin()
big = write_file("big.bin", os.urandom(8 * 1024 * 1024))
eicar = write_file('eicar.com', EICAR)
d = Daemon(conf('database %s\n    scan_timeout 30s' % db_dir(), scanuser='')).start()
ok(d.wait_for_log('error', r'plugin scanuser 1\.0 started'), 'the service user started with avscan as its provider')


def scan(**hdrs):
    args = []
    for k, v in hdrs.items():
        args += ['-H', '%s: %s' % (k.replace('_', '-'), v)]
    r = curl_via(d.port, origin.url('/'), *args)
    return r, r.header('X-Scan-Result')


r, res = scan(X_Scan_Mem=EICAR.decode())
is_(res, 'infected Eicar-Test-Signature.UNOFFICIAL', 'scan_mem of EICAR: infected, named')
like(r.header('X-Scanner'), r'^ClamAV [\d.]+, 2 signatures from .*TEST SIGNATURES ONLY',
     'describe(): the engine and what is loaded')
r, res = scan(X_Scan_Mem='hello world')
is_(res, 'clean 11', 'scan_mem of text: clean, 11 bytes scanned')
r, res = scan(X_Scan_File=eicar)
is_(res, 'infected Eicar-Test-Signature.UNOFFICIAL', 'scan_fd of eicar.com: infected')
if CLAM_EXE:
    r, res = scan(X_Scan_File='/usr/share/clamav-testfiles/clam.exe')
    is_(res, 'infected ClamAV-Test-File.UNOFFICIAL', 'scan_fd of clam.exe: infected, named')
    r, res = scan(X_Scan_File='/usr/share/clamav-testfiles/clam.exe.mbox.base64')
    is_(res, 'infected ClamAV-Test-File.UNOFFICIAL', 'scan_fd of a mail with clam.exe attached: infected')
else:
    skip('clamav-testfiles not installed', 2)
r, res = scan(X_Scan_File=big)
is_(res, 'clean %d' % (8 * 1024 * 1024), 'scan_fd of 8 MiB: clean, every byte')
r, res = scan(X_Scan_File=big, X_Scan_Deadline='5')
like(res, r'^error the scan did not finish within its 5 ms deadline', 'a 5 ms deadline: an error')
for i in range(5):
    r, res = scan(X_Scan_Cancel=big if i % 2 else eicar)
    is_(res, 'cancelled', 'submit and cancel #%d: no result' % (i + 1))
wait_until(lambda: False, 1.5)  # time for any stray callback
r, res = scan(X_Scan_Mem='after')
is_(r.header('X-Scan-Late'), '0', 'no callback ever came for a cancelled scan')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
