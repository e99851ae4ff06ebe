#!/usr/bin/perl
# mkdb.pl - writes MaxMind DB test databases for the geoip tests (libmaxmind-db-writer-perl).
#
#   perl t/geoip/mkdb.pl [options] OUT NETWORK=VALUE...
#
# Layouts (--layout):
#   geoip2  GeoLite2/GeoIP2 Country: {country => {iso_code}, registered_country
#           => {iso_code}}. VALUE is CC, CC/RC (country and registered
#           country) or /RC (registered country only, as MaxMind does for
#           some anycast and satellite networks). IPv4 is aliased into
#           ::ffff:0:0/96 as MaxMind's own databases are.
#   iploc   the CC0 ip-location-db layout: {country_code}. VALUE is CC. Not
#           aliased, like @ip-location-db/geo-whois-asn-country-mmdb: an
#           IPv4-mapped address finds nothing unless the reader converts it.
#   asn     GeoLite2-ASN: {autonomous_system_number, autonomous_system_organization}.
#           VALUE is NUMBER or NUMBER:Organization name.
#
# Options: --ip-version 4|6 (default 6), --random N (also N random public
# /24 networks, for benchmarks; countries from a fixed list), --seed S,
# --corrupt-data (overwrite the data section with 0xff bytes: the file
# opens, its search tree works, and a lookup that finds a record fails).
# NETWORK is a CIDR ("127.0.0.2/32", "::1/128"). Later entries win.
use strict;
use warnings;
use Getopt::Long;
use MaxMind::DB::Writer::Tree;

my ($layout, $ipv, $random, $seed, $corrupt) = ('geoip2', 6, 0, 1, 0);
GetOptions('layout=s' => \$layout, 'ip-version=i' => \$ipv,
           'random=i' => \$random, 'seed=i' => \$seed,
           'corrupt-data' => \$corrupt)
    or die "usage: mkdb.pl [--layout geoip2|iploc|asn] [--ip-version 4|6] OUT NETWORK=VALUE...\n";
my $out = shift @ARGV or die "mkdb.pl: no output file\n";
die "mkdb.pl: unknown layout '$layout'\n" unless $layout =~ /^(geoip2|iploc|asn)$/;

my %types = (
    country                        => 'map',
    registered_country             => 'map',
    iso_code                       => 'utf8_string',
    country_code                   => 'utf8_string',
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
);
my %type_name = (geoip2 => 'GeoLite2-Country', iploc => 'country',
                 asn => 'GeoLite2-ASN');

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => $ipv,
    record_size              => 24,
    database_type            => $type_name{$layout},
    languages                => ['en'],
    description              => { en => "Portcullis test database ($layout)" },
    map_key_type_callback    => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
    alias_ipv6_to_ipv4       => ($layout ne 'iploc' && $ipv == 6) ? 1 : 0,
);

sub record {
    my ($v) = @_;
    if ($layout eq 'asn') {
        my ($n, $org) = split /:/, $v, 2;
        die "mkdb.pl: bad AS number '$n'\n" unless $n =~ /^\d+$/;
        my %r = (autonomous_system_number => $n + 0);
        $r{autonomous_system_organization} = $org if defined $org;
        return \%r;
    }
    if ($layout eq 'iploc') {
        return { country_code => $v };
    }
    my ($cc, $rc) = split m{/}, $v, 2;
    my %r;
    $r{country} = { iso_code => $cc } if defined $cc && length $cc;
    $r{registered_country} = { iso_code => (defined $rc ? $rc : $cc) }
        if (defined $rc && length $rc) || (defined $cc && length $cc);
    return \%r;
}

if ($random) {
    # A deterministic pseudo-random generator: the same file every run.
    my $x = $seed * 2654435761 % 4294967296 || 1;
    my @cc = qw(US DE FR GB NL JP CN RU BR IN AU CA SE IT ES PL KR);
    for my $i (1 .. $random) {
        $x = ($x * 1103515245 + 12345) % 2147483648;
        my $a = 1 + ($x >> 8) % 223;
        next if $a == 10 || $a == 127 || $a == 100 || $a == 169 || $a == 172 || $a == 192;
        my $net = sprintf('%d.%d.%d.0/24', $a, ($x >> 3) % 256, $i % 256);
        my $v = $layout eq 'asn' ? (1000 + $x % 60000) . ':Org ' . ($x % 997)
                                 : $cc[$x % @cc];
        $tree->insert_network($net, record($v));
    }
}

for my $arg (@ARGV) {
    my ($net, $v) = split /=/, $arg, 2;
    die "mkdb.pl: expected NETWORK=VALUE, got '$arg'\n" unless defined $v;
    $tree->insert_network($net, record($v));
}

my $tmp = "$out.tmp.$$";
open my $fh, '>:raw', $tmp or die "mkdb.pl: $tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "mkdb.pl: $tmp: $!\n";

if ($corrupt) {
    # Layout: search tree (node_count * record_size / 4 bytes), 16 zero
    # bytes, data section, then the metadata marker and metadata.
    require MaxMind::DB::Reader;
    my $m = MaxMind::DB::Reader->new(file => $tmp)->metadata;
    my $start = $m->node_count * $m->record_size / 4 + 16;
    open my $in, '<:raw', $tmp or die "mkdb.pl: $tmp: $!\n";
    my $data = do { local $/; <$in> };
    close $in;
    my $meta = rindex $data, "\xab\xcd\xefMaxMind.com";
    die "mkdb.pl: no metadata marker\n" if $meta < $start;
    substr($data, $start, $meta - $start) = "\xff" x ($meta - $start);
    open my $o, '>:raw', $tmp or die "mkdb.pl: $tmp: $!\n";
    print {$o} $data;
    close $o or die "mkdb.pl: $tmp: $!\n";
}
rename $tmp, $out or die "mkdb.pl: rename to $out: $!\n";
