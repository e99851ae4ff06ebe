"""plugintest - helpers shared by the plugin tests (t/plugin-*.t).

The test plugins are built by `make check` under t/plugins/ (see
t/plugins/Makefile.inc): testkit, testkit2 and testkit3 (one source under
three names), fakescan and fakescan-user, and the loader fixtures in
t/plugins/abi/. This module finds them, writes the usual config around a
plugin section, and reads the testkit trail file:

    conf(body, plugin_dir=None, level='info', logs='')
                           -> config template (pctest Daemon syntax)
    need_plugins(*names)   skip_all unless every NAME.so was built
    up(daemon) -> daemon   start() and wait for the "started" notice
    Trail(path)            the lines testkit appended: "ID PLUGIN WHAT k=v..."
        .lines(id=None, plugin=None, what=None) -> [Line]
        .count(id, what, plugin=None) -> int
        .hooks(id, plugin=None) -> ['REQUEST_HEADERS', ...] in call order
        .wait(pred, timeout) -> bool   (re-reads until pred(trail) holds)
"""

import os
import time

from pctest import DaemonError, skip_all, top_builddir

PLUGIN_DIR = os.path.join(top_builddir(), 't', 'plugins')
ABI_DIR = os.path.join(PLUGIN_DIR, 'abi')


def plugin_path(name, directory=None):
    d = directory or PLUGIN_DIR
    flat = os.path.join(d, name + '.so')
    return flat if os.path.exists(flat) else os.path.join(d, name, name + '.so')


def need_plugins(*names, directory=None):
    missing = [n for n in names if not os.path.exists(plugin_path(n, directory))]
    if missing:
        skip_all('test plugins not built (%s): run make check' % ', '.join(missing))


def conf(body, plugin_dir=None, level='info', logs=''):
    """A daemon config template: one worker, loopback, logs in the test
    directory (LOGSerror.log, LOGSaccess.log: give a second daemon its own
    with logs='name-'), the test plugin dir, then body."""
    return '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/''' + logs + '''error.log ''' + level + '''
access_log %%TESTDIR%%/''' + logs + '''access.log squid
plugin_dir ''' + (plugin_dir or PLUGIN_DIR) + '''
spool_dir %%TESTDIR%%
''' + body


def up(d, timeout=10):
    """Starts d and waits for its "portcullis ... started (pid N" notice:
    start() returns once the listener is bound, which is before the plugins'
    init() ran and the signal handlers are in place (a SIGTERM before that
    would kill the daemon without a graceful stop)."""
    d.start(timeout)
    if not d.wait_for_log('error', r'portcullis \S+ started \(pid %d,' % d.pid, timeout):
        raise DaemonError('%s: no "started" notice in %s within %ss'
                          % (d.name, d.error_log_path, timeout))
    return d


class Line:
    def __init__(self, text):
        self.text = text
        parts = text.split()
        self.id = parts[0] if parts else ''
        self.plugin = parts[1] if len(parts) > 1 else ''
        self.what = parts[2] if len(parts) > 2 else ''
        self.kv = {}
        for p in parts[3:]:
            k, sep, v = p.partition('=')
            if sep:
                self.kv[k] = v

    def __repr__(self):
        return repr(self.text)


class Trail:
    def __init__(self, path):
        self.path = path

    def all(self):
        try:
            with open(self.path) as f:
                return [Line(t) for t in f.read().splitlines() if t.strip()]
        except FileNotFoundError:
            return []

    def lines(self, id=None, plugin=None, what=None):
        return [ln for ln in self.all()
                if (id is None or ln.id == id) and (plugin is None or ln.plugin == plugin)
                and (what is None or ln.what == what)]

    def count(self, id, what, plugin=None):
        return len(self.lines(id, plugin, what))

    def hooks(self, id, plugin=None):
        return [ln.what for ln in self.lines(id, plugin)]

    def calls(self, id):
        """[(plugin, what)] for a transaction, in order."""
        return [(ln.plugin, ln.what) for ln in self.lines(id)]

    def wait(self, pred, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            if pred(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def text(self):
        return '\n'.join(ln.text for ln in self.all())
