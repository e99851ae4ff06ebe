#!/usr/bin/env python3
# avscan-https.t - HTTPS: a spliced tunnel is opaque (nothing to scan); over intercepted HTTPS a download is scanned like HTTP and EICAR gets the block page naming the virus.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *
import httpstest

need_avscan()
set_timeout(60)

origin = Origin(lambda req: Response(headers=[('Content-Type', 'application/octet-stream')], body=EICAR))
d = Daemon(conf('database %s' % db_dir(), extra='connect_ports 443 %d' % origin.port)).start()

# Without interception a CONNECT tunnel carries encrypted bytes the proxy
# cannot read: avscan neither sees nor breaks them. (Plain HTTP inside the
# tunnel shows it: the bytes pass as they are.)
r = curl_via(d.port, origin.url('/eicar.com'), '--proxytunnel')
ok(r.connect_status == 200 and r.status == 200 and r.body == EICAR,
   'a CONNECT tunnel is not scanned (opaque without interception)')
r = curl_via(d.port, origin.url('/eicar.com'))
is_(r.status, 403, 'the same file as a plain HTTP download: blocked')

# Intercepted (the core's local CA, a TLS origin with a certificate of
# the test's CA): the download is scanned like a plain one.
if os.geteuid() != 0:
    skip('needs root for a mount namespace with the test host name (unshare -m)', 7)
else:
    pki = httpstest.Pki()
    crt, key = pki.issue('files.test')
    tls = httpstest.TLSOrigin(crt, key, 'files.test', lambda req: Response(
        headers=[('Content-Type', 'application/octet-stream')],
        body=EICAR if 'eicar' in req.path else b'a clean file\n'))
    ca_dir = httpstest.portcullis_ca()
    cacrt = os.path.join(ca_dir, 'ca.crt')
    d2 = Daemon(conf('database %s' % db_dir(), extra='''connect_ports 443 %d
intercept on
ca_dir %s
upstream_ca_file %s
''' % (tls.port, ca_dir, pki.ca)), name='intercepting',
                binary=httpstest.hosts_binary(['files.test'])).start()
    r = curl_via(d2.port, tls.https_url('/clean.bin'), '--cacert', cacrt)
    ok(r.status == 200 and r.body == b'a clean file\n', 'intercepted HTTPS: a clean file '
       'passes')
    r = curl_via(d2.port, tls.https_url('/eicar.com'), '--cacert', cacrt)
    is_(r.status, 403, 'intercepted HTTPS: EICAR gets the block page')
    like(r.header('X-Portcullis-Block') or '', r'^avscan; .*Eicar', '... naming the virus')
    unlike(r.body, re.escape(EICAR), '... and never the file')
    ok(d2.stop(), 'intercepting daemon: graceful stop')
    d2.check_logs()

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
