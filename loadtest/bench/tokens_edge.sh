#!/usr/bin/env bash
# Token checks at the edge: tomato-edge hot hits with the token gate off and on, same run.
#
#   loadtest/bench/tokens_edge.sh [--duration SECONDS] [--runs N] [--quick] [--build-dir DIR]
#                                 [--together]
#
# An nginx origin (on core 1) serves a 1 KiB playlist and a 1 MiB segment under /v/bench/ with
# Cache-Control: public, max-age=31536000. Two tomato-edge instances, each server.workers=1 and
# cache.hot_size=64MiB, pinned to core 0 (taskset -c 0), have it as their only upstream:
#   off  tokens.public=/v/: /v/ needs no token (the default tokens.protect opened)
#   on   tokens.keys_file with one key: every request is /t/{token}/v/bench/..., one valid token
#        (about 400 characters, minted here as the control plane mints them) reused by every
#        request, so after the first check of each worker the verified-token cache answers
# Both are warmed (each object fetched until it is a hit) and checked: 200, the exact bytes,
# X-Cache: HIT-hot, no new origin request; the "on" edge must refuse the path without a token
# (403). Each measurement is wrk -t1 -c64 -d DURATION over HTTP/1.1 keep-alive, pinned to core
# 1; the runs alternate off and on for each object. A run fails when the origin saw any request
# during it, when the edge's hit_hot counter did not grow by the requests served, when the bytes
# per response do not match, or (on) when a token was refused or checked other than from the
# cache more than once. Per row: requests/s, server CPU-s (utime+stime from /proc) and requests
# per CPU-second, each the median of the runs; then on ÷ off for both, per run (the two ran back
# to back, so other work on the machine weighs on both alike) and the median of those ratios.
#
#   --duration SECONDS  length of one measurement (default 10)
#   --runs N            measurements per row, the median is reported (default 3)
#   --quick             --duration 3 --runs 1
#   --build-dir DIR     take tomato-edge from DIR/bin (default build; use a Release build:
#                       cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release)
#   --together          measure off and on at the same time: both edges share core 0 (each gets
#                       half of it while both are busy) and their two wrk processes share core
#                       1, so that other work on the machine weighs on both alike; the ratio is
#                       then that of requests served in the same seconds
#   --keep              keep the temp dir (configs, logs, raw wrk output) and print its path
#
# Environment: TOMATO_EDGE=path to the tomato-edge binary (overrides --build-dir).
# Tools: nginx, wrk, curl, python3 (scripts/setup.sh --bench). Output: Markdown on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
build_dir=$top/build
cmdline="loadtest/bench/tokens_edge.sh$(printf ' %q' "$@")"
tool_pids=() # wrk processes running
together=0

duration=10
runs=3
keep=0
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
    --together)
        together=1
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
        echo "bench/tokens_edge.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration takes whole seconds >= 1, got '$duration'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a count >= 1, got '$runs'"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
edge_bin=${TOMATO_EDGE:-$build_dir/bin/tomato-edge}

missing=()
need_tool taskset util-linux
need_tool curl curl
need_tool python3 python3
need_tool nginx nginx-light
need_tool wrk wrk
need_tool ps procps
if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do note "missing $m"; done
    die "install them with: scripts/setup.sh --bench"
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
*) note "WARNING: $edge_bin is a '$build_type' build; measure a Release build (--build-dir build-bench, see --help)" ;;
esac
taskset -c "$server_core,$client_core" true 2>/dev/null ||
    die "needs cores $server_core and $client_core (taskset -c $server_core,$client_core failed)"

# ---- temp dir, cleanup ----

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-tokens-edge.XXXXXX")
chmod 755 "$tmp" # nginx's worker runs as nobody
started=()

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${started[@]}"; do stop_server "$p"; done
    for p in "${tool_pids[@]}"; do kill "$p" 2>/dev/null || true; done
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
{
    printf '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI="init.mp4"\n'
    for i in $(seq 1 12); do printf '#EXTINF:4.000,\n%d.m4s\n' "$i"; done
    printf '#EXT-X-ENDLIST\n'
} >"$tmp/pl.txt"
pad=$((1024 - $(wc -c <"$tmp/pl.txt") - 2))
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

# One key, and one token for /v/bench/ valid for a day, as the control plane signs them
# (docs: INTERFACES "Tokens"): HS256 over the compact form, kid in the header.
python3 - "$tmp/token.keys" "$tmp/token" <<'EOF'
import base64, hashlib, hmac, json, os, sys, time
def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
secret = os.urandom(32)
with open(sys.argv[1], "w") as f:
    f.write("bench %s\n" % b64u(secret))
now = int(time.time())
head = {"alg": "HS256", "typ": "JWT", "kid": "bench"}
claims = {"iss": "tomato-control-bench", "sub": "Zk4tY2FmZWJhYmUtcHNldWRvbnltLTAxMjM0NTY3",
          "iat": now - 5, "exp": now + 86400, "cdniv": 1, "cdniuc": "regex:^/v/bench/",
          "tmt_dev": "dev-5b2f0e8c-1d4a-4c59-9a3e-0f6b7c8d9e01",
          "tmt_lease": "lease-6f1d2c3b-8a9e-4f70-b1c2-d3e4f5a6b7c8"}
msg = b64u(json.dumps(head, separators=(",", ":")).encode()) + "." + \
    b64u(json.dumps(claims, separators=(",", ":")).encode())
sig = hmac.new(secret, msg.encode(), hashlib.sha256).digest()
with open(sys.argv[2], "w") as f:
    f.write(msg + "." + b64u(sig))
EOF
token=$(cat "$tmp/token")

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
# Origin for bench/tokens_edge.sh: every response long-lived, every request logged.
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 1024; }
http {
    access_log $origin_log;
    sendfile on;
    keepalive_timeout 300s;
    server_tokens off;
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
    taskset -c "$client_core" nginx -c "$prefix/nginx.conf" -p "$prefix" -e "$prefix/error.log" \
        -g 'daemon off;' >>"$tmp/logs/origin.log" 2>&1 &
    pid_origin=$!
    started+=("$pid_origin")
    wait_ready "$pid_origin" "$port_origin" ||
        die "the nginx origin did not start: $(tail -n 5 "$prefix/error.log" "$tmp/logs/origin.log" 2>/dev/null)"
}

origin_requests() { wc -l <"$origin_log"; }

# ---- the two edges ----

declare -A pid port admin prefix_of
start_edge() { # name tokens-section
    local name=$1 dir=$tmp/$1 ports p a
    ports=$(free_ports 2)
    p=${ports% *}
    a=${ports#* }
    mkdir -p "$dir"
    cat >"$dir/tomato-edge.conf" <<EOF
# tomato-edge for bench/tokens_edge.sh (tokens $name)
[log]
level = warn

[server]
workers = 1
listen = 127.0.0.1:$p

[admin]
listen = 127.0.0.1:$a

[upstream]
shields = 127.0.0.1:$port_origin

[cache]
hot_size = 64MiB
warm_path = $dir/warm
warm_size = 64MiB
cold_path = $dir/cold
cold_size = 0

[tokens]
$2
EOF
    taskset -c "$server_core" "$edge_bin" --config "$dir/tomato-edge.conf" >>"$tmp/logs/$name.log" 2>&1 &
    pid[$name]=$!
    started+=("${pid[$name]}")
    port[$name]=$p
    admin[$name]=$a
    wait_ready "${pid[$name]}" "$p" "$a" || die "tomato-edge ($name) did not start: $(tail -n 5 "$tmp/logs/$name.log")"
}

edge_counter() { # name series
    curl -sS --max-time 5 "http://127.0.0.1:${admin[$1]}/metrics" |
        awk -v k="$2" 'index($0, k " ") == 1 { v = $NF } END { printf "%d\n", v + 0 }'
}
edge_denied() { # name: refusals of every reason
    curl -sS --max-time 5 "http://127.0.0.1:${admin[$1]}/metrics" |
        awk '/^tmt_edge_token_denied_total\{/ { s += $NF } END { printf "%d\n", s + 0 }'
}

# Fetches every object through NAME until it is a hit without an origin request, then checks it.
warm_and_check() { # name
    local name=$1 f i n0 n1 res st sz m got=$tmp/logs/got hdr=$tmp/logs/hdr
    for f in "${files[@]}"; do
        for i in $(seq 20); do
            n0=$(origin_requests)
            res=$(curl -sS --http1.1 --max-time 10 -D "$hdr" -o "$got" -w '%{http_code} %{size_download}' \
                "http://127.0.0.1:${port[$name]}${prefix_of[$name]}/$f" 2>&1) || res="curl-failed 0"
            n1=$(origin_requests)
            [ "$n0" = "$n1" ] && break
            sleep 0.2
        done
        read -r st sz <<<"$res"
        m=$(awk -F': *' 'tolower($1) == "x-cache" { sub(/\r$/, "", $2); print $2 }' "$hdr")
        [ "$n0" = "$n1" ] || die "$name: /$f still goes to the origin after 20 fetches"
        [ "$st" = 200 ] || die "$name: /$f gave status $st (want 200)"
        if [ "$sz" != "$(size_of "$f")" ] || ! cmp -s "$got" "$www/$f"; then
            die "$name: /$f returned other bytes"
        fi
        [ "$m" = HIT-hot ] || die "$name: /$f is not a hot hit (X-Cache: '$m')"
    done
}

# ---- throughput ----

results=$tmp/results.tsv # edge file run requests bytes secs cpu_s errors non2xx
: >"$results"
clk_tck=$(getconf CLK_TCK)

declare -A m_h0 m_v0 m_d0 m_c0 m_n0 m_raw m_wrk
# Starts wrk against NAME (in the background) after reading its counters.
measure_start() { # name file run
    local name=$1 file=$2 run=$3 p
    p=${pid[$name]}
    kill -0 "$p" 2>/dev/null || die "$name (pid $p) is gone before $file run $run"
    m_raw[$name]=$tmp/logs/$name-${file##*/}-$run.txt
    m_h0[$name]=$(edge_counter "$name" 'tmt_edge_requests_total{result="hit_hot"}')
    m_v0[$name]=$(edge_counter "$name" 'tmt_edge_token_checks_total{result="verified"}')
    m_d0[$name]=$(edge_denied "$name")
    m_n0[$name]=$(origin_requests)
    m_c0[$name]=$(cpu_ticks "$p")
    taskset -c "$client_core" wrk -t1 -c64 -d"${duration}s" -s "$tmp/report.lua" \
        "http://127.0.0.1:${port[$name]}${prefix_of[$name]}/$file" >"${m_raw[$name]}" 2>&1 &
    m_wrk[$name]=$!
    tool_pids+=("${m_wrk[$name]}")
}

# Waits for NAME's wrk, checks the run and appends its row to the results.
measure_end() { # name file run
    local name=$1 file=$2 run=$3 p raw c1 n1 h1 v1 d1 out
    p=${pid[$name]}
    raw=${m_raw[$name]}
    wait "${m_wrk[$name]}" || note "wrk exited with $? against $name"
    c1=$(cpu_ticks "$p")
    n1=$(origin_requests)
    kill -0 "$p" 2>/dev/null || die "$name (pid $p) died during $file run $run: $(tail -n 5 "$tmp/logs/$name.log")"
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
    local req byts secs errs non2xx size cpu
    read -r req byts secs errs non2xx <<<"$out"
    [ "${m_n0[$name]}" = "$n1" ] || die "$name $file run $run: the origin got $((n1 - m_n0[$name])) requests: not all hits"
    [ "$req" -gt 0 ] || die "$name $file run $run: no request completed ($raw)"
    size=$(size_of "$file")
    if [ "$byts" -lt $((req * size)) ] || [ "$byts" -gt $(((req + 64) * (size + 2048))) ]; then
        die "$name $file run $run: $((byts / req)) bytes per response, want the $size-byte body plus a head"
    fi
    h1=$(edge_counter "$name" 'tmt_edge_requests_total{result="hit_hot"}')
    [ $((h1 - m_h0[$name])) -ge "$req" ] || die "$name $file run $run: $((h1 - m_h0[$name])) hot hits for $req requests"
    v1=$(edge_counter "$name" 'tmt_edge_token_checks_total{result="verified"}')
    d1=$(edge_denied "$name")
    [ "$d1" = "${m_d0[$name]}" ] || die "$name $file run $run: $((d1 - m_d0[$name])) requests refused"
    [ $((v1 - m_v0[$name])) -le 1 ] || die "$name $file run $run: $((v1 - m_v0[$name])) signature checks (the cache should answer)"
    cpu=$(awk -v a="${m_c0[$name]}" -v b="$c1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(label_of "$file")" "$run" "$req" \
        "$byts" "$secs" "$cpu" "$errs" "$non2xx" >>"$results"
    if [ "$errs" != 0 ] || [ "$non2xx" != 0 ]; then
        note "$name $file run $run: $errs errors, $non2xx non-2xx ($raw)"
    fi
}

note "starting the origin and the two edges"
start_origin
start_edge off "public = /v/"
prefix_of[off]=""
start_edge on "keys_file = $tmp/token.keys"
prefix_of[on]="/t/$token"
note "warming and checking"
warm_and_check off
warm_and_check on
st=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[on]}/$segment")
[ "$st" = 403 ] || die "the 'on' edge answered $st to a request without a token (want 403)"

n=0
for run in $(seq "$runs"); do
    for file in "${files[@]}"; do
        if [ "$together" = 1 ]; then
            n=$((n + 1))
            note "[$n/$((runs * 2))] run $run: tokens off and on at once, $(label_of "$file") (${duration}s)"
            measure_start off "$file" "$run"
            measure_start on "$file" "$run"
            measure_end off "$file" "$run"
            measure_end on "$file" "$run"
            tool_pids=()
            continue
        fi
        # Alternate which goes first, so that drift over the run does not favour one.
        order="off on"
        [ $((run % 2)) = 0 ] && order="on off"
        for name in $order; do
            n=$((n + 1))
            note "[$n/$((runs * 4))] run $run: tokens $name, $(label_of "$file") (${duration}s)"
            measure_start "$name" "$file" "$run"
            measure_end "$name" "$file" "$run"
            tool_pids=()
        done
    done
done
for p in "${started[@]}"; do stop_server "$p"; done
started=()

# ---- report ----

rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "### Token checks at the edge: hot hits with tokens off and on (one worker)"
    echo
    echo "Command: \`$cmdline\`"
    echo
    echo "- $("$edge_bin" --version 2>&1 | head -n 1) (git $rev, CMAKE_BUILD_TYPE=$build_type): server.workers=1, cache.hot_size=64MiB, log.level=warn; off: \`tokens.public = /v/\`; on: \`tokens.keys_file\` with one key, every request \`/t/{token}/v/bench/...\` with the same ${#token}-character token (the verified-token cache answers after the first check)"
    echo "- objects: /$playlist (1024 bytes) and /$segment (1048576 bytes) from an nginx origin, warmed and checked (200, bytes, X-Cache: HIT-hot, no origin request; on: 403 without the token); each run checked no origin request, hot hits ≥ requests, no refusal, at most one signature check"
    echo "- edges pinned to core $server_core, \`wrk -t1 -c64 -d${duration}s\` (HTTP/1.1 keep-alive) pinned to core $client_core; $([ "$together" = 1 ] && echo "off and on measured at the same time (--together: both edges share core $server_core, both wrk processes core $client_core)" || echo "off and on one after the other, alternating which goes first"); median of $runs run(s); server CPU = utime+stime from /proc/PID/stat"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(date -u +%Y-%m-%d)"
    echo
} >"$tmp/report.md"
python3 - "$results" "$together" >>"$tmp/report.md" <<'EOF'
import statistics, sys
together = sys.argv[2] == "1"
runs = {}
for line in open(sys.argv[1]):
    e, f, run, req, byts, secs, cpu, errs, non2xx = line.rstrip("\n").split("\t")
    runs.setdefault((e, f), {})[run] = dict(
        rps=int(req) / float(secs), cpu=float(cpu),
        rpc=int(req) / float(cpu) if float(cpu) > 0 else float("nan"),
        bad=int(errs) + int(non2xx))
files = ("1 KiB", "1 MiB")
row = {}
for k, v in runs.items():
    row[k] = {m: statistics.median(r[m] for r in v.values()) for m in ("rps", "cpu", "rpc")}
    row[k]["bad"] = sum(r["bad"] for r in v.values())
print("| file | tokens | requests/s | server CPU-s | requests per CPU-s | errors + non-2xx |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for f in files:
    for e in ("off", "on"):
        r = row[(e, f)]
        print("| %s | %s | %.0f | %.2f | %.0f | %d |" % (f, e, r["rps"], r["cpu"], r["rpc"], r["bad"]))
print()
# Off and on of one run ran back to back (or at once), so other work on the machine weighs on
# both alike: the ratio of each pair, then their median, is steadier than a ratio of medians.
print("On ÷ off per run (the two ran %s):" % ("at the same time" if together else "back to back"))
print()
print("| file | run | requests/s | requests per CPU-s |")
print("| --- | ---: | ---: | ---: |")
pair = {}
for f in files:
    for run in sorted(runs[("off", f)], key=int):
        a, b = runs[("on", f)][run], runs[("off", f)][run]
        q = (a["rps"] / b["rps"], a["rpc"] / b["rpc"])
        pair.setdefault(f, []).append(q)
        print("| %s | %s | %.3f | %.3f |" % (f, run, q[0], q[1]))
print()
print("| file | on ÷ off, requests/s (median of runs) | on ÷ off, requests per CPU-s | target: requests/s ≥ 0.95 |")
print("| --- | ---: | ---: | --- |")
for f in files:
    q = statistics.median(x[0] for x in pair[f])
    c = statistics.median(x[1] for x in pair[f])
    print("| %s | %.3f | %.3f | %s |" % (f, q, c, "met" if q >= 0.95 else "**not met**"))
print()
EOF
cat "$tmp/report.md"
