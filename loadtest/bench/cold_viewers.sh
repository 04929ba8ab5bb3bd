#!/usr/bin/env bash
# Cold-cache viewers: tomato-load through tomato-edge -> tomato-shield -> packager, against nginx
# proxy_cache in front of the same shield, each starting with empty caches (its own and the
# shield's), same load, same seed.
#
#   loadtest/bench/cold_viewers.sh [--runs N] [--assets N] [--seconds S] [--viewers N]
#                                  [--requests N] [--seed N] [--edge-set KEY=VALUE]...
#                                  [--build-dir DIR] [--quick] [--keep]
#
# Media: ffmpeg makes --assets mezzanines of --seconds seconds (tests/proc/harness/media.py: three
# H.264 renditions r0 320x180, r1 480x270, r2 640x360 with AAC, 24 fps, keyframes every 2 s) and
# their asset.json (4-second segments). tomato-shield packages them on demand (server.open=true).
# Every measurement starts a fresh shield (empty cache dir) and a fresh cache in front of it:
#   tomato-edge        server.workers=1, tokens.public=/v/, upstream.shields = the shield, new
#                      warm and cold RocksDB dirs (nothing cached)
#   nginx proxy_cache  loadtest/bench/peers/nginx_proxy_cache.conf.in: worker_processes 1, new cache
#                      dir, proxy_cache_lock on (coalescing), keep-alive to the shield
# The cache and the shield run on core 0 (taskset -c 0), tomato-load on core 1 (taskset -c 1).
# Two passes, each on fresh caches:
#   misses   tomato-load replay of a trace holding every object of every asset once (master
#            playlist, then per rendition its playlist, init segment and segments in order, the
#            assets interleaved), --connections = number of assets, as fast as possible: every
#            request is a miss at the cache and at the shield (checked from X-Cache). Its time
#            to first byte is the miss TTFB distribution: p50/p90/p99/p99.9.
#   viewers  tomato-load viewers --pace fast, --viewers N, --seed, --requests N, think 0, all
#            starting at once over the Zipf-popular assets: misses, coalesced misses and hits
#            mixed. Reported: TTFB of all requests, the misses seen (X-Cache), and upstream
#            requests (what the shield served, tmt_shield_requests_total) per distinct object
#            (distinct paths in the shield's access log) and per request served; for tomato-edge
#            also tmt_edge_upstream_requests_total and tmt_edge_coalesced_waits_total.
# Each figure is the median over --runs; the ratios are ours / nginx (TTFB: lower is better).
#
#   --runs N        measurements per pass and server (default 3)
#   --assets N      mezzanines to make (default 10)
#   --seconds S     length of each (default 60; 4-second segments)
#   --viewers N     viewers in the viewer pass (default 50)
#   --requests N    requests in the viewer pass (default 3000)
#   --seed N        tomato-load seed (default 7)
#   --edge-set K=V  one more tomato-edge setting (repeatable), e.g. cache.warm_size=0
#   --quick         --runs 1 --assets 3 --seconds 16 --viewers 8 --requests 200
#   --build-dir DIR tomato-edge, tomato-shield and tomato-load from DIR/bin (default build-rel:
#                   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release)
#   --keep          keep the temp dir (media, configs, logs, JSON reports) and print its path
#
# Tools: ffmpeg, nginx (scripts/setup.sh --bench), curl, python3, taskset. Loopback only.
# Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
cmdline="loadtest/bench/cold_viewers.sh"
[ $# -eq 0 ] || cmdline+=$(printf ' %q' "$@")

build_dir=$top/build-rel
runs=3
n_assets=10
seconds=60
viewers=50
requests=3000
seed=7
edge_sets=()
keep=0
server_core=0
client_core=1
seg_s=4

need_val() { [ "$2" -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) need_val "$1" $#; runs=$2; shift 2 ;;
    --assets) need_val "$1" $#; n_assets=$2; shift 2 ;;
    --seconds) need_val "$1" $#; seconds=$2; shift 2 ;;
    --viewers) need_val "$1" $#; viewers=$2; shift 2 ;;
    --requests) need_val "$1" $#; requests=$2; shift 2 ;;
    --seed) need_val "$1" $#; seed=$2; shift 2 ;;
    --edge-set) need_val "$1" $#; edge_sets+=(--set "$2"); shift 2 ;;
    --build-dir) need_val "$1" $#; build_dir=$2; shift 2 ;;
    --quick) runs=1; n_assets=3; seconds=16; viewers=8; requests=200; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$bench_name: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
for v in runs n_assets seconds viewers requests; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v#n_} takes a whole number >= 1, got '${!v}'"
done
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed takes a whole number, got '$seed'"
[ $((seconds % seg_s)) = 0 ] || die "--seconds must be a multiple of $seg_s"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
edge_bin=$build_dir/bin/tomato-edge
shield_bin=$build_dir/bin/tomato-shield
load_bin=$build_dir/bin/tomato-load
n_segs=$((seconds / seg_s))

missing=()
need_tool taskset util-linux
need_tool curl curl
need_tool python3 python3
need_tool ffmpeg ffmpeg
need_tool nginx nginx-light
need_tool ps procps
preflight "$build_dir" tomato-edge tomato-shield tomato-load

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-cold.XXXXXX")
chmod 755 "$tmp" # nginx's worker runs as nobody
mkdir -p "$tmp/logs"
started=()
tool_pid=""
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    [ -z "$tool_pid" ] || kill "$tool_pid" 2>/dev/null || true
    for p in "${started[@]}"; do stop_server "$p"; done
    if [ "$keep" = 1 ]; then note "temp dir kept: $tmp"; else rm -rf "$tmp"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget() { # pid: drop from started
    local p keep_list=()
    for p in "${started[@]}"; do [ "$p" = "$1" ] || keep_list+=("$p"); done
    started=("${keep_list[@]}")
}

# ---- media ----

mezz=$tmp/mezz
assets=()
for i in $(seq "$n_assets"); do assets+=("a$i"); done
note "making $n_assets assets of ${seconds}s (3 renditions) with ffmpeg"
t0=$(now_ns)
# Two ffmpeg processes at a time: the machine has two cores.
printf '%s\n' "${assets[@]}" | xargs -P 2 -I{} python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import media
media.make_asset(sys.argv[2], sys.argv[3], seconds=int(sys.argv[4]), seg=4,
                 rungs=[("r0", 320, 180, 300000), ("r1", 480, 270, 500000), ("r2", 640, 360, 800000)])
' "$top/tests/proc/harness" "$mezz" {} "$seconds" || die "ffmpeg could not make the media"
note "media made in $(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.0f", (b - a) / 1e9 }') s ($(du -sh "$mezz" | cut -f1))"
chmod -R a+rX "$mezz"

# The miss trace: every object once; per asset in viewer order (master, then per rendition its
# playlist, init, segments), the assets interleaved round-robin. Replay paths:
# obj_id = asset*1e6 + rung*1e4 + seg (seg 0 = init.mp4, 9999 = index.m3u8, rung 99 = master).
python3 - "$n_assets" "$n_segs" >"$tmp/miss.csv" <<'EOF'
import sys
n_assets, n_segs = int(sys.argv[1]), int(sys.argv[2])
per = {}
for a in range(1, n_assets + 1):
    ids = [a * 1000000 + 99 * 10000]
    for r in range(3):
        ids += [a * 1000000 + r * 10000 + 9999, a * 1000000 + r * 10000]
        ids += [a * 1000000 + r * 10000 + s for s in range(1, n_segs + 1)]
    per[a] = ids
print("time,obj_id,obj_size")
t = 0
for k in range(len(per[1])):
    for a in range(1, n_assets + 1):
        print("%d,%d,1000" % (t, per[a][k]))
        t += 1
EOF
n_objects=$((n_assets * (1 + 3 * (2 + n_segs))))
# Read every mezzanine once so that no measurement pays for the first read from disk.
cat "$mezz"/*/*.mp4 >/dev/null

# ---- servers ----

metric_sum() { # admin-port name-prefix: sum of every series of that metric
    curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v k="$2" 'index($0, k) == 1 && (substr($0, length(k) + 1, 1) == " " || substr($0, length(k) + 1, 1) == "{") { s += $NF } END { printf "%d\n", s + 0 }'
}

start_shield() { # dir
    local d=$1 ports
    ports=$(free_ports 2)
    shield_port=${ports% *}
    shield_admin=${ports#* }
    mkdir -p "$d/cache"
    # cwd = its dir: the shield keeps its job store under var/ relative to it.
    (cd "$d" && exec taskset -c "$server_core" "$shield_bin" --set server.listen=127.0.0.1:"$shield_port" \
        --set admin.listen=127.0.0.1:"$shield_admin" --set server.open=true --set server.workers=1 \
        --set mezzanine.root="$mezz" --set cache.path="$d/cache" --set log.level=warn \
        --set log.access_log="$d/access.log" >>"$d/shield.log" 2>&1) &
    shield_pid=$!
    started+=("$shield_pid")
    wait_ready "$shield_pid" "$shield_port" "$shield_admin" || die "tomato-shield did not start: $(tail -n 5 "$d/shield.log")"
}

start_edge() { # dir
    local d=$1 ports
    ports=$(free_ports 2)
    cache_port=${ports% *}
    edge_admin=${ports#* }
    mkdir -p "$d"
    cat >"$d/tomato-edge.conf" <<EOF
# tomato-edge for bench/cold_viewers.sh: one worker, empty cache in front of one shield
[log]
level = warn
[server]
workers = 1
listen = 127.0.0.1:$cache_port
[admin]
listen = 127.0.0.1:$edge_admin
[upstream]
shields = 127.0.0.1:$shield_port
[tokens]
public = /v/
[cache]
warm_path = $d/warm
cold_path = $d/cold
EOF
    (cd "$d" && exec taskset -c "$server_core" "$edge_bin" --config "$d/tomato-edge.conf" "${edge_sets[@]}" >>"$d/edge.log" 2>&1) &
    cache_pid=$!
    started+=("$cache_pid")
    wait_ready "$cache_pid" "$cache_port" "$edge_admin" || die "tomato-edge did not start: $(tail -n 5 "$d/edge.log")"
}

start_nginx() { # dir
    local d=$1
    cache_port=$(free_ports 1)
    mkdir -p "$d"
    sed -e "s|@PREFIX@|$d|g" -e "s|@PORT@|$cache_port|g" -e "s|@SHIELD_PORT@|$shield_port|g" \
        -e "s|@CONNECTIONS@|4096|g" -e "s|@NOFILE@|8192|g" \
        "$here/peers/nginx_proxy_cache.conf.in" >"$d/nginx.conf"
    taskset -c "$server_core" nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" -g 'daemon off;' \
        >>"$d/nginx.log" 2>&1 &
    cache_pid=$!
    started+=("$cache_pid")
    wait_ready "$cache_pid" "$cache_port" || die "nginx did not start: $(tail -n 5 "$d/error.log" "$d/nginx.log" 2>/dev/null)"
}

results=$tmp/results.tsv
: >"$results"
clk_tck=$(getconf CLK_TCK)
asset_list=$(IFS=,; echo "${assets[*]}")

one() { # server pass run
    local server=$1 pass=$2 run=$3 d=$tmp/run$3/$1-$2 out e_up=0 e_coal=0 s_reqs
    mkdir -p "$d"
    start_shield "$d/shield"
    if [ "$server" = edge ]; then start_edge "$d/edge"; else start_nginx "$d/nginx"; fi
    local url=http://127.0.0.1:$cache_port
    out=$d/load.json
    local args=(--url "$url" --json true --progress false --workers 1 --seed "$seed")
    if [ "$pass" = misses ]; then
        args=(replay "${args[@]}" --trace "$tmp/miss.csv" --connections "$n_assets" --requests 0 --duration 300s)
    else
        args=(viewers "${args[@]}" --assets "$asset_list" --viewers "$viewers" --pace fast
            --requests "$requests" --duration 300s --set viewers.think=0)
    fi
    echo "taskset -c $client_core tomato-load ${args[*]}" >"$d/load.cmd"
    local c0 s0 c1 s1
    c0=$(cpu_ticks "$cache_pid")
    s0=$(cpu_ticks "$shield_pid")
    taskset -c "$client_core" "$load_bin" "${args[@]}" >"$out" 2>"$d/load.err" &
    tool_pid=$!
    wait "$tool_pid" || die "tomato-load failed ($server $pass run $run): $(tail -n 5 "$d/load.err")"
    tool_pid=""
    c1=$(cpu_ticks "$cache_pid")
    s1=$(cpu_ticks "$shield_pid")
    s_reqs=$(metric_sum "$shield_admin" tmt_shield_requests_total)
    if [ "$server" = edge ]; then
        e_up=$(metric_sum "$edge_admin" tmt_edge_upstream_requests_total)
        e_coal=$(metric_sum "$edge_admin" tmt_edge_coalesced_waits_total)
    fi
    kill -0 "$cache_pid" 2>/dev/null || die "$server died during $pass run $run"
    stop_server "$cache_pid"
    forget "$cache_pid"
    stop_server "$shield_pid" # a graceful stop flushes its access log
    forget "$shield_pid"
    python3 - "$out" "$d/shield/access.log" "$server" "$pass" "$run" "$s_reqs" "$e_up" "$e_coal" "$n_objects" \
        "$(awk -v a="$c0" -v b="$c1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')" \
        "$(awk -v a="$s0" -v b="$s1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')" >>"$results" <<'EOF'
import json, re, sys
rep_path, log_path, server, pas, run, s_reqs, e_up, e_coal, n_objects, c_cpu, s_cpu = sys.argv[1:]
r = json.load(open(rep_path))
paths, lines = set(), 0
for line in open(log_path):
    m = re.search(r" path=(\S+) .* status=(\d+)", line)
    if m:
        lines += 1
        paths.add(m.group(1))
t, xc = r["ttfb_ms"], r["x_cache"]
hits = xc["hit_hot"] + xc["hit_warm"] + xc["hit_cold"]
if pas == "misses":
    if r["requests"] != int(n_objects) or r["errors"] != 0:
        sys.exit("misses pass: %d requests, %d errors, want %s and 0" % (r["requests"], r["errors"], n_objects))
    if xc["miss"] != r["requests"] or len(paths) != int(n_objects) or lines != int(n_objects):
        sys.exit("misses pass: not every request was a miss: x_cache %s, shield saw %d requests of %d paths"
                 % (xc, lines, len(paths)))
segs = r.get("viewers", {}).get("segments", 0)
print("\t".join(str(x) for x in [
    server, pas, run, r["requests"], r["errors"], r["elapsed_s"], t["p50"], t["p90"], t["p99"], t["p99_9"],
    t["mean"], r["total_ms"]["p50"], xc["miss"], hits, xc["other"], int(s_reqs), lines, len(paths), int(e_up),
    int(e_coal), segs, r["bytes"], c_cpu, s_cpu]))
EOF
}

note "$runs run(s); each: a misses pass and a viewer pass, tomato-edge and nginx, on fresh caches"
for run in $(seq "$runs"); do
    for pass in misses viewers; do
        # alternate which server goes first
        if [ $((run % 2)) = 1 ]; then order="edge nginx"; else order="nginx edge"; fi
        for server in $order; do
            note "run $run: $pass pass, $server"
            one "$server" "$pass" "$run" || die "$server $pass run $run failed"
        done
    done
done

# ---- report ----

{
    echo "### Cold-cache viewers: tomato-edge and nginx proxy_cache in front of tomato-shield"
    echo
    echo "Command: \`$cmdline\`"
    echo
    echo "- $("$edge_bin" --version 2>&1 | head -n 1), $("$shield_bin" --version 2>&1 | head -n 1), $("$load_bin" --version 2>&1 | head -n 1) (git $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown), CMAKE_BUILD_TYPE=${bench_build_type:-unknown})"
    echo "- tomato-edge: server.workers=1, tokens.public=/v/, new warm and cold dirs per measurement${edge_sets[*]:+, ${edge_sets[*]}}, other settings default; nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), loadtest/bench/peers/nginx_proxy_cache.conf.in (worker_processes 1, proxy_cache_lock on, keepalive 64 to the shield, new cache dir per measurement)"
    echo "- tomato-shield: server.workers=1, server.open=true, new cache dir per measurement, other settings default; the cache and the shield on core $server_core, tomato-load on core $client_core"
    echo "- media: $n_assets assets of ${seconds} s, renditions r0 320x180, r1 480x270, r2 640x360 (libx264 veryfast, 24 fps) with AAC, 4-second segments: $n_objects objects (master, 3 playlists, 3 init segments, $((3 * n_segs)) segments per asset; audio not requested)"
    echo "- misses pass: \`tomato-load replay --trace miss.csv --connections $n_assets --requests 0\` (every object once, checked to be a miss everywhere); viewer pass: \`tomato-load viewers --assets a1..a$n_assets --viewers $viewers --pace fast --requests $requests --seed $seed --set viewers.think=0\` (Zipf 0.8, watch_mean 0.5)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); median of $runs run(s)"
    echo
} >"$tmp/report.md"

python3 - "$results" >>"$tmp/report.md" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    server, pas = f[0], f[1]
    v = dict(zip(["requests", "errors", "elapsed", "p50", "p90", "p99", "p999", "mean", "tot50", "miss", "hits",
                  "other", "shield", "lines", "distinct", "e_up", "e_coal", "segs", "bytes", "c_cpu", "s_cpu"],
                 [float(x) for x in f[3:]]))
    rows.setdefault((server, pas), []).append(v)
med = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in rows.items()}
name = {"edge": "tomato-edge", "nginx": "nginx proxy_cache"}

def ratio(a, b):
    return "%.2f" % (a / b) if b else "n/a"

print("Misses pass: time to first byte of misses (ms), every request a miss at the cache and the shield")
print()
print("| server | requests | p50 | p90 | p99 | p99.9 | mean | full response p50 | elapsed s | cache CPU-s | shield CPU-s | runs (p50 / p99) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for s in ("edge", "nginx"):
    m = med.get((s, "misses"))
    if m is None:
        continue
    per = ", ".join("%.2f / %.2f" % (r["p50"], r["p99"]) for r in rows[(s, "misses")])
    print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s |" % (
        name[s], m["requests"], m["p50"], m["p90"], m["p99"], m["p999"], m["mean"], m["tot50"], m["elapsed"],
        m["c_cpu"], m["s_cpu"], per))
e, n = med.get(("edge", "misses")), med.get(("nginx", "misses"))
if e and n:
    print("| **ours ÷ nginx** | | **%s** | **%s** | **%s** | %s | %s | %s | | | | |" % (
        ratio(e["p50"], n["p50"]), ratio(e["p90"], n["p90"]), ratio(e["p99"], n["p99"]),
        ratio(e["p999"], n["p999"]), ratio(e["mean"], n["mean"]), ratio(e["tot50"], n["tot50"])))
print()
print("Viewer pass: time to first byte of all requests (ms), misses, and upstream requests")
print()
print("| server | requests | segments | errors | requests/s | cache CPU-s | shield CPU-s | TTFB mean | p50 | p90 | p99 | p99.9 | misses (X-Cache) | hits | shield requests | distinct objects | upstream per distinct object | upstream per request | edge upstream / coalesced waits |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for s in ("edge", "nginx"):
    m = med.get((s, "viewers"))
    if m is None:
        continue
    per_obj = statistics.median(r["shield"] / r["distinct"] for r in rows[(s, "viewers")])
    per_req = statistics.median(r["shield"] / r["requests"] for r in rows[(s, "viewers")])
    hits = m["hits"] if s == "edge" else m["other"]
    eu = "%d / %d" % (m["e_up"], m["e_coal"]) if s == "edge" else "—"
    rps = statistics.median(r["requests"] / r["elapsed"] for r in rows[(s, "viewers")])
    print("| %s | %d | %d | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %d | %d | %d | %.3f | %.3f | %s |" % (
        name[s], m["requests"], m["segs"], m["errors"], rps, m["c_cpu"], m["s_cpu"], m["mean"], m["p50"], m["p90"], m["p99"], m["p999"], m["miss"], hits,
        m["shield"], m["distinct"], per_obj, per_req, eu))
e, n = med.get(("edge", "viewers")), med.get(("nginx", "viewers"))
if e and n:
    print("| **ours ÷ nginx** | | | | | | | %s | **%s** | **%s** | **%s** | %s | | | | | | | |" % (
        ratio(e["mean"], n["mean"]), ratio(e["p50"], n["p50"]), ratio(e["p90"], n["p90"]), ratio(e["p99"], n["p99"]), ratio(e["p999"], n["p999"])))
print()
print("nginx's hits are responses with X-Cache: HIT (tomato-load counts them as `other`); "
      "its misses include requests that waited on proxy_cache_lock.")
EOF
cat "$tmp/report.md"
