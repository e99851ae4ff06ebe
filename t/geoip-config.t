#!/usr/bin/env python3
# geoip-config.t - `portcullis -t` on geoip configurations: accepted ones, and FILE:LINE errors for each mistake an admin can make.
import os
import re
import sys
_t = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_t, 'lib'), os.path.join(_t, 'geoip')]
from pctest import *
from geoiptest import *

require_writer()

db = make_db('country.mmdb', {'127.0.0.2/32': 'DE'})
asn = make_db('asn.mmdb', {'127.0.0.2/32': '64500'}, layout='asn')
bad = write_file('corrupt.mmdb', b'\x00' * 1000)
write_file('except-ok.txt', 'example.com  # comment\n*.bank.example\n')
write_file('except-bad.txt', 'example.com\nexample..org\n')
n = 0


def check(body, want=None, name=''):
    """Writes a config with plugin geoip { body } and runs -t. want None:
    must pass; else a regex the error must match, after 'FILE:LINE: ',
    where LINE is the line holding the line marked '<<'."""
    global n
    n += 1
    lines = body.strip('\n').split('\n')
    mark = next((i for i, l in enumerate(lines) if l.endswith('<<')), None)
    text = '\n'.join(l[:-2] if l.endswith('<<') else l for l in lines)
    path = write_file('c%d.conf' % n, conf(text).replace('%%PORT%%', str(free_port()))
                      .replace('%%TESTDIR%%', testdir()))
    rc, out = run_check(path)
    if want is None:
        return is_(rc, 0, name + ' (accepted)') or diag(out)
    with open(path) as f:
        all_lines = f.read().split('\n')
    if mark is None:
        line = next(i for i, l in enumerate(all_lines) if l.strip().startswith('plugin geoip')) + 1
    else:
        line = next(i for i, l in enumerate(all_lines) if l.strip() == lines[mark][:-2].strip()) + 1
    is_(rc, 1, name + ': -t exits 1')
    like(out.strip(), r'^' + re.escape(path) + ':%d: ' % line + want, name + ': message')


check('database %s\nblock_countries RU cn\nallow_asns AS64500 15169\n'
      'unknown block\npoll_interval 5m\ncountry_path country iso_code\n'
      'country_path registered_country.iso_code\nasn_path autonomous_system_number' % db,
      None, 'every destination directive')
check('database %s\nasn_database %s\nblock_asns 64500\ncheck_clients on\n'
      'allow_client_countries DE\nblock_client_asns 64501\nunknown_clients block\n'
      'except_domains example.net *.bank.example\nexcept_domains_file except-ok.txt'
      % (db, asn), None, 'client rules and exceptions')
check('asn_database %s\nblock_asns 64500' % asn, None, 'ASN database alone')
check('database %s' % db, None, 'a database alone (notes only)')

check('database %s\nblock_countries RU RUS<<' % db,
      r"block_countries: invalid country code 'RUS' \(use ISO 3166 alpha-2 codes such as DE\)$",
      'three-letter country code')
check('database %s\nallow_countries 12<<' % db, r"allow_countries: invalid country code '12'",
      'digits as a country code')
check('database %s\nblock_asns AS12x<<' % db,
      r"block_asns: invalid AS number 'AS12x' \(use a number such as 3320 or AS3320\)$",
      'bad AS number')
check('database %s\nunknown maybe<<' % db, r"unknown.*'maybe'", 'unknown allow|block only')
check('database /nonexistent/GeoLite2-Country.mmdb<<',
      r'database: cannot open /nonexistent/GeoLite2-Country\.mmdb: No such file or directory$',
      'missing database')
check('database corrupt.mmdb<<',
      r'database: cannot open %s: The MaxMind DB file contains invalid metadata$'
      % re.escape(bad), 'corrupt database (relative path resolved)')
check('database %s\nasn_database /nonexistent.mmdb<<' % db,
      r'asn_database: cannot open /nonexistent\.mmdb: No such file or directory$',
      'missing ASN database')
check('block_countries RU', r"plugin 'geoip': no database: give database FILE",
      'no database at all')
check('asn_database %s\nblock_countries RU' % asn,
      r"plugin 'geoip': country rules need a country database: add database FILE$",
      'country rules with only an ASN database')
check('database %s\nallow_countries DE FR\nblock_countries de' % db,
      r"plugin 'geoip': country DE is in both allow_countries and block_countries$",
      'country in both lists')
check('database %s\nallow_asns 64500\nblock_asns AS64500' % db,
      r"plugin 'geoip': AS64500 is in both allow_asns and block_asns$", 'AS in both lists')
check('database %s\nblock_client_countries CN' % db,
      r"plugin 'geoip': client rules .* need check_clients on$",
      'client rules without check_clients')
check('database %s\ncheck_clients on' % db,
      r"plugin 'geoip': check_clients on needs a client rule", 'check_clients with no rule')
check('database %s\nexcept_domains good.example bad..example<<' % db,
      r"except_domains: invalid domain 'bad\.\.example'$", 'bad inline domain')
check('database %s\nexcept_domains_file except-bad.txt<<' % db,
      r"except_domains_file: %s:2: invalid domain 'example\.\.org'$"
      % re.escape(os.path.join(testdir(), 'except-bad.txt')),
      'bad line in a domain file names the file and line')
check('database %s\nexcept_domains_file nothere.txt<<' % db,
      r"except_domains_file: cannot open .*nothere\.txt: No such file or directory$",
      'missing domain file')
check('database %s\ncountry_path country iso_code\ncountry_path auto<<' % db,
      r"country_path: country_path auto cannot be combined with other country_path lines$",
      'auto after explicit paths')
check('database %s\nasn_path a b c d e f g h i<<' % db,
      r"asn_path: too many keys in a path \(at most 8\)$", 'too many keys')
check('database %s\ncountry_path country..iso_code<<' % db,
      r"country_path: empty key in 'country\.\.iso_code'$", 'empty key')
check('database %s\npoll_interval soon<<' % db, r"poll_interval: invalid duration 'soon'",
      'bad poll_interval')
check('database %s\nblock_country RU<<' % db,
      r"unknown directive 'block_country' in plugin 'geoip'$", 'unknown directive')
check('database %s\ndatabase %s<<' % (db, asn), r"'database' is duplicate \(first at ",
      'database twice')

done_testing()
