"""httpstest - helpers of the HTTPS tests (t/https-*.t): a test PKI made
with the openssl CLI, TLS stub origins, the daemon in a mount namespace
whose /etc/hosts maps the test names to 127.0.0.1, and TLS clients.

    need_https()            skip_all unless root, unshare -m and openssl work
    Pki(name='pki')         a CA for the ORIGINS (its ca.crt is the daemon's
                            upstream_ca_file), made at test time:
        .ca                 path of the CA certificate
        .issue(name, kind='good', san=None) -> (cert, key)
                            kind: good, expired, selfsigned, unknownca
                            (issued by a CA nobody trusts); san names the
                            certificate (default: name), so a "wrong host"
                            certificate is issue('wronghost.test',
                            san='other.test')
    portcullis_ca(dirname='ca') -> ca_dir   `portcullis ca init` (ECDSA)
    TLSOrigin(cert, key, name, handler=None)
                            pctest.Origin over TLS (ALPN http/1.1); the
                            default handler answers "hello from NAME";
                            .snis and .alpns record what clients sent,
                            .resumed whether each handshake resumed;
                            .https_url(path) -> https://NAME:PORT/path
    hosts_binary(names)     a wrapper running the daemon in a mount
                            namespace where every name is 127.0.0.1
    conf(extra, plugins='') a daemon config: intercept on, the test CA,
                            the PKI's CA as upstream_ca_file, access logs in
                            squid and json format, then extra
    s_client(proxy_port, host, port, servername=None, args=()) -> (rc, out)
                            openssl s_client -proxy ... -showcerts
    first_cert(out)         the first PEM certificate of s_client's output
    verify_leaf(pem, cafile, host) -> (rc, out)
                            openssl verify -purpose sslserver -verify_hostname
    curl_https(port, url, cacert, *args) -> pctest.CurlResult
    json_log(d) -> [dict]   the JSON access log lines
    find_entry(d, method, url, timeout=5) -> dict | None
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time

from pctest import (Origin, Response, curl_via, skip_all, testdir, top_builddir,
                    wait_until, write_file)

__all__ = ['need_https', 'Pki', 'portcullis_ca', 'TLSOrigin', 'hosts_binary', 'conf',
           's_client', 'first_cert', 'verify_leaf', 'curl_https', 'json_log', 'find_entry',
           'portcullis_binary']


def portcullis_binary():
    return os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')


def need_https():
    if shutil.which('openssl') is None:
        skip_all('openssl is not installed')
    if os.geteuid() != 0:
        skip_all('needs root for a mount namespace with test host names (unshare -m)')
    if shutil.which('unshare') is None or \
            subprocess.run(['unshare', '-m', 'true'], stderr=subprocess.DEVNULL).returncode != 0:
        skip_all('unshare -m does not work here')


def _run(args, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, **kw)
    if p.returncode != 0:
        raise RuntimeError('%s failed: %s' % (' '.join(args), p.stdout.decode('latin-1')))
    return p


_CA_CNF = '''[ ca ]
default_ca = tca
[ tca ]
dir = %(dir)s
database = %(dir)s/index.txt
new_certs_dir = %(dir)s/new
serial = %(dir)s/serial
default_md = sha256
policy = pany
unique_subject = no
email_in_dn = no
[ pany ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = @alt
[ alt ]
DNS.1 = %(san)s
'''


class _CA:
    def __init__(self, d, cn):
        self.dir = d
        os.makedirs(os.path.join(d, 'new'), exist_ok=True)
        write_file(os.path.join(d, 'index.txt'), '')
        write_file(os.path.join(d, 'serial'), '1000\n')
        self.key = os.path.join(d, 'ca.key')
        self.crt = os.path.join(d, 'ca.crt')
        _run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
              '-nodes', '-keyout', self.key, '-out', self.crt, '-days', '30', '-subj',
              '/CN=%s' % cn, '-addext', 'basicConstraints=critical,CA:TRUE',
              '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])

    def sign(self, csr, out, san, start, end):
        cnf = write_file(os.path.join(self.dir, 'ca-%s.cnf' % os.path.basename(out)),
                         _CA_CNF % {'dir': self.dir, 'san': san})
        _run(['openssl', 'ca', '-batch', '-notext', '-config', cnf, '-cert', self.crt,
              '-keyfile', self.key, '-in', csr, '-out', out, '-startdate', start,
              '-enddate', end, '-extensions', 'leaf'])


def _gmt(offset_days):
    return time.strftime('%Y%m%d%H%M%SZ', time.gmtime(time.time() + offset_days * 86400))


class Pki:
    def __init__(self, name='pki'):
        self.dir = os.path.join(testdir(), name)
        os.makedirs(self.dir, exist_ok=True)
        self._ca = _CA(os.path.join(self.dir, 'ca'), 'Portcullis test origin CA')
        self.ca = self._ca.crt
        self._rogue = None

    def issue(self, name, kind='good', san=None):
        san = san or name
        key = os.path.join(self.dir, '%s-%s.key' % (name, kind))
        crt = os.path.join(self.dir, '%s-%s.crt' % (name, kind))
        csr = os.path.join(self.dir, '%s-%s.csr' % (name, kind))
        if kind == 'selfsigned':
            _run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                  'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days',
                  '10', '-subj', '/CN=%s' % san, '-addext', 'subjectAltName=DNS:%s' % san])
            return crt, key
        _run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
              '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=%s' % san])
        ca = self._ca
        start, end = _gmt(-1), _gmt(10)
        if kind == 'expired':
            start, end = _gmt(-20), _gmt(-10)
        elif kind == 'unknownca':
            if self._rogue is None:
                self._rogue = _CA(os.path.join(self.dir, 'rogue'), 'Nobody trusts this CA')
            ca = self._rogue
        elif kind != 'good':
            raise ValueError(kind)
        ca.sign(csr, crt, san, start, end)
        return crt, key


def portcullis_ca(dirname='ca'):
    d = os.path.join(testdir(), dirname)
    _run([portcullis_binary(), 'ca', 'init', '-d', d])
    return d


class TLSOrigin(Origin):
    """pctest.Origin speaking TLS (see the module documentation)."""

    def __init__(self, cert, key, name, handler=None, **kw):
        self.name = name
        self.snis = []
        self.alpns = []
        self.resumed = []
        self.handshake_errors = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(['http/1.1'])
        ctx.sni_callback = self._on_sni
        self.ctx = ctx
        body = ('hello from %s\n' % name).encode()
        super().__init__(handler or (lambda req: Response(
            headers=[('Content-Type', 'text/plain')], body=body)), **kw)

    def _on_sni(self, sslobj, server_name, ctx):
        self.snis.append(server_name)

    def https_url(self, path='/'):
        return 'https://%s:%d%s' % (self.name, self.port, path)

    def _serve(self, s, conn_no):
        s.settimeout(self.timeout)
        try:
            t = self.ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.handshake_errors.append(str(e))
            try:
                s.close()
            except OSError:
                pass
            return
        self.alpns.append(t.selected_alpn_protocol())
        self.resumed.append(t.session_reused)
        with self._mu:
            self._socks.discard(s)
            self._socks.add(t)
        super()._serve(t, conn_no)


def hosts_binary(names, real=None):
    """A wrapper that runs the daemon (same pid: unshare and sh exec) in a
    mount namespace where /etc/hosts maps every name to 127.0.0.1."""
    hosts = write_file('ns/hosts', '127.0.0.1 localhost\n::1 localhost\n' +
                       ''.join('127.0.0.1 %s\n' % n for n in names))
    real = real or portcullis_binary()
    return write_file('ns/portcullis', '#!/bin/sh\nexec unshare -m sh -c \'mount --bind %s '
                      '/etc/hosts && exec $PCTEST_DAEMON_PREFIX "$0" "$@"\' %s "$@"\n'
                      % (hosts, real), mode=0o755)


def conf(extra='', ca_dir=None, upstream_ca=None, level='info'):
    return '''
listen 127.0.0.1:%%PORT%%
allow_clients 127.0.0.0/8
allow_local_upstreams on
error_log %%TESTDIR%%/error.log ''' + level + '''
access_log %%TESTDIR%%/access.log squid
access_log %%TESTDIR%%/access.json json
workers 1
intercept on
''' + ('ca_dir %s\n' % ca_dir if ca_dir else '') + \
        ('upstream_ca_file %s\n' % upstream_ca if upstream_ca else '') + extra


def s_client(proxy_port, host, port, servername=None, args=(), input=b'', timeout=20):
    cmd = ['openssl', 's_client', '-proxy', '127.0.0.1:%d' % proxy_port, '-connect',
           '%s:%d' % (host, port), '-showcerts']
    if servername is not None:
        cmd += ['-servername', servername]
    else:
        cmd += ['-noservername']
    cmd += list(args)
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode('latin-1')


def first_cert(out):
    b = out.find('-----BEGIN CERTIFICATE-----')
    e = out.find('-----END CERTIFICATE-----', b)
    if b < 0 or e < 0:
        return None
    return out[b:e + len('-----END CERTIFICATE-----')] + '\n'


def verify_leaf(pem, cafile, host):
    path = write_file('leaf-%s-%d.pem' % (host, int(time.time() * 1000)), pem)
    p = subprocess.run(['openssl', 'verify', '-purpose', 'sslserver', '-verify_hostname', host,
                        '-CAfile', cafile, path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return p.returncode, p.stdout.decode('latin-1')


def curl_https(port, url, cacert, *args, timeout=30):
    return curl_via(port, url, '--cacert', cacert, *args, timeout=timeout)


def json_log(d):
    path = os.path.join(testdir(), 'access.json')
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def find_entry(d, method, url, timeout=5):
    """The last JSON access log entry of method and url (waits for it)."""
    def look():
        found = [e for e in json_log(d) if e.get('method') == method and e.get('url') == url]
        return found[-1] if found else None
    return wait_until(look, timeout)
