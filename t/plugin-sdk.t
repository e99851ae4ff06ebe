#!/usr/bin/env python3
# plugin-sdk.t - the installed SDK: plugins built out of tree with pkg-config only, and the guide's code, loaded and working.
import os
import re
import shutil
import subprocess
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from pctest import *
from plugintest import *

require_programs('make', 'cc', 'pkg-config', 'nm')
need_plugins('fakescan')
set_timeout(120)

top, build = top_srcdir(), top_builddir()
if not os.path.exists(os.path.join(build, 'Makefile')):
    skip_all('needs a configured build tree (%s)' % build)

# ---- make install DESTDIR ---------------------------------------------------------

dest = os.path.join(testdir(), 'dest')
env = {k: v for k, v in os.environ.items() if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')}
p = subprocess.run(['make', '-s', '-C', build, 'install', 'DESTDIR=' + dest], env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
if not ok(p.returncode == 0, 'make install DESTDIR=... succeeds'):
    diag(p.stdout.decode('utf-8', 'replace')[-3000:])
    bail_out('make install failed')

pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == 'portcullis-plugin.pc']
headers = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == 'plugin.h']
is_(len(pcs), 1, 'portcullis-plugin.pc is installed')
is_(len(headers), 1, 'the SDK header is installed')
prefix = re.search(r'^prefix=(.*)$', open(pcs[0]).read(), re.M).group(1)
penv = dict(env, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))


def pkgconfig(*args):
    r = subprocess.run(['pkg-config', '--define-variable=prefix=' + dest + prefix] + list(args)
                       + ['portcullis-plugin'], env=penv, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout.decode().strip()


rc, cflags = pkgconfig('--cflags')
is_(rc, 0, 'pkg-config --cflags portcullis-plugin')
is_(cflags, '-I' + os.path.dirname(os.path.dirname(headers[0])),
    'the flags point at the installed header, nothing else')
rc, plugindir = pkgconfig('--variable=plugindir')
ok(rc == 0 and plugindir.startswith(dest) and os.path.isdir(plugindir),
   'pkg-config --variable=plugindir names the installed plugin directory')
ok(os.path.exists(os.path.join(plugindir, 'example.so')), 'the bundled plugins are installed there')

# ---- out of tree: cc -shared -fPIC $(pkg-config --cflags portcullis-plugin) ----------

work = os.path.join(testdir(), 'oot')
plugins = os.path.join(testdir(), 'plugins')
os.makedirs(work)
os.makedirs(plugins)


def build_plugin(name, source_text, extra=()):
    """Builds NAME.so in work/ from source_text with the guide's command;
    returns (rc, output)."""
    src = os.path.join(work, name + '.c')
    with open(src, 'w') as f:
        f.write(source_text)
    cmd = 'cc -shared -fPIC %s %s -o %s.so %s.c' % (cflags, ' '.join(extra), name, name)
    r = subprocess.run(cmd, shell=True, cwd=work, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if r.returncode == 0:
        shutil.copy(os.path.join(work, name + '.so'), os.path.join(plugins, name + '.so'))
    return r.returncode, r.stdout.decode('utf-8', 'replace')


rc, out = build_plugin('example', open(os.path.join(top, 'plugins', 'example', 'example.c')).read(),
                       ['-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter'])
ok(rc == 0, 'plugins/example/example.c builds out of tree with pkg-config only') or diag(out)
syms = subprocess.run(['nm', '-D', '--defined-only', os.path.join(work, 'example.so')],
                      stdout=subprocess.PIPE).stdout.decode()
like(syms, r'\bportcullis_plugin_abi_1\b', 'it exports the entry function')

# ---- the guide's code ------------------------------------------------------------------

guide = open(os.path.join(top, 'docs', 'plugin-guide.md')).read()
files, cur = {}, None
for m in re.finditer(r'^```c\n(.*?)^```', guide, re.S | re.M):
    code = m.group(1)
    h = re.match(r'/\* (\w+)\.c - ', code)
    if h:
        cur = h.group(1)
        files[cur] = ''
    if cur is None:
        ok(False, 'a C block of the guide comes before any /* NAME.c - */ header')
        continue
    files[cur] += code
is_(sorted(files), ['hello', 'lookup', 'scan'], 'the guide has three plugins')
for name, text in sorted(files.items()):
    rc, out = build_plugin(name, text, ['-Wall', '-Werror', '-pthread'])
    ok(rc == 0, 'docs/plugin-guide.md: %s.c builds with the documented command' % name) or diag(out)

shutil.copy(plugin_path('fakescan'), os.path.join(plugins, 'fakescan.so'))

# ---- loaded by the daemon ----------------------------------------------------------------

example_conf = open(os.path.join(top, 'plugins', 'example', 'example.conf')).read()
greeting = 'hi from the proxy'


def handler(req):
    if req.path == '/virus':
        return Response(body=b'some bytes FAKE-VIRUS more bytes\n')
    return Response(headers=[('X-Seen-Hello', req.header('X-Hello', '-'))], body=b'hello\n')


origin = Origin(handler)
d = Daemon(conf(example_conf + '''
plugin hello {
    greeting    "%s"
    block_path  /private /admin
}
plugin lookup {
    deny     denied.test
    timeout  2s
}
plugin fakescan {
}
plugin scan {
    max          10M
    fail_closed  on
}
''' % greeting, plugin_dir=plugins))
rc, out = d.run_check()
is_(rc, 0, 'portcullis -t accepts the configuration') or diag(out)
like(out, r'test is successful', '... and says so')
up(d)
log = d.error_log()
like(log, r'plugin example 1\.0 started \(%s, ABI 1\.0\)' % re.escape(os.path.join(plugins, 'example.so')),
     'the out-of-tree example plugin is the one loaded')
like(log, r"hello: ready, greeting '%s'" % greeting, "hello's init() logged as the guide says")

r = curl_via(d.port, 'http://ads.example.org/')
is_((r.status, r.header('X-Portcullis-Block')), (403, 'example; not allowed on this network'),
    'example: a matching host gets the block page with X-Portcullis-Block')
like(r.body, r'not allowed on this network', 'example: the reason on the page')
r = curl_via(d.port, origin.url('/ua'), '-A', 'Mozilla BadBot 1.0')
is_(r.status, 403, 'example: a matching header is blocked')

r = curl_via(d.port, origin.url('/ok'))
is_((r.status, r.header('X-Seen-Hello')), (200, greeting), 'hello: the origin got X-Hello')
r = curl_via(d.port, origin.url('/private/x'))
is_((r.status, r.header('X-Portcullis-Block')), (403, 'hello; /private is closed'),
    'hello: a blocked path, as the guide shows')
r = curl_via(d.port, 'http://denied.test/')
is_((r.status, r.header('X-Portcullis-Block')), (403, 'lookup; refused by the lookup'),
    'lookup: the thread answered with a block')
r = curl_via(d.port, origin.url('/virus'))
is_((r.status, r.header('X-Portcullis-Block')), (403, 'scan; virus found: Fake.Test.Virus'),
    'scan: the held download was scanned and blocked')
ok(d.wait_for_log('error', r'\[notice\] .*scan: 127\.0\.0\.1 fetched Fake\.Test\.Virus \(%s\)'
                  % re.escape(origin.url('/virus'))), 'scan: its av.infected subscriber ran')
ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
