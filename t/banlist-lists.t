#!/usr/bin/env python3
# banlist-lists.t - the banlist's static lists: each list type, its exception, reload and -t errors.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from banlisttest import conf, get, plugin_dir

set_timeout(60)


def handler(req):
    p = req.path
    if p.startswith('/cd/'):
        # /cd/NAME: an innocent URL (no dot in it: '!' stands for '.'),
        # the file name in Content-Disposition.
        name = p[4:].replace('!', '.')
        if name.startswith('star-'):
            disp = "attachment; filename=\"harmless.txt\"; filename*=UTF-8''%s" % name[5:]
        else:
            disp = 'attachment; filename="%s"' % name
        return Response(headers=[('Content-Type', 'application/octet-stream'),
                                 ('Content-Disposition', disp)], body=b'data\n')
    if p.startswith('/mime/'):
        # /mime/TYPE/SUBTYPE[/file]: served with that Content-Type.
        parts = p.split('/')
        return Response(headers=[('Content-Type', '%s/%s; charset=binary' % (parts[2], parts[3]))],
                        body=b'data\n')
    return Response(headers=[('Content-Type', 'text/plain')], body=b'ok ' + p.encode() + b'\n')


origin = Origin(handler)
# Site bans by address: an origin on an address of its own.
origin5 = Origin(handler, host='127.0.0.5')
origin6 = Origin(handler, host='127.0.0.6')

write_file('lists/clients', '''# banned clients
127.0.0.2
127.0.0.3            # also an exception: the exception wins
10.0.0.0/8
192.168.5.10-192.168.5.20
''')
write_file('lists/exc-clients', '127.0.0.3\n')
write_file('lists/sites', '''banned.test
.dotted.test
BIG.Test.
bücher.test
127.0.0.4/30
''')
write_file('lists/exc-sites', 'good.banned.test\n127.0.0.6\n')
write_file('lists/urls', r'''# regexes: '#' inside a pattern is kept
/private/.*\.zip$
/page(?: #|/)frag$
''')
write_file('lists/exc-urls', r'''^http://127\.0\.0\.1:[0-9]+/private/allowed/
''')
write_file('lists/ua', 'BadBot\n^curl/0\\.1\n')
write_file('lists/ext', 'exe\n.scr\n*.js\n')
write_file('lists/exc-ext', 'pdf\n')
write_file('lists/mime', 'application/x-msdownload\nvideo/*\napplication/octet-stream\n')
write_file('lists/exc-mime', 'video/mp4\n')

BLOCK = '''
plugin banlist {
    ban_clients          lists/clients
    exception_clients    lists/exc-clients
    ban_sites            lists/sites
    exception_sites      lists/exc-sites
    ban_urls             lists/urls
    exception_urls       lists/exc-urls
    ban_useragents       lists/ua
    ban_extensions       lists/ext
    exception_extensions lists/exc-ext
    ban_mimetypes        lists/mime
    exception_mimetypes  lists/exc-mime
}
'''
d = Daemon(conf(BLOCK)).start()
base = origin.url('').rstrip('/')


def blocked(r, reason, name):
    ok(r.status == 403 and r.header('X-Portcullis-Block', '').startswith('banlist; ' + reason),
       name) or diag(repr(r), r.headers)


def passed(r, name, status=200):
    ok(r.status == status and r.header('X-Portcullis-Block') is None, name) or diag(repr(r))


# -- clients
r = get(d.port, base + '/a.txt', '127.0.0.2')
blocked(r, 'your address is on the ban list', 'ban_clients: a listed client gets the block page')
like(r.body, r'<dt>Category</dt><dd>banned client</dd>', 'ban_clients: the page says why')
unlike(r.body, r'Banned until', 'ban_clients: a static ban has no end date on the page')
r = get(d.port, 'https://example.test/', '127.0.0.2')
is_(r.connect_status, 403, 'ban_clients: CONNECT refused')
passed(get(d.port, base + '/a.txt', '127.0.0.3'), 'exception_clients wins over ban_clients')
passed(get(d.port, base + '/dl/invoice.pdf.exe', '127.0.0.3'),
       'exception_clients lifts the content rules too')
passed(get(d.port, base + '/a.txt', '127.0.0.4'), 'an unlisted client passes')

# -- sites
blocked(get(d.port, 'http://banned.test/'), 'banned site: banned.test', 'ban_sites: the domain')
blocked(get(d.port, 'http://www.a.banned.test/x'), 'banned site: banned.test',
        'ban_sites: a subdomain')
blocked(get(d.port, 'http://dotted.test/'), 'banned site: dotted.test', 'ban_sites: ".dotted.test"')
blocked(get(d.port, 'http://BIG.TEST./'), 'banned site: big.test', 'ban_sites: case and trailing dot')
blocked(get(d.port, 'http://xn--bcher-kva.test/'), 'banned site: xn--bcher-kva.test',
        'ban_sites: an IDN entry matches its A-label')
blocked(get(d.port, origin5.url('/a.txt')), 'banned site: 127.0.0.5', 'ban_sites: a CIDR entry')
r = get(d.port, 'https://www.banned.test/')
is_(r.connect_status, 403, 'ban_sites: CONNECT to a banned site refused')
passed(get(d.port, origin6.url('/a.txt')), 'exception_sites wins over a CIDR in ban_sites')
r = get(d.port, 'http://good.banned.test/')
ok(r.header('X-Portcullis-Block') is None and r.status != 403,
   'exception_sites: a subdomain excepted (reaches DNS)') or diag(repr(r))
r = get(d.port, 'http://notbanned.test/')
ok(r.header('X-Portcullis-Block') is None, 'ban_sites: only at a label boundary') or diag(repr(r))

# -- URL patterns
blocked(get(d.port, base + '/private/data.ZIP'), 'banned URL', 'ban_urls: a PCRE2 pattern, any case')
blocked(get(d.port, base + '/page/frag'), 'banned URL',
        "ban_urls: '#' inside a pattern is no comment")
passed(get(d.port, base + '/private/allowed/data.zip'), 'exception_urls wins over ban_urls')
passed(get(d.port, base + '/public/data.zip'), 'ban_urls: other URLs pass')
ok(d.wait_for_log('error', r'matches the banned pattern at .*lists/urls:2'),
   'ban_urls: the log names the pattern')

# -- user agents
blocked(get(d.port, base + '/a.txt', None, '-A', 'Mozilla/5.0 badbot/2'), 'banned user agent',
        'ban_useragents: a pattern, any case')
r = get(d.port, 'https://example.test/', None, '-A', 'BadBot', '--proxy-header', 'User-Agent: BadBot')
is_(r.connect_status, 403, 'ban_useragents: CONNECT with a banned agent refused')
passed(get(d.port, base + '/a.txt', None, '-A', 'Mozilla/5.0'), 'ban_useragents: others pass')

# -- extensions in the URL path
blocked(get(d.port, base + '/dl/setup.EXE'), 'banned file type: .exe (setup.EXE)', 'ban_extensions: .exe')
blocked(get(d.port, base + '/dl/invoice.pdf.exe'), 'banned file type: .exe (invoice.pdf.exe)',
        'ban_extensions: double extension invoice.pdf.exe (pdf excepted)')
blocked(get(d.port, base + '/dl/invoice.pdf%2Eexe?x=1.txt'), 'banned file type: .exe',
        'ban_extensions: an escaped dot and a query do not hide it')
blocked(get(d.port, base + '/dl/screen.scr'), 'banned file type: .scr', 'ban_extensions: entry ".scr"')
blocked(get(d.port, base + '/dl/app.min.js'), 'banned file type: .js', 'ban_extensions: entry "*.js"')
passed(get(d.port, base + '/dl/report.pdf'), 'ban_extensions: other extensions pass')

# -- Content-Disposition
blocked(get(d.port, base + '/cd/invoice!pdf!exe'), 'banned file type: .exe (invoice.pdf.exe)',
        'Content-Disposition: the file name is checked (double extension)')
ok(any(q.path == '/cd/invoice!pdf!exe' for q in origin.requests),
   'Content-Disposition: decided on the response (the origin was asked)')
blocked(get(d.port, base + '/cd/star-payload!scr'), 'banned file type: .scr (payload.scr)',
        'Content-Disposition: filename* is checked too')
passed(get(d.port, base + '/cd/report!pdf'),
       'Content-Disposition: an excepted extension passes a banned MIME type')

# -- MIME types
blocked(get(d.port, base + '/mime/application/x-msdownload'),
        'banned MIME type: application/x-msdownload', 'ban_mimetypes: a type')
blocked(get(d.port, base + '/mime/video/webm'), 'banned MIME type: video/webm',
        'ban_mimetypes: a whole type (video/*)')
passed(get(d.port, base + '/mime/video/mp4'), 'exception_mimetypes wins over video/*')
blocked(get(d.port, base + '/mime/application/octet-stream/data.bin'),
        'banned MIME type: application/octet-stream', 'ban_mimetypes: octet-stream')
passed(get(d.port, base + '/mime/application/octet-stream/report.pdf'),
       'exception_extensions: the URL\'s .pdf passes a banned MIME type')
ok(any(q.path == '/mime/application/x-msdownload' for q in origin.requests),
   'a MIME ban is decided on the response (the origin was asked)')

# -- reload: new entries apply, a bad list changes nothing
write_file('lists/sites', 'banned.test\nnewly.test\n')
like(d.reload(), r'configuration reloaded', 'reload with a new site list')
blocked(get(d.port, 'http://newly.test/'), 'banned site: newly.test', 'reload: a new entry is banned')
passed(get(d.port, origin5.url('/a.txt')), 'reload: a removed entry is no longer banned')
write_file('lists/sites', 'banned.test\nbad..entry\n')
line = d.reload()
like(line, r'reload failed', 'reload with a bad line fails')
ok(d.wait_for_log('error', r'lists/sites:2: invalid site \'bad\.\.entry\': empty label'),
   'reload: the error log names FILE:LINE of the bad entry')
blocked(get(d.port, 'http://newly.test/'), 'banned site: newly.test',
        'reload: after a failed reload the old lists still apply')

# -- exception_verdict: allow also skips the plugins after banlist
for verdict, name in (('allow', 'exception_verdict allow: the next plugin is skipped'),
                      ('continue', 'exception_verdict continue: the next plugin decides')):
    e = Daemon(conf('''
plugin banlist {
    exception_sites   lists/exc-sites
    exception_verdict %s
}
plugin example {
    block_host  *.banned.test
    reason      "example says no"
}
''' % verdict, plugins=('example',), name='verdict-' + verdict), name='verdict-' + verdict).start()
    r = get(e.port, 'http://good.banned.test/')
    if verdict == 'allow':
        ok(r.header('X-Portcullis-Block') is None, name) or diag(repr(r), r.headers)
    else:
        is_(r.header('X-Portcullis-Block'), 'example; example says no', name)
    is_(get(e.port, 'http://bad.banned.test/').header('X-Portcullis-Block'),
        'example; example says no', 'exception_verdict %s: without an exception the next '
        'plugin runs' % verdict)
    ok(e.stop(), 'stop (%s)' % verdict)

# -- portcullis -t
rc, out = d.run_check()
is_(rc, 1, '-t: a bad list line fails the check')
like(out, r'lists/sites:2: invalid site', '-t: FILE:LINE of the list in the message')
write_file('lists/sites', 'banned.test\n')
rc, out = Daemon(conf('''
plugin banlist {
    ban_sites lists/sites
    auto_ban  av.infected 20 1h
}''', name='bad'), name='bad').run_check()
is_(rc, 1, '-t: a bad auto_ban fails the check')
like(out, r'bad\.conf:\d+: .*count 20 needs a window', '-t: config FILE:LINE and the reason')
rc, out = Daemon(conf('''
plugin banlist {
    ban_extensions lists/missing
}''', name='bad2'), name='bad2').run_check()
like(out, r'ban_extensions .*lists/missing: cannot open: No such file', '-t: a missing list is named')
write_file('lists/skip', 'ok.test\nbad..one\nalso-ok.test\n')
rc, out = Daemon(conf('''
plugin banlist {
    ban_sites   lists/skip
    list_errors skip
}''', name='skip'), name='skip').run_check()
is_(rc, 0, '-t: list_errors skip passes a list with a bad line')
like(out, r'lists/skip:2: invalid site .* \(line skipped\)', 'list_errors skip: the line is reported')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
