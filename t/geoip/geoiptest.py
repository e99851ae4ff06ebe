"""geoiptest - what the t/geoip-*.t tests share: test databases, configs, logs.

Databases are written at test time by t/geoip/mkdb.pl (Debian's
libmaxmind-db-writer-perl), mapping loopback addresses to countries and AS
numbers, so that stub origins on 127.0.0.2, 127.0.0.3, ::1 ... are "in"
different countries:

    db = make_db('country.mmdb', {'127.0.0.2/32': 'DE', '::1/128': 'JP'})

make_db() writes a new file and renames it into place, as geoipupdate does,
so a running daemon's watcher sees a new file, never a half-written one.
"""

import json
import os
import shutil
import subprocess

from pctest import (diag, skip_all, testdir, top_builddir, top_srcdir,
                    write_file)

MKDB = os.path.join(top_srcdir(), 't', 'geoip', 'mkdb.pl')


def require_writer():
    """skip_all() unless perl and MaxMind::DB::Writer are installed."""
    if shutil.which('perl') is None:
        skip_all('needs perl (tools/install-deps --test)')
    p = subprocess.run(['perl', '-MMaxMind::DB::Writer::Tree', '-e', '1'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        skip_all('needs libmaxmind-db-writer-perl (tools/install-deps --test)')


def make_db(name, entries, layout='geoip2', ip_version=6, corrupt_data=False):
    """Writes TESTDIR/name from {CIDR: VALUE} (see mkdb.pl for VALUE) in
    layout 'geoip2', 'iploc' or 'asn'; returns the path. corrupt_data: a
    file that opens but whose records cannot be read."""
    path = os.path.join(testdir(), name)
    argv = ['perl', MKDB, '--layout', layout, '--ip-version', str(ip_version)]
    argv += ['--corrupt-data'] if corrupt_data else []
    argv += [path]
    argv += ['%s=%s' % kv for kv in entries.items()]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError('mkdb.pl failed: %s' % p.stdout)
    return path


def replace_file(path, data):
    """Puts data at path by writing a temporary file and renaming it."""
    tmp = path + '.new'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.rename(tmp, path)


def corrupt_bytes(path):
    """Bytes that look like a database to nobody: the good file's first
    half (its metadata, at the end, is cut off)."""
    with open(path, 'rb') as f:
        data = f.read()
    return data[:len(data) // 2]


def conf(plugin_body, extra='', workers=2):
    """A daemon config template: loopback origins allowed, JSON access log
    (it prints the notes), info error log, `workers` workers (2: lookups
    on two threads at once), and `plugin geoip { plugin_body }`."""
    return '''
        listen 127.0.0.1:%%PORT%%
        allow_clients 127.0.0.0/8 ::1
        allow_local_upstreams on
        workers ''' + str(workers) + '''
        error_log %%TESTDIR%%/error.log info
        access_log %%TESTDIR%%/access.log json
        plugin_dir ''' + os.path.join(top_builddir(), 'plugins') + '''
        ''' + extra + '''
        plugin geoip {
''' + plugin_body + '''
        }
'''


def log_entries(d):
    """The JSON access log of daemon d as a list of dicts."""
    out = []
    for line in d.access_log():
        try:
            out.append(json.loads(line))
        except ValueError:
            diag('not JSON: %r' % line)
    return out


def entry_for(d, url, n=1):
    """The n-th last access log entry whose URL is url, or None."""
    found = [e for e in log_entries(d) if e.get('url') == url]
    return found[-n] if len(found) >= n else None


def note(entry, name):
    """A note of an access log entry, or None."""
    return ((entry or {}).get('notes') or {}).get(name)


def hosts_wrapper(names):
    """A daemon binary that runs the real one in a private mount namespace
    where /etc/hosts also maps names ({name: [addresses]}), or None with a
    reason when this machine cannot do that (no root, no unshare).

    Tests must not edit the machine's /etc/hosts; a bind mount inside
    `unshare -m` changes it for the daemon alone and vanishes with it."""
    unshare = shutil.which('unshare')
    if unshare is None:
        return None, 'unshare (util-linux) not found'
    try:
        with open('/etc/hosts') as f:
            base = f.read()
    except OSError as e:
        return None, 'cannot read /etc/hosts: %s' % e
    lines = [base.rstrip('\n'), '# geoip tests']
    for name, addrs in names.items():
        for a in addrs:
            lines.append('%s %s' % (a, name))
    hosts = write_file('hosts', '\n'.join(lines) + '\n')
    probe = next(iter(names))
    p = subprocess.run([unshare, '-m', 'sh', '-c',
                        'mount --bind "$0" /etc/hosts && getent hosts "$1"', hosts, probe],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=30)
    if p.returncode != 0:
        return None, 'cannot bind-mount a private /etc/hosts (%s)' % p.stdout.strip()
    real = os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')
    wrapper = write_file('portcullis-hosts', '#!/bin/sh\n'
                         'exec %s -m sh -c \'mount --bind "$0" /etc/hosts && exec "$@"\' '
                         '"%s" "%s" "$@"\n' % (unshare, hosts, real), mode=0o755)
    return wrapper, None
