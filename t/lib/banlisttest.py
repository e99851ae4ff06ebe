"""banlisttest - what the t/banlist-*.t tests share (on top of pctest).

plugin_dir(*names) -> path
    A directory in the test directory with NAME.so links to the built
    plugins: banlist and example from plugins/, the test plugins (fakescan,
    fakescan-user, testkit) from t/plugins/. One plugin_dir is all a config
    can name, so the tests gather what they load there.

ctl(daemon_or_socket, *args, timeout=10) -> (rc, stdout, stderr)
    Runs `portcullis ctl -s SOCKET ARGS...` like an admin would.

ctl_raw(socket_path, data, timeout=5, shutdown=True) -> bytes
    Sends raw bytes on the control socket and returns the whole answer
    (for garbage, truncated and overlong lines).

conf(plugin_block, extra='', plugins=(), name='portcullis') -> str
    A daemon config template: two workers, logs and the control socket in
    the test directory (named after the Daemon's name), plugin_dir with
    banlist and the given plugins, then plugin_block.

get(port, url, source=None, *args) -> CurlResult
    curl through the proxy, from the loopback address source
    (127.0.0.0/8 is all ours on Linux, so each test client can have an
    address of its own).
"""

import os
import socket
import subprocess

from pctest import top_builddir, testdir, curl_via, _default_binary

PLUGIN_PLACES = {
    'banlist': 'plugins/banlist/banlist.so',
    'example': 'plugins/example/example.so',
    'avscan': 'plugins/avscan/avscan.so',
    'fakescan': 't/plugins/fakescan/fakescan.so',
    'fakescan-user': 't/plugins/fakescan-user/fakescan-user.so',
    'testkit': 't/plugins/testkit/testkit.so',
}


def plugin_path(name):
    return os.path.join(top_builddir(), PLUGIN_PLACES[name])


def plugin_dir(*names):
    d = os.path.join(testdir(), 'plugins')
    os.makedirs(d, exist_ok=True)
    for n in ('banlist',) + names:
        link = os.path.join(d, n + '.so')
        if not os.path.lexists(link):
            os.symlink(plugin_path(n), link)
    return d


def ctl_socket(d):
    return os.path.join(d.dir, d.name + '.sock')


def ctl(d, *args, timeout=10):
    sock = d if isinstance(d, str) else ctl_socket(d)
    try:
        p = subprocess.run([_default_binary(), 'ctl', '-s', sock] + [str(a) for a in args],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, '', 'ctl timed out'
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def ctl_raw(path, data, timeout=5, shutdown=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        out = b''
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def conf(plugin_block, extra='', plugins=(), name='portcullis'):
    """name: the Daemon's name, when a test runs more than one (each gets
    its own logs and control socket)."""
    return '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
workers 2
connect_ports 443
error_log %%TESTDIR%%/''' + name + '''.error.log info
access_log %%TESTDIR%%/''' + name + '''.access.log squid
control_socket %%TESTDIR%%/''' + name + '''.sock
plugin_dir ''' + plugin_dir(*plugins) + '''
''' + extra + '''
''' + plugin_block


def get(port, url, source=None, *args, timeout=15):
    a = list(args)
    if source:
        a = ['--interface', source] + a
    return curl_via(port, url, *a, timeout=timeout)
