#!/usr/bin/env bash
# Static-file benchmark: tomato-edge (--static) against nginx and h2o, one worker each.
#
#   loadtest/bench/static.sh [--duration SECONDS] [--runs N] [--quick] [--memory | --memory-only]
#
# Every server serves the same 1 KiB and 1 MiB files from a temp dir with ONE worker pinned to
# core 0 (taskset -c 0); the load generator is pinned to core 1 (taskset -c 1).
#   HTTP/1.1 keep-alive:  wrk -t1 -c64 -d DURATION
#   h2 over TLS:          h2load -c16 -m10 -D DURATION  (self-signed cert made with openssl)
# Per row: requests/s, MB/s, server CPU (utime+stime of the server's processes from
# /proc/PID/stat over the run, CPU-seconds and % of one core), requests per CPU-second, and for
# 1 MiB CPU-seconds per GB served; then tomato-edge / peer ratios. Each row is the median of the runs.
#
#   --duration SECONDS  length of one measurement (default 10)
#   --runs N            measurements per row, the median is reported (default 3)
#   --quick             --duration 3 --runs 1
#   --memory            also measure memory per idle keep-alive connection (fresh servers)
#   --memory-only       only the memory measurement
#   --conns N           idle connections for the memory measurement (default 10000)
#   --keep              keep the temp dir (configs, logs, raw tool output) and print its path
#
# Environment: TOMATO_EDGE=path to the tomato-edge binary (default build/bin/tomato-edge).
# Tools: scripts/setup.sh --bench installs them. Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
edge_bin=${TOMATO_EDGE:-$top/build/bin/tomato-edge}
cmdline="loadtest/bench/static.sh$(printf ' %q' "$@")"
idle_pid=""
tool_pid=""

duration=10
runs=3
do_tput=1
do_mem=0
conns=10000
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
    --memory)
        do_mem=1
        shift
        ;;
    --memory-only)
        do_mem=1
        do_tput=0
        shift
        ;;
    --conns)
        [ $# -ge 2 ] || die "--conns needs a value"
        conns=$2
        shift 2
        ;;
    --conns=*)
        conns=${1#*=}
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
        echo "bench/static.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration takes whole seconds >= 1, got '$duration'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a count >= 1, got '$runs'"
[[ "$conns" =~ ^[1-9][0-9]*$ ]] || die "--conns takes a count >= 1, got '$conns'"

# ---- tools ----

missing=()
need_tool taskset util-linux
need_tool openssl openssl
need_tool curl curl
need_tool python3 python3
need_tool nginx nginx-light
need_tool h2o h2o
need_tool ps procps
if [ "$do_tput" = 1 ]; then
    need_tool wrk wrk
    need_tool h2load nghttp2-client
fi
if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do note "missing $m"; done
    die "install them with: scripts/setup.sh --bench"
fi
[ -x "$edge_bin" ] || die "no tomato-edge at $edge_bin (build it: cmake --build build -j1)"
taskset -c "$server_core,$client_core" true 2>/dev/null ||
    die "needs cores $server_core and $client_core (taskset -c $server_core,$client_core failed)"

# Open files: the idle connections on the client side, and as many on each server.
fd_need=$((conns + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$fd_need" ]; then
    ulimit -n "$fd_need" 2>/dev/null ||
        { ulimit -Hn "$fd_need" 2>/dev/null && ulimit -n "$fd_need"; } 2>/dev/null ||
        ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
fd_limit=$(ulimit -n)
if [ "$do_mem" = 1 ] && [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt $((conns + 64)) ]; then
    die "open-file limit is $fd_limit, too low for --conns $conns (run as root, or lower --conns)"
fi

# ---- temp dir, cleanup ----

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-static.XXXXXX")
# nginx and h2o drop root for their workers (nobody): they must be able to read the files.
chmod 755 "$tmp"
started=() # pids of the servers this script started

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${started[@]}"; do stop_server "$p"; done
    for p in "$tool_pid" "$idle_pid"; do
        if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
    done
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

# ---- content, certificate ----

www=$tmp/www
mkdir -p "$www" "$tmp/tls" "$tmp/logs"
head -c 1024 /dev/urandom >"$www/1k.bin"
head -c 1048576 /dev/urandom >"$www/1m.bin"
chmod 755 "$www"
chmod 644 "$www"/*.bin
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$tmp/tls/key.pem" -out "$tmp/tls/cert.pem" >"$tmp/logs/openssl.log" 2>&1 ||
    die "openssl could not make a certificate: $(cat "$tmp/logs/openssl.log")"
chmod 755 "$tmp/tls"
chmod 644 "$tmp/tls/cert.pem"
chmod 600 "$tmp/tls/key.pem"
cert=$tmp/tls/cert.pem
key=$tmp/tls/key.pem

cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("TMT_WRK requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# Fetches both files and compares the bytes; h2 checks the protocol too.
verify() { # name scheme port
    local name=$1 scheme=$2 port=$3 f got out
    for f in 1k.bin 1m.bin; do
        got=$tmp/logs/got-$name-$scheme-$f
        if [ "$scheme" = https ]; then
            out=$(curl -sS -k --http2 --max-time 10 -o "$got" -w '%{http_code} %{http_version}' \
                "https://127.0.0.1:$port/$f" 2>&1) || out="curl failed: $out"
            [ "$out" = "200 2" ] || {
                echo "$name: https://127.0.0.1:$port/$f gave '$out' (want 200 over h2)"
                return 1
            }
        else
            out=$(curl -sS --http1.1 --max-time 10 -o "$got" -w '%{http_code}' \
                "http://127.0.0.1:$port/$f" 2>&1) || out="curl failed: $out"
            [ "$out" = 200 ] || {
                echo "$name: http://127.0.0.1:$port/$f gave '$out' (want 200)"
                return 1
            }
        fi
        cmp -s "$got" "$www/$f" || {
            echo "$name: $scheme://127.0.0.1:$port/$f returned other bytes than the file"
            return 1
        }
        rm -f "$got"
    done
}

# ---- servers ----
# start_NAME sets pid_NAME, port_NAME, tls_port_NAME (empty when TLS is not available).

edge_tls_note=""
start_edge() {
    local ports p t
    ports=$(free_ports 2)
    p=${ports% *}
    t=${ports#* }
    local args=(--static "$www" --set "server.listen=127.0.0.1:$p" --set admin.listen=127.0.0.1:0
        --set server.workers=1)
    local log=$tmp/logs/tomato-edge.log
    taskset -c "$server_core" "$edge_bin" "${args[@]}" --set "server.tls_listen=127.0.0.1:$t" \
        --set "tls.cert=$cert" --set "tls.key=$key" >>"$log" 2>&1 &
    pid_edge=$!
    started+=("$pid_edge")
    port_edge=$p
    tls_port_edge=$t
    if ! wait_ready "$pid_edge" "$p"; then
        stop_server "$pid_edge"
        edge_tls_note="with server.tls_listen set, tomato-edge did not start (log: $(tail -n 3 "$log" | tr '\n' ' '))"
        taskset -c "$server_core" "$edge_bin" "${args[@]}" >>"$log" 2>&1 &
        pid_edge=$!
        started+=("$pid_edge")
        tls_port_edge=""
        wait_ready "$pid_edge" "$p" || die "tomato-edge did not start: $(tail -n 5 "$log")"
    fi
    verify tomato-edge http "$p" >&2 || die "tomato-edge failed the check above"
    if [ -n "$tls_port_edge" ]; then
        local why=""
        if ! wait_ready "$pid_edge" "$t"; then
            why="nothing listens on server.tls_listen 127.0.0.1:$t although tomato-edge started"
        elif ! why=$(verify tomato-edge https "$t"); then
            :
        fi
        if [ -n "$why" ]; then
            edge_tls_note=$why
            tls_port_edge=""
        fi
    fi
}

fill_conf() { # template out http-port tls-port prefix
    sed -e "s#@PREFIX@#$5#g" -e "s#@PORT@#$3#g" -e "s#@TLS_PORT@#$4#g" -e "s#@ROOT@#$www#g" \
        -e "s#@CERT@#$cert#g" -e "s#@KEY@#$key#g" "$1" >"$2"
}

start_nginx() {
    local ports p t prefix=$tmp/nginx
    ports=$(free_ports 2)
    p=${ports% *}
    t=${ports#* }
    mkdir -p "$prefix"
    fill_conf "$here/peers/nginx_static.conf.in" "$prefix/nginx.conf" "$p" "$t" "$prefix"
    taskset -c "$server_core" nginx -c "$prefix/nginx.conf" -p "$prefix" -e "$prefix/error.log" \
        -g 'daemon off;' >>"$tmp/logs/nginx.log" 2>&1 &
    pid_nginx=$!
    started+=("$pid_nginx")
    port_nginx=$p
    tls_port_nginx=$t
    wait_ready "$pid_nginx" "$p" "$t" ||
        die "nginx did not start: $(tail -n 5 "$prefix/error.log" "$tmp/logs/nginx.log" 2>/dev/null)"
    verify nginx http "$p" >&2 || die "nginx failed the check above"
    verify nginx https "$t" >&2 || die "nginx failed the check above"
}

start_h2o() {
    local ports p t prefix=$tmp/h2o
    ports=$(free_ports 2)
    p=${ports% *}
    t=${ports#* }
    mkdir -p "$prefix"
    fill_conf "$here/peers/h2o_static.conf.in" "$prefix/h2o.conf" "$p" "$t" "$prefix"
    taskset -c "$server_core" h2o -c "$prefix/h2o.conf" >>"$tmp/logs/h2o.log" 2>&1 &
    pid_h2o=$!
    started+=("$pid_h2o")
    port_h2o=$p
    tls_port_h2o=$t
    wait_ready "$pid_h2o" "$p" "$t" ||
        die "h2o did not start: $(tail -n 5 "$prefix/error.log" "$tmp/logs/h2o.log" 2>/dev/null)"
    verify h2o http "$p" >&2 || die "h2o failed the check above"
    verify h2o https "$t" >&2 || die "h2o failed the check above"
}

# VmRSS in KiB, summed over the processes of a server (nginx: master + worker).
rss_kib() { # pid
    local p sum=0 v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

nprocs() { tree_pids "$1" | wc -l; }

clk_tck=$(getconf CLK_TCK)

# ---- throughput ----

results=$tmp/results.tsv # server proto file run requests bytes secs wall_s cpu_s errors non2xx
: >"$results"

measure() { # server proto file run
    local name=$1 proto=$2 file=$3 run=$4 pid port url out t0 t1 c0 c1 raw
    case "$name" in
    tomato-edge) pid=$pid_edge ;;
    nginx) pid=$pid_nginx ;;
    h2o) pid=$pid_h2o ;;
    esac
    if [ "$proto" = h1 ]; then
        case "$name" in
        tomato-edge) port=$port_edge ;;
        nginx) port=$port_nginx ;;
        h2o) port=$port_h2o ;;
        esac
        url=http://127.0.0.1:$port/$file
    else
        case "$name" in
        tomato-edge) port=$tls_port_edge ;;
        nginx) port=$tls_port_nginx ;;
        h2o) port=$tls_port_h2o ;;
        esac
        [ -n "$port" ] || return 0
        url=https://127.0.0.1:$port/$file
    fi
    raw=$tmp/logs/$name-$proto-$file-$run.txt
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is gone before $proto $file run $run"
    c0=$(cpu_ticks "$pid")
    t0=$(now_ns)
    # In the background so that a signal stops the script at once.
    if [ "$proto" = h1 ]; then
        taskset -c "$client_core" wrk -t1 -c64 -d"${duration}s" -s "$tmp/report.lua" "$url" >"$raw" 2>&1 &
    else
        taskset -c "$client_core" h2load -c16 -m10 -D "$duration" "$url" >"$raw" 2>&1 &
    fi
    tool_pid=$!
    wait "$tool_pid" || note "the load tool exited with $? against $name ($url)"
    tool_pid=""
    t1=$(now_ns)
    c1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || {
        note "$name (pid $pid) died during $proto $file run $run; last lines of its log:"
        tail -n 5 "$tmp/logs/$name.log" >&2 || true
        die "stopping"
    }
    out=$(python3 - "$proto" "$raw" "$duration" <<'EOF'
import re, sys
proto, path, duration = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path, errors="replace").read()
def num(pat, default=None):
    m = re.search(pat, text)
    if not m:
        if default is not None:
            return default
        sys.exit("cannot parse %s output (%s): %s" % (proto, pat, text[-400:]))
    return m.group(1)
if proto == "h1":
    m = re.search(r"TMT_WRK (.*)", text)
    if not m:
        sys.exit("cannot parse wrk output: " + text[-400:])
    f = dict(kv.split("=") for kv in m.group(1).split())
    req, byts, secs = int(f["requests"]), int(f["bytes"]), int(f["duration_us"]) / 1e6
    errors = sum(int(f[k]) for k in ("connect", "read", "write", "timeout"))
    non2xx = int(f["status"])
else:
    # h2load's rates are over the main duration (-D), not over "finished in".
    secs = float(duration)
    req = int(num(r"(\d+) done"))
    errors = sum(int(num(r"(\d+) " + k)) for k in ("failed", "errored", "timeout"))
    non2xx = sum(int(num(r"(\d+) %dxx" % k)) for k in (1, 3, 4, 5) if re.search(r"\d+ %dxx" % k, text))
    byts = int(num(r"traffic: \S+ \((\d+)\) total"))
    if "Application protocol: h2" not in text:
        errors += req  # not h2: every request counts against the row
print(req, byts, secs, errors, non2xx)
EOF
    ) || die "$out"
    local req byts secs errs non2xx
    read -r req byts secs errs non2xx <<<"$out"
    local wall cpu
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$proto" "$file" "$run" \
        "$req" "$byts" "$secs" "$wall" "$cpu" "$errs" "$non2xx" >>"$results"
    if [ "$errs" != 0 ] || [ "$non2xx" != 0 ]; then
        note "$name $proto $file run $run: $errs errors, $non2xx non-2xx responses (raw output: $raw)"
        sed 's/^/    /' "$raw" | grep -iE 'error|non-2xx|status codes|requests:|failed' >&2 || true
    fi
}

versions() {
    local v
    local rev
    rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
    echo "- $("$edge_bin" --version 2>&1 | head -n 1) (build of git $rev, static mode, server.workers=1)"
    v=$(nginx -v 2>&1 | sed 's/^nginx version: //')
    echo "- peers: $v (sendfile on, tcp_nopush on, access_log off, keepalive_requests 100000), $(h2o --version 2>&1 | head -n 1) (num-threads 1, no access log)"
    [ "$do_tput" = 1 ] && echo "- load: $(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }'), $(h2load --version 2>&1 | head -n 1)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(date -u +%Y-%m-%d)"
}

if [ "$do_tput" = 1 ]; then
    note "starting servers"
    start_edge
    start_nginx
    start_h2o
    [ -z "$edge_tls_note" ] || note "tomato-edge TLS rows: n/a ($edge_tls_note)"
    total=$((runs * 4 * 3))
    n=0
    for run in $(seq "$runs"); do
        for test in "h1 1k.bin" "h1 1m.bin" "h2 1k.bin" "h2 1m.bin"; do
            read -r proto file <<<"$test"
            for name in tomato-edge nginx h2o; do
                n=$((n + 1))
                note "[$n/$total] run $run: $name $proto $file (${duration}s)"
                measure "$name" "$proto" "$file" "$run"
            done
        done
    done
    tls_out=""
    [ -n "$tls_port_nginx" ] && tls_out=$(grep -hE '^(TLS Protocol|Cipher|Server Temp Key):' \
        "$tmp/logs/nginx-h2-1k.bin-1.txt" 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g; s/ $//')
    for p in "${started[@]}"; do stop_server "$p"; done
    started=()
fi

# ---- memory per idle connection ----

mem_results=$tmp/memory.tsv # server procs before with open failed alive after
: >"$mem_results"

measure_memory() { # name
    local name=$1 pid port before with after line open failed alive
    case "$name" in
    tomato-edge)
        start_edge
        pid=$pid_edge port=$port_edge
        ;;
    nginx)
        start_nginx
        pid=$pid_nginx port=$port_nginx
        ;;
    h2o)
        start_h2o
        pid=$pid_h2o port=$port_h2o
        ;;
    esac
    sleep 1
    before=$(rss_kib "$pid")
    note "$name: opening $conns idle keep-alive connections (RSS before: $before KiB)"
    coproc IDLE { taskset -c "$client_core" python3 "$here/idle_conns.py" --port "$port" \
        --path /1k.bin --conns "$conns" 2>>"$tmp/logs/idle_conns-$name.log"; }
    # shellcheck disable=SC2153 # set by coproc
    idle_pid=$IDLE_PID
    local rd=${IDLE[0]} wr=${IDLE[1]}
    read -r -t 600 line <&"$rd" || die "idle_conns.py gave no answer against $name: $(cat "$tmp/logs/idle_conns-$name.log")"
    open=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' <<<"$line")
    failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
    sleep 1
    with=$(rss_kib "$pid")
    echo close >&"$wr"
    read -r -t 60 line <&"$rd" || die "idle_conns.py did not report live connections"
    alive=${line#alive=}
    read -r -t 60 line <&"$rd" || die "idle_conns.py did not close"
    wait "$idle_pid" 2>/dev/null || true
    idle_pid=""
    sleep 2
    kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) died during the memory measurement"
    after=$(rss_kib "$pid")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(nprocs "$pid")" "$before" "$with" \
        "$open" "$failed" "$alive" "$after" >>"$mem_results"
    if [ "$failed" != 0 ]; then
        note "$name: $failed of $conns connections failed:"
        sed 's/^/    /' "$tmp/logs/idle_conns-$name.log" >&2
    fi
    stop_server "$pid"
    started=()
}

if [ "$do_mem" = 1 ]; then
    for name in tomato-edge nginx h2o; do measure_memory "$name"; done
fi

# ---- report ----

{
    echo "### Static files: tomato-edge, nginx, h2o (one worker each)"
    echo
    echo "Command: \`$cmdline\`"
    echo
    versions
    if [ "$do_tput" = 1 ]; then
        echo "- each server: one worker pinned to core $server_core (\`taskset -c $server_core\`); load generator pinned to core $client_core (\`taskset -c $client_core\`); files in a temp dir, page cache warm"
        echo "- HTTP/1.1 keep-alive: \`wrk -t1 -c64 -d${duration}s URL\`; h2 over TLS: \`h2load -c16 -m10 -D $duration URL\`, self-signed RSA-2048 cert${tls_out:+ ($tls_out)}"
        echo "- median of $runs run(s) per column; MB = 10^6 and GB = 10^9 bytes as received by the client (headers included); requests/s and MB/s over the tool's duration"
        echo "- server CPU = utime+stime of the server's processes (/proc/PID/stat) over the whole run of the load tool (connection setup and the requests in flight at its end included), as CPU-seconds and as % of one core over that wall time; requests per CPU-s counts the requests the tool completed"
    fi
    echo
} >"$tmp/report.md"

python3 - "$results" "$mem_results" "$do_tput" "$do_mem" "$conns" "$edge_tls_note" >>"$tmp/report.md" <<'EOF'
import statistics, sys

res_path, mem_path, do_tput, do_mem, conns, tls_note = sys.argv[1:7]
servers = ["tomato-edge", "nginx", "h2o"]
tests = [("h1", "1k.bin"), ("h1", "1m.bin"), ("h2", "1k.bin"), ("h2", "1m.bin")]
proto_name = {"h1": "HTTP/1.1", "h2": "h2 (TLS)"}
file_name = {"1k.bin": "1 KiB", "1m.bin": "1 MiB"}
NA = "n/a (TLS not available)"

if do_tput == "1":
    runs = {}
    for line in open(res_path):
        s, proto, f, run, req, byts, secs, wall, cpu, errs, non2xx = line.rstrip("\n").split("\t")
        runs.setdefault((s, proto, f), []).append(dict(
            rps=int(req) / float(secs), mbps=int(byts) / float(secs) / 1e6, cpu=float(cpu),
            pct=100 * float(cpu) / float(wall),
            rpc=int(req) / float(cpu) if float(cpu) > 0 else float("nan"),
            cpgb=float(cpu) / (int(byts) / 1e9) if int(byts) else float("nan"),
            errs=int(errs), non2xx=int(non2xx)))

    def med(rows, k):
        return statistics.median(r[k] for r in rows)

    row = {}
    for key, rows in runs.items():
        row[key] = {k: med(rows, k) for k in ("rps", "mbps", "cpu", "pct", "rpc", "cpgb")}
        row[key]["errs"] = sum(r["errs"] for r in rows)
        row[key]["non2xx"] = sum(r["non2xx"] for r in rows)

    print("| protocol | file | server | requests/s | MB/s | server CPU-s | CPU % of one core "
          "| requests per CPU-s | CPU-s per GB | errors / non-2xx |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for proto, f in tests:
        for s in servers:
            r = row.get((s, proto, f))
            head = "| %s | %s | %s |" % (proto_name[proto], file_name[f], s)
            if r is None:
                print(head + " %s | — | — | — | — | — | — |" % (NA if proto == "h2" else "n/a"))
                continue
            cpgb = "%.2f" % r["cpgb"] if f == "1m.bin" else "—"
            print(head + " %.0f | %.1f | %.2f | %.1f | %.0f | %s | %d / %d |" % (
                r["rps"], r["mbps"], r["cpu"], r["pct"], r["rpc"], cpgb, r["errs"], r["non2xx"]))
    print()
    print("Ratios, tomato-edge ÷ peer. Requests per CPU-s: higher is better. "
          "CPU-s per GB (1 MiB only): lower is better.")
    print()
    print("| protocol | file | req per CPU-s ÷ nginx | req per CPU-s ÷ h2o "
          "| CPU-s per GB ÷ nginx | CPU-s per GB ÷ h2o |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for proto, f in tests:
        ours = row.get(("tomato-edge", proto, f))
        cells = []
        for k in ("rpc", "cpgb"):
            for peer in ("nginx", "h2o"):
                p = row.get((peer, proto, f))
                if k == "cpgb" and f != "1m.bin":
                    cells.append("—")
                elif ours is None:
                    cells.append(NA if proto == "h2" else "n/a")
                elif p is None or not p[k] or p[k] != p[k] or ours[k] != ours[k]:
                    cells.append("n/a")
                else:
                    cells.append("%.2f" % (ours[k] / p[k]))
        print("| %s | %s | %s |" % (proto_name[proto], file_name[f], " | ".join(cells)))
    print()
    if tls_note:
        print("tomato-edge over TLS: n/a (TLS not available: %s)." % tls_note)
        print()

if do_mem == "1":
    print("Memory per idle HTTP/1.1 keep-alive connection: %s connections, each after one completed "
          "GET of the 1 KiB file, held idle by loadtest/bench/idle_conns.py (core 1) against a freshly "
          "started server. RSS = VmRSS from /proc/PID/status summed over the server's processes "
          "(nginx: master + worker; h2o: its process and helpers). RSS after close is as the "
          "allocator left it (no malloc_trim)." % conns)
    print()
    print("| server | processes | RSS before (KiB) | RSS with idle conns (KiB) | connections held "
          "| KiB per connection | RSS after close (KiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in open(mem_path):
        s, procs, before, with_, open_, failed, alive, after = line.rstrip("\n").split("\t")
        held = int(open_)
        per = "%.2f" % ((int(with_) - int(before)) / held) if held else "n/a"
        note = ""
        if int(failed):
            note += " (%s failed)" % failed
        if int(alive) != held:
            note += " (%s still open at close)" % alive
        print("| %s | %s | %s | %s | %d%s | %s | %s |" % (s, procs, before, with_, held, note, per, after))
    print()
EOF

cat "$tmp/report.md"
