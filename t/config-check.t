#!/usr/bin/env python3
# config-check.t - `portcullis -t -c FILE` end to end: exit 0 for a good
# config (with an include and a plugin block), or "FILE:LINE: message" and
# exit 1 for unknown directives, bad values, missing include files, broken
# blocks; the daemon refuses to start on the same errors.
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

set_timeout(60)
D = testdir()
BASE = 'listen 127.0.0.1:%d\nerror_log %s/error.log info\naccess_log %s/access.log squid\n' % (
    free_port(), D, D)


def check(name, text, files=None):
    """Writes name (and extra files) into the test directory, runs -t."""
    for fname, data in (files or {}).items():
        write_file(fname, data)
    path = write_file(name, text)
    rc, out = run_check(path)
    return path, rc, out.strip()


def lineno(text, needle):
    """The 1-based line of text holding needle."""
    for n, line in enumerate(text.split('\n'), 1):
        if needle in line:
            return n
    raise ValueError(needle)


# ---- good configurations ----------------------------------------------------

# The plugin blocks name the example plugin of the tree (plugins/example),
# so the loader checks them for real.
PLUGINS = os.path.join(top_builddir(), 'plugins')
if not os.path.exists(os.path.join(PLUGINS, 'example', 'example.so')) and \
        not os.path.exists(os.path.join(PLUGINS, 'example.so')):
    bail_out('plugins/example not built: run make')
inc_text = 'client_idle_timeout 5s\nconnect_ports 443 8443 1000-2000\n'
plugin_inc = 'plugin example {\n    block_host *.example.net ads.*\n    reason "not here"\n}\n'
good = BASE + '''# a comment
include conf.d/extra.conf
include conf.d/*.missing-glob
allow_clients 127.0.0.0/8 ::1 "10.0.0.0/8"
read_timeout 90s
max_header_size 32k
workers 1
plugin_dir %s
include plugins.d/*.conf
''' % PLUGINS
files = {'conf.d/extra.conf': inc_text, 'plugins.d/example.conf': plugin_inc}
path, rc, out = check('good.conf', good, files)
is_(rc, 0, 'good config with includes and a plugin block: exit 0')
unlike(out, r'\.conf:\d+:', 'good config: no FILE:LINE message')

path, rc, out = check('minimal.conf', BASE)
is_(rc, 0, 'minimal config: exit 0')

# -t only checks: it does not bind, so a port in use is no error.
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(1)
path, rc, out = check('busy.conf', 'listen 127.0.0.1:%d\n' % s.getsockname()[1])
is_(rc, 0, '-t does not bind the listen address')
s.close()

# ---- errors: "FILE:LINE: message" and exit 1 ----------------------------------


def bad(name, text, needle, message, files=None, in_file=None):
    """A config whose error is on the line of needle (in in_file, or the
    main file); checks the exact message."""
    path, rc, out = check(name, text, files)
    where = os.path.join(D, in_file) if in_file else path
    where_text = files[in_file] if in_file else text
    exp = '%s:%d: %s' % (where, lineno(where_text, needle), message)
    is_((rc, out), (1, exp), '%s: exit 1 and "%s"' % (name, exp.replace(D + '/', '')))
    return path


bad('unknown.conf', BASE + 'bogus_directive 1\n', 'bogus_directive',
    "unknown directive 'bogus_directive'")
bad('duration.conf', BASE + 'read_timeout 5x\n', 'read_timeout',
    "read_timeout: invalid duration '5x' (use a number with ms, s, m, h or d)")
bad('port.conf', BASE + 'listen 127.0.0.1:0\n', 'listen 127.0.0.1:0',
    "listen: invalid port '0'")
bad('range.conf', BASE + 'workers 300\n', 'workers', "workers: '300' is out of range (0..256)")
bad('zero-timeout.conf', BASE + 'connect_timeout 0\n', 'connect_timeout',
    "connect_timeout: '0' is too short (at least 1ms)")
bad('args.conf', BASE + 'read_timeout\n', 'read_timeout', "'read_timeout' takes 1 argument")
bad('dup.conf', BASE + 'read_timeout 1s\nread_timeout 2s\n', 'read_timeout 2s',
    "'read_timeout' is duplicate (first at %s/dup.conf:%d)" % (D, len(BASE.split('\n'))))
bad('missing-include.conf', BASE + 'include nowhere/absent.conf\n', 'include',
    "include: cannot open '%s/nowhere/absent.conf': No such file or directory" % D)

# An error inside an included file names that file and its line.
bad('inc-error.conf', BASE + 'include conf.d/broken.conf\n', 'flavour',
    "unknown directive 'flavour'",
    files={'conf.d/broken.conf': '# included\nread_timeout 5s\nflavour vanilla\n'},
    in_file='conf.d/broken.conf')

# Plugin blocks: the braces must balance, the name must be valid and unique,
# the plugin must exist and accept its directives.
PBASE = BASE + 'plugin_dir %s\n' % PLUGINS
bad('plugin-open.conf', PBASE + 'plugin example {\n    reason x\n', 'plugin example',
    "'{' without matching '}'")
bad('plugin-noblock.conf', PBASE + 'plugin example\n', 'plugin example', "'plugin' needs a block")
text = PBASE + 'plugin example {\n}\nplugin example {\n    reason y\n}\n'
path, rc, out = check('plugin-dup.conf', text)
second = len(PBASE.split('\n')) + 2
is_((rc, out), (1, "%s:%d: plugin: 'example' is duplicate (first at %s:%d)"
                % (path, second, path, second - 2)), 'plugin-dup.conf: duplicate plugin block')
bad('plugin-directive.conf', PBASE + 'include bad.d/plugin.conf\n', 'colour',
    "unknown directive 'colour' in plugin 'example'",
    files={'bad.d/plugin.conf': 'plugin example {\n    block_host *.example.net\n    colour blue\n}\n'},
    in_file='bad.d/plugin.conf')
bad('plugin-missing.conf', PBASE + 'plugin no_such_plugin {\n}\n', 'no_such_plugin',
    "plugin 'no_such_plugin': %s/no_such_plugin.so not found (plugin_dir %s)" % (PLUGINS, PLUGINS))
bad('plugin-stray.conf', BASE + 'read_timeout 1s\n}\n', '}', "'}' without matching '{'")
bad('quote.conf', BASE + 'visible_hostname "proxy\n', 'visible_hostname', 'unterminated quote')

# The main file itself missing.
rc, out = run_check(os.path.join(D, 'does-not-exist.conf'))
is_((rc, out.strip()), (1, '%s/does-not-exist.conf: cannot open: No such file or directory' % D),
    'missing main file: exit 1 and "FILE: cannot open"')

# ---- the daemon refuses to start on the same error -----------------------------

binary = os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')
path = write_file('start-bad.conf', BASE + 'include conf.d/broken.conf\n')
p = subprocess.run([binary, '-c', path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=30, cwd=D)
out = p.stdout.decode('utf-8', 'replace')
is_(p.returncode, 1, 'daemon with a broken config: exit 1')
like(out, r'%s/conf\.d/broken\.conf:3: unknown directive \'flavour\'' % D,
     'daemon with a broken config: prints FILE:LINE: message')

# A good config really runs, and the running daemon passes its own check.
d = Daemon(good.replace(BASE, '''listen 127.0.0.1:%%PORT%%
error_log %%TESTDIR%%/error.log info
access_log %%TESTDIR%%/access.log squid
'''))
d.start()
rc, out = d.run_check()
is_(rc, 0, 'running daemon: its config passes -t')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
