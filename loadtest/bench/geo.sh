#!/usr/bin/env bash
# Geo benchmark: route decisions per second of libtmt_geo on one thread, against a linear scan of
# the coverage-zone CIDR list and against libmaxminddb's own lookups, in the same run.
#
#   loadtest/bench/geo.sh [--iter N] [--runs N] [--networks N] [--quick] [--build-dir DIR]
#
#   setup   tests/unit/geo/make_city_mmdb.pl --random N 1 makes a MaxMind City database of N
#           random IPv4 /24 networks (default 100000), each with a full City record (city,
#           continent, country, location, postal); tmt-geo-bench (loadtest/geo_bench.c) makes a
#           coverage-zone file of 10,000 random CIDRs (8,000 IPv4, 2,000 IPv6) over 50 groups,
#           200 edges (4 a group), and 1024 client addresses of each kind, as text.
#   ours    tmt-geo-bench on core 0: per operation, tmt_geo_addr_parse of the client text, then
#             coverage hit  tmt_geo_choose: trie lookup, rendezvous among the group's 4 edges;
#             geo hit       tmt_geo_choose: trie miss, database location, nearest of the 50
#                           groups over the 200 edges (each edge placed on its own), rendezvous;
#             default       tmt_geo_choose: trie miss, database miss, default group, rendezvous;
#           and the lookups alone: tmt_geo_zones_lookup, tmt_geo_db_locate.
#   theirs  in the same process, in turn with ours: a linear scan of the 10,000 CIDRs sorted
#           longest prefix first, stopping at the first match (after inet_pton), for the
#           coverage rows; libmaxminddb's MMDB_lookup_string then MMDB_get_value for
#           location.latitude and location.longitude for the geo rows (also with inet_pton and
#           MMDB_lookup_sockaddr, without its getaddrinfo); the scan and MMDB_lookup_string both
#           missing for the default row. Every answer of both sides is checked before timing.
#   Each figure is the median over the runs of the time per operation; the ratio is operations
#   per second, ours ÷ theirs (higher is better for us). The decision rows do more work than
#   their peer (the peer is only the lookup a decision starts with): read them as the cost of a
#   whole decision next to the library call alone.
#
#   --iter N            operations per row and run (default 200000)
#   --runs N            runs, the median is reported (default 5)
#   --networks N        networks in the generated database (default 100000; the Perl writer
#                       takes about 35 s per 100000)
#   --quick             --iter 50000 --runs 3 --networks 20000
#   --build-dir DIR     take tmt-geo-bench from DIR/bin (default build; a Release build is fair:
#                       cmake -S . -B build-geo-rel -DCMAKE_BUILD_TYPE=Release &&
#                       cmake --build build-geo-rel -j1 --target tmt-geo-bench)
#
# Environment: TMT_GEO_BENCH = path to the binary (overrides --build-dir). Tools: perl with
# libmaxmind-db-writer-perl, python3, taskset (scripts/setup.sh installs them). Output: a
# Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
build_dir=$top/build
cmdline="loadtest/bench/geo.sh$(printf ' %q' "$@")"
tool_pid=""

iter=200000
runs=5
networks=100000
core=0

while [ $# -gt 0 ]; do
    case "$1" in
    --iter)
        [ $# -ge 2 ] || die "--iter needs a value"
        iter=$2
        shift 2
        ;;
    --iter=*)
        iter=${1#*=}
        shift
        ;;
    --runs)
        [ $# -ge 2 ] || die "--runs needs a value"
        runs=$2
        shift 2
        ;;
    --runs=*)
        runs=${1#*=}
        shift
        ;;
    --networks)
        [ $# -ge 2 ] || die "--networks needs a value"
        networks=$2
        shift 2
        ;;
    --networks=*)
        networks=${1#*=}
        shift
        ;;
    --quick)
        iter=50000
        runs=3
        networks=20000
        shift
        ;;
    --build-dir)
        [ $# -ge 2 ] || die "--build-dir needs a value"
        build_dir=$2
        shift 2
        ;;
    --build-dir=*)
        build_dir=${1#*=}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench/geo.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done
if ! [[ "$iter" =~ ^[1-9][0-9]*$ ]] || [ "$iter" -lt 1000 ]; then
    die "--iter takes a count >= 1000, got '$iter'"
fi
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a count >= 1, got '$runs'"
if ! [[ "$networks" =~ ^[1-9][0-9]*$ ]] || [ "$networks" -lt 2000 ] || [ "$networks" -gt 1000000 ]; then
    die "--networks takes a count from 2000 to 1000000, got '$networks'"
fi
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
bench_bin=${TMT_GEO_BENCH:-$build_dir/bin/tmt-geo-bench}

# ---- tools ----

missing=()
need_tool taskset util-linux
need_tool python3 python3
need_tool perl perl
if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do note "missing $m"; done
    die "install them with: scripts/setup.sh"
fi
perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null ||
    die "perl cannot load MaxMind::DB::Writer::Tree (install libmaxmind-db-writer-perl with scripts/setup.sh)"
rel=${build_dir#"$top"/}
[ -x "$bench_bin" ] || die "no tmt-geo-bench at $bench_bin (build it: cmake --build $rel -j1 --target tmt-geo-bench)"
build_type=unknown
build_cache=$(dirname "$(dirname "$bench_bin")")/CMakeCache.txt
if [ -f "$build_cache" ]; then
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_cache")
    build_type=${build_type:-none}
fi
case "$build_type" in
Release | RelWithDebInfo) ;;
*) note "WARNING: $bench_bin is a '$build_type' build; the comparison is only fair with Release (see --help)" ;;
esac
taskset -c "$core" true 2>/dev/null || die "needs core $core (taskset -c $core failed)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-geo.XXXXXX")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$tool_pid" ]; then kill "$tool_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits, so that a signal stops the script at once.
run_tool() {
    "$@" &
    tool_pid=$!
    local rc=0
    wait "$tool_pid" || rc=$?
    tool_pid=""
    return "$rc"
}

# ---- the database, then the runs ----

note "making a City database of $networks networks (make_city_mmdb.pl)"
t0=$(now_ns)
run_tool perl "$top/tests/unit/geo/make_city_mmdb.pl" --random "$networks" 1 "$tmp/city.mmdb" ||
    die "make_city_mmdb.pl failed"
db_s=$((($(now_ns) - t0) / 1000000000))
note "$runs runs of tmt-geo-bench ($iter operations per row), on core $core"
run_tool taskset -c "$core" "$bench_bin" "$tmp/city.mmdb" "$tmp/city.mmdb.txt" "$iter" "$runs" 1 \
    >"$tmp/out.txt" 2>"$tmp/err.txt" || die "tmt-geo-bench failed: $(tail -n 5 "$tmp/err.txt")"

# ---- the report ----

python3 - "$tmp/out.txt" "$cmdline" "$build_type" "$build_cache" "$tmp/city.mmdb" "$db_s" <<'EOF'
import os, platform, subprocess, sys, time

out, cmdline, build_type, build_cache, db_path, db_s = sys.argv[1:7]
kv = dict(line.rstrip("\n").split("=", 1) for line in open(out))


def src_rev():
    src = None
    if os.path.exists(build_cache):
        for line in open(build_cache):
            if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                src = line.split("=", 1)[1].strip()
    try:
        rev = subprocess.run(["git", "-C", src or ".", "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", src or ".", "status", "--porcelain", "--", "geo",
                                "loadtest/geo_bench.c"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (", with uncommitted changes to geo/ or geo_bench.c" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pkg_version(name):
    r = subprocess.run(["pkg-config", "--modversion", name], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def ns(k):
    return float(kv[k + "_ns_median"])


def us(v):
    return "%.2f" % (v / 1000)


def per_s(v):
    return "{:,}".format(round(1e9 / v))


def runs_us(k):
    return ", ".join("%.2f" % (float(x) / 1000) for x in kv[k + "_ns_runs"].split(","))


print("### Geo routing: libtmt_geo against a linear CIDR scan and libmaxminddb (one thread)")
print()
print("Command: `%s`" % cmdline)
print()
print("- tmt-geo-bench (build of git %s, CMAKE_BUILD_TYPE=%s), libmaxminddb %s, xxHash %s"
      % (src_rev(), build_type, pkg_version("libmaxminddb"), pkg_version("libxxhash")))
print("- coverage zones: %s distinct random CIDRs (%s IPv6) over %s groups, a %s-byte file read "
      "in %s ms, %s KiB of heap once loaded (mallinfo2)"
      % ("{:,}".format(int(kv["prefixes"])), "{:,}".format(int(kv["prefixes_v6"])), kv["groups"],
         "{:,}".format(int(kv["zone_file_bytes"])), kv["zone_parse_ms"],
         "{:,}".format(int(kv["zone_heap_bytes"]) // 1024)))
print("- database: %s (%s), %s random IPv4 /24 networks with full City records, %s MB, made "
      "in %s s by make_city_mmdb.pl"
      % (os.path.basename(db_path), kv["db_type"],
         "{:,}".format(sum(1 for _ in open(kv["db_networks_file"]))),
         "%.1f" % (os.path.getsize(db_path) / 1e6), db_s))
print("- %s edges (4 a group, each placed on its own near its group), 1024 client addresses "
      "of each kind as text; both sides on core 0 (taskset), in the same process, in turn"
      % kv["edges"])
print("- %s runs of %s operations per row; the median over the runs of the time per operation"
      % (kv["runs"], "{:,}".format(int(kv["iter"]))))
print("- machine: %d cores (%s), Linux %s, %s" % (
    os.cpu_count(), cpu_model(), platform.release(), time.strftime("%Y-%m-%d", time.gmtime())))
print()
print("| row | ours | ours µs | ours per s | theirs | theirs µs | theirs per s "
      "| ratio (per s, ours ÷ theirs) |")
print("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |")
rows = (
    ("coverage hit", "decision: parse, trie, rendezvous", "zone_choose",
     "linear scan of the CIDRs", "zone_scan"),
    ("coverage hit", "lookup: parse, trie", "zone_lookup", "linear scan of the CIDRs",
     "zone_scan"),
    ("geo hit", "decision: parse, trie miss, locate, nearest of 200 edges, rendezvous",
     "geo_choose", "MMDB_lookup_string + 2 MMDB_get_value", "geo_mmdb"),
    ("geo hit", "locate: parse, tmt_geo_db_locate", "geo_locate",
     "MMDB_lookup_string + 2 MMDB_get_value", "geo_mmdb"),
    ("geo hit", "locate: parse, tmt_geo_db_locate", "geo_locate",
     "inet_pton + MMDB_lookup_sockaddr + 2 MMDB_get_value", "geo_mmdb_sa"),
    ("default", "decision: parse, trie miss, database miss, default group", "dflt_choose",
     "linear scan miss + MMDB_lookup_string miss", "dflt_naive"),
)
for label, ours, ok, theirs, tk in rows:
    o, t = ns(ok), ns(tk)
    print("| %s | %s | %s | %s | %s | %s | %s | %.2f |"
          % (label, ours, us(o), per_s(o), theirs, us(t), per_s(t), t / o))
print()
print("Per run (µs): " + "; ".join(
    "%s %s" % (k, runs_us(k)) for k in ("zone_choose", "zone_lookup", "zone_scan", "geo_choose",
                                        "geo_locate", "geo_mmdb", "geo_mmdb_sa", "dflt_choose",
                                        "dflt_naive")) + ".")
print()
EOF
