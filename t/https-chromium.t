#!/usr/bin/env python3
# https-chromium.t - what the README promises a new user: headless Chromium finds the proxy through /wpad.dat, trusts the local CA from its NSS database (certutil), and shows the real page of an allowed HTTPS site and the Portcullis block page of a blocked one (checked in the DOM).
import os
import shutil
import subprocess
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib')]
from pctest import *
from httpstest import *

need_https()
require_programs('chromium', 'certutil')
set_timeout(240)
EXAMPLE_DIR = os.path.join(top_builddir(), 'plugins')
if not os.path.exists(os.path.join(EXAMPLE_DIR, 'example', 'example.so')):
    skip_all('the example plugin is not built')

pki = Pki()
crt, key = pki.issue('allowed.test')
allowed = TLSOrigin(crt, key, 'allowed.test', lambda req: Response(
    headers=[('Content-Type', 'text/html; charset=utf-8')],
    body=b'<!DOCTYPE html><html><head><title>Allowed</title></head>'
         b'<body><p id="msg">the real page of allowed.test</p></body></html>'))
crt, key = pki.issue('blocked.test')
blocked = TLSOrigin(crt, key, 'blocked.test')
ca_dir = portcullis_ca()
cacrt = os.path.join(ca_dir, 'ca.crt')
ports = '%d %d' % (allowed.port, blocked.port)
d = Daemon(conf('''
connect_ports 443 %s
connect_require_tls 443 %s
plugin_dir %s
plugin example {
    block_host blocked.test
    reason "blocked for the Chromium test"
}
''' % (ports, ports, EXAMPLE_DIR), ca_dir=ca_dir, upstream_ca=pki.ca),
           binary=hosts_binary(['allowed.test', 'blocked.test'])).start()

# The user's side: a home with an NSS database that trusts the local CA,
# exactly as the README says (certutil from libnss3-tools).
home = os.path.join(testdir(), 'home')
nssdb = os.path.join(home, '.pki', 'nssdb')
os.makedirs(nssdb)
env = dict(os.environ, HOME=home)
for k in list(env):
    if k.lower().endswith('_proxy'):
        del env[k]
p = subprocess.run(['certutil', '-d', 'sql:' + nssdb, '-N', '--empty-password'], env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
is_(p.returncode, 0, 'certutil: a new NSS database')
p = subprocess.run(['certutil', '-d', 'sql:' + nssdb, '-A', '-t', 'C,,', '-n',
                    'Portcullis local CA', '-i', cacrt], env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)
is_(p.returncode, 0, 'certutil: the local CA trusted for TLS servers')


def chromium(url):
    profile = os.path.join(testdir(), 'profile-%d' % len(os.listdir(testdir())))
    cmd = ['chromium', '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable',
           '--user-data-dir=' + profile,
           '--proxy-pac-url=http://127.0.0.1:%d/wpad.dat' % d.port,
           '--virtual-time-budget=5000', '--dump-dom', url]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=90)
    return p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


dom, err = chromium(allowed.https_url('/'))
like(dom, r'<p id="msg">the real page of allowed\.test</p>', 'Chromium shows the real page of '
     'an allowed HTTPS site')
if 'the real page' not in dom:
    diag(dom[:2000], err[-3000:])
dom, err = chromium(blocked.https_url('/some/page'))
like(dom, r'blocked by the network|[Bb]locked', 'Chromium shows the Portcullis block page for '
     'a blocked HTTPS site')
like(dom, r'blocked for the Chromium test', '... with the reason')
like(dom, r'https://blocked\.test:%d/some/page' % blocked.port, '... and the https URL')
if 'blocked for the Chromium test' not in dom:
    diag(dom[:2000], err[-3000:])
is_(blocked.requests, [], 'the blocked origin was never asked')
log = '\n'.join(d.access_log())
like(log, r'GET /wpad\.dat ', 'Chromium fetched /wpad.dat')
like(log, r'TCP_MISS/200 \d+ GET https://allowed\.test:%d/ ' % allowed.port,
     'access log: the allowed page as an https URL')
like(log, r'TCP_DENIED/403 \d+ GET https://blocked\.test:%d/some/page ' % blocked.port,
     'access log: the blocked page')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
