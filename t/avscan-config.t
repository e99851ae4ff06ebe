#!/usr/bin/env python3
# avscan-config.t - `portcullis -t` on avscan blocks: the sample config passes; bad values, paths and combinations fail with FILE:LINE.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
set_timeout(60)
db = db_dir(sigs=True)
HEAD = '''listen 127.0.0.1:%d
error_log %s/error.log info
plugin_dir %s
''' % (free_port(), testdir(), plugin_dir())


def check(name, body):
    text = HEAD + 'plugin avscan {\n    test_signatures %s\n%s\n}\n' % (SIGS, body)
    path = write_file(name, text)
    rc, out = run_check(path)
    return path, text, rc, out.strip()


def line_of(text, needle):
    for n, line in enumerate(text.split('\n'), 1):
        if needle in line:
            return n
    raise ValueError(needle)


# The shipped sample, with the database pointed at the test directory and
# its commented policy line enabled.
sample = open(os.path.join(top_srcdir(), 'plugins', 'avscan', 'avscan.conf')).read()
sample = re.sub(r'^(\s*)database\s+\S+', r'\1database ' + db, sample, flags=re.M)
sample = re.sub(r'^(\s*)#signatures\s+\S+', r'\1signatures ' + POLICY, sample, flags=re.M)
path = write_file('sample.conf', HEAD + sample)
rc, out = run_check(path)
is_(rc, 0, 'plugins/avscan/avscan.conf (database and policy set): -t passes')
unlike(out, r'\.conf:\d+:', 'the sample: no error')

path, text, rc, out = check('empty.conf', '    database %s' % db_dir('empty'))
is_(rc, 0, 'an empty database directory: -t passes (test signatures)')
like(out, r'no ClamAV databases in %s: the test signatures are loaded' % re.escape(db_dir('empty')),
     '-t warns that only the test signatures would be loaded')

BAD = [
    ('missing-db', '    database /nonexistent/clamav', 'database /nonexistent/clamav',
     r"database: /nonexistent/clamav: No such file or directory"),
    ('enum', '    on_oversize maybe', 'on_oversize',
     r"on_oversize: 'maybe' is not one of allow, block"),
    ('range', '    range_requests ignore', 'range_requests',
     r"range_requests: 'ignore' is not one of strip, refuse"),
    ('size', '    max_size 10MB', 'max_size', r"max_size: invalid size '10MB'"),
    ('zero', '    max_size 0', 'max_size', r'max_size: must be greater than 0'),
    ('threads', '    threads 100', 'threads', r"threads: '100' is out of range \(0\.\.64\)"),
    ('mime', '    skip_mime video', 'skip_mime', r"skip_mime: invalid MIME type 'video'"),
    ('ext', '    risky_extension tar.gz', 'risky_extension', r"risky_extension: invalid extension 'tar\.gz'"),
    ('none', '    skip_mime none video/*', 'skip_mime', r"skip_mime: 'none' stands alone"),
    ('sigfile', '    signatures /nonexistent.cdb', 'signatures /nonexistent',
     r'signatures: /nonexistent\.cdb is not a readable file'),
    ('unknown', '    scan_everything on', 'scan_everything', r"unknown directive 'scan_everything'"),
    ('dup', '    database %s\n    database  %s' % (db, db), 'database  ', r"'database' is duplicate"),
    ('flag', '    scan_uploads sometimes', 'scan_uploads', r"scan_uploads: invalid flag 'sometimes'"),
]
for name, body, needle, msg in BAD:
    path, text, rc, out = check(name + '.conf', '    database %s\n' % db_dir('ok', sigs=True) + body
                                if name not in ('missing-db', 'dup') else body)
    n = line_of(text, needle)
    is_(rc, 1, '%s: -t exits 1' % name)
    like(out, r'^%s:%d: .*%s' % (re.escape(path), n, msg), '%s: FILE:LINE: %s' % (name, msg))

# Errors found when the whole block is known name the plugin block.
path, text, rc, out = check('sizes.conf', '    database %s\n    max_size 200M' % db)
is_(rc, 1, 'max_size above max_file_size: -t exits 1')
like(out, r'^%s:%d: plugin .avscan.: max_size 200M is larger than max_scan_size 400M|max_size 200M is larger than max_file_size 100M'
     % (re.escape(path), line_of(text, 'plugin avscan')), 'max_size above max_file_size: explained')
bad_db = db_dir('bad')
write_file('bad/broken.ndb', 'not a signature\n')
path, text, rc, out = check('broken.conf', '    database %s' % bad_db)
is_(rc, 1, 'a database that does not load: -t exits 1')
like(out, r"(?m)^%s:%d: plugin 'avscan': cannot load the signatures in %s: Malformed database"
     % (re.escape(path), line_of(text, 'plugin avscan'), re.escape(bad_db)),
     'a broken database: FILE:LINE of the block, and why')
done_testing()
