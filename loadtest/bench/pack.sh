#!/usr/bin/env bash
# Packaging benchmark: tomato-shield's packager cutting one 4-second CMAF segment from a warm
# index against one `ffmpeg -ss ... -t 4 -c copy` process cutting the same segment; then the
# shield's cache hits on that segment (and on the master playlist) against nginx serving the same
# bytes from files, one worker each.
#
#   loadtest/bench/pack.sh [--duration SECONDS] [--runs N] [--quick] [--build-dir DIR] [--keep]
#
# The mezzanine is made with ffmpeg in a temp dir: 60 s of 1280x720 25 fps H.264 at 3 Mbit/s
# (libx264 veryfast, a keyframe every 4 s: keyint=100:min-keyint=100:scenecut=0) with AAC
# 128 kbit/s stereo, plus its asset.json (segment_duration 4, a video and an audio rendition).
#
#   packaging  tmt-pack-bench (loadtest/pack_bench.c, on core 0) loads asset.json, builds the
#              index once, then cuts media segment 8 of the video rendition 300 times as the
#              shield does on a miss (open, fstat, tmt_pack_media_segment into a new buffer,
#              close) and hashes each output with XXH3; median and p90 per cut (CLOCK_MONOTONIC),
#              once per run, the median of the runs' medians reported; the same for the audio
#              segment of that number (ffmpeg -map 0 cuts both). No shield cache involved.
#   ffmpeg     `ffmpeg -nostdin -v error -ss START -t 4 -i mezz.mp4 -map 0 -c copy -f mp4 -y
#              out.mp4` (START = the segment's start from the index), on core 0, wall time per
#              process over 15 processes (5 with --quick) after one untimed, median. The ratio
#              ffmpeg ÷ ours is set against the origin-shield issue: at least 20, the aim 100.
#   hits       tomato-shield (server.workers=1, server.open=true, pack.threads=1, RAM cache
#              256MiB, RocksDB in the temp dir, log.level=warn) and nginx (worker_processes 1,
#              sendfile, no access log) with the shield's bytes saved as files, both on core 0.
#              The segment and the master playlist are fetched from the shield (X-Cache: MISS,
#              then HIT, ETag = the XXH3 tmt-pack-bench printed) and from nginx (the same bytes).
#              Each measurement is wrk -t1 -c64 -d DURATION on core 1; for the shield it fails
#              unless its hit counter grew by the requests served and its miss counter did not.
#              Per row: requests/s, MB/s, server CPU (utime+stime from /proc/PID/stat),
#              requests per CPU-second and CPU-seconds per GB; median of the runs.
#
#   --duration SECONDS  length of one wrk measurement (default 10)
#   --runs N            runs per row, the median is reported (default 3)
#   --quick             --duration 3 --runs 1, 5 ffmpeg processes
#   --build-dir DIR     take tomato-shield and tmt-pack-bench from DIR/bin (default build; a
#                       Release build is fair: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
#                       && cmake --build build-bench -j1 --target tomato-shield tmt-pack-bench)
#   --keep              keep the temp dir (mezzanine, configs, logs, raw wrk output), print its path
#
# Environment: TOMATO_SHIELD, TMT_PACK_BENCH = paths to the binaries (override --build-dir).
# Tools: ffmpeg, nginx, wrk, curl, python3, taskset (scripts/setup.sh --bench). Output: a
# Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
build_dir=$top/build
cmdline="loadtest/bench/pack.sh$(printf ' %q' "$@")"
tool_pid=""

duration=10
runs=3
keep=0
ffmpeg_runs=15
pack_iter=300
segment_n=8
server_core=0
client_core=1

while [ $# -gt 0 ]; do
    case "$1" in
    --duration)
        [ $# -ge 2 ] || die "--duration needs a value"
        duration=$2
        shift 2
        ;;
    --duration=*)
        duration=${1#*=}
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
    --quick)
        duration=3
        runs=1
        ffmpeg_runs=5
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
    --keep)
        keep=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench/pack.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration takes whole seconds >= 1, got '$duration'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a count >= 1, got '$runs'"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
shield_bin=${TOMATO_SHIELD:-$build_dir/bin/tomato-shield}
pack_bin=${TMT_PACK_BENCH:-$build_dir/bin/tmt-pack-bench}

# ---- tools ----

missing=()
need_tool taskset util-linux
need_tool curl curl
need_tool python3 python3
need_tool nginx nginx-light
need_tool wrk wrk
need_tool ffmpeg ffmpeg
need_tool ps procps
need_tool cmp diffutils
if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do note "missing $m"; done
    die "install them with: scripts/setup.sh --bench"
fi
rel=${build_dir#"$top"/}
[ -x "$shield_bin" ] || die "no tomato-shield at $shield_bin (build it: cmake --build $rel -j1 --target tomato-shield tmt-pack-bench)"
[ -x "$pack_bin" ] || die "no tmt-pack-bench at $pack_bin (build it: cmake --build $rel -j1 --target tomato-shield tmt-pack-bench)"
build_type=unknown
build_cache=$(dirname "$(dirname "$shield_bin")")/CMakeCache.txt
if [ -f "$build_cache" ]; then
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_cache")
    build_type=${build_type:-none}
fi
case "$build_type" in
Release | RelWithDebInfo) ;;
*) note "WARNING: $shield_bin is a '$build_type' build; the comparison is only fair with Release (see --help)" ;;
esac
taskset -c "$server_core,$client_core" true 2>/dev/null ||
    die "needs cores $server_core and $client_core (taskset -c $server_core,$client_core failed)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || true
fi

# ---- temp dir, cleanup ----

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-pack.XXXXXX")
# nginx drops root for its worker (nobody): it must reach its files.
chmod 755 "$tmp"
started=() # pids of the servers this script started

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    if [ -n "$tool_pid" ]; then kill "$tool_pid" 2>/dev/null || true; fi
    for p in "${started[@]}"; do stop_server "$p"; done
    if [ "$keep" = 1 ]; then
        note "temp dir kept: $tmp"
    else
        rm -rf "$tmp"
    fi
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

# ---- mezzanine ----

mroot=$tmp/mezzanine
asset=bench
rend=720p
mdir=$mroot/$asset
mezz=$mdir/$rend.mp4
mkdir -p "$mdir" "$tmp/logs"
x264_params="keyint=100:min-keyint=100:scenecut=0"
ffmpeg_make=(ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25
    -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t 60
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -b:v 3M -maxrate 3M -bufsize 6M
    -x264-params "$x264_params" -c:a aac -b:a 128k -movflags +faststart)
note "making the mezzanine (60 s of 1280x720 H.264 + AAC) with ffmpeg"
run_tool taskset -c "$client_core" "${ffmpeg_make[@]}" "$mezz" >"$tmp/logs/ffmpeg-make.log" 2>&1 ||
    die "ffmpeg could not make the mezzanine: $(tail -n 5 "$tmp/logs/ffmpeg-make.log")"
cat >"$mdir/asset.json" <<EOF
{
  "version": 1,
  "segment_duration": 4,
  "renditions": [
    {"id": "$rend", "type": "video", "file": "$rend.mp4",
     "width": 1280, "height": 720, "bitrate": 3000000, "frame_rate": 25},
    {"id": "audio", "type": "audio", "file": "$rend.mp4",
     "bitrate": 128000, "sample_rate": 48000, "channels": 2, "language": "en"}
  ]
}
EOF
chmod -R a+rX "$mroot"
mezz_bytes=$(wc -c <"$mezz")

# ---- packaging: tmt-pack-bench against one ffmpeg process ----

declare -A pk      # key=value lines of the last tmt-pack-bench run
pack_medians=()    # per run, microseconds: video segment
pack_p90s=()
audio_medians=()   # per run: the audio segment of the same number
audio_p90s=()
both_medians=()    # per run: video + audio, what one ffmpeg -map 0 process cuts
pack_once() { # run rendition
    local out=$tmp/logs/pack-bench-$2-$1.txt k v
    run_tool taskset -c "$server_core" "$pack_bin" "$mroot" "$asset" "$2" "$segment_n" "$pack_iter" \
        >"$out" 2>"$tmp/logs/pack-bench-$2-$1.err" ||
        die "tmt-pack-bench failed: $(tail -n 5 "$tmp/logs/pack-bench-$2-$1.err")"
    pk=()
    while IFS='=' read -r k v; do pk[$k]=$v; done <"$out"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

note "packaging: tmt-pack-bench, $pack_iter cuts of segment $segment_n (video, then audio) per run, $runs run(s)"
for run in $(seq "$runs"); do
    pack_once "$run" audio
    audio_medians+=("${pk[median_us]}")
    audio_p90s+=("${pk[p90_us]}")
    audio_bytes=${pk[bytes]}
    pack_once "$run" "$rend"
    pack_medians+=("${pk[median_us]}")
    pack_p90s+=("${pk[p90_us]}")
    both_medians+=("$(awk -v a="${pk[median_us]}" -v b="${audio_medians[-1]}" 'BEGIN { printf "%.1f", a + b }')")
done
seg_start=${pk[start_s]}
seg_dur=${pk[duration_s]}
seg_bytes=${pk[bytes]}
seg_hash=${pk[xxh3]}
pack_median=$(median "${pack_medians[@]}")
pack_p90=$(median "${pack_p90s[@]}")
audio_median=$(median "${audio_medians[@]}")
audio_p90=$(median "${audio_p90s[@]}")
both_median=$(median "${both_medians[@]}")

ffmpeg_cut=(ffmpeg -nostdin -v error -ss "$seg_start" -t 4 -i "$mezz" -map 0 -c copy -f mp4 -y "$tmp/cut.mp4")
ffmpeg_us=()
note "packaging: $ffmpeg_runs ffmpeg processes cutting the same segment (-ss $seg_start -t 4)"
for i in $(seq 0 "$ffmpeg_runs"); do
    t0=$(now_ns)
    run_tool taskset -c "$server_core" "${ffmpeg_cut[@]}" >"$tmp/logs/ffmpeg-cut.log" 2>&1 ||
        die "ffmpeg could not cut the segment: $(tail -n 5 "$tmp/logs/ffmpeg-cut.log")"
    t1=$(now_ns)
    # The first process only warms the page cache and the binary's pages.
    [ "$i" = 0 ] || ffmpeg_us+=("$(((t1 - t0) / 1000))")
done
ffmpeg_median=$(median "${ffmpeg_us[@]}")
ffmpeg_bytes=$(wc -c <"$tmp/cut.mp4")

# ---- shield and nginx ----

www=$tmp/www
seg_path=v/$asset/$rend/$segment_n.m4s
master_path=v/$asset/master.m3u8
files=("$master_path" "$seg_path")
declare -A pid port
clk_tck=$(getconf CLK_TCK)

shield_admin=""
start_shield() {
    local dir=$tmp/shield ports p
    ports=$(free_ports 2)
    p=${ports% *}
    shield_admin=${ports#* }
    mkdir -p "$dir"
    cat >"$dir/tomato-shield.conf" <<EOF
# tomato-shield for bench/pack.sh: one worker, packaged objects kept in RAM (and RocksDB).
[log]
level = warn

[server]
workers = 1
listen = 127.0.0.1:$p
open = true

[admin]
listen = 127.0.0.1:$shield_admin

[mezzanine]
root = $mroot

[cache]
path = $dir/cache
ram_size = 256MiB
disk_size = 1GiB

[pack]
threads = 1
EOF
    taskset -c "$server_core" "$shield_bin" --config "$dir/tomato-shield.conf" >>"$tmp/logs/shield.log" 2>&1 &
    pid[shield]=$!
    started+=("${pid[shield]}")
    port[shield]=$p
    wait_ready "${pid[shield]}" "$p" "$shield_admin" ||
        die "tomato-shield did not start: $(tail -n 5 "$tmp/logs/shield.log")"
}

start_nginx() {
    local prefix=$tmp/nginx p
    p=$(free_ports 1)
    mkdir -p "$prefix"
    cat >"$prefix/nginx.conf" <<EOF
# nginx for bench/pack.sh: one worker serving the shield's packaged bytes as files.
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 100000;
    server_tokens off;
    types {
        application/vnd.apple.mpegurl m3u8;
        video/mp4 m4s;
    }
    default_type application/octet-stream;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    server {
        listen 127.0.0.1:$p;
        root $www;
    }
}
EOF
    taskset -c "$server_core" nginx -c "$prefix/nginx.conf" -p "$prefix" -e "$prefix/error.log" \
        -g 'daemon off;' >>"$tmp/logs/nginx.log" 2>&1 &
    pid[nginx]=$!
    started+=("${pid[nginx]}")
    port[nginx]=$p
    wait_ready "${pid[nginx]}" "$p" ||
        die "nginx did not start: $(tail -n 5 "$prefix/error.log" "$tmp/logs/nginx.log" 2>/dev/null)"
}

# Fetches PATH from a server: prints "status size x-cache etag" and leaves the body in FILE.
fetch() { # name path file
    local hdr=$tmp/logs/hdr.txt st x e
    st=$(curl -sS --http1.1 --max-time 30 -D "$hdr" -o "$3" -w '%{http_code} %{size_download}' \
        "http://127.0.0.1:${port[$1]}/$2" 2>&1) || st="curl-failed 0"
    x=$(awk -F': *' 'tolower($1) == "x-cache" { sub(/\r$/, "", $2); print $2 }' "$hdr")
    e=$(awk -F': *' 'tolower($1) == "etag" { sub(/\r$/, "", $2); gsub(/"/, "", $2); print $2 }' "$hdr")
    echo "$st ${x:-none} ${e:-none}"
}

# Counter value from the shield's /metrics (0 when absent).
shield_counter() { # series
    curl -sS --max-time 5 "http://127.0.0.1:$shield_admin/metrics" |
        awk -v k="$1" 'index($0, k " ") == 1 { v = $NF } END { printf "%d\n", v + 0 }'
}
hits_key='tmt_shield_requests_total{result="hit"}'
miss_key='tmt_shield_requests_total{result="miss"}'

note "starting tomato-shield; packaging /$seg_path and /$master_path on a miss"
start_shield
for f in "${files[@]}"; do
    mkdir -p "$www/$(dirname "$f")"
    read -r st sz x e <<<"$(fetch shield "$f" "$www/$f")"
    [ "$st" = 200 ] || die "tomato-shield: /$f gave status $st (want 200; log: $(tail -n 3 "$tmp/logs/shield.log"))"
    [ "$x" = MISS ] || die "tomato-shield: the first fetch of /$f gave X-Cache: $x (want MISS)"
    got=$tmp/logs/got-shield
    read -r st sz x e2 <<<"$(fetch shield "$f" "$got")"
    if [ "$st" != 200 ] || [ "$x" != HIT ]; then
        die "tomato-shield: the second fetch of /$f gave $st, X-Cache: $x (want 200, HIT)"
    fi
    cmp -s "$got" "$www/$f" || die "tomato-shield: the hit on /$f returned other bytes than the miss"
    [ "$e" = "$e2" ] || die "tomato-shield: /$f: ETag $e on the miss, $e2 on the hit"
    if [ "$f" = "$seg_path" ]; then
        [ "$sz" = "$seg_bytes" ] || die "tomato-shield: /$f is $sz bytes, tmt-pack-bench cut $seg_bytes"
        [ "$e" = "$seg_hash" ] || die "tomato-shield: /$f has ETag $e, tmt-pack-bench hashed $seg_hash"
    fi
done
master_bytes=$(wc -c <"$www/$master_path")
chmod -R a+rX "$www"
start_nginx
for f in "${files[@]}"; do
    read -r st sz _ _ <<<"$(fetch nginx "$f" "$tmp/logs/got-nginx")"
    [ "$st" = 200 ] || die "nginx: /$f gave status $st (want 200)"
    cmp -s "$tmp/logs/got-nginx" "$www/$f" || die "nginx: /$f returned other bytes than the shield's"
done
size_of() { wc -c <"$www/$1"; }
label_of() {
    case "$1" in
    "$master_path") echo "master playlist" ;;
    *) echo "segment" ;;
    esac
}

cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("TMT_WRK requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

results=$tmp/results.tsv # server file run requests bytes secs wall_s cpu_s errors non2xx
: >"$results"

measure() { # name file run
    local name=$1 file=$2 run=$3 p url out t0 t1 c0 c1 raw h0 h1 m0 m1
    p=${pid[$name]}
    url=http://127.0.0.1:${port[$name]}/$file
    raw=$tmp/logs/$name-${file##*/}-$run.txt
    kill -0 "$p" 2>/dev/null || die "$name (pid $p) is gone before $file run $run"
    if [ "$name" = shield ]; then
        h0=$(shield_counter "$hits_key")
        m0=$(shield_counter "$miss_key")
    fi
    c0=$(cpu_ticks "$p")
    t0=$(now_ns)
    run_tool taskset -c "$client_core" wrk -t1 -c64 -d"${duration}s" -s "$tmp/report.lua" "$url" >"$raw" 2>&1 ||
        note "wrk exited with an error against $name ($url)"
    t1=$(now_ns)
    c1=$(cpu_ticks "$p")
    kill -0 "$p" 2>/dev/null || {
        note "$name (pid $p) died during $file run $run; last lines of its log:"
        tail -n 5 "$tmp/logs/$name.log" >&2 || true
        die "stopping"
    }
    out=$(python3 - "$raw" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
m = re.search(r"TMT_WRK (.*)", text)
if not m:
    sys.exit("cannot parse wrk output: " + text[-400:])
f = dict(kv.split("=") for kv in m.group(1).split())
errors = sum(int(f[k]) for k in ("connect", "read", "write", "timeout"))
print(f["requests"], f["bytes"], int(f["duration_us"]) / 1e6, errors, f["status"])
EOF
    ) || die "$out"
    local req byts secs errs non2xx size
    read -r req byts secs errs non2xx <<<"$out"
    [ "$req" -gt 0 ] || die "$name $file run $run: no request completed (raw output: $raw)"
    size=$(size_of "$file")
    if [ "$byts" -lt $((req * size)) ] || [ "$byts" -gt $(((req + 64) * (size + 2048))) ]; then
        die "$name $file run $run: $((byts / req)) bytes per response received, want the $size-byte body plus a head"
    fi
    if [ "$name" = shield ]; then
        h1=$(shield_counter "$hits_key")
        m1=$(shield_counter "$miss_key")
        [ $((h1 - h0)) -ge "$req" ] || die "shield $file run $run: $((h1 - h0)) hits for $req requests"
        [ "$m1" = "$m0" ] || die "shield $file run $run: $((m1 - m0)) misses during the run"
    fi
    local wall cpu
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(label_of "$file")" "$run" \
        "$req" "$byts" "$secs" "$wall" "$cpu" "$errs" "$non2xx" >>"$results"
    if [ "$errs" != 0 ] || [ "$non2xx" != 0 ]; then
        note "$name $file run $run: $errs errors, $non2xx non-2xx responses (raw output: $raw)"
    fi
}

names=(shield nginx)
total=$((runs * ${#files[@]} * ${#names[@]}))
n=0
for run in $(seq "$runs"); do
    for file in "${files[@]}"; do
        for name in "${names[@]}"; do
            n=$((n + 1))
            note "[$n/$total] run $run: $name $(label_of "$file") (${duration}s)"
            measure "$name" "$file" "$run"
        done
    done
done
for p in "${started[@]}"; do stop_server "$p"; done
started=()

# ---- report ----

versions() {
    local rev="unknown" dirty="" f bin_t src=$top
    if [ -f "$build_cache" ]; then
        src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_cache")
    fi
    bin_t=$(stat -c %Y "$shield_bin")
    if [ -f "$src/SOURCE_REV" ]; then
        rev="$(cat "$src/SOURCE_REV") (exported)"
    elif rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null); then
        while read -r f; do
            if [ -e "$src/$f" ] && [ "$(stat -c %Y "$src/$f")" -le "$bin_t" ]; then
                dirty=", may include uncommitted changes"
            fi
        done < <(git -C "$src" diff --name-only HEAD -- origin core config loadtest/pack_bench.c 2>/dev/null)
    else
        rev=unknown
    fi
    echo "- $("$shield_bin" --version 2>&1 | head -n 1) and tmt-pack-bench (build of git $rev$dirty, CMAKE_BUILD_TYPE=$build_type)"
    echo "- tomato-shield: server.workers=1, server.open=true, pack.threads=1, cache.ram_size=256MiB, cache.disk_size=1GiB (RocksDB in the temp dir), log.level=warn; other settings default"
    echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes 1, sendfile on, tcp_nopush on, access_log off, keepalive_requests 100000, serving the shield's bytes saved as files"
    echo "- $(ffmpeg -version 2>/dev/null | head -n 1 | awk '{ print $1 " " $3 }'); load: $(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }')"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(date -u +%Y-%m-%d)"
}

{
    echo "### Packaging: tomato-shield against one ffmpeg process; shield hits against nginx"
    echo
    echo "Command: \`$cmdline\`"
    echo
    versions
    echo "- mezzanine: 60 s of testsrc2 1280x720 25 fps, libx264 veryfast 3 Mbit/s (-maxrate 3M -bufsize 6M), -x264-params $x264_params, AAC 128 kbit/s stereo 48 kHz, +faststart: $mezz_bytes bytes; asset.json with segment_duration 4, renditions $rend (video) and audio (the same file)"
    echo "- segment: $rend segment $segment_n, start ${seg_start} s, duration ${seg_dur} s, $seg_bytes bytes (styp+moof+mdat, video only; the audio rendition's segment $segment_n: $audio_bytes bytes); XXH3 $seg_hash, equal to the shield's ETag for /$seg_path"
    echo "- tomato-shield packaging: tmt-pack-bench on core $server_core; index built once (${pk[index_build_us]} µs, not counted), then $pack_iter cuts per run, each as the shield's miss path does it: open + fstat + \`tmt_pack_media_segment\` into a new buffer + close + XXH3 over the output; one untimed cut before; CLOCK_MONOTONIC per cut; no shield cache; the same for the audio segment; median and p90 of each run, the median over $runs run(s) reported"
    echo "- ffmpeg: \`ffmpeg -nostdin -v error -ss $seg_start -t 4 -i mezz.mp4 -map 0 -c copy -f mp4 -y out.mp4\` on core $server_core (video and audio, $ffmpeg_bytes bytes out), wall time of the whole process from the shell, median of $ffmpeg_runs after one untimed"
    echo "- hits: /$seg_path ($seg_bytes bytes) and /$master_path ($master_bytes bytes) fetched once from the shield (X-Cache: MISS) and again (X-Cache: HIT, the same bytes and ETag), saved under nginx's root and checked byte for byte through nginx; servers on core $server_core, \`wrk -t1 -c64 -d${duration}s URL\` on core $client_core over HTTP/1.1 keep-alive; every shield run checked that its hit counter grew by the requests served and its miss counter did not; median of $runs run(s) per row, the runs interleave the servers"
    echo "- server CPU = utime+stime of the server's processes (/proc/PID/stat) over the run of wrk; MB = 10^6 and GB = 10^9 bytes as received (headers included)"
    echo
    echo "Packaging one 4-second segment (microseconds):"
    echo
    echo "| what | median µs | p90 µs | per run (median / p90) |"
    echo "| --- | ---: | ---: | --- |"
    per=""
    for i in "${!pack_medians[@]}"; do per="$per${per:+, }${pack_medians[$i]} / ${pack_p90s[$i]}"; done
    echo "| tomato-shield packager: video segment ($seg_bytes bytes) | $pack_median | $pack_p90 | $per |"
    per=""
    for i in "${!audio_medians[@]}"; do per="$per${per:+, }${audio_medians[$i]} / ${audio_p90s[$i]}"; done
    echo "| tomato-shield packager: audio segment ($audio_bytes bytes) | $audio_median | $audio_p90 | $per |"
    echo "| tomato-shield packager: video + audio | $both_median | — | ${both_medians[*]} |"
    sorted=$(printf '%s\n' "${ffmpeg_us[@]}" | sort -n)
    p90_ff=$(awk -v n="${#ffmpeg_us[@]}" 'BEGIN { k = int((n * 90 + 99) / 100); if (k < 1) k = 1 } NR == k { print }' <<<"$sorted")
    echo "| one ffmpeg -map 0 -c copy process (video + audio, $ffmpeg_bytes bytes) | $ffmpeg_median | $p90_ff | min $(head -n 1 <<<"$sorted"), max $(tail -n 1 <<<"$sorted") |"
    echo
} >"$tmp/report.md"

python3 - "$results" "$pack_median" "$both_median" "$ffmpeg_median" >>"$tmp/report.md" <<'EOF'
import statistics, sys

res_path, pack_us, both_us, ff_us = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])


def verdict(r):
    return "aim met" if r >= 100 else ("target met, aim not" if r >= 20 else "**target not met**")


print("Ratio ffmpeg process ÷ tomato-shield packager (the origin-shield issue: at least 20×, "
      "the aim 100×):")
print()
print("| ours | ratio | |")
print("| --- | ---: | --- |")
print("| video segment | %.0f× | %s |" % (ff_us / pack_us, verdict(ff_us / pack_us)))
print("| video + audio segments (what the ffmpeg process cuts) | %.0f× | %s |" % (
    ff_us / both_us, verdict(ff_us / both_us)))
print()

title = {"shield": "tomato-shield hit", "nginx": "nginx file"}
servers = ["shield", "nginx"]
files = ["segment", "master playlist"]
runs = {}
for line in open(res_path):
    s, f, run, req, byts, secs, wall, cpu, errs, non2xx = line.rstrip("\n").split("\t")
    runs.setdefault((s, f), []).append(dict(
        rps=int(req) / float(secs), mbps=int(byts) / float(secs) / 1e6, cpu=float(cpu),
        pct=100 * float(cpu) / float(wall),
        rpc=int(req) / float(cpu) if float(cpu) > 0 else float("nan"),
        cpgb=float(cpu) / (int(byts) / 1e9) if int(byts) else float("nan"),
        errs=int(errs), non2xx=int(non2xx)))
row = {}
for key, rows in runs.items():
    row[key] = {k: statistics.median(r[k] for r in rows) for k in ("rps", "mbps", "cpu", "pct", "rpc", "cpgb")}
    row[key]["errs"] = sum(r["errs"] for r in rows)
    row[key]["non2xx"] = sum(r["non2xx"] for r in rows)

print("| object | server | requests/s | MB/s | server CPU-s | CPU % of one core "
      "| requests per CPU-s | CPU-s per GB | errors / non-2xx |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for f in files:
    for s in servers:
        r = row.get((s, f))
        if r is None:
            print("| %s | %s | n/a | — | — | — | — | — | — |" % (f, title[s]))
            continue
        print("| %s | %s | %.0f | %.1f | %.2f | %.1f | %.0f | %.3f | %d / %d |" % (
            f, title[s], r["rps"], r["mbps"], r["cpu"], r["pct"], r["rpc"], r["cpgb"], r["errs"], r["non2xx"]))
print()


def rat(f, k):
    a, b = row.get(("shield", f)), row.get(("nginx", f))
    if a is None or b is None or not b[k] or a[k] != a[k] or b[k] != b[k]:
        return "n/a"
    return "%.2f" % (a[k] / b[k])


print("Ratios, tomato-shield hit ÷ nginx file. Requests per CPU-s: higher is better; "
      "CPU-s per GB: lower is better.")
print()
print("| object | requests/s | req per CPU-s | CPU-s per GB |")
print("| --- | ---: | ---: | ---: |")
for f in files:
    print("| %s | %s | %s | %s |" % (f, rat(f, "rps"), rat(f, "rpc"), rat(f, "cpgb")))
print()
EOF

cat "$tmp/report.md"
