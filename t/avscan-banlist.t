#!/usr/bin/env python3
# avscan-banlist.t - an infected download publishes av.infected, and banlist's auto_ban cuts the client off at once.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'avscan-plugins')]
from pctest import *
from avscantest import *

need_avscan()
BANLIST = os.path.join(top_builddir(), 'plugins', 'banlist', 'banlist.so')
if not os.path.exists(BANLIST):
    skip_all('plugins/banlist not built')
set_timeout(60)
pdir = plugin_dir()
if not os.path.exists(os.path.join(pdir, 'banlist.so')):
    os.symlink(BANLIST, os.path.join(pdir, 'banlist.so'))

origin = Origin(lambda req: Response(headers=[('Content-Type', 'application/octet-stream')],
                                     body=EICAR if req.path == '/eicar.com' else b'clean\n'))
d = Daemon(conf('database %s' % db_dir()) + '''
plugin banlist {
    auto_ban av.infected 1 1h "infected download: machine quarantined"
}
''').start()
r = curl_via(d.port, origin.url('/clean.txt'))
is_(r.status, 200, 'before: a clean download passes')
r = curl_via(d.port, origin.url('/eicar.com'))
is_(r.header('X-Portcullis-Block'), 'avscan; virus found: Eicar-Test-Signature.UNOFFICIAL',
    'an infected download is blocked by avscan')


def banned():
    r = curl_via(d.port, origin.url('/clean.txt'))
    return r if r.status == 403 else None


r = wait_until(banned, 5)
ok(r is not None, 'after: the client is cut off, even for clean pages')
like(r.header('X-Portcullis-Block') if r else '', r'^banlist; infected download: machine quarantined',
     'by banlist, with the reason of its auto_ban rule')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
