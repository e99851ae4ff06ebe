#!/usr/bin/env python3
# urlcat-reload.t - list files changing under a running daemon, SIGHUP reloads, broken lists keeping the old ones.
import os
import re
import sys
import time
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'urlcat')]
from pctest import *
from urlcattest import *

tree = make_ut1('ut1', {'adult': {'domains': ['evil.test']}})
domains = os.path.join(tree, 'adult', 'domains')
CONF = '''
            lists %s
            block adult
            poll_interval 1s
''' % tree
d = Daemon(conf(CONF)).start()


def status(host):
    return curl_via(d.port, 'http://%s/' % host).status


is_(status('evil.test'), 403, 'listed domain blocked')
is_(status('new.test') == 403, False, 'unlisted domain not blocked')

# A list file changes: picked up within two polls, without a signal.
mark = d.log_mark('error')
replace_file(domains, ['evil.test', 'new.test'])
line = d.wait_for_log('error', r'urlcat: list files changed; lists loaded in [0-9.]+ s: '
                      r'2 domains', timeout=8, since=mark)
ok(line, 'change logged with the new counts and memory')
like(line or '', r'MiB', 'memory in the log line')
is_(status('new.test'), 403, 'new entry blocks without a reload')

# A broken line: the old lists stay, the error names FILE:LINE.
mark = d.log_mark('error')
replace_file(domains, ['evil.test', 'new.test', 'also.test', 'bad..domain'])
line = d.wait_for_log('error', r'list files changed but cannot be loaded', timeout=8,
                      since=mark)
ok(line, 'broken list logged')
like(line or '', r'%s:4: invalid domain \'bad\.\.domain\'' % re.escape(domains),
     'the error names FILE:LINE and the entry')
like(line or '', r'keeping the lists in force', 'the old lists are kept')
is_(status('new.test'), 403, 'old lists still block')
ok(status('also.test') != 403, 'nothing of the broken file is used')
time.sleep(2.5)
is_(len(re.findall(r'cannot be loaded', d.error_log()[mark:])), 1,
    'the same broken state is reported once, not at every poll')

# Fixed: loaded again.
mark = d.log_mark('error')
replace_file(domains, ['evil.test', 'also.test'])
ok(d.wait_for_log('error', r'list files changed; lists loaded', timeout=8, since=mark),
   'fixed list loaded')
is_(status('also.test'), 403, 'fixed list blocks')
ok(status('new.test') != 403, 'removed entry no longer blocks')

# A new category directory appears in the tree.
mark = d.log_mark('error')
write_lines(os.path.join(tree, 'gambling', 'domains'), ['casino.test'])
ok(d.wait_for_log('error', r'list files changed; lists loaded .* in 2 categories',
                  timeout=8, since=mark), 'new category directory loaded')

# SIGHUP with a broken list: all or nothing, the running lists stay.
replace_file(domains, ['evil.test', 'also.test', 'x' * 70 + '.test'])
line = d.reload()
like(line or '', r'reload failed', 'SIGHUP with a broken list: reload failed')
like(d.error_log(), r'%s:3: invalid domain .*label longer than 63' % re.escape(domains),
     'the reload error names FILE:LINE')
is_(status('also.test'), 403, 'running lists kept after the failed reload')

# SIGHUP with a good config naming a new category to block.
replace_file(domains, ['evil.test'])
d.write_conf(conf(CONF.replace('block adult', 'block adult gambling')))
line = d.reload()
like(line or '', r'configuration reloaded', 'SIGHUP with good lists: reloaded')
is_(status('casino.test'), 403, 'the new configuration blocks the new category')
ok(status('also.test') != 403, 'and uses the new lists')

# The watcher follows the new configuration.
mark = d.log_mark('error')
replace_file(domains, ['evil.test', 'later.test'])
ok(d.wait_for_log('error', r'list files changed; lists loaded', timeout=8, since=mark),
   'the watcher follows the reloaded configuration')
is_(status('later.test'), 403, 'and its lists take effect')

ok(d.stop(), 'graceful stop')
d.check_logs()
done_testing()
