#!/usr/bin/env bash
# Miss-ratio-curve estimate against exact replays: tomato-cachesim --mrc on the developers' trace.
#
#   loadtest/bench/mrc.sh [--trace FILE] [--build-dir DIR] [--rate R] [--policies "segpool lru ..."]
#                         [--seeds "0 1 2"]
#
# For each policy and seed: the estimator (edge/cache/mrc.c) at sample rate R (default 0.01),
# 13 log-spaced sizes from 1/16 to 4 times a tenth of the footprint plus the three checked sizes
# (16 miniature caches), memory bound 4 MiB, and in the same pass the exact tiered replays at
# 1 %, 5 % and 10 % of the footprint. Prints a Markdown table: estimate, exact, absolute error,
# the estimator's memory (peak) and its final sample rate.
#
# --trace FILE     CSV trace (default: ../shared/traces/vod-dev.csv.zst, decompressed to a temp
#                  file with zstd -d)
# --build-dir DIR  take tomato-cachesim from DIR/bin (default build-rel, a Release build)
set -euo pipefail

cmdline="loadtest/bench/mrc.sh$(printf ' %q' "$@")"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build_dir=$top/build-rel
trace=""
rate=0.01
policies="segpool"
seeds="0"

while [ $# -gt 0 ]; do
    case "$1" in
    --trace) trace=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    *) echo "bench/mrc.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

sim=$build_dir/bin/tomato-cachesim
[ -x "$sim" ] || { echo "bench/mrc.sh: no $sim (cmake --build $build_dir --target tomato-cachesim)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$trace" ]; then
    [ -f "$top/../shared/traces/vod-dev.csv.zst" ] ||
        { echo "bench/mrc.sh: no trace: give --trace FILE" >&2; exit 1; }
    zstd -q -d -c "$top/../shared/traces/vod-dev.csv.zst" >"$tmp/vod-dev.csv"
    trace=$tmp/vod-dev.csv
    trace_name=vod-dev.csv.zst
else
    trace_name=$(basename "$trace")
fi

echo "### Miss-ratio curve estimate against exact replays"
echo
echo "- command: \`$cmdline\`"
echo "- trace: \`$trace_name\`; $("$sim" --version 2>&1 | head -n 1); the estimator at sample rate $rate, 13 log-spaced sizes plus the 3 checked ones, memory bound 4 MiB, against exact replays of the same policy in the same pass"
echo

echo "| policy | seed | size | estimate | exact | error | memory (peak) | rate |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for p in $policies; do
    for s in $seeds; do
        out=$("$sim" --trace "$trace" --policy "$p" --mrc "$rate" --mrc-seed "$s" --mrc-sizes 13 \
            --mrc-span 4 --mrc-check 0.01,0.05,0.10)
        last=$(tail -1 <<<"$out")
        mem=$(sed -n 's/.*mrc_peak_memory_bytes=\([0-9]*\).*/\1/p' <<<"$last")
        r=$(sed -n 's/.*sample_rate=\([0-9.]*\).*/\1/p' <<<"$last")
        grep '^check ' <<<"$out" | while read -r line; do
            get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
            printf '| %s | %s | %s %% | %s | %s | %s | %s | %s |\n' "$p" "$s" \
                "$(awk -v f="$(get fraction)" 'BEGIN { print f * 100 }')" \
                "$(get byte_miss_estimate)" "$(get byte_miss_exact)" "$(get byte_miss_error)" \
                "$mem" "$r"
        done
    done
done
