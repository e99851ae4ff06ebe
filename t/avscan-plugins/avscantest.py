"""avscantest - helpers for the avscan integration tests (t/avscan-*.t).

    need_avscan()          skip_all unless avscan.so (and scanuser.so) are built
    plugin_dir()           a directory in the test dir with avscan.so and
                           scanuser.so (symlinks), for plugin_dir
    conf(avscan, extra='', scanuser=None, level='info')
                           a daemon config template: loopback, logs in the
                           test directory, spool_dir there, the avscan block
                           (its body), an optional scanuser block, and extra
                           core directives
    db_dir(name='db', sigs=False)
                           a database directory in the test dir: empty (the
                           plugin falls back to the test signatures), or
                           with a copy of them (a "real" database)
    SIGS                   plugins/avscan/sigs of the source tree
    POLICY                 the policy .cdb
    EICAR                  the EICAR test file (68 bytes)
    CLAM_EXE               /usr/share/clamav-testfiles/clam.exe, or None
    zip_of({name: bytes}, stored=False)  a zip archive (python's zipfile)
    gzip_of(b), deflate_of(b, raw=False)
    access_entry(d, url)   the last access log line naming url, or ''
"""

import gzip
import io
import os
import shutil
import zipfile
import zlib

from pctest import skip_all, testdir, top_builddir, top_srcdir, wait_until

SIGS = os.path.join(top_srcdir(), 'plugins', 'avscan', 'sigs')
POLICY = os.path.join(SIGS, 'policy', 'portcullis-policy.cdb')
AVSCAN_SO = os.path.join(top_builddir(), 'plugins', 'avscan', 'avscan.so')
SCANUSER_SO = os.path.join(top_builddir(), 't', 'avscan-plugins', 'scanuser', 'scanuser.so')

# Written in two halves so that this file is not itself the test virus.
EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-'
         b'ANTIVIRUS-TEST-FILE!$H+H*')
assert len(EICAR) == 68

_clam = '/usr/share/clamav-testfiles/clam.exe'
CLAM_EXE = open(_clam, 'rb').read() if os.path.exists(_clam) else None


def need_avscan(scanuser=False):
    missing = [p for p in ([AVSCAN_SO] + ([SCANUSER_SO] if scanuser else []))
               if not os.path.exists(p)]
    if missing:
        skip_all('not built: %s (run make check)' % ', '.join(missing))


def plugin_dir():
    d = os.path.join(testdir(), 'plugins')
    if not os.path.isdir(d):
        os.makedirs(d)
        os.symlink(AVSCAN_SO, os.path.join(d, 'avscan.so'))
        if os.path.exists(SCANUSER_SO):
            os.symlink(SCANUSER_SO, os.path.join(d, 'scanuser.so'))
    return d


def db_dir(name='db', sigs=False):
    d = os.path.join(testdir(), name)
    os.makedirs(d, exist_ok=True)
    if sigs:
        for f in os.listdir(SIGS):
            if f.endswith(('.ndb', '.hdb')):
                shutil.copy(os.path.join(SIGS, f), d)
    return d


def conf(avscan, extra='', scanuser=None, level='info'):
    text = '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/error.log ''' + level + '''
access_log %%TESTDIR%%/access.log squid
plugin_dir ''' + plugin_dir() + '''
spool_dir %%TESTDIR%%
''' + extra + '''
plugin avscan {
    test_signatures ''' + SIGS + '''
''' + avscan + '''
}
'''
    if scanuser is not None:
        text += 'plugin scanuser {\n' + scanuser + '\n}\n'
    return text


def zip_of(files, stored=False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def gzip_of(data):
    return gzip.compress(data)


def deflate_of(data, raw=False):
    c = zlib.compressobj(6, zlib.DEFLATED, -15 if raw else 15)
    return c.compress(data) + c.flush()


def access_entry(d, url, timeout=3):
    """The last access log line with url (waits up to timeout s), or ''."""
    def find():
        for line in reversed(d.access_log()):
            if url in line:
                return line
        return None
    return wait_until(find, timeout) or ''
