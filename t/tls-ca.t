#!/usr/bin/env python3
# tls-ca.t - the local CA as an admin meets it: `portcullis ca init` and
# `ca show` (files, modes, what openssl sees, refusals, usage errors), and
# the TLS directives (intercept, ca_dir, upstream_ca_file, no_intercept)
# through `-t`, start and reload.
import os
import pwd
import re
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *  # noqa: E402,F403

require_programs('openssl', 'curl')
set_timeout(120)
D = testdir()
BIN = os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')


def ca(*args):
    """Runs portcullis ca ARGS; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, 'ca'] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60, cwd=D)
    return p.returncode, p.stdout, p.stderr


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def openssl(*args):
    p = subprocess.run(['openssl'] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def fingerprint(crt):
    """SHA-256 fingerprint as openssl prints it: AB:CD:..."""
    rc, out = openssl('x509', '-noout', '-fingerprint', '-sha256', '-in', crt)
    m = re.search(r'=([0-9A-F:]+)', out)
    return m.group(1) if m else None


# ---- ca init / ca show -------------------------------------------------------

ec = os.path.join(D, 'ec')
rc, out, err = ca('init', '-d', ec)
is_(rc, 0, 'ca init -d DIR: exit 0')
like(out, r'created a new CA in ' + re.escape(ec), 'ca init says where the CA is')
like(out, r'key:\s+ECDSA P-256', 'ca init: ECDSA P-256 by default')
is_(mode(os.path.join(ec, 'ca.key')), 0o600, 'ca.key is mode 0600')
is_(mode(os.path.join(ec, 'ca.crt')), 0o644, 'ca.crt is mode 0644')
is_(sorted(os.listdir(ec)), ['ca.crt', 'ca.key'], 'only ca.crt and ca.key in the directory')
rc, text = openssl('x509', '-noout', '-text', '-in', os.path.join(ec, 'ca.crt'))
like(text, r'X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0',
     'openssl: basicConstraints critical CA:TRUE, pathlen:0')
like(text, r'X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign',
     'openssl: keyUsage critical keyCertSign, cRLSign')
like(text, r'X509v3 Subject Key Identifier', 'openssl: a subject key identifier')
like(text, r'Signature Algorithm: ecdsa-with-SHA256', 'openssl: signed with ecdsa-with-SHA256')
rc, text = openssl('verify', '-x509_strict', '-CAfile', os.path.join(ec, 'ca.crt'),
                   os.path.join(ec, 'ca.crt'))
is_(rc, 0, 'openssl verify -x509_strict accepts the self-signed CA')

rc, out, err = ca('show', '-d', ec)
is_(rc, 0, 'ca show: exit 0')
like(out, r'subject:\s+CN=Portcullis local CA \(.+\),O=Portcullis', 'ca show: default subject')
fp = fingerprint(os.path.join(ec, 'ca.crt'))
ok(fp is not None and ('fingerprint:  SHA-256 ' + fp) in out,
   'ca show: the SHA-256 fingerprint openssl computes')
like(out, r'valid:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d{4}-', 'ca show: validity')

rc, out, err = ca('init', '-d', ec)
is_(rc, 1, 'ca init over an existing CA: exit 1')
like(err, r'already exists.*--force', 'ca init over an existing CA: names --force')
is_(fingerprint(os.path.join(ec, 'ca.crt')), fp, 'the existing CA is untouched')

rc, out, err = ca('init', '-d', ec, '--force', '--rsa', '--cn', 'Example Test CA', '--org',
                  'Example Corp', '--days', '30')
is_(rc, 0, 'ca init --force --rsa --cn --org --days: exit 0')
like(out, r'subject:\s+CN=Example Test CA,O=Example Corp', '--cn and --org in the subject')
like(out, r'key:\s+RSA 2048', '--rsa: RSA 2048')
isnt(fingerprint(os.path.join(ec, 'ca.crt')), fp, '--force made a new CA')
rc, text = openssl('x509', '-noout', '-checkend', str(31 * 86400), '-in',
                   os.path.join(ec, 'ca.crt'))
isnt(rc, 0, '--days 30: expires within 31 days')
rc, text = openssl('x509', '-noout', '-checkend', str(29 * 86400), '-in',
                   os.path.join(ec, 'ca.crt'))
is_(rc, 0, '--days 30: still valid in 29 days')

# -c: ca_dir from a configuration, relative to its file
conf = write_file('cadir.conf', 'listen 127.0.0.1:%d\nca_dir sub/ca\n' % free_port())
os.makedirs(os.path.join(D, 'sub'), exist_ok=True)
rc, out, err = ca('init', '-c', conf)
is_(rc, 0, 'ca init -c CONF: exit 0')
ok(os.path.exists(os.path.join(D, 'sub', 'ca', 'ca.key')),
   'ca init -c CONF: wrote ca_dir, relative to the config file')
rc, out, err = ca('show', '-c', conf)
ok(rc == 0 and 'key:          ECDSA P-256' in out, 'ca show -c CONF')

# refusals the admin can act on
rc, out, err = ca('show', '-d', os.path.join(D, 'nothing'))
is_(rc, 1, 'ca show of a missing CA: exit 1')
like(err, r'cannot open .*ca\.key: No such file or directory \(create a CA with: portcullis ca init\)',
     'ca show of a missing CA: says how to make one')
os.chmod(os.path.join(ec, 'ca.key'), 0o644)
rc, out, err = ca('show', '-d', ec)
is_(rc, 1, 'ca show with a 0644 key: exit 1')
like(err, r'accessible by group or others \(mode 0644\).*chmod 600', 'ca show: says chmod 600')
os.chmod(os.path.join(ec, 'ca.key'), 0o600)

# usage errors: exit 2
for args, name in ((['ca'], 'ca without a command'), (['ca', 'frob'], 'ca frob'),
                   (['ca', 'init', '--days', '0', '-d', D], 'ca init --days 0'),
                   (['ca', 'init', '-d'], 'ca init -d without a value'),
                   (['ca', 'show', '--rsa', '-d', ec], 'ca show --rsa'),
                   (['ca', 'init', '-d', ec, '-c', conf], 'ca init with -d and -c')):
    p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=30)
    is_(p.returncode, 2, '%s: exit 2' % name)
p = subprocess.run([BIN, 'ca', '--help'], capture_output=True, text=True, timeout=30)
ok(p.returncode == 0 and 'portcullis ca init' in p.stdout, 'ca --help')
p = subprocess.run([BIN, '-h'], capture_output=True, text=True, timeout=30)
like(p.stdout, r'portcullis ca show', 'portcullis -h lists the ca command')

# the daemon's user gets the key when root runs ca init -c
if os.geteuid() == 0:
    try:
        nobody = pwd.getpwnam('nobody')
    except KeyError:
        nobody = None
    if nobody is not None:
        uconf = write_file('user.conf', 'listen 127.0.0.1:%d\nca_dir userca\nuser nobody\n'
                           % free_port())
        rc, out, err = ca('init', '-c', uconf)
        key = os.path.join(D, 'userca', 'ca.key')
        ok(rc == 0 and os.stat(key).st_uid == nobody.pw_uid and mode(key) == 0o600,
           'root: ca init -c CONF gives ca.key to the config\'s user, mode 0600')
    else:
        skip('no user nobody')
else:
    skip('not root: cannot test the chown of ca.key')

# ---- the directives through -t ------------------------------------------------

BASE = ('listen 127.0.0.1:%%PORT%%\nallow_local_upstreams on\nerror_log ' + D +
        '/error.log info\naccess_log ' + D + '/access.log squid\n')


def check(name, text):
    path = write_file(name, text.replace('%%PORT%%', str(free_port())))
    rc, out = run_check(path)
    if rc != 0:
        diag('-t %s: %s' % (name, out.strip()))
    return path, rc, out.strip()


good = os.path.join(D, 'sub', 'ca')
path, rc, out = check('t1.conf', BASE + 'intercept on\nca_dir %s\n' % good)
is_(rc, 0, '-t: intercept on with a good CA: exit 0')
shipped = os.path.join(top_srcdir(), 'etc', 'no_intercept.txt')
path, rc, out = check('t2.conf', BASE + 'no_intercept %s\nupstream_ca_file %s\n'
                      % (shipped, os.path.join(good, 'ca.crt')))
is_(rc, 0, '-t: the shipped no_intercept.txt and an upstream_ca_file check out')
path, rc, out = check('t3.conf', BASE + 'intercept on\nca_dir %s\n' % os.path.join(D, 'none'))
is_(rc, 1, '-t: intercept on without a CA: exit 1')
like(out, re.escape(path) + r':6: ca_dir: cannot open .*portcullis ca init',
     '-t: FILE:LINE of ca_dir and how to make a CA')
path, rc, out = check('t4.conf', BASE + 'intercept off\nca_dir %s\n' % os.path.join(D, 'none'))
is_(rc, 0, '-t: intercept off: the CA is not needed')
os.chmod(os.path.join(good, 'ca.key'), 0o640)
path, rc, out = check('t5.conf', BASE + 'intercept on\nca_dir %s\n' % good)
is_(rc, 1, '-t: a CA key readable by the group: exit 1')
like(out, re.escape(path) + r':6: ca_dir: .*mode 0640', '-t: names the key mode')
os.chmod(os.path.join(good, 'ca.key'), 0o600)
write_file('bad-list.txt', '# fine\nbank.example\nnot a domain\n')
path, rc, out = check('t6.conf', BASE + 'no_intercept bad-list.txt\n')
is_(rc, 1, '-t: a bad no_intercept entry: exit 1')
like(out, re.escape(path) + r':5: no_intercept: .*bad-list\.txt:3: one entry per line',
     '-t: FILE:LINE of the directive and of the entry')
write_file('junk.pem', 'no certificate here\n')
path, rc, out = check('t7.conf', BASE + 'upstream_ca_file junk.pem\n')
is_(rc, 1, '-t: upstream_ca_file without a certificate: exit 1')
like(out, re.escape(path) + r':5: upstream_ca_file: .*no PEM certificate', '-t: says why')
path, rc, out = check('t8.conf', BASE + 'intercept yes\n')
like(out, r':5: intercept: ', '-t: intercept takes on or off')

# ---- start and reload -----------------------------------------------------------

origin = Origin(lambda req: Response(body=b'plain\n'))
d = Daemon(BASE + 'intercept on\nca_dir %s\nno_intercept %s\n' % (good, shipped)).start()
r = curl_via(d.port, origin.url('/x'))
is_(r.status, 200, 'with intercept on and a CA the proxy starts and serves HTTP')
os.chmod(os.path.join(good, 'ca.key'), 0o644)
line = d.reload()
like(line or '', r'reload failed.*mode 0644', 'reload with an unsafe CA key fails and says why')
r = curl_via(d.port, origin.url('/y'))
is_(r.status, 200, 'the running configuration stays')
os.chmod(os.path.join(good, 'ca.key'), 0o600)
line = d.reload()
like(line or '', r'configuration reloaded', 'reload with the key fixed works')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
