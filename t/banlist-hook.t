#!/usr/bin/env python3
# banlist-hook.t - the hook command: its arguments for each change, in order; failures and hangs logged and killed.
import os
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from banlisttest import conf, ctl, get

set_timeout(60)

calls = os.path.join(testdir(), 'hook.calls')
write_file('hook-ok', '''#!/bin/sh
# One line per call: the arguments, then two of the environment variables.
printf '%%s|' "$@" >> %s
printf 'env:%%s:%%s\\n' "$PORTCULLIS_BAN_SOURCE" "$PORTCULLIS_BAN_UNTIL" >> %s
''' % (calls, calls), mode=0o755)
write_file('hook-fail', '''#!/bin/sh
echo "nft: Operation not permitted (you must be root)" >&2
exit 3
''', mode=0o755)
pidfile = os.path.join(testdir(), 'hang.pid')
write_file('hook-hang', '''#!/bin/sh
# A hook that hangs, with a child of its own: the timeout kills them both.
sleep 30 &
echo $! > %s
wait
''' % pidfile, mode=0o755)
write_file('not-executable', '#!/bin/sh\n', mode=0o644)

origin = Origin()


def read_calls():
    try:
        with open(calls) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_calls(n):
    return wait_until(lambda: len(read_calls()) >= n and read_calls(), timeout=5) or read_calls()


d = Daemon(conf('''
plugin banlist {
    state         %%TESTDIR%%/banlist.state
    hook_command  ./hook-ok --from-portcullis
    hook_timeout  5s
}
''')).start()

# -- the arguments of each action
ctl(d, 'ban', '127.0.0.2', '1h', 'crypto-locker', 'on PC-12')
ctl(d, 'ban', 'evil.test', 'forever', 'phishing')
ctl(d, 'unban', 'evil.test')
ctl(d, 'ban', '127.0.0.3', '2s', 'short one')
lines = wait_calls(4)
is_(lines[0], '--from-portcullis|ban|client|127.0.0.2|3600|crypto-locker on PC-12|'
    'env:ctl:' + lines[0].split('env:ctl:')[-1],
    'ban: fixed args, then action kind target seconds reason')
like(lines[0], r'\|env:ctl:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$',
     'ban: source and until in the environment')
is_(lines[1], '--from-portcullis|ban|site|evil.test|forever|phishing|env:ctl:forever', 'ban for ever')
is_(lines[2], '--from-portcullis|unban|site|evil.test|forever|phishing|env:ctl:forever',
    'unban, in order after the ban')
like(lines[3], r'^--from-portcullis\|ban\|client\|127\.0\.0\.3\|2\|short one\|', 'a short ban')
lines = wait_calls(5)
like(len(lines) >= 5 and lines[4], r'^--from-portcullis\|expire\|client\|127\.0\.0\.3\|0\|short one\|',
     'expire: when the 2 s ban ends')
ok(d.wait_for_log('error', r'hook command done in \d+ ms \(ban client 127\.0\.0\.2\)'),
   'a successful run is logged')

# -- restore: the bans read back at start are given to the hook again
ok(d.stop(), 'stop')
os.unlink(calls)
d.start()
lines = wait_calls(1)
like(lines[0], r'^--from-portcullis\|restore\|client\|127\.0\.0\.2\|35[89]\d\|crypto-locker on PC-12\|env:',
     'restore at start, with the time left')

# -- a failing hook command: logged with what it said
d.write_conf(conf('''
plugin banlist {
    hook_command  ./hook-fail
}
'''))
like(d.reload(), r'configuration reloaded', 'reload with a failing hook command')
is_(ctl(d, 'ban', '127.0.0.4', '1h', 'x')[0], 0, 'the ban itself does not depend on the hook')
line = d.wait_for_log('error', r'hook command failed', timeout=5)
like(line, r'\[error\] .*banlist: hook command failed with exit status 3 \(ban client 127\.0\.0\.4\): '
     r'nft: Operation not permitted', 'a failure is logged as an error, with its output')
is_(get(d.port, origin.url('/'), '127.0.0.4').status, 403, 'the client is banned all the same')

# -- a hanging hook command: killed after its timeout, with its children
d.write_conf(conf('''
plugin banlist {
    hook_command  ./hook-hang
    hook_timeout  1s
}
'''))
like(d.reload(), r'configuration reloaded', 'reload with a hanging hook command')
t0 = time.monotonic()
is_(ctl(d, 'ban', '127.0.0.5', '1h', 'y')[0], 0, 'ctl ban returns at once, the hook runs on')
ok(time.monotonic() - t0 < 0.9, 'ctl does not wait for the hook')
line = d.wait_for_log('error', r'hook command timed out', timeout=6)
like(line, r'\[error\] .*hook command timed out after 1000 ms and was killed \(ban client 127\.0\.0\.5\)',
     'the timeout is logged as an error')
ok(time.monotonic() - t0 < 5, 'killed within the timeout and the grace')
pid = int(open(pidfile).read().strip()) if os.path.exists(pidfile) else 0
ok(pid and wait_until(lambda: not os.path.exists('/proc/%d' % pid) or
                      open('/proc/%d/stat' % pid).read().split()[2] == 'Z', timeout=3),
   'the hook\'s own child was killed too')
is_(get(d.port, origin.url('/'), '127.0.0.5').status, 403, 'the client is banned all the same')
# The next hook run is not stuck behind the killed one.
d.write_conf(conf('''
plugin banlist {
    hook_command  ./hook-ok --after
}
'''))
d.reload()
os.path.exists(calls) and os.unlink(calls)
ctl(d, 'unban', '127.0.0.5')
lines = wait_calls(1)
like(lines and lines[0], r'^--after\|unban\|client\|127\.0\.0\.5\|', 'the queue goes on after a timeout')

# -- -t: a hook command that cannot run is a configuration error
rc, out = Daemon(conf('''
plugin banlist {
    hook_command  ./not-executable
}''', name='badhook'), name='badhook').run_check()
is_(rc, 1, '-t: a hook command that is not executable fails the check')
like(out, r"hook_command '.*not-executable': not executable", '-t: and says why')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
