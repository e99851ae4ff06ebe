#!/usr/bin/env python3
# banlist-ctl.t - the control socket with the banlist's commands: owner only, and garbage answered with errors.
import os
import socket
import stat
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from banlisttest import conf, ctl, ctl_raw, ctl_socket

set_timeout(60)

d = Daemon(conf('''
plugin banlist {
}
''')).start()
sock = ctl_socket(d)


def alive():
    rc, out, err = ctl(d, 'version')
    return rc == 0 and out.startswith('portcullis ')


def no_bans():
    rc, out, err = ctl(d, 'bans')
    return rc == 0 and out.strip().endswith('0 bans')


# -- the socket belongs to the daemon's user
st = os.stat(sock)
is_(oct(stat.S_IMODE(st.st_mode)), oct(0o600), 'the control socket is mode 0600')
rc, out, err = ctl(d, 'help')
like(out, r'(?m)^ban +\(banlist\) ban TARGET DURATION\|forever', 'help lists ban')
like(out, r'(?m)^unban +\(banlist\)', 'help lists unban')
like(out, r'(?m)^bans +\(banlist\)', 'help lists bans')


def as_nobody(data):
    """Connects as uid 65534 in a child process; returns what it saw."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                out = ctl_raw(sock, data)
                os.write(w, b'ANSWER ' + out)
            except OSError as e:
                os.write(w, ('OSERROR %s' % e.strerror).encode())
        finally:
            os._exit(0)
    os.close(w)
    got = b''
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        got += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return got.decode('utf-8', 'replace')


if os.geteuid() != 0:
    skip('not root: cannot test another user', 4)
else:
    # The test directory (mode 0700) must not be what keeps nobody out.
    os.chmod(testdir(), 0o711)
    got = as_nobody(b'ban 127.0.0.50 1h by nobody\n')
    is_(got, 'OSERROR Permission denied', 'another user cannot even connect (mode 0600)')
    # Even if the mode were opened up, the peer's uid is checked.
    os.chmod(sock, 0o666)
    mark = d.log_mark()
    got = as_nobody(b'ban 127.0.0.50 1h by nobody\n')
    os.chmod(sock, 0o600)
    os.chmod(testdir(), 0o700)
    is_(got, 'ANSWER ERR permission denied\n', 'a connection from another uid is refused')
    ok(d.wait_for_log('error', r'control: refused a connection from uid 65534', since=mark),
       'the refusal is logged')
    ok(no_bans(), 'nothing was banned by the other user')

# -- garbage, overlong and truncated lines: an error each, no crash
cases = [
    (b'\x01\x02garbage\n', r'^ERR control character in the command\n$', 'control bytes'),
    (b'\xff\xfe\xfd binary\n', r'^ERR unknown command', 'binary bytes'),
    (b'\n', r'^ERR empty command', 'an empty line'),
    (b'ban 127.0.0.51 1h reason' + b' x' * 3000 + b'\n', r'^ERR command line too long',
     'an overlong line'),
    (b'A' * 100000, r'^ERR command line too long', 'a flood without a newline'),
    (b'ban 127.0.0.51 1h', r'^ERR incomplete command \(no newline\)', 'a truncated line'),
    (b'ban 127.0.0.51 1h "unterminated\n', r'^ERR unterminated quote', 'an unterminated quote'),
    (b'ban' + b' x' * 70 + b'\n', r'^ERR too many arguments', 'too many arguments'),
    (b'ban\n', r'^ERR usage: ban TARGET DURATION\|forever', 'ban without arguments'),
    (b'ban 127.0.0.51\n', r'^ERR usage: ban', 'ban without a duration'),
    (b'ban 127.0.0.51 banana x\n', r"^ERR invalid duration 'banana'", 'a bad duration'),
    (b'ban 127.0.0.51 0s x\n', r'^ERR duration .* shorter than 1s', 'a zero duration'),
    (b'ban 127.0.0.51 99999d x\n', r'^ERR duration .* longer than 100 years', 'a huge duration'),
    (b'ban 127.0.0.0/33 1h x\n', r'^ERR invalid prefix length', 'a bad CIDR'),
    (b'ban not_a..host 1h x\n', r'^ERR invalid site', 'a bad host name'),
    (b'ban http://x.test/ 1h x\n', r'^ERR .*is not a site', 'a URL'),
    (b'ban client:x.test 1h x\n', r'^ERR invalid client address', 'client: with a name'),
    (b'ban 127.0.0.51 1h ' + b'r' * 600 + b'\n', r'^ERR reason too long', 'an overlong reason'),
    (b'unban\n', r'^ERR usage: unban TARGET', 'unban without a target'),
    (b'unban 127.0.0.51 extra\n', r'^ERR usage: unban TARGET', 'unban with too much'),
    (b'bans everything\n', r'^ERR usage: bans', 'bans with a bad argument'),
    (b'bancheck\n', r'^ERR usage: bancheck', 'bancheck without a target'),
]
for data, rx, name in cases:
    like(ctl_raw(sock, data).decode('latin-1'), rx, 'garbage: %s is answered with an error' % name)
ok(alive(), 'the daemon still answers after the garbage')
ok(no_bans(), 'nothing was banned by the garbage')

# Half a line, then the client goes away without a word: no answer needed,
# no crash, no leak (the sanitizer build checks).
for i in range(20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b'ban 127.0.0.52 1h')
    s.close()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
s.close()
ok(alive(), 'the daemon survives clients that vanish mid-line')

# A command with quotes and a reason with spaces, as `portcullis ctl` sends it.
out = ctl_raw(sock, b'ban 127.0.0.53 1h "a \\"quoted\\" reason" and more\n').decode()
like(out, r'^banned client 127\.0\.0\.53 for 1h, until .*: a "quoted" reason and more\nOK\n$',
     'quoted arguments are understood')
like(ctl_raw(sock, b'unban 127.0.0.53\r\n').decode(), r'^unbanned client 127\.0\.0\.53\nOK\n$',
     'a CRLF line end is fine')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
