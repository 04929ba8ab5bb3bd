#!/usr/bin/env bash
# Runs every benchmark of loadtest/bench/ one after the other with its defaults (each measures
# ours and its peer in the same run, pinned to different cores, median of its runs) and rewrites
# the "Latest results" section of docs/BENCHMARKS.md with their reports, the machine's
# description and the date.
#
#   loadtest/bench/all.sh [--quick] [--only "NAME ..."] [--skip "NAME ..."] [--trace FILE]
#                         [--build-dir DIR] [--no-setup] [--no-write] [--keep]
#
#   --quick          each benchmark's --quick (one short run: figures for a smoke check, not for
#                    the record; the section says so)
#   --only, --skip   names of benchmarks (file names without .sh): static cache tokens_edge pack
#                    transcode token control geo policy mrc cold_viewers slow_viewers
#   --trace FILE     the trace for policy and mrc (default: the developers' trace beside the
#                    checkout when present, else one made with tomato-load gen-trace)
#   --build-dir DIR  a Release build of the programs and benchmark tools (default build-rel,
#                    configured and built when missing or out of date)
#   --no-setup       do not run scripts/setup.sh --bench (nginx, h2o, Varnish, Traffic Server,
#                    wrk, h2load)
#   --no-write       print the section on stdout instead of writing docs/BENCHMARKS.md
#   --keep           keep each benchmark's report and log (in a temp dir, printed)
#
# A benchmark that fails does not stop the others: its entry says so with the end of its log,
# and the exit status is 1. Each benchmark's report and log go to the temp dir as NAME.md and
# NAME.log while it runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
cmdline="loadtest/bench/all.sh$(printf ' %q' "$@")"

all=(static cache tokens_edge pack transcode token control geo policy mrc cold_viewers slow_viewers)
quick=0
only=""
skip=""
trace=""
build_dir=$top/build-rel
setup=1
write=1
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --trace) trace=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --no-setup) setup=0; shift ;;
    --no-write) write=0; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
    esac
done
for n in $only $skip; do
    [[ " ${all[*]} " == *" $n "* ]] || die "no benchmark '$n' (one of: ${all[*]})"
done
names=()
for n in "${all[@]}"; do
    [ -z "$only" ] || [[ " $only " == *" $n "* ]] || continue
    [[ " $skip " != *" $n "* ]] || continue
    names+=("$n")
done
[ "${#names[@]}" -gt 0 ] || die "nothing to run"

cd "$top"
[ "$setup" = 0 ] || scripts/setup.sh --bench >&2
case "$build_dir" in /*) ;; *) build_dir=$top/$build_dir ;; esac
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    note "configuring a Release build in $build_dir"
    cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
note "building $build_dir"
cmake --build "$build_dir" -j"$(nproc)" >/dev/null || die "the build in $build_dir failed"

tmp=$(mktemp -d)
if [ "$keep" = 1 ]; then
    note "reports and logs kept in $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi
if [ -z "$trace" ] && [ ! -f "$top/../shared/traces/vod-dev.csv.zst" ] &&
    [[ " ${names[*]} " == *" policy "* || " ${names[*]} " == *" mrc "* ]]; then
    requests=2000000
    [ "$quick" = 0 ] || requests=300000
    "$build_dir/bin/tomato-load" gen-trace --out "$tmp/trace.csv" --seed 7 \
        --set gen.requests="$requests" >/dev/null 2>&1 || die "tomato-load gen-trace failed"
    trace=$tmp/trace.csv
fi

args_for() { # name: the benchmark's arguments
    local q=() b=(--build-dir "$build_dir") t=()
    [ -z "$trace" ] || t=(--trace "$trace")
    case "$1" in
    static) [ "$quick" = 0 ] && echo "--memory" || echo "--quick --memory --conns 2000" ;;
    transcode) [ "$quick" = 0 ] && echo "${b[*]}" || echo "${b[*]} --runs 1 --seconds 10" ;;
    mrc) echo "${b[*]} ${t[*]}" ;;
    policy)
        [ "$quick" = 0 ] || q=(--quick)
        echo "${b[*]} ${t[*]} ${q[*]}"
        ;;
    *)
        [ "$quick" = 0 ] || q=(--quick)
        echo "${b[*]} ${q[*]}"
        ;;
    esac
}

started=$(date -u +%Y-%m-%dT%H:%MZ)
t_all=$SECONDS
failed=()
declare -A took status
for n in "${names[@]}"; do
    read -r -a a <<<"$(args_for "$n")"
    note "running $n: loadtest/bench/$n.sh ${a[*]}"
    t0=$SECONDS
    if TOMATO_EDGE=$build_dir/bin/tomato-edge "$here/$n.sh" "${a[@]}" >"$tmp/$n.md" 2>"$tmp/$n.log"; then
        status[$n]=0
    else
        status[$n]=$?
        failed+=("$n")
        note "$n failed (exit ${status[$n]}); its log ends with:"
        tail -n 5 "$tmp/$n.log" | sed 's/^/    /' >&2
    fi
    took[$n]=$((SECONDS - t0))
    note "$n took ${took[$n]} s"
done

machine() {
    local cpu mem os
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
    os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
    echo "${cpu:-unknown CPU}, $(nproc) cores, $mem, ${os:-unknown OS}, Linux $(uname -r)"
}
rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev with local changes"

section=$tmp/section.md
{
    echo "## Latest results"
    echo
    echo "Written by \`$cmdline\` on $started ($((SECONDS - t_all)) s in all), source at $rev."
    echo "Machine: $(machine)."
    if [ "$quick" = 1 ]; then
        echo
        echo "**A quick run** (\`--quick\`: one short measurement each): a check that every benchmark"
        echo "runs, not figures to compare; the sections after this one hold the full runs."
    fi
    echo
    echo "| benchmark | command | time | result |"
    echo "| --- | --- | ---: | --- |"
    for n in "${names[@]}"; do
        r=ok
        [ "${status[$n]}" = 0 ] || r="**failed** (exit ${status[$n]})"
        echo "| [$n](#$n) | \`$(echo "loadtest/bench/$n.sh $(args_for "$n")" | sed "s#$top/##g; s/ *\$//; s/  */ /g")\` | ${took[$n]} s | $r |"
    done
    for n in "${names[@]}"; do
        echo
        echo "<a id=\"$n\"></a>"
        echo
        if [ "${status[$n]}" != 0 ]; then
            echo "### $n: failed (exit ${status[$n]})"
            echo
            echo '```'
            tail -n 8 "$tmp/$n.log" | sed "s#$top/##g"
            echo '```'
            continue
        fi
        # The report's first heading becomes this section's heading, later ones one level
        # below it; paths inside the checkout are shown relative to it.
        awk 'BEGIN { first = 1 }
             /^#+ / { sub(/^#+ /, ""); print (first ? "### " : "#### ") $0; first = 0; next }
             { print }' "$tmp/$n.md" | sed "s#$top/##g"
    done
} >"$section"

if [ "$write" = 0 ]; then
    cat "$section"
else
    python3 - "$top/docs/BENCHMARKS.md" "$section" <<'PY'
import sys
path, section = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
begin = "<!-- loadtest/bench/all.sh writes from here to its closing marker: edits in between are lost -->"
end = "<!-- loadtest/bench/all.sh writes up to here -->"
text = open(path).read()
block = begin + "\n\n" + section + "\n\n" + end
if begin in text and end in text:
    a = text.index(begin)
    b = text.index(end) + len(end)
    text = text[:a] + block + text[b:]
else:
    # First time: after the introduction, before the first section.
    a = text.index("\n## ") + 1 if "\n## " in text else len(text)
    text = text[:a] + block + "\n\n" + text[a:]
tmp = path + ".tmp"
open(tmp, "w").write(text)
import os
os.replace(tmp, path)
PY
    note "wrote the Latest results section of docs/BENCHMARKS.md"
fi
[ "${#failed[@]}" = 0 ] || die "failed: ${failed[*]}"
