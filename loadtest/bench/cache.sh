#!/usr/bin/env bash
# Cache-hit benchmark: tomato-edge (hot and warm hits) against nginx proxy_cache, Varnish and
# Apache Traffic Server, one worker each, all in front of the same nginx origin.
#
#   loadtest/bench/cache.sh [--duration SECONDS] [--runs N] [--quick] [--build-dir DIR] [--no-ats]
#
# The origin (nginx, on core 1) serves a 1 KiB playlist and a 1 MiB segment with
# Cache-Control: public, max-age=31536000 and logs every request. Each cache runs ONE worker
# pinned to core 0 (taskset -c 0) with the origin as its only upstream:
#   tomato-edge hot   server.workers=1, cache.hot_size=64MiB: hits from RAM (X-Cache: HIT-hot)
#   tomato-edge warm  server.workers=1, cache.hot_size=0: hits from RocksDB (X-Cache: HIT-warm),
#                     read from its files: the edge is restarted after warming (a graceful stop
#                     flushes the memtable; the 1 MiB segment is then in a blob file)
#   nginx proxy_cache worker_processes 1, cache in a temp dir, open_file_cache, sendfile,
#                     keepalive to the origin
#   Varnish           varnishd -s malloc,256m -p thread_pools=1 (thread per connection: the whole
#                     process on core 0 is its "one worker")
#   ATS               traffic_server with one net thread, RAM cache, the whole process on core 0
#                     (when the trafficserver package is installed; --no-ats leaves it out)
# Every cache is warmed (each object fetched until it is a hit) and checked before measuring:
# status 200, the exact bytes, the cache's hit marker (X-Cache, X-Cache-Status, X-Varnish) and
# no new request in the origin's access log. Each measurement is wrk -t1 -c64 -d DURATION over
# HTTP/1.1 keep-alive, pinned to core 1; it fails when the origin saw any request during it,
# when an edge's hit counter for the expected tier did not grow by the requests served, or when
# the bytes per response do not match the object. Per row: requests/s, MB/s, server CPU
# (utime+stime of the server's processes from /proc/PID/stat over the run), requests per
# CPU-second and, for 1 MiB, CPU-seconds per GB; then ratios and the targets. Each row is the
# median of the runs.
#
#   --duration SECONDS  length of one measurement (default 10)
#   --runs N            measurements per row, the median is reported (default 3)
#   --quick             --duration 3 --runs 1
#   --build-dir DIR     take tomato-edge from DIR/bin (default build; a Release build is fair:
#                       cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release)
#   --no-ats            leave Apache Traffic Server out
#   --keep              keep the temp dir (configs, logs, raw wrk output) and print its path
#
# Environment: TOMATO_EDGE=path to the tomato-edge binary (overrides --build-dir).
# Tools: scripts/setup.sh --bench installs them. Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
build_dir=$top/build
cmdline="loadtest/bench/cache.sh$(printf ' %q' "$@")"
tool_pid=""

duration=10
runs=3
keep=0
want_ats=1
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
    --no-ats)
        want_ats=0
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
        echo "bench/cache.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration takes whole seconds >= 1, got '$duration'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a count >= 1, got '$runs'"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
edge_bin=${TOMATO_EDGE:-$build_dir/bin/tomato-edge}

# ---- tools ----

missing=()
need_tool taskset util-linux
need_tool curl curl
need_tool python3 python3
need_tool nginx nginx-light
need_tool varnishd varnish
need_tool wrk wrk
need_tool ps procps
if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do note "missing $m"; done
    die "install them with: scripts/setup.sh --bench"
fi
ats_note=""
if [ "$want_ats" = 1 ] && ! command -v traffic_server >/dev/null 2>&1; then
    ats_note="not installed (Debian package trafficserver)"
    want_ats=0
fi
[ -x "$edge_bin" ] || die "no tomato-edge at $edge_bin (build it: cmake --build ${build_dir#"$top"/} -j1 --target tomato-edge)"
build_type=unknown
build_cache=$(dirname "$(dirname "$edge_bin")")/CMakeCache.txt
if [ -f "$build_cache" ]; then
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_cache")
    build_type=${build_type:-none}
fi
case "$build_type" in
Release | RelWithDebInfo) ;;
*) note "WARNING: $edge_bin is a '$build_type' build; the comparison is only fair with Release (--build-dir build-bench, see --help)" ;;
esac
taskset -c "$server_core,$client_core" true 2>/dev/null ||
    die "needs cores $server_core and $client_core (taskset -c $server_core,$client_core failed)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || true
fi

# ---- temp dir, cleanup ----

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-cache.XXXXXX")
# nginx drops root for its workers (nobody), Varnish for its child: they must reach their dirs.
chmod 755 "$tmp"
started=() # pids of the servers this script started

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${started[@]}"; do stop_server "$p"; done
    if [ -n "$tool_pid" ]; then kill "$tool_pid" 2>/dev/null || true; fi
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

# ---- content ----

www=$tmp/www
asset=v/bench/720p
mkdir -p "$www/$asset" "$tmp/logs"
playlist=$asset/index.m3u8
segment=$asset/1.m4s
# A 1 KiB media playlist (text, padded with a comment line) and a 1 MiB segment of random bytes.
{
    printf '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI="init.mp4"\n'
    for i in $(seq 1 12); do printf '#EXTINF:4.000,\n%d.m4s\n' "$i"; done
    printf '#EXT-X-ENDLIST\n'
} >"$tmp/pl.txt"
pad=$((1024 - $(wc -c <"$tmp/pl.txt") - 2))
[ "$pad" -ge 0 ] || die "playlist over 1 KiB"
{
    cat "$tmp/pl.txt"
    printf '#%*s\n' "$pad" '' | tr ' ' 'x'
} >"$www/$playlist"
head -c 1048576 /dev/urandom >"$www/$segment"
[ "$(wc -c <"$www/$playlist")" = 1024 ] || die "playlist is not 1024 bytes"
chmod -R a+rX "$www"
files=("$playlist" "$segment")
size_of() { wc -c <"$www/$1"; }
label_of() {
    case "$1" in
    "$playlist") echo "1 KiB" ;;
    *) echo "1 MiB" ;;
    esac
}

cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("TMT_WRK requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# ---- origin ----

origin_log=$tmp/origin/access.log
start_origin() {
    local prefix=$tmp/origin
    port_origin=$(free_ports 1)
    mkdir -p "$prefix"
    cat >"$prefix/nginx.conf" <<EOF
# Origin for bench/cache.sh: every response long-lived, every request logged.
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 4096; }
http {
    access_log $origin_log;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000;
    server_tokens off;
    types {
        application/vnd.apple.mpegurl m3u8;
        video/iso.segment m4s;
    }
    default_type application/octet-stream;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    server {
        listen 127.0.0.1:$port_origin;
        root $www;
        add_header Cache-Control "public, max-age=31536000" always;
    }
}
EOF
    : >"$origin_log"
    chmod 666 "$origin_log"
    # The origin only answers the fills; it idles on the load generator's core while measuring.
    taskset -c "$client_core" nginx -c "$prefix/nginx.conf" -p "$prefix" -e "$prefix/error.log" \
        -g 'daemon off;' >>"$tmp/logs/origin.log" 2>&1 &
    pid_origin=$!
    started+=("$pid_origin")
    wait_ready "$pid_origin" "$port_origin" ||
        die "the nginx origin did not start: $(tail -n 5 "$prefix/error.log" "$tmp/logs/origin.log" 2>/dev/null)"
}

origin_requests() { wc -l <"$origin_log"; }

# ---- caches ----
# start_NAME sets pid[NAME] and port[NAME]; every cache is started pinned to core 0.

declare -A pid port title marker admin
names=()

start_edge() { # name hot_size warm_size
    local name=$1 dir=$tmp/$1 ports p a
    ports=$(free_ports 2)
    p=${ports% *}
    a=${ports#* }
    mkdir -p "$dir"
    cat >"$dir/tomato-edge.conf" <<EOF
# tomato-edge for bench/cache.sh ($name hits)
[log]
level = warn

[server]
workers = 1
listen = 127.0.0.1:$p

[admin]
listen = 127.0.0.1:$a

[upstream]
shields = 127.0.0.1:$port_origin

[tokens]
# The objects are requested without tokens (bench/tokens_edge.sh measures the token checks).
public = /v/

[cache]
hot_size = $2
warm_path = $dir/warm
warm_size = $3
cold_path = $dir/cold
cold_size = 0
EOF
    taskset -c "$server_core" "$edge_bin" --config "$dir/tomato-edge.conf" >>"$tmp/logs/$name.log" 2>&1 &
    pid[$name]=$!
    started+=("${pid[$name]}")
    port[$name]=$p
    admin[$name]=$a
    wait_ready "${pid[$name]}" "$p" "$a" || die "tomato-edge ($name) did not start: $(tail -n 5 "$tmp/logs/$name.log")"
}

start_nginx() {
    local name=nginx prefix=$tmp/nginx p
    p=$(free_ports 1)
    mkdir -p "$prefix"
    cat >"$prefix/nginx.conf" <<EOF
# nginx proxy_cache for bench/cache.sh: one worker, cache files in a temp dir.
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
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    proxy_cache_path $prefix/cache levels=1:2 keys_zone=bench:10m max_size=1g inactive=1d use_temp_path=off;
    # Hits open the cache file through the open-file cache: about a third more hits per CPU-s.
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    upstream origin {
        server 127.0.0.1:$port_origin;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$p;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_valid 200 1d;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF
    taskset -c "$server_core" nginx -c "$prefix/nginx.conf" -p "$prefix" -e "$prefix/error.log" \
        -g 'daemon off;' >>"$tmp/logs/$name.log" 2>&1 &
    pid[$name]=$!
    started+=("${pid[$name]}")
    port[$name]=$p
    wait_ready "${pid[$name]}" "$p" ||
        die "nginx did not start: $(tail -n 5 "$prefix/error.log" "$tmp/logs/$name.log" 2>/dev/null)"
}

# Varnish runs a thread per connection: thread_pools=1, and enough threads for wrk's 64
# connections started up front (no thread creation while measuring).
varnish_params=(-p thread_pools=1 -p thread_pool_min=100 -p thread_pool_max=1000)
start_varnish() {
    local name=varnish dir=$tmp/varnish p
    p=$(free_ports 1)
    mkdir -p "$dir"
    taskset -c "$server_core" varnishd -F -n "$dir/work" -a "127.0.0.1:$p" -b "127.0.0.1:$port_origin" \
        -s malloc,256m "${varnish_params[@]}" >>"$tmp/logs/$name.log" 2>&1 &
    pid[$name]=$!
    started+=("${pid[$name]}")
    port[$name]=$p
    wait_ready "${pid[$name]}" "$p" || die "varnishd did not start: $(tail -n 5 "$tmp/logs/$name.log")"
}

# Traffic Server in a runroot of its own under the temp dir: one net thread (exec_thread.limit
# 1, no accept thread), 256 MiB RAM cache over a 512 MiB cache file, no logging, the packaged
# configs otherwise.
ats_records=(
    "CONFIG proxy.config.exec_thread.autoconfig INT 0"
    "CONFIG proxy.config.exec_thread.limit INT 1"
    "CONFIG proxy.config.exec_thread.affinity INT 0"
    "CONFIG proxy.config.accept_threads INT 0"
    "CONFIG proxy.config.task_threads INT 1"
    "CONFIG proxy.config.cache.threads_per_disk INT 1"
    "CONFIG proxy.config.cache.ram_cache.size INT 268435456"
    "CONFIG proxy.config.cache.ram_cache_cutoff INT 4194304"
    "CONFIG proxy.config.log.logging_enabled INT 0"
    "CONFIG proxy.config.http.insert_request_via_str INT 0"
    "CONFIG proxy.config.http.insert_response_via_str INT 0"
    "CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 300"
    "CONFIG proxy.config.http.keep_alive_enabled_out INT 1"
)
start_ats() {
    local name=ats dir=$tmp/ats p r
    p=$(free_ports 1)
    mkdir -p "$dir/etc" "$dir/var" "$dir/run" "$dir/log" "$dir/cache" "$dir/data"
    cp -r /etc/trafficserver/. "$dir/etc/"
    cat >"$dir/runroot.yaml" <<EOF
prefix: $dir
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $dir/etc
datadir: $dir/data
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: $dir/var
runtimedir: $dir/run
logdir: $dir/log
cachedir: $dir/cache
EOF
    {
        grep -vE '^CONFIG proxy\.config\.(exec_thread\.|accept_threads|task_threads|cache\.threads_per_disk|cache\.ram_cache|log\.logging_enabled|http\.insert_(request|response)_via_str|http\.keep_alive_no_activity_timeout_in|http\.server_ports|admin\.user_id)' \
            /etc/trafficserver/records.config
        for r in "${ats_records[@]}"; do echo "$r"; done
        echo "CONFIG proxy.config.http.server_ports STRING $p:ipv4:ip-in=127.0.0.1"
        echo "CONFIG proxy.config.admin.user_id STRING #-1"
    } >"$dir/etc/records.config"
    echo "map http://127.0.0.1:$p/ http://127.0.0.1:$port_origin/" >"$dir/etc/remap.config"
    echo "$dir/cache 512M" >"$dir/etc/storage.config"
    : >"$dir/etc/volume.config"
    : >"$dir/etc/plugin.config"
    taskset -c "$server_core" traffic_server --run-root="$dir/runroot.yaml" \
        >>"$tmp/logs/$name.log" 2>&1 &
    pid[$name]=$!
    started+=("${pid[$name]}")
    port[$name]=$p
    wait_ready "${pid[$name]}" "$p" || {
        note "traffic_server did not start: $(tail -n 5 "$tmp/logs/$name.log" "$dir/log/diags.log" 2>/dev/null)"
        return 1
    }
}

# Fetches PATH from a cache: prints "status size marker" and leaves the body in FILE.
fetch() { # name path file
    local name=$1 path=$2 out=$3 hdr=$tmp/logs/hdr.txt st m=""
    st=$(curl -sS --http1.1 --max-time 10 -D "$hdr" -o "$out" -w '%{http_code} %{size_download}' \
        "http://127.0.0.1:${port[$name]}/$path" 2>&1) || st="curl-failed 0"
    case "$name" in
    edge-*) m=$(awk -F': *' 'tolower($1) == "x-cache" { sub(/\r$/, "", $2); print $2 }' "$hdr") ;;
    nginx) m=$(awk -F': *' 'tolower($1) == "x-cache-status" { sub(/\r$/, "", $2); print $2 }' "$hdr") ;;
    varnish) # X-Varnish: one transaction id on a miss, two (this one and the object's) on a hit
        m=$(awk -F': *' 'tolower($1) == "x-varnish" { sub(/\r$/, "", $2); print (split($2, a, " ") == 2 ? "HIT" : "MISS") }' "$hdr")
        ;;
    ats) m=- ;; # no marker: the origin's access log tells
    esac
    echo "$st ${m:-none}"
}

# Warms NAME: fetches every object until the cache answers it without asking the origin
# (Traffic Server writes a new object to its cache after the response, Varnish after the body),
# then checks status, bytes, the hit marker and the origin's log.
warm_and_check() { # name
    local name=$1 f got i n0 n1 res st sz m want=${marker[$1]}
    for f in "${files[@]}"; do
        got=$tmp/logs/got-$name
        for i in $(seq 20); do
            n0=$(origin_requests)
            res=$(fetch "$name" "$f" "$got")
            n1=$(origin_requests)
            [ "$n0" = "$n1" ] && break
            sleep 0.2
        done
        read -r st sz m <<<"$res"
        [ "$n0" = "$n1" ] || die "$name: /$f still goes to the origin after 20 fetches (last: $res)"
        [ "$st" = 200 ] || die "$name: /$f gave status $st (want 200)"
        [ "$sz" = "$(size_of "$f")" ] || die "$name: /$f body is $sz bytes (want $(size_of "$f"))"
        cmp -s "$got" "$www/$f" || die "$name: /$f returned other bytes than the origin's file"
        [ "$want" = - ] || [ "$m" = "$want" ] ||
            die "$name: /$f is not a hit of the expected kind: marker '$m', want '$want'"
        rm -f "$got"
    done
}

# Counter value from an edge's /metrics (0 when absent).
edge_counter() { # name series
    curl -sS --max-time 5 "http://127.0.0.1:${admin[$1]}/metrics" |
        awk -v k="$2" 'index($0, k " ") == 1 { v = $NF } END { printf "%d\n", v + 0 }'
}
# Sum of the edge's request outcomes other than hits of its expected tier.
edge_others() { # name tier
    curl -sS --max-time 5 "http://127.0.0.1:${admin[$1]}/metrics" |
        awk -v keep="tmt_edge_requests_total{result=\"hit_$2\"}" '
            /^tmt_edge_requests_total\{/ && index($0, keep " ") != 1 { s += $NF }
            /^tmt_edge_upstream_requests_total / { s += $NF }
            END { printf "%d\n", s + 0 }'
}

threads_of() { # pid: threads summed over the server's processes
    local p sum=0 n
    for p in $(tree_pids "$1"); do
        n=$(awk '/^Threads:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}

clk_tck=$(getconf CLK_TCK)

# ---- throughput ----

results=$tmp/results.tsv # server file run requests bytes secs wall_s cpu_s errors non2xx
: >"$results"

measure() { # name file run
    local name=$1 file=$2 run=$3 p url out t0 t1 c0 c1 raw n0 n1 h0 h1 o0 o1 tier=""
    p=${pid[$name]}
    url=http://127.0.0.1:${port[$name]}/$file
    raw=$tmp/logs/$name-${file##*/}-$run.txt
    kill -0 "$p" 2>/dev/null || die "$name (pid $p) is gone before $file run $run"
    case "$name" in
    edge-hot) tier=hot ;;
    edge-warm) tier=warm ;;
    esac
    if [ -n "$tier" ]; then
        h0=$(edge_counter "$name" "tmt_edge_requests_total{result=\"hit_$tier\"}")
        o0=$(edge_others "$name" "$tier")
    fi
    n0=$(origin_requests)
    c0=$(cpu_ticks "$p")
    t0=$(now_ns)
    # In the background so that a signal stops the script at once.
    taskset -c "$client_core" wrk -t1 -c64 -d"${duration}s" -s "$tmp/report.lua" "$url" >"$raw" 2>&1 &
    tool_pid=$!
    wait "$tool_pid" || note "wrk exited with $? against $name ($url)"
    tool_pid=""
    t1=$(now_ns)
    c1=$(cpu_ticks "$p")
    n1=$(origin_requests)
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
    local req byts secs errs non2xx size per
    read -r req byts secs errs non2xx <<<"$out"
    [ "$n0" = "$n1" ] || die "$name $file run $run: the origin got $((n1 - n0)) requests during the run: not all hits"
    [ "$req" -gt 0 ] || die "$name $file run $run: no request completed (raw output: $raw)"
    # wrk counts the bytes of the (up to 64) responses still arriving when it stops, not them.
    size=$(size_of "$file")
    per=$((byts / req))
    if [ "$byts" -lt $((req * size)) ] || [ "$byts" -gt $(((req + 64) * (size + 2048))) ]; then
        die "$name $file run $run: $per bytes per response received, want the $size-byte body plus a head"
    fi
    if [ -n "$tier" ]; then
        h1=$(edge_counter "$name" "tmt_edge_requests_total{result=\"hit_$tier\"}")
        o1=$(edge_others "$name" "$tier")
        [ $((h1 - h0)) -ge "$req" ] ||
            die "$name $file run $run: $((h1 - h0)) hit_$tier for $req requests: hits came from elsewhere"
        [ "$o1" = "$o0" ] ||
            die "$name $file run $run: $((o1 - o0)) requests were not hit_$tier (misses, other tiers or upstream)"
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

versions() {
    local rev="unknown" dirty="" f bin_t src=$top
    # The commit the binary was built from: its build's source dir (a checkout, or an export of
    # a commit with the commit id in SOURCE_REV, see loadtest/README.md).
    if [ -f "$build_cache" ]; then
        src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_cache")
    fi
    bin_t=$(stat -c %Y "$edge_bin")
    if [ -f "$src/SOURCE_REV" ]; then
        rev="$(cat "$src/SOURCE_REV") (exported)"
    elif rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null); then
        # The binary may hold uncommitted work when a changed source is older than it.
        while read -r f; do
            if [ -e "$src/$f" ] && [ "$(stat -c %Y "$src/$f")" -le "$bin_t" ]; then
                dirty=", may include uncommitted changes"
            fi
        done < <(git -C "$src" diff --name-only HEAD -- edge core config 2>/dev/null)
        if [ "$(git -C "$src" log -1 --format=%ct)" -gt "$bin_t" ]; then
            dirty="$dirty, binary older than that commit"
        fi
    else
        rev=unknown
    fi
    echo "- $("$edge_bin" --version 2>&1 | head -n 1) (build of git $rev$dirty, CMAKE_BUILD_TYPE=$build_type): server.workers=1, log.level=warn, upstream.shields = the origin; hot: cache.hot_size=64MiB, warm_size=64MiB; warm: cache.hot_size=0, warm_size=256MiB (RocksDB in the temp dir); cold_size=0; other settings default"
    echo "- nginx proxy_cache: $(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes 1, proxy_cache_path in the temp dir (levels=1:2, use_temp_path=off), open_file_cache max=1000 (valid 60s), proxy_cache_valid 200 1d, proxy_cache_lock on, keepalive 16 to the origin, sendfile on, tcp_nopush on, access_log off, keepalive_requests 100000, add_header X-Cache-Status"
    echo "- Varnish: $(varnishd -V 2>&1 | head -n 1 | sed 's/^varnishd (\(varnish-[^ ]*\).*/\1/'), \`varnishd -F -a 127.0.0.1:PORT -b 127.0.0.1:ORIGIN -s malloc,256m ${varnish_params[*]}\`, built-in VCL; thread per connection, so manager and child process are pinned to core $server_core together (threads while measuring: ${varnish_threads:-?})"
    if [ "$want_ats" = 1 ]; then
        echo "- ATS: $(traffic_server --version 2>/dev/null | head -n 1 | awk '{ print "Traffic Server " $3 }'), runroot in the temp dir, records.config as packaged plus: $(printf '%s; ' "${ats_records[@]}" | sed 's/CONFIG proxy\.config\.//g; s/ INT / /g; s/; $//'); remap of the origin; 512 MiB cache file; whole process pinned to core $server_core (threads: ${ats_threads:-?})"
    else
        echo "- ATS: not measured (${ats_note:-left out with --no-ats})"
    fi
    echo "- origin: the same nginx, \`Cache-Control: public, max-age=31536000\`, access log on, pinned to core $client_core (idle while measuring)"
    echo "- load: $(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }')"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(date -u +%Y-%m-%d)"
}

note "starting the origin and the caches"
start_origin
start_edge edge-hot 64MiB 64MiB
title[edge-hot]="tomato-edge hot"
marker[edge-hot]=HIT-hot
names+=(edge-hot)
start_edge edge-warm 0 256MiB
title[edge-warm]="tomato-edge warm"
marker[edge-warm]=HIT-warm
names+=(edge-warm)
start_nginx
title[nginx]="nginx proxy_cache"
marker[nginx]=HIT
names+=(nginx)
start_varnish
title[varnish]="Varnish"
marker[varnish]=HIT
names+=(varnish)
if [ "$want_ats" = 1 ]; then
    if start_ats; then
        title[ats]="ATS"
        marker[ats]=-
        names+=(ats)
    else
        ats_note="traffic_server did not start (see --keep logs)"
        want_ats=0
    fi
fi

note "warming and checking: ${names[*]}"
for name in "${names[@]}"; do warm_and_check "$name"; done
# A warm tier's objects live in RocksDB's files (SST, blob files for values of 4 KiB and more),
# not in the memtable that just took the fills: a graceful stop flushes it, and the warm edge
# then answers from the files after its restart, still without asking the origin.
note "restarting tomato-edge warm so that its hits are read from RocksDB's files"
stop_server "${pid[edge-warm]}"
ls "$tmp/edge-warm/warm/"*.blob >/dev/null 2>&1 ||
    die "tomato-edge warm: no blob file in $tmp/edge-warm/warm after a graceful stop"
start_edge edge-warm 0 256MiB
warm_and_check edge-warm
varnish_threads=$(threads_of "${pid[varnish]}")
[ "$want_ats" = 1 ] && ats_threads=$(threads_of "${pid[ats]}")

total=$((runs * ${#files[@]} * ${#names[@]}))
n=0
for run in $(seq "$runs"); do
    for file in "${files[@]}"; do
        for name in "${names[@]}"; do
            n=$((n + 1))
            note "[$n/$total] run $run: ${title[$name]} $(label_of "$file") (${duration}s)"
            measure "$name" "$file" "$run"
        done
    done
done
origin_total=$(origin_requests)
for p in "${started[@]}"; do stop_server "$p"; done
started=()

# ---- report ----

{
    echo "### Cache hits: tomato-edge, nginx proxy_cache, Varnish$([ "$want_ats" = 1 ] && echo ", ATS") (one worker each)"
    echo
    echo "Command: \`$cmdline\`"
    echo
    versions
    echo "- each cache pinned to core $server_core (\`taskset -c $server_core\`), load generator pinned to core $client_core (\`taskset -c $client_core\`); objects: /$playlist (1024 bytes) and /$segment (1048576 bytes)"
    echo "- before measuring, each object was fetched through each cache until the origin saw no new request, then checked: 200, the exact bytes, the hit marker (tomato-edge X-Cache: HIT-hot / HIT-warm, nginx X-Cache-Status: HIT, Varnish two ids in X-Varnish; ATS: the origin's log only); every measured run checked that the origin's access log did not grow, that the bytes per response match the object, and for tomato-edge that its hit_hot / hit_warm counter grew by at least the requests served and no other outcome did (origin requests in all: $origin_total, all during warming)"
    echo "- tomato-edge warm was stopped gracefully after warming and started again on the same RocksDB directory, so that its hits read RocksDB's files (SST; the 1 MiB value in a blob file) rather than the memtable that took the fills; it was checked again after the restart (HIT-warm, no origin request)"
    echo "- HTTP/1.1 keep-alive: \`wrk -t1 -c64 -d${duration}s URL\`; median of $runs run(s) per row; MB = 10^6 and GB = 10^9 bytes as received by the client (headers included); requests/s and MB/s over wrk's duration"
    echo "- server CPU = utime+stime of the server's processes (/proc/PID/stat) over the whole run of wrk, as CPU-seconds and as % of one core over that wall time; requests per CPU-s counts the requests wrk completed"
    echo
} >"$tmp/report.md"

python3 - "$results" "$want_ats" >>"$tmp/report.md" <<'EOF'
import statistics, sys

res_path, want_ats = sys.argv[1:3]
title = {"edge-hot": "tomato-edge hot", "edge-warm": "tomato-edge warm", "nginx": "nginx proxy_cache",
         "varnish": "Varnish", "ats": "ATS"}
servers = ["edge-hot", "edge-warm", "nginx", "varnish"] + (["ats"] if want_ats == "1" else [])
peers = [s for s in servers if not s.startswith("edge-")]
files = ["1 KiB", "1 MiB"]

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

print("| file | server | requests/s | MB/s | server CPU-s | CPU % of one core "
      "| requests per CPU-s | CPU-s per GB | errors / non-2xx |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for f in files:
    for s in servers:
        r = row.get((s, f))
        if r is None:
            print("| %s | %s | n/a | — | — | — | — | — | — |" % (f, title[s]))
            continue
        cpgb = "%.3f" % r["cpgb"] if f == "1 MiB" else "—"
        print("| %s | %s | %.0f | %.1f | %.2f | %.1f | %.0f | %s | %d / %d |" % (
            f, title[s], r["rps"], r["mbps"], r["cpu"], r["pct"], r["rpc"], cpgb, r["errs"], r["non2xx"]))
print()


def ratio(a, b, k):
    x, y = row.get(a), row.get(b)
    if x is None or y is None or not y[k] or x[k] != x[k] or y[k] != y[k]:
        return None
    return x[k] / y[k]


def fmt(v):
    return "n/a" if v is None else "%.2f" % v


print("Ratios, tomato-edge ÷ peer. Requests per CPU-s: higher is better. "
      "CPU-s per GB (1 MiB only): lower is better.")
print()
head = "| tomato-edge | file |" + "".join(" req per CPU-s ÷ %s |" % title[p] for p in peers) \
    + "".join(" CPU-s per GB ÷ %s |" % title[p] for p in peers)
print(head)
print("| --- | --- |" + " ---: |" * (2 * len(peers)))
for e in ("edge-hot", "edge-warm"):
    for f in files:
        cells = [fmt(ratio((e, f), (p, f), "rpc")) for p in peers]
        cells += [fmt(ratio((e, f), (p, f), "cpgb")) if f == "1 MiB" else "—" for p in peers]
        print("| %s | %s | %s |" % (title[e].split()[-1], f, " | ".join(cells)))
print()

targets = [
    ("hot hits, 1 KiB: requests per CPU-s ÷ nginx proxy_cache", ratio(("edge-hot", "1 KiB"), ("nginx", "1 KiB"), "rpc"), ">=", 1.2),
    ("hot hits, 1 MiB: CPU-s per GB ÷ Varnish", ratio(("edge-hot", "1 MiB"), ("varnish", "1 MiB"), "cpgb"), "<=", 1.0),
    ("warm hits, 1 KiB: requests per CPU-s ÷ nginx proxy_cache", ratio(("edge-warm", "1 KiB"), ("nginx", "1 KiB"), "rpc"), ">=", 0.8),
    ("warm hits, 1 MiB: requests per CPU-s ÷ nginx proxy_cache", ratio(("edge-warm", "1 MiB"), ("nginx", "1 MiB"), "rpc"), ">=", 0.8),
]
print("Targets of the edge-cache issue:")
print()
print("| target | wanted | measured | met |")
print("| --- | ---: | ---: | --- |")
for name, v, op, want in targets:
    met = "n/a" if v is None else ("yes" if (v >= want if op == ">=" else v <= want) else "**no**")
    print("| %s | %s %.1f | %s | %s |" % (name, "≥" if op == ">=" else "≤", want, fmt(v), met))
print()
EOF

[ -z "$ats_note" ] || echo "ATS: not measured ($ats_note)." >>"$tmp/report.md"
cat "$tmp/report.md"
