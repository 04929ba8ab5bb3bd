#!/usr/bin/env bash
# Many concurrent slow viewers: memory and CPU per viewer of a warm tomato-edge against nginx
# proxy_cache, both in front of the same tomato-shield and serving the same packaged objects.
#
#   loadtest/bench/slow_viewers.sh [--viewers N] [--ramp S] [--hold S] [--runs N] [--loaders K]
#                                  [--assets N] [--abr-safety X] [--watch-mean X] [--no-conns]
#                                  [--build-dir DIR]
#                                  [--quick] [--keep]
#
# Media: ffmpeg makes --assets mezzanines of 60 s (tests/proc/harness/media.py, renditions r0
# 160x90 and r1 320x180, 24 fps, AAC) packaged by tomato-shield in 4-second segments
# (server.open=true; the shield runs on core 1 and is idle while measuring: both caches are warm).
# Per run and server, one at a time on core 0 (taskset -c 0), started afresh:
#   tomato-edge        server.workers=1, cache.hot_size=256MiB (hits from RAM), http.idle_timeout
#                      and http.max_connections raised so that every viewer's connection stays
#   nginx proxy_cache  loadtest/bench/peers/nginx_proxy_cache.conf.in, worker_processes 1, cache files
#                      in a temp dir (page cache), sendfile, open_file_cache
# Both are warmed first (every object fetched twice through tomato-load replay; the second pass
# must be all hits). Then, on core 1:
#   1. loadtest/bench/idle_conns.py opens N keep-alive connections (one GET of a master playlist each)
#      and holds them: each viewer's own connection, as a player keeps one open between segments.
#   2. --loaders tomato-load processes run N viewers in all (pace realtime: a segment when less
#      than 12 s is buffered, so one 4-s segment every 4 s once playing; by default every
#      session watches the whole 60-s asset, --watch-mean, and the next starts 1 s after the last
#      segment arrived), started over --ramp seconds and held --hold seconds more. tomato-load shares keep-alive connections among the viewers of
#      a worker, so the requests come over its pool, in addition to the N held connections.
# The script samples the server's VmRSS (/proc/PID/status, summed over its processes) once a
# second and reads its utime+stime (/proc/PID/stat) before the connections open and after the
# viewers stop. Per viewer: (peak RSS - RSS after warming) / N, and server CPU-seconds / N over
# the run (also as CPU-ms per viewer-minute of the held period). Median over --runs; ratios are
# ours / nginx (lower is better).
#
#   --viewers N      concurrent viewers (default 10000); limited by ulimit -n, which the script
#                    raises to the hard limit; it says so and lowers N when that is too small
#   --ramp S         seconds over which the viewers start (default 20)
#   --hold S         seconds the load runs after the ramp (default 40)
#   --runs N         runs, each measuring both servers (default 3; the order alternates)
#   --loaders K      tomato-load processes sharing the viewers (default 1, one worker each)
#   --assets N       mezzanines (default 4)
#   --abr-safety X   viewers.abr_safety for tomato-load (default 0.8; 0 keeps every viewer on
#                    the lowest rendition)
#   --watch-mean X   viewers.watch_mean (default 100: whole assets; tomato-load ends an abandoned
#                    session when its last segment arrives, not when it has been played, so
#                    small values turn slow viewers into bursts of session starts)
#   --no-conns       do not hold a connection per viewer (tomato-load's pool only)
#   --quick          --viewers 500 --ramp 3 --hold 5 --runs 1 --assets 2
#   --build-dir DIR  binaries from DIR/bin (default build-rel, a Release build)
#   --keep           keep the temp dir and print its path
#
# Tools: ffmpeg, nginx (scripts/setup.sh --bench), curl, python3, taskset. Loopback only.
# Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
cmdline="loadtest/bench/slow_viewers.sh"
[ $# -eq 0 ] || cmdline+=$(printf ' %q' "$@")

build_dir=$top/build-rel
viewers=10000
ramp=20
hold=40
runs=3
loaders=1
n_assets=4
abr_safety=0.8
watch_mean=100
hold_conns=1
keep=0
server_core=0
client_core=1
seconds=60

need_val() { [ "$2" -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --viewers) need_val "$1" $#; viewers=$2; shift 2 ;;
    --ramp) need_val "$1" $#; ramp=$2; shift 2 ;;
    --hold) need_val "$1" $#; hold=$2; shift 2 ;;
    --runs) need_val "$1" $#; runs=$2; shift 2 ;;
    --loaders) need_val "$1" $#; loaders=$2; shift 2 ;;
    --assets) need_val "$1" $#; n_assets=$2; shift 2 ;;
    --abr-safety) need_val "$1" $#; abr_safety=$2; shift 2 ;;
    --watch-mean) need_val "$1" $#; watch_mean=$2; shift 2 ;;
    --no-conns) hold_conns=0; shift ;;
    --build-dir) need_val "$1" $#; build_dir=$2; shift 2 ;;
    --quick) viewers=500; ramp=3; hold=5; runs=1; n_assets=2; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$bench_name: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
for v in viewers runs loaders n_assets hold; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v#n_} takes a whole number >= 1, got '${!v}'"
done
[[ "$ramp" =~ ^[0-9]+$ ]] || die "--ramp takes whole seconds, got '$ramp'"
[[ "$abr_safety" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--abr-safety takes a number, got '$abr_safety'"
[[ "$watch_mean" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--watch-mean takes a number, got '$watch_mean'"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
edge_bin=$build_dir/bin/tomato-edge
shield_bin=$build_dir/bin/tomato-shield
load_bin=$build_dir/bin/tomato-load

missing=()
need_tool taskset util-linux
need_tool curl curl
need_tool python3 python3
need_tool ffmpeg ffmpeg
need_tool nginx nginx-light
need_tool ps procps
preflight "$build_dir" tomato-edge tomato-shield tomato-load

# ---- descriptors: every process here inherits this limit ----
# Per viewer: one held connection at idle_conns.py and one at the server; tomato-load's pool and
# the server's upstream connections come on top.
nofile_note=""
hard=$(ulimit -Hn)
want_fds=$((viewers + 2048))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_fds" ]; then
    fit=$((hard - 2048))
    [ "$fit" -ge 100 ] || die "ulimit -Hn is $hard: too few descriptors"
    nofile_note="the hard limit of open files (ulimit -Hn) is $hard: $viewers viewers need about $want_fds, so $fit viewers were run"
    note "$nofile_note"
    viewers=$fit
    want_fds=$hard
fi
[ "$hard" = unlimited ] || [ "$hard" -le $((want_fds * 2)) ] || hard_cap=$((want_fds * 2))
ulimit -n "${hard_cap:-$hard}" 2>/dev/null || ulimit -n "$want_fds" 2>/dev/null ||
    die "cannot raise ulimit -n to $want_fds (hard limit $hard)"
nofile=$(ulimit -n)
note "ulimit -n is $nofile (hard limit $hard)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-slow.XXXXXX")
chmod 755 "$tmp"
started=()
tool_pids=()
sampler_pid=""
idle_pid=""
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${tool_pids[@]}" $sampler_pid $idle_pid; do kill "$p" 2>/dev/null || true; done
    for p in "${started[@]}"; do stop_server "$p"; done
    if [ "$keep" = 1 ]; then note "temp dir kept: $tmp"; else rm -rf "$tmp"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget() {
    local p keep_list=()
    for p in "${started[@]}"; do [ "$p" = "$1" ] || keep_list+=("$p"); done
    started=("${keep_list[@]}")
}

# ---- media and shield ----

mezz=$tmp/mezz
assets=()
for i in $(seq "$n_assets"); do assets+=("a$i"); done
note "making $n_assets assets of ${seconds}s with ffmpeg"
printf '%s\n' "${assets[@]}" | xargs -P 2 -I{} python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import media
media.make_asset(sys.argv[2], sys.argv[3], seconds=int(sys.argv[4]), seg=4,
                 rungs=[("r0", 160, 90, 150000), ("r1", 320, 180, 300000)])
' "$top/tests/proc/harness" "$mezz" {} "$seconds" || die "ffmpeg could not make the media"
chmod -R a+rX "$mezz"
n_segs=$((seconds / 4))
python3 - "$n_assets" "$n_segs" >"$tmp/all.csv" <<'EOF'
import sys
n_assets, n_segs = int(sys.argv[1]), int(sys.argv[2])
print("time,obj_id,obj_size")
t = 0
for a in range(1, n_assets + 1):
    ids = [a * 1000000 + 99 * 10000]
    for r in range(2):
        ids += [a * 1000000 + r * 10000 + 9999, a * 1000000 + r * 10000]
        ids += [a * 1000000 + r * 10000 + s for s in range(1, n_segs + 1)]
    for i in ids:
        print("%d,%d,1000" % (t, i))
        t += 1
EOF
n_objects=$((n_assets * (1 + 2 * (2 + n_segs))))

ports=$(free_ports 2)
shield_port=${ports% *}
shield_admin=${ports#* }
mkdir -p "$tmp/shield/cache"
(cd "$tmp/shield" && exec taskset -c "$client_core" "$shield_bin" --set server.listen=127.0.0.1:"$shield_port" \
    --set admin.listen=127.0.0.1:"$shield_admin" --set server.open=true --set server.workers=1 \
    --set mezzanine.root="$mezz" --set cache.path="$tmp/shield/cache" --set log.level=warn \
    >>"$tmp/shield/shield.log" 2>&1) &
shield_pid=$!
started+=("$shield_pid")
wait_ready "$shield_pid" "$shield_port" "$shield_admin" || die "tomato-shield did not start: $(tail -n 5 "$tmp/shield/shield.log")"

# ---- caches ----

start_edge() { # dir
    local d=$1 ports
    ports=$(free_ports 2)
    cache_port=${ports% *}
    edge_admin=${ports#* }
    mkdir -p "$d"
    cat >"$d/tomato-edge.conf" <<EOF
# tomato-edge for bench/slow_viewers.sh: one worker, hits from RAM
[log]
level = warn
[server]
workers = 1
listen = 127.0.0.1:$cache_port
[admin]
listen = 127.0.0.1:$edge_admin
[http]
idle_timeout = 600s
max_connections = $nofile
[upstream]
shields = 127.0.0.1:$shield_port
[tokens]
public = /v/
[cache]
hot_size = 256MiB
warm_path = $d/warm
cold_path = $d/cold
EOF
    (cd "$d" && exec taskset -c "$server_core" "$edge_bin" --config "$d/tomato-edge.conf" >>"$d/edge.log" 2>&1) &
    cache_pid=$!
    started+=("$cache_pid")
    wait_ready "$cache_pid" "$cache_port" "$edge_admin" || die "tomato-edge did not start: $(tail -n 5 "$d/edge.log")"
}

start_nginx() { # dir
    local d=$1
    cache_port=$(free_ports 1)
    mkdir -p "$d"
    sed -e "s|@PREFIX@|$d|g" -e "s|@PORT@|$cache_port|g" -e "s|@SHIELD_PORT@|$shield_port|g" \
        -e "s|@CONNECTIONS@|$nofile|g" -e "s|@NOFILE@|$nofile|g" \
        "$here/peers/nginx_proxy_cache.conf.in" >"$d/nginx.conf"
    taskset -c "$server_core" nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" -g 'daemon off;' \
        >>"$d/nginx.log" 2>&1 &
    cache_pid=$!
    started+=("$cache_pid")
    wait_ready "$cache_pid" "$cache_port" || die "nginx did not start: $(tail -n 5 "$d/error.log" "$d/nginx.log" 2>/dev/null)"
}

rss_kib() { # pid: VmRSS summed over the process tree
    local p sum=0 v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
fds_of() { # pid: open descriptors summed over the process tree
    local p sum=0 n
    for p in $(tree_pids "$1"); do
        n=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || continue
        sum=$((sum + n))
    done
    echo "$sum"
}

clk_tck=$(getconf CLK_TCK)
results=$tmp/results.tsv
: >"$results"
asset_list=$(IFS=,; echo "${assets[*]}")

replay_all() { # url out: every object once
    taskset -c "$client_core" "$load_bin" replay --url "$1" --trace "$tmp/all.csv" --connections 8 \
        --requests 0 --duration 120s --json true --progress false >"$2" 2>>"$tmp/replay.err" ||
        die "tomato-load replay failed: $(tail -n 3 "$tmp/replay.err")"
}

one() { # server run
    local server=$1 run=$2 d=$tmp/run$2/$1 url rss0 rss_conns=0 c0 c1 t0 t1 line open=0 failed=0 k
    mkdir -p "$d"
    if [ "$server" = edge ]; then start_edge "$d/edge"; else start_nginx "$d/nginx"; fi
    url=http://127.0.0.1:$cache_port
    replay_all "$url" "$d/warm1.json"
    replay_all "$url" "$d/warm2.json"
    python3 - "$d/warm2.json" "$server" "$n_objects" <<'EOF' || die "$server is not warm"
import json, sys
r = json.load(open(sys.argv[1])); xc = r["x_cache"]
hits = xc["hit_hot"] if sys.argv[2] == "edge" else xc["other"]  # nginx: X-Cache: HIT
if r["requests"] != int(sys.argv[3]) or r["errors"] or hits != r["requests"]:
    sys.exit("second warming pass: %d requests, %d errors, x_cache %s" % (r["requests"], r["errors"], xc))
EOF
    sleep 1
    rss0=$(rss_kib "$cache_pid")
    c0=$(cpu_ticks "$cache_pid")
    t0=$(now_ns)
    # RSS and descriptors once a second, from now until the viewers stop.
    (while :; do echo "$(rss_kib "$cache_pid") $(fds_of "$cache_pid")"; sleep 1; done) >"$d/samples.txt" 2>/dev/null &
    sampler_pid=$!
    if [ "$hold_conns" = 1 ]; then
        coproc IDLE { taskset -c "$client_core" python3 "$here/idle_conns.py" --port "$cache_port" \
            --path /v/a1/master.m3u8 --conns "$viewers" --timeout 120 2>>"$d/idle_conns.log"; }
        # shellcheck disable=SC2153 # set by coproc
        idle_pid=$IDLE_PID
        read -r -t 300 line <&"${IDLE[0]}" || die "idle_conns.py gave no answer: $(tail -n 3 "$d/idle_conns.log")"
        open=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' <<<"$line")
        failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
        [ "$failed" = 0 ] || note "$server: $failed of $viewers held connections failed (see --keep logs)"
        sleep 1
        rss_conns=$(rss_kib "$cache_pid")
    fi
    tool_pids=()
    for k in $(seq 0 $((loaders - 1))); do
        local n=$((viewers / loaders + (k < viewers % loaders ? 1 : 0)))
        taskset -c "$client_core" "$load_bin" viewers --url "$url" --assets "$asset_list" --viewers "$n" \
            --ramp "${ramp}s" --duration "$((ramp + hold))s" --requests 0 --pace realtime --seed $((7 + k)) \
            --workers 1 --json true --progress false --set viewers.abr_safety="$abr_safety" --set viewers.watch_mean="$watch_mean" \
            >"$d/load$k.json" 2>"$d/load$k.err" &
        tool_pids+=($!)
    done
    for k in "${tool_pids[@]}"; do wait "$k" || die "tomato-load failed against $server: $(tail -n 3 "$d"/load*.err)"; done
    tool_pids=()
    c1=$(cpu_ticks "$cache_pid")
    t1=$(now_ns)
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    local alive=0
    if [ "$hold_conns" = 1 ]; then
        echo close >&"${IDLE[1]}"
        read -r -t 60 line <&"${IDLE[0]}" || die "idle_conns.py did not report live connections"
        alive=${line#alive=}
        read -r -t 60 line <&"${IDLE[0]}" || true
        wait "$idle_pid" 2>/dev/null || true
        idle_pid=""
    fi
    kill -0 "$cache_pid" 2>/dev/null || die "$server died during run $run"
    stop_server "$cache_pid"
    forget "$cache_pid"
    python3 - "$d" "$server" "$run" "$loaders" "$viewers" "$rss0" "$rss_conns" "$c0" "$c1" "$t0" "$t1" \
        "$clk_tck" "$open" "$alive" "$hold" >>"$results" <<'EOF'
import json, sys
d, server, run, loaders, viewers, rss0, rss_conns, c0, c1, t0, t1, hz, open_, alive, hold = sys.argv[1:]
reqs = byts = errs = segs = stalls = sessions = 0
stall_s = 0.0
p99 = p50 = 0.0
for k in range(int(loaders)):
    r = json.load(open("%s/load%d.json" % (d, k)))
    reqs += r["requests"]; byts += r["bytes"]; errs += r["errors"]
    v = r["viewers"]; segs += v["segments"]; stalls += v["stalls"]; stall_s += v["stall_s"]
    sessions += v["sessions"]
    p50 = max(p50, r["ttfb_ms"]["p50"]); p99 = max(p99, r["ttfb_ms"]["p99"])
    elapsed = r["elapsed_s"]
rss, fds = [], []
for line in open(d + "/samples.txt"):
    f = line.split()
    if len(f) == 2:
        rss.append(int(f[0])); fds.append(int(f[1]))
cpu = (int(c1) - int(c0)) / int(hz)
wall = (int(t1) - int(t0)) / 1e9
print("\t".join(str(x) for x in [server, run, viewers, int(rss0), int(rss_conns), max(rss), max(fds), cpu, wall,
                                 reqs, byts, errs, segs, stalls, stall_s, sessions, p50, p99, open_, alive, elapsed]))
EOF
}

note "$runs run(s) of $viewers viewers (ramp ${ramp}s, hold ${hold}s), tomato-edge and nginx in turn"
for run in $(seq "$runs"); do
    if [ $((run % 2)) = 1 ]; then order="edge nginx"; else order="nginx edge"; fi
    for server in $order; do
        note "run $run: $server"
        one "$server" "$run"
    done
done

# ---- report ----

{
    echo "### Slow viewers: memory and CPU per viewer, tomato-edge and nginx proxy_cache (one worker each)"
    echo
    echo "Command: \`$cmdline\`"
    echo
    echo "- $("$edge_bin" --version 2>&1 | head -n 1), $("$load_bin" --version 2>&1 | head -n 1) (git $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown), CMAKE_BUILD_TYPE=${bench_build_type:-unknown}); tomato-edge: server.workers=1, cache.hot_size=256MiB, http.idle_timeout=600s, http.max_connections=$nofile, tokens.public=/v/"
    echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), loadtest/bench/peers/nginx_proxy_cache.conf.in (worker_processes 1, worker_connections $nofile, sendfile, open_file_cache, keepalive_timeout 300s); warm: its cache files are in the page cache"
    echo "- both in front of one tomato-shield (core $client_core, idle while measuring), warmed with every object twice (second pass all hits: X-Cache HIT-hot / HIT); server on core $server_core, load on core $client_core"
    echo "- media: $n_assets assets of $seconds s, renditions r0 160x90 and r1 320x180 (libx264 veryfast 24 fps, AAC), 4-second segments"
    if [ "$hold_conns" = 1 ]; then
        echo "- per viewer one held keep-alive connection (\`loadtest/bench/idle_conns.py --conns $viewers\`, one GET of a master playlist each), then $loaders tomato-load process(es): \`tomato-load viewers --viewers $((viewers / loaders)) --pace realtime --ramp ${ramp}s --duration $((ramp + hold))s --set viewers.abr_safety=$abr_safety --set viewers.watch_mean=$watch_mean\` (buffer 12 s, think 1 s), whose requests share its keep-alive pool"
    else
        echo "- $loaders tomato-load process(es): \`tomato-load viewers --viewers $((viewers / loaders)) --pace realtime --ramp ${ramp}s --duration $((ramp + hold))s --set viewers.abr_safety=$abr_safety --set viewers.watch_mean=$watch_mean\` (no held connection per viewer)"
    fi
    echo "- ulimit -n $nofile (hard $hard)${nofile_note:+; $nofile_note}"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); median of $runs run(s)"
    echo
} >"$tmp/report.md"

python3 - "$results" "$hold" >>"$tmp/report.md" <<'EOF'
import statistics, sys
hold = float(sys.argv[2])
keys = ["viewers", "rss0", "rss_conns", "rss_peak", "fds", "cpu", "wall", "reqs", "bytes", "errs", "segs", "stalls",
        "stall_s", "sessions", "p50", "p99", "open", "alive", "elapsed"]
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    v = dict(zip(keys, [float(x) for x in f[2:]]))
    n = v["viewers"]
    v["kib_per_viewer"] = (v["rss_peak"] - v["rss0"]) / n
    v["kib_per_conn"] = (v["rss_conns"] - v["rss0"]) / n if v["rss_conns"] else float("nan")
    v["cpu_ms_per_viewer"] = 1000 * v["cpu"] / n
    v["cpu_ms_per_viewer_min"] = 1000 * v["cpu"] / n / (v["wall"] / 60)
    v["pct"] = 100 * v["cpu"] / v["wall"]
    v["mbps"] = v["bytes"] / v["elapsed"] / 1e6
    v["rps"] = v["reqs"] / v["elapsed"]
    rows.setdefault(f[0], []).append(v)
med = {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in rows.items()}
name = {"edge": "tomato-edge", "nginx": "nginx proxy_cache"}
print("| server | viewers | RSS warm (KiB) | RSS with held conns | peak RSS | KiB per viewer (peak) | KiB per held conn | peak descriptors | server CPU-s | CPU % of one core | CPU-ms per viewer | CPU-ms per viewer-minute | requests/s | MB/s | errors | stalls (s) | TTFB p50 / p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
for s in ("edge", "nginx"):
    m = med.get(s)
    if m is None:
        continue
    print("| %s | %d | %d | %d | %d | %.2f | %.2f | %d | %.2f | %.1f | %.3f | %.3f | %.0f | %.1f | %d | %d (%.1f) | %.2f / %.2f |" % (
        name[s], m["viewers"], m["rss0"], m["rss_conns"], m["rss_peak"], m["kib_per_viewer"], m["kib_per_conn"],
        m["fds"], m["cpu"], m["pct"], m["cpu_ms_per_viewer"], m["cpu_ms_per_viewer_min"], m["rps"], m["mbps"],
        m["errs"], m["stalls"], m["stall_s"], m["p50"], m["p99"]))
e, n = med.get("edge"), med.get("nginx")
if e and n:
    def r(k):
        return "%.2f" % (e[k] / n[k]) if n[k] else "n/a"
    print()
    print("| ours ÷ nginx | KiB per viewer (peak) | KiB per held conn | CPU-ms per viewer |")
    print("| --- | ---: | ---: | ---: |")
    print("| **ratio** | **%s** | %s | **%s** |" % (r("kib_per_viewer"), r("kib_per_conn"), r("cpu_ms_per_viewer")))
print()
print("Per run (server: KiB per viewer, CPU-ms per viewer, requests/s):")
print()
for s in ("edge", "nginx"):
    if s in rows:
        print("- %s: %s" % (name[s], "; ".join("%.2f KiB, %.3f ms, %.0f/s" % (x["kib_per_viewer"], x["cpu_ms_per_viewer"], x["rps"]) for x in rows[s])))
EOF
cat "$tmp/report.md"
