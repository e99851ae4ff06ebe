#!/usr/bin/env python3
# plugin-config.t - plugin directives, conf_finish, services and init order: errors as FILE:LINE.
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

need_plugins('testkit', 'testkit2', 'fakescan', 'fakescan-user')
need_plugins('cycle_a', 'cycle_b', directory=ABI_DIR)

seq = [0]


def check(body, plugin_dir=None, start=True):
    """-t on a config with body; returns (rc, output, path, start error)."""
    seq[0] += 1
    d = Daemon(conf(body, plugin_dir), name='c%d' % seq[0])
    rc, out = d.run_check()
    err = None
    if start:
        try:
            d.start(timeout=5)
            d.stop()
        except DaemonError as e:
            err = str(e)
    return rc, out, d.conf_path, err


def line_no(path, text):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    return 0


def refused(body, needle, why, name, plugin_dir=None, start=True):
    rc, out, path, err = check(body, plugin_dir, start)
    where = '%s:%d: ' % (path, line_no(path, needle))
    is_(rc, 1, '%s: -t fails' % name)
    like(out, '^' + re.escape(where) + why, '%s: -t prints FILE:LINE: %s' % (name, why))
    if start:
        ok(err is not None and re.search(re.escape(where) + why, err),
           '%s: the daemon refuses to start, with the same message' % name) or diag(err)


refused('plugin testkit {\n    level 3\n    bogus 1\n}\n', 'bogus',
        r"unknown directive 'bogus' in plugin 'testkit'", 'unknown directive')
refused('plugin testkit {\n    level 11\n}\n', 'level 11',
        r"level: '11' is out of range \(1\.\.10\)", 'PC_DIR_INT out of range', start=False)
refused('plugin testkit {\n    level ten\n}\n', 'level ten',
        r"level: invalid number 'ten'", 'PC_DIR_INT not a number', start=False)
refused('plugin testkit {\n    color purple\n}\n', 'color purple',
        r"color: 'purple' is not one of red, green, blue", 'PC_DIR_ENUM', start=False)
refused('plugin testkit {\n    hold_max 10KB\n}\n', 'hold_max',
        r"hold_max: invalid size '10KB'", 'PC_DIR_SIZE', start=False)
refused('plugin testkit {\n    defer_timeout 5x\n}\n', 'defer_timeout',
        r"defer_timeout: invalid duration '5x'", 'PC_DIR_DURATION', start=False)
refused('plugin testkit {\n    accept_block maybe\n}\n', 'accept_block',
        r"accept_block: invalid flag 'maybe'", 'PC_DIR_FLAG', start=False)
refused('plugin testkit {\n    level 1 2\n}\n', 'level 1 2',
        r"'level' takes 1 argument", 'too many arguments', start=False)
refused('plugin testkit {\n    block_host\n}\n', 'block_host',
        r"'block_host' takes at least 1 argument", 'too few arguments', start=False)
refused('plugin testkit {\n    tag one\n    tag two\n}\n', 'tag two',
        r"'tag' is duplicate \(first at [^:]+:%d\)" % (conf('').count('\n') + 2), 'a directive given twice', start=False)
refused('plugin testkit {\n    tag "a b"\n}\n', 'tag "a b"',
        r"tag: a tag has no spaces", 'a typed directive with a check', start=False)
refused('plugin testkit {\n    level 2 {\n        x 1\n    }\n}\n', 'level 2',
        r"'level' takes no block", 'a block where none belongs', start=False)
refused('\n\nplugin testkit {\n    tag rejected\n    fail_finish on\n}\n', 'plugin testkit',
        r"plugin 'testkit': fail_finish is set \(tag rejected\)", 'conf_finish fails')
refused('plugin nosuch {\n}\n', 'plugin nosuch',
        r"plugin 'nosuch': .*nosuch\.so not found \(plugin_dir ", 'no such plugin', start=False)
rc, out, path, err = check('plugin testkit {\n}\nplugin testkit {\n}\n', start=False)
is_(rc, 1, 'the same plugin twice: -t fails')
like(out, '^' + re.escape(path) + r":\d+: .*'testkit' is duplicate \(first at " +
     re.escape(path) + r':\d+\)', 'the same plugin twice: FILE:LINE of both blocks')

# An error inside an included file names that file.
inc = write_file('inc/testkit.conf', '# included\nplugin testkit {\n    color mauve\n}\n')
rc, out, path, err = check('include %s\n' % inc, start=False)
is_(rc, 1, 'included plugin block: -t fails')
like(out, '^' + re.escape('%s:3: ' % inc) + r"color: 'mauve' is not one of",
     'the error names the included file and its line')

# Services: a user without a provider, and two plugins needing each other.
refused('plugin fakescan-user {\n    max 1M\n}\n', 'plugin fakescan-user',
        r"plugin 'fakescan-user' requires service 'scanner' \(version 1 or later\), "
        r"which no configured plugin provides", 'missing provider')
refused('plugin cycle_a {\n}\nplugin cycle_b {\n}\n', 'plugin cycle_b',
        r"plugins 'cycle_[ab]' and 'cycle_[ab]' need each other's services \(a cycle\)",
        'a service cycle', plugin_dir=ABI_DIR)

# A provider listed after its user is initialised first.
d = Daemon(conf('''
plugin fakescan-user {
    max 1M
}
plugin testkit {
}
plugin fakescan {
    delay 0
}
''', logs='order-'), name='order')
rc, out = d.run_check()
is_(rc, 0, 'user before provider in the file: -t passes')
up(d)
log = d.error_log()
started = re.findall(r'plugin (\S+) \S+ started', log)
is_(started, ['fakescan', 'fakescan-user', 'testkit'],
    'init order: the provider first, then the others in configuration order')
like(log, r'fakescan-user: using fakescan 1\.0', 'the user acquired the service in its init()')
ok(d.stop(), 'graceful stop')
d.check_logs()

# An init() that fails stops the start: no half-started set serves traffic.
trail = os.path.join(testdir(), 'init.trail')
d = Daemon(conf('''
plugin testkit {
    trail_file %%TESTDIR%%/init.trail
}
plugin testkit2 {
    trail_file %%TESTDIR%%/init.trail
    fail_init on
}
'''), name='initfail')
rc, out = d.run_check()
is_(rc, 0, 'a failing init() is not run by -t (it checks configuration only)')
# It binds its listeners first (before dropping privileges), so it may be
# seen listening for a moment: what counts is that it exits 1.
try:
    d.start(timeout=5)
except DaemonError:
    pass
try:
    rc = d.proc.wait(10)
except Exception:
    rc = None
is_(rc, 1, 'a failing init() stops the daemon: exit status 1')
like(d.stderr(), re.escape(d.conf_path) + r":\d+: plugin 'testkit2' failed to start: "
     r"fail_init is set", 'the error names FILE:LINE and the reason')
like(Trail(trail).text(), r'testkit2 INIT', 'testkit2 init() ran and failed')

done_testing()
