#!/usr/bin/perl
# make_city_mmdb.pl: writes small MaxMind DB files in the City format for libtmt_geo's tests and
# benchmark, with Debian's libmaxmind-db-writer-perl (scripts/setup.sh installs it).
#
#   make_city_mmdb.pl OUTDIR
#       the test set, used by tests/unit/geo/test_geo.c (which runs this script itself into a
#       temporary folder, so the test needs no fixture):
#         city.mmdb      IPv6 tree (IPv4 under ::/96, IPv4-mapped aliased), type GeoIP2-City:
#                          81.2.69.0/24     London    51.5074  -0.1278
#                          2.125.160.0/19   Paris     48.8566   2.3522
#                          216.160.83.0/24  New York  40.7128 -74.0060
#                          10.20.0.0/16     Sydney   -33.8688 151.2093  (private: looked up too)
#                          2001:db8:1::/48  Tokyo     35.6762 139.6503
#                          89.160.20.0/24   a country and no location
#                          175.16.199.0/24  a latitude and no longitude
#         city4.mmdb     IPv4 tree, type GeoLite2-City: 81.2.69.0/24 London
#         country.mmdb   type GeoIP2-Country: 81.2.69.0/24 with a country only
#   make_city_mmdb.pl --random N SEED FILE
#       the benchmark's database: N distinct random IPv4 /24 networks (from SEED), each with a
#       City record of the usual shape (city, continent, country, location, postal) at random
#       coordinates; FILE.txt lists them, one "CIDR LAT LON" per line.
#
# Reserved networks are kept (remove_reserved_networks => 0): operators' and tests' private
# ranges must be found like any other.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my %types = (
    city                => 'map',
    continent           => 'map',
    country             => 'map',
    location            => 'map',
    postal              => 'map',
    names               => 'map',
    geoname_id          => 'uint32',
    iso_code            => 'utf8_string',
    code                => 'utf8_string',
    en                  => 'utf8_string',
    de                  => 'utf8_string',
    fr                  => 'utf8_string',
    latitude            => 'double',
    longitude           => 'double',
    accuracy_radius     => 'uint16',
    time_zone           => 'utf8_string',
);

sub tree {
    my ($ip_version, $type) = @_;
    return MaxMind::DB::Writer::Tree->new(
        ip_version               => $ip_version,
        record_size              => 28,
        database_type            => $type,
        languages                => ['en', 'de', 'fr'],
        description              => { en => 'Tomato CDN test database' },
        map_key_type_callback    => sub { $types{ $_[0] } },
        remove_reserved_networks => 0,
        alias_ipv6_to_ipv4       => $ip_version == 6 ? 1 : 0,
    );
}

sub city {
    my ($name, $iso, $lat, $lon, $id) = @_;
    return {
        city      => { geoname_id => $id, names => { en => $name, de => $name, fr => $name } },
        continent => { code => 'EU', geoname_id => 6255148, names => { en => 'Europe' } },
        country   => { geoname_id => 2635167, iso_code => $iso,
                       names => { en => "Country $iso", de => "Land $iso", fr => "Pays $iso" } },
        location  => { accuracy_radius => 20, latitude => $lat, longitude => $lon,
                       time_zone => 'Europe/London' },
        postal    => { code => 'EC1A' },
    };
}

sub write_tree {
    my ($tree, $file) = @_;
    open my $fh, '>:raw', $file or die "$file: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$file: $!\n";
}

if (@ARGV == 4 && $ARGV[0] eq '--random') {
    my (undef, $n, $seed, $file) = @ARGV;
    die "N must be 1..1000000\n" unless $n =~ /^\d+$/ && $n >= 1 && $n <= 1000000;
    srand($seed);
    my $t = tree(6, 'GeoIP2-City');
    my (%seen, @nets);
    while (@nets < $n) {
        my $v = int(rand(224 * 65536)) + 65536;    # 1.0.0.0 .. 224.0.0.0, as /24s
        next if $seen{$v}++;
        my $cidr = sprintf('%d.%d.%d.0/24', $v >> 16, ($v >> 8) & 255, $v & 255);
        my $lat = sprintf('%.4f', rand(140) - 60);
        my $lon = sprintf('%.4f', rand(360) - 180);
        $t->insert_network($cidr, city("City$v", 'ZZ', $lat + 0, $lon + 0, $v));
        push @nets, "$cidr $lat $lon";
    }
    write_tree($t, $file);
    open my $fh, '>', "$file.txt" or die "$file.txt: $!\n";
    print $fh "$_\n" for @nets;
    close $fh or die "$file.txt: $!\n";
    exit 0;
}

die "usage: make_city_mmdb.pl OUTDIR | --random N SEED FILE\n" unless @ARGV == 1;
my $dir = $ARGV[0];

my $t = tree(6, 'GeoIP2-City');
$t->insert_network('81.2.69.0/24',    city('London',   'GB',  51.5074,  -0.1278, 2643743));
$t->insert_network('2.125.160.0/19',  city('Paris',    'FR',  48.8566,   2.3522, 2988507));
$t->insert_network('216.160.83.0/24', city('New York', 'US',  40.7128, -74.0060, 5128581));
$t->insert_network('10.20.0.0/16',    city('Sydney',   'AU', -33.8688, 151.2093, 2147714));
$t->insert_network('2001:db8:1::/48', city('Tokyo',    'JP',  35.6762, 139.6503, 1850147));
$t->insert_network('89.160.20.0/24',  { country => { iso_code => 'SE', geoname_id => 2661886 } });
$t->insert_network('175.16.199.0/24', { location => { latitude => 43.88 } });
write_tree($t, "$dir/city.mmdb");

my $t4 = tree(4, 'GeoLite2-City');
$t4->insert_network('81.2.69.0/24', city('London', 'GB', 51.5074, -0.1278, 2643743));
write_tree($t4, "$dir/city4.mmdb");

my $tc = tree(6, 'GeoIP2-Country');
$tc->insert_network('81.2.69.0/24', { country => { iso_code => 'GB', geoname_id => 2635167 } });
write_tree($tc, "$dir/country.mmdb");
