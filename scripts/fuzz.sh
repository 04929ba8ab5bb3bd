#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (plus ASan and UBSan) and runs each for a bounded time,
# starting from its committed corpus. New inputs go to build-fuzz/corpus/<target>/, never into the
# source tree; a crash leaves its input in build-fuzz/ and fails the run.
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]      (default: every target, 30 s each)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds)
        seconds=${2:?--seconds needs a value}
        shift 2
        ;;
    -h | --help)
        sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        targets+=("$1")
        shift
        ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    for c in tests/fuzz/*.c; do
        n=$(basename "$c" .c)
        [ "$n" = replay_main ] || targets+=("$n")
    done
fi

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTMT_FUZZ=ON \
    -DTMT_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

for t in "${targets[@]}"; do
    work="build-fuzz/corpus/$t"
    mkdir -p "$work"
    echo "fuzz: $t for ${seconds}s"
    (cd build-fuzz && ./fuzz/"fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -dict=../tests/fuzz/dict/"$t".dict \
        "corpus/$t" ../tests/fuzz/corpus/"$t" 2>&1 | tail -n 12)
done
echo "fuzz: ${#targets[@]} targets, no crash"
