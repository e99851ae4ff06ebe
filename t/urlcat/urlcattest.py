"""urlcattest - what the t/urlcat-*.t tests share: UT1-layout trees, configs, logs.

The real UT1 blacklists (blacklists.tar.gz) cannot be downloaded on the
test machines, so make_ut1() writes a tree in its exact layout:

    blacklists/
        README  global_usage
        adult/domains  adult/urls  adult/expressions  adult/usage
        adult/very_restrictive_expression
        porn -> adult                       (UT1 links some names)
        malware/domains  malware/urls  malware/usage
        ...

    tree = make_ut1('lists', {'adult': {'domains': [...], 'urls': [...],
                                        'expressions': [...]}},
                    aliases={'porn': 'adult'})

ut1_tarball() packs such a tree the way the download is packed (a
top-level blacklists/ directory, gzip).
"""

import json
import os
import tarfile

from pctest import testdir, top_builddir, top_srcdir, wait_until

GLOBAL_USAGE_HEAD = """\
#
# Global usage of each category
#
# For each category you will find:
# NAME: the name of the category
# DEFAULT_TYPE: black or white
# SOURCE: where it comes from
# DESC XX: a description in the language XX
# NAME XX: the name in the language XX
#
"""


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        for line in lines:
            f.write(line + '\n')


def replace_file(path, lines):
    """Writes lines to path through a temporary file and a rename, as an
    update script does."""
    tmp = path + '.tmp'
    write_lines(tmp, lines)
    os.rename(tmp, path)


def make_ut1(name, categories, aliases=None, titles=None):
    """Writes TESTDIR/name/blacklists in the UT1 layout; returns the path
    of the blacklists directory. categories maps a name to a dict of
    'domains', 'urls', 'expressions' lists (each optional)."""
    root = os.path.join(testdir(), name, 'blacklists')
    os.makedirs(root, exist_ok=True)
    titles = titles or {}
    usage = [GLOBAL_USAGE_HEAD]
    for cat, files in sorted(categories.items()):
        d = os.path.join(root, cat)
        os.makedirs(d, exist_ok=True)
        for kind in ('domains', 'urls', 'expressions'):
            if kind in files:
                write_lines(os.path.join(d, kind), files[kind])
        write_lines(os.path.join(d, 'usage'), ['black'])
        if cat == 'adult':
            # UT1 ships it; squidGuard configs must name it to use it.
            write_lines(os.path.join(d, 'very_restrictive_expression'),
                        ['(sex|porn)'])
        usage.append('NAME: %s\nDEFAULT_TYPE: black\nSOURCE: test\n'
                     'DESC FR: Description %s\nDESC EN: %s sites\n'
                     'NAME FR: %s\nNAME EN: %s\n' % (
                         cat, cat, cat.capitalize(), cat.capitalize(),
                         titles.get(cat, cat.capitalize())))
    for alias, target in (aliases or {}).items():
        os.symlink(target, os.path.join(root, alias))
    with open(os.path.join(root, 'global_usage'), 'w') as f:
        f.write('\n'.join(usage))
    write_lines(os.path.join(root, 'README'), ['UT1 blacklists (test copy)'])
    return root


def ut1_tarball(root, path):
    """Packs the blacklists directory root into path (.tar.gz) with the
    download's layout; returns path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, 'w:gz') as t:
        t.add(root, arcname='blacklists')
    return path


def plugin_dir():
    return os.path.join(top_builddir(), 'plugins')


def conf(plugin_body, extra='', workers=2):
    """A daemon config template with `plugin urlcat { plugin_body }`, a
    JSON access log (it prints the notes) and two workers."""
    return '''
        listen 127.0.0.1:%%PORT%%
        allow_clients 127.0.0.0/8 ::1
        allow_local_upstreams on
        workers ''' + str(workers) + '''
        error_log %%TESTDIR%%/error.log info
        access_log %%TESTDIR%%/access.log json
        plugin_dir ''' + plugin_dir() + '''
        ''' + extra + '''
        plugin urlcat {
''' + plugin_body + '''
        }
'''


def entries(d):
    """The JSON access log entries of daemon d."""
    out = []
    for line in d.access_log():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def entry_for(d, url):
    """The last access log entry whose URL is url, or None."""
    for e in reversed(entries(d)):
        if e.get('url') == url:
            return e
    return None


def wait_entry(d, url, timeout=5):
    return wait_until(lambda: entry_for(d, url), timeout=timeout)


def note(e, name):
    return ((e or {}).get('notes') or {}).get(name)


def block_header(r):
    return r.header('X-Portcullis-Block') or ''


def tool(name):
    return os.path.join(top_srcdir(), 'tools', name)
