"""pctest - the integration-test harness of Portcullis (stdlib only).

Every t/*.t file is a Python 3 script that prints TAP through this module,
in the manner of nginx-tests and git's test-lib: one file per feature; each
test file gets its own temporary directory, free loopback ports, its own
daemon and its own stub origins. The directory is removed when every test
point passed and kept otherwise (its path is printed as a TAP diagnostic);
PCTEST_KEEP=1 keeps it always.

Writing a test
--------------
Name the file after the feature (t/connect_ports.t), make it executable,
add it to the TESTS and EXTRA_DIST lists in t/Makefile.inc, and run it with
`make check TESTS=t/connect_ports.t` (output in t/connect_ports.log) or
directly with `python3 t/connect_ports.t` in a built tree. A typical test:

    #!/usr/bin/env python3
    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
    from pctest import *

    origin = Origin(lambda req: Response(body=b'hi\\n', headers=[('X-Up', '1')]))
    d = Daemon('''
        listen 127.0.0.1:%%PORT%%
        allow_clients 127.0.0.0/8
        allow_local_upstreams on
        error_log %%TESTDIR%%/error.log info
        access_log %%TESTDIR%%/access.log squid
    ''').start()
    r = curl_via(d.port, origin.url('/a'))
    is_(r.status, 200, 'GET through the proxy')
    is_(r.body, b'hi\\n', 'body from the origin')
    like(origin.requests[0].header('Via'), r'portcullis', 'Via added')
    ok(d.stop(), 'graceful stop'); d.check_logs(); done_testing()

Rules of thumb: assert what a user sees (status, body, header, log line);
bound every wait (all helpers take a timeout); end with d.stop() and
d.check_logs(), which add two test points: no [alert]/[crit]/[emerg] line in
the error log and no sanitizer report on the daemon's stderr.

TAP
---
plan(n), ok(cond, name), is_(got, exp, name), isnt(got, exp, name),
like(text, regex, name), unlike(text, regex, name), diag(*lines),
skip(reason, count=1), skip_all(reason), bail_out(reason), done_testing(n=None).
Each returns whether the point passed. The exit status is 0 only when every
point passed and the plan was met. A script that ends without plan() or
done_testing() fails; an uncaught exception becomes a "not ok" with the
traceback as diagnostics; PCTEST_TIMEOUT (seconds, default 300, or
set_timeout()) turns a hang into such an exception.

Processes and files
-------------------
testdir() -> path; write_file(name, data, mode=None) -> path;
free_port(host='127.0.0.1') -> int; wait_until(pred, timeout=5) -> value|None;
require_programs(*names) (skip_all when one is missing); have_ipv6().

Daemon(conf, name='portcullis', extra_args=(), binary=None, subst=None)
    conf is a template: %%TESTDIR%%, %%PORT%% (d.port) and %%PORT_x%%
    (d.ports['x']) are filled in, and %%KEY%% for every key of subst. It is
    written to TESTDIR/<name>.conf (d.conf_path) at once, so ports are known
    before start(). Methods: start(timeout=10) -> self; stop(timeout=10) ->
    bool (exited 0 in time); reload(regex=..., timeout=10) -> matching error
    log line | None; reopen_logs(); signal(sig); write_conf(template) (same
    ports, for reload tests); run_check() -> (rc, output); error_log() -> str;
    access_log() -> [lines]; stderr() -> str; log_mark(kind) -> offset;
    wait_for_log(kind, regex, timeout=5, since=0) -> line | None with kind
    'error', 'access' or 'stderr'; check_logs(). What the kernel says of
    the running daemon: rss_kib() (VmRSS), cpu_seconds() (user + system),
    open_fds(), connections_to(port, host='127.0.0.1') (its established
    TCP connections to host:port: upstream connections still open).
    Attributes: port, ports, pid, proc, returncode, conf_path,
    error_log_path, access_log_path.
    Log paths come from the first error_log/access_log directive of the
    config (relative to its directory), default TESTDIR/error.log and
    TESTDIR/access.log.
run_check(conf_path, binary=None, timeout=30) -> (rc, stdout+stderr).
sanitizer_build(binary=None) -> True when the daemon binary was built with a
    sanitizer (--enable-asan, or TSan by hand): memory bounds that hold
    without a sanitizer's shadow memory and quarantine are skipped then.

Environment
-----------
PCTEST_WORKERS=N adds "workers N" to every daemon config that does not set
    workers itself (e.g. PCTEST_WORKERS=4 make check: the whole suite with
    four loops). A test that depends on one loop (the idle upstream pool
    and the DNS cache are per worker) says "workers 1" in its config.
PCTEST_VALGRIND=1 runs each daemon under valgrind memcheck
    (--error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --track-fds=no --suppressions=t/valgrind.supp); start and stop wait
    VALGRIND_SLOWDOWN (10) times longer, PCTEST_TIMEOUT defaults to 1800,
    and check_logs() also fails on a valgrind report;
    PCTEST_VALGRIND_ARGS adds options (--track-origins=yes
    --gen-suppressions=all to investigate a report). Only a plain build
    (valgrind cannot run an --enable-asan binary) and only the daemon
    binary itself (a Daemon with binary= a wrapper script runs without
    valgrind unless it execs the daemon as `exec $PCTEST_DAEMON_PREFIX
    "$real" "$@"`, with a diagnostic). See README.md, "Tests".

Stub origin
-----------
Origin(handler=None, host='127.0.0.1', send_continue=True, on_headers=None,
       keep_bodies=True, timeout=10)
    A threaded HTTP/1.1 server on raw sockets. It reads pipelined keep-alive
    requests with Content-Length or chunked bodies and answers
    "Expect: 100-continue" with "HTTP/1.1 100 Continue" before reading the
    body (send_continue=False turns that off; on_headers(req) may return a
    final answer before the body is read, after which the connection closes).
    origin.requests: Request objects (method, target, version, headers as
    [(name, value)] in wire order and case, header(name), headers_all(name),
    body, body_len, trailers, chunked, raw (the head bytes), conn (1-based
    connection number), index (request number on that connection));
    origin.connections; origin.errors (handler exceptions); port; host;
    authority; url(path='/'); wait_requests(n, timeout=5); stop().
    handler(req) returns:
      Response(status=200, reason=None, headers=(), body=b'', chunked=False,
               close=False, delay=0.0, length=None, interim=(),
               body_iter=None, abort_after=None, trailers=())
          length overrides Content-Length, or 'none' sends no length and
          closes; body_iter yields bytes or (bytes, delay_before) items;
          abort_after sends that many body bytes, then resets (RST).
          A body_iter without chunked or length is close-delimited.
      bytes or Raw(data, close=True): written as they are.
      a callable f(sock, req): full control; return True to keep the
          connection for the next request.
    The default handler answers 200, text/plain, b"hello from origin\\n".

Clients
-------
raw_request(port, data, timeout=5, read_until_close=True, host='127.0.0.1',
            source=None, head=False) -> bytes
    Sends data (bytes or str); returns everything received until the peer
    closed or the timeout passed; with read_until_close=False it returns as
    soon as one final response is complete. source binds the client side
    (an address string or an (address, port) tuple).
RawClient(port, host='127.0.0.1', timeout=5, source=None): send(data),
    recv(n=65536, timeout=None) -> bytes (b'' at EOF, None on timeout),
    recv_until(marker, timeout=None), recv_response(head=False,
    skip_interim=True, timeout=None) -> HTTPResponse | None, recv_all(),
    wait_closed(timeout=None) -> bool, shutdown_write(), close(); a context
    manager.
parse_response(data, head=False) -> HTTPResponse (the first final response;
    1xx ones in .interim); parse_responses(data) -> [HTTPResponse].
    HTTPResponse: version, status, reason, headers, header(name),
    headers_all(name), body (de-chunked), trailers, chunked, raw, interim,
    complete (False when the body was cut short).
curl(*args, timeout=30, input=None) -> (rc, stdout bytes, stderr text)
    Runs curl -q --silent --show-error ARGS with the *_proxy variables
    removed from its environment and, unless ARGS name a proxy (-x,
    --proxy), --noproxy '*'. On timeout rc is 124.
curl_via(proxy_port, url, *args, timeout=30, proxy_host='127.0.0.1')
        -> CurlResult
    Adds -x http://PROXY_HOST:PORT, dumps the response headers to a file in
    the test directory and appends the status codes to stdout with -w after
    a marker, then splits them off again. CurlResult: rc, status (int
    %{http_code}, 0 when no response), connect_status (int
    %{http_connect}, the proxy's answer to CONNECT), body (bytes; empty with
    -o), stderr, headers (the last response's [(name, value)]), header(name),
    header_blocks (every response head, CONNECT and 1xx included). Do not
    pass -w or -D to curl_via; use curl() for that.
"""

import atexit
import hashlib
import http
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

__all__ = [
    'plan', 'ok', 'is_', 'isnt', 'like', 'unlike', 'diag', 'skip', 'skip_all',
    'bail_out', 'done_testing', 'set_timeout',
    'testdir', 'write_file', 'free_port', 'wait_until', 'require_programs',
    'have_ipv6', 'top_srcdir', 'top_builddir',
    'Daemon', 'DaemonError', 'run_check',
    'Origin', 'Request', 'Response', 'Raw',
    'raw_request', 'RawClient', 'parse_response', 'parse_responses',
    'HTTPResponse', 'curl', 'curl_via', 'CurlResult', 'sanitizer_build', 'VALGRIND',
]

# ---------------------------------------------------------------------------
# TAP

_lock = threading.RLock()


class _State:
    count = 0
    failed = 0
    planned = None        # the number from plan(), or None
    plan_printed = False
    skipped_all = False
    done = False          # done_testing() was called
    crashed = False       # an uncaught exception ended the file
    finished = False


_st = _State()


def _out(line):
    with _lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


def diag(*lines):
    """Prints each line (str, or anything str() takes) as a TAP comment."""
    with _lock:
        for item in lines:
            for line in str(item).splitlines() or ['']:
                sys.stdout.write('# ' + line + '\n')
        sys.stdout.flush()


def _clean_name(name):
    # '#' would start a TAP directive, a newline a new TAP line.
    return ' '.join(str(name).split()).replace('#', '\\#')


def ok(cond, name=''):
    """One test point; returns bool(cond)."""
    cond = bool(cond)
    with _lock:
        _st.count += 1
        if not cond:
            _st.failed += 1
        line = '%s %d' % ('ok' if cond else 'not ok', _st.count)
        if name:
            line += ' - ' + _clean_name(name)
        _out(line)
        if not cond:
            frame = _caller_outside_module()
            if frame:
                diag('  Failed test at %s line %d.' % frame)
    return cond


def _caller_outside_module():
    here = os.path.abspath(__file__)
    for fs in reversed(traceback.extract_stack()):
        if os.path.abspath(fs.filename) != here:
            return (fs.filename, fs.lineno)
    return None


def _show(value, limit=2000):
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + '... (%d more characters)' % (len(text) - limit)
    return text


def is_(got, exp, name=''):
    """Passes when got == exp; shows both otherwise."""
    if ok(got == exp, name):
        return True
    diag('       got: ' + _show(got), '  expected: ' + _show(exp))
    return False


def isnt(got, exp, name=''):
    """Passes when got != exp."""
    if ok(got != exp, name):
        return True
    diag('       got: ' + _show(got), '  expected anything else')
    return False


def _as_text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('latin-1')
    return str(value)


def _search(regex, text):
    if isinstance(regex, re.Pattern):
        if isinstance(regex.pattern, bytes):
            regex = re.compile(regex.pattern.decode('latin-1'), regex.flags & ~re.ASCII)
        return regex.search(text)
    return re.search(_as_text(regex), text)


def like(text, regex, name=''):
    """Passes when re.search(regex, text) matches (bytes are read as
    latin-1; None never matches)."""
    if text is not None and _search(regex, _as_text(text)):
        return ok(True, name)
    ok(False, name)
    diag('  ' + _show(text), "  doesn't match " + _show(getattr(regex, 'pattern', regex)))
    return False


def unlike(text, regex, name=''):
    """Passes when text is None or re.search(regex, text) does not match."""
    m = _search(regex, _as_text(text)) if text is not None else None
    if ok(m is None, name):
        return True
    diag('  ' + _show(text), '  matches ' + _show(getattr(regex, 'pattern', regex)) +
         ' at ' + _show(m.group(0)))
    return False


def skip(reason, count=1):
    """Records count skipped test points."""
    with _lock:
        for _ in range(count):
            _st.count += 1
            _out('ok %d # SKIP %s' % (_st.count, _clean_name(reason)))


def plan(n):
    """Declares the number of test points; call before the first one."""
    with _lock:
        if _st.plan_printed:
            raise RuntimeError('plan() called twice')
        if _st.count:
            raise RuntimeError('plan() must come before the first test point')
        _st.planned = int(n)
        _st.plan_printed = True
        _out('1..%d' % _st.planned)


def skip_all(reason):
    """Skips the whole file (exit status 0). Only before any test point."""
    with _lock:
        if _st.count or _st.plan_printed:
            raise RuntimeError('skip_all() after the plan or a test point')
        _st.plan_printed = True
        _st.skipped_all = True
        _st.planned = 0
        _out('1..0 # SKIP %s' % _clean_name(reason))
    sys.exit(0)


def bail_out(reason):
    """Stops the whole test run (TAP "Bail out!")."""
    with _lock:
        _st.failed += 1
        _st.done = True
        _out('Bail out! %s' % _clean_name(reason))
    sys.exit(255)


def done_testing(n=None):
    """Ends the file: prints the plan when plan() was not called."""
    with _lock:
        if n is not None and n != _st.count:
            ok(False, 'done_testing(%d) but %d test points ran' % (n, _st.count))
        _st.done = True
        if not _st.plan_printed:
            _st.plan_printed = True
            _st.planned = _st.count
            _out('1..%d' % _st.count)


class TestTimeout(Exception):
    """Raised in the main thread when PCTEST_TIMEOUT passes."""


def _on_alarm(signum, frame):
    raise TestTimeout('test file still running after its time limit '
                      '(PCTEST_TIMEOUT or set_timeout()); traceback shows where')


def set_timeout(seconds):
    """Limits the run time of the rest of the file (0 turns it off)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(int(seconds))


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


def _excepthook(exc_type, exc, tb):
    if issubclass(exc_type, SystemExit):
        return
    with _lock:
        _st.crashed = True
        ok(False, 'uncaught exception: %s: %s' % (exc_type.__name__, str(exc).split('\n')[0]))
        diag(''.join(traceback.format_exception(exc_type, exc, tb)))


def _thread_excepthook(args):
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else '?'
    ok(False, 'uncaught exception in thread %s: %s' % (name, args.exc_type.__name__))
    diag(''.join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))


# ---------------------------------------------------------------------------
# Paths, directories, ports

_here = os.path.dirname(os.path.abspath(__file__))


def top_srcdir():
    """The source tree (TOP_SRCDIR, else derived from this file)."""
    return os.environ.get('TOP_SRCDIR') or os.path.dirname(os.path.dirname(_here))


def top_builddir():
    """The build tree (TOP_BUILDDIR, else the source tree)."""
    return os.environ.get('TOP_BUILDDIR') or top_srcdir()


def _default_binary():
    return os.environ.get('PORTCULLIS') or os.path.join(top_builddir(), 'core', 'portcullis')


_testdir = None


def testdir():
    """This file's temporary directory (created on first use)."""
    global _testdir
    with _lock:
        if _testdir is None:
            base = os.environ.get('PCTEST_TMPDIR') or tempfile.gettempdir()
            os.makedirs(base, exist_ok=True)
            script = os.path.basename(sys.argv[0] or 'test')
            script = re.sub(r'[^A-Za-z0-9_.-]', '_', script)
            _testdir = tempfile.mkdtemp(prefix='pctest-%s-' % script, dir=base)
        return _testdir


def write_file(name, data, mode=None):
    """Writes data (str or bytes) to name relative to testdir() (parents
    created); returns the absolute path."""
    path = os.path.join(testdir(), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


_ports_given = set()


def _family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def free_port(host='127.0.0.1'):
    """A port that was free on host a moment ago and that this process has
    not handed out before. Someone else may still take it before use;
    Daemon.start() retries with new ports when that happens."""
    for _ in range(100):
        s = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        with _lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise RuntimeError('no free port found on %s' % host)


def wait_until(pred, timeout=5, interval=0.05):
    """Calls pred() until it returns something true; returns that, or None
    when timeout seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def require_programs(*names):
    """skip_all() unless every program is on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        skip_all('needs %s (tools/install-deps --test)' % ', '.join(missing))


def have_ipv6():
    """Whether ::1 can be bound."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(('::1', 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _read_bytes(path, offset=0):
    try:
        with open(path, 'rb') as f:
            if offset:
                f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b''


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _tail(text, lines=30):
    return '\n'.join(text.splitlines()[-lines:])


def _describe_status(rc):
    if rc is None:
        return 'still running'
    if rc < 0:
        try:
            return 'signal %s' % signal.Signals(-rc).name
        except ValueError:
            return 'signal %d' % -rc
    return 'exit status %d' % rc


# ---------------------------------------------------------------------------
# The daemon

class DaemonError(Exception):
    """The daemon could not be started (the message has its stderr tail)."""


_daemons = []

_SANITIZER_RE = re.compile(r'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|'
                           r'UndefinedBehaviorSanitizer')
_BAD_LEVEL_RE = re.compile(r'\[(alert|crit|emerg)\]')
# What valgrind memcheck prints for an error (every such line starts with
# ==PID==); "definitely lost" only: the other leak kinds are not errors here
# (--errors-for-leak-kinds=definite).
_VALGRIND_RE = re.compile(r'^==\d+== (Invalid (read|write|free)|Conditional jump|'
                          r'Use of uninitialised|Syscall param|Mismatched free|'
                          r'Source and destination overlap|Argument .* of function|'
                          r'.*definitely lost in loss record|Process terminating)', re.M)
VALGRIND = os.environ.get('PCTEST_VALGRIND', '') not in ('', '0')
# How much longer start and stop may take under valgrind.
VALGRIND_SLOWDOWN = 10


def _valgrind_argv(binary):
    """The valgrind command line that runs binary (PCTEST_VALGRIND)."""
    supp = os.path.join(top_srcdir(), 't', 'valgrind.supp')
    extra = os.environ.get('PCTEST_VALGRIND_ARGS', '').split()
    return ['valgrind', '--quiet', '--error-exitcode=99', '--leak-check=full',
            '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite',
            '--track-fds=no',
            '--num-callers=30', '--suppressions=' + supp] + extra + [binary]


def _is_elf(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'\x7fELF'
    except OSError:
        return False
_IN_USE_RE = re.compile(r'address already in use|EADDRINUSE|address in use', re.I)


def run_check(conf_path, binary=None, timeout=30):
    """Runs BINARY -t -c CONF_PATH; returns (exit code, stdout+stderr text).
    The exit code is 124 when it did not finish within timeout."""
    binary = binary or _default_binary()
    try:
        p = subprocess.run([binary, '-t', '-c', conf_path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd=os.path.dirname(os.path.abspath(conf_path)))
    except subprocess.TimeoutExpired as e:
        return 124, (e.output or b'').decode('utf-8', 'replace') + \
            '\npctest: -t did not finish in %ss\n' % timeout
    return p.returncode, p.stdout.decode('utf-8', 'replace')


_asan_cache = {}


def sanitizer_build(binary=None):
    """True when binary (default: the daemon) was built with a sanitizer
    runtime (ASan, as --enable-asan does, or TSan)."""
    binary = binary or _default_binary()
    if binary not in _asan_cache:
        try:
            with open(binary, 'rb') as f:
                data = f.read()
            _asan_cache[binary] = b'__asan_init' in data or b'__tsan_init' in data
        except OSError:
            _asan_cache[binary] = False
    return _asan_cache[binary]


def _proc_inodes(pid):
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:['):
            inodes.add(link[8:-1])
    return inodes


def _hex_addr(host):
    """host as /proc/net/tcp{,6} writes it."""
    if ':' in host:
        raw = socket.inet_pton(socket.AF_INET6, host)
        return ''.join('%08X' % int.from_bytes(raw[i:i + 4], 'little') for i in range(0, 16, 4))
    return '%08X' % int.from_bytes(socket.inet_aton(host), 'little')


class Daemon:
    """One portcullis process with its config in the test directory."""

    def __init__(self, conf, name='portcullis', extra_args=(), binary=None, subst=None):
        self.name = name
        self.extra_args = tuple(str(a) for a in extra_args)
        self.binary = binary or _default_binary()
        self.subst = dict(subst or {})
        self.dir = testdir()
        self.conf_path = os.path.join(self.dir, name + '.conf')
        self.stderr_path = os.path.join(self.dir, name + '.stderr')
        self.port = None
        self.ports = {}
        self.proc = None
        self.returncode = None
        self.template = conf
        self._render(conf)
        _daemons.append(self)

    # -- config -------------------------------------------------------------

    def _render(self, template, new_ports=False):
        if new_ports:
            self.port = None
            self.ports = {}
        text = template
        if '%%PORT%%' in text:
            if self.port is None:
                self.port = free_port()
            text = text.replace('%%PORT%%', str(self.port))
        for key in sorted(set(re.findall(r'%%PORT_(\w+?)%%', text))):
            if key not in self.ports:
                self.ports[key] = free_port()
            text = text.replace('%%PORT_' + key + '%%', str(self.ports[key]))
        text = text.replace('%%TESTDIR%%', self.dir)
        for key, value in self.subst.items():
            text = text.replace('%%' + key + '%%', str(value))
        left = re.findall(r'%%\w+%%', text)
        if left:
            raise ValueError('config template has unknown placeholders: %s' % ', '.join(left))
        workers = os.environ.get('PCTEST_WORKERS', '')
        if workers and not re.search(r'^[ \t]*workers[ \t]', text, re.M):
            text = text.rstrip('\n') + '\nworkers %s   # PCTEST_WORKERS\n' % workers
        self.conf_text = text
        with open(self.conf_path, 'w') as f:
            f.write(text)
        self.error_log_path = self._log_path('error_log', 'error.log')
        self.access_log_path = self._log_path('access_log', 'access.log')
        if self.port is None:
            listen = self._listen_addrs()
            if listen:
                self.port = listen[0][1]

    def _log_path(self, directive, default):
        m = re.search(r'^[ \t]*%s[ \t]+("[^"]*"|\'[^\']*\'|\S+)' % directive, self.conf_text, re.M)
        if not m:
            return os.path.join(self.dir, default)
        path = m.group(1).strip('"\'')
        if path == 'stderr':
            return self.stderr_path
        return os.path.join(os.path.dirname(self.conf_path), path)

    def _listen_addrs(self):
        addrs = []
        for m in re.finditer(r'^[ \t]*listen[ \t]+(\S+)', self.conf_text, re.M):
            spec = m.group(1)
            host, _, port = spec.rpartition(':')
            host = host.strip('[]') or '127.0.0.1'
            if host in ('*', '0.0.0.0'):
                host = '127.0.0.1'
            elif host == '::':
                host = '::1'
            if port.isdigit():
                addrs.append((host, int(port)))
        return addrs

    def write_conf(self, template):
        """Replaces the config (for reload tests); keeps the ports already
        handed out, so %%PORT%% stays the same."""
        self.template = template
        self._render(template)

    def run_check(self, timeout=30):
        """Runs the daemon with -t on this config: (exit code, output)."""
        return run_check(self.conf_path, self.binary, timeout)

    # -- process ------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=10):
        """Starts the daemon and waits until it listens. Raises DaemonError
        (with the end of its stderr and error log) when it does not come up;
        retries up to 3 times with new ports when an address is in use."""
        if self.running():
            raise DaemonError('%s is already running (pid %d)' % (self.name, self.pid))
        if not os.access(self.binary, os.X_OK):
            raise DaemonError('daemon binary not found or not executable: %s '
                              '(build it first: make)' % self.binary)
        argv = [self.binary]
        prefix = ''
        if VALGRIND:
            timeout *= VALGRIND_SLOWDOWN
            if _is_elf(self.binary):
                argv = _valgrind_argv(self.binary)
            else:
                # A wrapper script execs the daemon as
                # `exec $PCTEST_DAEMON_PREFIX "$real" "$@"`.
                prefix = ' '.join(_valgrind_argv('')[:-1])
                diag('%s: %s is a wrapper: valgrind only where it uses '
                     '$PCTEST_DAEMON_PREFIX' % (self.name, self.binary))
        for attempt in range(3):
            if attempt:
                self._render(self.template, new_ports=True)
                diag('%s: address in use, retrying with port %s' % (self.name, self.port))
            err_mark = _size(self.stderr_path)
            log_mark = _size(self.error_log_path)
            notify = self._notify_socket()
            env = dict(os.environ)
            env['NOTIFY_SOCKET'] = self._notify_name
            env['PCTEST_DAEMON_PREFIX'] = prefix
            with open(self.stderr_path, 'ab') as errf:
                self.proc = subprocess.Popen(
                    argv + list(self.extra_args) + ['-c', self.conf_path],
                    stdin=subprocess.DEVNULL, stdout=errf, stderr=subprocess.STDOUT,
                    cwd=self.dir, start_new_session=True, env=env)
            self.returncode = None
            ready = self._wait_ready(notify, timeout)
            notify.close()
            if ready:
                return self
            if self.running():
                self.proc.kill()
                self.proc.wait(5)
                self.returncode = self.proc.returncode
                raise DaemonError('%s did not listen within %ss\n%s'
                                  % (self.name, timeout, self._startup_output(err_mark, log_mark)))
            self.returncode = self.proc.returncode
            out = self._startup_output(err_mark, log_mark)
            if _IN_USE_RE.search(out):
                continue
            raise DaemonError('%s exited during startup with %s\n%s'
                              % (self.name, _describe_status(self.returncode), out))
        raise DaemonError('%s: address in use on 3 attempts\n%s'
                          % (self.name, self._startup_output(err_mark, log_mark)))

    def _startup_output(self, err_mark, log_mark):
        err = _read_bytes(self.stderr_path, err_mark).decode('utf-8', 'replace')
        text = '--- %s (tail) ---\n%s' % (self.stderr_path, _tail(err))
        if self.error_log_path != self.stderr_path:
            log = _read_bytes(self.error_log_path, log_mark).decode('utf-8', 'replace')
            text += '\n--- %s (tail) ---\n%s' % (self.error_log_path, _tail(log))
        return text

    def _notify_socket(self):
        # The daemon speaks systemd's notify protocol: READY=1 once plugins
        # are up and it serves, which "listening" alone does not prove.
        # An abstract socket: no file, so a daemon that dropped privileges
        # (user nobody) can still reach it.
        name = 'pctest-notify-%d-%s-%s' % (os.getpid(), self.name, os.urandom(4).hex())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind('\0' + name)
        self._notify_name = '@' + name
        return sock

    def _wait_ready(self, notify, timeout):
        deadline = time.monotonic() + timeout
        notify.settimeout(0.05)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                msg = notify.recv(4096)
            except socket.timeout:
                continue
            if b'READY=1' in msg.split(b'\n'):
                # Listening follows from ready; check it anyway.
                return self._wait_listening(max(0.5, deadline - time.monotonic()))
        return False

    def _wait_listening(self, timeout):
        addrs = self._listen_addrs()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if not addrs:
                # Nothing to wait for: give it a moment to fail on its own.
                time.sleep(0.3)
                return self.proc.poll() is None
            if all(self._is_listening(h, p) for h, p in addrs[:1]):
                return True
            time.sleep(0.02)
        return False

    def _is_listening(self, host, port):
        # Prefer /proc: a LISTEN socket on the port that this very process
        # holds, so that a stranger on the port is not mistaken for us and the
        # probe adds no client connection to the daemon's logs.
        try:
            inodes = set()
            fd_dir = '/proc/%d/fd' % self.proc.pid
            for fd in os.listdir(fd_dir):
                try:
                    link = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if link.startswith('socket:['):
                    inodes.add(link[8:-1])
            for table in ('/proc/net/tcp', '/proc/net/tcp6'):
                try:
                    with open(table) as f:
                        next(f)
                        for row in f:
                            cols = row.split()
                            if (len(cols) > 9 and cols[3] == '0A'
                                    and int(cols[1].rsplit(':', 1)[1], 16) == port
                                    and cols[9] in inodes):
                                return True
                except FileNotFoundError:
                    continue
            return False
        except OSError:
            pass
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def signal(self, sig):
        """Sends sig to the daemon; returns False when it is not running."""
        if not self.running():
            state = 'never started' if self.proc is None else _describe_status(self.proc.poll())
            diag('%s: cannot send %s, not running (%s)' % (self.name, signal.Signals(sig).name, state))
            return False
        self.proc.send_signal(sig)
        return True

    def reopen_logs(self):
        """SIGUSR1: the daemon reopens its logs."""
        return self.signal(signal.SIGUSR1)

    def reload(self, regex=r'configuration reloaded|reload failed', timeout=10):
        """SIGHUP, then waits for a new error log line matching regex;
        returns it, or None (with a diagnostic) after timeout seconds."""
        mark = self.log_mark('error')
        if not self.signal(signal.SIGHUP):
            return None
        line = self.wait_for_log('error', regex, timeout, since=mark)
        if line is None:
            diag('%s: no error log line matching %r within %ss of SIGHUP' % (self.name, regex, timeout),
                 _tail(_read_bytes(self.error_log_path, mark).decode('utf-8', 'replace'), 15))
        return line

    def stop(self, timeout=10):
        """SIGTERM and wait. Returns True when the daemon exited with status
        0 within timeout seconds. After the timeout it is killed (SIGKILL)
        and a failing test point is recorded."""
        if self.proc is None:
            diag('%s: stop() but never started' % self.name)
            return False
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            diag('%s: already gone before stop(): %s' % (self.name, _describe_status(self.returncode)),
                 _tail(self.stderr(), 30))
            return False
        if VALGRIND:
            timeout *= VALGRIND_SLOWDOWN
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(10)
            ok(False, '%s stops within %ss of SIGTERM' % (self.name, timeout))
            return False
        if self.returncode != 0:
            diag('%s: exited with %s after SIGTERM' % (self.name, _describe_status(self.returncode)),
                 _tail(self.stderr(), 30))
            return False
        return True

    # -- what the kernel says ----------------------------------------------

    def _status(self, field):
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        """The daemon's resident memory (VmRSS), KiB."""
        return self._status('VmRSS')

    def cpu_seconds(self):
        """User + system CPU time the daemon used so far (all threads)."""
        with open('/proc/%d/stat' % self.pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def open_fds(self):
        """How many descriptors the daemon has open."""
        return len(os.listdir('/proc/%d/fd' % self.pid))

    def connections_to(self, port, host='127.0.0.1'):
        """The daemon's ESTABLISHED (or CLOSE_WAIT: the peer closed, the
        daemon not yet) TCP connections to host:port."""
        inodes = _proc_inodes(self.pid)
        want = '%s:%04X' % (_hex_addr(host), port)
        n = 0
        for table in ('/proc/net/tcp', '/proc/net/tcp6'):
            try:
                with open(table) as f:
                    next(f)
                    for row in f:
                        cols = row.split()
                        if cols[2] == want and cols[3] in ('01', '08') and cols[9] in inodes:
                            n += 1
            except FileNotFoundError:
                continue
        return n

    def _kill(self):
        if self.running():
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            return True
        return False

    # -- logs ---------------------------------------------------------------

    def _path(self, kind):
        return {'error': self.error_log_path, 'access': self.access_log_path,
                'stderr': self.stderr_path}.get(kind, kind)

    def error_log(self):
        """The error log as text ('' when it does not exist)."""
        return _read_bytes(self.error_log_path).decode('utf-8', 'replace')

    def access_log(self):
        """The access log as a list of lines."""
        text = _read_bytes(self.access_log_path).decode('utf-8', 'replace')
        return [line for line in text.splitlines() if line]

    def stderr(self):
        """Everything the daemon wrote to stdout and stderr, all runs."""
        return _read_bytes(self.stderr_path).decode('utf-8', 'replace')

    def log_mark(self, kind='error'):
        """The current size of a log, to pass as since= to wait_for_log()."""
        return _size(self._path(kind))

    def wait_for_log(self, kind, regex, timeout=5, since=0):
        """Polls the log kind ('error', 'access', 'stderr' or a path) from
        byte offset since until a complete line matches regex; returns the
        line, or None after timeout seconds."""
        path = self._path(kind)
        rx = regex if isinstance(regex, re.Pattern) else re.compile(regex)

        def find():
            data = _read_bytes(path, since).decode('utf-8', 'replace')
            for line in data.splitlines(keepends=True):
                if line.endswith('\n') and rx.search(line):
                    return line.rstrip('\n')
            return None
        return wait_until(find, timeout)

    def check_logs(self):
        """Two test points: no [alert], [crit] or [emerg] in the error log,
        and no sanitizer report in the daemon's stderr (or error log)."""
        log = self.error_log()
        bad = [line for line in log.splitlines() if _BAD_LEVEL_RE.search(line)]
        if not ok(not bad, '%s: no alert, crit or emerg in the error log' % self.name):
            diag(*bad[:20])
        err = self.stderr()
        m = _SANITIZER_RE.search(err) or _SANITIZER_RE.search(log)
        if not ok(m is None, '%s: no sanitizer report' % self.name):
            src = err if _SANITIZER_RE.search(err) else log
            start = src.rfind('\n', 0, _SANITIZER_RE.search(src).start()) + 1
            diag('\n'.join(src[start:].splitlines()[:80]))
        if VALGRIND:
            m = _VALGRIND_RE.search(err)
            if not ok(m is None and self.returncode != 99,
                      '%s: no valgrind report' % self.name):
                start = m.start() if m else max(0, len(err) - 4000)
                diag('\n'.join(err[start:].splitlines()[:120]))


# ---------------------------------------------------------------------------
# The stub origin

class Request:
    """One request as the origin read it."""

    def __init__(self):
        self.method = self.target = self.version = ''
        self.headers = []
        self.body = b''
        self.body_len = 0
        self.body_sha256 = hashlib.sha256(b'').hexdigest()
        self.trailers = []
        self.chunked = False
        self.raw = b''
        self.conn = 0
        self.index = 0
        self.malformed = False
        self.time = time.time()

    def header(self, name, default=None):
        """The first value of header name (any case), or default."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def headers_all(self, name):
        """Every value of header name (any case), in order."""
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    @property
    def path(self):
        """The target without scheme and authority (absolute form)."""
        m = re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*', self.target)
        path = self.target[m.end():] if m else self.target
        return path or '/'

    def __repr__(self):
        return '<Request %s %s %s conn=%d #%d body=%d>' % (
            self.method, self.target, self.version, self.conn, self.index, self.body_len)


class Response:
    """What a handler returns; see the module documentation."""

    def __init__(self, status=200, reason=None, headers=(), body=b'', chunked=False,
                 close=False, delay=0.0, length=None, interim=(), body_iter=None,
                 abort_after=None, trailers=()):
        self.status = status
        self.reason = reason
        self.headers = list(headers.items() if isinstance(headers, dict) else headers)
        self.body = body.encode() if isinstance(body, str) else body
        self.chunked = chunked
        self.close = close
        self.delay = delay
        self.length = length
        self.interim = list(interim)
        self.body_iter = body_iter
        self.abort_after = abort_after
        self.trailers = list(trailers.items() if isinstance(trailers, dict) else trailers)


class Raw:
    """Bytes an origin writes as they are; close=False keeps reading
    requests on the connection afterwards."""

    def __init__(self, data, close=True):
        self.data = data.encode() if isinstance(data, str) else data
        self.close = close


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return 'Unknown'


def _has(headers, name):
    name = name.lower()
    return any(n.lower() == name for n, _ in headers)


def default_handler(req):
    return Response(200, headers=[('Content-Type', 'text/plain')], body=b'hello from origin\n')


class _Abort(Exception):
    pass


class _Closed(Exception):
    pass


MAX_HEAD = 1 << 20


class Origin:
    """A threaded stub HTTP/1.1 origin; see the module documentation."""

    def __init__(self, handler=None, host='127.0.0.1', send_continue=True, on_headers=None,
                 keep_bodies=True, timeout=10):
        self.handler = handler or default_handler
        self.host = host
        self.send_continue = send_continue
        self.on_headers = on_headers
        self.keep_bodies = keep_bodies
        self.timeout = timeout
        self.requests = []
        self.errors = []
        self.connections = 0
        self._stop = threading.Event()
        self._socks = set()
        self._threads = []
        self._mu = threading.Lock()
        self.sock = socket.socket(_family(host), socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        with _lock:
            _ports_given.add(self.port)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name='origin-%d-accept' % self.port)
        self._acceptor.start()
        _origins.append(self)

    @property
    def authority(self):
        return ('[%s]:%d' if ':' in self.host else '%s:%d') % (self.host, self.port)

    def url(self, path='/'):
        """http://HOST:PORT/path"""
        if not path.startswith('/'):
            path = '/' + path
        return 'http://%s%s' % (self.authority, path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait_requests(self, n, timeout=5):
        """Waits until n requests arrived; returns whether they did."""
        return bool(wait_until(lambda: len(self.requests) >= n, timeout))

    def stop(self):
        """Stops accepting, closes every connection, joins the threads."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._acceptor.join(2)
        try:
            self.sock.close()
        except OSError:
            pass
        with self._mu:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(2)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            # The head and the body go out in separate writes: without
            # TCP_NODELAY the body would wait for the proxy's delayed ACK
            # of the head (40 ms on a reused connection).
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with self._mu:
                self.connections += 1
                conn_no = self.connections
                self._socks.add(s)
            t = threading.Thread(target=self._serve, args=(s, conn_no), daemon=True,
                                 name='origin-%d-conn-%d' % (self.port, conn_no))
            self._threads.append(t)
            t.start()

    # -- reading --------------------------------------------------------------

    def _recv(self, s, st):
        if self._stop.is_set():
            raise _Closed()
        data = s.recv(65536)
        if not data:
            raise _Closed()
        st['buf'] += data

    def _read_line(self, s, st, limit=65536):
        while b'\r\n' not in st['buf']:
            if len(st['buf']) > limit:
                raise ValueError('line too long')
            self._recv(s, st)
        line, st['buf'] = st['buf'].split(b'\r\n', 1)
        return line

    def _read_exact(self, s, st, n, sink):
        while n > 0:
            if not st['buf']:
                self._recv(s, st)
            piece = st['buf'][:n]
            st['buf'] = st['buf'][len(piece):]
            n -= len(piece)
            sink(piece)

    def _read_head(self, s, st):
        # RFC 9112 section 2.2: ignore empty lines before a request line.
        while True:
            while st['buf'].startswith(b'\r\n'):
                st['buf'] = st['buf'][2:]
            i = st['buf'].find(b'\r\n\r\n')
            if i >= 0:
                head, st['buf'] = st['buf'][:i + 4], st['buf'][i + 4:]
                return head
            if len(st['buf']) > MAX_HEAD:
                raise ValueError('request head over %d bytes' % MAX_HEAD)
            self._recv(s, st)

    def _parse_head(self, head):
        req = Request()
        req.raw = head
        lines = head[:-4].decode('latin-1').split('\r\n')
        parts = lines[0].split(' ')
        if len(parts) == 3:
            req.method, req.target, req.version = parts
        else:
            req.method = lines[0]      # malformed: kept whole, answered 400
            req.malformed = True
        for line in lines[1:]:
            if line[:1] in (' ', '\t') and req.headers:
                n, v = req.headers[-1]
                req.headers[-1] = (n, v + ' ' + line.strip())
                continue
            name, _, value = line.partition(':')
            req.headers.append((name, value.strip(' \t')))
        return req

    def _read_body(self, s, st, req):
        body = []
        digest = hashlib.sha256()

        def sink(piece):
            req.body_len += len(piece)
            digest.update(piece)
            if self.keep_bodies:
                body.append(piece)

        te = (req.header('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            req.chunked = True
            while True:
                size_line = self._read_line(s, st).decode('latin-1')
                size = int(size_line.split(';', 1)[0].strip(), 16)
                if size == 0:
                    break
                self._read_exact(s, st, size, sink)
                if self._read_line(s, st) != b'':
                    raise ValueError('chunk data not followed by CRLF')
            while True:
                line = self._read_line(s, st)
                if not line:
                    break
                name, _, value = line.decode('latin-1').partition(':')
                req.trailers.append((name, value.strip()))
        elif req.header('Content-Length') is not None:
            self._read_exact(s, st, int(req.header('Content-Length')), sink)
        req.body = b''.join(body)
        req.body_sha256 = digest.hexdigest()

    # -- serving --------------------------------------------------------------

    def _serve(self, s, conn_no):
        st = {'buf': b''}
        s.settimeout(self.timeout)
        index = 0
        linger = False      # we close on purpose: let the peer read first
        try:
            while not self._stop.is_set():
                head = self._read_head(s, st)
                req = self._parse_head(head)
                index += 1
                req.conn, req.index = conn_no, index
                if req.malformed:
                    self.requests.append(req)
                    s.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n'
                              b'Connection: close\r\n\r\n')
                    linger = True
                    break
                if self.on_headers:
                    early = self.on_headers(req)
                    if early is not None:
                        self.requests.append(req)
                        self._respond(s, req, early)
                        linger = True
                        break
                expect = (req.header('Expect') or '').lower() == '100-continue'
                if expect and self.send_continue and req.version == 'HTTP/1.1':
                    s.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')
                self._read_body(s, st, req)
                self.requests.append(req)
                try:
                    resp = self.handler(req)
                except Exception as e:  # the test's handler is broken
                    self.errors.append(e)
                    diag('origin %d: handler raised %r' % (self.port, e),
                         traceback.format_exc())
                    resp = Response(500, body=b'handler error\n', close=True)
                if not self._respond(s, req, resp):
                    linger = True
                    break
        except (_Closed, _Abort, socket.timeout, ConnectionError, OSError):
            linger = False
        except ValueError as e:
            self.errors.append(e)
            try:
                s.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n'
                          b'Connection: close\r\n\r\n')
                linger = True
            except OSError:
                pass
        finally:
            with self._mu:
                self._socks.discard(s)
            if linger:
                self._linger_close(s)
            try:
                s.close()
            except OSError:
                pass

    def _linger_close(self, s):
        # Closing with unread request bytes in the socket makes the kernel
        # send RST, which can destroy the response before the peer reads
        # it; like nginx's lingering close, drain for a moment first.
        self._close_write(s)
        deadline = time.monotonic() + 2
        try:
            s.settimeout(0.2)
            while time.monotonic() < deadline and not self._stop.is_set():
                try:
                    if not s.recv(65536):
                        break
                except socket.timeout:
                    continue
        except OSError:
            pass

    def _respond(self, s, req, resp):
        """Sends resp; returns whether the connection stays open."""
        if callable(resp) and not isinstance(resp, (Response, Raw)):
            return bool(resp(s, req))
        if isinstance(resp, (bytes, bytearray, str)):
            resp = Raw(resp)
        if isinstance(resp, Raw):
            s.sendall(resp.data)
            if resp.close:
                self._close_write(s)
            return not resp.close
        return self._send_response(s, req, resp)

    def _close_write(self, s):
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _send_response(self, s, req, r):
        if r.delay and self._stop.wait(r.delay):
            raise _Closed()
        for status, headers in r.interim:
            head = 'HTTP/1.1 %d %s\r\n' % (status, _reason(status))
            for n, v in (headers.items() if isinstance(headers, dict) else headers):
                head += '%s: %s\r\n' % (n, v)
            s.sendall((head + '\r\n').encode('latin-1'))

        headers = list(r.headers)
        no_body = 100 <= r.status < 200 or r.status in (204, 304)
        is_head = req.method == 'HEAD'
        client_close = ((req.header('Connection') or '').lower() == 'close'
                        or (req.version == 'HTTP/1.0'
                            and (req.header('Connection') or '').lower() != 'keep-alive'))
        close = r.close or client_close
        if r.chunked:
            if not _has(headers, 'Transfer-Encoding'):
                headers.append(('Transfer-Encoding', 'chunked'))
        elif r.length == 'none':
            close = True
        elif r.length is not None:
            headers.append(('Content-Length', str(r.length)))
        elif r.body_iter is not None:
            close = True        # unknown length: delimited by the close
        elif not no_body and not _has(headers, 'Content-Length'):
            headers.append(('Content-Length', str(len(r.body))))
        if close and not _has(headers, 'Connection'):
            headers.append(('Connection', 'close'))

        reason = _reason(r.status) if r.reason is None else r.reason
        head = 'HTTP/1.1 %d %s\r\n' % (r.status, reason)
        head += ''.join('%s: %s\r\n' % (n, v) for n, v in headers)
        s.sendall((head + '\r\n').encode('latin-1'))

        if not (is_head or no_body):
            sent = [0]

            def send(data):
                if not data:
                    return
                if r.abort_after is not None and sent[0] + len(data) >= r.abort_after:
                    part = data[:r.abort_after - sent[0]]
                    if r.chunked and part:
                        s.sendall(b'%x\r\n' % len(data) + part)
                    elif part:
                        s.sendall(part)
                    self._reset(s)
                    raise _Abort()
                sent[0] += len(data)
                if r.chunked:
                    s.sendall(b'%x\r\n' % len(data) + data + b'\r\n')
                else:
                    s.sendall(data)

            items = [r.body] if r.body_iter is None else r.body_iter
            for item in items:
                if isinstance(item, tuple):
                    data, pause = item
                    if pause and self._stop.wait(pause):
                        raise _Closed()
                else:
                    data = item
                send(data.encode() if isinstance(data, str) else data)
            if r.abort_after is not None and sent[0] >= r.abort_after:
                self._reset(s)
                raise _Abort()
            if r.chunked:
                trailer = ''.join('%s: %s\r\n' % (n, v) for n, v in r.trailers)
                s.sendall(b'0\r\n' + trailer.encode('latin-1') + b'\r\n')
        if close:
            self._close_write(s)
        return not close

    def _reset(self, s):
        # SO_LINGER with a zero timeout makes close() send RST.
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


_origins = []


# ---------------------------------------------------------------------------
# Clients

class HTTPResponse:
    """A parsed HTTP response."""

    def __init__(self):
        self.version = ''
        self.status = 0
        self.reason = ''
        self.headers = []
        self.body = b''
        self.trailers = []
        self.chunked = False
        self.raw = b''
        self.interim = []
        self.complete = True

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def headers_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def __repr__(self):
        return '<HTTPResponse %s %d %r headers=%d body=%d%s>' % (
            self.version, self.status, self.reason, len(self.headers), len(self.body),
            '' if self.complete else ' incomplete')


def _dechunk(data, eof):
    """Returns (body, trailers, consumed, complete) or None when more data
    is needed (and eof is False)."""
    pos, body, trailers = 0, [], []
    while True:
        i = data.find(b'\r\n', pos)
        if i < 0:
            break
        try:
            size = int(data[pos:i].split(b';', 1)[0].strip(), 16)
        except ValueError:
            return b''.join(body), trailers, len(data), False
        if size == 0:
            pos = i + 2
            while True:
                j = data.find(b'\r\n', pos)
                if j < 0:
                    return (b''.join(body), trailers, len(data), False) if eof else None
                line = data[pos:j]
                pos = j + 2
                if not line:
                    return b''.join(body), trailers, pos, True
                name, _, value = line.decode('latin-1').partition(':')
                trailers.append((name, value.strip()))
        start = i + 2
        if len(data) < start + size + 2:
            if eof:
                body.append(data[start:start + size])
                return b''.join(body), trailers, len(data), False
            return None
        body.append(data[start:start + size])
        pos = start + size + 2
    return (b''.join(body), trailers, len(data), False) if eof else None


def _parse_one(data, head=False, eof=False):
    """Parses one response message at the start of data. Returns
    (HTTPResponse, consumed) or None when more data is needed."""
    i = data.find(b'\r\n\r\n')
    if i < 0:
        return None
    r = HTTPResponse()
    lines = data[:i].decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    r.version = parts[0]
    try:
        r.status = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        r.status = 0
    r.reason = parts[2] if len(parts) > 2 else ''
    for line in lines[1:]:
        name, _, value = line.partition(':')
        r.headers.append((name, value.strip(' \t')))
    rest = data[i + 4:]
    end = i + 4
    te = (r.header('Transfer-Encoding') or '').lower()
    if head or 100 <= r.status < 200 or r.status in (204, 304):
        pass
    elif 'chunked' in te:
        r.chunked = True
        res = _dechunk(rest, eof)
        if res is None:
            return None
        r.body, r.trailers, used, r.complete = res
        end += used
    elif r.header('Content-Length') is not None:
        try:
            n = int(r.header('Content-Length'))
        except ValueError:
            n = 0
        if len(rest) < n:
            if not eof:
                return None
            r.complete = False
            n = len(rest)
        r.body = rest[:n]
        end += n
    else:
        if not eof:
            return None
        r.body = rest
        end += len(rest)
    r.raw = data[:end]
    return r, end


def parse_responses(data, head=False):
    """Every final response in data (interim 1xx ones attached to the next
    final one); the last may be incomplete."""
    out, interim, pos = [], [], 0
    while pos < len(data):
        res = _parse_one(data[pos:], head=head, eof=True)
        if res is None:
            break
        r, used = res
        pos += used
        if 100 <= r.status < 200 and r.status != 101:
            interim.append(r)
            continue
        r.interim, interim = interim, []
        out.append(r)
    return out


def parse_response(data, head=False):
    """The first final response in data. Raises ValueError when data holds
    no complete response head."""
    rs = parse_responses(data, head)
    if not rs:
        raise ValueError('no HTTP response in %d bytes: %s' % (len(data), _show(data[:300])))
    return rs[0]


class RawClient:
    """A step-by-step client connection; see the module documentation."""

    def __init__(self, port, host='127.0.0.1', timeout=5, source=None):
        self.timeout = timeout
        self.buf = b''          # received and not consumed yet
        self.data = b''         # everything received
        self.eof = False
        self.sock = socket.socket(_family(host), socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind(source if isinstance(source, tuple) else (source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """Sends bytes (or str, UTF-8 encoded)."""
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, deadline):
        """Reads once into buf; returns False on EOF or at the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return False
            chunk = self.sock.recv(65536)
        except (ConnectionError, OSError):
            chunk = b''
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        self.data += chunk
        return True

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def recv(self, n=65536, timeout=None):
        """Up to n bytes: b'' at EOF, None when nothing came in time."""
        if not self.buf:
            self._fill(self._deadline(timeout))
        if not self.buf:
            return b'' if self.eof else None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_until(self, marker, timeout=None):
        """Bytes up to and including marker; everything received when the
        marker did not come before EOF or the timeout."""
        marker = marker.encode() if isinstance(marker, str) else marker
        deadline = self._deadline(timeout)
        while marker not in self.buf:
            if not self._fill(deadline):
                out, self.buf = self.buf, b''
                return out
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def recv_all(self, timeout=None):
        """Everything until EOF or the timeout."""
        deadline = self._deadline(timeout)
        while self._fill(deadline):
            pass
        out, self.buf = self.buf, b''
        return out

    def recv_response(self, head=False, skip_interim=True, timeout=None):
        """The next response, or None when none arrived before EOF or the
        timeout. A body cut short by EOF gives complete=False. With
        skip_interim, 1xx responses are collected in .interim of the final
        one; without, a 1xx is returned on its own."""
        deadline = self._deadline(timeout)
        interim = []
        while True:
            res = _parse_one(self.buf, head=head, eof=self.eof)
            if res is None:
                if self._fill(deadline):
                    continue
                res = _parse_one(self.buf, head=head, eof=True) if self.eof else None
                if res is None:
                    return None
            r, used = res
            self.buf = self.buf[used:]
            if skip_interim and 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                continue
            r.interim = interim
            return r

    def wait_closed(self, timeout=None):
        """Whether the peer closed within the timeout (data that arrives in
        between stays readable)."""
        deadline = self._deadline(timeout)
        while self._fill(deadline):
            pass
        return self.eof

    def shutdown_write(self):
        """Half-closes: the peer reads EOF, we can still read."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_request(port, data, timeout=5, read_until_close=True, host='127.0.0.1',
                source=None, head=False):
    """Sends data and returns the bytes received; see the module doc."""
    with RawClient(port, host=host, timeout=timeout, source=source) as c:
        c.send(data)
        if read_until_close:
            c.recv_all()
        else:
            c.recv_response(head=head)
        return c.data


_PROXY_VARS = ('http_proxy', 'https_proxy', 'all_proxy', 'ftp_proxy', 'no_proxy',
               'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'FTP_PROXY', 'NO_PROXY')


def _names_proxy(args):
    for a in args:
        if a in ('-x', '--proxy', '--preproxy') or a.startswith('--proxy=') \
                or (a.startswith('-x') and not a.startswith('--')):
            return True
    return False


def curl(*args, timeout=30, input=None):
    """Runs curl; returns (rc, stdout bytes, stderr text). See the module
    documentation for the options it adds."""
    args = [str(a) for a in args]
    # -q (ignore ~/.curlrc) only works as the very first argument.
    cmd = ['curl', '-q', '--silent', '--show-error']
    if not _names_proxy(args):
        cmd += ['--noproxy', '*']
    cmd += args
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    try:
        p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return (124, e.stdout or b'', (e.stderr or b'').decode('utf-8', 'replace')
                + 'pctest: curl timed out after %ss\n' % timeout)
    return p.returncode, p.stdout, p.stderr.decode('utf-8', 'replace')


class CurlResult:
    """What curl_via() returns; see the module documentation."""

    def __init__(self, rc, status, connect_status, body, stderr, header_blocks):
        self.rc = rc
        self.status = status
        self.connect_status = connect_status
        self.body = body
        self.stderr = stderr
        self.header_blocks = header_blocks
        self.headers = header_blocks[-1]['headers'] if header_blocks else []
        self.status_line = header_blocks[-1]['status_line'] if header_blocks else ''

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def headers_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def __repr__(self):
        return '<CurlResult rc=%d status=%d connect=%d body=%d stderr=%r>' % (
            self.rc, self.status, self.connect_status, len(self.body), self.stderr[-200:])


_MARK = b'\n@@pctest-curl-status@@'
_curl_seq = [0]


def _parse_header_dump(text):
    blocks, cur = [], None
    for line in text.split('\n'):
        line = line.rstrip('\r')
        if line.startswith('HTTP/'):
            cur = {'status_line': line, 'headers': []}
            blocks.append(cur)
        elif line and cur is not None and ':' in line:
            name, _, value = line.partition(':')
            cur['headers'].append((name, value.strip()))
    return blocks


def curl_via(proxy_port, url, *args, timeout=30, proxy_host='127.0.0.1'):
    """curl through the proxy at proxy_host:proxy_port; returns a
    CurlResult (see the module documentation)."""
    with _lock:
        _curl_seq[0] += 1
        seq = _curl_seq[0]
    hdr = os.path.join(testdir(), 'curl-%d.headers' % seq)
    proxy = ('http://[%s]:%d' if ':' in proxy_host else 'http://%s:%d') % (proxy_host, proxy_port)
    rc, out, err = curl('-x', proxy, '-D', hdr,
                        '-w', _MARK.decode() + '%{http_code} %{http_connect}',
                        *args, url, timeout=timeout)
    body, status, connect = out, 0, 0
    i = out.rfind(_MARK)
    if i >= 0:
        body = out[:i]
        codes = out[i + len(_MARK):].split()
        if len(codes) == 2 and codes[0].isdigit() and codes[1].isdigit():
            status, connect = int(codes[0]), int(codes[1])
    blocks = _parse_header_dump(_read_bytes(hdr).decode('latin-1'))
    return CurlResult(rc, status, connect, body, err, blocks)


# ---------------------------------------------------------------------------
# Start and end of a test file

def _cleanup_processes():
    for o in list(_origins):
        o.stop()
    for d in list(_daemons):
        if d._kill():
            diag('%s (pid %d) was still running at exit: killed' % (d.name, d.pid))


def _finish():
    if _st.finished:
        return
    _st.finished = True
    signal.alarm(0)
    try:
        _cleanup_processes()
    except Exception:
        diag('cleanup failed:', traceback.format_exc())
    with _lock:
        if not _st.plan_printed:
            if not _st.done and not _st.crashed:
                ok(False, 'test file ended without plan() or done_testing()')
            _st.plan_printed = True
            _st.planned = _st.count
            _out('1..%d' % _st.count)
        good = _st.failed == 0 and (_st.skipped_all or _st.planned == _st.count)
        if _st.planned is not None and _st.planned != _st.count and not _st.skipped_all:
            diag('planned %d test points but ran %d' % (_st.planned, _st.count))
        if _testdir is not None:
            if good and not os.environ.get('PCTEST_KEEP'):
                shutil.rmtree(_testdir, ignore_errors=True)
            else:
                diag('test directory kept: %s' % _testdir)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0 if good else 1)


def _install():
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    atexit.register(_finish)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)
        try:
            limit = int(os.environ.get('PCTEST_TIMEOUT', '1800' if VALGRIND else '300'))
        except ValueError:
            limit = 300
        set_timeout(limit)


_install()
