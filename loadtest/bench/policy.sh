#!/usr/bin/env bash
# Cache-policy benchmark: tomato-cachesim replays one request trace through LRU (the floor),
# SIEVE, S3-FIFO and segpool (the edge's default policy) with the edge's tier model, at 1 %, 5 %
# and 10 % of the trace's footprint, and prints miss ratios, byte miss ratios and each policy
# against LRU.
#
#   loadtest/bench/policy.sh [--trace FILE] [--build-dir DIR] [--sizes "1 5 10"]
#                            [--policies "lru sieve s3fifo segpool"] [--requests N] [--quick]
#
#   --trace FILE     a trace (CSV, or .zst decompressed with zstd). Default: the developers'
#                    trace ../shared/traces/vod-dev.csv.zst beside the checkout when it is there,
#                    else one made by `tomato-load gen-trace --seed 7` with --requests requests
#   --requests N     requests of a generated trace (default 2000000; --quick 300000)
#   --sizes "P ..."  cache sizes in percent of the footprint (default "1 5 10")
#   --policies "..." policies to replay (default "lru sieve s3fifo segpool")
#   --build-dir DIR  tomato-cachesim and tomato-load from DIR/bin (default build-rel)
#
# Replays are deterministic (no clock, no network): each cell is one replay, and a second run
# prints the same figures. The replay time of each cell is printed as well (CPU-bound, one thread).
# Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
cmdline="loadtest/bench/policy.sh$(printf ' %q' "$@")"

build_dir=$top/build-rel
trace=""
requests=2000000
sizes="1 5 10"
policies="lru sieve s3fifo segpool"
while [ $# -gt 0 ]; do
    case "$1" in
    --trace) trace=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    --quick) requests=300000; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
    esac
done
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir (cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release)"
sim=$build_dir/bin/tomato-cachesim
load=$build_dir/bin/tomato-load
[ -x "$sim" ] || die "no $sim (cmake --build ${build_dir#"$top"/} --target tomato-cachesim)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
shared=$top/../shared/traces/vod-dev.csv.zst
if [ -z "$trace" ] && [ -f "$shared" ]; then
    trace=$shared
fi
if [ -z "$trace" ]; then
    [ -x "$load" ] || die "no $load to generate a trace (or give --trace)"
    "$load" gen-trace --out "$tmp/gen.csv" --seed 7 --set gen.requests="$requests" >/dev/null 2>&1 ||
        die "tomato-load gen-trace failed"
    trace_desc="generated: \`tomato-load gen-trace --seed 7 --set gen.requests=$requests\`"
    trace=$tmp/gen.csv
else
    trace_desc="\`$(basename "$trace")\`"
    case "$trace" in
    *.zst)
        command -v zstd >/dev/null || die "zstd is needed to read $trace"
        zstd -q -d -c "$trace" >"$tmp/trace.csv" || die "cannot decompress $trace"
        trace=$tmp/trace.csv
        ;;
    esac
fi

stats=$("$sim" --trace "$trace" | tail -n 2) || die "tomato-cachesim cannot read $trace"
footprint=$(echo "$stats" | sed -n 's/.*footprint_bytes=\([0-9]*\).*/\1/p')
nreq=$(echo "$stats" | sed -n 's/^requests=\([0-9]*\).*/\1/p')
[ -n "$footprint" ] && [ "$footprint" -gt 0 ] || die "no footprint in: $stats"

declare -A miss bmiss secs
for pct in $sizes; do
    size=$((footprint * pct / 100))
    for p in $policies; do
        t0=$(now_ns)
        last=$("$sim" --trace "$trace" --size "$size" --policy "$p" | tail -n 1) ||
            die "tomato-cachesim --policy $p --size $size failed"
        t1=$(now_ns)
        miss[$p,$pct]=$(echo "$last" | sed -n 's/^miss_ratio=\([0-9.]*\) .*/\1/p')
        bmiss[$p,$pct]=$(echo "$last" | sed -n 's/.*byte_miss_ratio=\([0-9.]*\).*/\1/p')
        secs[$p,$pct]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
        [ -n "${bmiss[$p,$pct]}" ] || die "no miss ratios in '$last'"
        note "$p at $pct %: $last (${secs[$p,$pct]} s)"
    done
done

echo "### Cache policy: byte miss ratio, tomato-cachesim against LRU"
echo
echo "- command: \`$cmdline\`"
echo "- trace: $trace_desc, $nreq requests, footprint $footprint bytes"
echo "- $("$sim" --version 2>&1 | head -n 1), the edge's tier model with its default split (hot 10 %, warm 30 %, cold the rest)"
echo
printf '| policy |'
for pct in $sizes; do printf ' %s %% miss | %s %% byte miss |' "$pct" "$pct"; done
echo
printf '| --- |'
for _ in $sizes; do printf ' ---: | ---: |'; done
echo
for p in $policies; do
    printf '| %s |' "$p"
    for pct in $sizes; do printf ' %s | %s |' "${miss[$p,$pct]}" "${bmiss[$p,$pct]}"; done
    echo
done
if [[ " $policies " == *" lru "* ]]; then
    echo
    echo "Byte miss ratio against LRU (difference, and ratio; lower is better):"
    echo
    printf '| policy |'
    for pct in $sizes; do printf ' %s %% − LRU | %s %% ÷ LRU |' "$pct" "$pct"; done
    echo
    printf '| --- |'
    for _ in $sizes; do printf ' ---: | ---: |'; done
    echo
    for p in $policies; do
        [ "$p" = lru ] && continue
        printf '| %s |' "$p"
        for pct in $sizes; do
            awk -v a="${bmiss[$p,$pct]}" -v b="${bmiss[lru,$pct]}" \
                'BEGIN { printf " %+.4f | %.3f |", a - b, (b > 0 ? a / b : 0) }'
        done
        echo
    done
fi
echo
printf 'Replay time in seconds (one thread):'
for p in $policies; do
    printf ' %s' "$p"
    for pct in $sizes; do printf ' %s' "${secs[$p,$pct]}"; done
    printf ';'
done
echo
