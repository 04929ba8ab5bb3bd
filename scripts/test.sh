#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the README's test command and CI's.
#
#   scripts/test.sh            all stages
#   scripts/test.sh --quick    setup, format, the main build and its tests only
#
# Stages (each prints its time):
#   setup     scripts/setup.sh (Debian packages, skipped when present)
#   format    clang-format check of every C file
#   build     RelWithDebInfo, warnings as errors, into build/
#   test      ctest in build/ (unit, proc, fuzz corpus replays, repo checks, browser players)
#   demo      scripts/demo.sh --smoke: the README's main command starts, reloads and stops
#   sanitize  AddressSanitizer + UBSan build into build-asan/ and the same tests
#   fuzz      clang libFuzzer build into build-fuzz/, each target for TMT_FUZZ_SECONDS (30)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    esac
done

jobs=$(nproc)
stage_start=0
stage() {
    stage_start=$SECONDS
    echo
    echo "=== stage: $1"
}
stage_done() {
    echo "=== stage: $1 done in $((SECONDS - stage_start))s"
}

stage setup
scripts/setup.sh
stage_done setup

stage format
mapfile -t cfiles < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -path ./build\* -prune -o -name '*.[ch]' -print)
clang-format --dry-run -Werror "${cfiles[@]}"
echo "format: ${#cfiles[@]} files clean"
stage_done format

stage build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTMT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
stage_done build

stage test
(cd build && ctest --output-on-failure -j"$jobs")
stage_done test

stage demo
scripts/demo.sh --smoke >/dev/null
echo "demo: smoke run passed"
stage_done demo

[ "$quick" = 1 ] && exit 0

stage sanitize
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTMT_WERROR=ON \
    -DTMT_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j"$jobs" -LE 'bench|soak|browser|valgrind')
stage_done sanitize

stage fuzz
scripts/fuzz.sh --seconds "${TMT_FUZZ_SECONDS:-30}"
stage_done fuzz
